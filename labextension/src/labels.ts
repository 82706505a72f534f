import { Time } from '@jupyterlab/coreutils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import type { ISyncStatus, SyncState } from './model';

/**
 * The translation domain of this extension.
 */
export const TRANSLATION_DOMAIN = 'jupyter_gitsync';

/**
 * How a status should look: drives the badge's colour and icon.
 */
export type Tone = 'ok' | 'busy' | 'waiting' | 'warning' | 'danger' | 'off';

/**
 * What the badge shows for one status.
 */
export interface IStatusDescription {
  /**
   * The short text in the status bar.
   */
  label: string;
  /**
   * Full sentences for the tooltip and screen readers.
   */
  title: string;
  tone: Tone;
  /**
   * The state shown, or `unknown` before the server first answered.
   */
  state: SyncState | 'unknown';
}

export interface IDescribeOptions {
  /**
   * The last request error, shown when no status is known.
   */
  requestError?: string | null;
  /**
   * Whether a "sync now" request is in flight.
   */
  syncing?: boolean;
  /**
   * Show times as "3 minutes ago" (true) or as a date and time (false).
   */
  relativeTimes?: boolean;
  /**
   * The translation bundle; defaults to no translation.
   */
  trans?: TranslationBundle;
}

/**
 * Describe a status for the badge.
 */
export function describeStatus(
  status: ISyncStatus | null,
  options: IDescribeOptions = {}
): IStatusDescription {
  const trans = options.trans ?? nullTranslator.load(TRANSLATION_DOMAIN);
  const described = Private.describe(status, options, trans);
  if (
    options.syncing &&
    described.tone !== 'busy' &&
    described.state !== 'disabled'
  ) {
    return {
      state: described.state,
      tone: 'busy',
      label: trans.__('Syncing…'),
      title: trans.__('Git Sync is saving the workspace to the remote now.')
    };
  }
  return described;
}

/**
 * Format a server timestamp.
 */
export function formatTime(value: string, relative: boolean): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return value;
  }
  return relative ? Time.formatHuman(date) : Time.format(date);
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  /**
   * Join translated sentences into one tooltip.
   */
  function sentences(...parts: (string | null)[]): string {
    return parts.filter((part): part is string => !!part).join(' ');
  }

  export function describe(
    status: ISyncStatus | null,
    options: IDescribeOptions,
    trans: TranslationBundle
  ): IStatusDescription {
    if (!status) {
      if (options.requestError) {
        return {
          state: 'unknown',
          tone: 'off',
          label: trans.__('Sync unavailable'),
          title: sentences(
            trans.__(
              'Git Sync could not reach the server: %1',
              options.requestError
            ),
            trans.__('Press Enter to try again.')
          )
        };
      }
      return {
        state: 'unknown',
        tone: 'off',
        label: trans.__('Sync…'),
        title: trans.__('Git Sync is loading the workspace status.')
      };
    }

    const relative = options.relativeTimes ?? true;
    const branch = status.branch
      ? trans.__('Branch: %1.', status.branch)
      : null;
    const lastSynced = status.last_synced_at
      ? trans.__('Last synced %1.', formatTime(status.last_synced_at, relative))
      : null;
    const serverError = status.error ? status.error.message : null;
    const action = trans.__('Press Enter to sync now.');
    const waiting = status.unpushed_commits;
    const pending = status.pending_paths.length;
    const make = (
      tone: Tone,
      label: string,
      ...parts: (string | null)[]
    ): IStatusDescription => ({
      state: status.state,
      tone,
      label,
      title: sentences(...parts)
    });

    switch (status.state) {
      case 'disabled':
        return make(
          'off',
          trans.__('Sync off'),
          trans.__('Git Sync is turned off for this workspace.')
        );
      case 'starting':
        return make(
          'busy',
          trans.__('Starting sync…'),
          trans.__('Git Sync is starting.')
        );
      case 'pending':
        return make(
          'waiting',
          trans.__('Changes waiting'),
          pending > 0
            ? trans._n(
                '%1 changed file is waiting to be saved to git.',
                '%1 changed files are waiting to be saved to git.',
                pending
              )
            : trans.__('Changes are waiting to be saved to git.'),
          branch,
          lastSynced,
          action
        );
      case 'snapshotting':
        return make(
          'busy',
          trans.__('Syncing…'),
          trans.__('Git Sync is taking a snapshot of the workspace.'),
          branch,
          lastSynced
        );
      case 'unpushed':
        return make(
          'waiting',
          trans.__('Changes waiting'),
          waiting > 0
            ? trans._n(
                '%1 snapshot is waiting to be pushed to the remote.',
                '%1 snapshots are waiting to be pushed to the remote.',
                waiting
              )
            : trans.__('Snapshots are waiting to be pushed to the remote.'),
          branch,
          lastSynced,
          action
        );
      case 'pushing':
        return make(
          'busy',
          trans.__('Syncing…'),
          trans.__('Git Sync is pushing to the remote.'),
          branch,
          lastSynced
        );
      case 'synced':
        return make(
          'ok',
          trans.__('Saved'),
          trans.__('All changes are saved to the remote.'),
          branch,
          lastSynced,
          action
        );
      case 'offline':
        return make(
          'warning',
          waiting > 0
            ? trans._n(
                'Offline · %1 snapshot waiting',
                'Offline · %1 snapshots waiting',
                waiting
              )
            : trans.__('Offline'),
          waiting > 0
            ? trans._n(
                'The remote cannot be reached; %1 snapshot will be pushed when it is back.',
                'The remote cannot be reached; %1 snapshots will be pushed when it is back.',
                waiting
              )
            : trans.__(
                'The remote cannot be reached; changes will be pushed when it is back.'
              ),
          serverError,
          lastSynced,
          action
        );
      case 'auth-required':
        return make(
          'warning',
          trans.__('Sign-in required'),
          trans.__(
            'The remote refused the credentials; sign in again to resume syncing.'
          ),
          serverError,
          lastSynced,
          action
        );
      case 'conflict':
        return make(
          'danger',
          trans.__('Conflict'),
          trans.__(
            'The remote has changes that conflict with this workspace; syncing is paused until the conflict is resolved.'
          ),
          serverError,
          branch,
          lastSynced,
          action
        );
      case 'error':
        return make(
          'danger',
          trans.__('Sync error'),
          trans.__('Git Sync stopped because of an error.'),
          serverError,
          lastSynced,
          action
        );
      case 'stopping':
        return make(
          'busy',
          trans.__('Stopping…'),
          trans.__('Git Sync is stopping.')
        );
      default:
        return make(
          'off',
          trans.__('Sync: %1', String(status.state)),
          trans.__('Git Sync reports the state "%1".', String(status.state)),
          lastSynced,
          action
        );
    }
  }
}
