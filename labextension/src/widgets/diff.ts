import { EditorState, Extension } from '@codemirror/state';
import { EditorView, lineNumbers } from '@codemirror/view';
import type { CodeEditor } from '@jupyterlab/codeeditor';
import { IEditorLanguageRegistry, jupyterTheme } from '@jupyterlab/codemirror';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import type { GitSyncAPI, IFileDiff } from '../api';
import {
  formatBytes,
  formatClock,
  formatMoment,
  TRANSLATION_DOMAIN
} from '../labels';

/**
 * One side of a comparison: a snapshot, or the file on disk now (`sha`
 * `null`).
 */
export interface IDiffSide {
  sha: string | null;
  /**
   * The snapshot's time (ISO 8601), for its label.
   */
  time?: string;
  /**
   * The file's name at that snapshot, where it was renamed since.
   */
  path?: string | null;
}

/**
 * A comparison of one file between a snapshot and another snapshot or the
 * file on disk, in the main area.
 *
 * The server computes the difference (nbdime's Python side, like nbdime's
 * own `/api/diff`). Notebooks are shown cell by cell with nbdime's diff
 * widgets and the app's rendermime; other text side by side in two
 * read-only CodeMirror editors (`@codemirror/merge`, the editor JupyterLab
 * ships, so themes and syntax highlighting match the file editor); binary
 * files by their sizes. nbdime and the merge view are loaded only when a
 * comparison is first opened.
 */
export class SnapshotDiff extends Panel {
  constructor(options: SnapshotDiff.IOptions) {
    super();
    this._options = options;
    this._trans = (options.translator ?? nullTranslator).load(
      TRANSLATION_DOMAIN
    );
    this.addClass('jp-gitsync-Diff');
    this._header = Private.header(
      options.path,
      this.describeSide(options.base),
      this.describeSide(options.remote),
      this._trans
    );
    this.addWidget(this._header);
    this._body = new Panel();
    this._body.addClass('jp-gitsync-Diff-body');
    this._body.node.tabIndex = -1;
    this.addWidget(this._body);
    this._status = Private.message(
      this._trans.__('Loading the comparison…'),
      'jp-gitsync-Diff-status'
    );
    this._body.addWidget(this._status);
  }

  /**
   * Settles once the comparison is shown (or its failure).
   */
  get ready(): Promise<void> {
    return this._ready;
  }

  /**
   * What a side is, in words: "Current file" or the snapshot's time.
   */
  describeSide(side: IDiffSide): string {
    if (side.sha === null) {
      return this._trans.__('Current file');
    }
    return side.time
      ? this._trans.__(
          'Snapshot of %1 (%2)',
          formatMoment(side.time),
          side.sha.slice(0, 7)
        )
      : this._trans.__('Snapshot %1', side.sha.slice(0, 7));
  }

  /**
   * A side in a word or two, for a tab: the snapshot's time or "now".
   */
  shortSide(side: IDiffSide): string {
    if (side.sha === null) {
      return this._trans.__('now');
    }
    return side.time ? formatClock(side.time) : side.sha.slice(0, 7);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (!this._started) {
      this._started = true;
      this._ready = this._load();
    }
  }

  protected onActivateRequest(): void {
    this._body.node.focus();
  }

  dispose(): void {
    this._mergeView?.destroy();
    this._mergeView = null;
    super.dispose();
  }

  private async _load(): Promise<void> {
    const { api, path, base, remote } = this._options;
    let diff: IFileDiff;
    try {
      diff = await api.diff(path, base.sha ?? '', remote.sha ?? undefined, {
        basePath: base.path,
        remotePath: remote.path
      });
    } catch (error) {
      this._fail(error);
      return;
    }
    if (this.isDisposed) {
      return;
    }
    try {
      switch (diff.format) {
        case 'notebook':
          await this._showNotebook(diff.base, diff.diff);
          break;
        case 'text':
          await this._showText(diff.base, diff.remote);
          break;
        case 'binary':
          this._showBinary(diff.base_size, diff.remote_size);
          break;
      }
    } catch (error) {
      this._fail(error);
    }
  }

  private async _showNotebook(
    base: { [key: string]: unknown },
    diff: unknown[]
  ): Promise<void> {
    const [{ NotebookDiffModel }, { NotebookDiffWidget }] = await Promise.all([
      import('nbdime/lib/diff/model'),
      import('nbdime/lib/diff/widget')
    ]);
    if (this.isDisposed) {
      return;
    }
    const model = new NotebookDiffModel(
      base as unknown as ConstructorParameters<typeof NotebookDiffModel>[0],
      diff as ConstructorParameters<typeof NotebookDiffModel>[1]
    );
    if (model.metadata) {
      model.metadata.collapsibleHeader = this._trans.__(
        'Notebook metadata changed'
      );
    }
    const widget = new NotebookDiffWidget({
      model,
      rendermime: this._options.rendermime,
      editorFactory: this._options.editorFactory,
      translator: this._options.translator
    });
    widget.addClass('jp-gitsync-Diff-notebook');
    this._status.dispose();
    if (diff.length === 0) {
      this._body.addWidget(
        Private.message(
          this._trans.__('No changes: both sides are the same.'),
          'jp-gitsync-Diff-same'
        )
      );
    }
    this._body.addWidget(widget);
    await widget.init();
  }

