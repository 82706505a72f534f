import { simulate } from '@jupyterlab/testing';

import { SteadyStatus } from '../src/steady';
import { SyncBadge } from '../src/widgets/badge';
import { makeModel, render, unmount, update } from './utils';

describe('SyncBadge', () => {
  it('shows the state with an accessible name and is keyboard reachable', async () => {
    const { model } = await makeModel({
      state: 'offline',
      unpushed_commits: 3
    });
    const onActivate = jest.fn();
    const badge = await render(new SyncBadge({ model, onActivate }));
    const node = badge.node.querySelector('.jp-gitsync-Badge') as HTMLElement;
    expect(node.textContent).toBe('Offline · 3 snapshots waiting');
    expect(node.getAttribute('role')).toBe('button');
    expect(node.tabIndex).toBe(0);
    expect(node.getAttribute('aria-label')).toContain(
      'Git Sync: Offline · 3 snapshots waiting.'
    );
    expect(node.getAttribute('aria-haspopup')).toBe('dialog');
    expect(node.dataset.state).toBe('offline');

    simulate(node, 'keydown', { key: 'Enter' });
    simulate(node, 'keydown', { key: ' ' });
    simulate(node, 'click');
    expect(onActivate).toHaveBeenCalledTimes(3);
    unmount(badge);
  });

  it('follows the events', async () => {
    const { model, events } = await makeModel({ state: 'pending' });
    const steady = new SteadyStatus({ model, minBusyMs: 0, settleMs: 0 });
    const badge = await render(
      new SyncBadge({ model, steady, onActivate: () => undefined })
    );
    const label = (): string | null =>
      badge.node.querySelector('.jp-gitsync-Badge-label')!.textContent;
    expect(label()).toBe('Changes waiting');
    events.emit({ state: 'auth-required' });
    await update(badge);
    expect(label()).toBe('Sign-in required');
    events.emit({
      state: 'synced',
      remote_url: 'http://127.0.0.1:8123/project.git',
      last_synced_at: new Date().toISOString()
    });
    await update(badge);
    expect(label()).toBe('Saved to 127.0.0.1:8123 · just now');
    expect(badge.node.querySelector('.jp-gitsync-Badge')!.classList).toContain(
      'jp-gitsync-Badge-ok'
    );
    unmount(badge);
  });

  it('tells a user without push access that they can fork', async () => {
    const { model } = await makeModel({
      state: 'auth-required',
      error: { kind: 'permission', message: 'You cannot push to ada/thesis.' }
    });
    const badge = await render(
      new SyncBadge({ model, onActivate: () => undefined })
    );
    const node = badge.node.querySelector('.jp-gitsync-Badge') as HTMLElement;
    expect(node.textContent).toBe('No push access');
    expect(node.getAttribute('aria-label')).toContain(
      'Git Sync: No push access. You may not push to ada/thesis. Fork it to your GitHub account to keep your work synced there.'
    );
    expect(node.title).toContain('You may not push to ada/thesis.');
    unmount(badge);
  });

  it('says aria-expanded while the popover is open', async () => {
    const { model } = await makeModel();
    const badge = await render(
      new SyncBadge({ model, onActivate: () => undefined })
    );
    badge.expanded = true;
    await update(badge);
    expect(
      badge.node
        .querySelector('.jp-gitsync-Badge')!
        .getAttribute('aria-expanded')
    ).toBe('true');
    unmount(badge);
  });
});
