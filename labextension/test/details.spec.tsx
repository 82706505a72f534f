import { CommandRegistry } from '@lumino/commands';

import { IAuthInfo } from '../src/api';
import { SyncDetails } from '../src/widgets/details';
import { makeModel, render, settle, unmount } from './utils';

const IDS = {
  syncNow: 'test:sync-now',
  signIn: 'test:sign-in',
  signOut: 'test:sign-out',
  fork: 'test:fork',
  resume: 'test:resume',
  openBranch: 'test:open-branch',
  openRescue: 'test:open-rescue',
  deleteRescue: 'test:delete-rescue'
};

/**
 * Commands recording their runs: the id, and the `name` argument when given.
 */
function makeCommands(): { commands: CommandRegistry; ran: string[] } {
  const commands = new CommandRegistry();
  const ran: string[] = [];
  for (const [key, id] of Object.entries(IDS)) {
    commands.addCommand(id, {
      label: args => (args.short ? `short ${key}` : `long ${key}`),
      execute: args => {
        ran.push(typeof args.name === 'string' ? `${id} ${args.name}` : id);
      }
    });
  }
  return { commands, ran };
}

const AUTH: IAuthInfo = {
  signed_in: false,
  provider: null,
  login: null,
  scopes: null,
  permissions: null,
  repository: 'ada/thesis',
  can_push: null,
  device_flow: null,
  sign_in_available: true,
  providers: ['device', 'env'],
  error: null
};

const opened: SyncDetails[] = [];

async function open(
  status: Parameters<typeof makeModel>[0],
  auth: Partial<IAuthInfo> = {}
): Promise<{ details: SyncDetails; ran: string[]; text: string }> {
  const { model } = await makeModel(status);
  const { commands, ran } = makeCommands();
  const details = new SyncDetails({
    model,
    commands,
    commandIds: IDS,
    loadAuth: async () => ({ ...AUTH, ...auth })
  });
  await render(details);
  await settle(details);
  opened.push(details);
  return { details, ran, text: details.node.textContent ?? '' };
}

