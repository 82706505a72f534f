import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import type { GitSyncAPI, IAuthInfo } from './api';
import { gitSyncIcon } from './icons';
import { TRANSLATION_DOMAIN } from './labels';
import { needsFork } from './model';
import type { SyncStatusModel } from './model';
import { notifyForked, notifyForkFailed, notifySyncFailed } from './notify';
import type { INotifierActions } from './notify';
import { branchUrl, parseRemote } from './remote';
import type { ISyncSettings } from './settings';
import type { SyncStatusItem } from './widgets/statusitem';

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
  /**
   * Take `{ name }`: a rescue branch of the sync branch.
   */
  export const openRescue = 'gitsync:open-rescue';
  export const deleteRescue = 'gitsync:delete-rescue';
  /**
   * Take `{ path? }` or `{ fromBrowser: true }`: the History panel.
   */
  export const showHistory = 'gitsync:show-history';
  /**
   * Take `{ sha?, time? }`: the snapshot to name (now without one).
   */
  export const saveVersion = 'gitsync:save-version';
  /**
   * Take `{ source?, message? }`: a snapshot or version to publish.
   */
  export const publish = 'gitsync:publish';
  /**
   * Take `{ path, base, baseTime?, remote?, remoteTime? }`.
   */
  export const compare = 'gitsync:compare';
  /**
   * Take `{ path, sha, time? }`.
   */
  export const restoreFile = 'gitsync:restore-file';
  /**
   * Take `{ sha, time? }`.
   */
  export const restoreWorkspace = 'gitsync:restore-workspace';
}

/**
 * Commands that act on something named in their arguments: not in the
 * palette, offered where that something is listed.
 */
const NEEDS_ARGUMENTS = new Set<string>([
  CommandIDs.openRescue,
  CommandIDs.deleteRescue,
  CommandIDs.compare,
  CommandIDs.restoreFile,
  CommandIDs.restoreWorkspace
]);

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
 * Asks the server who is signed in, and remembers the GitHub repository it
 * recognised (GitHub Enterprise too), which "Open branch on GitHub" needs to
 * link a remote that is not on github.com. The details popover asks each
 * time it opens.
 */
export class AuthInfoLoader {
  constructor(api: GitSyncAPI) {
    this._api = api;
  }

  /**
   * `owner/name` of the remote on the server's GitHub, once known.
   */
  get gitHubRepository(): string | null {
    return this._gitHubRepository;
  }

  /**
   * Ask the server who is signed in.
   */
  async load(): Promise<IAuthInfo> {
    const auth = await this._api.auth();
    this._gitHubRepository = auth.repository;
    return auth;
  }

  private _api: GitSyncAPI;
  private _gitHubRepository: string | null = null;
}

/**
 * What the commands act on.
 */
export interface ICommandsOptions {
  commands: CommandRegistry;
  api: GitSyncAPI;
  model: SyncStatusModel;
  auth: AuthInfoLoader;
  /**
   * Read when a command runs, so that a settings change applies at once.
   */
  settings: Readonly<ISyncSettings>;
  /**
   * The status bar item whose popover "Show status" opens; `null` without a
   * status bar. Asked each time, as the item is made after the commands.
   */
  statusItem: () => SyncStatusItem | null;
  translator: ITranslator;
}

/**
 * Register every Git Sync command, and keep their enabled and visible
 * states following the sync status.
 *
 * The menu that lists them is declared in the settings schema
 * (`jupyter.lab.menus`), the palette items are added by `addPaletteItems`.
 */
export function addCommands(options: ICommandsOptions): void {
  const context: Private.IContext = {
    ...options,
    trans: options.translator.load(TRANSLATION_DOMAIN)
  };
  Private.addSyncNow(context);
  Private.addSignIn(context);
  Private.addSignOut(context);
  Private.addFork(context);
  Private.addResume(context);
  Private.addOpenBranch(context);
  Private.addShowDetails(context);
  Private.addRescueCommands(context);

  const { commands, model } = options;
  const ids = Object.values(CommandIDs);
  model.changed.connect(() => {
    for (const id of ids) {
      // The History commands are registered only where there are documents.
      if (commands.hasCommand(id)) {
        commands.notifyCommandChanged(id);
      }
    }
  });
}

/**
 * Add every Git Sync command to the command palette, under "Git Sync".
 */
export function addPaletteItems(
  palette: ICommandPalette,
  trans: TranslationBundle
): void {
  for (const command of Object.values(CommandIDs)) {
    if (!NEEDS_ARGUMENTS.has(command)) {
      palette.addItem({ command, category: trans.__('Git Sync') });
    }
  }
}

/**
 * The buttons the notifications offer, as commands: so that they behave
 * like the menu items (e.g. sign in opens the same dialog).
 */
