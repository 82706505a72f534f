import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar, Popup, showPopup } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { GitSyncAPI, IAuthInfo } from './api';
import { gitSyncIcon } from './icons';
import { TRANSLATION_DOMAIN } from './labels';
import { needsFork, SyncStatusModel } from './model';
import {
  AlertNotifier,
  notifyForked,
  notifyForkFailed,
  notifySyncFailed
} from './notify';
import { branchUrl, parseRemote } from './remote';
import { UnloadGuard } from './unload';
import { SyncBadge } from './widgets/badge';
import { SyncDetails } from './widgets/details';

/**
 * The command ids of this extension.
 */
export namespace CommandIDs {
  export const syncNow = 'gitsync:sync-now';
  export const signIn = 'gitsync:sign-in';
  export const signOut = 'gitsync:sign-out';
  export const fork = 'gitsync:fork';
  export const resume = 'gitsync:resume';
  export const openBranch = 'gitsync:open-branch';
  export const showDetails = 'gitsync:show-details';
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
 * States in which there is nothing to resume into.
 */
const NOT_RESUMABLE = new Set([
  'disabled',
  'starting',
  'restoring',
  'stopping'
]);

/**
 * The user settings, with their defaults.
 */
interface ISyncSettings {
  relativeTimes: boolean;
  notifications: boolean;
  warnBeforeClose: boolean;
}

const DEFAULT_SETTINGS: ISyncSettings = {
  relativeTimes: true,
  notifications: true,
  warnBeforeClose: true
};

/**
 * The arguments every command takes: `short` asks for the label without
 * the "Git Sync:" prefix (menus and the popover already say Git Sync).
 */
const COMMAND_ARGS = {
  args: {
    type: 'object',
    properties: {
      short: {
        type: 'boolean',
        description: 'Label without the "Git Sync:" prefix'
      }
    }
  }
} as const;

/**
 * The Git Sync status bar badge with its details popover, commands in the
 * palette and the Git Sync menu, sign-in and resume dialogs, notifications,
 * and a warning before closing the tab with unsaved changes.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Shows the Git Sync status in the status bar, with actions to sync, sign in, fork and resume from a branch.',
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
    const serverSettings = app.serviceManager.serverSettings;
    const model = new SyncStatusModel({
      events: app.serviceManager.events,
      serverSettings
    });
    const api = new GitSyncAPI({ serverSettings });
    const { commands } = app;

    // The GitHub repository the server recognised (GitHub Enterprise too).
    let gitHubRepository: string | null = null;
    const loadAuth = async (): Promise<IAuthInfo> => {
      const auth = await api.auth();
      gitHubRepository = auth.repository;
      return auth;
    };
    const currentBranchUrl = (): string | null =>
      branchUrl(
        parseRemote(model.status?.remote_url, gitHubRepository),
        model.status?.branch ?? null
      );
    const label =
      (full: string, short: string) =>
      (args: { short?: unknown }): string =>
        args.short === true ? short : full;

    commands.addCommand(CommandIDs.syncNow, {
      label: label(trans.__('Git Sync: Sync now'), trans.__('Sync now')),
      caption: trans.__(
        'Snapshot the workspace into git and push it to the remote now'
      ),
      describedBy: COMMAND_ARGS,
      icon: gitSyncIcon,
      isEnabled: () =>
        !!model.status && model.status.state !== 'disabled' && !model.isSyncing,
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

    commands.addCommand(CommandIDs.signIn, {
      label: label(
        trans.__('Git Sync: Sign in to GitHub'),
        trans.__('Sign in to GitHub')
      ),
      caption: trans.__('Sign in to GitHub so that Git Sync can push'),
      describedBy: COMMAND_ARGS,
      execute: async () => {
        const { showSignInDialog } = await import('./widgets/signin');
        const auth = await showSignInDialog({ api, model, translator });
        if (auth) {
          Notification.success(
            auth.login
              ? trans.__('Signed in to GitHub as @%1.', auth.login)
              : trans.__('Signed in to GitHub.'),
            { autoClose: 5000 }
          );
        }
      }
    });

    commands.addCommand(CommandIDs.signOut, {
      label: label(trans.__('Git Sync: Sign out'), trans.__('Sign out')),
      caption: trans.__('Forget the GitHub sign-in made in this session'),
      describedBy: COMMAND_ARGS,
      execute: async () => {
        const answer = await showDialog({
          title: trans.__('Sign out of GitHub?'),
          body: trans.__(
            'Git Sync forgets the sign-in made here. Snapshots are still taken, and pushed again once a token is available.'
          ),
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: trans.__('Sign out') })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        try {
          await api.signOut();
          Notification.info(trans.__('Signed out of GitHub.'), {
            autoClose: 5000
          });
        } catch (error) {
          Notification.error(
            trans.__('Could not sign out: %1', (error as Error).message),
            { autoClose: 8000 }
          );
        }
      }
    });

    // Whether a fork request is in flight (one at a time).
    let forking = false;
    const setForking = (value: boolean): void => {
      forking = value;
      commands.notifyCommandChanged(CommandIDs.fork);
    };
    commands.addCommand(CommandIDs.fork, {
      label: label(
        trans.__('Git Sync: Fork the repository to my account'),
        trans.__('Fork to my account')
      ),
      caption: trans.__(
        'You may not push to the repository: fork it to your GitHub account and sync your work there'
      ),
      describedBy: COMMAND_ARGS,
      isVisible: () => needsFork(model.status),
      isEnabled: () => needsFork(model.status) && !forking,
      execute: async () => {
        if (forking) {
          return;
        }
        setForking(true);
        try {
          // The engine switches to the fork; a status event follows.
          notifyForked(await api.forkRepository(), trans);
        } catch (error) {
          notifyForkFailed(error, trans, {
            signIn: () => void commands.execute(CommandIDs.signIn)
          });
        } finally {
          setForking(false);
        }
      }
    });

    commands.addCommand(CommandIDs.resume, {
      label: label(
        trans.__('Git Sync: Resume from branch…'),
        trans.__('Resume from branch…')
      ),
      caption: trans.__(
        'Save the current work, then continue from the last snapshot of another branch'
      ),
      describedBy: COMMAND_ARGS,
      isEnabled: () => !!model.status && !NOT_RESUMABLE.has(model.status.state),
      execute: async () => {
        const { showResumeDialog } = await import('./widgets/resume');
        await showResumeDialog({
          api,
          model,
          relativeTimes: settings.relativeTimes,
          translator
        });
      }
    });

    commands.addCommand(CommandIDs.openBranch, {
      label: label(
        trans.__('Git Sync: Open branch on GitHub'),
        trans.__('Open branch on GitHub')
      ),
      caption: trans.__('Open the sync branch on GitHub in a new tab'),
      describedBy: COMMAND_ARGS,
      isVisible: () => currentBranchUrl() !== null,
      isEnabled: () => currentBranchUrl() !== null,
      execute: () => {
        const url = currentBranchUrl();
        if (url) {
          window.open(url, '_blank', 'noopener,noreferrer');
        }
      }
    });

    let badge: SyncBadge | null = null;
    let popup: Popup | null = null;
    const toggleDetails = (): void => {
      if (popup) {
        popup.dispose();
        return;
      }
      if (!badge) {
        return;
      }
      const anchor = badge;
      const body = new SyncDetails({
        model,
        commands,
        commandIds: CommandIDs,
        loadAuth,
        relativeTimes: settings.relativeTimes,
        translator,
        onAction: id => {
          if (id !== CommandIDs.syncNow) {
            popup?.dispose();
          }
        }
      });
      body.node.addEventListener('keydown', event => {
        if (event.key === 'Escape') {
          requestAnimationFrame(() => anchor.focus());
        }
      });
      const opened = showPopup({
        body,
        anchor,
        align: 'left',
        hasDynamicSize: true
      });
      popup = opened;
      anchor.expanded = true;
      opened.disposed.connect(() => {
        popup = null;
        anchor.expanded = false;
      });
    };

    commands.addCommand(CommandIDs.showDetails, {
      label: label(trans.__('Git Sync: Show status'), trans.__('Show status')),
      caption: trans.__('Show the Git Sync status and its actions'),
      describedBy: COMMAND_ARGS,
      isEnabled: () => badge !== null,
      execute: () => {
        if (!popup) {
          toggleDetails();
        }
      }
    });

    const ids = Object.values(CommandIDs);
    model.changed.connect(() => {
      for (const id of ids) {
        commands.notifyCommandChanged(id);
      }
    });

    if (palette) {
      for (const command of ids) {
        palette.addItem({ command, category: trans.__('Git Sync') });
      }
    }

    new AlertNotifier(model, trans, () => settings.notifications, {
      signIn: () => void commands.execute(CommandIDs.signIn),
      fork: () => void commands.execute(CommandIDs.fork),
      showDetails: () => void commands.execute(CommandIDs.showDetails)
    });
    new UnloadGuard({ model, enabled: () => settings.warnBeforeClose });

    if (statusBar) {
      badge = new SyncBadge({
        model,
        relativeTimes: settings.relativeTimes,
        translator,
        onActivate: toggleDetails
      });
      badge.id = 'jp-gitsync-badge';
      statusBar.registerStatusItem(BADGE_ID, {
        item: badge,
        align: 'left',
        rank: 50
      });
    }

    if (settingRegistry) {
      const apply = (loaded: ISettingRegistry.ISettings): void => {
        for (const key of Object.keys(DEFAULT_SETTINGS) as Array<
          keyof ISyncSettings
        >) {
          settings[key] =
            (loaded.get(key).composite as boolean | undefined) ??
            DEFAULT_SETTINGS[key];
        }
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
