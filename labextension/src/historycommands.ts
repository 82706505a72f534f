import type { ILabShell, JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  MainAreaWidget,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import type { IEditorServices } from '@jupyterlab/codeeditor';
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import type { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';
import type { Widget } from '@lumino/widgets';

import type { GitSyncAPI } from './api';
import { CommandIDs } from './commands';
import { historyIcon } from './icons';
import { formatMoment, TRANSLATION_DOMAIN } from './labels';
import type { SyncStatusModel } from './model';
import { HistoryPanel } from './widgets/history';
import type { IHistoryCommands } from './widgets/history';

/**
 * The DOM id of the History panel.
 */
export const HISTORY_PANEL_ID = 'jp-gitsync-history';

/**
 * States in which the server cannot take a version, a restore or a publish.
 */
const NOT_READY = new Set(['disabled', 'starting', 'restoring', 'stopping']);

/**
 * The History commands, as the panel names them.
 */
export const HISTORY_COMMANDS: IHistoryCommands = {
  compare: CommandIDs.compare,
  restoreFile: CommandIDs.restoreFile,
  restoreWorkspace: CommandIDs.restoreWorkspace,
  saveVersion: CommandIDs.saveVersion,
  publish: CommandIDs.publish
};

/**
 * What the History panel and its commands need; all but the first four are
 * optional (without a document manager there is no panel, without a
 * rendermime no comparison).
 */
export interface IHistoryOptions {
  app: JupyterFrontEnd;
  api: GitSyncAPI;
  model: SyncStatusModel;
  translator: ITranslator;
  labShell?: ILabShell | null;
  docManager?: IDocumentManager | null;
  browser?: IDefaultFileBrowser | null;
  rendermime?: IRenderMimeRegistry | null;
  editorServices?: IEditorServices | null;
  languages?: IEditorLanguageRegistry | null;
}

/**
 * Register "Save a Version…" and "Publish to GitHub…"; with a document
 * manager and a shell, also the History panel in the right sidebar (it
 * follows the current document), "Show History", compare and restore.
 * Returns the panel, if made.
 */
export function addHistory(options: IHistoryOptions): HistoryPanel | null {
  const context: Private.IContext = {
    ...options,
    trans: options.translator.load(TRANSLATION_DOMAIN),
    historyChanged: new Signal<object, void>(options.api),
    restoring: false
  };
  Private.addSaveVersion(context);
  Private.addPublish(context);
  const { app, docManager, labShell } = options;
  if (!docManager || !labShell) {
    return null;
  }
  const panel = new HistoryPanel({
    api: options.api,
    model: options.model,
    commands: app.commands,
    commandIds: HISTORY_COMMANDS,
    historyChanged: context.historyChanged,
    translator: options.translator
  });
  panel.id = HISTORY_PANEL_ID;
  panel.title.icon = historyIcon;
  panel.title.caption = context.trans.__('History');
  labShell.add(panel, 'right', { rank: 850 });

  const follow = (): void => {
    const path = Private.pathOf(docManager, labShell.currentWidget);
    if (path !== null) {
      panel.path = path;
    }
  };
  labShell.currentChanged.connect(follow);
  follow();

  Private.addShowHistory(context, panel);
  Private.addRestoreFile(context);
  Private.addRestoreWorkspace(context);
  Private.addCompare(context);
  return panel;
}

/**
 * A namespace for module-private functions.
 */
namespace Private {
  export interface IContext extends IHistoryOptions {
    trans: TranslationBundle;
    /**
     * Emitted when a version was saved or a restore made.
     */
    historyChanged: Signal<object, void>;
    /**
     * Whether a restore request runs (both restores are disabled then).
     */
    restoring: boolean;
  }

  function label(
    full: string,
    short: string
  ): (args: { short?: unknown }) => string {
    return args => (args.short === true ? short : full);
  }

  function text(value: unknown): string | null {
    return typeof value === 'string' && value !== '' ? value : null;
  }

  function ready(model: SyncStatusModel): boolean {
    return !!model.status && !NOT_READY.has(model.status.state);
  }

  function messageOf(error: unknown): string {
    return error instanceof Error && error.message
      ? error.message
      : String(error);
  }

  /**
   * The workspace-relative path of a document widget, or `null`.
   */
  export function pathOf(
    docManager: IDocumentManager,
    widget: Widget | null
  ): string | null {
    if (!widget) {
      return null;
    }
    const context = docManager.contextForWidget(widget);
    if (!context) {
      return null;
    }
    return docManager.services.contents.localPath(context.path);
  }

  /**
   * The open documents (one context each), or those of one path.
   */
  function openContexts(
    context: IContext,
    path?: string
  ): DocumentRegistry.Context[] {
    const { app, docManager } = context;
    const found = new Set<DocumentRegistry.Context>();
    if (!docManager) {
      return [];
    }
    for (const widget of app.shell.widgets('main')) {
      const ctx = docManager.contextForWidget(widget);
      if (
        ctx &&
        (path === undefined ||
          docManager.services.contents.localPath(ctx.path) === path)
      ) {
        found.add(ctx);
      }
    }
    return [...found];
  }

  /**
   * Save the open documents that have unsaved changes, so that the server's
   * snapshot before a restore holds them.
   */
  async function saveDirty(
    contexts: DocumentRegistry.Context[]
  ): Promise<void> {
    await Promise.all(
      contexts
        .filter(ctx => ctx.model.dirty && !ctx.model.readOnly)
        .map(ctx => ctx.save())
    );
  }

  /**
   * Load the restored content from disk into the open documents.
   */
  async function revert(contexts: DocumentRegistry.Context[]): Promise<void> {
    await Promise.all(
      contexts.map(ctx =>
        ctx.revert().catch(error => {
          console.warn('Git Sync: could not reload %s.', ctx.path, error);
        })
      )
    );
  }

  export function addShowHistory(context: IContext, panel: HistoryPanel): void {
    const { app, browser, docManager, labShell, trans } = context;
    app.commands.addCommand(CommandIDs.showHistory, {
      label: label(
        trans.__('Git Sync: Show History'),
        trans.__('Show History')
      ),
      caption: trans.__(
        'Show the saved snapshots of a file, to compare or restore them'
      ),
      icon: args => (args.fromBrowser === true ? historyIcon : undefined),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            short: { type: 'boolean' },
            path: { type: 'string', description: 'The file' },
            fromBrowser: {
              type: 'boolean',
              description: "The file browser's selected file"
            }
          }
        }
      },
      execute: args => {
        let path = text(args.path);
        if (!path && args.fromBrowser === true && browser) {
          const item = browser.selectedItems().next();
          if (!item.done && item.value.type !== 'directory') {
            path = docManager!.services.contents.localPath(item.value.path);
          }
        }
        if (!path) {
          path = pathOf(docManager!, labShell!.currentWidget);
        }
        if (path) {
          panel.path = path;
        }
        labShell!.activateById(panel.id);
      }
    });
  }

  export function addCompare(context: IContext): void {
    const {
      api,
      app,
      editorServices,
      languages,
      rendermime,
      translator,
      trans
    } = context;
    let count = 0;
    app.commands.addCommand(CommandIDs.compare, {
      label: trans.__('Compare'),
      caption: trans.__(
        'Compare a snapshot of a file with another or with now'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            path: { type: 'string' },
            base: { type: 'string', description: 'The older snapshot' },
            baseTime: { type: 'string' },
            basePath: {
              type: 'string',
              description: "The file's name in the older snapshot, if renamed"
            },
            remote: {
              type: 'string',
              description: 'The newer snapshot; the file on disk without it'
            },
            remoteTime: { type: 'string' },
            remotePath: {
              type: 'string',
              description: "The file's name in the newer snapshot, if renamed"
            }
          },
          required: ['path', 'base']
        }
      },
      isEnabled: args => !!rendermime && !!text(args.path) && !!text(args.base),
      execute: async args => {
        const path = text(args.path);
        const base = text(args.base);
        if (!path || !base || !rendermime) {
          return;
        }
        const { SnapshotDiff } = await import('./widgets/diff');
        const baseSide = {
          sha: base,
          time: text(args.baseTime) ?? undefined,
          path: text(args.basePath)
        };
        const remoteSide = {
          sha: text(args.remote),
          time: text(args.remoteTime) ?? undefined,
          path: text(args.remotePath)
        };
        const content = new SnapshotDiff({
          api,
          path,
          base: baseSide,
          remote: remoteSide,
          rendermime,
          editorFactory: editorServices
            ? editorServices.factoryService.newInlineEditor.bind(
                editorServices.factoryService
              )
            : undefined,
          languages,
          translator
        });
        const widget = new MainAreaWidget({ content });
        widget.id = `jp-gitsync-diff-${++count}`;
        widget.addClass('jp-gitsync-DiffPanel');
        const name = path.split('/').pop() ?? path;
        const left = content.describeSide(baseSide);
        const right = content.describeSide(remoteSide);
        widget.title.label = trans.__(
          '%1 · %2 ↔ %3',
          name,
          content.shortSide(baseSide),
          content.shortSide(remoteSide)
        );
        widget.title.caption = `${path}: ${left} ↔ ${right}`;
        widget.title.icon = historyIcon;
        widget.title.closable = true;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
      }
    });
  }

  function setRestoring(context: IContext, value: boolean): void {
    context.restoring = value;
    context.app.commands.notifyCommandChanged(CommandIDs.restoreFile);
    context.app.commands.notifyCommandChanged(CommandIDs.restoreWorkspace);
  }

  export function addRestoreFile(context: IContext): void {
    const { api, app, model, trans } = context;
    app.commands.addCommand(CommandIDs.restoreFile, {
      label: trans.__('Restore This Version'),
      caption: trans.__(
        'Bring the file back to this snapshot; a new snapshot is made on top, nothing is lost'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            path: { type: 'string' },
            sha: { type: 'string' },
            time: { type: 'string' },
            fromPath: {
              type: 'string',
              description: "The file's name in that snapshot, if renamed since"
            }
          },
          required: ['path', 'sha']
        }
      },
      isEnabled: args =>
        !context.restoring &&
        ready(model) &&
        !!text(args.path) &&
        !!text(args.sha),
      execute: async args => {
        const path = text(args.path);
        const sha = text(args.sha);
        if (!path || !sha || context.restoring) {
          return;
        }
        const when = text(args.time);
        const name = path.split('/').pop() ?? path;
        setRestoring(context, true);
        try {
          const open = openContexts(context, path);
          await saveDirty(open);
          await api.restoreFile(path, sha, text(args.fromPath));
          await revert(open);
          Notification.success(
            when
              ? trans.__(
                  'Restored %1 to its version of %2.',
                  name,
                  formatMoment(when)
                )
              : trans.__(
                  'Restored %1 to the snapshot %2.',
                  name,
                  sha.slice(0, 7)
                ),
            { autoClose: 8000 }
          );
          context.historyChanged.emit();
        } catch (error) {
          Notification.error(
            trans.__('Could not restore %1: %2', name, messageOf(error)),
            { autoClose: false }
          );
        } finally {
          setRestoring(context, false);
        }
      }
    });
  }

  export function addRestoreWorkspace(context: IContext): void {
    const { api, app, model, trans } = context;
    app.commands.addCommand(CommandIDs.restoreWorkspace, {
      label: trans.__('Restore Workspace to This Snapshot'),
      caption: trans.__(
        'Bring every synced file back to this snapshot; a new snapshot is made on top, nothing is lost'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: { sha: { type: 'string' }, time: { type: 'string' } },
          required: ['sha']
        }
      },
      isEnabled: args => !context.restoring && ready(model) && !!text(args.sha),
      execute: async args => {
        const sha = text(args.sha);
        if (!sha || context.restoring) {
          return;
        }
        const when = text(args.time);
        const moment = when ? formatMoment(when) : sha.slice(0, 7);
        const answer = await showDialog({
          title: trans.__(
            'Restore the workspace to the snapshot of %1?',
            moment
          ),
          body: trans.__(
            'The files Git Sync keeps go back to how they were in the snapshot of %1. Open files are saved first. Files Git Sync never synced (untracked, ignored or excluded) are not touched. The restore is saved as a new snapshot on top of the history, so nothing is lost: the state of now stays in the History panel.',
            moment
          ),
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: trans.__('Restore Workspace') })
          ]
        });
        if (!answer.button.accept || context.restoring) {
          return;
        }
        setRestoring(context, true);
        try {
          const open = openContexts(context);
          await saveDirty(open);
          const result = await api.restoreWorkspace(sha);
          await revert(open);
          const kept = Object.keys(result.not_restored);
          if (kept.length > 0) {
            Notification.warning(
              trans._n(
                'Restored the workspace to the snapshot of %2, except %1 file: %3',
                'Restored the workspace to the snapshot of %2, except %1 files: %3',
                kept.length,
                moment,
                kept
                  .slice(0, 5)
                  .map(path => `${path} (${result.not_restored[path]})`)
                  .join(', ')
              ),
              { autoClose: false }
            );
          } else {
            Notification.success(
              trans.__('Restored the workspace to the snapshot of %1.', moment),
              { autoClose: 8000 }
            );
          }
          context.historyChanged.emit();
        } catch (error) {
          Notification.error(
            trans.__('Could not restore the workspace: %1', messageOf(error)),
            { autoClose: false }
          );
        } finally {
          setRestoring(context, false);
        }
      }
    });
  }

  export function addSaveVersion(context: IContext): void {
    const { api, app, model, trans, translator } = context;
    app.commands.addCommand(CommandIDs.saveVersion, {
      label: label(
        trans.__('Git Sync: Save a Version…'),
        trans.__('Save a Version…')
      ),
      caption: trans.__(
        'Name the workspace as it is now, to find it, restore it or publish it later'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            short: { type: 'boolean' },
            sha: { type: 'string', description: 'The snapshot to name' },
            time: { type: 'string' }
          }
        }
      },
      isEnabled: () => ready(model),
      execute: async args => {
        const { showVersionDialog } = await import('./widgets/versions');
        const version = await showVersionDialog({
          api,
          sha: text(args.sha),
          time: text(args.time),
          translator
        });
        if (version) {
          Notification.success(
            trans.__('Saved the version %1.', version.name),
            {
              autoClose: 5000
            }
          );
          context.historyChanged.emit();
        }
      }
    });
  }

  export function addPublish(context: IContext): void {
    const { api, app, model, trans, translator } = context;
    app.commands.addCommand(CommandIDs.publish, {
      label: label(
        trans.__('Git Sync: Publish to GitHub…'),
        trans.__('Publish to GitHub…')
      ),
      caption: trans.__(
        'Open a pull request with your work: one commit on a branch of its own'
      ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            short: { type: 'boolean' },
            source: {
              type: 'string',
              description: 'A snapshot sha or version name to publish'
            },
            message: { type: 'string', description: 'The default title' }
          }
        }
      },
      isEnabled: () => ready(model),
      execute: async args => {
        const { showPublishDialog } = await import('./widgets/versions');
        const result = await showPublishDialog({
          api,
          source: text(args.source),
          message: text(args.message),
          translator
        });
        if (result) {
          context.historyChanged.emit();
        }
      }
    });
  }
}
