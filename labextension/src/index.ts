import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { GitSyncAPI } from './api';
import {
  addCommands,
  addPaletteItems,
  AuthInfoLoader,
  notifierActions
} from './commands';
// The History panel is in the sidebar from the start; its heavy parts (nbdime,
// the diff view, the dialogs) are loaded when first used.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { addHistory } from './historycommands';
import { TRANSLATION_DOMAIN } from './labels';
import { SyncStatusModel } from './model';
import { AlertNotifier } from './notify';
import { DEFAULT_SETTINGS, ISyncSettings, loadSettings } from './settings';
import { UnloadGuard } from './unload';
import { addStatusItem, SyncStatusItem } from './widgets/statusitem';

export { CommandIDs } from './commands';

/**
 * The id of the main plugin (and of its settings).
 */
const PLUGIN_ID = 'jupyter-gitsync:plugin';

/**
 * The Git Sync status bar badge with its details popover, commands in the
 * palette and the Git Sync menu, sign-in and resume dialogs, notifications,
 * a warning before closing the tab with unsaved changes, and the History
 * panel with compare, restore, versions and publishing.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Shows the Git Sync status in the status bar, with actions to sync, sign in, fork and resume from a branch.',
  autoStart: true,
  optional: [
    IStatusBar,
    ICommandPalette,
    ISettingRegistry,
    ITranslator,
    ILabShell,
    IDocumentManager,
    IDefaultFileBrowser,
    IRenderMimeRegistry,
    IEditorServices,
    IEditorLanguageRegistry
  ],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    labShell?: ILabShell | null,
    docManager?: IDocumentManager | null,
    browser?: IDefaultFileBrowser | null,
    rendermime?: IRenderMimeRegistry | null,
    editorServices?: IEditorServices | null,
    languages?: IEditorLanguageRegistry | null
  ): void => {
    translator = translator ?? nullTranslator;
    const trans = translator.load(TRANSLATION_DOMAIN);
    const settings: ISyncSettings = { ...DEFAULT_SETTINGS };
    const serverSettings = app.serviceManager.serverSettings;
    const model = new SyncStatusModel({
      events: app.serviceManager.events,
      serverSettings
    });
    const api = new GitSyncAPI({ serverSettings });
    const auth = new AuthInfoLoader(api);
    const { commands } = app;

    // Made after the commands; "Show status" asks for it when it runs.
    let statusItem: SyncStatusItem | null = null;
    addCommands({
      commands,
      api,
      model,
      auth,
      settings,
      statusItem: () => statusItem,
      translator
    });
    addHistory({
      app,
      api,
      model,
      translator,
      labShell,
      docManager,
      browser,
      rendermime,
      editorServices,
      languages
    });
    if (palette) {
      addPaletteItems(palette, trans);
    }

    new AlertNotifier(
      model,
      trans,
      () => settings.notifications,
      notifierActions(commands)
    );
    new UnloadGuard({ model, enabled: () => settings.warnBeforeClose });

    if (statusBar) {
      statusItem = addStatusItem(statusBar, {
        model,
        commands,
        loadAuth: () => auth.load(),
        relativeTimes: settings.relativeTimes,
        translator
      });
    }
    if (settingRegistry) {
      loadSettings(settingRegistry, PLUGIN_ID, settings, statusItem);
    }
  }
};

export default plugin;
