import {
  branchSlug,
  dayKey,
  groupByDay,
  orderPair,
  publishBranchProblem,
  refNameProblem,
  SLUG_MAX_LENGTH,
  VERSION_NAME_MAX_LENGTH,
  versionNameProblem
} from '../src/history';
import { dayHeading, describeRefNameProblem } from '../src/labels';

/**
 * A local time as ISO 8601 with its offset, the way the server sends times.
 */
function local(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute = 0
): string {
  return new Date(year, month - 1, day, hour, minute).toISOString();
}

describe('groupByDay', () => {
  const now = new Date(2026, 11, 1, 9, 30).getTime();

  it('groups newest-first entries into Today, Yesterday and dates', () => {
    const entries = [
      { sha: 'a', time: local(2026, 12, 1, 9, 5) },
      { sha: 'b', time: local(2026, 12, 1, 0, 1) },
      { sha: 'c', time: local(2026, 11, 30, 23, 59) },
      { sha: 'd', time: local(2026, 11, 30, 8) },
      { sha: 'e', time: local(2026, 11, 28, 14) }
    ];
    const groups = groupByDay(entries, now);
    expect(groups.map(g => g.kind)).toEqual(['today', 'yesterday', 'earlier']);
    expect(groups.map(g => g.entries.map(e => e.sha))).toEqual([
      ['a', 'b'],
      ['c', 'd'],
      ['e']
    ]);
    expect(groups[2].key).toBe('2026-11-28');
    expect(dayHeading(groups[0])).toBe('Today');
    expect(dayHeading(groups[1])).toBe('Yesterday');
    expect(dayHeading(groups[2])).toContain('2026');
  });

  it('finds yesterday across a month and a year boundary', () => {
    const newYear = new Date(2027, 0, 1, 0, 10).getTime();
    const groups = groupByDay(
      [
        { time: local(2027, 1, 1, 0, 5) },
        { time: local(2026, 12, 31, 23, 50) },
        { time: local(2026, 12, 30, 23, 50) }
      ],
      newYear
    );
    expect(groups.map(g => g.kind)).toEqual(['today', 'yesterday', 'earlier']);
  });

  it('keeps entries with an unreadable time, in a group of their own', () => {
    const groups = groupByDay(
      [{ time: local(2026, 12, 1, 8) }, { time: 'not a time' }],
      now
    );
    expect(groups).toHaveLength(2);
    expect(groups[1]).toMatchObject({ key: 'unknown', date: null });
    expect(dayHeading(groups[1])).toBe('Unknown date');
  });

  it('is empty for no entries', () => {
    expect(groupByDay([], now)).toEqual([]);
  });

  it('names days by the local calendar', () => {
    expect(dayKey(new Date(2026, 0, 5, 23, 59))).toBe('2026-01-05');
  });
});

describe('branchSlug', () => {
  it.each([
    ['Fix plot axes', 'fix-plot-axes'],
    ['  Fix   plot axes!  ', 'fix-plot-axes'],
    ['Fix plot axes\n\nLonger explanation here', 'fix-plot-axes'],
    ['Café déjà vu', 'cafe-deja-vu'],
    ['Add v2.0 results (final)', 'add-v2-0-results-final'],
    ['../../etc/passwd', 'etc-passwd'],
    ['日本語', ''],
    ['', '']
  ])('%j → %j', (text, slug) => {
    expect(branchSlug(text)).toBe(slug);
  });

  it('cuts a long line at a word boundary', () => {
    const slug = branchSlug(
      'Rewrite the whole analysis pipeline so that every figure is made from the cleaned data set'
    );
    expect(slug.length).toBeLessThanOrEqual(SLUG_MAX_LENGTH);
    expect(slug).toBe(
      'rewrite-the-whole-analysis-pipeline-so-that-every-figure-is'
    );
    expect(slug.endsWith('-')).toBe(false);
  });

  it('cuts a long word when there is no boundary', () => {
    expect(branchSlug('a'.repeat(100))).toBe('a'.repeat(SLUG_MAX_LENGTH));
  });

  it('always makes a name git accepts', () => {
    for (const text of [
      'Fix plot axes',
      'x.lock',
      '@{now}',
      'a..b',
      '.hidden'
    ]) {
      const slug = branchSlug(text);
      expect(refNameProblem(slug)).toBeNull();
    }
  });
});

describe('refNameProblem', () => {
  it.each([
    'v1',
    'v1.0',
    'submitted-draft',
    'draft/2',
    'Ada_2026-12-01',
    'a@b'
  ])('accepts %j', name => {
    expect(refNameProblem(name)).toBeNull();
  });

  it.each([
    ['', 'empty'],
    ['my version', 'whitespace'],
    ['tab\there', 'whitespace'],
    ['bell\x07', 'control'],
    ['del\x7f', 'control'],
    ['a~1', 'character'],
    ['a^1', 'character'],
    ['a:b', 'character'],
    ['what?', 'character'],
    ['star*', 'character'],
    ['[x', 'character'],
    ['back\\slash', 'character'],
    ['a..b', 'double-dot'],
    ['a@{1}', 'at-brace'],
    ['@', 'only-at'],
    ['/a', 'slash'],
    ['a/', 'slash'],
    ['a//b', 'slash'],
    ['.hidden', 'dot-start'],
    ['a/.b', 'dot-start'],
    ['x.lock', 'lock-end'],
    ['x.lock/y', 'lock-end'],
    ['end.', 'dot-end']
  ])('refuses %j (%s)', (name, kind) => {
    const problem = refNameProblem(name);
    expect(problem?.kind).toBe(kind);
    expect(describeRefNameProblem(problem!)).toMatch(/\.$/);
  });

  it('names the character git refuses', () => {
    expect(describeRefNameProblem(refNameProblem('a:b')!)).toBe(
      'A name cannot contain ":".'
    );
  });
});

describe('versionNameProblem', () => {
  it('takes one segment of at most 100 characters', () => {
    expect(versionNameProblem('draft-1')).toBeNull();
    expect(versionNameProblem('a'.repeat(VERSION_NAME_MAX_LENGTH))).toBeNull();
    expect(versionNameProblem('draft/1')?.kind).toBe('has-slash');
    expect(versionNameProblem('a'.repeat(101))?.kind).toBe('too-long');
    expect(describeRefNameProblem(versionNameProblem('a'.repeat(101))!)).toBe(
      'A name can have at most 100 characters.'
    );
    expect(versionNameProblem('a b')?.kind).toBe('whitespace');
  });
});

describe('publishBranchProblem', () => {
  it("refuses the sync's own branches and what git refuses", () => {
    expect(publishBranchProblem('fix-plot-axes')).toBeNull();
    expect(publishBranchProblem('feature/plots')).toBeNull();
    expect(publishBranchProblem('gitsync/ada')?.kind).toBe('reserved');
    expect(describeRefNameProblem(publishBranchProblem('gitsync/x')!)).toBe(
      'Branches starting with "gitsync/" are Git Sync\'s own; choose another name.'
    );
    expect(publishBranchProblem('a..b')?.kind).toBe('double-dot');
  });
});

describe('orderPair', () => {
  const entries = [{ sha: 'new' }, { sha: 'mid' }, { sha: 'old' }];

  it('puts the older entry first whichever was picked first', () => {
    expect(orderPair(entries, entries[0], entries[2])).toEqual([
      entries[2],
      entries[0]
    ]);
    expect(orderPair(entries, entries[2], entries[1])).toEqual([
      entries[2],
      entries[1]
    ]);
  });
});
