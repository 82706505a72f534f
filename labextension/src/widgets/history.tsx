import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { ReactWidget, refreshIcon } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import type { Message } from '@lumino/messaging';
import type { ISignal } from '@lumino/signaling';
import * as React from 'react';

import type { GitSyncAPI, IHistoryEntry } from '../api';
import { groupByDay, orderPair, renamedArg } from '../history';
import {
  dayHeading,
  describeSession,
  formatClock,
  formatMoment,
  TRANSLATION_DOMAIN
} from '../labels';
import type { SyncStatusModel } from '../model';

/**
 * How many snapshots one request asks for.
 */
export const HISTORY_PAGE_SIZE = 50;

/**
 * The most snapshots a refresh asks for at once (the server's limit).
 */
const HISTORY_MAX_LIMIT = 500;

/**
 * The commands the panel offers for a snapshot.
 */
export interface IHistoryCommands {
  /**
   * Takes `{ path, base, baseTime, basePath?, remote?, remoteTime?,
   * remotePath? }`; without `remote`, compares with the file on disk.
   * `basePath` / `remotePath`: the file's name in that snapshot, where it
   * was renamed since.
   */
  compare: string;
  /**
   * Takes `{ path, sha, time, fromPath? }` (`fromPath`: the file's name in
   * that snapshot, where it was renamed since).
   */
  restoreFile: string;
  /**
   * Takes `{ sha, time }`.
   */
  restoreWorkspace: string;
  /**
   * Takes `{ sha?, time? }`.
   */
  saveVersion: string;
  /**
   * Takes `{ source?, message? }`.
   */
  publish: string;
}

/**
 * The History panel: the snapshots that changed the current document,
 * newest first and grouped by day, each with its time, message, session and
 * versions; one is selected to compare it or restore it, or two to compare
 * them.
 *
 * It asks the server when its file changes, when it is shown after a new
 * snapshot landed (the status model's head changed: the model follows the
 * server's events, nothing polls), and when `historyChanged` says a version
 * or a restore was made. A late answer never overwrites a newer one.
 */
export class HistoryPanel extends ReactWidget {
  constructor(options: HistoryPanel.IOptions) {
    super();
    this._api = options.api;
    this._model = options.model;
    this._commands = options.commands;
    this._ids = options.commandIds;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this._head = this._model.status?.head ?? null;
    this.addClass('jp-gitsync-History');
    this._model.changed.connect(this._onStatusChanged, this);
    this._commands.commandChanged.connect(this._onCommandChanged, this);
    options.historyChanged?.connect(this._onHistoryChanged, this);
    this._historyChanged = options.historyChanged ?? null;
  }

  /**
   * The workspace-relative path whose history is shown, or `null`.
   */
  get path(): string | null {
    return this._path;
  }
  set path(value: string | null) {
    if (value === this._path) {
      return;
    }
    this._path = value;
    this._entries = [];
    this._more = false;
    this._error = null;
    this._selected = null;
    this._comparing = null;
    this._loaded = false;
    this.update();
    void this.refresh();
  }

  /**
   * The snapshots listed, newest first.
   */
  get entries(): readonly IHistoryEntry[] {
    return this._entries;
  }

  /**
   * Ask the server again for the history of `path` (as many snapshots as
   * are listed, at least a page). Settles when the answer is shown.
   */
  async refresh(): Promise<void> {
    const path = this._path;
    if (!path) {
      return;
    }
    if (!this.isVisible) {
      // Asked again when shown: a hidden panel costs no requests.
      this._stale = true;
      return;
    }
    this._stale = false;
    const limit = Math.min(
      HISTORY_MAX_LIMIT,
      Math.max(HISTORY_PAGE_SIZE, this._entries.length)
    );
    await this._load(() => this._api.history({ path, limit }), false);
  }

