// Model bundle: the directory `run` loads (manifest.json, the heads, tfidf.json, imputation.json), checked on load.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { ImagePreprocess } from './model-dir.js';
import { IMAGE_PREPROCESSING, preprocessingOf } from '../embed/image-preprocess.js';
import type { TapInfo } from './tap.js';
import type { PresetName } from './preset.js';
import { tfidfFromJSON, tfidfBlockDim, type TfidfBlockModel, type TfidfModel } from '../head/tfidf.js';
import { writeLinearHead } from '../head/head-io.js';
import { NAME_MATCH_MAX_BETA, type NameMatch } from '../head/name-match.js';
import type { LinearHead } from '../head/scoring.js';
import type { HeadPruning } from '../head/linear-head.js';
import { pathLevels } from '../head/taxonomy.js';
import type { CalibrationTest, PrecisionCurve, TargetThreshold, TopLabelScaling } from '../head/calibration.js';
import { LABEL_TAIL_MAX, type LabelTail } from '../head/label-flags.js';

export const BUNDLE_FORMAT = 'categorize-bundle';
/**
 * 2 added per-modality heads with learned fusion (`fusion`) and the character TF-IDF (`tfidf.charFile`);
 * 3 added linear heads (`type: 'linear'`, head-io's binary file, scored in JS with the TF-IDF block sparse);
 * 4 added category paths (`paths`): written only by bundles that have them, so flat bundles stay readable by older tools;
 * 5 added calibration (`calibration`: a temperature, and the held-out curve that turns a target precision into a
 * threshold): older tools would score such a bundle uncalibrated, so they refuse it;
 * 6 added the image block's `preprocess.method: 'fast'` (libvips resize; absent: 'exact', PIL's): written only by
 * bundles trained with it, which older tools would feed exact-resized photos, so they refuse them;
 * 7 added early fusion's head routes (`route`: the joint head for rows with every block, the per-modality heads for
 * the rest): older tools would fuse all three heads on every row, so they refuse such bundles.
 * 8 added `calibration.prior` (the answer shifted against the class prior): older tools would answer the top class.
 * 9 added `calibration.nameMatch` (classes the row's text names raised by beta): older tools would score without it.
 */
export const BUNDLE_FORMAT_VERSION = 9;

/** What `train` stores about calibration and decisions (calibration.ts). */
export interface BundleCalibration {
  method: 'temperature';
  /** Divides the fused log-probabilities of the main head set. */
  temperature: number;
  /** A path bundle's top-level head set's temperature. */
  topTemperature?: number;
  /** Then the top class's probability scaled (calibration.ts TopLabelScaling); absent: none fitted, or not kept. */
  topLabel?: TopLabelScaling;
  /**
   * Each step as fitted and its likelihood-ratio test on the held-out rows (calibration.ts likelihoodRatioTest): a
   * step not kept is left out (temperature 1, no topLabel). Informative only: older bundles have none, and older
   * tools ignore it.
   */
  tests?: {
    temperature: CalibrationStepTest<number>;
    topTemperature?: CalibrationStepTest<number>;
    topLabel?: CalibrationStepTest<TopLabelScaling>;
    /** The name match's beta as fitted (name-match.ts). */
    nameMatch?: CalibrationStepTest<number>;
  };
  /**
   * Classes the row's text names (name-match.ts): beta is added to their fused log-probabilities before the
   * temperature, for the classes listed (the ones whose names count). Absent: none (format 9 when present).
   */
  nameMatch?: NameMatch;
  /** Where the held-out predictions came from: the selection of C and the fusion weights, or the validation share. */
  source: 'selection' | 'validation';
  rows: number;
  /** Held-out figures before and after the temperature (for a path bundle: of the combined path probabilities). */
  before: { logLoss: number; brier: number; ece: number };
  after: { logLoss: number; brier: number; ece: number };
  /** The held-out precision–coverage curve of the decision score (a row's top-1 probability; a path bundle's full path's). */
  curve: PrecisionCurve;
  /** The targets `train --target-precision` asked for, in that order: each threshold, or why there is none. */
  targets: TargetThreshold[];
  /** Flat classes: the held-out rows' probabilities of their own labels where the answer is another (label-flags.ts). */
  labelTail?: LabelTail;
  /**
   * The class answered is argmax of the raw fused log-probabilities + bias (one per class): the decision shifted
   * against the class prior by alpha, chosen for held-out macro-F1 (selection.ts choosePriorShift). The probabilities,
   * scores and top categories are not shifted. Absent: the most probable class (format 8 when present).
   */
  prior?: { alpha: number; bias: number[] };
}

