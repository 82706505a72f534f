import { Time } from '@jupyterlab/coreutils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import type { IDayGroup, ITimed, RefNameProblem } from './history';
import { IRestoreProgress, ISyncStatus, needsFork, SyncState } from './model';
import { parseRemote, remoteName } from './remote';

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
  /**
   * The time to measure ages against; defaults to now.
   */
  now?: number;
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
 * A short age for the status bar: "just now", "12 s ago", "3 min ago",
 * "2 h ago", or the date for older times. Without `relative`, the time of
 * day (or the date when it was not today).
 */
export function formatAge(
  value: string,
  options: { relative?: boolean; now?: number; trans?: TranslationBundle } = {}
): string {
  const trans = options.trans ?? nullTranslator.load(TRANSLATION_DOMAIN);
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return value;
  }
  const now = options.now ?? Date.now();
  if (options.relative === false) {
    const sameDay = new Date(now).toDateString() === date.toDateString();
    return sameDay
      ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : date.toLocaleDateString();
  }
  const seconds = Math.max(0, Math.floor((now - date.getTime()) / 1000));
  if (seconds < 5) {
    return trans.__('just now');
  }
  if (seconds < 60) {
    return trans.__('%1 s ago', seconds);
  }
  if (seconds < 3600) {
    return trans.__('%1 min ago', Math.floor(seconds / 60));
  }
  if (seconds < 86400) {
    return trans.__('%1 h ago', Math.floor(seconds / 3600));
  }
  return date.toLocaleDateString();
}

/**
 * Milliseconds until `formatAge` would say something else, or `null` when it
 * will not change any more (a date).
 */
export function msUntilAgeChanges(
  value: string,
  now = Date.now()
): number | null {
  const time = new Date(value).getTime();
  if (Number.isNaN(time)) {
    return null;
  }
  const age = Math.max(0, now - time);
  const next = (step: number): number => step - (age % step);
  if (age < 5000) {
    return 5000 - age;
  }
  if (age < 60000) {
    return next(5000);
  }
  if (age < 3600000) {
    return next(60000);
  }
  if (age < 86400000) {
    return next(3600000);
  }
  return null;
}

/**
 * Describe how far a restore has come, e.g. "Downloading 120 of 300 objects
 * (1.2 MB)".
 */
export function describeProgress(
  progress: IRestoreProgress | null,
  trans: TranslationBundle = nullTranslator.load(TRANSLATION_DOMAIN)
): { percent: number | null; text: string } {
  if (!progress) {
    return { percent: null, text: trans.__('Restoring the workspace…') };
  }
  const percent =
    progress.total > 0
      ? Math.min(100, Math.floor((progress.done / progress.total) * 100))
      : null;
  const size = progress.bytes > 0 ? ` (${formatBytes(progress.bytes)})` : '';
  if (progress.phase === 'checkout') {
    return {
      percent,
      text:
        progress.total > 0
          ? trans.__('Writing files: %1 of %2', progress.done, progress.total)
          : trans.__('Writing files…')
    };
  }
  return {
    percent,
    text:
      (progress.total > 0
        ? trans.__(
            'Downloading from the remote: %1 of %2 objects',
            progress.done,
            progress.total
          )
        : trans.__('Downloading from the remote…')) + size
  };
}

/**
 * The heading of a day of history: "Today", "Yesterday", or the date
 * ("Monday, November 30, 2026" in the browser's language).
 */
export function dayHeading<T extends ITimed>(
  group: IDayGroup<T>,
  trans: TranslationBundle = nullTranslator.load(TRANSLATION_DOMAIN)
): string {
  switch (group.kind) {
    case 'today':
      return trans.__('Today');
    case 'yesterday':
      return trans.__('Yesterday');
    default:
      return group.date
        ? group.date.toLocaleDateString(undefined, {
            weekday: 'long',
            year: 'numeric',
            month: 'long',
            day: 'numeric'
          })
        : trans.__('Unknown date');
  }
}

/**
 * The time of day of a snapshot ("14:32"), or the text as given when it
 * cannot be read.
 */
export function formatClock(value: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return value;
  }
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * A snapshot's time with its date, for notifications and titles
 * ("Nov 30, 14:32").
 */
export function formatMoment(value: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return value;
  }
  return date.toLocaleString([], {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit'
  });
}

/**
 * Which session made a snapshot: "this session", its label, or `null` when
 * the server does not know.
 */
