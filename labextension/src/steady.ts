import type { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import type { ISyncStatus, SyncState, SyncStatusModel } from './model';

/**
 * States that a quick sync passes through in a blink: once shown they stay
 * at least `minBusyMs`, so the spinner does not flash.
 */
const TRANSIENT_STATES: ReadonlySet<SyncState> = new Set<SyncState>([
  'snapshotting',
  'pushing'
]);

/**
 * Waiting states that a quick sync passes through between two transient
 * ones (a snapshot waiting for its push slot): after a transient state they
 * are shown only when they last `settleMs`.
 */
const SETTLING_STATES: ReadonlySet<SyncState> = new Set<SyncState>([
  'pending',
  'unpushed'
]);

/**
 * The status to show: the model's status, smoothed so that a fast sync
 * reads as one "Syncing…" followed by "Saved" instead of a flicker of
 * states.
 *
 * Changes within the same state (new pending paths, restore progress) are
 * passed on at once; only changes of state are held back, and never for
 * longer than `minBusyMs + settleMs`.
 */
export class SteadyStatus implements IDisposable {
  constructor(options: SteadyStatus.IOptions) {
    this._model = options.model;
    this._minBusyMs = options.minBusyMs ?? 800;
    this._settleMs = options.settleMs ?? 600;
    this._now = options.now ?? (() => Date.now());
    this._latest = this._model.status;
    this._shown = this._latest;
    this._shownAt = this._now();
    this._latestAt = this._shownAt;
    this._model.changed.connect(this._onModelChanged, this);
  }

  /**
   * The status to show (`null` until the server first answered).
   */
  get status(): ISyncStatus | null {
    return this._shown;
  }

  /**
   * Emitted when `status` changes.
   */
  get changed(): ISignal<this, ISyncStatus | null> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearTimer();
    this._model.changed.disconnect(this._onModelChanged, this);
    Signal.clearData(this);
  }

  private _onModelChanged(): void {
    const status = this._model.status;
    if (status?.state !== this._latest?.state) {
      this._latestAt = this._now();
    }
    this._latest = status;
    this._reconsider();
  }

  private _reconsider(): void {
    this._clearTimer();
    const next = this._latest;
    const shown = this._shown;
    if (!next || !shown || next.state === shown.state) {
      this._show(next, shown?.state === next?.state);
      return;
    }
    let until = 0;
    if (TRANSIENT_STATES.has(shown.state)) {
      until = this._shownAt + this._minBusyMs;
      if (SETTLING_STATES.has(next.state)) {
        until = Math.max(until, this._latestAt + this._settleMs);
      }
    }
    const wait = until - this._now();
    if (wait <= 0) {
      this._show(next, false);
    } else {
      this._timer = setTimeout(() => {
        this._timer = null;
        this._reconsider();
      }, wait);
    }
  }

  private _show(status: ISyncStatus | null, sameState: boolean): void {
    if (status === this._shown) {
      return;
    }
    if (!sameState) {
      this._shownAt = this._now();
    }
    this._shown = status;
    this._changed.emit(status);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _changed = new Signal<this, ISyncStatus | null>(this);
  private _isDisposed = false;
  private _latest: ISyncStatus | null;
  private _latestAt: number;
  private _minBusyMs: number;
  private _model: SyncStatusModel;
  private _now: () => number;
  private _settleMs: number;
  private _shown: ISyncStatus | null;
  private _shownAt: number;
  private _timer: ReturnType<typeof setTimeout> | null = null;
}

/**
 * A namespace for `SteadyStatus` statics.
 */
export namespace SteadyStatus {
  export interface IOptions {
    model: SyncStatusModel;
    /**
     * How long snapshotting or pushing stays shown at least; 800 ms.
     */
    minBusyMs?: number;
    /**
     * How long a waiting state that follows them must last to be shown;
     * 600 ms.
     */
    settleMs?: number;
    /**
     * The clock (for tests).
     */
    now?: () => number;
  }
}