/** A calibration step as fitted, and whether its test kept it. */
export type CalibrationStepTest<T> = { fitted: T } & CalibrationTest;

/** How a head is stored: 'onnx' (a graph, ours or skl2onnx's; formats 1–2 have only these) or 'linear' (head-io.ts). */
export type HeadType = 'onnx' | 'linear';

/** Where a feature block's embedding model lives. `path` is relative to the bundle folder (or absolute). */
export interface ModelRef {
  /** Registry id, e.g. text:all-MiniLM-L6-v2. */
  id?: string;
  path?: string;
  repository?: string;
  /** The commit the files came from. */
  revision?: string;
  /** Registry variant (fp32, quantized …). */
  variant?: string;
  /** The ONNX file in the repository (before any tap). */
  file?: string;
  /** sha256 of the ONNX file the encoder runs (the tapped one, for a tapped classifier); checked when loaded. */
  sha256?: string;
  /** The pooled-feature output added to a classifier export, when one was. */
  tap?: TapInfo;
}

export type FeatureBlock =
  | { kind: 'text'; offset: number; dim: number; model: ModelRef; preprocess: { maxLength: number; pooling: 'mean'; normalize: boolean } }
  | { kind: 'image'; offset: number; dim: number; model: ModelRef; preprocess: ImagePreprocess }
  /** The bundle's TF-IDF vector of title + description (tfidf.json), unscaled: rows are already L2-normalised. */
  | { kind: 'tfidf'; offset: number; dim: number };

/** Blocks produced by an embedding model (these have imputation means). */
export type EncoderBlock = Extract<FeatureBlock, { kind: 'text' | 'image' }>;
export const isEncoderBlock = (b: FeatureBlock): b is EncoderBlock => b.kind === 'text' || b.kind === 'image';

/** One classifier head: scaler + logistic regression over some of the blocks (their vectors concatenated in layout order). */
export interface HeadSpec {
  /** 'text' (text and tfidf blocks), 'image', or 'joint' (every block: a bundle without fusion). */
  name: string;
  kinds: FeatureBlock['kind'][];
  file: string;
  /** Absent: 'onnx' (bundles of format 1 and 2). */
  type?: HeadType;
  /** An ONNX head's input and output names. */
  input?: string;
  output?: string;
  /** A linear head's pruning: tolerance, entries kept, and its measured agreement with the trained model. */
  pruning?: HeadPruning;
  /** The classes this head was fitted on, in its output order (a subset of the bundle's when a class lacks the modality). */
  classes: string[];
  /** Its weight in the log-linear fusion (the weights of the heads a row has are renormalised to sum to 1). */
  weight: number;
  /**
   * Early fusion (format 7): 'complete', this head scores only rows that have every block of the layout; 'incomplete',
   * only rows missing one. Absent: every row that has one of its blocks (a joint head: every row).
   */
  route?: 'complete' | 'incomplete';
  /** Early fusion's joint head: the weight its image block was given (already folded into its scaler; for reports). */
  blockWeight?: number;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  toolVersion: string;
  createdAt: string;
  classes: string[];
  /**
   * The training preset (`train --preset`, or the one train chose): which features and models the bundle was
   * trained on, by name. Informative only (run uses the layout's models, never a preset), so it is an additive field
   * that needs no format version: older tools ignore it, and bundles without it load as before.
   */
  preset?: PresetName;
  /**
   * The classes are category paths (levels joined by " > "): `run` answers the deepest node whose probability
   * reaches `minPathScore`. `separator` is the one the training labels were split on (eval and check split theirs on it).
   */
  paths?: {
    separator: string;
    minPathScore: number;
    /**
     * A head set over the top-level nodes, fitted like the main one: its probabilities replace the top-level
     * marginals of the main head's (Taxonomy.withTopLevel). Absent: the main head's sums decide the top level.
     */
    top?: { classes: string[]; heads: HeadSpec[] };
  };
  /** Classifier input layout, in order (e.g. [text | image | tfidf]). */
  features: FeatureBlock[];
  /** The single head over every block (format 1, imported bundles, one modality); absent when `fusion` is set. */
  classifier?: { file: string; type?: HeadType; input?: string; output?: string; pruning?: HeadPruning };
  /** Per-modality heads and their learned weights; a row is predicted from the heads whose modality it has. */
  fusion?: { method: 'log-linear'; heads: HeadSpec[]; selection?: Record<string, unknown> };
  /** Training means per block (imputation of a missing modality). */
  imputation: { file: string };
  /** Word TF-IDF (tags, and the tfidf block), plus the character TF-IDF appended to the block when `charFile` is set. */
  tfidf: { file: string; charFile?: string } | null;
  /** Temperature and decision thresholds (format 5); absent: scores are the heads' raw fused probabilities. */
  calibration?: BundleCalibration;
  training?: Record<string, unknown>;
  /**
   * Attributes predicted beside the category from the same features (`train --attribute`): each its own heads, fusion
   * and calibration over the bundle's layout, TF-IDF and imputation. An additive field: older tools ignore it and
   * predict the category as before; bundles without it have no attributes.
   */
  attributes?: AttributeSpec[];
}

