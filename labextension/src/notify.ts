import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import type { TranslationBundle } from '@jupyterlab/translation';

import type { IForkInfo } from './api';
import { describeStatus } from './labels';
import { ISyncStatus, needsFork, SyncState, SyncStatusModel } from './model';

/**
 * States that need the user's attention.
 */
const ALERT_STATES: ReadonlySet<SyncState> = new Set<SyncState>([
  'auth-required',
  'conflict',
  'error'
]);

/**
 * States in which whatever was alerted is over.
 */
const SOLVED_STATES: ReadonlySet<SyncState> = new Set<SyncState>([
  'synced',
  'unpushed',
  'disabled'
]);

/**
 * What the notifications can offer as buttons.
 */
export interface INotifierActions {
  /**
   * Open the sign-in dialog.
   */
  signIn?: () => void;
  /**
   * Fork the repository to the user's account (offered instead of signing
   * in when the user may not push).
   */
  fork?: () => void;
  /**
   * Show the details popover.
   */
  showDetails?: () => void;
}

/**
 * Shows notifications for what needs the user's attention: a state that
 * stops syncing (sign-in required or expired, conflict, error), a notice
 * (e.g. a restore that kept local files), and files that are not synced
 * (too large, or looking like secrets).
 */
export class AlertNotifier {
  /**
   * @param enabled Read on every change, so a settings change takes effect
   *   at once.
   */
  constructor(
    model: SyncStatusModel,
    trans: TranslationBundle,
    enabled: () => boolean,
    actions: INotifierActions = {}
  ) {
    this._model = model;
    this._trans = trans;
    this._enabled = enabled;
    this._actions = actions;
    model.changed.connect(this._onChanged, this);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._model.changed.disconnect(this._onChanged, this);
  }

  private _onChanged(
    _: SyncStatusModel,
    change: SyncStatusModel.IChangedArgs
  ): void {
    const status = change.status;
    if (!status) {
      return;
    }
    // Remember what was seen even while notifications are off, so turning
    // them on does not replay old news.
    const notice = this._newNotice(status);
    const skipped = this._newSkipped(status);
    if (!this._enabled()) {
      return;
    }
    this._followProblem(status, change);
    if (notice) {
      this._notifyNotice(status);
    }
    if (skipped.length > 0) {
      this._notifySkipped(skipped);
    }
  }

  /**
   * One alert per problem: a save in between (snapshotting, then back to
   * sign-in required) is no new problem; the alert goes once syncing works.
   */
  private _followProblem(
    status: ISyncStatus,
    change: SyncStatusModel.IChangedArgs
  ): void {
    if (ALERT_STATES.has(status.state)) {
      const problem = `${status.state} ${status.error?.kind ?? ''} ${
        status.error?.message ?? ''
      }`;
      if (
        change.source === 'event' &&
        status.state !== change.previousState &&
        problem !== this._problem
      ) {
        this._problem = problem;
        this._dismissAlert();
        this._alertId = this._notifyState(status);
      }
    } else if (SOLVED_STATES.has(status.state)) {
      this._problem = null;
      this._dismissAlert();
    }
  }

  private _dismissAlert(): void {
    if (this._alertId !== null) {
      Notification.dismiss(this._alertId);
      this._alertId = null;
    }
  }

  private _notifyState(status: ISyncStatus): string {
    const trans = this._trans;
    const { title } = describeStatus(status, { relativeTimes: true, trans });
    const actions: Notification.IAction[] = [];
    if (needsFork(status) && this._actions.fork) {
      actions.push({
        label: trans.__('Fork to my account'),
        callback: this._actions.fork,
        displayType: 'accent'
      });
    } else if (status.state === 'auth-required' && this._actions.signIn) {
      actions.push({
        label: trans.__('Sign in'),
        callback: this._actions.signIn,
        displayType: 'accent'
      });
    }
    if (this._actions.showDetails) {
      actions.push({
        label: trans.__('Details'),
        callback: this._actions.showDetails
      });
    }
    return status.state === 'auth-required'
      ? Notification.warning(title, { autoClose: false, actions })
      : Notification.error(title, { autoClose: false, actions });
  }

