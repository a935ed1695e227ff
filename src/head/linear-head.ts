// Builds a LinearHead from trained parameters (dense weights feature-major; the TF-IDF block's columns shifted
// and pruned to a tolerance), and measures how far a head's probabilities move from the model it was built from.
import { linearHeadRow, type RowFeatures } from '../pipeline/features.js';
import { tfidfBlockRow } from './tfidf.js';
import { rowHasAll, type TrainedHead, type TrainedModel } from './target.js';
import { fuseHeads } from './fusion.js';
import { nameMatchBias } from './name-match.js';
import { supportLinearHead } from './support-head.js';
import { classIndexArray, linearLogits, scoreRow, softmaxInto, QUANTISED_MAX, type HeadRow, type LinearHead } from './scoring.js';

/** What training hands over for one head: standardisation and multinomial logistic regression over [dense | TF-IDF]. */
export interface LinearModelParams {
  /** K class names, the head's output order. */
  classes: string[];
  /** dd: the head's dense blocks' total width (text/image), in layout order. */
  denseWidth: number;
  /** dim of the TF-IDF block (0 when the head has none); it always comes after the dense blocks. */
  sparseWidth: number;
  /** Length dd, or dd + dim with zeros for the sparse part. */
  mean: Float64Array;
  /** Same length as mean; the sparse part (if present) is 1. */
  scale: Float64Array;
  /** K × (dd + dim), class-major, as LogisticFit.coef. */
  coef: Float64Array;
  /** K. */
  intercept: Float64Array;
}

/**
 * Default tolerance on a sparse weight's distance from its column's shift. A row's logits move by at most
 * tolerance × ‖x‖₁, and ‖x‖₁ of a title's TF-IDF row (word and character parts, each L2-normalised) is ~13–16
 * (p99 ~33): at 1e-3 that is ≤ ~0.015 nats, a ≤ 3% relative change of any probability. Measured on held-out
 * rows (bench/linear-head.ts, docs/measurements.md "Model bundles"): top-1 and accuracy unchanged, max |Δp| 1.2e-3 with 18% of
 * the weights kept (flipkart-taxonomy, 657 paths, words + characters), 5e-4 with 49% (amazon-electronics, 53
 * classes). 3e-3 halves the file again but lets max |Δp| reach 7e-3; 1e-2 reaches 4e-2 and starts to flip top-1.
 */
export const DEFAULT_PRUNE_TOLERANCE = 1e-3;

/** What pruning did to the sparse part (recorded in the bundle). */
export interface SparsePruning {
  /** Entries within this distance of their column's shift were dropped (0: only exact equals). */
  tolerance: number;
  /** Entries stored, of K × dim (a support head: of its support's entries). */
  keptEntries: number;
  totalEntries: number;
  /**
   * Bits per stored value: 16 when every kept value is a multiple of 2·tolerance within int16's range (the head
   * file stores the multiples), else 32 (float32).
   */
  valueBits: 16 | 32;
}

/** How two heads' probabilities compare over some rows. */
export interface HeadAgreement {
  rows: number;
  /** Share of rows whose most probable class is the same (first maximum, as argmax). 1 for no rows. */
  top1Agreement: number;
  /** Largest and mean |Δp| over rows × classes. */
  maxAbsDiff: number;
  meanAbsDiff: number;
}

/** Pruning facts plus, when rows were given, the pruned head's agreement with the trained model. */
export interface HeadPruning extends SparsePruning {
  agreement?: HeadAgreement;
}

/** Columns transposed per pass: K × this many float64s stay in cache while coef is read row by row. */
const COLUMN_BLOCK = 64;