/** One attribute of a bundle (manifest `attributes`): the column it was trained on, its classes, heads and calibration. */
export interface AttributeSpec {
  /** The catalog column (eval and check read their labels from it) and the name run's records use. */
  name: string;
  classes: string[];
  fusion: { method: 'log-linear'; heads: HeadSpec[]; selection?: Record<string, unknown> };
  calibration?: BundleCalibration;
  training?: Record<string, unknown>;
}

/** An attribute ready to score: its heads checked against the layout. */
export interface BundleAttribute {
  name: string;
  classes: string[];
  heads: BundleHead[];
  calibration: BundleCalibration | null;
}

/** A head ready to load: its file and where its input comes from in the full feature vector. */
export interface BundleHead extends HeadSpec {
  type: HeadType;
  path: string;
  /** [offset, dim] of each of its blocks in the full layout, in order. */
  slices: [number, number][];
  width: number;
}

export interface ModelBundle {
  dir: string;
  manifest: BundleManifest;
  heads: BundleHead[];
  /** A path bundle's top-level heads and their classes (manifest `paths.top`), or null. */
  top: { classes: string[]; heads: BundleHead[] } | null;
  /** The word TF-IDF (tags). */
  tfidf: TfidfModel | null;
  /** What fills the tfidf block: the word TF-IDF and the character one, when the bundle has it. */
  tfidfBlock: TfidfBlockModel | null;
  /** Per feature kind: the mean vector imputed when that modality is missing. */
  means: Map<FeatureBlock['kind'], Float32Array>;
  /** Total classifier input width. */
  width: number;
  /** The attributes predicted beside the category (manifest `attributes`), in manifest order; empty when none. */
  attributes: BundleAttribute[];
}

function fail(dir: string, what: string): never {
  throw new ConfigError(`model bundle ${dir}: ${what}`, 'bundle');
}