describe('SyncDetails', () => {
  afterEach(() => {
    opened.splice(0).forEach(unmount);
  });

  it('links the branch and the last snapshot on GitHub', async () => {
    const { details, text } = await open({});
    const links = Array.from(details.node.querySelectorAll('a')).map(
      a => a.href
    );
    expect(links).toContain('https://github.com/ada/thesis');
    expect(links).toContain('https://github.com/ada/thesis/tree/gitsync/ada');
    expect(links).toContain(
      'https://github.com/ada/thesis/commit/5f3c1a2b9d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a'
    );
    expect(text).toContain('5f3c1a2');
    expect(text).toContain('not signed in');
  });

  it('lists pending and skipped files, the error and the notice', async () => {
    const { text } = await open({
      state: 'auth-required',
      pending_paths: ['a.ipynb', 'b.py'],
      pending_count: 240,
      skipped: [{ path: 'data/raw.h5', reason: 'larger than 50 MB' }],
      error: { kind: 'auth', message: 'The remote refused the token.' },
      notice: {
        kind: 'conflict',
        message: 'Kept your local a.ipynb.',
        paths: ['a.ipynb'],
        branch: 'gitsync/ada-rescue-1'
      }
    });
    expect(text).toContain('240 files waiting to be saved');
    expect(text).toContain('and 238 more');
    expect(text).toContain('data/raw.h5 — larger than 50 MB');
    expect(text).toContain('The remote refused the token.');
    expect(text).toContain('Kept your local a.ipynb.');
    expect(text).toContain('gitsync/ada-rescue-1');
  });

  it('lists rescue branches with Open and Delete, and the limit message', async () => {
    const { details, ran, text } = await open({
      rescue_branches: [
        {
          name: 'gitsync/ada-rescue-2',
          created: '2026-11-26T09:14:03+00:00',
          paths: ['notes.txt', 'a.ipynb', 'b.py', 'c.py']
        },
        { name: 'gitsync/ada-rescue-1', created: '', paths: ['notes.txt'] }
      ],
      rescue_message:
        '2 rescue branches hold versions that are not in your workspace.'
    });
    expect(text).toContain('2 rescue branches');
    expect(text).toContain('gitsync/ada-rescue-2');
    expect(text).toContain(
      'other versions of notes.txt, a.ipynb, b.py and 1 more'
    );
    expect(text).toContain('2 rescue branches hold versions');
    const rows = details.node.querySelectorAll('[data-rescue]');
    expect(rows).toHaveLength(2);
    const buttons = Array.from(rows[1].querySelectorAll('button'));
    expect(buttons.map(b => b.textContent)).toEqual([
      'long openRescue',
      'long deleteRescue'
    ]);
    buttons[1].click();
    buttons[0].click();
    expect(ran).toEqual([
      `${IDS.deleteRescue} gitsync/ada-rescue-1`,
      `${IDS.openRescue} gitsync/ada-rescue-1`
    ]);
  });

  it('shows no rescue section without rescue branches', async () => {
    const { details, text } = await open({});
    expect(text).not.toContain('rescue branch');
    expect(details.node.querySelector('[data-rescue]')).toBeNull();
  });

  it('shows a call to sign in as a notice, not an error', async () => {
    const { details, text } = await open({
      state: 'auth-required',
      error: {
        kind: 'no-token',
        message: 'Sign in to GitHub to keep your work.'
      }
    });
    expect(text).toContain('Sign in to GitHub to keep your work.');
    expect(details.node.querySelector('.jp-gitsync-Details-error')).toBeNull();
    expect(
      details.node
        .querySelector('.jp-gitsync-Details-notice')!
        .getAttribute('data-kind')
    ).toBe('no-token');
  });

  it('offers sign-in when needed and runs the actions', async () => {
    const { details, ran } = await open({ state: 'auth-required' });
    const buttons = Array.from(
      details.node.querySelectorAll<HTMLButtonElement>(
        '.jp-gitsync-Details-actions button'
      )
    );
    expect(buttons.map(b => b.textContent)).toEqual([
      'short syncNow',
      'short signIn',
      'short resume',
      'short openBranch'
    ]);
    buttons[1].click();
    expect(ran).toEqual([IDS.signIn]);
  });

  it('offers to fork instead of signing in without push access', async () => {
    const { details, ran, text } = await open(
      {
        state: 'auth-required',
        error: {
          kind: 'permission',
          message:
            'You cannot push to ada/thesis. Fork it to your GitHub account ... (POST gitsync/auth/fork, or Fork in the sync menu).'
        }
      },
      { signed_in: true, provider: 'env', login: 'octocat', can_push: false }
    );
    expect(text).toContain(
      'Your GitHub account @octocat may not push to ada/thesis. Fork it to your account'
    );
    expect(text).not.toContain('POST gitsync/auth/fork');
    expect(
      details.node
        .querySelector('.jp-gitsync-Details-error')!
        .getAttribute('data-kind')
    ).toBe('permission');
    const buttons = Array.from(
      details.node.querySelectorAll<HTMLButtonElement>(
        '.jp-gitsync-Details-actions button'
      )
    );
    expect(buttons.map(b => b.textContent)).toEqual([
      'short syncNow',
      'short fork',
      'short resume',
      'short openBranch'
    ]);
    expect(buttons[1].classList).toContain('jp-mod-accept');
    expect(buttons[0].classList).toContain('jp-mod-reject');
    buttons[1].click();
    expect(ran).toEqual([IDS.fork]);
  });

  it('offers sign-out to who signed in here', async () => {
    const { details, text } = await open(
      {},
      { signed_in: true, provider: 'device', login: 'octocat' }
    );
    const labels = Array.from(
      details.node.querySelectorAll('.jp-gitsync-Details-actions button')
    ).map(b => b.textContent);
    expect(labels).toContain('short signOut');
    expect(labels).not.toContain('short signIn');
    expect(text).toContain('@octocat · signed in here');
  });

  it('shows the restore progress', async () => {
    const { details } = await open({
      state: 'restoring',
      progress: { phase: 'checkout', done: 1, total: 4, bytes: 0 }
    });
    expect(details.node.querySelector('progress')!.value).toBe(25);
    expect(details.node.textContent).toContain('Writing files: 1 of 4');
  });
});
