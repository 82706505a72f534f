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
  'restoring',
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
 * How far a restore has come (while the state is `restoring`).
 */
export interface IRestoreProgress {
  /**
   * `fetch` (downloading objects) or `checkout` (writing files).
   */
  phase: string;
  done: number;
  total: number;
  bytes: number;
}

/**
 * Something the user must know that is not an error, e.g. that a restore
 * kept local files and put the remote's versions on a rescue branch.
 */
export interface ISyncNotice {
  kind: string;
  message: string;
  paths: string[];
  /**
   * The branch that keeps the other versions, if any.
   */
  branch: string | null;
}

/**
 * A rescue branch: where versions that lost a collision are kept.
 */
export interface IRescueBranch {
  name: string;
  /**
   * When it was made (ISO 8601).
   */
  created: string;
  /**
   * The files it is there for.
   */
  paths: string[];
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
  /**
   * Workspace-relative paths changed since the last snapshot (at most 100).
   */
  pending_paths: string[];
  /**
   * How many paths changed since the last snapshot (may exceed the list).
   */
  pending_count: number;
  last_synced_at: string | null;
  skipped: ISkippedPath[];
  error: ISyncError | null;
  progress: IRestoreProgress | null;
  notice: ISyncNotice | null;
  /**
   * The sync branch's rescue branches, newest first.
   */
  rescue_branches: IRescueBranch[];
  /**
   * Set when more rescue branches are kept than expected.
   */
  rescue_message: string | null;
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
 * The error kind the server reports when the signed-in user may not push to
 * the repository (forking it is the way on).
 */
export const PERMISSION_ERROR_KIND = 'permission';

/**
 * Whether the user may not push to the repository and can fork it instead.
 */
export function needsFork(status: ISyncStatus | null | undefined): boolean {
  return status?.error?.kind === PERMISSION_ERROR_KIND;
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
    const [status] = await this._call('status', { method: 'GET' });
    return status;
  }

  /**
   * Ask the server to snapshot and push now; resolves with the status it
   * answers. Calls made while one is in flight share its result.
   */
  syncNow(): Promise<ISyncStatus> {
    if (this._syncing) {
      return this._syncing;
    }
    const syncing = this._call('sync', { method: 'POST' }).then(
      ([status]) => status
    );
    this._syncing = syncing.finally(() => {
      this._syncing = null;
      this._emit(this._status?.state ?? null, 'request');
    });
    this._emit(this._status?.state ?? null, 'request');
    return this._syncing;
  }

  /**
   * Ask the server to save and push the current work, then switch the sync
   * branch to `branch` and restore the workspace from it. Resolves once the
   * server is done; its status is applied like any other.
   *
   * @throws {ServerConnection.ResponseError} with the server's message when
   *   nothing was switched (e.g. the current work could not be pushed).
   */
  async resume(branch: string): Promise<SyncStatusModel.IResumeResult> {
    const [status, raw] = await this._call('resume', {
      method: 'POST',
      body: JSON.stringify({ branch })
    });
    const data = raw as { message?: unknown; branch?: unknown };
    return {
      status,
      message: typeof data.message === 'string' ? data.message : '',
      branch: typeof data.branch === 'string' ? data.branch : branch
    };
  }

  /**
   * Ask the server to delete rescue branch `name`, on the remote and in the
   * workspace's repository. Resolves with the status it answers.
   *
   * @throws {ServerConnection.ResponseError} with the server's message when
   *   nothing was deleted (e.g. the remote is down).
   */
  async deleteRescue(name: string): Promise<ISyncStatus> {
    const [status] = await this._call('rescues/delete', {
      method: 'POST',
      body: JSON.stringify({ name })
    });
    return status;
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

  /**
   * Call an end point that answers with the status (and maybe more); apply
   * the status and return it with the raw answer.
   */
  private async _call(
    endPoint: string,
    init: RequestInit
  ): Promise<[ISyncStatus, unknown]> {
    const stamp = ++this._clock;
    let status: ISyncStatus;
    let raw: unknown;
    try {
      raw = await this._request<unknown>(endPoint, init, this._serverSettings);
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
    return [status, raw];
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

  /**
   * What `resume()` resolves with.
   */
  export interface IResumeResult {
    status: ISyncStatus;
    /**
     * The server's sentence about what happened.
     */
    message: string;
    /**
     * The sync branch now in use.
     */
    branch: string;
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
    const pendingPaths = Array.isArray(data.pending_paths)
      ? data.pending_paths.filter((p): p is string => typeof p === 'string')
      : [];
    return {
      state: data.state as SyncState,
      branch: stringOrNull(data.branch),
      remote_url: stringOrNull(data.remote_url),
      head: stringOrNull(data.head),
      remote_head: stringOrNull(data.remote_head),
      unpushed_commits: count(data.unpushed_commits),
      pending_paths: pendingPaths,
      pending_count: Math.max(count(data.pending_count), pendingPaths.length),
      last_synced_at: stringOrNull(data.last_synced_at),
      skipped: Array.isArray(data.skipped)
        ? data.skipped.filter(isSkipped).map(s => ({
            path: s.path,
            reason: s.reason
          }))
        : [],
      error: isError(data.error)
        ? { kind: data.error.kind, message: data.error.message }
        : null,
      progress: parseProgress(data.progress),
      notice: parseNotice(data.notice),
      rescue_branches: Array.isArray(data.rescue_branches)
        ? data.rescue_branches
            .map(parseRescue)
            .filter((r): r is IRescueBranch => r !== null)
        : [],
      rescue_message: stringOrNull(data.rescue_message) || null
    };
  }

  function parseRescue(value: unknown): IRescueBranch | null {
    if (typeof value !== 'object' || value === null) {
      return null;
    }
    const v = value as { [key: string]: unknown };
    if (typeof v.name !== 'string' || v.name.length === 0) {
      return null;
    }
    return {
      name: v.name,
      created: typeof v.created === 'string' ? v.created : '',
      paths: Array.isArray(v.paths)
        ? v.paths.filter((p): p is string => typeof p === 'string')
        : []
    };
  }

  function count(value: unknown): number {
    return typeof value === 'number' && Number.isFinite(value)
      ? Math.max(0, value)
      : 0;
  }

  function parseProgress(value: unknown): IRestoreProgress | null {
    if (typeof value !== 'object' || value === null) {
      return null;
    }
    const v = value as { [key: string]: unknown };
    return {
      phase: typeof v.phase === 'string' ? v.phase : '',
      done: count(v.done),
      total: count(v.total),
      bytes: count(v.bytes)
    };
  }

  function parseNotice(value: unknown): ISyncNotice | null {
    if (typeof value !== 'object' || value === null) {
      return null;
    }
    const v = value as { [key: string]: unknown };
    if (typeof v.message !== 'string' || v.message.length === 0) {
      return null;
    }
    return {
      kind: typeof v.kind === 'string' ? v.kind : 'notice',
      message: v.message,
      paths: Array.isArray(v.paths)
        ? v.paths.filter((p): p is string => typeof p === 'string')
        : [],
      branch: stringOrNull(v.branch)
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
