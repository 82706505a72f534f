import type { Event, ServerConnection } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './request';

/**
 * The schema id of the status events emitted by the server extension.
 */
export const STATUS_EVENT_SCHEMA_ID =
  'https://events.jupyter.org/jupyter_gitsync/status/v1';

/**
 * Every state the sync engine can be in.
 */
export const SYNC_STATES = [
  'disabled',
  'starting',
  'pending',
  'snapshotting',
  'unpushed',
  'pushing',
  'synced',
  'offline',
  'auth-required',
  'conflict',
  'error',
  'stopping'
] as const;

/**
 * A state of the sync engine.
 */
export type SyncState = (typeof SYNC_STATES)[number];

/**
 * A path the server left out of the snapshot, and why.
 */
export interface ISkippedPath {
  path: string;
  reason: string;
}

/**
 * The last error the sync engine met.
 */
export interface ISyncError {
  kind: string;
  message: string;
}

/**
 * The status document served by `GET gitsync/status` and `POST gitsync/sync`.
 */
export interface ISyncStatus {
  state: SyncState;
  branch: string | null;
  remote_url: string | null;
  head: string | null;
  remote_head: string | null;
  unpushed_commits: number;
  pending_paths: string[];
  last_synced_at: string | null;
  skipped: ISkippedPath[];
  error: ISyncError | null;
}

/**
 * Whether a string is one of the known sync states.
 */
export function isSyncState(value: unknown): value is SyncState {
  return (
    typeof value === 'string' &&
    (SYNC_STATES as readonly string[]).includes(value)
  );
}

/**
 * Holds the latest sync status of the workspace.
 *
 * It asks the server once when created, then follows the server's status
 * events; it never polls. HTTP responses never overwrite a status that came
 * from an event received after the request was sent.
 */
export class SyncStatusModel implements IDisposable {
  constructor(options: SyncStatusModel.IOptions = {}) {
    this._serverSettings = options.serverSettings;
    this._request = options.request ?? requestAPI;
    this._events = options.events ?? null;
    if (this._events) {
      this._events.stream.connect(this._onEvent, this);
    }
    this.ready = this.refresh().then(
      () => undefined,
      () => undefined
    );
  }

  /**
   * Settles once the first status request has finished, whatever its outcome.
   */
  readonly ready: Promise<void>;

  /**
   * The latest known status, `null` until the server first answers.
   */
  get status(): ISyncStatus | null {
    return this._status;
  }

  /**
   * The message of the last failed request, `null` after a success.
   */
  get requestError(): string | null {
    return this._requestError;
  }

  /**
   * Whether a "sync now" request is in flight.
   */
  get isSyncing(): boolean {
    return this._syncing !== null;
  }

  /**
   * Emitted whenever `status`, `requestError` or `isSyncing` changes.
   */
  get changed(): ISignal<this, SyncStatusModel.IChangedArgs> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Ask the server for the current status.
   */
  async refresh(): Promise<ISyncStatus> {
    return this._call('status', { method: 'GET' });
  }

  /**
   * Ask the server to snapshot and push now; resolves with the status it
   * answers. Calls made while one is in flight share its result.
   */
  syncNow(): Promise<ISyncStatus> {
    if (this._syncing) {
      return this._syncing;
    }
    const syncing = this._call('sync', { method: 'POST' }).finally(() => {
      this._syncing = null;
      this._emit(this._status?.state ?? null, 'request');
    });
    this._syncing = syncing;
    this._emit(this._status?.state ?? null, 'request');
    return syncing;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    if (this._events) {
      this._events.stream.disconnect(this._onEvent, this);
    }
    Signal.clearData(this);
  }

  private async _call(
    endPoint: string,
    init: RequestInit
  ): Promise<ISyncStatus> {
    const stamp = ++this._clock;
    let status: ISyncStatus;
    try {
      const raw = await this._request<unknown>(
        endPoint,
        init,
        this._serverSettings
      );
      const parsed = Private.parseStatus(raw);
      if (!parsed) {
        throw new Error(
          `Git Sync: the server answered gitsync/${endPoint} with an unexpected document.`
        );
      }
      status = parsed;
    } catch (error) {
      if (!this._isDisposed && stamp > this._appliedStamp) {
        this._requestError = Private.messageOf(error);
        this._emit(this._status?.state ?? null, 'request');
      }
      throw error;
    }
    this._apply(status, stamp, 'request');
    return status;
  }

