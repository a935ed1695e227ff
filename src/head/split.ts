// Seeded stratified splits: a validation holdout and K folds, each class spread in proportion. Rows that share a
// group (the same normalised text: duplicate listings) always fall on the same side, so held-out figures are not
// flattered by a copy of the row sitting in the fitted rows.
import { mulberry32, shuffleInPlace } from './random.js';

export interface Split {
  train: number[];
  test: number[];
}

/**
 * Group codes for texts: rows whose text is the same after Unicode normalisation (NFKC), lower-casing and
 * collapsing every run of non-letters/non-digits to one space share a code. An empty text is a group of its own.
 * Null when every row is its own group (no duplicates), so callers keep the ungrouped splits.
 */
export function duplicateGroups(texts: readonly string[]): Int32Array | null {
  const codes = new Int32Array(texts.length);
  const seen = new Map<string, number>();
  let next = 0;
  texts.forEach((text, i) => {
    const key = text.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
    if (key === '') {
      codes[i] = next++;
      return;
    }
    let code = seen.get(key);
    if (code === undefined) seen.set(key, (code = next++));
    codes[i] = code;
  });
  return next === texts.length ? null : codes;
}

/** "N rows that share their text with another (M texts)", for logs. */
export function duplicateSummary(groups: ArrayLike<number>): string {
  const size = new Map<number, number>();
  for (let i = 0; i < groups.length; i++) size.set(groups[i]!, (size.get(groups[i]!) ?? 0) + 1);
  const shared = [...size.values()].filter((n) => n > 1);
  return `${shared.reduce((s, n) => s + n, 0)} rows that share their text with another (${shared.length} texts)`;
}

/** Row indices per class, classes in code order. */
function byClass(y: ArrayLike<number>): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < y.length; i++) {
    const g = groups.get(y[i]);
    if (g) g.push(i);
    else groups.set(y[i], [i]);
  }
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}

/**
 * Groups of rows per class: a group is filed under its first row's class (a duplicate listed under two classes
 * moves with its group). Groups keep row order inside; classes in code order, groups in first-row order.
 */
function groupsByClass(y: ArrayLike<number>, groups: ArrayLike<number>): Map<number, number[][]> {
  const members = new Map<number, number[]>();
  for (let i = 0; i < y.length; i++) {
    const g = members.get(groups[i]);
    if (g) g.push(i);
    else members.set(groups[i], [i]);
  }
  const out = new Map<number, number[][]>();
  for (const rows of members.values()) {
    const cls = y[rows[0]!]!;
    const list = out.get(cls);
    if (list) list.push(rows);
    else out.set(cls, [rows]);
  }
  return new Map([...out.entries()].sort((a, b) => a[0] - b[0]));
}

const ascending = (a: number, b: number) => a - b;

/**
 * Holds out about `fraction` of each class (rounded, at least one row when the class has ≥ 2 rows, never
 * the class's last row), so every class stays in training. Returns sorted row indices. With `groups`, whole groups
 * are held out: a class's shuffled groups are taken while its held-out rows are short of the share, and never its
 * last group (a class whose rows are all one group stays in training).
 */
export function stratifiedHoldout(y: ArrayLike<number>, fraction: number, seed: number, groups?: ArrayLike<number> | null): Split {
  const rand = mulberry32(seed);
  const train: number[] = [];
  const test: number[] = [];
  const want = (n: number) => (n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(fraction * n))));
  if (!groups) {
    for (const rows of byClass(y).values()) {
      shuffleInPlace(rows, rand);
      const k = want(rows.length);
      test.push(...rows.slice(0, k));
      train.push(...rows.slice(k));
    }
  } else {
    for (const list of groupsByClass(y, groups).values()) {
      shuffleInPlace(list, rand);
      const wanted = want(list.reduce((s, g) => s + g.length, 0));
      let taken = 0;
      list.forEach((g, k) => {
        const hold = taken < wanted && k < list.length - 1;
        if (hold) taken += g.length;
        (hold ? test : train).push(...g);
      });
    }
  }
  return { train: train.sort(ascending), test: test.sort(ascending) };
}

/**
 * K folds: each class's rows are shuffled and dealt round-robin, continuing where the previous class stopped
 * so fold sizes stay even. A class with fewer than K rows is absent from some test folds (as in sklearn's
 * StratifiedKFold, which warns about it). With `groups`, whole groups are dealt (as sklearn's
 * StratifiedGroupKFold): each class's shuffled groups, largest first, each to the fold holding the fewest of the
 * class's rows so far (ties: the fewest rows in all, then the next in turn).
 */
export function stratifiedKFold(y: ArrayLike<number>, k: number, seed: number, groups?: ArrayLike<number> | null): Split[] {
  const rand = mulberry32(seed);
  const fold = new Int32Array(y.length);
  let next = 0;
  if (!groups) {
    for (const rows of byClass(y).values()) {
      shuffleInPlace(rows, rand);
      for (const r of rows) fold[r] = next++ % k;
    }
  } else {
    const total = new Float64Array(k);
    for (const list of groupsByClass(y, groups).values()) {
      shuffleInPlace(list, rand);
      // A stable sort keeps the shuffled order among groups of one size.
      list.sort((a, b) => b.length - a.length);
      const ofClass = new Float64Array(k);
      for (const g of list) {
        let best = -1;
        for (let step = 0; step < k; step++) {
          const f = (next + step) % k;
          if (best < 0 || ofClass[f]! < ofClass[best]! || (ofClass[f] === ofClass[best] && total[f]! < total[best]!)) best = f;
        }
        for (const r of g) fold[r] = best;
        ofClass[best] += g.length;
        total[best] += g.length;
        next = best + 1;
      }
    }
  }
  return Array.from({ length: k }, (_, f) => {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < y.length; i++) (fold[i] === f ? test : train).push(i);
    return { train, test };
  });
}
