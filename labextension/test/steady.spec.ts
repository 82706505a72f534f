import { SyncState } from '../src/model';
import { SteadyStatus } from '../src/steady';
import { makeModel } from './utils';

describe('SteadyStatus', () => {
  let now = 0;
  beforeEach(() => {
    jest.useFakeTimers();
    now = 1_000_000;
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  const advance = (ms: number): void => {
    now += ms;
    jest.advanceTimersByTime(ms);
  };

  async function setUp(): Promise<{
    steady: SteadyStatus;
    emit: (state: SyncState) => void;
    shown: string[];
  }> {
    const { model, events } = await makeModel({ state: 'synced' });
    const steady = new SteadyStatus({ model, now: () => now });
    const shown: string[] = [];
    steady.changed.connect((_, status) => shown.push(status?.state ?? 'none'));
    return { steady, emit: state => events.emit({ state }), shown };
  }

  it('shows a fast sync as one busy phase followed by synced', async () => {
    const { steady, emit, shown } = await setUp();
    emit('pending');
    advance(2000);
    emit('snapshotting');
    advance(30);
    emit('unpushed');
    advance(10);
    emit('pushing');
    advance(40);
    emit('synced');
    expect(steady.status?.state).toBe('snapshotting');
    advance(800);
    expect(shown).toEqual(['pending', 'snapshotting', 'synced']);
  });

  it('keeps the busy state shown for the minimum time', async () => {
    const { steady, emit } = await setUp();
    emit('pushing');
    advance(100);
    emit('synced');
    expect(steady.status?.state).toBe('pushing');
    advance(650);
    expect(steady.status?.state).toBe('pushing');
    advance(60);
    expect(steady.status?.state).toBe('synced');
  });

  it('shows a waiting state that lasts', async () => {
    const { steady, emit, shown } = await setUp();
    emit('snapshotting');
    advance(1000);
    emit('unpushed');
    expect(steady.status?.state).toBe('snapshotting');
    advance(599);
    expect(steady.status?.state).toBe('snapshotting');
    advance(1);
    expect(steady.status?.state).toBe('unpushed');
    expect(shown).toEqual(['snapshotting', 'unpushed']);
  });

  it('shows problems and slow states at once', async () => {
    const { steady, emit } = await setUp();
    emit('offline');
    expect(steady.status?.state).toBe('offline');
    emit('auth-required');
    expect(steady.status?.state).toBe('auth-required');
  });

  it('passes on changes within the shown state at once', async () => {
    const { model, events } = await makeModel({ state: 'restoring' });
    const steady = new SteadyStatus({ model, now: () => now });
    events.emit({
      state: 'restoring',
      progress: { phase: 'fetch', done: 5, total: 10, bytes: 0 }
    });
    expect(steady.status?.progress?.done).toBe(5);
  });

  it('stops following the model when disposed', async () => {
    const { steady, emit } = await setUp();
    steady.dispose();
    emit('error');
    expect(steady.status?.state).toBe('synced');
    expect(steady.isDisposed).toBe(true);
  });
});
