import type { IStatusBar, Popup } from '@jupyterlab/statusbar';
import { showPopup } from '@jupyterlab/statusbar';
import type { ITranslator } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';

import type { IAuthInfo } from '../api';
import { CommandIDs } from '../commands';
import type { SyncStatusModel } from '../model';
import { SyncBadge } from './badge';
import { SyncDetails } from './details';

/**
 * The id of the status bar item.
 */
const BADGE_ID = 'jupyter-gitsync:badge';

/**
 * The DOM id of the badge.
 */
const BADGE_DOM_ID = 'jp-gitsync-badge';

/**
 * The Git Sync status bar item: the badge, and the details popover it opens
 * and closes.
 *
 * The popover is made each time it opens (so it asks again who is signed
 * in) and disposed when it closes; at most one is open. While it is open
 * the badge says so (`aria-expanded`), and Escape in it gives the focus
 * back to the badge.
 */
export class SyncStatusItem {
  constructor(options: SyncStatusItem.IOptions) {
    this._model = options.model;
    this._commands = options.commands;
    this._loadAuth = options.loadAuth;
    this._translator = options.translator;
    this._badge = new SyncBadge({
      model: this._model,
      relativeTimes: options.relativeTimes,
      translator: this._translator,
      onActivate: () => this.toggle()
    });
    this._badge.id = BADGE_DOM_ID;
  }

  /**
   * The widget shown in the status bar.
   */
  get badge(): SyncBadge {
    return this._badge;
  }

  /**
   * Whether the details popover is open.
   */
  get isOpen(): boolean {
    return this._popup !== null;
  }

  /**
   * Show times as "3 minutes ago" rather than as a date and time, in the
   * badge and in the popovers opened from now on.
   */
  get relativeTimes(): boolean {
    return this._badge.relativeTimes;
  }
  set relativeTimes(value: boolean) {
    this._badge.relativeTimes = value;
  }

  /**
   * Open the details popover, unless it is open already.
   */
  open(): void {
    if (!this._popup) {
      this.toggle();
    }
  }

  /**
   * Close the details popover if it is open, open it otherwise (what
   * activating the badge does).
   */
  toggle(): void {
    if (this._popup) {
      this._popup.dispose();
      return;
    }
    const anchor = this._badge;
    const popup = showPopup({
      body: this._createDetails(),
      anchor,
      align: 'left',
      hasDynamicSize: true
    });
    this._popup = popup;
    anchor.expanded = true;
    popup.disposed.connect(this._onPopupDisposed, this);
  }

  /**
   * The body of a new popover. An action other than "Sync now" closes the
   * popover before it runs (it opens a dialog or a new tab, or changes what
   * the popover would show).
   */
  private _createDetails(): SyncDetails {
    const body = new SyncDetails({
      model: this._model,
      commands: this._commands,
      commandIds: CommandIDs,
      loadAuth: this._loadAuth,
      relativeTimes: this.relativeTimes,
      translator: this._translator,
      onAction: id => {
        if (id !== CommandIDs.syncNow) {
          this._popup?.dispose();
        }
      }
    });
    body.node.addEventListener('keydown', event => {
      if (event.key === 'Escape') {
        requestAnimationFrame(() => this._badge.focus());
      }
    });
    return body;
  }

  private _onPopupDisposed(): void {
    this._popup = null;
    this._badge.expanded = false;
  }

  private _badge: SyncBadge;
  private _commands: CommandRegistry;
  private _loadAuth: () => Promise<IAuthInfo>;
  private _model: SyncStatusModel;
  private _popup: Popup | null = null;
  private _translator: ITranslator;
}

/**
 * A namespace for `SyncStatusItem` statics.
 */
export namespace SyncStatusItem {
  export interface IOptions {
    model: SyncStatusModel;
    /**
     * Where the popover's action buttons run their commands.
     */
    commands: CommandRegistry;
    /**
     * Ask the server who is signed in (called when the popover opens).
     */
    loadAuth: () => Promise<IAuthInfo>;
    /**
     * The initial value of `relativeTimes`.
     */
    relativeTimes: boolean;
    translator: ITranslator;
  }
}

/**
 * Make the Git Sync status bar item and add it to the left of the status
 * bar.
 */
export function addStatusItem(
  statusBar: IStatusBar,
  options: SyncStatusItem.IOptions
): SyncStatusItem {
  const item = new SyncStatusItem(options);
  statusBar.registerStatusItem(BADGE_ID, {
    item: item.badge,
    align: 'left',
    rank: 50
  });
  return item;
}
