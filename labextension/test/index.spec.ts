import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { CommandRegistry } from '@lumino/commands';

import plugin, { CommandIDs } from '../src/index';
import { requestAPI } from '../src/request';
import { FakeEvents, fakeRequest, makeStatus, settle } from './utils';

jest.mock('../src/request', () => ({
  API_NAMESPACE: 'gitsync',
  requestAPI: jest.fn()
}));

const NO_PUSH = {
  state: 'auth-required' as const,
  error: {
    kind: 'permission',
    message:
      'You cannot push to ada/thesis. Fork it to your GitHub account to keep your work synced there.'
  }
};

const FORK = {
  clone_url: 'https://github.com/octocat/thesis.git',
  full_name: 'octocat/thesis',
  html_url: 'https://github.com/octocat/thesis'
};

/**
 * Activate the plugin in a stand-in application whose requests answer from
 * `routes`.
 */
async function activate(
  routes: { [route: string]: (body: unknown) => unknown } = {}
): Promise<{ commands: CommandRegistry; events: FakeEvents }> {
  const request = fakeRequest({
    'GET status': () => makeStatus(NO_PUSH),
    ...routes
  });
  (requestAPI as jest.Mock).mockImplementation(request);
  const commands = new CommandRegistry();
  const events = new FakeEvents();
  const app = {
    commands,
    serviceManager: {
      events,
      serverSettings: ServerConnection.makeSettings()
    }
  } as unknown as JupyterFrontEnd;
  plugin.activate(app, null, null, null, null);
  await settle();
  return { commands, events };
}

describe('gitsync:fork', () => {
  let success: jest.SpyInstance;
  let error: jest.SpyInstance;
  beforeEach(() => {
    success = jest.spyOn(Notification, 'success');
    error = jest.spyOn(Notification, 'error');
  });
  afterEach(() => {
    jest.restoreAllMocks();
    (requestAPI as jest.Mock).mockReset();
    Notification.dismiss();
  });

  it('is enabled only when the user may not push', async () => {
    const { commands, events } = await activate();
    expect(CommandIDs.fork).toBe('gitsync:fork');
    expect(commands.label(CommandIDs.fork)).toBe(
      'Git Sync: Fork the repository to my account'
    );
    expect(commands.label(CommandIDs.fork, { short: true })).toBe(
      'Fork to my account'
    );
    expect(commands.isEnabled(CommandIDs.fork)).toBe(true);
    expect(commands.isVisible(CommandIDs.fork)).toBe(true);

    events.emit({
      state: 'auth-required',
      error: { kind: 'auth', message: 'The token expired.' }
    });
    expect(commands.isEnabled(CommandIDs.fork)).toBe(false);

    events.emit({ state: 'synced', error: null });
    expect(commands.isEnabled(CommandIDs.fork)).toBe(false);
    expect(commands.isVisible(CommandIDs.fork)).toBe(false);

    events.emit(NO_PUSH);
    expect(commands.isEnabled(CommandIDs.fork)).toBe(true);
  });

  it('forks once at a time and tells where the work now goes', async () => {
    let answer: (value: unknown) => void = () => undefined;
    const { commands } = await activate({
      'POST auth/fork': () => new Promise(resolve => (answer = resolve))
    });
    const done = commands.execute(CommandIDs.fork);
    await settle();
    expect(requestAPI).toHaveBeenCalledWith(
      'auth/fork',
      { method: 'POST' },
      expect.anything()
    );
    expect(commands.isEnabled(CommandIDs.fork)).toBe(false);

    answer(FORK);
    await done;
    expect(commands.isEnabled(CommandIDs.fork)).toBe(true);
    expect(success).toHaveBeenCalledTimes(1);
    const [message, options] = success.mock.calls[0];
    expect(message).toBe(
      'Forked to octocat/thesis; your work now syncs there.'
    );
    const open = jest.spyOn(window, 'open').mockReturnValue(null);
    options.actions[0].callback();
    expect(open).toHaveBeenCalledWith(
      'https://github.com/octocat/thesis',
      '_blank',
      'noopener,noreferrer'
    );
  });

  it("shows the server's message when forking fails", async () => {
    const { commands } = await activate({
      'POST auth/fork': () => {
        throw new ServerConnection.ResponseError(
          { status: 502, statusText: 'Bad Gateway' } as Response,
          'GitHub would not fork ada/thesis: GitHub answered 500.'
        );
      }
    });
    await commands.execute(CommandIDs.fork);
    expect(success).not.toHaveBeenCalled();
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0][0]).toBe(
      'Could not fork the repository: GitHub would not fork ada/thesis: GitHub answered 500.'
    );
    expect(commands.isEnabled(CommandIDs.fork)).toBe(true);
  });
});
