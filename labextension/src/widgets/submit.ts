import { Dialog } from '@jupyterlab/apputils';
import type { Widget } from '@lumino/widgets';

/**
 * A dialog body that does its work before the dialog closes: the dialog
 * stays open while it runs (so errors are shown where the user typed) and
 * closes only when `submit` says it is done.
 */
export interface ISubmittable<T> extends Dialog.IBodyWidget<T> {
  /**
   * Whether what was entered can be submitted (the accept button is enabled
   * only then).
   */
  readonly valid: boolean;
  /**
   * Do the work; resolves `true` when the dialog may close, `false` to keep
   * it open (the body shows why). Never rejects.
   */
  submit(): Promise<boolean>;
  /**
   * Called by the body when what was entered changed (its validity may
   * have); the dialog sets it.
   */
  onChange?: (() => void) | null;
}

/**
 * A dialog whose accept button (and Enter) runs its body's `submit` instead
 * of closing at once; its buttons are disabled while that runs, and the
 * accept button while the body is not `valid`.
 */
export class SubmitDialog<T> extends Dialog<T> {
  constructor(options: SubmitDialog.IOptions<T>) {
    super(options);
    this._submittable = options.body;
    this._acceptIndex = (options.buttons ?? []).findIndex(b => b.accept);
    this._submittable.onChange = () => this.refreshButtons();
    this.addClass('jp-gitsync-SubmitDialog');
  }

  /**
   * Show the dialog, its accept button enabled after the body's validity.
   */
  launch(): Promise<Dialog.IResult<T>> {
    const shown = super.launch();
    void this.ready.then(() => this.refreshButtons());
    return shown;
  }

  /**
   * Whether the body's work is running.
   */
  get busy(): boolean {
    return this._busy;
  }

  /**
   * Enable or disable the accept button after the body's validity; call when
   * it changes.
   */
  refreshButtons(): void {
    const buttons = this.node.querySelectorAll<HTMLButtonElement>(
      '.jp-Dialog-footer button'
    );
    buttons.forEach((button, index) => {
      button.disabled =
        this._busy || (index === this._acceptIndex && !this._submittable.valid);
    });
  }

  /**
   * End with only a Close button: the work is done, the body shows what
   * happened.
   */
  finish(closeLabel: string): void {
    this._finished = true;
    const buttons = this.node.querySelectorAll<HTMLButtonElement>(
      '.jp-Dialog-footer button'
    );
    buttons.forEach((button, index) => {
      button.disabled = false;
      if (index === this._acceptIndex) {
        const label = button.querySelector('.jp-Dialog-buttonLabel') ?? button;
        label.textContent = closeLabel;
        label.setAttribute('aria-label', closeLabel);
        button.focus();
      } else {
        button.hidden = true;
      }
    });
  }

  resolve(index?: number): void {
    const accepting =
      !this._finished &&
      this._acceptIndex >= 0 &&
      (index === undefined || index === this._acceptIndex);
    if (!accepting) {
      if (!this._busy) {
        super.resolve(index);
      }
      return;
    }
    if (this._busy || !this._submittable.valid) {
      return;
    }
    this._busy = true;
    this.refreshButtons();
    void this._submittable.submit().then(done => {
      this._busy = false;
      if (this.isDisposed) {
        return;
      }
      if (done && !this._finished) {
        super.resolve(this._acceptIndex);
        return;
      }
      if (!this._finished) {
        this.refreshButtons();
      }
    });
  }

  reject(): void {
    // The work runs on the server and is not undone by closing: wait for it.
    if (!this._busy) {
      super.reject();
    }
  }

  private _acceptIndex: number;
  private _busy = false;
  private _finished = false;
  private _submittable: ISubmittable<T>;
}

/**
 * A namespace for `SubmitDialog` statics.
 */
export namespace SubmitDialog {
  export interface IOptions<T> extends Partial<Dialog.IOptions<T>> {
    body: ISubmittable<T> & Widget;
  }
}
