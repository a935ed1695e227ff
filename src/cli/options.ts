// Parsers for option values: each failure names the option and what it accepts (exit 2).
import { InvalidArgumentError } from 'commander';

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

/** `level:x` pairs, comma-separated or repeated (--min-level-accuracy 1:0.97,2:0.9): a minimum share per path level (1 = top). */
export function levelMinimums(value: string, previous: { level: number; min: number }[] = []): { level: number; min: number }[] {
  const parsed = listOption(value).map((pair) => {
    const m = /^(\d+)\s*:\s*([0-9.]+)$/.exec(pair);
    const level = m ? Number(m[1]) : NaN;
    const min = m ? Number(m[2]) : NaN;
    if (!m || level < 1 || !(min >= 0 && min <= 1)) throw new InvalidArgumentError(`expected level:share pairs such as 1:0.97,2:0.9 (level ≥ 1, share from 0 to 1), got '${pair}'.`);
    return { level, min };
  });
  const merged = new Map(previous.map((p) => [p.level, p.min]));
  for (const p of parsed) merged.set(p.level, p.min);
  return [...merged].map(([level, min]) => ({ level, min })).sort((a, b) => a.level - b.level);
}
