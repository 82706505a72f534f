import type { ISettingRegistry } from '@jupyterlab/settingregistry';

import type { SyncStatusItem } from './widgets/statusitem';

/**
 * The user settings (see `labextension/schema/plugin.json`).
 */
export interface ISyncSettings {
  /**
   * Show times as "3 minutes ago" instead of as a date and time.
   */
  relativeTimes: boolean;
  /**
   * Notify when syncing needs attention or when "Sync now" fails.
   */
  notifications: boolean;
  /**
   * Ask before the tab is closed while changes have not reached the remote.
   */
  warnBeforeClose: boolean;
}

/**
 * The settings until the registry has answered (or when there is none),
 * the same as the schema's defaults.
 */
export const DEFAULT_SETTINGS: Readonly<ISyncSettings> = {
  relativeTimes: true,
  notifications: true,
  warnBeforeClose: true
};

/**
 * Load the plugin's settings into `settings`, and again whenever the user
 * changes them.
 *
 * `settings` is the object the commands, the notifier and the unload guard
 * read when they need a value, so a change takes effect at once; the status
 * bar item (`null` without a status bar), which renders on its own, is told
 * about the relative times. If the settings cannot be loaded, the defaults
 * stay in place.
 */
export function loadSettings(
  registry: ISettingRegistry,
  pluginId: string,
  settings: ISyncSettings,
  statusItem: SyncStatusItem | null
): void {
  const apply = (loaded: ISettingRegistry.ISettings): void => {
    applySettings(loaded, settings, statusItem);
  };
  registry
    .load(pluginId)
    .then(loaded => {
      apply(loaded);
      loaded.changed.connect(apply);
    })
    .catch(reason => {
      console.warn('Git Sync: could not load settings.', reason);
    });
}

/**
 * Copy the loaded values into `settings` (a missing value falls back to
 * its default) and show the relative times setting in the status bar item.
 */
function applySettings(
  loaded: ISettingRegistry.ISettings,
  settings: ISyncSettings,
  statusItem: SyncStatusItem | null
): void {
  for (const key of Object.keys(DEFAULT_SETTINGS) as Array<
    keyof ISyncSettings
  >) {
    settings[key] =
      (loaded.get(key).composite as boolean | undefined) ??
      DEFAULT_SETTINGS[key];
  }
  if (statusItem) {
    statusItem.relativeTimes = settings.relativeTimes;
  }
}
