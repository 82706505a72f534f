import type { IDisposable } from '@lumino/disposable';

import type { SyncState, SyncStatusModel } from './model';

/**
 * States in which changes have not reached the remote yet.
 */
export const UNSAVED_STATES: ReadonlySet<SyncState> = new Set<SyncState>([
  'pending',
  'snapshotting',
  'unpushed',
  'pushing',
  'offline',
  'auth-required',
  'conflict'
]);

/**
 * Whether closing the page now would leave changes that are not on the
 * remote.
 */
export function hasUnsavedChanges(model: SyncStatusModel): boolean {
  const state = model.status?.state;
  return model.isSyncing || (!!state && UNSAVED_STATES.has(state));
}

/**
 * Asks the browser to warn before the tab is closed while changes have not
 * reached the remote (`beforeunload`).
 */
export class UnloadGuard implements IDisposable {
  constructor(options: UnloadGuard.IOptions) {
    this._model = options.model;
    this._enabled = options.enabled ?? (() => true);
    this._target = options.target ?? window;
    this._target.addEventListener('beforeunload', this._onBeforeUnload);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._target.removeEventListener('beforeunload', this._onBeforeUnload);
  }

  private _onBeforeUnload = (event: Event): void => {
    if (!this._enabled() || !hasUnsavedChanges(this._model)) {
      return;
    }
    // Browsers show their own text; both calls are needed across browsers.
    event.preventDefault();
    (event as BeforeUnloadEvent).returnValue = '';
  };

  private _enabled: () => boolean;
  private _isDisposed = false;
  private _model: SyncStatusModel;
  private _target: EventTarget;
}

/**
 * A namespace for `UnloadGuard` statics.
 */
export namespace UnloadGuard {
  export interface IOptions {
    model: SyncStatusModel;
    /**
     * Read at unload time (the setting may change).
     */
    enabled?: () => boolean;
    /**
     * Where to listen; `window` by default.
     */
    target?: EventTarget;
  }
}