export function notifierActions(commands: CommandRegistry): INotifierActions {
  return {
    signIn: () => void commands.execute(CommandIDs.signIn),
    fork: () => void commands.execute(CommandIDs.fork),
    showDetails: () => void commands.execute(CommandIDs.showDetails)
  };
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  /**
   * What the functions adding a command need.
   */
  export interface IContext extends ICommandsOptions {
    trans: TranslationBundle;
  }

  /**
   * A command label: `full` in the palette, `short` with `{ short: true }`.
   */
  export function label(
    full: string,
    short: string
  ): (args: { short?: unknown }) => string {
    return args => (args.short === true ? short : full);
  }

  export function addSyncNow(context: IContext): void {
    const { commands, model, settings, trans } = context;
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
  }

  export function addSignIn(context: IContext): void {
    const { api, commands, model, trans, translator } = context;
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
  }

  export function addSignOut(context: IContext): void {
    const { api, commands, trans } = context;
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
  }

  /**
   * "Fork the repository to my account": one request at a time, the
   * command disabled while it is in flight.
   */
  export function addFork(context: IContext): void {
    const { api, commands, model, trans } = context;
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
  }

  export function addResume(context: IContext): void {
    const { api, commands, model, settings, trans, translator } = context;
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
  }

  export function addOpenBranch(context: IContext): void {
    const { auth, commands, model, trans } = context;
    const currentBranchUrl = (): string | null =>
      branchUrl(
        parseRemote(model.status?.remote_url, auth.gitHubRepository),
        model.status?.branch ?? null
      );
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
  }

  /**
   * Open and Delete for the rescue branches the popover lists.
   */
  export function addRescueCommands(context: IContext): void {
    const { auth, commands, model, trans } = context;
    const nameOf = (args: { name?: unknown }): string | null =>
      typeof args.name === 'string' && args.name ? args.name : null;
    const rescueOf = (args: { name?: unknown }) =>
      model.status?.rescue_branches.find(r => r.name === nameOf(args)) ?? null;
    const args = {
      args: {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'The rescue branch' }
        }
      }
    } as const;
    commands.addCommand(CommandIDs.openRescue, {
      label: trans.__('Open'),
      caption: trans.__('See the versions this rescue branch keeps'),
      describedBy: args,
      isEnabled: args => rescueOf(args) !== null,
      execute: async args => {
        const rescue = rescueOf(args);
        if (!rescue) {
          return;
        }
        const remote = parseRemote(
          model.status?.remote_url,
          auth.gitHubRepository
        );
        const url = branchUrl(remote, rescue.name);
        if (url) {
          window.open(url, '_blank', 'noopener,noreferrer');
          return;
        }
        await showDialog({
          title: trans.__('Rescue branch %1', rescue.name),
          body: Private.rescueHowTo(rescue.name, rescue.paths, trans),
          buttons: [Dialog.okButton({ label: trans.__('Close') })]
        });
      }
    });
    commands.addCommand(CommandIDs.deleteRescue, {
      label: trans.__('Delete'),
      caption: trans.__('Delete this rescue branch, here and on the remote'),
      describedBy: args,
      isEnabled: args => rescueOf(args) !== null,
      execute: async args => {
        const rescue = rescueOf(args);
        if (!rescue) {
          return;
        }
        const answer = await showDialog({
          title: trans.__('Delete rescue branch?'),
          body: trans.__(
            'The branch %1 keeps other versions of %2, which are not in your workspace. Deleting it removes it here and on the remote.',
            rescue.name,
            rescue.paths.join(', ') || trans.__('some files')
          ),
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: trans.__('Delete') })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        try {
          await model.deleteRescue(rescue.name);
          Notification.success(
            trans.__('Deleted the rescue branch %1.', rescue.name),
            { autoClose: 5000 }
          );
        } catch (error) {
          Notification.error(
            trans.__(
              'Could not delete the rescue branch %1: %2',
              rescue.name,
              error instanceof Error ? error.message : String(error)
            )
          );
        }
      }
    });
  }

  /**
   * Where a remote has no web pages: how to see and take back the versions
   * of a rescue branch, which is also in the workspace's repository.
   */
  export function rescueHowTo(
    name: string,
    paths: string[],
    trans: TranslationBundle
  ): React.ReactElement {
    const path = paths[0] ?? 'PATH';
    const text = [
      trans.__(
        'It keeps other versions of: %1.',
        paths.join(', ') || trans.__('some files')
      ),
      trans.__(
        'It is in this workspace too. In a terminal, see a version with'
      ),
      `    git show '${name}:${path}'`,
      trans.__('or take it back into your workspace with'),
      `    git restore --source='${name}' -- '${path}'`
    ].join('\n');
    return React.createElement(
      'pre',
      { className: 'jp-gitsync-RescueHowTo' },
      text
    );
  }

  export function addShowDetails(context: IContext): void {
    const { commands, statusItem, trans } = context;
    commands.addCommand(CommandIDs.showDetails, {
      label: label(trans.__('Git Sync: Show status'), trans.__('Show status')),
      caption: trans.__('Show the Git Sync status and its actions'),
      describedBy: COMMAND_ARGS,
      isEnabled: () => statusItem() !== null,
      execute: () => {
        statusItem()?.open();
      }
    });
  }
}
