import { GitSyncAPI, IAuthInfo, IDeviceFlow } from '../src/api';
import { SignInPanel } from '../src/widgets/signin';
import {
  fakeRequest,
  makeModel,
  render,
  settle,
  unmount,
  waitFor
} from './utils';

const FLOW: IDeviceFlow = {
  state: 'pending',
  user_code: 'WDJB-MJHT',
  verification_uri: 'https://github.com/login/device',
  expires_in: 899,
  interval: 0,
  message: null
};

function auth(overrides: Partial<IAuthInfo>): Partial<IAuthInfo> {
  return { signed_in: false, device_flow: FLOW, ...overrides };
}

function checks(request: jest.Mock): number {
  return request.mock.calls.filter(call => call[0] === 'auth').length;
}

describe('SignInPanel', () => {
  it('shows the code and the link, checks, and says when signed in', async () => {
    // Still waiting until the test has looked at the code (a loaded machine
    // may take longer than minCheckMs between two looks).
    let entered = false;
    const request = fakeRequest({
      'POST auth/device': () => FLOW,
      'GET auth': () =>
        entered
          ? auth({
              signed_in: true,
              provider: 'device',
              login: 'octocat',
              device_flow: null
            })
          : auth({})
    });
    const panel = new SignInPanel({
      api: new GitSyncAPI({ request }),
      minCheckMs: 20
    });
    const done = jest.fn();
    panel.signedIn.connect(done);
    await render(panel);
    await waitFor(() => panel.phase === 'waiting', panel);
    expect(
      panel.node.querySelector('.jp-gitsync-SignIn-code')!.textContent
    ).toBe('WDJB-MJHT');
    const link = panel.node.querySelector('a')!;
    expect(link.href).toBe('https://github.com/login/device');
    expect(link.target).toBe('_blank');
    expect(panel.node.textContent).toContain('Copy');

    await waitFor(() => checks(request) >= 1);
    entered = true;
    await waitFor(() => panel.phase === 'signed-in', panel);
    expect(checks(request)).toBeGreaterThanOrEqual(2);
    expect(done).toHaveBeenCalledTimes(1);
    expect(panel.node.textContent).toContain('Signed in as @octocat.');
    unmount(panel);
  });

  it('checks at once when the engine syncs', async () => {
    const request = fakeRequest({
      'POST auth/device': () => ({ ...FLOW, interval: 600 }),
      'GET auth': () => ({ signed_in: true, provider: 'device' })
    });
    const { model, events } = await makeModel({ state: 'auth-required' });
    const panel = new SignInPanel({
      api: new GitSyncAPI({ request }),
      model
    });
    await render(panel);
    await waitFor(() => panel.phase === 'waiting');
    events.emit({ state: 'synced' });
    await waitFor(() => panel.phase === 'signed-in');
    unmount(panel);
  });

  it('explains a denied sign-in and can start again', async () => {
    const request = fakeRequest({
      'POST auth/device': () => FLOW,
      'GET auth': () =>
        auth({
          device_flow: {
            ...FLOW,
            state: 'denied',
            message: 'The sign-in was cancelled on GitHub.'
          }
        })
    });
    const panel = new SignInPanel({
      api: new GitSyncAPI({ request }),
      minCheckMs: 10
    });
    await render(panel);
    await waitFor(() => panel.phase === 'failed', panel);
    expect(panel.node.textContent).toContain(
      'The sign-in was cancelled on GitHub.'
    );
    const again = panel.node.querySelector('button') as HTMLButtonElement;
    expect(again.textContent).toBe('Try again');
    again.click();
    await settle(panel);
    expect(
      request.mock.calls.filter(call => call[0] === 'auth/device')
    ).toHaveLength(2);
    unmount(panel);
  });

  it('explains that sign-in is not set up', async () => {
    const request = fakeRequest({
      'POST auth/device': () => {
        throw new Error(
          'GitHub sign-in is not set up: the server needs a client ID.'
        );
      }
    });
    const panel = new SignInPanel({ api: new GitSyncAPI({ request }) });
    await render(panel);
    await waitFor(() => panel.phase === 'failed', panel);
    expect(panel.node.textContent).toContain('GitHub sign-in is not set up');
    unmount(panel);
  });

  it('stops checking when closed', async () => {
    const request = fakeRequest({
      'POST auth/device': () => FLOW,
      'GET auth': () => auth({})
    });
    const panel = new SignInPanel({
      api: new GitSyncAPI({ request }),
      minCheckMs: 10
    });
    await render(panel);
    await waitFor(() => checks(request) >= 1);
    unmount(panel);
    const seen = checks(request);
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(checks(request)).toBe(seen);
  });
});
