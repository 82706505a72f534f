/**
 * What the frontend knows about a remote from its URL.
 */
export interface IRemoteInfo {
  /**
   * The host name (with a port when there is one), e.g. `github.com`.
   */
  host: string;
  /**
   * The repository path without `.git`, e.g. `ada/thesis`.
   */
  path: string;
  /**
   * Whether the repository is on GitHub, so branch and commit pages exist.
   */
  isGitHub: boolean;
  /**
   * The repository's web page on GitHub, `null` elsewhere.
   */
  webUrl: string | null;
}

/**
 * The GitHub host.
 */
const GITHUB_HOST = 'github.com';

/**
 * Read a remote URL: `https://host/owner/repo.git`, `ssh://git@host/...` or
 * scp-like `git@host:owner/repo.git`.
 *
 * @param url The remote URL (without credentials, as the server sends it).
 * @param gitHubRepository `owner/name` when the server says the remote is on
 *   its configured GitHub (which may be GitHub Enterprise on another host).
 */
export function parseRemote(
  url: string | null | undefined,
  gitHubRepository: string | null = null
): IRemoteInfo | null {
  if (!url) {
    return null;
  }
  let host: string;
  let path: string;
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/)(.+)$/.exec(url);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    host = scp[1];
    path = scp[2];
  } else {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return null;
    }
    if (!parsed.host) {
      return null;
    }
    host = parsed.host;
    path = decodeURIComponent(parsed.pathname);
  }
  path = path.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '');
  const lowerHost = host.toLowerCase();
  const isGitHub =
    /^[^/]+\/[^/]+$/.test(path) &&
    (lowerHost === GITHUB_HOST ||
      lowerHost === `www.${GITHUB_HOST}` ||
      (gitHubRepository !== null &&
        gitHubRepository.toLowerCase() === path.toLowerCase()));
  return {
    host: lowerHost === `www.${GITHUB_HOST}` ? GITHUB_HOST : host,
    path,
    isGitHub,
    webUrl: isGitHub
      ? `https://${lowerHost === `www.${GITHUB_HOST}` ? GITHUB_HOST : host}/${path}`
      : null
  };
}

/**
 * A friendly name for where the remote is: "GitHub" or its host.
 */
export function remoteName(remote: IRemoteInfo | null): string | null {
  if (!remote) {
    return null;
  }
  return remote.host === GITHUB_HOST ? 'GitHub' : remote.host;
}

/**
 * The web page of a branch, e.g. `https://github.com/o/r/tree/gitsync/ada`.
 */
export function branchUrl(
  remote: IRemoteInfo | null,
  branch: string | null
): string | null {
  if (!remote?.webUrl || !branch) {
    return null;
  }
  const encoded = branch.split('/').map(encodeURIComponent).join('/');
  return `${remote.webUrl}/tree/${encoded}`;
}

/**
 * The web page of a commit.
 */
export function commitUrl(
  remote: IRemoteInfo | null,
  sha: string | null
): string | null {
  if (!remote?.webUrl || !sha || !/^[0-9a-f]{4,64}$/i.test(sha)) {
    return null;
  }
  return `${remote.webUrl}/commit/${sha}`;
}
