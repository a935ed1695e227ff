// Class names the row's own text says: a title that reads "Turquoise Blue Flats" names the colour `Turquoise Blue`.
// A linear head learns each value's words from that value's rows alone, so a value seen twice is outweighed by
// `Blue`, seen hundreds of times. The name-match step pools that evidence over every class: one weight, beta, fitted
// on the held-out predictions calibration already uses, raises the fused log-probability of each class the text
// names. Only names that mostly mean their value in the training rows count (a catalog may title kids' shirts "Boys"
// and label them `Men`). Flat classes only: not a path bundle's paths (its attributes, which are flat, do use it).

/** beta is fitted in [0, NAME_MATCH_MAX_BETA]: a named class's odds are raised at most e^5 ≈ 148-fold. */
export const NAME_MATCH_MAX_BETA = 5;

/** A class's name counts when at least this share of the training rows that name it have that class. */
export const NAME_MATCH_MIN_SHARE = 0.5;

/** What a bundle stores (calibration.nameMatch): the weight, and the classes whose names count. */
export interface NameMatch {
  beta: number;
  classes: string[];
}

/** Lower case, NFKC, apostrophes dropped, split at anything that is not a letter or digit. */
export function nameTokens(text: string): string[] {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/['\u2019]/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((t) => t.length > 0);
}

/** Tokens joined without spaces, one plural `s` dropped: "T-Shirts", "T Shirt" and "Tshirts" all read `tshirt`. */
function joinedForm(tokens: readonly string[]): string {
  const j = tokens.join('');
  return j.length > 3 && j.endsWith('s') && !j.endsWith('ss') ? j.slice(0, -1) : j;
}

/** Finds the classes a text names: leftmost-longest, so "Navy Blue" names `Navy Blue` and not `Blue` as well. */
export class ClassNames {
  private readonly forms = new Map<string, number[]>();
  private readonly longest: number;

  /** `classes`: the target's classes; `counted`: the ones whose names count (default all). */
  constructor(
    readonly classes: readonly string[],
    counted: readonly string[] = classes,
  ) {
    const keep = new Set(counted);
    let longest = 1;
    classes.forEach((c, k) => {
      if (!keep.has(c)) return;
      const t = nameTokens(c);
      if (t.length === 0) return;
      const form = joinedForm(t);
      const at = this.forms.get(form);
      if (at) at.push(k);
      else this.forms.set(form, [k]);
      // A run of text tokens may spell a name's tokens run together or split further ("t shirts" for `Tshirts`).
      longest = Math.max(longest, t.length + 1);
    });
    this.longest = longest;
  }

  /** Indices of the classes the text names, ascending. */
  mentioned(text: string): number[] {
    const found = new Set<number>();
    if (this.forms.size === 0) return [];
    const t = nameTokens(text);
    for (let i = 0; i < t.length; ) {
      let step = 1;
      for (let L = Math.min(this.longest, t.length - i); L >= 1; L--) {
        const ks = this.forms.get(joinedForm(t.slice(i, i + L)));
        if (ks) {
          for (const k of ks) found.add(k);
          step = L;
          break;
        }
      }
      i += step;
    }
    return [...found].sort((a, b) => a - b);
  }

  /** beta on each class the text names, 0 elsewhere; null when it names none. */
  bias(text: string, beta: number): Float64Array | null {
    const m = this.mentioned(text);
    if (m.length === 0 || beta === 0) return null;
    const b = new Float64Array(this.classes.length);
    for (const k of m) b[k] = beta;
    return b;
  }
}

/** A name match as run applies it: the row's bias over `classes` (null: none, or the text names no class). */
export function nameMatchBias(match: NameMatch | undefined, classes: readonly string[], text: string): Float64Array | null {
  if (!match || match.beta === 0) return null;
  let names = namers.get(match);
  if (names?.classes !== classes) namers.set(match, (names = new ClassNames(classes, match.classes)));
  return names.bias(text, match.beta);
}
/** The matcher of each name match, over the classes it was last asked for (one bundle's, or one split's). */
const namers = new WeakMap<NameMatch, ClassNames>();

/**
 * The classes whose names count: named by at least one training row, and the class of at least
 * NAME_MATCH_MIN_SHARE of the rows that name it.
 */
export function countedNames(classes: readonly string[], texts: readonly string[], y: ArrayLike<number>): string[] {
  const all = new ClassNames(classes);
  const named = new Float64Array(classes.length);
  const right = new Float64Array(classes.length);
  texts.forEach((t, i) => {
    for (const k of all.mentioned(t)) {
      named[k]++;
      if (k === y[i]) right[k]++;
    }
  });
  return classes.filter((_, k) => named[k]! > 0 && right[k]! >= NAME_MATCH_MIN_SHARE * named[k]!);
}

export interface NameMatchFit {
  beta: number;
  /** Summed held-out log-loss without the step (beta 0) and with it. */
  lossWithout: number;
  lossWith: number;
}

/**
 * The beta in [0, NAME_MATCH_MAX_BETA] minimising the summed log-loss of softmax(log p + beta·m) over held-out rows
 * (`probs` n × K, `mentioned` the classes each row's text names): convex in beta, solved by projected Newton steps
 * with step halving.
 */
export function fitNameMatch(probs: Float64Array, mentioned: readonly (readonly number[])[], y: ArrayLike<number>, K: number): NameMatchFit {
  const n = mentioned.length;
  const logp = new Float64Array(probs.length);
  for (let i = 0; i < probs.length; i++) logp[i] = Math.log(Math.max(probs[i]!, 1e-300));
  const z = new Float64Array(K);
  // Summed loss, gradient and second derivative at beta.
  const evaluate = (beta: number) => {
    let loss = 0;
    let grad = 0;
    let hess = 0;
    for (let i = 0; i < n; i++) {
      const m = mentioned[i]!;
      if (m.length === 0) {
        loss -= logp[i * K + y[i]!]!;
        continue;
      }
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, (z[k] = logp[i * K + k]!));
      for (const k of m) max = Math.max(max, (z[k] = z[k]! + beta));
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(z[k]! - max);
      const lse = max + Math.log(sum);
      // Probability mass on the named classes, and whether the row's own class is one of them.
      let named = 0;
      for (const k of m) named += Math.exp(z[k]! - lse);
      loss += lse - z[y[i]!]!;
      grad += named - (m.includes(y[i]!) ? 1 : 0);
      hess += named * (1 - named);
    }
    return { loss, grad, hess };
  };
  const without = evaluate(0);
  let beta = 0;
  let at = without;
  for (let iter = 0; iter < 100; iter++) {
    if (at.hess <= 0) break;
    let next = Math.min(NAME_MATCH_MAX_BETA, Math.max(0, beta - at.grad / at.hess));
    let trial = evaluate(next);
    while (trial.loss > at.loss && Math.abs(next - beta) > 1e-12) {
      next = (beta + next) / 2;
      trial = evaluate(next);
    }
    const moved = Math.abs(next - beta);
    if (trial.loss <= at.loss) [beta, at] = [next, trial];
    if (moved < 1e-9) break;
  }
  return { beta, lossWithout: without.loss, lossWith: at.loss };
}

/** softmax(log p + beta on the named classes): one held-out row as the step scores it (`out` may be `p`). */
export function applyNameMatch<T extends Float64Array | Float32Array>(p: ArrayLike<number>, mentioned: readonly number[], beta: number, out: T): T {
  const K = p.length;
  let max = -Infinity;
  for (let k = 0; k < K; k++) max = Math.max(max, (out[k] = Math.log(Math.max(p[k]!, 1e-300))));
  for (const k of mentioned) max = Math.max(max, (out[k] = out[k]! + beta));
  let sum = 0;
  for (let k = 0; k < K; k++) sum += out[k] = Math.exp(out[k]! - max);
  for (let k = 0; k < K; k++) out[k] = out[k]! / sum;
  return out;
}