  private async _showText(base: string, remote: string): Promise<void> {
    const { MergeView } = await import('@codemirror/merge');
    if (this.isDisposed) {
      return;
    }
    const language = await this._language();
    const extensions = [
      lineNumbers(),
      EditorView.editable.of(false),
      EditorState.readOnly.of(true),
      EditorView.lineWrapping,
      jupyterTheme,
      ...(language ? [language] : [])
    ];
    this._status.dispose();
    if (base === remote) {
      this._body.addWidget(
        Private.message(
          this._trans.__('No changes: both sides are the same.'),
          'jp-gitsync-Diff-same'
        )
      );
    }
    const host = new Widget();
    host.addClass('jp-gitsync-Diff-text');
    this._body.addWidget(host);
    this._mergeView = new MergeView({
      a: { doc: base, extensions },
      b: { doc: remote, extensions },
      parent: host.node,
      gutter: true,
      highlightChanges: true,
      collapseUnchanged: { margin: 3, minSize: 6 }
    });
  }

  /**
   * The syntax highlighting of the file's language, when JupyterLab knows it.
   */
  private async _language(): Promise<Extension | null> {
    const languages = this._options.languages;
    if (!languages) {
      return null;
    }
    try {
      const found = languages.findByFileName(this._options.path);
      const loaded = found ? await languages.getLanguage(found) : null;
      return loaded?.support ?? null;
    } catch {
      return null;
    }
  }

  private _showBinary(baseSize: number, remoteSize: number): void {
    this._status.dispose();
    this._body.addWidget(
      Private.message(
        this._trans.__(
          'Binary files differ (%1 and %2); they cannot be shown side by side.',
          formatBytes(baseSize),
          formatBytes(remoteSize)
        ),
        'jp-gitsync-Diff-binary'
      )
    );
  }

  private _fail(error: unknown): void {
    if (this.isDisposed) {
      return;
    }
    this._status.dispose();
    const message = error instanceof Error ? error.message : String(error);
    const widget = Private.message(
      this._trans.__('Could not compare: %1', message),
      'jp-gitsync-Diff-error'
    );
    widget.node.setAttribute('role', 'alert');
    this._body.addWidget(widget);
  }

  private _body: Panel;
  private _header: Widget;
  private _mergeView: { destroy(): void } | null = null;
  private _options: SnapshotDiff.IOptions;
  private _ready: Promise<void> = Promise.resolve();
  private _started = false;
  private _status: Widget;
  private _trans: TranslationBundle;
}

/**
 * A namespace for `SnapshotDiff` statics.
 */
export namespace SnapshotDiff {
  export interface IOptions {
    api: GitSyncAPI;
    /**
     * The workspace-relative path of the file.
     */
    path: string;
    /**
     * The older side, shown on the left.
     */
    base: IDiffSide;
    /**
     * The newer side, shown on the right (the file on disk when its `sha`
     * is `null`).
     */
    remote: IDiffSide;
    /**
     * Renders markdown and outputs in notebook diffs.
     */
    rendermime: IRenderMimeRegistry;
    /**
     * Makes the code editors of notebook diffs (nbdime makes its own
     * without it).
     */
    editorFactory?: CodeEditor.Factory;
    /**
     * Finds the syntax highlighting of text files.
     */
    languages?: IEditorLanguageRegistry | null;
    translator?: ITranslator;
  }
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  export function message(text: string, className: string): Widget {
    const widget = new Widget();
    widget.addClass(className);
    const p = document.createElement('p');
    p.textContent = text;
    widget.node.appendChild(p);
    return widget;
  }

  /**
   * The file's name and what is compared with what: the older side in the
   * colour of deletions, the newer in the colour of additions (as nbdime's
   * own header shows them).
   */
  export function header(
    path: string,
    base: string,
    remote: string,
    trans: TranslationBundle
  ): Widget {
    const node = document.createElement('div');
    const file = document.createElement('div');
    file.className = 'jp-gitsync-Diff-file';
    file.textContent = path;
    const sides = document.createElement('div');
    sides.className = 'jp-gitsync-Diff-sides';
    const left = document.createElement('span');
    left.className = 'jp-gitsync-Diff-base';
    left.textContent = base;
    left.title = trans.__('Older: %1', base);
    const right = document.createElement('span');
    right.className = 'jp-gitsync-Diff-remote';
    right.textContent = remote;
    right.title = trans.__('Newer: %1', remote);
    sides.append(left, right);
    node.append(file, sides);
    const widget = new Widget({ node });
    widget.addClass('jp-gitsync-Diff-header');
    return widget;
  }
}