  /**
   * List the next page of older snapshots.
   */
  async loadMore(): Promise<void> {
    const path = this._path;
    const last = this._entries[this._entries.length - 1];
    if (!path || !last || this._loadingMore) {
      return;
    }
    this._loadingMore = true;
    this.update();
    await this._load(
      () =>
        this._api.history({
          path,
          limit: HISTORY_PAGE_SIZE,
          before: last.sha
        }),
      true
    );
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._onStatusChanged, this);
    this._commands.commandChanged.disconnect(this._onCommandChanged, this);
    this._historyChanged?.disconnect(this._onHistoryChanged, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._stale) {
      void this.refresh();
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this._stale && this.isVisible) {
      void this.refresh();
    }
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    const path = this._path;
    const name = path ? (path.split('/').pop() ?? path) : null;
    const folder =
      path && path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    return (
      <div className="jp-gitsync-History-content">
        <div className="jp-gitsync-History-header">
          <h2 className="jp-gitsync-History-title">{trans.__('History')}</h2>
          <button
            type="button"
            className="jp-gitsync-History-refresh jp-Button jp-mod-minimal"
            title={trans.__('Refresh the history')}
            aria-label={trans.__('Refresh the history')}
            disabled={!path || this._loading}
            onClick={() => void this.refresh()}
          >
            <refreshIcon.react tag="span" />
          </button>
        </div>
        {name ? (
          <div className="jp-gitsync-History-file" title={path ?? ''}>
            <span className="jp-gitsync-History-fileName">{name}</span>
            {folder ? (
              <span className="jp-gitsync-History-folder">{folder}</span>
            ) : null}
          </div>
        ) : null}
        {this._comparing ? this._renderCompareBanner(this._comparing) : null}
        <div className="jp-gitsync-History-body">{this._renderBody()}</div>
      </div>
    );
  }

  private _renderCompareBanner(first: IHistoryEntry): JSX.Element {
    const trans = this._trans;
    return (
      <div className="jp-gitsync-History-banner" role="status">
        <span>
          {trans.__(
            'Choose another snapshot to compare with the one of %1.',
            formatMoment(first.time)
          )}
        </span>
        <button
          type="button"
          className="jp-Button jp-mod-styled jp-mod-reject jp-mod-small"
          onClick={() => {
            this._comparing = null;
            this.update();
          }}
        >
          {trans.__('Cancel')}
        </button>
      </div>
    );
  }

  private _renderBody(): JSX.Element {
    const trans = this._trans;
    if (!this._path) {
      return (
        <p className="jp-gitsync-History-empty">
          {trans.__(
            'Open a file, or choose Show History on a file in the file browser, to see its saved versions.'
          )}
        </p>
      );
    }
    if (this._error && this._entries.length === 0) {
      return (
        <div className="jp-gitsync-History-error" role="alert">
          <p>{trans.__('Could not load the history: %1', this._error)}</p>
          <button
            type="button"
            className="jp-Button jp-mod-styled jp-mod-reject jp-mod-small"
            onClick={() => void this.refresh()}
          >
            {trans.__('Try again')}
          </button>
        </div>
      );
    }
    if (!this._loaded) {
      return (
        <p className="jp-gitsync-History-empty" role="status">
          {trans.__('Loading the history…')}
        </p>
      );
    }
    if (this._entries.length === 0) {
      return (
        <p className="jp-gitsync-History-empty" role="status">
          {trans.__(
            'No snapshots of this file yet. Git Sync saves one shortly after each change.'
          )}
        </p>
      );
    }
    return (
      <>
        <ol
          className="jp-gitsync-History-days"
          aria-label={trans.__('Snapshots')}
        >
          {groupByDay(this._entries).map(group => (
            <li key={group.key} className="jp-gitsync-History-day">
              <h3>{dayHeading(group, trans)}</h3>
              <ol className="jp-gitsync-History-list">
                {group.entries.map(entry => this._renderEntry(entry))}
              </ol>
            </li>
          ))}
        </ol>
        {this._error ? (
          <p className="jp-gitsync-History-error" role="alert">
            {trans.__('Could not load more: %1', this._error)}
          </p>
        ) : null}
        {this._more ? (
          <button
            type="button"
            className="jp-gitsync-History-more jp-Button jp-mod-styled jp-mod-reject"
            disabled={this._loadingMore}
            onClick={() => void this.loadMore()}
          >
            {this._loadingMore ? trans.__('Loading…') : trans.__('Load more')}
          </button>
        ) : null}
      </>
    );
  }

  private _renderEntry(entry: IHistoryEntry): JSX.Element {
    const trans = this._trans;
    const selected = this._selected === entry.sha;
    const comparing = this._comparing?.sha === entry.sha;
    const session = describeSession(entry, trans);
    const firstLine = entry.message.split('\n', 1)[0] || trans.__('Snapshot');
    const renamed = entry.path && entry.path !== this._path ? entry.path : null;
    const classes = ['jp-gitsync-History-entry'];
    if (selected) {
      classes.push('jp-mod-selected');
    }
    if (comparing) {
      classes.push('jp-mod-comparing');
    }
    return (
      <li key={entry.sha} className={classes.join(' ')} data-sha={entry.sha}>
        <button
          type="button"
          className="jp-gitsync-History-entryMain"
          aria-expanded={selected}
          title={entry.message}
          onClick={() => this._onEntryClick(entry)}
        >
          <span className="jp-gitsync-History-time">
            {formatClock(entry.time)}
          </span>
          <span className="jp-gitsync-History-message">{firstLine}</span>
          {entry.versions.length > 0 ? (
            <span className="jp-gitsync-History-versions">
              {entry.versions.map(name => (
                <span
                  key={name}
                  className="jp-gitsync-History-tag"
                  title={trans.__('Version %1', name)}
                >
                  {name}
                </span>
              ))}
            </span>
          ) : null}
          <span className="jp-gitsync-History-meta">
            {[
              session,
              entry.author && entry.author !== session ? entry.author : null,
              renamed ? trans.__('as %1', renamed) : null,
              entry.sha.slice(0, 7)
            ]
              .filter(Boolean)
              .join(' · ')}
          </span>
        </button>
        {selected && !this._comparing ? this._renderActions(entry) : null}
      </li>
    );
  }

  private _renderActions(entry: IHistoryEntry): JSX.Element {
    const trans = this._trans;
    const ids = this._ids;
    const path = this._path ?? '';
    const button = (
      label: string,
      id: string,
      args: { [key: string]: string },
      className = '',
      onClick?: () => void
    ): JSX.Element => (
      <button
        type="button"
        className={`jp-gitsync-History-action ${className}`}
        data-command={id}
        disabled={
          !this._commands.hasCommand(id) || !this._commands.isEnabled(id, args)
        }
        onClick={
          onClick ??
          (() => {
            void this._commands.execute(id, args);
          })
        }
      >
        {label}
      </button>
    );
    return (
      <div
        className="jp-gitsync-History-actions"
        role="group"
        aria-label={trans.__(
          'Actions for the snapshot of %1',
          formatMoment(entry.time)
        )}
      >
        {button(
          trans.__('Compare with Current'),
          ids.compare,
          {
            path,
            base: entry.sha,
            baseTime: entry.time,
            ...renamedArg('basePath', entry.path, this._path)
          },
          'jp-mod-primary'
        )}
        {button(
          trans.__('Compare…'),
          ids.compare,
          {
            path,
            base: entry.sha,
            baseTime: entry.time,
            ...renamedArg('basePath', entry.path, this._path)
          },
          '',
          () => {
            this._comparing = entry;
            this.update();
          }
        )}
        {button(trans.__('Restore This Version'), ids.restoreFile, {
          path,
          sha: entry.sha,
          time: entry.time,
          ...renamedArg('fromPath', entry.path, this._path)
        })}
        {button(
          trans.__('Restore Workspace to This Snapshot'),
          ids.restoreWorkspace,
          { sha: entry.sha, time: entry.time }
        )}
        {button(trans.__('Save as Version…'), ids.saveVersion, {
          sha: entry.sha,
          time: entry.time
        })}
        {button(trans.__('Publish…'), ids.publish, {
          source: entry.version ?? entry.sha,
          message: entry.message
        })}
      </div>
    );
  }

  private _onEntryClick(entry: IHistoryEntry): void {
    const first = this._comparing;
    if (first) {
      if (first.sha === entry.sha) {
        return;
      }
      const [older, newer] = orderPair(this._entries, first, entry);
      this._comparing = null;
      this._selected = newer.sha;
      this.update();
      void this._commands.execute(this._ids.compare, {
        path: this._path ?? '',
        base: older.sha,
        baseTime: older.time,
        ...renamedArg('basePath', older.path, this._path),
        remote: newer.sha,
        remoteTime: newer.time,
        ...renamedArg('remotePath', newer.path, this._path)
      });
      return;
    }
    this._selected = this._selected === entry.sha ? null : entry.sha;
    this.update();
  }

  /**
   * Run one history request; apply its answer unless a newer request was
   * made for another reason meanwhile (or the file changed).
   */
  private async _load(
    request: () => Promise<{ entries: IHistoryEntry[]; more: boolean }>,
    append: boolean
  ): Promise<void> {
    const stamp = ++this._clock;
    const path = this._path;
    this._loading = true;
    this.update();
    try {
      const page = await request();
      if (this.isDisposed || stamp !== this._clock || path !== this._path) {
        return;
      }
      if (append) {
        const known = new Set(this._entries.map(e => e.sha));
        this._entries = this._entries.concat(
          page.entries.filter(e => !known.has(e.sha))
        );
      } else {
        this._entries = page.entries;
      }
      this._more = page.more;
      this._error = null;
      this._loaded = true;
    } catch (error) {
      if (this.isDisposed || stamp !== this._clock || path !== this._path) {
        return;
      }
      this._error = error instanceof Error ? error.message : String(error);
    } finally {
      if (stamp === this._clock) {
        this._loading = false;
        this._loadingMore = false;
      }
    }
    if (!this._entries.some(e => e.sha === this._selected)) {
      this._selected = null;
    }
    if (!this.isDisposed) {
      this.update();
    }
  }

  /**
   * A new snapshot landed (the head moved): the file may have a new entry.
   */
  private _onStatusChanged(): void {
    const head = this._model.status?.head ?? null;
    if (head === this._head) {
      return;
    }
    this._head = head;
    void this.refresh();
  }

  private _onHistoryChanged(): void {
    void this.refresh();
  }

  private _onCommandChanged(): void {
    if (this._selected) {
      this.update();
    }
  }

  private _api: GitSyncAPI;
  private _clock = 0;
  private _commands: CommandRegistry;
  private _comparing: IHistoryEntry | null = null;
  private _entries: IHistoryEntry[] = [];
  private _error: string | null = null;
  private _head: string | null;
  private _historyChanged: ISignal<unknown, void> | null;
  private _ids: IHistoryCommands;
  private _loaded = false;
  private _loading = false;
  private _loadingMore = false;
  private _model: SyncStatusModel;
  private _more = false;
  private _path: string | null = null;
  private _selected: string | null = null;
  private _stale = false;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `HistoryPanel` statics.
 */
export namespace HistoryPanel {
  export interface IOptions {
    api: GitSyncAPI;
    /**
     * The status model, whose head moving means a new snapshot.
     */
    model: SyncStatusModel;
    commands: CommandRegistry;
    commandIds: IHistoryCommands;
    /**
     * Emitted when a version was saved or a restore made.
     */
    historyChanged?: ISignal<unknown, void>;
    translator?: ITranslator;
  }
}