export function describeSession(
  entry: { session: string | null; this_session: boolean },
  trans: TranslationBundle = nullTranslator.load(TRANSLATION_DOMAIN)
): string | null {
  if (entry.this_session) {
    return trans.__('this session');
  }
  return entry.session;
}

/**
 * Why git refuses a reference name, in plain words.
 */
export function describeRefNameProblem(
  problem: RefNameProblem,
  trans: TranslationBundle = nullTranslator.load(TRANSLATION_DOMAIN)
): string {
  switch (problem.kind) {
    case 'empty':
      return trans.__('Enter a name.');
    case 'whitespace':
      return trans.__('A name cannot contain spaces; use - or _ instead.');
    case 'control':
      return trans.__('A name cannot contain control characters.');
    case 'character':
      return trans.__('A name cannot contain "%1".', problem.character);
    case 'double-dot':
      return trans.__('A name cannot contain "..".');
    case 'at-brace':
      return trans.__('A name cannot contain "@{".');
    case 'only-at':
      return trans.__('A name cannot be "@" alone.');
    case 'slash':
      return trans.__('A name cannot start or end with "/" or contain "//".');
    case 'dot-start':
      return trans.__('A name (or a part between "/") cannot start with ".".');
    case 'dot-end':
      return trans.__('A name cannot end with ".".');
    case 'lock-end':
      return trans.__(
        'A name (or a part between "/") cannot end with ".lock".'
      );
    case 'reserved':
      return trans.__(
        'Branches starting with "%1" are Git Sync\'s own; choose another name.',
        problem.prefix
      );
    case 'has-slash':
      return trans.__('A version name cannot contain "/".');
    case 'too-long':
      return trans.__(
        'A name can have at most %1 characters.',
        problem.maxLength
      );
  }
}

/**
 * A byte count for people: "812 B", "1.2 MB".
 */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
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
            trans.__('Press Enter for details.')
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
    const remote = parseRemote(status.remote_url);
    const where = remoteName(remote);
    const branch = status.branch
      ? trans.__('Branch: %1.', status.branch)
      : null;
    const lastSynced = status.last_synced_at
      ? trans.__('Last synced %1.', formatTime(status.last_synced_at, relative))
      : null;
    const age = status.last_synced_at
      ? formatAge(status.last_synced_at, {
          relative,
          now: options.now,
          trans
        })
      : null;
    const serverError = status.error ? status.error.message : null;
    const action = trans.__('Press Enter for details and actions.');
    const waiting = status.unpushed_commits;
    const pending = status.pending_count;
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
      case 'restoring': {
        const progress = describeProgress(status.progress, trans);
        return make(
          'busy',
          progress.percent !== null
            ? trans.__('Restoring… %1%', progress.percent)
            : trans.__('Restoring…'),
          trans.__(
            'Git Sync is bringing the workspace up to the snapshot on the remote.'
          ),
          progress.text + '.',
          branch
        );
      }
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
          where && age
            ? trans.__('Saved to %1 · %2', where, age)
            : where
              ? trans.__('Saved to %1', where)
              : trans.__('Saved'),
          where
            ? trans.__('All changes are saved to %1.', where)
            : trans.__('All changes are saved to the remote.'),
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
      case 'auth-required': {
        const keptUntilThen =
          waiting > 0
            ? trans._n(
                '%1 snapshot is kept here until then.',
                '%1 snapshots are kept here until then.',
                waiting
              )
            : null;
        if (needsFork(status)) {
          // The server's message names its end point; say it in plain words.
          return make(
            'warning',
            trans.__('No push access'),
            remote
              ? trans.__('You may not push to %1.', remote.path)
              : trans.__('You may not push to this repository.'),
            trans.__(
              'Fork it to your GitHub account to keep your work synced there.'
            ),
            keptUntilThen,
            lastSynced,
            action
          );
        }
        if (
          status.error?.kind === 'no-token' ||
          status.error?.kind === 'no-login'
        ) {
          // Nobody gave a token yet (or it names nobody): a call to sign in,
          // with the server's reason (e.g. that Binder keeps the work only in
          // this session until then); never a word of refusal.
          return make(
            'warning',
            trans.__('Sign in to keep your work'),
            serverError,
            keptUntilThen,
            action
          );
        }
        return make(
          'warning',
          trans.__('Sign-in required'),
          status.error
            ? trans.__(
                'The remote refused the credentials; sign in again to resume syncing.'
              )
            : trans.__('Sign in to save the workspace to the remote.'),
          keptUntilThen,
          serverError,
          lastSynced,
          action
        );
      }
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