  private _onEvent(_: unknown, emission: Event.Emission): void {
    if (emission.schema_id !== STATUS_EVENT_SCHEMA_ID) {
      return;
    }
    const status = Private.parseStatus(emission);
    if (status) {
      this._apply(status, ++this._clock, 'event');
    }
  }

  private _apply(
    status: ISyncStatus,
    stamp: number,
    source: SyncStatusModel.Source
  ): void {
    if (this._isDisposed || stamp < this._appliedStamp) {
      return;
    }
    this._appliedStamp = stamp;
    const previous = this._status?.state ?? null;
    this._status = status;
    this._requestError = null;
    this._emit(previous, source);
  }

  private _emit(
    previousState: SyncState | null,
    source: SyncStatusModel.Source
  ): void {
    if (this._isDisposed) {
      return;
    }
    this._changed.emit({ previousState, status: this._status, source });
  }

  private _appliedStamp = 0;
  private _changed = new Signal<this, SyncStatusModel.IChangedArgs>(this);
  private _clock = 0;
  private _events: SyncStatusModel.IEventSource | null;
  private _isDisposed = false;
  private _request: SyncStatusModel.RequestFunction;
  private _requestError: string | null = null;
  private _serverSettings: ServerConnection.ISettings | undefined;
  private _status: ISyncStatus | null = null;
  private _syncing: Promise<ISyncStatus> | null = null;
}

/**
 * A namespace for `SyncStatusModel` statics.
 */
export namespace SyncStatusModel {
  /**
   * Where a status update came from.
   */
  export type Source = 'request' | 'event';

  /**
   * The function used to call the server (injectable for tests).
   */
  export type RequestFunction = <T>(
    endPoint: string,
    init?: RequestInit,
    settings?: ServerConnection.ISettings
  ) => Promise<T>;

  /**
   * Anything with an event stream, e.g. `app.serviceManager.events`.
   */
  export interface IEventSource {
    readonly stream: Event.Stream;
  }

  export interface IOptions {
    /**
     * The event bus to follow; without it the model only knows what its
     * requests return.
     */
    events?: IEventSource | null;
    /**
     * The server settings for requests; defaults to
     * `ServerConnection.makeSettings()`.
     */
    serverSettings?: ServerConnection.ISettings;
    /**
     * Replaces `requestAPI`.
     */
    request?: RequestFunction;
  }

  export interface IChangedArgs {
    /**
     * The state before this change (`null` if none was known).
     */
    previousState: SyncState | null;
    /**
     * The status now.
     */
    status: ISyncStatus | null;
    source: Source;
  }
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  /**
   * Read a status document (or event data), filling in what is missing.
   *
   * Returns `null` when there is no usable `state`. An unknown state string is
   * kept so that a newer server still shows something.
   */
  export function parseStatus(raw: unknown): ISyncStatus | null {
    if (typeof raw !== 'object' || raw === null) {
      return null;
    }
    const data = raw as { [key: string]: unknown };
    if (typeof data.state !== 'string' || data.state.length === 0) {
      return null;
    }
    return {
      state: data.state as SyncState,
      branch: stringOrNull(data.branch),
      remote_url: stringOrNull(data.remote_url),
      head: stringOrNull(data.head),
      remote_head: stringOrNull(data.remote_head),
      unpushed_commits:
        typeof data.unpushed_commits === 'number' &&
        Number.isFinite(data.unpushed_commits)
          ? Math.max(0, data.unpushed_commits)
          : 0,
      pending_paths: Array.isArray(data.pending_paths)
        ? data.pending_paths.filter((p): p is string => typeof p === 'string')
        : [],
      last_synced_at: stringOrNull(data.last_synced_at),
      skipped: Array.isArray(data.skipped)
        ? data.skipped.filter(isSkipped).map(s => ({
            path: s.path,
            reason: s.reason
          }))
        : [],
      error: isError(data.error)
        ? { kind: data.error.kind, message: data.error.message }
        : null
    };
  }

  export function messageOf(error: unknown): string {
    if (error instanceof Error && error.message) {
      return error.message;
    }
    return String(error);
  }

  function stringOrNull(value: unknown): string | null {
    return typeof value === 'string' ? value : null;
  }

  function isSkipped(value: unknown): value is ISkippedPath {
    const v = value as ISkippedPath | null;
    return (
      typeof v === 'object' &&
      v !== null &&
      typeof v.path === 'string' &&
      typeof v.reason === 'string'
    );
  }

  function isError(value: unknown): value is ISyncError {
    const v = value as ISyncError | null;
    return (
      typeof v === 'object' &&
      v !== null &&
      typeof v.kind === 'string' &&
      typeof v.message === 'string'
    );
  }
}
