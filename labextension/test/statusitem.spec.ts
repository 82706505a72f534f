import type { JupyterFrontEnd } from '@jupyterlab/application';
import { ServerConnection } from '@jupyterlab/services';
import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import type { IStatusBar } from '@jupyterlab/statusbar';
import { simulate } from '@jupyterlab/testing';
import { CommandRegistry } from '@lumino/commands';
import { Signal } from '@lumino/signaling';
import { act } from 'react';

import type { IAuthInfo } from '../src/api';
import plugin, { CommandIDs } from '../src/index';
import { requestAPI } from '../src/request';
import { SyncBadge } from '../src/widgets/badge';
import {
  FakeEvents,
  makeStatus,
  render,
  settle,
  unmount,
  waitFor
} from './utils';

jest.mock('../src/request', () => ({
  API_NAMESPACE: 'gitsync',
  requestAPI: jest.fn()
}));

const AUTH: IAuthInfo = {
  signed_in: true,
  provider: 'device',
  login: 'ada',
  scopes: null,
  permissions: null,
  repository: 'ada/thesis',
  can_push: true,
  device_flow: null,
  sign_in_available: true,
  providers: ['device'],
  error: null
};

/**
 * A stand-in for the settings of the plugin, changed with `set`.
 */
class FakeSettings {
  constructor(public values: { [key: string]: boolean | undefined }) {}

  readonly changed = new Signal<FakeSettings, void>(this);

  get(key: string): { composite: boolean | undefined } {
    return { composite: this.values[key] };
  }

  set(values: { [key: string]: boolean | undefined }): void {
    this.values = { ...this.values, ...values };
    this.changed.emit();
  }
}

interface IActivated {
  commands: CommandRegistry;
  registerStatusItem: jest.Mock;
  badge: SyncBadge | null;
}

/**
 * Activate the plugin with a status bar (and the given settings), the
 * server answering a synced status on a GitHub Enterprise remote.
 */
async function activate(
  options: { statusBar?: boolean; settings?: FakeSettings } = {}
): Promise<IActivated> {
  (requestAPI as jest.Mock).mockImplementation(async (endPoint: string) => {
    if (endPoint === 'status') {
      return makeStatus({ remote_url: 'https://git.example.org/ada/thesis' });
    }
    if (endPoint === 'auth') {
      return AUTH;
    }
    throw new Error(`no route for ${endPoint}`);
  });
  const commands = new CommandRegistry();
  const app = {
    commands,
    serviceManager: {
      events: new FakeEvents(),
      serverSettings: ServerConnection.makeSettings()
    }
  } as unknown as JupyterFrontEnd;
  const registerStatusItem = jest.fn();
  const statusBar = { registerStatusItem } as unknown as IStatusBar;
  const registry = options.settings
    ? ({
        load: jest.fn(async () => options.settings)
      } as unknown as ISettingRegistry)
    : null;
  plugin.activate(
    app,
    options.statusBar === false ? null : statusBar,
    null,
    registry,
    null
  );
  await settle();
  const badge = registerStatusItem.mock.calls[0]?.[1].item ?? null;
  if (badge) {
    await render(badge);
  }
  return { commands, registerStatusItem, badge };
}

/**
 * Run what opens or closes the popover, letting React render inside `act`.
 */
async function user(action: () => unknown): Promise<void> {
  await act(async () => {
    await action();
  });
}

function popovers(): NodeListOf<Element> {
  return document.querySelectorAll('.jp-gitsync-Details');
}

function expanded(badge: SyncBadge): string | null {
  return badge.node
    .querySelector('.jp-gitsync-Badge')!
    .getAttribute('aria-expanded');
}

describe('the Git Sync status bar item', () => {
  afterEach(() => {
    (requestAPI as jest.Mock).mockReset();
  });

  it('is added to the left of the status bar', async () => {
    const { registerStatusItem, badge } = await activate();
    expect(registerStatusItem).toHaveBeenCalledTimes(1);
    const [id, item] = registerStatusItem.mock.calls[0];
    expect(id).toBe('jupyter-gitsync:badge');
    expect(item).toEqual({ item: badge, align: 'left', rank: 50 });
    expect(badge!.id).toBe('jp-gitsync-badge');
    unmount(badge!);
  });

  it('opens the popover from the badge and closes it again', async () => {
    const { commands, badge } = await activate();
    expect(commands.isEnabled(CommandIDs.showDetails)).toBe(true);
    expect(popovers()).toHaveLength(0);

    await user(() => commands.execute(CommandIDs.showDetails));
    await settle(badge!);
    expect(popovers()).toHaveLength(1);
    expect(expanded(badge!)).toBe('true');

    // "Show status" does not close an open popover, nor open a second one.
    await user(() => commands.execute(CommandIDs.showDetails));
    expect(popovers()).toHaveLength(1);

    await user(() =>
      simulate(badge!.node.querySelector('.jp-gitsync-Badge')!, 'click')
    );
    await settle(badge!);
    expect(popovers()).toHaveLength(0);
    expect(expanded(badge!)).toBe('false');

    await user(() =>
      simulate(badge!.node.querySelector('.jp-gitsync-Badge')!, 'click')
    );
    await settle(badge!);
    expect(popovers()).toHaveLength(1);
    await user(() =>
      simulate(badge!.node.querySelector('.jp-gitsync-Badge')!, 'keydown', {
        key: 'Escape'
      })
    );
    await settle(badge!);
    expect(popovers()).toHaveLength(0);
    unmount(badge!);
  });

  it('links the branch once the popover has learnt the repository', async () => {
    const { commands, badge } = await activate();
    // Not github.com: a branch page exists only on the server's GitHub.
    expect(commands.isVisible(CommandIDs.openBranch)).toBe(false);
    await user(() => commands.execute(CommandIDs.showDetails));
    await waitFor(() => commands.isVisible(CommandIDs.openBranch), badge!);
    const open = jest.spyOn(window, 'open').mockReturnValue(null);
    await commands.execute(CommandIDs.openBranch);
    expect(open).toHaveBeenCalledWith(
      'https://git.example.org/ada/thesis/tree/gitsync/ada',
      '_blank',
      'noopener,noreferrer'
    );
    open.mockRestore();
    await user(() =>
      simulate(badge!.node.querySelector('.jp-gitsync-Badge')!, 'click')
    );
    unmount(badge!);
  });

  it('is not there without a status bar', async () => {
    const { commands, registerStatusItem } = await activate({
      statusBar: false
    });
    expect(registerStatusItem).not.toHaveBeenCalled();
    expect(commands.isEnabled(CommandIDs.showDetails)).toBe(false);
    await user(() => commands.execute(CommandIDs.showDetails));
    expect(popovers()).toHaveLength(0);
  });

  it('follows the relative times setting', async () => {
    const settings = new FakeSettings({ relativeTimes: false });
    const { badge } = await activate({ settings });
    expect(badge!.relativeTimes).toBe(false);
    settings.set({ relativeTimes: true });
    expect(badge!.relativeTimes).toBe(true);
    settings.set({ relativeTimes: false });
    expect(badge!.relativeTimes).toBe(false);
    // A missing value falls back to the default.
    settings.set({ relativeTimes: undefined });
    expect(badge!.relativeTimes).toBe(true);
    unmount(badge!);
  });
});
