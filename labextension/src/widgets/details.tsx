import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { IAuthInfo } from '../api';
import {
  describeProgress,
  describeStatus,
  formatTime,
  TRANSLATION_DOMAIN
} from '../labels';
import { needsFork } from '../model';
import type { IRescueBranch, ISyncStatus, SyncStatusModel } from '../model';
import { branchUrl, commitUrl, parseRemote } from '../remote';
import type { IRemoteInfo } from '../remote';

/**
 * How many pending or skipped paths the popover lists before "and N more".
 */
const LISTED_PATHS = 5;

/**
 * Error kinds that only ask the user to sign in (nobody gave a token yet):
 * shown as a notice, not as an error.
 */
const SIGN_IN_KINDS = new Set(['no-token', 'no-login']);

/**
 * The commands the popover offers, in order.
 */
export interface IDetailsCommands {
  syncNow: string;
  signIn: string;
  signOut: string;
  /**
   * Offered, as the main action, when the user may not push.
   */
  fork: string;
  resume: string;
  openBranch: string;
  /**
   * Name the workspace as it is now.
   */
  saveVersion?: string;
  /**
   * Open a pull request with the work.
   */
  publish?: string;
  /**
   * Take `{ name }` of a rescue branch.
   */
  openRescue: string;
  deleteRescue: string;
}

/**
 * The popover opened from the badge: where the workspace is synced to, the
 * last snapshot, pending and skipped files, the error or notice in plain
 * words, and the actions.
 */
export class SyncDetails extends ReactWidget {
  constructor(options: SyncDetails.IOptions) {
    super();
    this._model = options.model;
    this._commands = options.commands;
    this._ids = options.commandIds;
    this._loadAuth = options.loadAuth;
    this._onAction = options.onAction ?? null;
    this._relativeTimes = options.relativeTimes ?? true;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass('jp-gitsync-Details');
    this.node.setAttribute('role', 'dialog');
    this.node.setAttribute('aria-label', this._trans.__('Git Sync details'));
    this._model.changed.connect(this._onChanged, this);
    this._commands.commandChanged.connect(this._onChanged, this);
  }

