import {
  describeProgress,
  describeStatus,
  formatAge,
  formatBytes,
  msUntilAgeChanges
} from '../src/labels';
import { SYNC_STATES } from '../src/model';
import { makeStatus } from './utils';

const SYNCED_AT = '2026-11-26T09:14:03+00:00';
const at = (seconds: number): number =>
  new Date(SYNCED_AT).getTime() + seconds * 1000;

describe('describeStatus', () => {
  it('says where the work is saved and how long ago', () => {
    const d = describeStatus(makeStatus(), { now: at(12) });
    expect(d.label).toBe('Saved to GitHub · 12 s ago');
    expect(d.tone).toBe('ok');
    expect(d.title).toContain('All changes are saved to GitHub.');
    expect(d.title).toContain('Branch: gitsync/ada.');
  });

  it('names the host of a remote that is not GitHub', () => {
    const d = describeStatus(
      makeStatus({ remote_url: 'https://gitlab.example.org/ada/thesis.git' }),
      { now: at(2) }
    );
    expect(d.label).toBe('Saved to gitlab.example.org · just now');
  });

  it('counts the snapshots waiting while offline', () => {
    const d = describeStatus(
      makeStatus({ state: 'offline', unpushed_commits: 3 })
    );
    expect(d.label).toBe('Offline · 3 snapshots waiting');
    expect(d.tone).toBe('warning');
  });

  it('shows the restore progress', () => {
    const d = describeStatus(
      makeStatus({
        state: 'restoring',
        progress: { phase: 'fetch', done: 45, total: 100, bytes: 1_200_000 }
      })
    );
    expect(d.label).toBe('Restoring… 45%');
    expect(d.title).toContain('45 of 100 objects (1.2 MB)');
    expect(d.tone).toBe('busy');
  });

  it.each([
    ['pending', 'Changes waiting', 'waiting'],
    ['unpushed', 'Changes waiting', 'waiting'],
    ['snapshotting', 'Syncing…', 'busy'],
    ['pushing', 'Syncing…', 'busy'],
    ['auth-required', 'Sign-in required', 'warning'],
    ['conflict', 'Conflict', 'danger'],
    ['error', 'Sync error', 'danger'],
    ['disabled', 'Sync off', 'off'],
    ['starting', 'Starting sync…', 'busy'],
    ['stopping', 'Stopping…', 'busy']
  ])('describes %s', (state, label, tone) => {
    const d = describeStatus(makeStatus({ state: state as any }));
    expect(d.label).toBe(label);
    expect(d.tone).toBe(tone);
    expect(d.title.length).toBeGreaterThan(10);
  });

  it('has a description for every state', () => {
    for (const state of SYNC_STATES) {
      const d = describeStatus(makeStatus({ state }));
      expect(d.state).toBe(state);
      expect(d.label).not.toMatch(/^Sync: /);
    }
  });

  it('says "No push access" rather than asking to sign in', () => {
    const d = describeStatus(
      makeStatus({
        state: 'auth-required',
        unpushed_commits: 2,
        error: {
          kind: 'permission',
          message:
            'You cannot push to ada/thesis. Fork it to your GitHub account to keep your work synced there (POST gitsync/auth/fork, or Fork in the sync menu).'
        }
      })
    );
    expect(d.label).toBe('No push access');
    expect(d.label).not.toContain('Sign-in');
    expect(d.tone).toBe('warning');
    expect(d.state).toBe('auth-required');
    expect(d.title).toContain('You may not push to ada/thesis.');
    expect(d.title).toContain(
      'Fork it to your GitHub account to keep your work synced there.'
    );
    expect(d.title).toContain('2 snapshots are kept here until then.');
    expect(d.title).not.toContain('gitsync/auth/fork');
  });

  it('asks to sign in, with the reason and no refusal, when nobody gave a token', () => {
    for (const kind of ['no-token', 'no-login']) {
      const d = describeStatus(
        makeStatus({
          state: 'auth-required',
          unpushed_commits: 1,
          error: {
            kind,
            message:
              'Sign in to GitHub to keep your work: until then it is saved only in this Binder session.'
          }
        })
      );
      expect(d.label).toBe('Sign in to keep your work');
      expect(d.tone).toBe('warning');
      expect(d.title).toContain('saved only in this Binder session');
      expect(d.title).toContain('1 snapshot is kept here until then.');
      expect(d.title).not.toContain('refused');
      expect(d.title).not.toContain('again');
    }
  });

  it('still asks to sign in when the credentials were refused', () => {
    const d = describeStatus(
      makeStatus({
        state: 'auth-required',
        error: { kind: 'auth', message: 'The token expired.' }
      })
    );
    expect(d.label).toBe('Sign-in required');
    expect(d.title).toContain('sign in again');
  });

  it('includes the server error in plain words', () => {
    const d = describeStatus(
      makeStatus({
        state: 'error',
        error: { kind: 'config', message: 'The branch name is not valid.' }
      })
    );
    expect(d.title).toContain('The branch name is not valid.');
  });

  it('shows "sync now" in flight as syncing', () => {
    const d = describeStatus(makeStatus({ state: 'pending' }), {
      syncing: true
    });
    expect(d.label).toBe('Syncing…');
  });

  it('explains an unreachable server before any status', () => {
    const d = describeStatus(null, { requestError: 'Network down' });
    expect(d.label).toBe('Sync unavailable');
    expect(d.title).toContain('Network down');
  });
});

describe('formatAge', () => {
  it.each([
    [0, 'just now'],
    [12, '12 s ago'],
    [125, '2 min ago'],
    [7200, '2 h ago']
  ])('%i s → %s', (seconds, text) => {
    expect(formatAge(SYNCED_AT, { now: at(seconds) })).toBe(text);
  });

  it('tells when the age reads differently', () => {
    expect(msUntilAgeChanges(SYNCED_AT, at(1))).toBe(4000);
    expect(msUntilAgeChanges(SYNCED_AT, at(12))).toBe(3000);
    expect(msUntilAgeChanges(SYNCED_AT, at(90))).toBe(30000);
    expect(msUntilAgeChanges(SYNCED_AT, at(86400 * 2))).toBeNull();
  });
});

describe('describeProgress', () => {
  it('describes writing files', () => {
    expect(
      describeProgress({ phase: 'checkout', done: 3, total: 4, bytes: 0 })
    ).toEqual({ percent: 75, text: 'Writing files: 3 of 4' });
  });

  it('has no percentage without a total', () => {
    expect(describeProgress(null).percent).toBeNull();
  });

  it('formats bytes', () => {
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(1_234_567)).toBe('1.2 MB');
    expect(formatBytes(45_000_000)).toBe('45 MB');
  });
});
