/* eslint-disable jupyter/no-untranslated-string -- request bodies the server reads, not words shown */
import { GitSyncAPI } from '../src/api';
import { fakeRequest } from './utils';

const SHA_A = 'a'.repeat(40);
const SHA_B = 'b'.repeat(40);

/**
 * The parameters of a query, as an object.
 */
function fields(search: URLSearchParams): { [name: string]: string } {
  const all: { [name: string]: string } = {};
  search.forEach((value, name) => {
    all[name] = value;
  });
  return all;
}

/**
 * A request function that records what it was asked and answers `answer`.
 */
function recorder(answer: unknown): jest.Mock {
  return jest.fn(async () => answer);
}

describe('GitSyncAPI history end points', () => {
  it('asks for a file history with an encoded query', async () => {
    const request = recorder({
      entries: [
        {
          sha: SHA_A,
          time: '2026-12-01T09:00:00+00:00',
          message: 'Snapshot of 1 file',
          version: 'v1',
          versions: ['v1', 'submitted'],
          session: 'laptop',
          this_session: false,
          author: 'Ada',
          path: 'old name.ipynb'
        },
        { sha: 7 },
        'junk'
      ],
      more: true
    });
    const page = await new GitSyncAPI({ request }).history({
      path: 'notes/ünï code & more.ipynb',
      limit: 50,
      before: SHA_B
    });
    const [endPoint, init] = request.mock.calls[0];
    expect(init).toEqual({ method: 'GET' });
    const url = new URL(endPoint, 'http://x/gitsync/');
    expect(url.pathname).toBe('/gitsync/history');
    expect(url.searchParams.get('path')).toBe('notes/ünï code & more.ipynb');
    expect(url.searchParams.get('limit')).toBe('50');
    expect(url.searchParams.get('before')).toBe(SHA_B);
    expect(page.more).toBe(true);
    expect(page.entries).toHaveLength(1);
    expect(page.entries[0]).toEqual({
      sha: SHA_A,
      time: '2026-12-01T09:00:00+00:00',
      message: 'Snapshot of 1 file',
      version: 'v1',
      versions: ['v1', 'submitted'],
      session: 'laptop',
      this_session: false,
      author: 'Ada',
      path: 'old name.ipynb'
    });
  });

  it('asks for the whole branch without parameters', async () => {
    const request = recorder({ entries: [] });
    const page = await new GitSyncAPI({ request }).history();
    expect(request.mock.calls[0][0]).toBe('history');
    expect(page).toEqual({ entries: [], more: false });
  });

  it('lists a version given only as `version` among `versions`', async () => {
    const request = recorder({
      entries: [{ sha: SHA_A, version: 'v2', this_session: true }]
    });
    const { entries } = await new GitSyncAPI({ request }).history({
      path: 'a'
    });
    expect(entries[0].versions).toEqual(['v2']);
    expect(entries[0].this_session).toBe(true);
  });

  it('asks for a diff with the file on disk when no remote is given', async () => {
    const request = recorder({ format: 'text', base: 'a\n', remote: 'b\n' });
    const api = new GitSyncAPI({ request });
    const diff = await api.diff('a b.py', SHA_A);
    expect(diff).toEqual({ format: 'text', base: 'a\n', remote: 'b\n' });
    const url = new URL(request.mock.calls[0][0], 'http://x/gitsync/');
    expect(url.pathname).toBe('/gitsync/diff');
    expect(url.searchParams.get('path')).toBe('a b.py');
    expect(url.searchParams.get('base')).toBe(SHA_A);
    expect(url.searchParams.has('remote')).toBe(false);

    await api.diff('a b.py', SHA_A, SHA_B);
    const second = new URL(request.mock.calls[1][0], 'http://x/gitsync/');
    expect(second.searchParams.get('remote')).toBe(SHA_B);
  });

  it('names the file at each side of a diff only where it was renamed', async () => {
    const request = recorder({ format: 'text', base: 'a\n', remote: 'b\n' });
    const api = new GitSyncAPI({ request });
    await api.diff('new name.ipynb', SHA_A, undefined, {
      basePath: 'old/ñame & co.ipynb'
    });
    await api.diff('b.ipynb', SHA_A, SHA_B, {
      basePath: 'a.ipynb',
      remotePath: 'b.ipynb'
    });
    await api.diff('b.ipynb', SHA_A, SHA_B, { basePath: null, remotePath: '' });
    const [first, second, third] = request.mock.calls.map(
      call => new URL(call[0], 'http://x/gitsync/').searchParams
    );
    expect(fields(first)).toEqual({
      path: 'new name.ipynb',
      base: SHA_A,
      base_path: 'old/ñame & co.ipynb'
    });
    expect(fields(second)).toEqual({
      path: 'b.ipynb',
      base: SHA_A,
      remote: SHA_B,
      base_path: 'a.ipynb'
    });
    expect(fields(third)).toEqual({
      path: 'b.ipynb',
      base: SHA_A,
      remote: SHA_B
    });
  });

  it('reads notebook and binary diffs, and refuses an unknown format', async () => {
    const notebook = {
      cells: [],
      metadata: {},
      nbformat: 4,
      nbformat_minor: 5
    };
    const diffEntries = [{ op: 'addrange', key: 0, valuelist: [] }];
    let api = new GitSyncAPI({
      request: recorder({
        format: 'notebook',
        base: notebook,
        diff: diffEntries
      })
    });
    expect(await api.diff('n.ipynb', SHA_A)).toEqual({
      format: 'notebook',
      base: notebook,
      diff: diffEntries
    });
    api = new GitSyncAPI({
      request: recorder({ format: 'binary', base_size: 10, remote_size: 'x' })
    });
    expect(await api.diff('img.png', SHA_A)).toEqual({
      format: 'binary',
      base_size: 10,
      remote_size: 0
    });
    api = new GitSyncAPI({ request: recorder({ format: 'svg' }) });
    await expect(api.diff('x', SHA_A)).rejects.toThrow('did not answer');
  });

  it('reads a file of a snapshot', async () => {
    const request = recorder({
      path: 'a.txt',
      sha: SHA_A,
      type: 'file',
      format: 'text',
      content: 'hello'
    });
    const file = await new GitSyncAPI({ request }).file('a.txt', SHA_A);
    expect(file.content).toBe('hello');
    expect(request.mock.calls[0][0]).toBe(`file?path=a.txt&sha=${SHA_A}`);
  });

  it('posts a restore of one file and of the workspace', async () => {
    const request = fakeRequest({
      'POST restore-file': () => ({ path: 'a.txt', sha: SHA_B }),
      'POST restore-workspace': () => ({
        sha: SHA_B,
        not_restored: { 'run.sh': 'it would run code at start', odd: 3 }
      })
    });
    const api = new GitSyncAPI({ request });
    expect(await api.restoreFile('a.txt', SHA_A)).toBe(SHA_B);
    expect(await api.restoreWorkspace(SHA_A)).toEqual({
      sha: SHA_B,
      not_restored: { 'run.sh': 'it would run code at start', odd: '' }
    });
    expect(request.mock.calls[0][1]).toEqual({
      method: 'POST',
      body: JSON.stringify({ path: 'a.txt', sha: SHA_A })
    });
    expect(request.mock.calls[1][1]).toEqual({
      method: 'POST',
      body: JSON.stringify({ sha: SHA_A })
    });
  });

  it('restores a file from its name at the snapshot only where it differs', async () => {
    const request = recorder({ path: 'b.ipynb', sha: SHA_B });
    const api = new GitSyncAPI({ request });
    expect(await api.restoreFile('b.ipynb', SHA_A, 'old/a.ipynb')).toBe(SHA_B);
    await api.restoreFile('b.ipynb', SHA_A, 'b.ipynb');
    await api.restoreFile('b.ipynb', SHA_A, null);
    expect(request.mock.calls.map(call => call[0])).toEqual([
      'restore-file',
      'restore-file',
      'restore-file'
    ]);
    expect(request.mock.calls.map(call => JSON.parse(call[1].body))).toEqual([
      { path: 'b.ipynb', sha: SHA_A, from_path: 'old/a.ipynb' },
      { path: 'b.ipynb', sha: SHA_A },
      { path: 'b.ipynb', sha: SHA_A }
    ]);
  });

  it('refuses a restore answer without the new snapshot', async () => {
    const api = new GitSyncAPI({ request: recorder({}) });
    await expect(api.restoreFile('a', SHA_A)).rejects.toThrow('new snapshot');
  });

  it('lists and saves versions', async () => {
    const request = fakeRequest({
      'GET versions': () => ({
        versions: [
          { name: 'v2', sha: SHA_B, time: 't', message: 'm' },
          { sha: SHA_A }
        ]
      }),
      'POST versions': body => ({ ...(body as object), sha: SHA_A, time: 't' })
    });
    const api = new GitSyncAPI({ request });
    expect(await api.versions()).toEqual([
      { name: 'v2', sha: SHA_B, time: 't', message: 'm' }
    ]);
    const saved = await api.saveVersion({ name: 'v3', message: 'Draft' });
    expect(saved).toEqual({
      name: 'v3',
      sha: SHA_A,
      time: 't',
      message: 'Draft'
    });
    expect(JSON.parse(request.mock.calls[1][1].body)).toEqual({
      name: 'v3',
      message: 'Draft'
    });
    await api.saveVersion({ name: 'v4', message: '', sha: SHA_B });
    expect(JSON.parse(request.mock.calls[2][1].body)).toEqual({
      name: 'v4',
      message: '',
      sha: SHA_B
    });
  });

  it('publishes, with a source only when given', async () => {
    const request = fakeRequest({
      'POST publish': () => ({
        branch: 'fix-plot-axes',
        commit: SHA_A,
        pull_request_url: 'https://github.com/ada/thesis/pull/7',
        message: 'Opened pull request #7.'
      })
    });
    const api = new GitSyncAPI({ request });
    const result = await api.publish({
      branch: 'fix-plot-axes',
      title: 'Fix plot axes',
      body: ''
    });
    expect(result.pull_request_url).toBe(
      'https://github.com/ada/thesis/pull/7'
    );
    expect(JSON.parse(request.mock.calls[0][1].body)).toEqual({
      branch: 'fix-plot-axes',
      title: 'Fix plot axes',
      body: ''
    });
    await api.publish({ branch: 'b', title: 't', body: 'd', source: 'v1' });
    expect(JSON.parse(request.mock.calls[1][1].body).source).toBe('v1');
  });

  it('never offers a pull request link that is not a web page', async () => {
    const api = new GitSyncAPI({
      request: recorder({
        branch: 'b',
        commit: SHA_A,
        pull_request_url: 'javascript:alert(1)',
        message: 'Pushed.'
      })
    });
    const result = await api.publish({ branch: 'b', title: 't', body: '' });
    expect(result.pull_request_url).toBeNull();
    expect(result.message).toBe('Pushed.');
  });

  it('passes the server refusal on', async () => {
    const api = new GitSyncAPI({
      request: jest.fn(async () => {
        throw new Error('A version named "v1" exists already.');
      })
    });
    await expect(api.saveVersion({ name: 'v1', message: '' })).rejects.toThrow(
      'exists already'
    );
  });
});
