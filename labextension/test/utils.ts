import type { Event } from '@jupyterlab/services';
import { ReactWidget } from '@jupyterlab/ui-components';
import { MessageLoop } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { act } from 'react';

import {
  ISyncStatus,
  STATUS_EVENT_SCHEMA_ID,
  SyncStatusModel
} from '../src/model';

(
  globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }
).IS_REACT_ACT_ENVIRONMENT = true;

/**
 * A status document as the server sends it.
 */
export function makeStatus(overrides: Partial<ISyncStatus> = {}): ISyncStatus {
  return {
    state: 'synced',
    branch: 'gitsync/ada',
    remote_url: 'https://github.com/ada/thesis.git',
    head: '5f3c1a2b9d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a',
    remote_head: '5f3c1a2b9d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a',
    unpushed_commits: 0,
    pending_paths: [],
    pending_count: 0,
    last_synced_at: '2026-11-26T09:14:03+00:00',
    skipped: [],
    error: null,
    progress: null,
    notice: null,
    rescue_branches: [],
    rescue_message: null,
    ...overrides
  };
}

/**
 * A stand-in for `app.serviceManager.events`.
 */
export class FakeEvents {
  readonly stream = new Signal<unknown, Event.Emission>(
    this
  ) as unknown as Event.Stream;

  emit(status: Partial<ISyncStatus> & { previous_state?: string }): void {
    (this.stream as unknown as Signal<unknown, Event.Emission>).emit({
      schema_id: STATUS_EVENT_SCHEMA_ID,
      ...makeStatus(),
      ...status
    } as unknown as Event.Emission);
  }
}

/**
 * A request function answering from a table of `METHOD endpoint` → handler.
 */
export function fakeRequest(routes: {
  [route: string]: (body: unknown) => unknown;
}): jest.Mock & SyncStatusModel.RequestFunction {
  return jest.fn(async (endPoint: string, init: RequestInit = {}) => {
    const route = `${init.method ?? 'GET'} ${endPoint}`;
    const handler = routes[route];
    if (!handler) {
      throw new Error(`no route for ${route}`);
    }
    const body = typeof init.body === 'string' ? JSON.parse(init.body) : null;
    return handler(body);
  }) as unknown as jest.Mock & SyncStatusModel.RequestFunction;
}

/**
 * A model whose first status request answers `status`, with fake events.
 */
export async function makeModel(
  status: Partial<ISyncStatus> = {},
  routes: { [route: string]: (body: unknown) => unknown } = {}
): Promise<{
  model: SyncStatusModel;
  events: FakeEvents;
  request: jest.Mock;
}> {
  const events = new FakeEvents();
  const request = fakeRequest({
    'GET status': () => makeStatus(status),
    ...routes
  });
  const model = new SyncStatusModel({ events, request });
  await model.ready;
  return { model, events, request };
}

/**
 * Attach a React widget and let it render.
 */
export async function render<T extends ReactWidget>(widget: T): Promise<T> {
  await act(async () => {
    if (!widget.isAttached) {
      Widget.attach(widget, document.body);
    }
    await widget.renderPromise;
  });
  await update(widget);
  return widget;
}

/**
 * Dispose of a React widget (its unmount inside `act`).
 */
export function unmount(widget: ReactWidget): void {
  act(() => {
    widget.dispose();
  });
}

/**
 * Fake the timers, but not the ones Lumino's message loop and React use.
 */
export function useFakeTimers(): void {
  jest.useFakeTimers({
    doNotFake: [
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'setImmediate',
      'clearImmediate',
      'queueMicrotask',
      'nextTick'
    ]
  });
}

/**
 * Re-render a React widget now.
 */
export async function update(widget: ReactWidget): Promise<void> {
  await act(async () => {
    MessageLoop.sendMessage(widget, Widget.Msg.UpdateRequest);
    await widget.renderPromise;
  });
}

/**
 * Let pending promises settle, then re-render.
 */
export async function settle(widget?: ReactWidget): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 5; i++) {
      await Promise.resolve();
    }
  });
  if (widget && !widget.isDisposed) {
    await update(widget);
  }
}

/**
 * Wait until `condition` holds, re-rendering `widget`; fail after `timeout`.
 */
export async function waitFor(
  condition: () => boolean,
  widget?: ReactWidget,
  timeout = 20000
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms: ${condition}`);
    }
    await act(async () => {
      await new Promise(resolve => setTimeout(resolve, 5));
    });
  }
  if (widget && !widget.isDisposed) {
    await update(widget);
  }
}
