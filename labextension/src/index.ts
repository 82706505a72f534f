import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { gitSyncIcon } from './icons';
import { TRANSLATION_DOMAIN } from './labels';
import { SyncStatusModel } from './model';
import { AlertNotifier, notifySyncFailed } from './notify';
import { SyncBadge } from './widgets/badge';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const syncNow = 'gitsync:sync-now';
}

/**
 * The id of the main plugin (and of its settings).
 */
const PLUGIN_ID = 'jupyter-gitsync:plugin';

/**
 * The id of the status bar item.
 */
const BADGE_ID = 'jupyter-gitsync:badge';

/**
 * The user settings, with their defaults.
 */
interface ISyncSettings {
  relativeTimes: boolean;
  notifications: boolean;
}

const DEFAULT_SETTINGS: ISyncSettings = {
  relativeTimes: true,
  notifications: true
};

/**
 * Shows the sync status in the status bar and adds "Git Sync: Sync now".
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Shows the Git Sync status in the status bar and adds a "Sync now" command.',
  autoStart: true,
  optional: [IStatusBar, ICommandPalette, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): void => {
    translator = translator ?? nullTranslator;
    const trans = translator.load(TRANSLATION_DOMAIN);
    const settings: ISyncSettings = { ...DEFAULT_SETTINGS };
    const model = new SyncStatusModel({
      events: app.serviceManager.events,
      serverSettings: app.serviceManager.serverSettings
    });

    app.commands.addCommand(CommandIDs.syncNow, {
      label: trans.__('Git Sync: Sync now'),
      caption: trans.__(
        'Snapshot the workspace into git and push it to the remote now'
      ),
      describedBy: { args: { type: 'object', properties: {} } },
      icon: gitSyncIcon,
      isEnabled: () => model.status?.state !== 'disabled' && !model.isSyncing,
      execute: async () => {
        try {
          await model.syncNow();
        } catch (error) {
          if (settings.notifications) {
            notifySyncFailed(error, trans);
          } else {
            console.error('Git Sync: sync now failed.', error);
          }
        }
      }
    });
    model.changed.connect(() => {
      app.commands.notifyCommandChanged(CommandIDs.syncNow);
    });

    if (palette) {
      palette.addItem({
        command: CommandIDs.syncNow,
        category: trans.__('Git Sync')
      });
    }

    new AlertNotifier(model, trans, () => settings.notifications);

    let badge: SyncBadge | null = null;
    if (statusBar) {
      badge = new SyncBadge({
        model,
        relativeTimes: settings.relativeTimes,
        translator,
        onActivate: () => {
          if (app.commands.isEnabled(CommandIDs.syncNow)) {
            void app.commands.execute(CommandIDs.syncNow);
          }
        }
      });
      statusBar.registerStatusItem(BADGE_ID, {
        item: badge,
        align: 'left',
        rank: 50
      });
    }

    if (settingRegistry) {
      const apply = (loaded: ISettingRegistry.ISettings): void => {
        settings.relativeTimes =
          (loaded.get('relativeTimes').composite as boolean | undefined) ??
          DEFAULT_SETTINGS.relativeTimes;
        settings.notifications =
          (loaded.get('notifications').composite as boolean | undefined) ??
          DEFAULT_SETTINGS.notifications;
        if (badge) {
          badge.relativeTimes = settings.relativeTimes;
        }
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => {
          apply(loaded);
          loaded.changed.connect(apply);
        })
        .catch(reason => {
          console.warn('Git Sync: could not load settings.', reason);
        });
    }
  }
};

export default plugin;
