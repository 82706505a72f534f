import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import {
  checkIcon,
  errorIcon,
  LabIcon,
  lockIcon,
  offlineBoltIcon,
  ReactWidget,
  refreshIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { gitSyncIcon } from '../icons';
import {
  describeStatus,
  IStatusDescription,
  TRANSLATION_DOMAIN
} from '../labels';
import { SyncStatusModel } from '../model';

/**
 * The CSS class of the status bar item.
 */
const ITEM_CLASS = 'jp-gitsync-BadgeItem';

/**
 * The status bar item showing the sync state.
 *
 * It re-renders when the model changes and when the pointer or keyboard
 * focus reaches it (so relative times in its tooltip are fresh); it never
 * polls. Activating it (click, Enter or Space) calls `onActivate`.
 */
export class SyncBadge extends ReactWidget {
  constructor(options: SyncBadge.IOptions) {
    super();
    this._model = options.model;
    this._onActivate = options.onActivate;
    this._relativeTimes = options.relativeTimes ?? true;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass(ITEM_CLASS);
    this._model.changed.connect(this._onModelChanged, this);
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
    return describeStatus(this._model.status, {
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
    this._model.changed.disconnect(this._onModelChanged, this);
    super.dispose();
  }

  protected render(): JSX.Element {
    const description = this.description;
    const icon = Private.iconFor(description);
    const refresh = (): void => this.update();
    return (
      <div
        className={`jp-gitsync-Badge jp-gitsync-Badge-${description.tone}`}
        data-state={description.state}
        role="button"
        tabIndex={0}
        title={description.title}
        aria-label={description.title}
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
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      event.stopPropagation();
      this._onActivate();
    }
  };

  private _onModelChanged(): void {
    this.update();
  }

  private _model: SyncStatusModel;
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
      case 'conflict':
      case 'error':
        return errorIcon;
      default:
        break;
    }
    return description.tone === 'busy' ? refreshIcon : gitSyncIcon;
  }
}
