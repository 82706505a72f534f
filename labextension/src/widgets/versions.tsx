import { Dialog } from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { GitSyncAPI, IPublishResult, IVersion } from '../api';
import {
  branchSlug,
  publishBranchProblem,
  versionNameProblem
} from '../history';
import {
  describeRefNameProblem,
  formatMoment,
  TRANSLATION_DOMAIN
} from '../labels';
import { ISubmittable, SubmitDialog } from './submit';

/**
 * The body of "Save a Version…": a name, checked as it is typed with git's
 * rules for reference names (the server's refusal is shown too), and a
 * message.
 */
export class VersionForm
  extends ReactWidget
  implements ISubmittable<IVersion | null>
{
  constructor(options: VersionForm.IOptions) {
    super();
    this._api = options.api;
    this._sha = options.sha ?? null;
    this._time = options.time ?? null;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass('jp-gitsync-Form');
    this.addClass('jp-gitsync-VersionForm');
  }

  /**
   * Called when `valid` may have changed.
   */
  onChange: (() => void) | null = null;

  get name(): string {
    return this._name;
  }
  set name(value: string) {
    this._name = value;
    this._touched = true;
    this._serverError = null;
    this._changed();
  }

  get message(): string {
    return this._message;
  }
  set message(value: string) {
    this._message = value;
    this._changed();
  }

  get valid(): boolean {
    return versionNameProblem(this._name.trim()) === null;
  }

  /**
   * The version saved, once it is.
   */
  getValue(): IVersion | null {
    return this._saved;
  }

  async submit(): Promise<boolean> {
    if (!this.valid) {
      this._touched = true;
      this.update();
      return false;
    }
    this._busy = true;
    this._serverError = null;
    this.update();
    try {
      this._saved = await this._api.saveVersion({
        name: this._name.trim(),
        message: this._message.trim(),
        sha: this._sha ?? undefined
      });
      return true;
    } catch (error) {
      this._serverError =
        error instanceof Error ? error.message : String(error);
      return false;
    } finally {
      this._busy = false;
      if (!this.isDisposed) {
        this.update();
      }
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this.renderPromise?.then(() => {
      this.node.querySelector<HTMLInputElement>('input')?.focus();
    });
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    const problem = versionNameProblem(this._name.trim());
    const nameError =
      this._touched && problem ? describeRefNameProblem(problem, trans) : null;
    return (
      <div className="jp-gitsync-Form-content">
        <p className="jp-gitsync-Form-intro">
          {this._sha
            ? trans.__(
                'Give the snapshot of %1 a name, to find it again and to restore or publish it later. Versions are pushed with your work and never pruned.',
                this._time ? formatMoment(this._time) : this._sha.slice(0, 7)
              )
            : trans.__(
                'Save the workspace as it is now under a name, to find it again and to restore or publish it later. Versions are pushed with your work and never pruned.'
              )}
        </p>
        <label className="jp-gitsync-Form-field">
          <span>{trans.__('Name')}</span>
          <input
            className="jp-mod-styled"
            name="name"
            type="text"
            value={this._name}
            placeholder={trans.__('e.g. submitted-draft')}
            aria-invalid={nameError !== null}
            aria-describedby="jp-gitsync-version-name-error"
            disabled={this._busy}
            onChange={event => {
              this.name = event.currentTarget.value;
            }}
          />
        </label>
        <p
          id="jp-gitsync-version-name-error"
          className="jp-gitsync-Form-error"
          role="alert"
        >
          {nameError ?? this._serverError ?? ''}
        </p>
        <label className="jp-gitsync-Form-field">
          <span>{trans.__('Message')}</span>
          <textarea
            className="jp-mod-styled"
            name="message"
            rows={3}
            value={this._message}
            placeholder={trans.__('What this version is (optional)')}
            disabled={this._busy}
            onChange={event => {
              this.message = event.currentTarget.value;
            }}
          />
        </label>
        {this._busy ? (
          <p className="jp-gitsync-Form-progress" role="status">
            {trans.__('Saving the version…')}
          </p>
        ) : null}
      </div>
    );
  }

  private _changed(): void {
    this.update();
    this.onChange?.();
  }

  private _api: GitSyncAPI;
  private _busy = false;
  private _message = '';
  private _name = '';
  private _saved: IVersion | null = null;
  private _serverError: string | null = null;
  private _sha: string | null;
  private _time: string | null;
  private _touched = false;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `VersionForm` statics.
 */
export namespace VersionForm {
  export interface IOptions {
    api: GitSyncAPI;
    /**
     * The snapshot to name; a fresh snapshot of now when not given.
     */
    sha?: string | null;
    /**
     * That snapshot's time, for the text.
     */
    time?: string | null;
    translator?: ITranslator;
  }
}

/**
 * Ask for a name and a message and save the version; resolves with it, or
 * `null` when cancelled.
 */
export async function showVersionDialog(
  options: VersionForm.IOptions
): Promise<IVersion | null> {
  const trans = (options.translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
  const form = new VersionForm(options);
  const dialog = new SubmitDialog<IVersion | null>({
    title: trans.__('Save a Version'),
    body: form,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Save Version') })
    ]
  });
  dialog.addClass('jp-gitsync-VersionDialog');
  const result = await dialog.launch();
  return result.button.accept ? result.value : null;
}

/**
 * The longest pull request title the server takes.
 */
const TITLE_MAX_LENGTH = 256;

/**
 * What to publish, as the dialog says it.
 */
export interface IPublishSource {
  /**
   * A snapshot sha or version name; the workspace now when not given.
   */
  source?: string | null;
  /**
   * The source's message; its first line is the default title.
   */
  message?: string | null;
}

/**
 * The body of "Publish to GitHub…": a title, a branch (made from the title
 * until it is edited), a description; then the progress, and at the end the
 * pull request's link, or the server's words when the remote is not GitHub.
 */
export class PublishForm
  extends ReactWidget
  implements ISubmittable<IPublishResult | null>
{
  constructor(options: PublishForm.IOptions) {
    super();
    this._api = options.api;
    this._source = options.source ?? null;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this._title = (options.message ?? '').split(/\r?\n/, 1)[0].trim();
    this._branch = branchSlug(this._title);
    this.addClass('jp-gitsync-Form');
    this.addClass('jp-gitsync-PublishForm');
  }

  /**
   * Called when `valid` may have changed.
   */
  onChange: (() => void) | null = null;

  /**
   * Called once the work is published, with the label of the one button
   * left (the dialog then only closes).
   */
  onDone: ((closeLabel: string) => void) | null = null;

  /**
   * The pull request's title.
   */
  get pullRequestTitle(): string {
    return this._title;
  }
  set pullRequestTitle(value: string) {
    this._title = value;
    if (!this._branchEdited) {
      this._branch = branchSlug(value);
    }
    this._error = null;
    this._changed();
  }

  get branch(): string {
    return this._branch;
  }
  set branch(value: string) {
    this._branch = value;
    this._branchEdited = true;
    this._branchTouched = true;
    this._error = null;
    this._changed();
  }

  get description(): string {
    return this._description;
  }
  set description(value: string) {
    this._description = value;
    this._changed();
  }

  get valid(): boolean {
    return (
      this._result === null &&
      this._title.trim() !== '' &&
      publishBranchProblem(this._branch.trim()) === null
    );
  }

  /**
   * What was published, once it is.
   */
  getValue(): IPublishResult | null {
    return this._result;
  }

  async submit(): Promise<boolean> {
    if (!this.valid) {
      this._branchTouched = true;
      this.update();
      return false;
    }
    this._busy = true;
    this._error = null;
    this.update();
    try {
      this._result = await this._api.publish({
        branch: this._branch.trim(),
        title: this._title.trim(),
        body: this._description,
        source: this._source ?? undefined
      });
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    } finally {
      this._busy = false;
    }
    if (!this.isDisposed) {
      this.update();
      if (this._result) {
        this.onDone?.(this._trans.__('Close'));
      }
    }
    // The dialog stays open: it ends with the link.
    return false;
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this.renderPromise?.then(() => {
      this.node.querySelector<HTMLInputElement>('input')?.focus();
    });
  }

  protected render(): JSX.Element {
    const result = this._result;
    if (result) {
      return this._renderResult(result);
    }
    const trans = this._trans;
    const problem = publishBranchProblem(this._branch.trim());
    const branchError =
      (this._branchTouched || this._title !== '') && problem
        ? describeRefNameProblem(problem, trans)
        : null;
    const disabled = this._busy;
    return (
      <div className="jp-gitsync-Form-content">
        <p className="jp-gitsync-Form-intro">
          {this._source
            ? trans.__(
                'Publish %1 as a pull request: one commit on a branch of its own, on top of the commit your work started from.',
                this._source.length === 40
                  ? trans.__('the snapshot %1', this._source.slice(0, 7))
                  : trans.__('the version %1', this._source)
              )
            : trans.__(
                'Publish the workspace as it is now as a pull request: one commit on a branch of its own, on top of the commit your work started from.'
              )}
        </p>
        <label className="jp-gitsync-Form-field">
          <span>{trans.__('Title')}</span>
          <input
            className="jp-mod-styled"
            name="title"
            type="text"
            maxLength={TITLE_MAX_LENGTH}
            value={this._title}
            placeholder={trans.__('e.g. Fix plot axes')}
            disabled={disabled}
            onChange={event => {
              this.pullRequestTitle = event.currentTarget.value;
            }}
          />
        </label>
        <label className="jp-gitsync-Form-field">
          <span>{trans.__('Branch')}</span>
          <input
            className="jp-mod-styled"
            name="branch"
            type="text"
            value={this._branch}
            placeholder={trans.__('e.g. fix-plot-axes')}
            aria-invalid={branchError !== null}
            aria-describedby="jp-gitsync-publish-branch-error"
            disabled={disabled}
            onChange={event => {
              this.branch = event.currentTarget.value;
            }}
          />
        </label>
        <p
          id="jp-gitsync-publish-branch-error"
          className="jp-gitsync-Form-error"
        >
          {branchError ?? ''}
        </p>
        <label className="jp-gitsync-Form-field">
          <span>{trans.__('Description')}</span>
          <textarea
            className="jp-mod-styled"
            name="description"
            rows={4}
            value={this._description}
            placeholder={trans.__('What changed and why (optional)')}
            disabled={disabled}
            onChange={event => {
              this.description = event.currentTarget.value;
            }}
          />
        </label>
        {this._busy ? (
          <div className="jp-gitsync-Form-progress" role="status">
            <progress aria-label={trans.__('Publishing')} />
            <span>
              {trans.__(
                'Publishing: making the commit, pushing the branch and opening the pull request…'
              )}
            </span>
          </div>
        ) : null}
        {this._error ? (
          <p
            className="jp-gitsync-Form-error jp-gitsync-Form-failure"
            role="alert"
          >
            {trans.__('Could not publish: %1', this._error)}
          </p>
        ) : null}
      </div>
    );
  }

  private _renderResult(result: IPublishResult): JSX.Element {
    const trans = this._trans;
    return (
      <div className="jp-gitsync-Form-content jp-gitsync-PublishResult">
        {result.pull_request_url ? (
          <>
            <p role="status">
              {trans.__('The pull request is open on GitHub:')}
            </p>
            <p>
              <a
                className="jp-gitsync-PublishResult-link"
                href={result.pull_request_url}
                target="_blank"
                rel="noopener noreferrer"
              >
                {result.pull_request_url}
              </a>
            </p>
          </>
        ) : (
          <p role="status">
            {result.message ||
              trans.__('The branch %1 was pushed.', result.branch)}
          </p>
        )}
        <p className="jp-gitsync-Form-muted">
          {trans.__('Branch: %1', result.branch)}
          {result.commit ? ` · ${result.commit.slice(0, 7)}` : ''}
        </p>
        {result.pull_request_url && result.message ? (
          <p className="jp-gitsync-Form-muted">{result.message}</p>
        ) : null}
      </div>
    );
  }

  private _changed(): void {
    this.update();
    this.onChange?.();
  }

  private _api: GitSyncAPI;
  private _branch: string;
  private _branchEdited = false;
  private _branchTouched = false;
  private _busy = false;
  private _description = '';
  private _error: string | null = null;
  private _result: IPublishResult | null = null;
  private _source: string | null;
  private _title: string;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `PublishForm` statics.
 */
export namespace PublishForm {
  export interface IOptions extends IPublishSource {
    api: GitSyncAPI;
    translator?: ITranslator;
  }
}

/**
 * Ask what to publish, publish it, and end with the pull request's link;
 * resolves with what was published, or `null` when nothing was.
 */
export async function showPublishDialog(
  options: PublishForm.IOptions
): Promise<IPublishResult | null> {
  const trans = (options.translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
  const form = new PublishForm(options);
  const dialog = new SubmitDialog<IPublishResult | null>({
    title: trans.__('Publish to GitHub'),
    body: form,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Publish') })
    ]
  });
  dialog.addClass('jp-gitsync-PublishDialog');
  form.onDone = label => dialog.finish(label);
  await dialog.launch();
  return form.getValue();
}
