// Seeded stratified splits: a validation holdout and K folds, each class spread in proportion.
import { mulberry32, shuffleInPlace } from './random.js';

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
 * Holds out about `fraction` of each class (rounded, at least one row when the class has ≥ 2 rows, never
 * the class's last row), so every class stays in training. Returns sorted row indices.
 */
export function stratifiedHoldout(y: ArrayLike<number>, fraction: number, seed: number): { train: number[]; test: number[] } {
  const rand = mulberry32(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const rows of byClass(y).values()) {
    shuffleInPlace(rows, rand);
    const want = rows.length < 2 ? 0 : Math.min(rows.length - 1, Math.max(1, Math.round(fraction * rows.length)));
    test.push(...rows.slice(0, want));
    train.push(...rows.slice(want));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/**
 * K folds: each class's rows are shuffled and dealt round-robin, continuing where the previous class stopped
 * so fold sizes stay even. A class with fewer than K rows is absent from some test folds (as in sklearn's
 * StratifiedKFold, which warns about it).
 */
export function stratifiedKFold(y: ArrayLike<number>, k: number, seed: number): { train: number[]; test: number[] }[] {
  const rand = mulberry32(seed);
  const fold = new Int32Array(y.length);
  let next = 0;
  for (const rows of byClass(y).values()) {
    shuffleInPlace(rows, rand);
    for (const r of rows) fold[r] = next++ % k;
  }
  return Array.from({ length: k }, (_, f) => {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < y.length; i++) (fold[i] === f ? test : train).push(i);
    return { train, test };
  });
}