function readJsonFile(dir: string, file: string): unknown {
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) fail(dir, `missing ${file}`);
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (err) {
    fail(dir, `${file} is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Loads and checks everything that can be checked without the embedding models. */
export function loadBundle(location: string): ModelBundle {
  const dir = path.resolve(location);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ConfigError(`model bundle not found: ${location} (expected a folder with manifest.json)`, 'bundle');
  }
  const m = readJsonFile(dir, 'manifest.json') as Partial<BundleManifest>;
  if (m.format !== BUNDLE_FORMAT) fail(dir, `manifest.json format is '${String(m.format)}', expected '${BUNDLE_FORMAT}'`);
  if (typeof m.formatVersion !== 'number' || m.formatVersion > BUNDLE_FORMAT_VERSION) {
    fail(dir, `format version ${String(m.formatVersion)} is not supported by this categorize (supports ≤ ${BUNDLE_FORMAT_VERSION}); upgrade categorize`);
  }
  if (!Array.isArray(m.classes) || m.classes.length < 2 || m.classes.some((c) => typeof c !== 'string')) {
    fail(dir, 'manifest.json classes must list at least two class names');
  }
  if (new Set(m.classes).size !== m.classes.length) fail(dir, 'manifest.json classes has duplicates');
  if (m.paths !== undefined) {
    const { separator, minPathScore } = m.paths as Partial<NonNullable<BundleManifest['paths']>>;
    if (typeof separator !== 'string' || separator === '') fail(dir, 'manifest.json paths.separator must be a non-empty string');
    if (typeof minPathScore !== 'number' || !(minPathScore >= 0 && minPathScore <= 1)) fail(dir, 'manifest.json paths.minPathScore must be a number in [0, 1]');
  }
  if (m.calibration !== undefined) checkCalibration(dir, m.calibration, m.paths?.top !== undefined, m.classes.length);
  if (!Array.isArray(m.features) || m.features.length === 0) fail(dir, 'manifest.json features is empty');
  let width = 0;
  const kinds = new Set<string>();
  for (const b of m.features) {
    if (b.kind !== 'text' && b.kind !== 'image' && b.kind !== 'tfidf') fail(dir, `unknown feature kind '${String((b as { kind: unknown }).kind)}'`);
    if (kinds.has(b.kind)) fail(dir, `feature kind '${b.kind}' listed twice`);
    kinds.add(b.kind);
    if (!Number.isInteger(b.dim) || b.dim <= 0) fail(dir, `feature '${b.kind}' has invalid dim ${String(b.dim)}`);
    if (b.offset !== width) fail(dir, `feature '${b.kind}' offset ${b.offset} should be ${width} (blocks must be contiguous)`);
    if (b.kind === 'image') checkImagePreprocessing(dir, b.preprocess?.method, m.formatVersion);
    width += b.dim;
  }
  const heads = bundleHeads(dir, m as BundleManifest, fail);
  const topSpec = m.paths?.top;
  let top: ModelBundle['top'] = null;
  if (topSpec) {
    if (!Array.isArray(topSpec.classes) || topSpec.classes.length < 2 || !Array.isArray(topSpec.heads) || topSpec.heads.length === 0) {
      fail(dir, 'manifest.json paths.top must list at least two classes and one head');
    }
    const tops = new Set(m.classes.map((c) => pathLevels(c)[0]));
    if (topSpec.classes.some((c) => !tops.has(c))) fail(dir, 'manifest.json paths.top classes must be the top levels of the classes');
    top = { classes: topSpec.classes, heads: checkedHeads(dir, m as BundleManifest, topSpec.heads, topSpec.classes, fail) };
  }
  const attributes = bundleAttributes(dir, m as BundleManifest);
  const means = new Map<FeatureBlock['kind'], Float32Array>();
  const imp = readJsonFile(dir, m.imputation?.file ?? 'imputation.json') as { means?: Record<string, number[]> };
  for (const b of m.features.filter(isEncoderBlock)) {
    const v = imp.means?.[b.kind];
    if (!Array.isArray(v) || v.length !== b.dim) fail(dir, `imputation means for '${b.kind}' must have ${b.dim} values`);
    means.set(b.kind, Float32Array.from(v));
  }
  const readTfidf = (file: string): TfidfModel => {
    try {
      return tfidfFromJSON(readJsonFile(dir, file), file);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      fail(dir, `${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const tfidf = m.tfidf ? readTfidf(m.tfidf.file) : null;
  const tfidfModels = tfidf ? { word: tfidf, char: m.tfidf?.charFile ? readTfidf(m.tfidf.charFile) : null } : null;
  const tfidfBlock = m.features.find((b) => b.kind === 'tfidf');
  if (tfidfBlock && !tfidfModels) fail(dir, 'the layout has a tfidf block but the bundle has no tfidf.json');
  if (tfidfBlock && tfidfModels && tfidfBlockDim(tfidfModels) !== tfidfBlock.dim) {
    fail(dir, `the tfidf block is ${tfidfBlock.dim} wide but the TF-IDF files have ${tfidfBlockDim(tfidfModels)} terms`);
  }
  return { dir, manifest: m as BundleManifest, heads, top, tfidf, tfidfBlock: tfidfModels, means, width, attributes };
}

/**
 * The image block's preprocessing: absent or 'exact' (formats 1–5, imported heads), or 'fast' from format 6 on; an
 * unknown method is refused rather than preprocessed some other way than the head was trained on.
 */
function checkImagePreprocessing(dir: string, method: unknown, formatVersion: number): void {
  if (method === undefined) return;
  if (!IMAGE_PREPROCESSING.includes(method as never)) {
    fail(dir, `the image block's preprocess.method is '${String(method)}', expected one of ${IMAGE_PREPROCESSING.join(', ')}`);
  }
  if (method === 'fast' && formatVersion < 6) fail(dir, `the image block's preprocess.method 'fast' needs format version 6, the manifest says ${formatVersion}`);
}

/** A manifest's calibration: positive finite temperatures and a well-formed curve. */
function checkCalibration(dir: string, c: Partial<BundleCalibration>, top: boolean, classes: number): void {
  const temperature = (t: unknown) => typeof t === 'number' && t > 0 && Number.isFinite(t);
  if (c.method !== 'temperature' || !temperature(c.temperature)) fail(dir, 'manifest.json calibration must be method temperature with a positive temperature');
  if (top && c.topTemperature !== undefined && !temperature(c.topTemperature)) fail(dir, 'manifest.json calibration.topTemperature must be positive');
  if (c.topLabel !== undefined && !(Number.isFinite(c.topLabel?.a) && Number.isFinite(c.topLabel?.b))) fail(dir, 'manifest.json calibration.topLabel must have finite a and b');
  const curve = c.curve;
  const ok =
    curve !== undefined &&
    Number.isInteger(curve.rows) &&
    [curve.thresholds, curve.accepted, curve.correct].every((a) => Array.isArray(a) && a.length === curve.thresholds.length) &&
    curve.accepted.every((a, j) => Number.isInteger(a) && a > (curve.accepted[j - 1] ?? 0) && a <= curve.rows && curve.correct[j]! <= a) &&
    curve.thresholds.every((t, j) => typeof t === 'number' && (j === 0 || t < curve.thresholds[j - 1]!));
  if (!ok) fail(dir, 'manifest.json calibration.curve must list descending thresholds with rising accepted counts and correct ≤ accepted');
  if (!Array.isArray(c.targets)) fail(dir, 'manifest.json calibration.targets must be a list');
  const tail = c.labelTail;
  const tailOk =
    tail === undefined ||
    (Number.isInteger(tail.rows) &&
      tail.rows > 0 &&
      Array.isArray(tail.values) &&
      tail.values.length <= tail.rows &&
      tail.values.every((v, j) => typeof v === 'number' && v >= 0 && v <= LABEL_TAIL_MAX && (j === 0 || v >= tail.values[j - 1]!)));
  if (!tailOk) fail(dir, `manifest.json calibration.labelTail must have positive rows and at most that many ascending values in [0, ${LABEL_TAIL_MAX}]`);
  const prior = c.prior;
  if (prior !== undefined && !(Number.isFinite(prior?.alpha) && Array.isArray(prior.bias) && prior.bias.length === classes && prior.bias.every((b) => Number.isFinite(b)))) {
    fail(dir, `manifest.json calibration.prior must have a finite alpha and ${classes} finite biases, one per class`);
  }
  const names = c.nameMatch;
  if (names !== undefined && !(typeof names?.beta === 'number' && names.beta >= 0 && names.beta <= NAME_MATCH_MAX_BETA && Array.isArray(names.classes) && names.classes.every((k) => typeof k === 'string'))) {
    fail(dir, `manifest.json calibration.nameMatch must have a beta in [0, ${NAME_MATCH_MAX_BETA}] and a list of class names`);
  }
}

/** A manifest's attributes, each checked like the category: classes, calibration, and heads against the layout. */
function bundleAttributes(dir: string, m: BundleManifest): BundleAttribute[] {
  if (m.attributes === undefined) return [];
  if (!Array.isArray(m.attributes)) fail(dir, 'manifest.json attributes must be a list');
  const names = new Set<string>();
  return m.attributes.map((a) => {
    if (typeof a?.name !== 'string' || a.name.trim() === '') fail(dir, 'manifest.json attributes need a name each');
    if (names.has(a.name)) fail(dir, `attribute '${a.name}' listed twice`);
    names.add(a.name);
    if (!Array.isArray(a.classes) || a.classes.length < 2 || a.classes.some((c) => typeof c !== 'string') || new Set(a.classes).size !== a.classes.length) {
      fail(dir, `attribute '${a.name}' must list at least two distinct classes`);
    }
    if (a.fusion?.method !== 'log-linear' || !Array.isArray(a.fusion.heads) || a.fusion.heads.length === 0) fail(dir, `attribute '${a.name}' must have log-linear fusion heads`);
    if (a.calibration !== undefined) checkCalibration(dir, a.calibration, false, a.classes.length);
    return { name: a.name, classes: a.classes, heads: checkedHeads(dir, m, a.fusion.heads, a.classes, fail), calibration: a.calibration ?? null };
  });
}

/** The heads a manifest names (the fusion's, or its single classifier over every block), checked against the layout. */
function bundleHeads(dir: string, m: BundleManifest, fail: (dir: string, what: string) => never): BundleHead[] {
  const specs: HeadSpec[] = m.fusion
    ? m.fusion.heads
    : m.classifier?.file
      ? [{ name: 'joint', kinds: m.features.map((b) => b.kind), ...m.classifier, classes: m.classes, weight: 1 }]
      : fail(dir, 'manifest.json has neither a classifier nor fusion heads');
  if (m.fusion && (m.fusion.method !== 'log-linear' || !Array.isArray(m.fusion.heads) || m.fusion.heads.length === 0)) {
    fail(dir, `fusion must be method 'log-linear' with at least one head`);
  }
  return checkedHeads(dir, m, specs, m.classes, fail);
}

/** Head specs checked against the files, the layout and the classes they may predict. */
function checkedHeads(dir: string, m: BundleManifest, specs: HeadSpec[], classes: string[], fail: (dir: string, what: string) => never): BundleHead[] {
  return specs.map((h) => {
    if (!h.file || !fs.existsSync(path.join(dir, h.file))) fail(dir, `missing ${h.file ?? `the file of head '${h.name}'`}`);
    const type = h.type ?? 'onnx';
    if (type !== 'onnx' && type !== 'linear') fail(dir, `head '${h.name}' has unknown type '${String(type)}'`);
    // A linear head reads its dense blocks, then the TF-IDF block (kept sparse): that order is its file's.
    if (type === 'linear' && h.kinds?.includes('tfidf') && h.kinds[h.kinds.length - 1] !== 'tfidf') fail(dir, `linear head '${h.name}' must read the tfidf block last`);
    if (!Array.isArray(h.classes) || h.classes.length < 1 || h.classes.some((c) => !classes.includes(c))) fail(dir, `head '${h.name}' classes must be bundle classes`);
    if (!(typeof h.weight === 'number' && h.weight >= 0 && Number.isFinite(h.weight))) fail(dir, `head '${h.name}' weight must be a number >= 0`);
    if (h.route !== undefined && h.route !== 'complete' && h.route !== 'incomplete') fail(dir, `head '${h.name}' route must be 'complete' or 'incomplete', got ${JSON.stringify(h.route)}`);
    const slices: [number, number][] = (h.kinds ?? []).map((k) => {
      const b = m.features.find((f) => f.kind === k);
      if (!b) fail(dir, `head '${h.name}' reads block '${k}', which the layout lacks`);
      return [b.offset, b.dim];
    });
    if (slices.length === 0) fail(dir, `head '${h.name}' reads no block`);
    return { ...h, type, path: path.join(dir, h.file), slices, width: slices.reduce((s, [, d]) => s + d, 0) };
  });
}

/** Which catalog columns a bundle reads: text (title/description) for a text or tfidf block or for tags, images for an image block. */
export function bundleInputs(bundle: ModelBundle): { text: boolean; image: boolean } {
  const kinds = bundle.manifest.features.map((b) => b.kind);
  return { text: kinds.some((k) => k !== 'image') || bundle.tfidf !== null, image: kinds.includes('image') };
}

export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** One head to write: an ONNX graph (tests of older bundles, imports) or a linear head with its pruning facts. */
export type BundleHeadPart = ({ onnx: Uint8Array } | { linear: LinearHead; pruning?: HeadPruning }) & {
  /** Fused bundles: the head's name, blocks, classes and weight; absent for the single head over every block. */
  spec?: Omit<HeadSpec, 'file' | 'type' | 'input' | 'output' | 'pruning'>;
};

export interface BundleParts {
  manifest: Omit<BundleManifest, 'format' | 'formatVersion' | 'classifier' | 'imputation' | 'tfidf' | 'fusion' | 'attributes'> & { tfidf: boolean };
  /** One head over every block (classifier.bin / classifier.onnx), or per-modality heads with their fusion weights. */
  heads: BundleHeadPart[];
  fusionSelection?: Record<string, unknown>;
  means: Record<string, number[] | Float32Array | Float64Array>;
  tfidfJson: unknown | null;
  /** The character TF-IDF appended to the tfidf block, if any. */
  charTfidfJson?: unknown | null;
  /** A path bundle's top-level head set (manifest `paths.top`; files `top-…`). */
  topLevel?: { classes: string[]; heads: BundleHeadPart[] };
  /** Attributes (manifest `attributes`; files `attribute-<i>-head-…`): every head with its spec. */
  attributes?: { name: string; classes: string[]; heads: BundleHeadPart[]; selection?: Record<string, unknown>; calibration?: BundleCalibration; training?: Record<string, unknown> }[];
}

/** Whether a layout's image block is preprocessed the fast way (format 6). */
function fastImages(features: FeatureBlock[]): boolean {
  return features.some((b) => b.kind === 'image' && preprocessingOf(b.preprocess) === 'fast');
}

/** Writes a bundle folder; file contents depend only on the inputs, so equal inputs give identical bytes. */
export function saveBundle(location: string, parts: BundleParts): void {
  const dir = path.resolve(location);
  fs.mkdirSync(dir, { recursive: true });
  const { tfidf, ...rest } = parts.manifest;
  const fused = parts.heads.length > 1 || parts.heads[0]?.spec !== undefined;
  const linear = parts.heads.some((h) => 'linear' in h);
  // Each head's manifest entry (file, type and its type's fields), and its file written.
  const writeHead = (h: BundleHeadPart, stem: string) => {
    if ('linear' in h) {
      writeLinearHead(path.join(dir, `${stem}.bin`), h.linear, h.pruning?.tolerance ?? 0);
      return { file: `${stem}.bin`, type: 'linear' as const, ...(h.pruning ? { pruning: h.pruning } : {}) };
    }
    fs.writeFileSync(path.join(dir, `${stem}.onnx`), h.onnx);
    // Format 1 and 2 readers know only ONNX heads and no `type`: leave it out unless the bundle needs format 3.
    return { file: `${stem}.onnx`, ...(linear ? { type: 'onnx' as const } : {}), input: 'features', output: 'probabilities' };
  };
  const entries = parts.heads.map((h) => writeHead(h, fused ? `head-${h.spec!.name}` : 'classifier'));
  if (parts.topLevel && rest.paths) {
    const { classes, heads } = parts.topLevel;
    const allKinds = rest.features.map((b) => b.kind);
    rest.paths = {
      ...rest.paths,
      top: {
        classes,
        heads: heads.map((h) => {
          const spec = h.spec ?? { name: 'joint', kinds: allKinds, classes, weight: 1 };
          return { ...spec, ...writeHead(h, `top-head-${spec.name}`) };
        }),
      },
    };
  }
  const attributes: AttributeSpec[] | undefined = !parts.attributes?.length
    ? undefined
    : parts.attributes.map((a, i) => ({
      name: a.name,
      classes: a.classes,
      fusion: { method: 'log-linear' as const, heads: a.heads.map((h) => ({ ...h.spec!, ...writeHead(h, `attribute-${i}-head-${h.spec!.name}`) })), ...(a.selection ? { selection: a.selection } : {}) },
      ...(a.calibration ? { calibration: a.calibration } : {}),
      ...(a.training ? { training: a.training } : {}),
    }));
  const calibrations = [rest.calibration, ...(attributes ?? []).map((a) => a.calibration)];
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: calibrations.some((c) => c?.nameMatch !== undefined) ? 9 : calibrations.some((c) => c?.prior !== undefined) ? 8 : parts.heads.some((h) => h.spec?.route !== undefined) ? 7 : fastImages(rest.features) ? 6 : rest.calibration ? 5 : rest.paths ? 4 : linear ? 3 : fused || parts.charTfidfJson ? 2 : 1,
    ...rest,
    ...(fused
      ? { fusion: { method: 'log-linear' as const, heads: parts.heads.map((h, i) => ({ ...h.spec!, ...entries[i]! })), selection: parts.fusionSelection } }
      : { classifier: entries[0]! }),
    imputation: { file: 'imputation.json' },
    tfidf: tfidf ? { file: 'tfidf.json', ...(parts.charTfidfJson ? { charFile: 'tfidf-char.json' } : {}) } : null,
    ...(attributes ? { attributes } : {}),
  };
  if (parts.charTfidfJson) fs.writeFileSync(path.join(dir, 'tfidf-char.json'), JSON.stringify(parts.charTfidfJson) + '\n');
  const means = Object.fromEntries(Object.entries(parts.means).map(([k, v]) => [k, Array.from(v, (x) => Math.fround(x))]));
  fs.writeFileSync(path.join(dir, 'imputation.json'), JSON.stringify({ means }) + '\n');
  if (tfidf) fs.writeFileSync(path.join(dir, 'tfidf.json'), JSON.stringify(parts.tfidfJson) + '\n');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}