function checkParams(p: LinearModelParams): { K: number; dd: number; dim: number; W: number } {
  const fail = (what: string): never => {
    throw new RangeError(`linear head: ${what}`);
  };
  const K = p.classes.length;
  const dd = p.denseWidth;
  const dim = p.sparseWidth;
  if (K < 1) fail('no classes');
  if (new Set(p.classes).size !== K) fail('duplicate class names');
  if (!Number.isInteger(dd) || dd < 0 || !Number.isInteger(dim) || dim < 0 || dd + dim === 0) fail(`invalid widths: dense ${dd}, sparse ${dim}`);
  const W = dd + dim;
  if (p.coef.length !== K * W) fail(`coef has ${p.coef.length} values, expected ${K} × ${W}`);
  if (p.intercept.length !== K) fail(`intercept has ${p.intercept.length} values, expected ${K}`);
  for (const [name, v] of [['mean', p.mean], ['scale', p.scale]] as const) {
    if (v.length !== dd && v.length !== W) fail(`${name} has ${v.length} values, expected ${dd} or ${W}`);
    for (let j = 0; j < dd; j++) if (!Number.isFinite(v[j]!)) fail(`${name}[${j}] is ${v[j]}`);
  }
  for (let j = 0; j < dd; j++) if (p.scale[j] === 0) fail(`scale[${j}] is 0`);
  // A shifted or scaled sparse column would make every row dense: the TF-IDF block must be left as is.
  for (let j = dd; j < p.mean.length; j++) if (p.mean[j] !== 0) fail(`the TF-IDF block's mean must be 0, column ${j - dd} has ${p.mean[j]}`);
  for (let j = dd; j < p.scale.length; j++) if (p.scale[j] !== 1) fail(`the TF-IDF block's scale must be 1, column ${j - dd} has ${p.scale[j]}`);
  for (let i = 0; i < p.coef.length; i++) if (!Number.isFinite(p.coef[i]!)) fail(`coef[${i}] is ${p.coef[i]}`);
  for (let k = 0; k < K; k++) if (!Number.isFinite(p.intercept[k]!)) fail(`intercept[${k}] is ${p.intercept[k]}`);
  return { K, dd, dim, W };
}

/**
 * The constant to subtract from one sparse column's K weights: the centre of the densest window of width
 * 2·tolerance over the sorted weights (ties: the narrowest window, then the lowest), so the most entries
 * land within `tolerance` of it. Softmax is unchanged by any shift; this one makes the most of them prunable.
 */
export function columnShift(sorted: Float64Array, tolerance: number): number {
  const K = sorted.length;
  let best = 0;
  let bestCount = 0;
  let bestSpan = Infinity;
  for (let lo = 0, hi = 0; lo < K; lo++) {
    if (hi < lo) hi = lo;
    while (hi + 1 < K && sorted[hi + 1]! - sorted[lo]! <= 2 * tolerance) hi++;
    const count = hi - lo + 1;
    const span = sorted[hi]! - sorted[lo]!;
    if (count > bestCount || (count === bestCount && span < bestSpan)) {
      bestCount = count;
      bestSpan = span;
      best = lo;
    }
  }
  return bestSpan === 0 ? sorted[best]! : sorted[best]! + bestSpan / 2;
}

/**
 * The scoring layout of a trained head. Each TF-IDF column's weights are shifted by columnShift and only those
 * further than `tolerance` from it are kept, so scoring a row costs its non-zeros' kept entries. A kept value is
 * rounded to the nearest multiple of 2·tolerance: like a pruned one it moves by at most `tolerance`, so the bound
 * on a row's logits (tolerance × ‖x‖₁) is pruning's alone, and the file stores the multiples in 16 bits (when all
 * fit; otherwise the values stay float32). Tolerance 0 keeps every entry that differs from the shift, in float32,
 * which leaves probabilities exact up to float32.
 */
