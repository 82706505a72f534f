import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import {
  checkIcon,
  circleEmptyIcon,
  errorIcon,
  LabIcon,
  lockIcon,
  offlineBoltIcon,
  ReactWidget,
  refreshIcon
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { gitSyncIcon } from '../icons';
import {
  describeStatus,
  IStatusDescription,
  msUntilAgeChanges,
  TRANSLATION_DOMAIN
} from '../labels';
import { SyncStatusModel } from '../model';
import { SteadyStatus } from '../steady';

/**
 * The CSS class of the status bar item.
 */
const ITEM_CLASS = 'jp-gitsync-BadgeItem';

/**
 * The status bar item showing the sync state.
 *
 * It shows the model's status smoothed by `SteadyStatus` (so a quick sync
 * does not flash), re-renders when it changes, and when the age it shows
 * ("Saved to GitHub · 12 s ago") would read differently: a local clock that
 * never calls the server. Activating it (click, Enter or Space) calls
 * `onActivate`.
 */
export class SyncBadge extends ReactWidget {
  constructor(options: SyncBadge.IOptions) {
    super();
    this._model = options.model;
    this._steady = options.steady ?? new SteadyStatus({ model: this._model });
    this._ownsSteady = !options.steady;
    this._onActivate = options.onActivate;
    this._relativeTimes = options.relativeTimes ?? true;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass(ITEM_CLASS);
    this._model.changed.connect(this._onModelChanged, this);
    this._steady.changed.connect(this._onModelChanged, this);
  }

  /**
   * Whether the details popover is open (for `aria-expanded`).
   */
  get expanded(): boolean {
    return this._expanded;
  }
  set expanded(value: boolean) {
    if (value !== this._expanded) {
      this._expanded = value;
      this.update();
    }
  }

  /**
   * Move the keyboard focus to the badge.
   */
  focus(): void {
    this.node.querySelector<HTMLElement>('.jp-gitsync-Badge')?.focus();
  }

  /**
   * Show times as "3 minutes ago" rather than as a date and time.
   */
  get relativeTimes(): boolean {
    return this._relativeTimes;
  }
  set relativeTimes(value: boolean) {
    if (value !== this._relativeTimes) {
      this._relativeTimes = value;
      this.update();
    }
  }

  /**
   * What the badge currently shows.
   */
  get description(): IStatusDescription {
    return describeStatus(this._steady.status, {
      requestError: this._model.requestError,
      syncing: this._model.isSyncing,
      relativeTimes: this._relativeTimes,
      trans: this._trans
    });
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._clearTick();
    this._model.changed.disconnect(this._onModelChanged, this);
    this._steady.changed.disconnect(this._onModelChanged, this);
    if (this._ownsSteady) {
      this._steady.dispose();
    }
    super.dispose();
  }

  protected onBeforeDetach(msg: Message): void {
    this._clearTick();
    super.onBeforeDetach(msg);
  }

  protected render(): JSX.Element {
    const description = this.description;
    const icon = Private.iconFor(description);
    const refresh = (): void => this.update();
    this._scheduleTick(description);
    return (
      <div
        className={`jp-gitsync-Badge jp-gitsync-Badge-${description.tone}`}
        data-state={description.state}
        role="button"
        tabIndex={0}
        title={description.title}
        aria-label={`${this._trans.__('Git Sync')}: ${description.label}. ${description.title}`}
        aria-haspopup="dialog"
        aria-expanded={this._expanded}
        onClick={this._onActivate}
        onKeyDown={this._onKeyDown}
        onMouseEnter={refresh}
        onFocus={refresh}
      >
        <icon.react tag="span" className="jp-gitsync-Badge-icon" />
        <span className="jp-gitsync-Badge-label">{description.label}</span>
      </div>
    );
  }

  private _onKeyDown = (event: React.KeyboardEvent<HTMLDivElement>): void => {
    if (
      event.key === 'Enter' ||
      event.key === ' ' ||
      (event.key === 'Escape' && this._expanded)
    ) {
      event.preventDefault();
      event.stopPropagation();
      this._onActivate();
    }
  };

  private _onModelChanged(): void {
    this.update();
  }

  /**
   * Re-render when the shown age would change ("just now" → "5 s ago").
   */
  private _scheduleTick(description: IStatusDescription): void {
    this._clearTick();
    const syncedAt = this._steady.status?.last_synced_at;
    if (
      !this._relativeTimes ||
      description.state !== 'synced' ||
      !syncedAt ||
      !this.isAttached
    ) {
      return;
    }
    const wait = msUntilAgeChanges(syncedAt);
    if (wait !== null) {
      this._tick = setTimeout(() => {
        this._tick = null;
        this.update();
      }, wait + 50);
    }
  }

  private _clearTick(): void {
    if (this._tick !== null) {
      clearTimeout(this._tick);
      this._tick = null;
    }
  }

  private _expanded = false;
  private _model: SyncStatusModel;
  private _ownsSteady: boolean;
  private _steady: SteadyStatus;
  private _tick: ReturnType<typeof setTimeout> | null = null;
  private _onActivate: () => void;
  private _relativeTimes: boolean;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `SyncBadge` statics.
 */
export namespace SyncBadge {
  export interface IOptions {
    model: SyncStatusModel;
    /**
     * The smoothed status to show; made from `model` when not given.
     */
    steady?: SteadyStatus;
    /**
     * Called when the badge is clicked or activated from the keyboard.
     */
    onActivate: () => void;
    relativeTimes?: boolean;
    translator?: ITranslator;
  }
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  export function iconFor(description: IStatusDescription): LabIcon {
    switch (description.state) {
      case 'synced':
        return checkIcon;
      case 'offline':
        return offlineBoltIcon;
      case 'auth-required':
        return lockIcon;
      case 'pending':
      case 'unpushed':
        return circleEmptyIcon;
      case 'disabled':
        return gitSyncIcon;
      case 'conflict':
      case 'error':
        return errorIcon;
      default:
        break;
    }
    return description.tone === 'busy' ? refreshIcon : gitSyncIcon;
  }
}
