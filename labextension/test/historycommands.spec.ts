import type { ILabShell, JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { nullTranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { act } from 'react';

import { GitSyncAPI } from '../src/api';
import { CommandIDs } from '../src/commands';
import { addHistory } from '../src/historycommands';
import { makeModel, waitFor } from './utils';

const SHA = 'd'.repeat(40);
const NEW_SHA = 'e'.repeat(40);

/**
 * An open document: its context records what was done to it, in order.
 */
function openDocument(path: string, dirty: boolean, log: string[]) {
  const widget = new Widget();
  const context = {
    path,
    model: { dirty, readOnly: false },
    save: jest.fn(async () => {
      log.push(`save ${path}`);
    }),
    revert: jest.fn(async () => {
      log.push(`revert ${path}`);
    })
  };
  return { widget, context };
}

async function setUp(
  restore: () => Promise<unknown>,
  documents: ReturnType<typeof openDocument>[],
  rendermime: IRenderMimeRegistry | null = null
) {
  const { model } = await makeModel({ state: 'synced' });
  const commands = new CommandRegistry();
  const request = jest.fn<Promise<any>, [string, RequestInit?]>(
    async (endPoint: string) => {
      if (endPoint === 'restore-file') {
        return restore();
      }
      if (endPoint.startsWith('history')) {
        return { entries: [], more: false };
      }
      if (endPoint.startsWith('diff?')) {
        return { format: 'binary', base_size: 1, remote_size: 2 };
      }
      throw new Error(`no route for ${endPoint}`);
    }
  );
  const app = {
    commands,
    shell: {
      widgets: () => documents.map(d => d.widget)[Symbol.iterator](),
      add: jest.fn(),
      activateById: jest.fn()
    }
  } as unknown as JupyterFrontEnd;
  const labShell = {
    add: jest.fn(),
    activateById: jest.fn(),
    currentWidget: null,
    currentChanged: new Signal(app)
  } as unknown as ILabShell;
  const docManager = {
    contextForWidget: (widget: Widget) =>
      documents.find(d => d.widget === widget)?.context,
    services: { contents: { localPath: (path: string) => path } }
  } as unknown as IDocumentManager;
  const panel = addHistory({
    app,
    api: new GitSyncAPI({ request }),
    model,
    translator: nullTranslator,
    labShell,
    docManager,
    rendermime
  });
  return { app, commands, panel, request, labShell };
}

describe('History commands', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('register the panel in the right sidebar and Show History', async () => {
    const { commands, panel, labShell } = await setUp(async () => ({}), []);
    expect(panel).not.toBeNull();
    expect((labShell.add as jest.Mock).mock.calls[0][1]).toBe('right');
    await commands.execute(CommandIDs.showHistory, { path: 'a/b.ipynb' });
    expect(panel!.path).toBe('a/b.ipynb');
    expect(labShell.activateById).toHaveBeenCalledWith(panel!.id);
    for (const id of [
      CommandIDs.compare,
      CommandIDs.restoreFile,
      CommandIDs.restoreWorkspace,
      CommandIDs.saveVersion,
      CommandIDs.publish
    ]) {
      expect(commands.hasCommand(id)).toBe(true);
    }
  });

  it('save an open, dirty document first, restore, then reload it', async () => {
    const success = jest.spyOn(Notification, 'success');
    const log: string[] = [];
    const documents = [
      openDocument('plot.ipynb', true, log),
      openDocument('other.ipynb', true, log)
    ];
    const { commands } = await setUp(async () => {
      log.push('restore');
      return { path: 'plot.ipynb', sha: NEW_SHA };
    }, documents);
    await commands.execute(CommandIDs.restoreFile, {
      path: 'plot.ipynb',
      sha: SHA,
      time: '2026-12-01T09:30:00+00:00'
    });
    expect(log).toEqual(['save plot.ipynb', 'restore', 'revert plot.ipynb']);
    expect(success.mock.calls[0][0]).toMatch(
      /^Restored plot\.ipynb to its version of .+\.$/
    );
  });

  it('restore from the name a file had at the snapshot, under its name now', async () => {
    const log: string[] = [];
    const { commands, request } = await setUp(async () => {
      log.push('restore');
      return { path: 'b.ipynb', sha: NEW_SHA };
    }, [openDocument('b.ipynb', true, log)]);
    await commands.execute(CommandIDs.restoreFile, {
      path: 'b.ipynb',
      sha: SHA,
      fromPath: 'old/a.ipynb'
    });
    expect(log).toEqual(['save b.ipynb', 'restore', 'revert b.ipynb']);
    const [endPoint, init] = request.mock.calls.find(
      call => call[0] === 'restore-file'
    )!;
    expect(endPoint).toBe('restore-file');
    expect(JSON.parse(String(init?.body))).toEqual({
      path: 'b.ipynb',
      sha: SHA,
      from_path: 'old/a.ipynb'
    });
  });

  it('compare a snapshot under the names the file had on each side', async () => {
    const rendermime = {} as IRenderMimeRegistry;
    const { app, commands, request } = await setUp(
      async () => ({}),
      [],
      rendermime
    );
    await commands.execute(CommandIDs.compare, {
      path: 'b.ipynb',
      base: SHA,
      basePath: 'a.ipynb',
      remote: NEW_SHA,
      remotePath: 'b.ipynb'
    });
    const widget = (app.shell.add as jest.Mock).mock.calls[0][0] as Widget;
    await act(async () => {
      Widget.attach(widget, document.body); // the comparison loads when shown
    });
    await waitFor(() =>
      request.mock.calls.some(call => call[0].startsWith('diff?'))
    );
    const endPoint = request.mock.calls.find(call =>
      call[0].startsWith('diff?')
    )![0];
    const query = new URL(endPoint, 'http://x/').searchParams;
    expect(query.get('path')).toBe('b.ipynb');
    expect(query.get('base')).toBe(SHA);
    expect(query.get('base_path')).toBe('a.ipynb');
    expect(query.get('remote')).toBe(NEW_SHA);
    expect(query.has('remote_path')).toBe(false); // its name now: nothing to say
    await act(async () => {
      widget.dispose(); // unmounts its React toolbar
    });
  });

  it('are disabled while a restore runs, and say why one failed', async () => {
    const error = jest.spyOn(Notification, 'error');
    const noop = (): void => undefined;
    let fail: (reason: Error) => void = noop;
    const log: string[] = [];
    const { commands } = await setUp(
      () =>
        new Promise((_, reject) => {
          fail = reject;
        }),
      [openDocument('plot.ipynb', false, log)]
    );
    const args = { path: 'plot.ipynb', sha: SHA };
    expect(commands.isEnabled(CommandIDs.restoreFile, args)).toBe(true);
    const running = commands.execute(CommandIDs.restoreFile, args);
    await waitFor(() => fail !== noop); // the server was asked
    expect(commands.isEnabled(CommandIDs.restoreFile, args)).toBe(false);
    expect(commands.isEnabled(CommandIDs.restoreWorkspace, { sha: SHA })).toBe(
      false
    );
    fail(new Error('plot.ipynb is not in that snapshot.'));
    await running;
    expect(commands.isEnabled(CommandIDs.restoreFile, args)).toBe(true);
    expect(error.mock.calls[0][0]).toBe(
      'Could not restore plot.ipynb: plot.ipynb is not in that snapshot.'
    );
    // Nothing was saved (it was not dirty) nor reloaded (nothing changed).
    expect(log).toEqual([]);
  });
});