export function buildLinearHead(params: LinearModelParams, opts: { tolerance?: number } = {}): { head: LinearHead; pruning: SparsePruning | null } {
  const tolerance = opts.tolerance ?? DEFAULT_PRUNE_TOLERANCE;
  if (!(tolerance >= 0 && Number.isFinite(tolerance))) throw new RangeError(`linear head: tolerance must be a finite number >= 0, got ${tolerance}`);
  const { K, dd, dim, W } = checkParams(params);
  const { coef } = params;
  let dense: LinearHead['dense'] = null;
  if (dd > 0) {
    const weights = new Float32Array(dd * K);
    for (let k = 0; k < K; k++) for (let j = 0, o = k * W; j < dd; j++) weights[j * K + k] = coef[o + j]!;
    dense = { width: dd, mean: Float64Array.from(params.mean.subarray(0, dd)), scale: Float64Array.from(params.scale.subarray(0, dd)), weights };
  }
  if (dim === 0) return { head: { classes: [...params.classes], intercept: Float64Array.from(params.intercept), dense, sparse: null }, pruning: null };

  // Pass 1 finds each column's shift and how many entries it keeps; pass 2 fills arrays of exactly that size.
  const block = new Float64Array(COLUMN_BLOCK * K);
  const sorted = new Float64Array(K);
  const shift = new Float64Array(dim);
  const colptr = new Uint32Array(dim + 1);
  const kept = (w: number, c: number) => Math.abs(w - c) > tolerance && Math.fround(w - c) !== 0;
  const eachBlock = (visit: (j: number, column: Float64Array) => void) => {
    for (let j0 = 0; j0 < dim; j0 += COLUMN_BLOCK) {
      const nb = Math.min(COLUMN_BLOCK, dim - j0);
      for (let k = 0; k < K; k++) for (let b = 0, o = k * W + dd + j0; b < nb; b++) block[b * K + k] = coef[o + b]!;
      for (let b = 0; b < nb; b++) visit(j0 + b, block.subarray(b * K, (b + 1) * K));
    }
  };
  let nnz = 0;
  let largest = 0;
  eachBlock((j, column) => {
    sorted.set(column);
    sorted.sort();
    const c = (shift[j] = columnShift(sorted, tolerance));
    for (let k = 0; k < K; k++) {
      if (!kept(column[k]!, c)) continue;
      nnz++;
      largest = Math.max(largest, Math.abs(column[k]! - c));
    }
    colptr[j + 1] = nnz;
  });
  const step = 2 * tolerance;
  const quantised = tolerance > 0 && Math.round(largest / step) <= QUANTISED_MAX;
  if (nnz > 0xffffffff) throw new RangeError(`linear head: ${nnz} sparse entries exceed the format's 2^32 - 1; raise the tolerance`);
  const classIndex = classIndexArray(K, nnz);
  const values = new Float32Array(nnz);
  eachBlock((j, column) => {
    const c = shift[j]!;
    let p = colptr[j]!;
    for (let k = 0; k < K; k++) {
      const w = column[k]!;
      if (!kept(w, c)) continue;
      classIndex[p] = k;
      values[p++] = quantised ? Math.round((w - c) / step) * step : w - c;
    }
  });
  return {
    head: { classes: [...params.classes], intercept: Float64Array.from(params.intercept), dense, sparse: { width: dim, colptr, classIndex, values } },
    pruning: { tolerance, keptEntries: nnz, totalEntries: K * dim, valueBits: quantised ? 16 : 32 },
  };
}

/**
 * The dense parameters a LinearHead stands for (pruned entries as zeros, columns shifted): the inverse of
 * buildLinearHead up to those, for writing the same model as an ONNX graph or comparing against it.
 */
export function linearHeadParams(head: LinearHead): LinearModelParams {
  const K = head.intercept.length;
  const dd = head.dense?.width ?? 0;
  const dim = head.sparse?.width ?? 0;
  const W = dd + dim;
  const coef = new Float64Array(K * W);
  if (head.dense) for (let j = 0; j < dd; j++) for (let k = 0; k < K; k++) coef[k * W + j] = head.dense.weights[j * K + k]!;
  if (head.sparse) {
    const { colptr, classIndex, values } = head.sparse;
    for (let j = 0; j < dim; j++) for (let p = colptr[j]!; p < colptr[j + 1]!; p++) coef[classIndex[p]! * W + dd + j] = values[p]!;
  }
  const mean = new Float64Array(W);
  const scale = new Float64Array(W).fill(1);
  if (head.dense) {
    mean.set(head.dense.mean);
    scale.set(head.dense.scale);
  }
  return { classes: [...head.classes], denseWidth: dd, sparseWidth: dim, mean, scale, coef, intercept: Float64Array.from(head.intercept) };
}

/** Something that gives a row's K class probabilities. */
export type HeadScorer = (row: HeadRow) => ArrayLike<number>;

/** A LinearHead as a scorer (one scratch buffer, a fresh output per row). */
export function linearScorer(head: LinearHead): HeadScorer {
  const logits = new Float64Array(head.intercept.length);
  return (row) => softmaxInto(linearLogits(head, row, logits), new Float64Array(head.intercept.length));
}

