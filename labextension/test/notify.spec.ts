import { Notification } from '@jupyterlab/apputils';
import { nullTranslator } from '@jupyterlab/translation';

import { AlertNotifier } from '../src/notify';
import { makeModel } from './utils';

const trans = nullTranslator.load('jupyter_gitsync');

describe('AlertNotifier', () => {
  let warning: jest.SpyInstance;
  let error: jest.SpyInstance;
  beforeEach(() => {
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
