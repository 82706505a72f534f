import { CommandRegistry } from '@lumino/commands';
import { Signal } from '@lumino/signaling';
import { act } from 'react';

import { GitSyncAPI, IHistoryEntry } from '../src/api';
import { HistoryPanel, IHistoryCommands } from '../src/widgets/history';
import { makeModel, render, unmount, update, waitFor } from './utils';

const IDS: IHistoryCommands = {
  compare: 'test:compare',
  restoreFile: 'test:restore-file',
  restoreWorkspace: 'test:restore-workspace',
  saveVersion: 'test:save-version',
  publish: 'test:publish'
};

function sha(n: number): string {
  return String(n).padStart(40, '0');
}

function entry(n: number, time: string, extra: Partial<IHistoryEntry> = {}) {
  return {
    sha: sha(n),
    time,
    message: `Snapshot ${n}`,
    version: null,
    versions: [],
    session: null,
    this_session: true,
    author: 'Ada',
    path: 'n.ipynb',
    ...extra
  };
}

const now = new Date();
const today = (h: number) =>
  new Date(now.getFullYear(), now.getMonth(), now.getDate(), h).toISOString();
const daysAgo = (d: number) =>
  new Date(
    now.getFullYear(),
    now.getMonth(),
    now.getDate() - d,
    12
  ).toISOString();

/**
 * A server whose history is `pages` (one per request, keyed by `before`).
 */
function historyServer(pages: {
  [before: string]: { entries: unknown[]; more: boolean } | Error;
}): jest.Mock {
  return jest.fn(async (endPoint: string) => {
    const url = new URL(endPoint, 'http://x/');
    if (url.pathname !== '/history') {
      throw new Error(`no route for ${endPoint}`);
    }
    const page = pages[url.searchParams.get('before') ?? ''];
    if (page instanceof Error) {
      throw page;
    }
    return page;
  });
}

async function makePanel(request: jest.Mock) {
  const { model, events } = await makeModel({ head: sha(1) });
  const commands = new CommandRegistry();
  const executed: { id: string; args: unknown }[] = [];
  for (const id of Object.values(IDS)) {
    commands.addCommand(id, {
      label: id,
      execute: args => {
        executed.push({ id, args });
      }
    });
  }
  const historyChanged = new Signal<object, void>({});
  const panel = new HistoryPanel({
    api: new GitSyncAPI({ request }),
    model,
    commands,
    commandIds: IDS,
    historyChanged
  });
  await render(panel);
  return { panel, events, executed, historyChanged, model };
}

function click(node: Element | null): Promise<void> {
  expect(node).not.toBeNull();
  return act(async () => {
    (node as HTMLElement).click();
  });
}

function button(panel: HistoryPanel, text: string): HTMLButtonElement | null {
  return (
    Array.from(panel.node.querySelectorAll('button')).find(
      b => b.textContent === text
    ) ?? null
  );
}

