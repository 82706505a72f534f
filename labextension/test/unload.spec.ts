import { UnloadGuard } from '../src/unload';
import { makeModel } from './utils';

function unload(target: EventTarget): boolean {
  const event = new Event('beforeunload', { cancelable: true });
  target.dispatchEvent(event);
  return event.defaultPrevented;
}

describe('UnloadGuard', () => {
  it.each([
    ['pending', true],
    ['snapshotting', true],
    ['unpushed', true],
    ['pushing', true],
    ['offline', true],
    ['auth-required', true],
    ['conflict', true],
    ['synced', false],
    ['disabled', false],
    ['error', false]
  ])('in state %s warns: %s', async (state, warns) => {
    const { model } = await makeModel({ state: state as any });
    const target = new EventTarget();
    const guard = new UnloadGuard({ model, target });
    expect(unload(target)).toBe(warns);
    guard.dispose();
    expect(unload(target)).toBe(false);
  });

  it('follows the setting', async () => {
    const { model } = await makeModel({ state: 'pending' });
    const target = new EventTarget();
    let enabled = false;
    new UnloadGuard({ model, target, enabled: () => enabled });
    expect(unload(target)).toBe(false);
    enabled = true;
    expect(unload(target)).toBe(true);
  });
});
