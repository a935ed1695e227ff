// Figures for category paths: exact-path accuracy, accuracy and macro-F1 at each level, and the hierarchical
// precision, recall and F1 of Kiritchenko et al. (each path with its ancestors, micro-averaged over rows), with the
// curve of hierarchical precision against recall as --min-path-score moves.
import { Taxonomy, pathPrefix, pathLevels, withAncestors } from '../head/taxonomy.js';
import { numpySum } from './metrics.js';
import { compareCodePoints } from '../head/labels.js';

export interface HierarchicalScores {
  precision: number;
  recall: number;
  f1: number;
}

export interface LevelMetrics {
  /** 1 = top level. */
  level: number;
  /** Rows whose true path has at least this many levels (the others do not count at this level). */
  rows: number;
  accuracy: number;
  macroF1: number;
}

export interface CurvePoint extends HierarchicalScores {
  minPathScore: number;
  /** Share of rows answered at some level. */
  answered: number;
  /** Share of rows answered to full depth (a class, reached without stopping for lack of confidence). */
  complete: number;
}

export interface PathMetrics {
  /** The threshold the headline figures are at (the bundle's, or --min-path-score). */
  minPathScore: number;
  rows: number;
  /** Rows whose most probable full path is their true path. */
  exactPath: number;
  levels: LevelMetrics[];
  /** At minPathScore, with the shares answered. */
  at: CurvePoint;
  /** The same figures as the threshold moves (CURVE_THRESHOLDS, plus minPathScore). */
  curve: CurvePoint[];
}

/**
 * Hierarchical precision, recall and F1: per row, the predicted node and the true path each with all their
 * ancestors; |P ∩ T| summed over rows, divided by Σ|P| (precision) or Σ|T| (recall). A row with no answer (null)
 * adds nothing to P: it costs recall, not precision. Zero over zero is 0, as scikit-learn's zero_division=0.
 */
export function hierarchicalScores(truePaths: readonly string[], predicted: readonly (string | null)[]): HierarchicalScores {
  let both = 0;
  let pred = 0;
  let truth = 0;
  truePaths.forEach((t, i) => {
    const [b, p, tr] = overlap(t, predicted[i]);
    both += b;
    pred += p;
    truth += tr;
  });
  return scoresOf(both, pred, truth);
}

/**
 * Accuracy and macro-F1 at each level, over the rows whose true path reaches it. `predicted` is each row's
 * predicted path (null: none); a prediction shallower than the level is wrong there and a false negative of the
 * true node, but predicts no node. Macro-F1 is scikit-learn's f1_score(average='macro', zero_division=0) over the
 * nodes that occur as true or predicted at that level.
 */
export function levelMetrics(truePaths: readonly string[], predicted: readonly (string | null)[]): LevelMetrics[] {
  const depth = truePaths.reduce((m, p) => Math.max(m, pathLevels(p).length), 0);
  const out: LevelMetrics[] = [];
  for (let level = 1; level <= depth; level++) {
    const counts = new Map<string, { tp: number; fp: number; fn: number }>();
    const of = (label: string) => counts.get(label) ?? (counts.set(label, { tp: 0, fp: 0, fn: 0 }), counts.get(label)!);
    let rows = 0;
    let correct = 0;
    truePaths.forEach((t, i) => {
      if (pathLevels(t).length < level) return;
      rows++;
      const truth = pathPrefix(t, level);
      const p = predicted[i];
      const pred = p !== null && pathLevels(p).length >= level ? pathPrefix(p, level) : null;
      if (pred === truth) {
        correct++;
        of(truth).tp++;
        return;
      }
      of(truth).fn++;
      if (pred !== null) of(pred).fp++;
    });
    const f1s = [...counts.keys()].sort(compareCodePoints).map((label) => {
      const { tp, fp, fn } = counts.get(label)!;
      return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
    });
    out.push({ level, rows, accuracy: rows ? correct / rows : 0, macroF1: f1s.length ? numpySum(f1s) / f1s.length : 0 });
  }
  return out;
}

/** Thresholds the curve is drawn at: fine near the ends, where precision changes fastest. */
export const CURVE_THRESHOLDS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999];

/** |P ∩ T|, |P| and |T| of one row: its predicted node (null: none) and true path, each with its ancestors. */
function overlap(truePath: string, predicted: string | null): [both: number, pred: number, truth: number] {
  const t = withAncestors(truePath);
  if (predicted === null) return [0, 0, t.length];
  const ps = withAncestors(predicted);
  const ts = new Set(t);
  return [ps.filter((n) => ts.has(n)).length, ps.length, t.length];
}

function scoresOf(both: number, pred: number, truth: number): HierarchicalScores {
  const precision = pred > 0 ? both / pred : 0;
  const recall = truth > 0 ? both / truth : 0;
  return { precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}

/**
 * Every path figure for a labelled run, gathered row by row (eval streams; a row's probabilities are not kept).
 * `add` takes the row's class probabilities (bundle class order), or null for an error row, which has no answer
 * at any threshold. Levels are judged on the answer at threshold 0: the path the answers descend along.
 */
export class PathMetricsAccumulator {
  private readonly thresholds: number[];
  /** Per threshold: Σ|P ∩ T|, Σ|P|, Σ|T|, rows answered, rows answered to full depth. */
  private readonly sums: Float64Array[];
  private readonly truePaths: string[] = [];
  private readonly deepest: (string | null)[] = [];
  private exact = 0;

  constructor(
    private readonly tree: Taxonomy,
    private readonly minPathScore: number,
  ) {
    this.thresholds = [...new Set([...CURVE_THRESHOLDS, minPathScore])].sort((a, b) => a - b);
    this.sums = this.thresholds.map(() => new Float64Array(5));
  }

  add(truePath: string, probs: ArrayLike<number> | null): void {
    this.truePaths.push(truePath);
    const scores = probs ? this.tree.nodeScores(probs) : null;
    this.thresholds.forEach((t, j) => {
      const a = probs ? this.tree.answerFrom(probs, scores!, t) : null;
      const [both, pred, truth] = overlap(truePath, a?.node ?? null);
      const s = this.sums[j];
      s[0] += both;
      s[1] += pred;
      s[2] += truth;
      if (a?.node) s[3]++;
      if (a?.complete) s[4]++;
    });
    const deepest = probs ? this.tree.answerFrom(probs, scores!, 0) : null;
    this.deepest.push(deepest?.node ?? null);
    if (deepest && deepest.full.path === truePath) this.exact++;
  }

  result(): PathMetrics {
    const n = this.truePaths.length;
    const curve = this.thresholds.map((t, j): CurvePoint => {
      const s = this.sums[j];
      return { minPathScore: t, ...scoresOf(s[0], s[1], s[2]), answered: n ? s[3] / n : 0, complete: n ? s[4] / n : 0 };
    });
    return {
      minPathScore: this.minPathScore,
      rows: n,
      exactPath: n ? this.exact / n : 0,
      levels: levelMetrics(this.truePaths, this.deepest),
      at: curve[this.thresholds.indexOf(this.minPathScore)],
      curve,
    };
  }
}
