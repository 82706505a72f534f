import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator } from '@jupyterlab/translation';

import { AlertNotifier, notifyForked, notifyForkFailed } from '../src/notify';
import { makeModel } from './utils';

const trans = nullTranslator.load('jupyter_gitsync');

describe('AlertNotifier', () => {
  let warning: jest.SpyInstance;
  let error: jest.SpyInstance;
  let success: jest.SpyInstance;
  beforeEach(() => {
    success = jest.spyOn(Notification, 'success');
    warning = jest.spyOn(Notification, 'warning');
    error = jest.spyOn(Notification, 'error');
  });
  afterEach(() => {
    jest.restoreAllMocks();
    Notification.dismiss();
  });

  it('tells when sign-in is required, with a sign-in button', async () => {
    const { model, events } = await makeModel();
    const signIn = jest.fn();
    new AlertNotifier(model, trans, () => true, { signIn });
    events.emit({
      state: 'auth-required',
      error: { kind: 'auth', message: 'The token expired.' }
    });
    expect(warning).toHaveBeenCalledTimes(1);
    const [message, options] = warning.mock.calls[0];
    expect(message).toContain('sign in again');
    options.actions[0].callback();
    expect(signIn).toHaveBeenCalled();
    events.emit({ state: 'auth-required' });
    expect(warning).toHaveBeenCalledTimes(1);
  });

  it('alerts once per problem, not at every save, and withdraws it once synced', async () => {
    const { model, events } = await makeModel();
    const dismiss = jest.spyOn(Notification, 'dismiss');
    new AlertNotifier(model, trans, () => true, { signIn: jest.fn() });
    const noToken = {
      kind: 'no-token',
      message: 'Sign in to GitHub to keep your work.'
    };
    for (let save = 0; save < 5; save++) {
      events.emit({ state: 'snapshotting', error: noToken });
      events.emit({ state: 'auth-required', error: noToken });
    }
    expect(warning).toHaveBeenCalledTimes(1);
    const [message] = warning.mock.calls[0];
    expect(message).toContain('Sign in to GitHub to keep your work.');
    expect(message).not.toContain('refused');
    const id = warning.mock.results[0].value;
    events.emit({ state: 'restoring', error: null });
    events.emit({ state: 'synced', error: null });
    expect(dismiss).toHaveBeenCalledWith(id);
    // a new problem later is a new alert
    events.emit({
      state: 'auth-required',
      error: { kind: 'auth', message: 'The token expired.' }
    });
    expect(warning).toHaveBeenCalledTimes(2);
  });

  it('offers to fork, not to sign in, without push access', async () => {
    const { model, events } = await makeModel();
    const signIn = jest.fn();
    const fork = jest.fn();
    new AlertNotifier(model, trans, () => true, { signIn, fork });
    events.emit({
      state: 'auth-required',
      error: { kind: 'permission', message: 'You cannot push to ada/thesis.' }
    });
    expect(warning).toHaveBeenCalledTimes(1);
    const [message, options] = warning.mock.calls[0];
    expect(message).toContain('You may not push to ada/thesis.');
    expect(options.actions.map((a: { label: string }) => a.label)).toEqual([
      'Fork to my account'
    ]);
    options.actions[0].callback();
    expect(fork).toHaveBeenCalled();
    expect(signIn).not.toHaveBeenCalled();
  });

  it('tells where the fork is, with a button to open it', () => {
    const open = jest.fn();
    notifyForked(
      {
        clone_url: 'https://github.com/octocat/thesis.git',
        full_name: 'octocat/thesis',
        html_url: 'https://github.com/octocat/thesis'
      },
      trans,
      open
    );
    expect(success).toHaveBeenCalledTimes(1);
    const [message, options] = success.mock.calls[0];
    expect(message).toBe(
      'Forked to octocat/thesis; your work now syncs there.'
    );
    options.actions[0].callback();
    expect(open).toHaveBeenCalledWith('https://github.com/octocat/thesis');
  });

  it("tells why forking failed in the server's words", () => {
    const signIn = jest.fn();
    notifyForkFailed(
      new ServerConnection.ResponseError(
        { status: 403, statusText: 'Forbidden' } as Response,
        'GitHub would not fork ada/thesis: forking is disabled.'
      ),
      trans,
      { signIn }
    );
    expect(error).toHaveBeenCalledTimes(1);
    const [message, options] = error.mock.calls[0];
    expect(message).toBe(
      'Could not fork the repository: GitHub would not fork ada/thesis: forking is disabled.'
    );
    expect(options.actions).toEqual([]);
  });

  it('offers to sign in when the server says nobody is', () => {
    const signIn = jest.fn();
    notifyForkFailed(
      new ServerConnection.ResponseError(
        { status: 409, statusText: 'Conflict' } as Response,
        'Sign in to GitHub first: a fork belongs to your own account.'
      ),
      trans,
      { signIn }
    );
    const [message, options] = error.mock.calls[0];
    expect(message).toContain('Sign in to GitHub first');
    options.actions[0].callback();
    expect(signIn).toHaveBeenCalled();
  });

  it('tells about conflicts', async () => {
    const { model, events } = await makeModel();
    new AlertNotifier(model, trans, () => true);
    events.emit({ state: 'conflict' });
    expect(error).toHaveBeenCalledTimes(1);
  });

  it('tells about a notice once, naming the rescue branch', async () => {
    const { model, events } = await makeModel();
    new AlertNotifier(model, trans, () => true);
    const notice = {
      kind: 'conflict',
      message: 'Kept your local files.',
      paths: ['a.py'],
      branch: 'gitsync/ada-rescue'
    };
    events.emit({ notice });
    events.emit({ notice });
    expect(warning).toHaveBeenCalledTimes(1);
    expect(warning.mock.calls[0][0]).toBe(
      'Kept your local files. The other versions are on the branch gitsync/ada-rescue.'
    );
  });

  it('tells about newly skipped files only', async () => {
    const { model, events } = await makeModel();
    new AlertNotifier(model, trans, () => true);
    const big = { path: 'data/raw.h5', reason: 'larger than 50 MB' };
    events.emit({ skipped: [big] });
    events.emit({ skipped: [big] });
    events.emit({
      skipped: [big, { path: '.env', reason: 'looks like a secret' }]
    });
    expect(warning.mock.calls.map(c => c[0])).toEqual([
      'Git Sync does not sync data/raw.h5: larger than 50 MB.',
      'Git Sync does not sync .env: looks like a secret.'
    ]);
  });

  it('stays quiet when notifications are off', async () => {
    const { model, events } = await makeModel();
    new AlertNotifier(model, trans, () => false);
    events.emit({ state: 'error' });
    expect(error).not.toHaveBeenCalled();
  });
});