describe('HistoryPanel', () => {
  it('says what to do before a file is chosen', async () => {
    const request = historyServer({});
    const { panel } = await makePanel(request);
    expect(panel.node.textContent).toContain('Open a file');
    expect(request).not.toHaveBeenCalled();
    unmount(panel);
  });

  it('lists the snapshots grouped by day with session and versions', async () => {
    const request = historyServer({
      '': {
        entries: [
          entry(3, today(10), {
            versions: ['submitted'],
            version: 'submitted'
          }),
          entry(2, daysAgo(1), { this_session: false, session: 'laptop' }),
          entry(1, daysAgo(3), {
            message: 'First\n\nwith more lines',
            path: 'old.ipynb'
          })
        ],
        more: false
      }
    });
    const { panel } = await makePanel(request);
    panel.path = 'n.ipynb';
    await waitFor(() => panel.entries.length === 3, panel);
    const days = panel.node.querySelectorAll('.jp-gitsync-History-day h3');
    expect(Array.from(days).map(h => h.textContent)).toEqual([
      'Today',
      'Yesterday',
      expect.any(String)
    ]);
    const items = panel.node.querySelectorAll('.jp-gitsync-History-entry');
    expect(items).toHaveLength(3);
    expect(items[0].querySelector('.jp-gitsync-History-tag')?.textContent).toBe(
      'submitted'
    );
    expect(items[0].textContent).toContain('this session');
    expect(items[1].textContent).toContain('laptop');
    expect(
      items[2].querySelector('.jp-gitsync-History-message')?.textContent
    ).toBe('First');
    expect(items[2].textContent).toContain('as old.ipynb');
    expect(button(panel, 'Load more')).toBeNull();
    expect(
      new URL(request.mock.calls[0][0], 'http://x/').searchParams.get('path')
    ).toBe('n.ipynb');
    unmount(panel);
  });

  it('loads more with before= the last snapshot', async () => {
    const request = historyServer({
      '': { entries: [entry(3, today(10)), entry(2, today(9))], more: true },
      [sha(2)]: { entries: [entry(1, daysAgo(2))], more: false }
    });
    const { panel } = await makePanel(request);
    panel.path = 'n.ipynb';
    await waitFor(() => panel.entries.length === 2, panel);
    await click(button(panel, 'Load more'));
    await waitFor(() => panel.entries.length === 3, panel);
    expect(panel.entries.map(e => e.sha)).toEqual([sha(3), sha(2), sha(1)]);
    expect(button(panel, 'Load more')).toBeNull();
    unmount(panel);
  });

  it('asks again when a new snapshot lands, and when told', async () => {
    const pages: { [before: string]: { entries: unknown[]; more: boolean } } = {
      '': { entries: [entry(1, today(9))], more: false }
    };
    const request = historyServer(pages);
    const { panel, events, historyChanged } = await makePanel(request);
    panel.path = 'n.ipynb';
    await waitFor(() => panel.entries.length === 1, panel);

    pages[''] = {
      entries: [entry(2, today(10)), entry(1, today(9))],
      more: false
    };
    events.emit({ head: sha(1) });
    await update(panel);
    expect(request).toHaveBeenCalledTimes(1);
    events.emit({ head: sha(2) });
    await waitFor(() => panel.entries.length === 2, panel);

    pages[''] = {
      entries: [entry(2, today(10), { versions: ['v1'] }), entry(1, today(9))],
      more: false
    };
    historyChanged.emit();
    await waitFor(() => panel.entries[0].versions.length === 1, panel);
    expect(
      panel.node.querySelector('.jp-gitsync-History-tag')?.textContent
    ).toBe('v1');
    unmount(panel);
  });

  it('shows the actions of a selected snapshot and runs them', async () => {
    const at = { path: 'dir/n.ipynb' };
    const request = historyServer({
      '': {
        entries: [entry(2, today(10), at), entry(1, today(9), at)],
        more: false
      }
    });
    const { panel, executed } = await makePanel(request);
    panel.path = 'dir/n.ipynb';
    await waitFor(() => panel.entries.length === 2, panel);
    expect(panel.node.querySelector('.jp-gitsync-History-actions')).toBeNull();
    await click(
      panel.node.querySelectorAll('.jp-gitsync-History-entryMain')[1]
    );
    await update(panel);
    const labels = Array.from(
      panel.node.querySelectorAll('.jp-gitsync-History-actions button')
    ).map(b => b.textContent);
    expect(labels).toEqual([
      'Compare with Current',
      'Compare…',
      'Restore This Version',
      'Restore Workspace to This Snapshot',
      'Save as Version…',
      'Publish…'
    ]);
    await click(button(panel, 'Compare with Current'));
    await click(button(panel, 'Restore This Version'));
    expect(executed).toEqual([
      {
        id: IDS.compare,
        args: { path: 'dir/n.ipynb', base: sha(1), baseTime: today(9) }
      },
      {
        id: IDS.restoreFile,
        args: { path: 'dir/n.ipynb', sha: sha(1), time: today(9) }
      }
    ]);
    unmount(panel);
  });

  it('compares two picked snapshots, older first', async () => {
    const request = historyServer({
      '': {
        entries: [entry(3, today(11)), entry(2, today(10)), entry(1, today(9))],
        more: false
      }
    });
    const { panel, executed } = await makePanel(request);
    panel.path = 'n.ipynb';
    await waitFor(() => panel.entries.length === 3, panel);
    const rows = () =>
      panel.node.querySelectorAll('.jp-gitsync-History-entryMain');
    await click(rows()[2]);
    await update(panel);
    await click(button(panel, 'Compare…'));
    await update(panel);
    expect(
      panel.node.querySelector('.jp-gitsync-History-banner')?.textContent
    ).toContain('Choose another snapshot');
    await click(rows()[0]);
    await update(panel);
    expect(executed).toEqual([
      {
        id: IDS.compare,
        args: {
          path: 'n.ipynb',
          base: sha(1),
          baseTime: today(9),
          remote: sha(3),
          remoteTime: today(11)
        }
      }
    ]);
    expect(panel.node.querySelector('.jp-gitsync-History-banner')).toBeNull();
    unmount(panel);
  });

  it("passes a snapshot's name from before a rename to compare and restore", async () => {
    const request = historyServer({
      '': {
        entries: [
          entry(3, today(11), { path: 'b.ipynb' }),
          entry(2, today(10), { path: 'a.ipynb' }),
          entry(1, today(9), { path: 'a.ipynb' })
        ],
        more: false
      }
    });
    const { panel, executed } = await makePanel(request);
    panel.path = 'b.ipynb';
    await waitFor(() => panel.entries.length === 3, panel);
    const rows = () =>
      panel.node.querySelectorAll('.jp-gitsync-History-entryMain');
    await click(rows()[2]);
    await update(panel);
    await click(button(panel, 'Compare with Current'));
    await click(button(panel, 'Restore This Version'));
    await click(button(panel, 'Compare…'));
    await update(panel);
    await click(rows()[1]); // both before the rename
    await update(panel);
    await click(rows()[0]);
    await update(panel);
    await click(button(panel, 'Compare…'));
    await update(panel);
    await click(rows()[1]); // across it
    await update(panel);
    await click(button(panel, 'Restore This Version')); // after it: no old name
    expect(executed).toEqual([
      {
        id: IDS.compare,
        args: {
          path: 'b.ipynb',
          base: sha(1),
          baseTime: today(9),
          basePath: 'a.ipynb'
        }
      },
      {
        id: IDS.restoreFile,
        args: {
          path: 'b.ipynb',
          sha: sha(1),
          time: today(9),
          fromPath: 'a.ipynb'
        }
      },
      {
        id: IDS.compare,
        args: {
          path: 'b.ipynb',
          base: sha(1),
          baseTime: today(9),
          basePath: 'a.ipynb',
          remote: sha(2),
          remoteTime: today(10),
          remotePath: 'a.ipynb'
        }
      },
      {
        id: IDS.compare,
        args: {
          path: 'b.ipynb',
          base: sha(2),
          baseTime: today(10),
          basePath: 'a.ipynb',
          remote: sha(3),
          remoteTime: today(11)
        }
      },
      {
        id: IDS.restoreFile,
        args: { path: 'b.ipynb', sha: sha(3), time: today(11) }
      }
    ]);
    unmount(panel);
  });

  it('says so when the file has no snapshots', async () => {
    const request = historyServer({ '': { entries: [], more: false } });
    const { panel } = await makePanel(request);
    panel.path = 'new.txt';
    await waitFor(
      () =>
        (panel.node.textContent ?? '').includes(
          'No snapshots of this file yet'
        ),
      panel
    );
    unmount(panel);
  });

  it('shows a failure in plain words and tries again', async () => {
    const pages: {
      [before: string]: { entries: unknown[]; more: boolean } | Error;
    } = {
      '': new Error('The file was not found in the sync history.')
    };
    const request = historyServer(pages);
    const { panel } = await makePanel(request);
    panel.path = 'gone.txt';
    await waitFor(
      () => panel.node.querySelector('.jp-gitsync-History-error') !== null,
      panel
    );
    expect(panel.node.textContent).toContain(
      'Could not load the history: The file was not found in the sync history.'
    );
    pages[''] = { entries: [entry(1, today(9))], more: false };
    await click(button(panel, 'Try again'));
    await waitFor(() => panel.entries.length === 1, panel);
    expect(panel.node.querySelector('.jp-gitsync-History-error')).toBeNull();
    unmount(panel);
  });

  it('never shows a late answer for the file it left', async () => {
    let answerFirst: (value: unknown) => void = () => undefined;
    const request = jest.fn((endPoint: string) => {
      const path = new URL(endPoint, 'http://x/').searchParams.get('path');
      if (path === 'a.txt') {
        return new Promise(resolve => {
          answerFirst = resolve;
        });
      }
      return Promise.resolve({ entries: [entry(2, today(10))], more: false });
    });
    const { panel } = await makePanel(request);
    panel.path = 'a.txt';
    panel.path = 'b.txt';
    await waitFor(() => panel.entries.length === 1, panel);
    answerFirst({
      entries: [entry(7, today(8)), entry(8, today(7))],
      more: false
    });
    await update(panel);
    expect(panel.entries.map(e => e.sha)).toEqual([sha(2)]);
    unmount(panel);
  });
});