/** The trained model itself as a scorer: every weight, float64, read straight from the class-major coef. */
export function paramsScorer(params: LinearModelParams): HeadScorer {
  const { K, dd, dim, W } = checkParams(params);
  const { coef, intercept, mean, scale } = params;
  const z = new Float64Array(dd);
  return (row) => {
    let j = 0;
    for (const part of row.dense) for (let t = 0; t < part.length; t++, j++) z[j] = (part[t]! - mean[j]!) / scale[j]!;
    if (j !== dd) throw new RangeError(`paramsScorer: dense input has ${j} values, the head reads ${dd}`);
    const logits = new Float64Array(K);
    const x = row.sparse;
    for (let k = 0; k < K; k++) {
      const o = k * W;
      let s = intercept[k]!;
      for (let i = 0; i < dd; i++) s += coef[o + i]! * z[i]!;
      if (x) {
        for (let t = 0; t < x.indices.length; t++) {
          const c = x.indices[t]!;
          if (!(c >= 0 && c < dim)) throw new RangeError(`paramsScorer: sparse index ${c} is outside [0, ${dim})`);
          s += coef[o + dd + c]! * x.values[t]!;
        }
      }
      logits[k] = s;
    }
    return softmaxInto(logits, new Float64Array(K));
  };
}

/** Agreement of two n × K probability matrices (row-major). */
export function probabilityAgreement(a: ArrayLike<number>, b: ArrayLike<number>, n: number, K: number): HeadAgreement {
  if (a.length !== n * K || b.length !== n * K) throw new RangeError(`probabilityAgreement: ${a.length} and ${b.length} values for ${n} × ${K}`);
  let same = 0;
  let max = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let ta = 0;
    let tb = 0;
    for (let k = 0; k < K; k++) {
      const d = Math.abs(a[o + k]! - b[o + k]!);
      if (d > max) max = d;
      sum += d;
      if (a[o + k]! > a[o + ta]!) ta = k;
      if (b[o + k]! > b[o + tb]!) tb = k;
    }
    if (ta === tb) same++;
  }
  return { rows: n, top1Agreement: n > 0 ? same / n : 1, maxAbsDiff: max, meanAbsDiff: n > 0 ? sum / (n * K) : 0 };
}

/** How far `candidate`'s probabilities are from `reference`'s on these rows (both in the same class order). */
export function measureAgreement(reference: HeadScorer, candidate: HeadScorer, rows: readonly HeadRow[], K: number): HeadAgreement {
  const a = new Float64Array(rows.length * K);
  const b = new Float64Array(rows.length * K);
  rows.forEach((row, i) => {
    const pa = reference(row);
    const pb = candidate(row);
    if (pa.length !== K || pb.length !== K) throw new RangeError(`measureAgreement: scorers gave ${pa.length} and ${pb.length} probabilities for ${K} classes`);
    a.set(pa, i * K);
    b.set(pb, i * K);
  });
  return probabilityAgreement(a, b, rows.length, K);
}

/** A trained head's parameters in the form buildLinearHead takes (the TF-IDF block, when there is one, is last). */
export function linearModelParams(head: TrainedHead): LinearModelParams {
  const blocks = head.layout.blocks;
  const t = blocks.findIndex((b) => b.kind === 'tfidf');
  if (t >= 0 && t !== blocks.length - 1) throw new RangeError('linear head: the TF-IDF block must come after the dense blocks');
  const dim = t >= 0 ? blocks[t]!.dim : 0;
  return {
    classes: head.classes,
    denseWidth: head.layout.width - dim,
    sparseWidth: dim,
    mean: head.scaler.mean,
    scale: head.scaler.scale,
    coef: head.model.coef,
    intercept: head.model.intercept,
  };
}

/** Whether a trained head reads the row: it has one of the head's dense blocks, or text for its TF-IDF block. */
function headReads(head: TrainedHead, r: RowFeatures): boolean {
  return r.ok && head.layout.blocks.some((b) => (b.kind === 'tfidf' ? r.text !== '' : r.vectors[b.kind] !== undefined));
}

/**
 * One row as a trained head reads it (its dense blocks' vectors, a missing one the training mean, and the TF-IDF
 * row of the text), or null when the row has none of its blocks (run leaves the head out).
 */