  private _notifyNotice(status: ISyncStatus): void {
    const notice = status.notice!;
    const trans = this._trans;
    const message = notice.branch
      ? trans.__(
          '%1 The other versions are on the branch %2.',
          notice.message,
          notice.branch
        )
      : notice.message;
    Notification.warning(message, {
      autoClose: false,
      actions: this._actions.showDetails
        ? [{ label: trans.__('Details'), callback: this._actions.showDetails }]
        : []
    });
  }

  private _notifySkipped(skipped: ISyncStatus['skipped']): void {
    const trans = this._trans;
    const first = skipped[0];
    const message =
      skipped.length === 1
        ? trans.__('Git Sync does not sync %1: %2.', first.path, first.reason)
        : trans.__(
            'Git Sync does not sync %1 files, e.g. %2: %3.',
            skipped.length,
            first.path,
            first.reason
          );
    Notification.warning(message, {
      autoClose: 10000,
      actions: this._actions.showDetails
        ? [{ label: trans.__('Details'), callback: this._actions.showDetails }]
        : []
    });
  }

  /**
   * Whether the status carries a notice not seen before.
   */
  private _newNotice(status: ISyncStatus): boolean {
    const key = status.notice
      ? `${status.notice.kind}\n${status.notice.message}\n${status.notice.branch}`
      : null;
    const isNew = key !== null && key !== this._noticeKey;
    this._noticeKey = key;
    return isNew;
  }

  /**
   * The skipped paths not reported before.
   */
  private _newSkipped(status: ISyncStatus): ISyncStatus['skipped'] {
    const fresh = status.skipped.filter(
      item => !this._skipped.has(`${item.path}\n${item.reason}`)
    );
    for (const item of fresh) {
      this._skipped.add(`${item.path}\n${item.reason}`);
    }
    return fresh;
  }

  private _actions: INotifierActions;
  private _alertId: string | null = null;
  private _enabled: () => boolean;
  private _isDisposed = false;
  private _model: SyncStatusModel;
  private _problem: string | null = null;
  private _noticeKey: string | null = null;
  private _skipped = new Set<string>();
  private _trans: TranslationBundle;
}

/**
 * Tell the user that a "sync now" request failed.
 */
export function notifySyncFailed(
  error: unknown,
  trans: TranslationBundle
): void {
  const message = error instanceof Error ? error.message : String(error);
  Notification.error(trans.__('Git Sync could not sync now: %1', message), {
    autoClose: 8000
  });
}

/**
 * Tell the user that the repository was forked and where their work goes
 * now, with a button to open the fork.
 *
 * @param open Opens a URL in a new tab (replaceable for tests).
 */
export function notifyForked(
  fork: IForkInfo,
  trans: TranslationBundle,
  open: (url: string) => void = Private.openInNewTab
): void {
  const htmlUrl = fork.html_url;
  Notification.success(
    fork.full_name
      ? trans.__('Forked to %1; your work now syncs there.', fork.full_name)
      : trans.__('Forked the repository; your work now syncs there.'),
    {
      autoClose: 10000,
      actions: htmlUrl
        ? [
            {
              label: trans.__('Open on GitHub'),
              caption: htmlUrl,
              callback: () => open(htmlUrl)
            }
          ]
        : []
    }
  );
}

/**
 * Tell the user that forking failed, in the server's words; offer to sign in
 * when the server says nobody is (409).
 */
export function notifyForkFailed(
  error: unknown,
  trans: TranslationBundle,
  actions: Pick<INotifierActions, 'signIn'> = {}
): void {
  const message = error instanceof Error ? error.message : String(error);
  const signIn =
    error instanceof ServerConnection.ResponseError &&
    error.response.status === 409 &&
    actions.signIn
      ? actions.signIn
      : null;
  Notification.error(trans.__('Could not fork the repository: %1', message), {
    autoClose: signIn ? false : 10000,
    actions: signIn
      ? [
          {
            label: trans.__('Sign in'),
            callback: signIn,
            displayType: 'accent'
          }
        ]
      : []
  });
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  export function openInNewTab(url: string): void {
    window.open(url, '_blank', 'noopener,noreferrer');
  }
}
