import { Notification } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';

import { describeStatus } from './labels';
import { SyncState, SyncStatusModel } from './model';

/**
 * States that need the user's attention.
 */
const ALERT_STATES: ReadonlySet<SyncState> = new Set<SyncState>([
  'auth-required',
  'conflict',
  'error'
]);

/**
 * Shows a notification when the server reports a state that needs attention.
 */
export class AlertNotifier {
  /**
   * @param enabled Read on every change, so a settings change takes effect
   *   at once.
   */
  constructor(
    model: SyncStatusModel,
    trans: TranslationBundle,
    enabled: () => boolean
  ) {
    this._model = model;
    this._trans = trans;
    this._enabled = enabled;
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
    if (
      !this._enabled() ||
      change.source !== 'event' ||
      !status ||
      status.state === change.previousState ||
      !ALERT_STATES.has(status.state)
    ) {
      return;
    }
    const { title } = describeStatus(status, {
      relativeTimes: true,
      trans: this._trans
    });
    if (status.state === 'auth-required') {
      Notification.warning(title, { autoClose: false });
    } else {
      Notification.error(title, { autoClose: false });
    }
  }

  private _enabled: () => boolean;
  private _isDisposed = false;
  private _model: SyncStatusModel;
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
