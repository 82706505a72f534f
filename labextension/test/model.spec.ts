import { SyncStatusModel } from '../src/model';
import { FakeEvents, fakeRequest, makeModel, makeStatus } from './utils';

describe('SyncStatusModel', () => {
  it('asks for the status once, then follows the events', async () => {
    const { model, events, request } = await makeModel({ state: 'pending' });
    expect(request).toHaveBeenCalledTimes(1);
    expect(model.status?.state).toBe('pending');

    const seen: string[] = [];
    model.changed.connect((_, change) => {
      seen.push(`${change.previousState}→${change.status?.state}`);
    });
    events.emit({ state: 'pushing' });
    events.emit({ state: 'synced' });
    expect(seen).toEqual(['pending→pushing', 'pushing→synced']);
    expect(request).toHaveBeenCalledTimes(1);
    model.dispose();
  });

  it('ignores events of other schemas', async () => {
    const { model, events } = await makeModel();
    (events.stream as any).emit({ schema_id: 'other', state: 'error' });
    expect(model.status?.state).toBe('synced');
  });

  it('reads restore progress and notices', async () => {
    const { model, events } = await makeModel();
    events.emit({
      state: 'restoring',
      progress: { phase: 'fetch', done: 3, total: 12, bytes: 2048 }
    });
    expect(model.status?.progress).toEqual({
      phase: 'fetch',
      done: 3,
      total: 12,
      bytes: 2048
    });
    events.emit({
      state: 'synced',
      notice: {
        kind: 'conflict',
        message: 'Kept 1 local file.',
        paths: ['a.ipynb'],
        branch: 'gitsync/ada-rescue'
      }
    });
    expect(model.status?.progress).toBeNull();
    expect(model.status?.notice?.branch).toBe('gitsync/ada-rescue');
  });

  it('fills in missing fields and drops malformed ones', async () => {
    const events = new FakeEvents();
    const request = fakeRequest({
      'GET status': () => ({
        state: 'offline',
        unpushed_commits: -3,
        pending_paths: ['a', 3],
        skipped: [{ path: 'x' }],
        error: { kind: 'network' },
        notice: { message: '' },
        rescue_branches: [
          { name: '' },
          3,
          { name: 'gitsync/x-rescue-1', paths: ['a', 4] }
        ],
        rescue_message: ''
      })
    });
    const model = new SyncStatusModel({ events, request });
    await model.ready;
    expect(model.status).toMatchObject({
      state: 'offline',
      branch: null,
      unpushed_commits: 0,
      pending_paths: ['a'],
      skipped: [],
      error: null,
      notice: null,
      progress: null,
      rescue_branches: [
        { name: 'gitsync/x-rescue-1', created: '', paths: ['a'] }
      ],
      rescue_message: null
    });
  });

  it('does not let an older answer overwrite a newer event', async () => {
    let answer: (value: unknown) => void = () => undefined;
    const events = new FakeEvents();
    const request = jest.fn(
      () => new Promise(resolve => (answer = resolve))
    ) as unknown as SyncStatusModel.RequestFunction;
    const model = new SyncStatusModel({ events, request });
    events.emit({ state: 'pushing' });
    answer(makeStatus({ state: 'starting' }));
    await model.ready;
    expect(model.status?.state).toBe('pushing');
  });

  it('keeps the request error until the next success', async () => {
    const events = new FakeEvents();
    const request = jest.fn(async () => {
      throw new Error('server gone');
    }) as unknown as SyncStatusModel.RequestFunction;
    const model = new SyncStatusModel({ events, request });
    await model.ready;
    expect(model.requestError).toBe('server gone');
    events.emit({ state: 'synced' });
    expect(model.requestError).toBeNull();
  });

  it('shares one "sync now" request and reports it as syncing', async () => {
    const { model, request } = await makeModel(
      { state: 'pending' },
      { 'POST sync': () => makeStatus({ state: 'synced' }) }
    );
    const first = model.syncNow();
    const second = model.syncNow();
    expect(model.isSyncing).toBe(true);
    await Promise.all([first, second]);
    expect(request.mock.calls.filter(c => c[0] === 'sync')).toHaveLength(1);
    expect(model.isSyncing).toBe(false);
    expect(model.status?.state).toBe('synced');
  });

  it('resumes from a branch and applies the answered status', async () => {
    const { model, request } = await makeModel(
      {},
      {
        'POST resume': body => ({
          ...makeStatus({ branch: (body as { branch: string }).branch }),
          message: 'Restored 3 files.',
          branch: (body as { branch: string }).branch
        })
      }
    );
    const result = await model.resume('gitsync/bob');
    expect(result.message).toBe('Restored 3 files.');
    expect(result.branch).toBe('gitsync/bob');
    expect(model.status?.branch).toBe('gitsync/bob');
    const call = request.mock.calls.find(c => c[0] === 'resume');
    expect(call?.[1]).toMatchObject({ method: 'POST' });
    expect(JSON.parse(call?.[1].body)).toEqual({ branch: 'gitsync/bob' });
  });

  it('rejects a failed resume with the server message', async () => {
    const { model } = await makeModel(
      {},
      {
        'POST resume': () => {
          throw new Error('Your current work could not be pushed');
        }
      }
    );
    await expect(model.resume('x')).rejects.toThrow('could not be pushed');
  });

  it('deletes a rescue branch and applies the answered status', async () => {
    const rescue = { name: 'gitsync/ada-rescue-1', created: '', paths: ['a'] };
    const { model, request } = await makeModel(
      { rescue_branches: [rescue] },
      { 'POST rescues/delete': () => makeStatus({ rescue_branches: [] }) }
    );
    expect(model.status?.rescue_branches).toEqual([rescue]);
    await model.deleteRescue(rescue.name);
    expect(model.status?.rescue_branches).toEqual([]);
    const call = request.mock.calls.find(c => c[0] === 'rescues/delete');
    expect(JSON.parse(call?.[1].body)).toEqual({ name: rescue.name });
  });

  it('rejects a failed delete with the server message, the status unchanged', async () => {
    const rescue = { name: 'gitsync/ada-rescue-1', created: '', paths: ['a'] };
    const { model } = await makeModel(
      { rescue_branches: [rescue] },
      {
        'POST rescues/delete': () => {
          throw new Error('The remote is unreachable');
        }
      }
    );
    await expect(model.deleteRescue(rescue.name)).rejects.toThrow(
      'unreachable'
    );
    expect(model.status?.rescue_branches).toEqual([rescue]);
  });
});
