/* eslint-disable jupyter/no-untranslated-string -- request bodies the server reads, not words shown */
import { Dialog } from '@jupyterlab/apputils';
import { act } from 'react';

import { GitSyncAPI } from '../src/api';
import {
  PublishForm,
  showPublishDialog,
  showVersionDialog,
  VersionForm
} from '../src/widgets/versions';
import { render, unmount, update, waitFor } from './utils';

const SHA = 'c'.repeat(40);

/**
 * A request function whose answer the test gives when it wants.
 */
function pending(): {
  request: jest.Mock<Promise<any>, any[]>;
  answer(value: unknown): void;
} {
  let resolve: (value: unknown) => void = () => undefined;
  const request = jest.fn<Promise<any>, any[]>(
    () =>
      new Promise(r => {
        resolve = r;
      })
  );
  return { request, answer: value => resolve(value) };
}

/**
 * Type into an input the way React sees it.
 */
async function type(
  node: HTMLInputElement | HTMLTextAreaElement | null,
  value: string
): Promise<void> {
  expect(node).not.toBeNull();
  const setter = Object.getOwnPropertyDescriptor(
    Object.getPrototypeOf(node),
    'value'
  )!.set!;
  await act(async () => {
    setter.call(node, value);
    node!.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

function dialogButton(label: string): HTMLButtonElement | null {
  return (
    Array.from(
      document.querySelectorAll<HTMLButtonElement>('.jp-Dialog-footer button')
    ).find(b => b.textContent === label) ?? null
  );
}

describe('VersionForm', () => {
  it('checks the name as it is typed', async () => {
    const request = jest.fn();
    const form = new VersionForm({ api: new GitSyncAPI({ request }) });
    await render(form);
    const error = () =>
      form.node.querySelector('.jp-gitsync-Form-error')?.textContent;
    expect(form.valid).toBe(false);
    expect(error()).toBe('');
    await type(form.node.querySelector('input'), 'my draft');
    await update(form);
    expect(form.valid).toBe(false);
    expect(error()).toBe('A name cannot contain spaces; use - or _ instead.');
    await type(form.node.querySelector('input'), 'my-draft');
    await update(form);
    expect(form.valid).toBe(true);
    expect(error()).toBe('');
    expect(await form.submit()).toBe(false);
    unmount(form);
  });

  it("shows the server's refusal and keeps what was typed", async () => {
    const request = jest.fn<Promise<any>, any[]>(async () => {
      throw new Error('A version named "v1" exists already.');
    });
    const form = new VersionForm({
      api: new GitSyncAPI({ request }),
      sha: SHA
    });
    await render(form);
    form.name = 'v1';
    form.message = 'First full draft';
    expect(await form.submit()).toBe(false);
    await update(form);
    expect(form.node.querySelector('.jp-gitsync-Form-error')?.textContent).toBe(
      'A version named "v1" exists already.'
    );
    expect(JSON.parse(request.mock.calls[0][1].body)).toEqual({
      name: 'v1',
      message: 'First full draft',
      sha: SHA
    });
    expect(form.getValue()).toBeNull();
    unmount(form);
  });
});

describe('showVersionDialog', () => {
  afterEach(() => {
    Dialog.flush();
  });

  it('saves on accept and closes once the server answered', async () => {
    const { request, answer } = pending();
    const shown = showVersionDialog({ api: new GitSyncAPI({ request }) });
    await waitFor(
      () => document.querySelector('.jp-gitsync-VersionForm input') !== null
    );
    const save = dialogButton('Save Version');
    expect(save?.disabled).toBe(true);
    await type(
      document.querySelector<HTMLInputElement>('.jp-gitsync-VersionForm input'),
      'submitted'
    );
    expect(save?.disabled).toBe(false);
    await act(async () => save!.click());
    // The dialog stays while the request runs, its buttons disabled.
    expect(document.querySelector('.jp-gitsync-VersionDialog')).not.toBeNull();
    expect(dialogButton('Cancel')?.disabled).toBe(true);
    const version = await act(async () => {
      answer({ name: 'submitted', sha: SHA, time: 't', message: '' });
      return shown;
    });
    expect(version).toEqual({
      name: 'submitted',
      sha: SHA,
      time: 't',
      message: ''
    });
  });
});

describe('PublishForm', () => {
  it('makes the branch from the title until the branch is edited', async () => {
    const form = new PublishForm({
      api: new GitSyncAPI({ request: jest.fn() }),
      message: 'Fix plot axes\n\nThe y axis was upside down.'
    });
    await render(form);
    expect(form.pullRequestTitle).toBe('Fix plot axes');
    expect(form.branch).toBe('fix-plot-axes');
    const [title, branch] = Array.from(form.node.querySelectorAll('input'));
    await type(title, 'Add the 2026 results');
    expect(form.branch).toBe('add-the-2026-results');
    await type(branch, 'results..2026');
    await update(form);
    expect(form.valid).toBe(false);
    expect(form.node.textContent).toContain('A name cannot contain "..".');
    await type(branch, 'results-2026');
    await type(title, 'Something else');
    expect(form.branch).toBe('results-2026');
    expect(form.valid).toBe(true);
    unmount(form);
  });

  it('needs a title', async () => {
    const form = new PublishForm({
      api: new GitSyncAPI({ request: jest.fn() })
    });
    await render(form);
    expect(form.valid).toBe(false);
    form.branch = 'ok';
    expect(form.valid).toBe(false);
    unmount(form);
  });
});

describe('showPublishDialog', () => {
  afterEach(() => {
    Dialog.flush();
  });

  it('shows progress, then ends with the pull request link', async () => {
    const { request, answer } = pending();
    const shown = showPublishDialog({
      api: new GitSyncAPI({ request }),
      source: 'v1',
      message: 'Fix plot axes'
    });
    await waitFor(() => dialogButton('Publish') !== null);
    await waitFor(() => dialogButton('Publish')?.disabled === false);
    await act(async () => dialogButton('Publish')!.click());
    await waitFor(
      () => document.querySelector('.jp-gitsync-Form-progress') !== null
    );
    expect(JSON.parse(request.mock.calls[0][1].body)).toEqual({
      branch: 'fix-plot-axes',
      title: 'Fix plot axes',
      body: '',
      source: 'v1'
    });
    answer({
      branch: 'fix-plot-axes',
      commit: SHA,
      pull_request_url: 'https://github.com/ada/thesis/pull/7',
      message: 'Opened pull request #7.'
    });
    await waitFor(
      () => document.querySelector('.jp-gitsync-PublishResult-link') !== null
    );
    const link = document.querySelector<HTMLAnchorElement>(
      '.jp-gitsync-PublishResult-link'
    )!;
    expect(link.href).toBe('https://github.com/ada/thesis/pull/7');
    expect(link.target).toBe('_blank');
    expect(link.rel).toContain('noopener');
    expect(dialogButton('Cancel')?.hidden).toBe(true);
    await act(async () => dialogButton('Close')!.click());
    const result = await shown;
    expect(result?.pull_request_url).toBe(
      'https://github.com/ada/thesis/pull/7'
    );
  });

  it('shows a failure in the dialog and lets the user try again', async () => {
    const request = jest
      .fn()
      .mockRejectedValueOnce(
        new Error(
          'The branch fix-plot-axes exists on the remote and is not ours.'
        )
      )
      .mockResolvedValueOnce({
        branch: 'fix-plot-axes-2',
        commit: SHA,
        pull_request_url: null,
        message:
          'Pushed the branch fix-plot-axes-2; the remote is not on GitHub, so no pull request was opened.'
      });
    const shown = showPublishDialog({
      api: new GitSyncAPI({ request }),
      message: 'Fix plot axes'
    });
    await waitFor(() => dialogButton('Publish')?.disabled === false);
    await act(async () => dialogButton('Publish')!.click());
    await waitFor(
      () => document.querySelector('.jp-gitsync-Form-failure') !== null
    );
    expect(
      document.querySelector('.jp-gitsync-Form-failure')?.textContent
    ).toBe(
      'Could not publish: The branch fix-plot-axes exists on the remote and is not ours.'
    );
    await type(
      document.querySelectorAll<HTMLInputElement>(
        '.jp-gitsync-PublishForm input'
      )[1],
      'fix-plot-axes-2'
    );
    await waitFor(() => dialogButton('Publish')?.disabled === false);
    await act(async () => dialogButton('Publish')!.click());
    await waitFor(() =>
      (
        document.querySelector('.jp-gitsync-PublishResult')?.textContent ?? ''
      ).includes('no pull request was opened')
    );
    expect(document.querySelector('.jp-gitsync-PublishResult-link')).toBeNull();
    await act(async () => dialogButton('Close')!.click());
    expect((await shown)?.branch).toBe('fix-plot-axes-2');
  });
});
