// Parsers for option values: each failure names the option and what it accepts (exit 2).
import { InvalidArgumentError } from 'commander';
import type { LevelShare } from '../head/taxonomy.js';

export type { LevelShare };

export function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number${max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : ` ≥ ${min}`}.`);
    }
    return n;
  };
}

export function floatOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}.`);
    }
    return n;
  };
}

export function listOption(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** --min-path-score as run, eval, check and serve take it: path bundles only, overriding the bundle's threshold. */
export const MIN_PATH_SCORE_HELP =
  "path bundles: answer the deepest node whose probability (summed over the classes below it) reaches p, instead of the bundle's threshold (0.5 unless train set another); lower answers deeper, higher answers surer";

/**
 * "level:share" pairs, comma-separated and/or repeated (1:0.97,3:0.05); a level given twice keeps its last share.
 * Sorted by level, so reports list them top first.
 */
export function levelShares(value: string, previous: LevelShare[] = []): LevelShare[] {
  const byLevel = new Map(previous.map((l) => [l.level, l.share]));
  for (const part of value.split(',').map((p) => p.trim())) {
    const m = /^(\d+)\s*:\s*(\S+)$/.exec(part);
    const level = m ? Number(m[1]) : NaN;
    const share = m ? Number(m[2]) : NaN;
    if (!m || !(level >= 1) || !Number.isSafeInteger(level) || !Number.isFinite(share) || share < 0 || share > 1) {
      throw new InvalidArgumentError(`expected level:share pairs such as 1:0.97,3:0.05 (a level a whole number ≥ 1, 1 the top; a share from 0 to 1), got '${part}'.`);
    }
    byLevel.set(level, share);
  }
  return [...byLevel].map(([level, share]) => ({ level, share })).sort((a, b) => a.level - b.level);
}

/** A target precision: strictly between 0 and 1 (a target of 1 no finite held-out set can vouch for). */
function targetPrecision(part: string): number {
  const n = Number(part);
  if (part === '' || !Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError(`expected target precisions between 0 and 1 such as 0.95,0.98, got '${part}'.`);
  return n;
}

/** --target-precision of train: comma-separated and/or repeated; kept in the order given, each once. */
export function targetPrecisions(value: string, previous: number[] = []): number[] {
  const out = [...previous];
  for (const part of value.split(',').map((p) => p.trim())) {
    const n = targetPrecision(part);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** --target-precision of run, eval, check and serve: one target. */
export function oneTargetPrecision(value: string): number {
  return targetPrecision(value.trim());
}

export const TARGET_PRECISION_HELP =
  "decide accept/review at this target precision: rows whose calibrated score reaches the threshold the bundle's held-out rows vouch for (95% lower bound) are accepted; default: the first target train stored";
