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
