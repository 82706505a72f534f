import { GitSyncAPI } from '../src/api';
import { BranchPicker, ResumeProgress } from '../src/widgets/resume';
import {
  fakeRequest,
  makeModel,
  render,
  settle,
  unmount,
  update
} from './utils';

describe('BranchPicker', () => {
  it('lists the branches with their last snapshot and picks one', async () => {
    const request = fakeRequest({
      'GET branches': () => ({
        branches: [
          {
            name: 'gitsync/ada',
            sync: true,
            current: true,
            sha: 'a',
            last_snapshot_at: '2026-11-26T09:14:03+00:00',
            message: 'Snapshot of 3 files'
          },
          {
            name: 'gitsync/laptop',
            sync: true,
            current: false,
            sha: 'b',
            last_snapshot_at: '2026-11-25T09:14:03+00:00',
            message: 'Snapshot of 1 file'
          },
          {
            name: 'main',
            sync: false,
            current: false,
            sha: 'c',
            last_snapshot_at: '2026-11-20T09:14:03+00:00',
            message: 'Initial commit'
          }
        ]
      })
    });
    const picker = new BranchPicker({ api: new GitSyncAPI({ request }) });
    await render(picker);
    await picker.loaded;
    await update(picker);
    const text = picker.node.textContent ?? '';
    expect(text).toContain('Your current work is saved and pushed first.');
    expect(text).toContain('Snapshot of 3 files');
    expect(text).toContain('in use');
    expect(text).toContain('not a sync branch');
    const radios = [
      ...Array.from(
        picker.node.querySelectorAll<HTMLInputElement>('input[type=radio]')
      )
    ];
    expect(radios.map(r => r.value)).toEqual([
      'gitsync/ada',
      'gitsync/laptop',
      'main'
    ]);
    expect(radios[0].disabled).toBe(true);
    expect(picker.getValue()).toBe('gitsync/laptop');
    radios[2].click();
    await update(picker);
    expect(picker.getValue()).toBe('main');
  });

  it('says why the branches could not be listed', async () => {
    const request = fakeRequest({
      'GET branches': () => {
        throw new Error('The remote cannot be reached.');
      }
    });
    const picker = new BranchPicker({ api: new GitSyncAPI({ request }) });
    await render(picker);
    await picker.loaded;
    await update(picker);
    expect(picker.node.textContent).toContain('The remote cannot be reached.');
    expect(picker.getValue()).toBeNull();
  });
});

describe('ResumeProgress', () => {
  it('shows saving, then the restore progress, then a failure', async () => {
    const { model, events } = await makeModel();
    const progress = await render(
      new ResumeProgress({ model, branch: 'gitsync/laptop' })
    );
    expect(progress.node.textContent).toContain('Saving and pushing');
    events.emit({
      state: 'restoring',
      progress: { phase: 'fetch', done: 5, total: 10, bytes: 0 }
    });
    await settle(progress);
    expect(progress.node.querySelector('progress')!.value).toBe(50);
    expect(progress.node.textContent).toContain('gitsync/laptop');
    progress.fail('Your current work could not be pushed.');
    await update(progress);
    expect(progress.node.textContent).toContain('could not be pushed');
    unmount(progress);
  });
});