  /**
   * Who is signed in, once known (`null` while loading or when unknown).
   */
  get auth(): IAuthInfo | null {
    return this._auth;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._onChanged, this);
    this._commands.commandChanged.disconnect(this._onChanged, this);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this._fetchAuth();
    // Move the keyboard focus in once the first render is on the page.
    void this.renderPromise?.then(() => {
      if (!this.isDisposed) {
        this.node
          .querySelector<HTMLElement>('.jp-gitsync-Details-actions button')
          ?.focus();
      }
    });
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    const status = this._model.status;
    const description = describeStatus(status, {
      requestError: this._model.requestError,
      syncing: this._model.isSyncing,
      relativeTimes: this._relativeTimes,
      trans
    });
    return (
      <div className="jp-gitsync-Details-content">
        <div
          className={`jp-gitsync-Details-header jp-gitsync-Badge-${description.tone}`}
          role="heading"
          aria-level={2}
        >
          {description.label}
        </div>
        {status ? this._renderStatus(status) : null}
        {!status && this._model.requestError ? (
          <p className="jp-gitsync-Details-error">{this._model.requestError}</p>
        ) : null}
        {this._renderActions(status)}
      </div>
    );
  }

  private _renderStatus(status: ISyncStatus): JSX.Element {
    const trans = this._trans;
    const remote = parseRemote(status.remote_url, this._auth?.repository);
    const branchLink = branchUrl(remote, status.branch);
    // Only a pushed snapshot has a page on the remote.
    const commitLink =
      status.head && status.head === status.remote_head
        ? commitUrl(remote, status.head)
        : null;
    const rows: [string, React.ReactNode][] = [];
    if (remote) {
      rows.push([
        trans.__('Repository'),
        Private.link(
          remote.webUrl,
          remote.isGitHub ? remote.path : `${remote.host}/${remote.path}`
        )
      ]);
    }
    if (status.branch) {
      rows.push([trans.__('Branch'), Private.link(branchLink, status.branch)]);
    }
    if (status.head) {
      rows.push([
        trans.__('Last snapshot'),
        Private.link(commitLink, status.head.slice(0, 7), 'code')
      ]);
    }
    if (status.last_synced_at) {
      rows.push([
        trans.__('Last pushed'),
        formatTime(status.last_synced_at, this._relativeTimes)
      ]);
    }
    if (status.unpushed_commits > 0) {
      rows.push([
        trans.__('Not pushed yet'),
        trans._n('%1 snapshot', '%1 snapshots', status.unpushed_commits)
      ]);
    }
    const account = this._accountText();
    if (account) {
      rows.push([trans.__('Account'), account]);
    }
    return (
      <>
        <dl className="jp-gitsync-Details-facts">
          {rows.map(([term, value]) => (
            <React.Fragment key={term}>
              <dt>{term}</dt>
              <dd>{value}</dd>
            </React.Fragment>
          ))}
        </dl>
        {status.state === 'restoring' ? this._renderProgress(status) : null}
        {status.error ? (
          <div
            className={
              SIGN_IN_KINDS.has(status.error.kind)
                ? 'jp-gitsync-Details-notice'
                : 'jp-gitsync-Details-error'
            }
            role="alert"
            data-kind={status.error.kind}
          >
            {needsFork(status)
              ? this._noPushAccessText(remote)
              : status.error.message}
          </div>
        ) : null}
        {status.notice ? (
          <div className="jp-gitsync-Details-notice" role="status">
            {status.notice.message}
            {status.notice.branch ? (
              <div>
                {trans.__('The other versions are on the branch')}{' '}
                {Private.link(
                  branchUrl(remote, status.notice.branch),
                  status.notice.branch,
                  'code'
                )}
                .
              </div>
            ) : null}
            {this._renderPaths(
              status.notice.paths.map(path => ({ path, reason: '' }))
            )}
          </div>
        ) : null}
        {status.pending_count > 0 ? (
          <section>
            <h3>
              {trans._n(
                '%1 file waiting to be saved',
                '%1 files waiting to be saved',
                status.pending_count
              )}
            </h3>
            {this._renderPaths(
              status.pending_paths.map(path => ({ path, reason: '' })),
              status.pending_count
            )}
          </section>
        ) : null}
        {status.skipped.length > 0 ? (
          <section>
            <h3>
              {trans._n(
                '%1 file not synced',
                '%1 files not synced',
                status.skipped.length
              )}
            </h3>
            {this._renderPaths(status.skipped)}
          </section>
        ) : null}
        {status.rescue_branches.length > 0
          ? this._renderRescues(status.rescue_branches, status.rescue_message)
          : null}
      </>
    );
  }

  /**
   * The rescue branches, each with Open and Delete.
   */
  private _renderRescues(
    rescues: IRescueBranch[],
    message: string | null
  ): JSX.Element {
    const trans = this._trans;
    const ids = this._ids;
    return (
      <section className="jp-gitsync-Details-rescues">
        <h3>
          {trans._n('%1 rescue branch', '%1 rescue branches', rescues.length)}
        </h3>
        {message ? (
          <p className="jp-gitsync-Details-notice" role="status">
            {message}
          </p>
        ) : null}
        <ul className="jp-gitsync-Details-paths jp-gitsync-Details-rescueList">
          {rescues.map(rescue => (
            <li key={rescue.name} data-rescue={rescue.name}>
              <code title={rescue.name}>{rescue.name}</code>
              <span className="jp-gitsync-Details-muted">
                {' — '}
                {trans.__(
                  'other versions of %1',
                  rescue.paths.slice(0, 3).join(', ') || trans.__('some files')
                )}
                {rescue.paths.length > 3
                  ? ` ${trans._n('and %1 more', 'and %1 more', rescue.paths.length - 3)}`
                  : ''}
                {rescue.created
                  ? `, ${formatTime(rescue.created, this._relativeTimes)}`
                  : ''}
              </span>
              <span className="jp-gitsync-Details-rescueActions">
                {[ids.openRescue, ids.deleteRescue]
                  .filter(id => this._commands.hasCommand(id))
                  .map(id => (
                    <button
                      key={id}
                      type="button"
                      className="jp-Button jp-mod-styled jp-mod-reject jp-mod-small"
                      data-command={id}
                      onClick={() => {
                        this._onAction?.(id);
                        void this._commands.execute(id, { name: rescue.name });
                      }}
                    >
                      {this._commands.label(id, { name: rescue.name })}
                    </button>
                  ))}
              </span>
            </li>
          ))}
        </ul>
      </section>
    );
  }

  private _renderProgress(status: ISyncStatus): JSX.Element {
    const progress = describeProgress(status.progress, this._trans);
    return (
      <div className="jp-gitsync-Details-progress">
        <progress
          max={100}
          value={progress.percent ?? undefined}
          aria-label={progress.text}
        />
        <span>{progress.text}</span>
      </div>
    );
  }

  private _renderPaths(
    paths: { path: string; reason: string }[],
    total = paths.length
  ): JSX.Element | null {
    if (paths.length === 0) {
      return null;
    }
    const shown = paths.slice(0, LISTED_PATHS);
    const more = Math.max(total, paths.length) - shown.length;
    return (
      <ul className="jp-gitsync-Details-paths">
        {shown.map(({ path, reason }) => (
          <li key={path} title={path}>
            <code>{path}</code>
            {reason ? (
              <span className="jp-gitsync-Details-muted"> — {reason}</span>
            ) : null}
          </li>
        ))}
        {more > 0 ? (
          <li className="jp-gitsync-Details-muted">
            {this._trans._n('and %1 more', 'and %1 more', more)}
          </li>
        ) : null}
      </ul>
    );
  }

  private _renderActions(status: ISyncStatus | null): JSX.Element {
    const ids = this._ids;
    const auth = this._auth;
    const signedInHere = !!auth?.signed_in && auth.provider === 'device';
    // Without push access signing in again does not help (unless nobody is
    // signed in any more): forking does.
    const fork = needsFork(status);
    const primary = new Set([ids.signIn, ids.fork]);
    const wanted = [
      ids.syncNow,
      fork ? ids.fork : null,
      (status?.state === 'auth-required' && !fork) ||
      (auth !== null && !auth.signed_in)
        ? ids.signIn
        : null,
      signedInHere ? ids.signOut : null,
      ids.saveVersion ?? null,
      ids.publish ?? null,
      ids.resume,
      ids.openBranch
    ].filter(
      (id): id is string =>
        id !== null &&
        this._commands.hasCommand(id) &&
        this._commands.isVisible(id)
    );
    return (
      <div className="jp-gitsync-Details-actions">
        {wanted.map(id => (
          <button
            key={id}
            type="button"
            className={`jp-Button jp-mod-styled ${
              primary.has(id) ? 'jp-mod-accept' : 'jp-mod-reject'
            }`}
            data-command={id}
            disabled={!this._commands.isEnabled(id)}
            onClick={() => {
              this._onAction?.(id);
              void this._commands.execute(id);
            }}
          >
            {this._commands.label(id, { short: true })}
          </button>
        ))}
      </div>
    );
  }

  /**
   * Why syncing stopped when the user may not push, and the way on.
   */
  private _noPushAccessText(remote: IRemoteInfo | null): string {
    const trans = this._trans;
    const login = this._auth?.signed_in ? this._auth.login : null;
    const repository = remote?.path ?? null;
    const who =
      login && repository
        ? trans.__(
            'Your GitHub account @%1 may not push to %2.',
            login,
            repository
          )
        : repository
          ? trans.__('Your GitHub account may not push to %1.', repository)
          : trans.__('Your GitHub account may not push to this repository.');
    return `${who} ${trans.__(
      'Fork it to your account, and Git Sync keeps your work synced to the fork instead.'
    )}`;
  }

  private _accountText(): string | null {
    const auth = this._auth;
    const trans = this._trans;
    if (this._authLoading) {
      return trans.__('checking…');
    }
    if (!auth) {
      return null;
    }
    if (!auth.signed_in) {
      return trans.__('not signed in');
    }
    const how =
      auth.provider === 'device'
        ? trans.__('signed in here')
        : auth.provider === 'env'
          ? trans.__('token from the environment')
          : auth.provider === 'jupyterhub'
            ? trans.__('token from JupyterHub')
            : auth.provider === 'github-app'
              ? trans.__('GitHub App')
              : (auth.provider ?? '');
    const who = auth.login ? `@${auth.login}` : null;
    const push =
      auth.can_push === false
        ? trans.__('cannot push to this repository')
        : null;
    return [who, how, push].filter(Boolean).join(' · ');
  }

  private async _fetchAuth(): Promise<void> {
    this._authLoading = true;
    this.update();
    try {
      this._auth = await this._loadAuth();
    } catch (error) {
      console.warn('Git Sync: could not ask who is signed in.', error);
      this._auth = null;
    }
    this._authLoading = false;
    if (!this.isDisposed) {
      this.update();
    }
  }

  private _onChanged(): void {
    this.update();
  }

  private _auth: IAuthInfo | null = null;
  private _authLoading = false;
  private _commands: CommandRegistry;
  private _ids: IDetailsCommands;
  private _loadAuth: () => Promise<IAuthInfo>;
  private _model: SyncStatusModel;
  private _onAction: ((id: string) => void) | null;
  private _relativeTimes: boolean;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `SyncDetails` statics.
 */
export namespace SyncDetails {
  export interface IOptions {
    model: SyncStatusModel;
    commands: CommandRegistry;
    commandIds: IDetailsCommands;
    /**
     * Ask the server who is signed in (called when the popover opens).
     */
    loadAuth: () => Promise<IAuthInfo>;
    /**
     * Called with a command id just before an action button runs it.
     */
    onAction?: (id: string) => void;
    relativeTimes?: boolean;
    translator?: ITranslator;
  }
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  /**
   * A link that opens in a new tab, or plain text without a URL.
   */
  export function link(
    url: string | null,
    text: string,
    tag: 'span' | 'code' = 'span'
  ): JSX.Element {
    const content = tag === 'code' ? <code>{text}</code> : text;
    if (!url) {
      return <span>{content}</span>;
    }
    return (
      <a href={url} target="_blank" rel="noopener noreferrer">
        {content}
      </a>
    );
  }
}
