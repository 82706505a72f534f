import { branchUrl, commitUrl, parseRemote, remoteName } from '../src/remote';

describe('parseRemote', () => {
  it('reads GitHub https URLs', () => {
    const remote = parseRemote('https://github.com/ada/thesis.git');
    expect(remote).toEqual({
      host: 'github.com',
      path: 'ada/thesis',
      isGitHub: true,
      webUrl: 'https://github.com/ada/thesis'
    });
    expect(remoteName(remote)).toBe('GitHub');
  });

  it('reads scp-like and ssh URLs', () => {
    expect(parseRemote('git@github.com:ada/thesis.git')?.webUrl).toBe(
      'https://github.com/ada/thesis'
    );
    expect(parseRemote('ssh://git@github.com/ada/thesis')?.isGitHub).toBe(true);
  });

  it('links nowhere for other hosts', () => {
    const remote = parseRemote('http://127.0.0.1:8123/project.git');
    expect(remote?.host).toBe('127.0.0.1:8123');
    expect(remote?.isGitHub).toBe(false);
    expect(remoteName(remote)).toBe('127.0.0.1:8123');
    expect(branchUrl(remote, 'main')).toBeNull();
  });

  it('trusts the server about GitHub Enterprise', () => {
    const remote = parseRemote(
      'https://git.example.edu/ada/thesis.git',
      'ada/thesis'
    );
    expect(remote?.webUrl).toBe('https://git.example.edu/ada/thesis');
  });

  it('returns null for nothing usable', () => {
    expect(parseRemote(null)).toBeNull();
    expect(parseRemote('not a url')).toBeNull();
  });
});

describe('links', () => {
  const remote = parseRemote('https://github.com/o/r.git');

  it('links a branch, keeping its slashes', () => {
    expect(branchUrl(remote, 'gitsync/ada lovelace')).toBe(
      'https://github.com/o/r/tree/gitsync/ada%20lovelace'
    );
  });

  it('links a commit', () => {
    expect(commitUrl(remote, 'abc1234')).toBe(
      'https://github.com/o/r/commit/abc1234'
    );
    expect(commitUrl(remote, 'not-a-sha')).toBeNull();
  });
});
