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
 * "key:value" pairs, comma-separated and/or repeated; a key given twice keeps its last value; sorted by key. `key` and
 * `value` return null for what they refuse, and `expected` says what is accepted.
 */
function keyedValues(value: string, previous: [number, number][], key: (raw: string) => number | null, val: (raw: string) => number | null, expected: string): [number, number][] {
  const byKey = new Map(previous);
  for (const part of value.split(',').map((p) => p.trim())) {
    const m = /^([^:\s]+)\s*:\s*(\S+)$/.exec(part);
    const k = m ? key(m[1]!) : null;
    const v = m ? val(m[2]!) : null;
    if (k === null || v === null) throw new InvalidArgumentError(`expected ${expected}, got '${part}'.`);
    byKey.set(k, v);
  }
  return [...byKey].sort((a, b) => a[0] - b[0]);
}

/** A number in [0, 1], or null. */
const share = (raw: string): number | null => {
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 && n <= 1 ? n : null;
};

/**
 * "level:share" pairs, comma-separated and/or repeated (1:0.97,3:0.05); a level given twice keeps its last share.
 * Sorted by level, so reports list them top first.
 */
export function levelShares(value: string, previous: LevelShare[] = []): LevelShare[] {
  const level = (raw: string) => (/^\d+$/.test(raw) && Number(raw) >= 1 && Number.isSafeInteger(Number(raw)) ? Number(raw) : null);
  return keyedValues(value, previous.map((l) => [l.level, l.share]), level, share, 'level:share pairs such as 1:0.97,3:0.05 (a level a whole number ≥ 1, 1 the top; a share from 0 to 1)').map(([level, s]) => ({ level, share: s }));
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

/**
 * eval --min-precision-at: "target:precision" pairs, comma-separated and/or repeated (0.98:0.975,0.9:0.88); a target
 * given twice keeps its last precision. Sorted by target, as eval lists its targets.
 */
export function targetPrecisionMinimums(value: string, previous: { target: number; precision: number }[] = []): { target: number; precision: number }[] {
  const target = (raw: string) => (Number(raw) > 0 && Number(raw) < 1 ? Number(raw) : null);
  return keyedValues(value, previous.map((g) => [g.target, g.precision]), target, share, 'target:precision pairs such as 0.98:0.975,0.9:0.88 (a target precision between 0 and 1, the least precision from 0 to 1)').map(
    ([t, precision]) => ({ target: t, precision }),
  );
}

/** A share for the category (`0.9`) and/or named attributes (`colour:0.6`): eval's --min-macro-f1, check's --max-disagreement-rate. */
export interface TargetShares {
  category?: number;
  attributes: { attribute: string; share: number }[];
}

/**
 * A parser of "x" (the category's) or "attribute:x", comma-separated and/or repeated; a target given twice keeps its
 * last share. `what` names the share in the error (e.g. "a minimum macro-F1").
 */
export function targetShares(what: string): (value: string, previous?: TargetShares) => TargetShares {
  return (value, previous = { attributes: [] }) => {
    const out: TargetShares = { category: previous.category, attributes: [...previous.attributes] };
    for (const part of value.split(',').map((p) => p.trim())) {
      const m = /^(?:([^:]+?)\s*:\s*)?(\S+)$/.exec(part);
      const v = m ? share(m[2]!) : null;
      if (!m || v === null) throw new InvalidArgumentError(`expected ${what} from 0 to 1 for the category (e.g. 0.9) or attribute:share (e.g. colour:0.6), got '${part}'.`);
      if (m[1] === undefined) out.category = v;
      else out.attributes = [...out.attributes.filter((a) => a.attribute !== m[1]), { attribute: m[1], share: v }];
    }
    return out;
  };
}