export function trainedHeadRow(head: TrainedHead, r: RowFeatures): HeadRow | null {
  if (!headReads(head, r)) return null;
  const kinds = head.layout.blocks.map((b) => b.kind);
  const tfidf = kinds.includes('tfidf') && r.text !== '' ? tfidfBlockRow(head.tfidf, r.text) : undefined;
  return linearHeadRow({ ...r, tfidf }, kinds, head.layout.means);
}

/** Rows the agreement is measured on, at most (evenly spaced): scoring them with every weight costs dd·K + nnz·K each. */
export const AGREEMENT_MAX_ROWS = 2000;

/**
 * A trained head as a bundle stores it: pruned at `tolerance`, with its agreement against the trained model
 * measured on `rows` (those that have the head's modality; up to AGREEMENT_MAX_ROWS of them) when given.
 */
export function linearBundleHead(head: TrainedHead, rows: readonly RowFeatures[] = [], tolerance = DEFAULT_PRUNE_TOLERANCE): { linear: LinearHead; pruning?: HeadPruning } {
  let built: { head: LinearHead; pruning: SparsePruning | null };
  // What the pruned head is measured against, built only when there are rows to measure on.
  let reference: () => HeadScorer;
  if (head.support) {
    // A support head: its weights are already by column; pruning measures from zero (supportLinearHead).
    const support = head.support;
    const pruned = supportLinearHead(support, head.classes, tolerance);
    built = { head: pruned.head, pruning: { tolerance, keptEntries: pruned.keptEntries, totalEntries: support.values.length, valueBits: pruned.valueBits } };
    reference = () => linearScorer(supportLinearHead(support, head.classes, 0).head);
  } else {
    const params = linearModelParams(head);
    built = buildLinearHead(params, { tolerance });
    reference = () => paramsScorer(params);
  }
  if (!built.pruning) return { linear: built.head };
  // Rows are picked before they are read, so a large catalog's TF-IDF rows are not all computed again.
  const all = rows.filter((r) => headReads(head, r));
  const step = Math.max(1, all.length / AGREEMENT_MAX_ROWS);
  const picked: HeadRow[] = [];
  for (let i = 0; Math.floor(i) < all.length && picked.length < AGREEMENT_MAX_ROWS; i += step) picked.push(trainedHeadRow(head, all[Math.floor(i)]!)!);
  const agreement = picked.length > 0 ? measureAgreement(reference(), linearScorer(built.head), picked, head.classes.length) : undefined;
  return { linear: built.head, pruning: { ...built.pruning, ...(agreement ? { agreement } : {}) } };
}

/**
 * A trained model's probabilities as its bundle would give them: every head pruned at `tolerance` and scored as run
 * scores it, fused over the heads each row has, at the model's calibration temperature. n × classes (zeros for a row no head reads), and each head's own
 * probabilities over `classes` (null where the row lacks its modality).
 */
export function shippedPredictions(
  model: TrainedModel,
  rows: readonly RowFeatures[],
  classes: string[],
  tolerance = DEFAULT_PRUNE_TOLERANCE,
): { fused: Float64Array; heads: Record<string, (Float32Array | null)[]> } {
  const K = classes.length;
  const shipped = model.heads.map((h) => ({ h, linear: linearBundleHead(h.head, [], tolerance).linear }));
  const fused = new Float64Array(rows.length * K);
  const heads: Record<string, (Float32Array | null)[]> = Object.fromEntries(model.heads.map((h) => [h.name, []]));
  rows.forEach((r, i) => {
    // Early fusion's routes, as run takes them (predictor.ts).
    const complete = rowHasAll(r, model.blocks.map((b) => b.kind));
    const outputs = shipped.map(({ h, linear }) => {
      const row = h.route === undefined || (h.route === 'complete') === complete ? trainedHeadRow(h.head, r) : null;
      return { classes: h.head.classes, weight: h.weight, probs: row ? scoreRow(linear, row) : null };
    });
    outputs.forEach((o, k) => heads[shipped[k]!.h.name]!.push(o.probs ? fuseHeads([o], classes) : null));
    const p = fuseHeads(outputs, classes, model.calibration?.temperature ?? 1, nameMatchBias(model.calibration?.nameMatch, classes, r.text));
    if (p) fused.set(p, i * K);
  });
  return { fused, heads };
}
