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
 * The server end points other than the status (which `SyncStatusModel`
 * owns): signing in and out, forking, and listing branches.
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

  function raw(value: unknown): Raw {
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
}
