import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { GitSyncAPI, IBranch } from '../api';
import { describeProgress, formatTime, TRANSLATION_DOMAIN } from '../labels';
import type { SyncStatusModel } from '../model';

/**
 * The body of the "Resume from branch" dialog: the remote's branches, sync
 * branches first and newest first, with their last snapshot; one is chosen.
 */
export class BranchPicker
  extends ReactWidget
  implements Dialog.IBodyWidget<string | null>
{
  constructor(options: BranchPicker.IOptions) {
    super();
    this._api = options.api;
    this._relativeTimes = options.relativeTimes ?? true;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass('jp-gitsync-BranchPicker');
  }

  /**
   * The branches, once loaded.
   */
  get branches(): IBranch[] | null {
    return this._branches;
  }

  /**
   * The chosen branch.
   */
  get selected(): string | null {
    return this._selected;
  }
  set selected(name: string | null) {
    this._selected = name;
    this.update();
  }

  /**
   * Settles when the branches are loaded (or failed to load).
   */
  get loaded(): Promise<void> {
    return this._loaded;
  }

  getValue(): string | null {
    return this._selected;
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (!this._loading) {
      this._loading = true;
      this._loaded = this._load();
    }
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    return (
      <div className="jp-gitsync-BranchPicker-content">
        <p>
          {trans.__(
            'Your current work is saved and pushed first. Then the workspace switches to the branch you choose and is restored from its last snapshot.'
          )}
        </p>
        {this._renderList()}
      </div>
    );
  }

  private _renderList(): JSX.Element {
    const trans = this._trans;
    if (this._error) {
      return (
        <p className="jp-gitsync-Details-error" role="alert">
          {this._error}
        </p>
      );
    }
    if (!this._branches) {
      return (
        <p className="jp-gitsync-Details-muted" role="status">
          {trans.__('Loading the branches of the remote…')}
        </p>
      );
    }
    if (this._branches.length === 0) {
      return (
        <p className="jp-gitsync-Details-muted" role="status">
          {trans.__('The remote has no branches yet.')}
        </p>
      );
    }
    return (
      <ul
        className="jp-gitsync-BranchPicker-list"
        role="radiogroup"
        aria-label={trans.__('Branches')}
      >
        {this._branches.map(branch => (
          <li
            key={branch.name}
            className={
              branch.name === this._selected ? 'jp-mod-selected' : undefined
            }
          >
            <label>
              <input
                type="radio"
                name="jp-gitsync-branch"
                value={branch.name}
                checked={branch.name === this._selected}
                disabled={branch.current}
                onChange={() => {
                  this.selected = branch.name;
                }}
              />
              <span className="jp-gitsync-BranchPicker-name">
                <code>{branch.name}</code>
                {branch.current ? (
                  <span className="jp-gitsync-BranchPicker-tag">
                    {trans.__('in use')}
                  </span>
                ) : null}
                {!branch.sync ? (
                  <span className="jp-gitsync-BranchPicker-tag">
                    {trans.__('not a sync branch')}
                  </span>
                ) : null}
              </span>
              <span className="jp-gitsync-BranchPicker-meta">
                {branch.last_snapshot_at
                  ? formatTime(branch.last_snapshot_at, this._relativeTimes)
                  : ''}
                {branch.message ? ` · ${branch.message}` : ''}
              </span>
            </label>
          </li>
        ))}
      </ul>
    );
  }

  private async _load(): Promise<void> {
    try {
      this._branches = await this._api.branches();
      this._selected =
        this._branches.find(branch => !branch.current)?.name ?? null;
    } catch (error) {
      this._error = this._trans.__(
        'Could not list the branches: %1',
        Private.messageOf(error)
      );
    }
    if (!this.isDisposed) {
      this.update();
    }
  }

  private _api: GitSyncAPI;
  private _branches: IBranch[] | null = null;
  private _error: string | null = null;
  private _loaded: Promise<void> = Promise.resolve();
  private _loading = false;
  private _relativeTimes: boolean;
  private _selected: string | null = null;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `BranchPicker` statics.
 */
export namespace BranchPicker {
  export interface IOptions {
    api: GitSyncAPI;
    relativeTimes?: boolean;
    translator?: ITranslator;
  }
}

/**
 * The body of the dialog shown while resuming: saving the current work,
 * then the restore's progress (from the status events), or the failure.
 */
export class ResumeProgress extends ReactWidget {
  constructor(options: ResumeProgress.IOptions) {
    super();
    this._model = options.model;
    this._branch = options.branch;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass('jp-gitsync-ResumeProgress');
    this._model.changed.connect(this._onChanged, this);
  }

  /**
   * Show why resuming failed.
   */
  fail(message: string): void {
    this._error = message;
    this.update();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._onChanged, this);
    super.dispose();
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    if (this._error) {
      return (
        <div role="alert">
          <p className="jp-gitsync-Details-error">{this._error}</p>
          <p>{trans.__('Nothing was switched; your work is where it was.')}</p>
        </div>
      );
    }
    const status = this._model.status;
    if (status?.state === 'restoring') {
      this._restoring = true;
    }
    if (!this._restoring) {
      return (
        <p role="status">{trans.__('Saving and pushing your current work…')}</p>
      );
    }
    const progress = describeProgress(
      status?.state === 'restoring' ? status.progress : null,
      trans
    );
    return (
      <div className="jp-gitsync-Details-progress" role="status">
        <progress
          max={100}
          value={progress.percent ?? undefined}
          aria-label={progress.text}
        />
        <span>
          {status?.state === 'restoring'
            ? progress.text
            : trans.__('Finishing…')}
        </span>
        <p className="jp-gitsync-Details-muted">
          {trans.__('Restoring the workspace from %1.', this._branch)}
        </p>
      </div>
    );
  }

  private _onChanged(): void {
    this.update();
  }

  private _branch: string;
  private _error: string | null = null;
  private _model: SyncStatusModel;
  private _restoring = false;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `ResumeProgress` statics.
 */
export namespace ResumeProgress {
  export interface IOptions {
    model: SyncStatusModel;
    branch: string;
    translator?: ITranslator;
  }
}

/**
 * Ask which branch to resume from, resume, and show the progress; resolves
 * with the server's answer, or `null` when cancelled or failed (the failure
 * is shown).
 */
export async function showResumeDialog(options: {
  api: GitSyncAPI;
  model: SyncStatusModel;
  relativeTimes?: boolean;
  translator?: ITranslator;
}): Promise<SyncStatusModel.IResumeResult | null> {
  const trans = (options.translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
  const picker = new BranchPicker(options);
  const choice = await showDialog({
    title: trans.__('Resume from branch'),
    body: picker,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Resume') })
    ]
  });
  const branch = choice.value;
  if (!choice.button.accept || !branch) {
    return null;
  }

  const progress = new ResumeProgress({ ...options, branch });
  const dialog = new Dialog({
    title: trans.__('Resuming from %1', branch),
    body: progress,
    buttons: [Dialog.cancelButton({ label: trans.__('Hide') })]
  });
  dialog.addClass('jp-gitsync-ResumeDialog');
  let open = true;
  void dialog.launch().then(() => {
    open = false;
  });
  try {
    const result = await options.model.resume(branch);
    dialog.resolve(0);
    Notification.success(
      result.message || trans.__('Resumed from %1.', result.branch),
      { autoClose: 8000 }
    );
    return result;
  } catch (error) {
    const message = Private.messageOf(error);
    if (open) {
      progress.fail(message);
    } else {
      Notification.error(trans.__('Could not resume: %1', message), {
        autoClose: false
      });
    }
    return null;
  }
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  export function messageOf(error: unknown): string {
    if (error instanceof Error && error.message) {
      return error.message;
    }
    return String(error);
  }
}
