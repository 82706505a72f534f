import type { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './request';

/**
 * A running or failed GitHub device-flow sign-in, as the server reports it.
 */
export interface IDeviceFlow {
  /**
   * `pending` while waiting for the code; `denied`, `expired` or `error` when
   * it ended without a token (other values may come from newer servers).
   */
  state: string;
  user_code: string;
  verification_uri: string;
  /**
   * Seconds until the code expires.
   */
  expires_in: number;
  /**
   * Seconds to wait between checks.
   */
  interval: number;
  /**
   * Why the sign-in ended, in plain words.
   */
  message: string | null;
}

/**
 * `GET gitsync/auth`: who is signed in and how; never a token.
 */
export interface IAuthInfo {
  signed_in: boolean;
  /**
   * The provider of the token in use: `device`, `env`, `jupyterhub`,
   * `github-app`.
   */
  provider: string | null;
  login: string | null;
  scopes: string[] | null;
  permissions: { [name: string]: string } | null;
  /**
   * `owner/name` when the remote is on the configured GitHub.
   */
  repository: string | null;
  can_push: boolean | null;
  device_flow: IDeviceFlow | null;
  /**
   * Whether a client id is configured, so signing in from the UI can work.
   */
  sign_in_available: boolean;
  providers: string[];
  error: string | null;
}

/**
 * A branch of the remote that work can be resumed from.
 */
export interface IBranch {
  name: string;
  /**
   * Whether it holds Git Sync snapshots.
   */
  sync: boolean;
  /**
   * Whether it is the sync branch in use.
   */
  current: boolean;
  sha: string;
  last_snapshot_at: string | null;
  message: string;
}

/**
 * `POST gitsync/auth/fork`: the fork made in the signed-in user's account
 * (GitHub creates it in the background).
 */
export interface IForkInfo {
  /**
   * The URL Git Sync pushes to from now on.
   */
  clone_url: string;
  /**
   * `owner/name` of the fork, when GitHub said.
   */
  full_name: string | null;
  /**
   * The fork's web page (an `http(s)` URL), when GitHub said.
   */
  html_url: string | null;
}

/**
 * One snapshot in `GET gitsync/history`.
 */
export interface IHistoryEntry {
  sha: string;
  /**
   * When the snapshot was made (ISO 8601).
   */
  time: string;
  message: string;
  /**
   * The first version naming this snapshot, if any.
   */
  version: string | null;
  /**
   * Every version naming this snapshot.
   */
  versions: string[];
  /**
   * The label of the session that made it, when known.
   */
  session: string | null;
  /**
   * Whether this session (this server) made it.
   */
  this_session: boolean;
  author: string;
  /**
   * The file's name in that snapshot (renames followed), with a `path`.
   */
  path: string | null;
}

/**
 * A page of history, newest first.
 */
export interface IHistoryPage {
  entries: IHistoryEntry[];
  /**
   * Whether older snapshots follow (ask with `before` = the last sha).
   */
  more: boolean;
}

/**
 * `GET gitsync/diff`: what changed in one file between two snapshots (or a
 * snapshot and the file on disk).
 */
export type IFileDiff =
  | {
      format: 'notebook';
      /**
       * The base notebook (nbformat JSON).
       */
      base: { [key: string]: unknown };
      /**
       * nbdime's diff of the base to the other side.
       */
      diff: unknown[];
    }
  | { format: 'text'; base: string; remote: string }
  | { format: 'binary'; base_size: number; remote_size: number };

/**
 * `GET gitsync/file`: one file's content in a snapshot, like the contents
 * API gives it.
 */
export interface ISnapshotFile {
  path: string;
  sha: string;
  type: 'notebook' | 'file';
  format: 'json' | 'text' | 'base64';
  content: unknown;
}

/**
 * A named version: an annotated tag on a snapshot.
 */
export interface IVersion {
  name: string;
  sha: string;
  time: string;
  message: string;
}

/**
 * What `POST gitsync/restore-workspace` did.
 */
export interface IWorkspaceRestore {
  /**
   * The new snapshot.
   */
  sha: string;
  /**
   * Files kept back (path → why in plain words), e.g. a file that changed
   * meanwhile or one the sync may not write.
   */
  not_restored: { [path: string]: string };
}

/**
 * What `POST gitsync/publish` did.
 */
export interface IPublishResult {
  branch: string;
  commit: string;
  /**
   * The pull request's page (an `http(s)` URL), or `null` when none was
   * opened (a remote that is not GitHub).
   */
  pull_request_url: string | null;
  /**
   * What happened, in plain words.
   */
  message: string;
}

/**
 * What to publish.
 */
export interface IPublishRequest {
  branch: string;
  title: string;
  body: string;
  /**
   * A snapshot sha or version name; the workspace now when not given.
   */
  source?: string;
}

/**
 * The server end points other than the status (which `SyncStatusModel`
 * owns): signing in and out, forking, listing branches, and the history:
 * snapshots, diffs, restores, named versions and publishing.
 */
export class GitSyncAPI {
  constructor(options: GitSyncAPI.IOptions = {}) {
    this._request = options.request ?? requestAPI;
    this._serverSettings = options.serverSettings;
  }

  /**
   * Who is signed in, and the state of a running sign-in.
   */
  async auth(): Promise<IAuthInfo> {
    return Private.authInfo(await this._call('auth', { method: 'GET' }));
  }

  /**
   * Start (or continue) a GitHub device-flow sign-in.
   *
   * @throws {ServerConnection.ResponseError} with the server's plain-words
   *   message, e.g. when no client id is configured.
   */
  async startSignIn(): Promise<IDeviceFlow> {
    const flow = Private.deviceFlow(
      await this._call('auth/device', { method: 'POST' })
    );
    if (!flow) {
      throw new Error(
        'Git Sync: the server did not answer with a sign-in code.'
      );
    }
    return flow;
  }

  /**
   * Forget the token of the device-flow sign-in.
   */
  async signOut(): Promise<IAuthInfo> {
    return Private.authInfo(await this._call('auth', { method: 'DELETE' }));
  }

  /**
   * Fork the repository into the signed-in user's GitHub account; the server
   * then syncs to the fork (a status event tells the new `remote_url`).
   *
   * @throws {ServerConnection.ResponseError} with the server's plain-words
   *   message, e.g. when nobody is signed in (409) or GitHub refused (403,
   *   404, 502).
   */
  async forkRepository(): Promise<IForkInfo> {
    const fork = Private.fork(
      await this._call('auth/fork', { method: 'POST' })
    );
    if (!fork) {
      throw new Error('Git Sync: the server did not answer with the fork.');
    }
    return fork;
  }

  /**
   * The remote's branches: sync branches first, newest first.
   */
  async branches(): Promise<IBranch[]> {
    const data = (await this._call('branches', { method: 'GET' })) as {
      branches?: unknown;
    } | null;
    const list = Array.isArray(data?.branches) ? data.branches : [];
    return list.map(Private.branch).filter((b): b is IBranch => b !== null);
  }

  /**
   * The snapshots that changed `path` (the whole sync branch without one),
   * newest first; `before` continues after that sha.
   *
   * @throws {ServerConnection.ResponseError} with the server's message, e.g.
   *   404 for an unknown sha.
   */
  async history(
    options: { path?: string | null; limit?: number; before?: string } = {}
  ): Promise<IHistoryPage> {
    const query = Private.query({
      path: options.path ?? undefined,
      limit: options.limit !== undefined ? String(options.limit) : undefined,
      before: options.before
    });
    return Private.historyPage(
      await this._call(`history${query}`, { method: 'GET' })
    );
  }

  /**
   * The content of `path` in snapshot `sha`.
   */
  async file(path: string, sha: string): Promise<ISnapshotFile> {
    const query = Private.query({ path, sha });
    const file = Private.snapshotFile(
      await this._call(`file${query}`, { method: 'GET' })
    );
    if (!file) {
      throw new Error('Git Sync: the server did not answer with the file.');
    }
    return file;
  }

  /**
   * What changed in `path` from snapshot `base` to snapshot `remote`, or to
   * the file on disk now when `remote` is not given. `names` are the file's
   * names on each side where it was renamed since (sent only when they
   * differ from `path`).
   */
  async diff(
    path: string,
    base: string,
    remote?: string,
    names: { basePath?: string | null; remotePath?: string | null } = {}
  ): Promise<IFileDiff> {
    const query = Private.query({
      path,
      base,
      remote,
      base_path: Private.otherName(names.basePath, path),
      remote_path: Private.otherName(names.remotePath, path)
    });
    const diff = Private.fileDiff(
      await this._call(`diff${query}`, { method: 'GET' })
    );
    if (!diff) {
      throw new Error('Git Sync: the server did not answer with a diff.');
    }
    return diff;
  }

  /**
   * The named versions, newest first.
   */
  async versions(): Promise<IVersion[]> {
    const data = Private.raw(await this._call('versions', { method: 'GET' }));
    const list = Array.isArray(data.versions) ? data.versions : [];
    return list.map(Private.version).filter((v): v is IVersion => v !== null);
  }

  /**
   * Name a snapshot (a fresh one of now without `sha`); it is pushed with
   * the sync branch.
   *
   * @throws {ServerConnection.ResponseError} with the server's message, e.g.
   *   400 for a name git refuses or one that is taken.
   */
  async saveVersion(options: {
    name: string;
    message: string;
    sha?: string;
  }): Promise<IVersion> {
    const body: { [key: string]: string } = {
      name: options.name,
      message: options.message
    };
    if (options.sha) {
      body.sha = options.sha;
    }
    const version = Private.version(
      await this._call('versions', {
        method: 'POST',
        body: JSON.stringify(body)
      })
    );
    if (!version) {
      throw new Error('Git Sync: the server did not answer with the version.');
    }
    return version;
  }

  /**
   * Bring one file back to its content in snapshot `sha`, where it was
   * named `fromPath` (sent only when it differs from `path`: the file was
   * renamed since); resolves with the new snapshot's sha (history is never
   * rewritten).
   */
  async restoreFile(
    path: string,
    sha: string,
    fromPath?: string | null
  ): Promise<string> {
    const body: { [key: string]: string } = { path, sha };
    const from = Private.otherName(fromPath, path);
    if (from !== undefined) {
      body.from_path = from;
    }
    return Private.newSha(
      await this._call('restore-file', {
        method: 'POST',
        body: JSON.stringify(body)
      })
    );
  }

  /**
   * Bring the workspace's synced files back to snapshot `sha`; resolves with
   * the new snapshot and the files kept back.
   */
  async restoreWorkspace(sha: string): Promise<IWorkspaceRestore> {
    const answer = await this._call('restore-workspace', {
      method: 'POST',
      body: JSON.stringify({ sha })
    });
    const kept = Private.raw(Private.raw(answer).not_restored);
    const notRestored: { [path: string]: string } = {};
    for (const [path, why] of Object.entries(kept)) {
      notRestored[path] = typeof why === 'string' ? why : '';
    }
    return { sha: Private.newSha(answer), not_restored: notRestored };
  }

  /**
   * Push the work to a branch of its own and open a pull request (on
   * GitHub).
   *
   * @throws {ServerConnection.ResponseError} with the server's message, e.g.
   *   400 for a branch that exists and is not ours.
   */
  async publish(request: IPublishRequest): Promise<IPublishResult> {
    const body: { [key: string]: string } = {
      branch: request.branch,
      title: request.title,
      body: request.body
    };
    if (request.source) {
      body.source = request.source;
    }
    const result = Private.publishResult(
      await this._call('publish', {
        method: 'POST',
        body: JSON.stringify(body)
      })
    );
    if (!result) {
      throw new Error(
        'Git Sync: the server did not answer with the published branch.'
      );
    }
    return result;
  }

  private _call(endPoint: string, init: RequestInit): Promise<unknown> {
    return this._request<unknown>(endPoint, init, this._serverSettings);
  }

  private _request: GitSyncAPI.RequestFunction;
  private _serverSettings: ServerConnection.ISettings | undefined;
}

/**
 * A namespace for `GitSyncAPI` statics.
 */
export namespace GitSyncAPI {
  /**
   * The function used to call the server (injectable for tests).
   */
  export type RequestFunction = <T>(
    endPoint: string,
    init?: RequestInit,
    settings?: ServerConnection.ISettings
  ) => Promise<T>;

  export interface IOptions {
    /**
     * Replaces `requestAPI`.
     */
    request?: RequestFunction;
    serverSettings?: ServerConnection.ISettings;
  }
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  type Raw = { [key: string]: unknown };

  function str(value: unknown): string | null {
    return typeof value === 'string' ? value : null;
  }

  function num(value: unknown, fallback: number): number {
    return typeof value === 'number' && Number.isFinite(value)
      ? value
      : fallback;
  }

  export function raw(value: unknown): Raw {
    return typeof value === 'object' && value !== null ? (value as Raw) : {};
  }

  export function deviceFlow(value: unknown): IDeviceFlow | null {
    const v = raw(value);
    const userCode = str(v.user_code);
    const uri = str(v.verification_uri);
    if (!userCode || !uri) {
      return null;
    }
    return {
      state: str(v.state) ?? 'pending',
      user_code: userCode,
      verification_uri: uri,
      expires_in: num(v.expires_in, 900),
      interval: num(v.interval, 5),
      message: str(v.message)
    };
  }

  export function authInfo(value: unknown): IAuthInfo {
    const v = raw(value);
    const scopes = Array.isArray(v.scopes)
      ? v.scopes.filter((s): s is string => typeof s === 'string')
      : null;
    const permissions =
      typeof v.permissions === 'object' && v.permissions !== null
        ? (v.permissions as { [name: string]: string })
        : null;
    return {
      signed_in: v.signed_in === true,
      provider: str(v.provider),
      login: str(v.login),
      scopes,
      permissions,
      repository: str(v.repository),
      can_push: typeof v.can_push === 'boolean' ? v.can_push : null,
      device_flow: deviceFlow(v.device_flow),
      sign_in_available: v.sign_in_available === true,
      providers: Array.isArray(v.providers)
        ? v.providers.filter((p): p is string => typeof p === 'string')
        : [],
      error: str(v.error)
    };
  }

  export function fork(value: unknown): IForkInfo | null {
    const v = raw(value);
    const cloneUrl = str(v.clone_url);
    if (!cloneUrl) {
      return null;
    }
    const htmlUrl = str(v.html_url);
    return {
      clone_url: cloneUrl,
      full_name: str(v.full_name) || null,
      // Only a web page is opened in a new tab, never another scheme.
      html_url: htmlUrl && /^https?:\/\//i.test(htmlUrl) ? htmlUrl : null
    };
  }

  export function branch(value: unknown): IBranch | null {
    const v = raw(value);
    const name = str(v.name);
    if (!name) {
      return null;
    }
    return {
      name,
      sync: v.sync === true,
      current: v.current === true,
      sha: str(v.sha) ?? '',
      last_snapshot_at: str(v.last_snapshot_at),
      message: str(v.message) ?? ''
    };
  }

  /**
   * A file's name on one side when it is another than `path` (a rename),
   * else undefined: nothing to send.
   */
  export function otherName(
    name: string | null | undefined,
    path: string
  ): string | undefined {
    return name && name !== path ? name : undefined;
  }

  /**
   * `?a=1&b=2` of the parameters that are set (empty when none is).
   */
  export function query(params: {
    [name: string]: string | undefined;
  }): string {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== '') {
        search.set(name, value);
      }
    }
    const text = search.toString();
    return text ? `?${text}` : '';
  }

  function strings(value: unknown): string[] {
    return Array.isArray(value)
      ? value.filter((s): s is string => typeof s === 'string' && s !== '')
      : [];
  }

  export function historyEntry(value: unknown): IHistoryEntry | null {
    const v = raw(value);
    const sha = str(v.sha);
    if (!sha) {
      return null;
    }
    const version = str(v.version) || null;
    const versions = strings(v.versions);
    if (version && !versions.includes(version)) {
      versions.unshift(version);
    }
    return {
      sha,
      time: str(v.time) ?? '',
      message: str(v.message) ?? '',
      version: version ?? versions[0] ?? null,
      versions,
      session: str(v.session) || null,
      this_session: v.this_session === true,
      author: str(v.author) ?? '',
      path: str(v.path) || null
    };
  }

  export function historyPage(value: unknown): IHistoryPage {
    const v = raw(value);
    const list = Array.isArray(v.entries) ? v.entries : [];
    return {
      entries: list
        .map(historyEntry)
        .filter((e): e is IHistoryEntry => e !== null),
      more: v.more === true
    };
  }

  export function fileDiff(value: unknown): IFileDiff | null {
    const v = raw(value);
    switch (v.format) {
      case 'notebook':
        if (typeof v.base !== 'object' || v.base === null) {
          return null;
        }
        return {
          format: 'notebook',
          base: v.base as { [key: string]: unknown },
          diff: Array.isArray(v.diff) ? v.diff : []
        };
      case 'text':
        return {
          format: 'text',
          base: str(v.base) ?? '',
          remote: str(v.remote) ?? ''
        };
      case 'binary':
        return {
          format: 'binary',
          base_size: num(v.base_size, 0),
          remote_size: num(v.remote_size, 0)
        };
      default:
        return null;
    }
  }

  export function snapshotFile(value: unknown): ISnapshotFile | null {
    const v = raw(value);
    const path = str(v.path);
    const format = v.format;
    if (
      !path ||
      (format !== 'json' && format !== 'text' && format !== 'base64')
    ) {
      return null;
    }
    return {
      path,
      sha: str(v.sha) ?? '',
      type: v.type === 'notebook' ? 'notebook' : 'file',
      format,
      content: v.content
    };
  }

  export function version(value: unknown): IVersion | null {
    const v = raw(value);
    const name = str(v.name);
    if (!name) {
      return null;
    }
    return {
      name,
      sha: str(v.sha) ?? '',
      time: str(v.time) ?? '',
      message: str(v.message) ?? ''
    };
  }

  export function newSha(value: unknown): string {
    const sha = str(raw(value).sha);
    if (!sha) {
      throw new Error(
        'Git Sync: the server did not answer with the new snapshot.'
      );
    }
    return sha;
  }

  export function publishResult(value: unknown): IPublishResult | null {
    const v = raw(value);
    const branch = str(v.branch);
    if (!branch) {
      return null;
    }
    const url = str(v.pull_request_url);
    return {
      branch,
      commit: str(v.commit) ?? '',
      // Only a web page is opened in a new tab, never another scheme.
      pull_request_url: url && /^https?:\/\//i.test(url) ? url : null,
      message: str(v.message) ?? ''
    };
  }
}
