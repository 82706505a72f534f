/**
 * Pure helpers of the History panel and its dialogs: grouping snapshots by
 * day, a branch name from a sentence, and git's rules for reference names.
 * No requests, no widgets, no words (labels.ts says things).
 */

/**
 * Something with an ISO 8601 time, e.g. a history entry.
 */
export interface ITimed {
  time: string;
}

/**
 * Which day a group of snapshots is from, relative to today.
 */
export type DayKind = 'today' | 'yesterday' | 'earlier';

/**
 * Snapshots of one local calendar day, newest first.
 */
export interface IDayGroup<T extends ITimed> {
  /**
   * `YYYY-MM-DD` in local time (`unknown` for an unreadable time).
   */
  key: string;
  kind: DayKind;
  /**
   * Noon of that day, for formatting it; `null` for an unreadable time.
   */
  date: Date | null;
  entries: T[];
}

/**
 * The local calendar day of a time, as `YYYY-MM-DD`.
 */
export function dayKey(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * Group entries (already newest first) by local calendar day, keeping their
 * order; consecutive entries of one day share a group. Entries whose time
 * cannot be read go into an `unknown` group of their own.
 */
export function groupByDay<T extends ITimed>(
  entries: readonly T[],
  now: number = Date.now()
): IDayGroup<T>[] {
  const today = new Date(now);
  const yesterday = new Date(
    today.getFullYear(),
    today.getMonth(),
    today.getDate() - 1,
    12
  );
  const todayKey = dayKey(today);
  const yesterdayKey = dayKey(yesterday);
  const groups: IDayGroup<T>[] = [];
  for (const entry of entries) {
    const time = new Date(entry.time);
    const valid = !Number.isNaN(time.getTime());
    const key = valid ? dayKey(time) : 'unknown';
    const last = groups[groups.length - 1];
    if (last && last.key === key) {
      last.entries.push(entry);
      continue;
    }
    groups.push({
      key,
      kind:
        key === todayKey
          ? 'today'
          : key === yesterdayKey
            ? 'yesterday'
            : 'earlier',
      date: valid
        ? new Date(time.getFullYear(), time.getMonth(), time.getDate(), 12)
        : null,
      entries: [entry]
    });
  }
  return groups;
}

/**
 * The longest branch name `branchSlug` makes.
 */
export const SLUG_MAX_LENGTH = 60;

/**
 * A branch name from a sentence's first line: lower case, accents dropped,
 * every run of other characters one dash ("Fix plot axes" →
 * "fix-plot-axes"); cut at a word boundary to `maxLength`. Empty when the
 * line has no letters or digits.
 */
export function branchSlug(
  text: string,
  maxLength: number = SLUG_MAX_LENGTH
): string {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  const slug = firstLine
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (slug.length <= maxLength) {
    return slug;
  }
  const cut = slug.slice(0, maxLength + 1);
  const lastDash = cut.lastIndexOf('-');
  return (
    lastDash > 0 ? cut.slice(0, lastDash) : slug.slice(0, maxLength)
  ).replace(/-+$/, '');
}

/**
 * Why git would refuse a name as (part of) a reference, after
 * `git check-ref-format`'s rules; `null` when it is fine.
 */
export type RefNameProblem =
  | { kind: 'empty' }
  | { kind: 'whitespace' }
  | { kind: 'control' }
  | { kind: 'character'; character: string }
  | { kind: 'double-dot' }
  | { kind: 'at-brace' }
  | { kind: 'only-at' }
  | { kind: 'slash' }
  | { kind: 'dot-start' }
  | { kind: 'dot-end' }
  | { kind: 'lock-end' }
  | { kind: 'has-slash' }
  | { kind: 'reserved'; prefix: string }
  | { kind: 'too-long'; maxLength: number };

/**
 * The longest version name the server takes.
 */
export const VERSION_NAME_MAX_LENGTH = 100;

/**
 * Check a version or branch name against git's rules for reference names
 * (`git check-ref-format`), so that a dialog can say what is wrong as the
 * user types; the server checks again.
 */
export function refNameProblem(name: string): RefNameProblem | null {
  if (name.length === 0) {
    return { kind: 'empty' };
  }
  if (/\s/.test(name)) {
    return { kind: 'whitespace' };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) {
    return { kind: 'control' };
  }
  const bad = /[~^:?*[\\]/.exec(name);
  if (bad) {
    return { kind: 'character', character: bad[0] };
  }
  if (name.includes('..')) {
    return { kind: 'double-dot' };
  }
  if (name.includes('@{')) {
    return { kind: 'at-brace' };
  }
  if (name === '@') {
    return { kind: 'only-at' };
  }
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) {
    return { kind: 'slash' };
  }
  const parts = name.split('/');
  if (parts.some(part => part.startsWith('.'))) {
    return { kind: 'dot-start' };
  }
  if (parts.some(part => part.endsWith('.lock'))) {
    return { kind: 'lock-end' };
  }
  if (name.endsWith('.')) {
    return { kind: 'dot-end' };
  }
  return null;
}

/**
 * Check a version name: one segment of a reference name (no "/"), at most
 * `VERSION_NAME_MAX_LENGTH` characters, as the server takes it.
 */
export function versionNameProblem(name: string): RefNameProblem | null {
  const problem = refNameProblem(name);
  if (problem) {
    return problem;
  }
  if (name.includes('/')) {
    return { kind: 'has-slash' };
  }
  if (name.length > VERSION_NAME_MAX_LENGTH) {
    return { kind: 'too-long', maxLength: VERSION_NAME_MAX_LENGTH };
  }
  return null;
}

/**
 * Branches under this prefix are the sync's own (sync and rescue branches):
 * never a place to publish to.
 */
export const SYNC_BRANCH_PREFIX = 'gitsync/';

/**
 * Check the branch a pull request is published from: a reference name that
 * is not one of the sync's own branches.
 */
export function publishBranchProblem(name: string): RefNameProblem | null {
  const problem = refNameProblem(name);
  if (problem) {
    return problem;
  }
  if (name.startsWith(SYNC_BRANCH_PREFIX)) {
    return { kind: 'reserved', prefix: SYNC_BRANCH_PREFIX };
  }
  return null;
}

/**
 * The older and the newer of two entries of a newest-first list, by their
 * places in it: a comparison always reads from old to new.
 */
export function orderPair<T extends { sha: string }>(
  entries: readonly T[],
  first: T,
  second: T
): [T, T] {
  const a = entries.findIndex(e => e.sha === first.sha);
  const b = entries.findIndex(e => e.sha === second.sha);
  return a > b ? [first, second] : [second, first];
}

/**
 * `{ [key]: name }` when an entry's file name (`name`, its name in that
 * snapshot) is another than the file's name now (it was renamed since), for
 * the compare and restore commands to read that snapshot under it; else
 * `{}`.
 */
export function renamedArg(
  key: string,
  name: string | null | undefined,
  current: string | null
): { [key: string]: string } {
  return name && current && name !== current ? { [key]: name } : {};
}
