import { Clipboard, Dialog } from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { copyIcon, ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import type { GitSyncAPI, IAuthInfo, IDeviceFlow } from '../api';
import { TRANSLATION_DOMAIN } from '../labels';
import type { SyncStatusModel } from '../model';

/**
 * Where a sign-in stands.
 */
export type SignInPhase = 'starting' | 'waiting' | 'signed-in' | 'failed';

/**
 * The least time between two checks of a running sign-in, whatever the
 * server says (a local server may say 0).
 */
const MIN_CHECK_MS = 1000;

/**
 * The body of the sign-in dialog: starts GitHub's device flow, shows the
 * code (with a copy button) and where to enter it, and waits.
 *
 * It learns that the sign-in is done from the status events (the engine
 * syncs once it has the token) and by asking `GET gitsync/auth` at the
 * flow's interval; both only while the dialog is open.
 */
export class SignInPanel extends ReactWidget {
  constructor(options: SignInPanel.IOptions) {
    super();
    this._api = options.api;
    this._model = options.model ?? null;
    this._minCheckMs = options.minCheckMs ?? MIN_CHECK_MS;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass('jp-gitsync-SignIn');
    this._model?.changed.connect(this._onStatus, this);
  }

  get phase(): SignInPhase {
    return this._phase;
  }

  /**
   * The running (or last) sign-in, once the server started one.
   */
  get flow(): IDeviceFlow | null {
    return this._flow;
  }

  /**
   * Why the sign-in failed, in plain words.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Who signed in, once done.
   */
  get auth(): IAuthInfo | null {
    return this._auth;
  }

  /**
   * Emitted once when the sign-in succeeds.
   */
  get signedIn(): ISignal<this, IAuthInfo> {
    return this._signedIn;
  }

  /**
   * Start a sign-in (or continue the running one).
   */
  async start(): Promise<void> {
    this._clearTimer();
    this._setPhase('starting');
    this._error = null;
    try {
      this._flow = await this._api.startSignIn();
    } catch (error) {
      this._fail(Private.messageOf(error));
      return;
    }
    if (this.isDisposed) {
      return;
    }
    if (this._flow.state !== 'pending') {
      this._fail(this._flow.message ?? this._trans.__('The sign-in failed.'));
      return;
    }
    this._setPhase('waiting');
    this._scheduleCheck();
  }

  /**
   * Ask the server whether the sign-in is done.
   */
  async check(): Promise<void> {
    if (this._phase !== 'waiting' || this._checking) {
      return;
    }
    this._clearTimer();
    this._checking = true;
    let auth: IAuthInfo;
    try {
      auth = await this._api.auth();
    } catch (error) {
      // The server may be restarting: try again at the next interval.
      console.warn('Git Sync: could not check the sign-in.', error);
      this._scheduleCheck();
      return;
    } finally {
      this._checking = false;
    }
    if (this.isDisposed || this._phase !== 'waiting') {
      return;
    }
    const flow = auth.device_flow;
    if (auth.signed_in && auth.provider === 'device') {
      this._auth = auth;
      this._setPhase('signed-in');
      this._signedIn.emit(auth);
    } else if (flow && flow.state !== 'pending') {
      this._flow = flow;
      this._fail(flow.message ?? this._trans.__('The sign-in ended.'));
    } else if (!flow) {
      this._fail(this._trans.__('The sign-in was cancelled.'));
    } else {
      this._flow = flow;
      this._scheduleCheck();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._clearTimer();
    this._model?.changed.disconnect(this._onStatus, this);
    super.dispose();
    Signal.clearData(this);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this._phase === 'starting' && !this._started) {
      this._started = true;
      void this.start();
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this._clearTimer();
    super.onBeforeDetach(msg);
  }

  protected render(): JSX.Element {
    const trans = this._trans;
    switch (this._phase) {
      case 'starting':
        return (
          <p className="jp-gitsync-SignIn-status" role="status">
            {trans.__('Asking GitHub for a sign-in code…')}
          </p>
        );
      case 'signed-in':
        return (
          <p className="jp-gitsync-SignIn-status" role="status">
            {this._auth?.login
              ? trans.__('Signed in as @%1.', this._auth.login)
              : trans.__('Signed in.')}
          </p>
        );
      case 'failed':
        return (
          <div className="jp-gitsync-SignIn-failed" role="alert">
            <p className="jp-gitsync-SignIn-error">{this._error}</p>
            <button
              type="button"
              className="jp-Button jp-mod-styled jp-mod-accept"
              onClick={() => void this.start()}
            >
              {trans.__('Try again')}
            </button>
          </div>
        );
      case 'waiting':
      default:
        return this._renderCode();
    }
  }

  private _renderCode(): JSX.Element {
    const trans = this._trans;
    const flow = this._flow!;
    const minutes = Math.max(1, Math.round(flow.expires_in / 60));
    return (
      <div className="jp-gitsync-SignIn-waiting">
        <p>
          {trans.__('Open this page and enter the code:')}{' '}
          <a
            className="jp-gitsync-SignIn-link"
            href={flow.verification_uri}
            target="_blank"
            rel="noopener noreferrer"
          >
            {flow.verification_uri}
          </a>
        </p>
        <div className="jp-gitsync-SignIn-codeRow">
          <code
            className="jp-gitsync-SignIn-code"
            aria-label={trans.__('Sign-in code')}
          >
            {flow.user_code}
          </code>
          <button
            type="button"
            className="jp-Button jp-mod-styled jp-mod-reject jp-gitsync-SignIn-copy"
            title={trans.__('Copy the code')}
            onClick={() => void this._copy(flow.user_code)}
          >
            <copyIcon.react tag="span" className="jp-gitsync-SignIn-copyIcon" />
            {this._copied ? trans.__('Copied') : trans.__('Copy')}
          </button>
        </div>
        <p className="jp-gitsync-SignIn-status" role="status">
          {trans.__(
            'Waiting for you to enter the code… This window closes by itself once you are signed in.'
          )}
        </p>
        <p className="jp-gitsync-Details-muted">
          {trans._n(
            'The code expires in %1 minute.',
            'The code expires in %1 minutes.',
            minutes
          )}
        </p>
      </div>
    );
  }

  private async _copy(code: string): Promise<void> {
    try {
      await navigator.clipboard.writeText(code);
    } catch {
      Clipboard.copyToSystem(code);
    }
    this._copied = true;
    this.update();
  }

  private _onStatus(
    _: SyncStatusModel,
    change: SyncStatusModel.IChangedArgs
  ): void {
    // The engine syncs as soon as it has the new token.
    if (change.source === 'event' && change.status?.state === 'synced') {
      void this.check();
    }
  }

  private _scheduleCheck(): void {
    this._clearTimer();
    if (this.isDisposed || this._phase !== 'waiting' || !this._flow) {
      return;
    }
    const wait = Math.max(this._minCheckMs, this._flow.interval * 1000);
    this._timer = setTimeout(() => {
      this._timer = null;
      void this.check();
    }, wait);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _fail(message: string): void {
    this._clearTimer();
    this._error = message;
    this._setPhase('failed');
  }

  private _setPhase(phase: SignInPhase): void {
    this._phase = phase;
    if (!this.isDisposed) {
      this.update();
    }
  }

  private _api: GitSyncAPI;
  private _auth: IAuthInfo | null = null;
  private _checking = false;
  private _copied = false;
  private _error: string | null = null;
  private _flow: IDeviceFlow | null = null;
  private _minCheckMs: number;
  private _model: SyncStatusModel | null;
  private _phase: SignInPhase = 'starting';
  private _signedIn = new Signal<this, IAuthInfo>(this);
  private _started = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `SignInPanel` statics.
 */
export namespace SignInPanel {
  export interface IOptions {
    api: GitSyncAPI;
    /**
     * The status to follow: a sync after the sign-in is checked at once.
     */
    model?: SyncStatusModel | null;
    /**
     * The least time between two checks, whatever the flow's interval says;
     * one second by default.
     */
    minCheckMs?: number;
    translator?: ITranslator;
  }
}

/**
 * Show the sign-in dialog; resolves with who signed in, or `null` when it
 * was closed first.
 */
export async function showSignInDialog(
  options: SignInPanel.IOptions
): Promise<IAuthInfo | null> {
  const trans = (options.translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
  const body = new SignInPanel(options);
  const dialog = new Dialog({
    title: trans.__('Sign in to GitHub'),
    body,
    buttons: [Dialog.cancelButton({ label: trans.__('Close') })],
    hasClose: true
  });
  dialog.addClass('jp-gitsync-SignInDialog');
  body.signedIn.connect(() => dialog.resolve(0));
  await dialog.launch();
  return body.phase === 'signed-in' ? body.auth : null;
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
