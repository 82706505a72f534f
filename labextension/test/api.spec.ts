import { GitSyncAPI } from '../src/api';
import { fakeRequest } from './utils';

describe('GitSyncAPI', () => {
  it('reads who is signed in', async () => {
    const request = fakeRequest({
      'GET auth': () => ({
        signed_in: true,
        provider: 'device',
        login: 'octocat',
        scopes: ['repo'],
        permissions: null,
        repository: 'o/r',
        can_push: true,
        device_flow: null,
        sign_in_available: true,
        providers: ['device', 'env'],
        error: null
      })
    });
    const auth = await new GitSyncAPI({ request }).auth();
    expect(auth).toMatchObject({
      signed_in: true,
      provider: 'device',
      login: 'octocat',
      can_push: true,
      device_flow: null
    });
  });

  it('starts a device-flow sign-in', async () => {
    const request = fakeRequest({
      'POST auth/device': () => ({
        state: 'pending',
        user_code: 'ABCD-1234',
        verification_uri: 'https://github.com/login/device',
        expires_in: 899,
        interval: 5,
        message: null
      })
    });
    const flow = await new GitSyncAPI({ request }).startSignIn();
    expect(flow.user_code).toBe('ABCD-1234');
    expect(flow.interval).toBe(5);
  });

  it('signs out with DELETE', async () => {
    const request = fakeRequest({
      'DELETE auth': () => ({ signed_in: false })
    });
    const auth = await new GitSyncAPI({ request }).signOut();
    expect(auth.signed_in).toBe(false);
    expect(request).toHaveBeenCalledWith(
      'auth',
      { method: 'DELETE' },
      undefined
    );
  });

  it('forks the repository with POST auth/fork', async () => {
    const request = fakeRequest({
      'POST auth/fork': () => ({
        clone_url: 'https://github.com/octocat/thesis.git',
        full_name: 'octocat/thesis',
        html_url: 'https://github.com/octocat/thesis'
      })
    });
    const fork = await new GitSyncAPI({ request }).forkRepository();
    expect(fork).toEqual({
      clone_url: 'https://github.com/octocat/thesis.git',
      full_name: 'octocat/thesis',
      html_url: 'https://github.com/octocat/thesis'
    });
    expect(request).toHaveBeenCalledWith(
      'auth/fork',
      { method: 'POST' },
      undefined
    );
  });

  it('keeps only a web page as the fork URL to open', async () => {
    const request = fakeRequest({
      'POST auth/fork': () => ({
        clone_url: 'https://github.com/octocat/thesis.git',
        full_name: null,
        html_url: 'javascript:alert(1)'
      })
    });
    const fork = await new GitSyncAPI({ request }).forkRepository();
    expect(fork.full_name).toBeNull();
    expect(fork.html_url).toBeNull();
  });

  it('rejects a fork answer without a clone URL', async () => {
    const request = fakeRequest({ 'POST auth/fork': () => ({}) });
    await expect(new GitSyncAPI({ request }).forkRepository()).rejects.toThrow(
      'did not answer with the fork'
    );
  });

  it("passes the server's error on when forking fails", async () => {
    const request = fakeRequest({
      'POST auth/fork': () => {
        throw new Error(
          'Sign in to GitHub first: a fork belongs to your own account.'
        );
      }
    });
    await expect(new GitSyncAPI({ request }).forkRepository()).rejects.toThrow(
      'Sign in to GitHub first'
    );
  });

  it('lists branches, skipping malformed ones', async () => {
    const request = fakeRequest({
      'GET branches': () => ({
        branches: [
          {
            name: 'gitsync/ada',
            sync: true,
            current: true,
            sha: 'abc',
            last_snapshot_at: '2026-11-26T09:14:03+00:00',
            message: 'Snapshot'
          },
          { sync: true }
        ]
      })
    });
    const branches = await new GitSyncAPI({ request }).branches();
    expect(branches.map(b => b.name)).toEqual(['gitsync/ada']);
  });
});
