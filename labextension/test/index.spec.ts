import type { JupyterFrontEnd } from '@jupyterlab/application';
import * as apputils from '@jupyterlab/apputils';
import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { CommandRegistry } from '@lumino/commands';

import plugin, { CommandIDs } from '../src/index';
import { requestAPI } from '../src/request';
import { FakeEvents, fakeRequest, makeStatus, settle } from './utils';

jest.mock('@jupyterlab/apputils', () => {
  const actual = jest.requireActual('@jupyterlab/apputils');
  return {
    ...actual,
    showDialog: jest.fn((...args: unknown[]) => actual.showDialog(...args))
  };
});

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

describe('rescue branch commands', () => {
  const RESCUE = {
    name: 'gitsync/ada-rescue-1',
    created: '2026-11-26T09:14:03+00:00',
    paths: ['notes.txt']
  };
  const WITH_RESCUE = () => makeStatus({ rescue_branches: [RESCUE] });
  afterEach(() => {
    jest.restoreAllMocks();
    (requestAPI as jest.Mock).mockReset();
    Notification.dismiss();
  });

  function answerDialog(accept: boolean): jest.Mock {
    const dialog = apputils.showDialog as unknown as jest.Mock;
    dialog.mockResolvedValueOnce({ button: { accept } });
    return dialog;
  }

  it('opens a rescue branch on GitHub, and is off for unknown names', async () => {
    const { commands } = await activate({ 'GET status': WITH_RESCUE });
    const open = jest.spyOn(window, 'open').mockReturnValue(null);
    expect(commands.isEnabled(CommandIDs.openRescue, { name: 'nope' })).toBe(
      false
    );
    await commands.execute(CommandIDs.openRescue, { name: RESCUE.name });
    expect(open).toHaveBeenCalledWith(
      'https://github.com/ada/thesis/tree/gitsync/ada-rescue-1',
      '_blank',
      'noopener,noreferrer'
    );
  });

  it('without web pages, says how to take the version back with git', async () => {
    const { commands } = await activate({
      'GET status': () =>
        makeStatus({
          remote_url: 'https://git.example.org/ada/thesis.git',
          rescue_branches: [RESCUE]
        })
    });
    const dialog = answerDialog(true);
    await commands.execute(CommandIDs.openRescue, { name: RESCUE.name });
    const body = dialog.mock.calls[0][0].body as {
      props: { children: string };
    };
    expect(body.props.children).toContain(
      "git restore --source='gitsync/ada-rescue-1' -- 'notes.txt'"
    );
  });

  it('deletes only after the user agrees, and says so', async () => {
    const deleted: unknown[] = [];
    const { commands } = await activate({
      'GET status': WITH_RESCUE,
      'POST rescues/delete': body => {
        deleted.push(body);
        return makeStatus();
      }
    });
    const success = jest.spyOn(Notification, 'success');
    answerDialog(false);
    await commands.execute(CommandIDs.deleteRescue, { name: RESCUE.name });
    expect(deleted).toEqual([]);
    answerDialog(true);
    await commands.execute(CommandIDs.deleteRescue, { name: RESCUE.name });
    expect(deleted).toEqual([{ name: RESCUE.name }]);
    expect(success.mock.calls[0][0]).toBe(
      'Deleted the rescue branch gitsync/ada-rescue-1.'
    );
  });

  it("shows the server's message when deleting fails", async () => {
    const { commands } = await activate({
      'GET status': WITH_RESCUE,
      'POST rescues/delete': () => {
        throw new Error('The remote could not be reached.');
      }
    });
    const error = jest.spyOn(Notification, 'error');
    answerDialog(true);
    await commands.execute(CommandIDs.deleteRescue, { name: RESCUE.name });
    expect(error.mock.calls[0][0]).toBe(
      'Could not delete the rescue branch gitsync/ada-rescue-1: The remote could not be reached.'
    );
  });
});
