// `categorize check`: a catalog data-quality gate for CI. One pass of run's own predictor over the catalog; seven
// checks, each with a threshold; every finding keeps the CSV line it came from so reports can point into the file.
// With a path bundle the label checks compare paths: a disagreement is placed at the highest level where the stored
// path and the answered node part, since a wrong department is a worse finding than a sibling leaf.
// A calibrated bundle with a target precision sets low confidence (a row run would send for review) and, on path or
// older bundles, disagreement (a row run would accept unseen against its label). A bundle that stores its held-out
// label tail flags flat labels (and attributes) it finds improbable, at a stated precision (label-flags.ts);
// --min-confidence / --low-confidence still override.
import fs from 'node:fs';
import path from 'node:path';
import type { CatalogRow } from '../io/catalog-reader.js';
import type { PredictionRecord } from '../io/prediction-writer.js';
import { UsageError } from '../errors.js';
import type { Decision } from '../head/calibration.js';
import { decide } from '../pipeline/predictor.js';
import { flagCutoff, LABEL_TAIL_MAX, type FlagCutoff, type LabelTail } from '../head/label-flags.js';
import { Taxonomy, canonicalPath, pathLevels, withAncestors, type LevelShare } from '../head/taxonomy.js';
import { bundleInputs, type BundleAttribute, type ModelBundle } from '../models/bundle.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { attributeDecision, openBundleSession, type BundleRunOptions } from '../pipeline/bundle-session.js';
import { silentProgress, type ProgressReporter } from '../pipeline/progress.js';
import { renderJUnit, type JUnitCase } from '../report/junit.js';
import { formatAnnotation } from '../report/github-annotations.js';

export const CHECK_NAMES = ['disagreement', 'low_confidence', 'duplicate_id', 'empty_title', 'image_problem', 'unknown_category', 'prediction_error'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** A check fails when its figure is strictly above its maximum. Rates are shares (0–1), counts whole numbers. */
export interface CheckThresholds {
  /** Path bundles: disagreement at all levels together; flat bundles: all disagreement. */
  maxDisagreementRate: number;
  /**
   * Path bundles: limits on single levels, each of labelled rows disagreeing at that level, on top of (never instead
   * of) maxDisagreementRate. Absent or empty: no level has its own limit.
   */
  maxDisagreementRateByLevel?: LevelShare[];
  maxLowConfidenceRate: number;
  maxDuplicateIds: number;
  maxEmptyTitles: number;
  maxImageProblemRate: number;
  maxUnknownCategories: number;
  maxErrorRate: number;
  /** Per attribute (by name), its own maximum rates; absent: maxDisagreementRate and maxLowConfidenceRate. */
  attributes?: Record<string, { maxDisagreementRate?: number; maxLowConfidenceRate?: number }>;
}

// No level has its own limit by default, not even the top one: a confident disagreement may be the model's mistake
// as much as the label's, at any level, and a flat bundle of the same catalog reports the same rows under the 2%
// allowance. Failing CI on a single top-level finding is a team's choice (--max-disagreement-rate-level 1:0).
export const DEFAULT_THRESHOLDS: CheckThresholds = {
  maxDisagreementRate: 0.02,
  maxLowConfidenceRate: 0.1,
  maxDuplicateIds: 0,
  maxEmptyTitles: 0,
  maxImageProblemRate: 0.01,
  maxUnknownCategories: 0,
  maxErrorRate: 0,
};

/** The fixed scores of the confidence checks when neither an option nor a target precision sets them. */
export const DEFAULT_MIN_CONFIDENCE = 0.8;
export const DEFAULT_LOW_CONFIDENCE = 0.5;
/** The share of disagreement flags that must be mislabelled rows, when the bundle can vouch for one (label-flags.ts). */
export const DEFAULT_FLAG_PRECISION = 0.9;

export interface CheckOptions extends BundleRunOptions {
  /** Column holding each row's stored category; without it the label checks are skipped. */
  labelColumn?: string;
  /**
   * A prediction at least this probable that differs from the stored category is a disagreement. Undefined: one run
   * would accept at the target precision in effect (targetPrecision, else the bundle's first stored target), and
   * without one, DEFAULT_MIN_CONFIDENCE.
   */
  minConfidence?: number;
  /** A top score below this is low confidence. Undefined: a row decided review at the target, else DEFAULT_LOW_CONFIDENCE. */
  lowConfidence?: number;
  /**
   * Flat classes and attributes of a bundle that stores its held-out label tail, without minConfidence: a disagreement
   * is a stored label the model finds at most c probable, c the largest cutoff at which at least this share of the
   * flags are mislabelled (95% bound). Undefined: DEFAULT_FLAG_PRECISION.
   */
  flagPrecision?: number;
  thresholds: CheckThresholds;
  json?: string;
  junit?: string;
  /** Offending rows quoted per failing check in the JUnit report (the JSON has all). */
  maxListed: number;
  toolVersion: string;
  progress?: ProgressReporter;
}

/** One offending row. */
export interface Finding {
  /** 1-based line of the input where the record starts. */
  line: number;
  id: string;
  detail: string;
  /** Path bundles' disagreements: the highest level (1 = top) where the stored path and the answer differ. */
  level?: number;
}

/** A path bundle's disagreement figures at one level (of labelled rows, like the check's own rate). */
export interface LevelOutcome {
  level: number;
  count: number;
  rate: number;
  /** The level's own limit, or null when only --max-disagreement-rate applies to it. */
  max: number | null;
  status: 'pass' | 'fail';
}

/** What makes a row count for disagreement or low_confidence, and where it came from. */
export interface ConfidenceCutoff {
  /** disagreement counts rows scored at least this, low_confidence rows below it (for a target: its threshold). */
  score: number;
  /**
   * 'option': --min-confidence / --low-confidence as given; 'default': that option's default (no target precision in
   * effect); 'target': run's accept/review decision at a target precision; 'flag-precision' (disagreement only): the
   * stored label at most `score` probable, the cutoff chosen on the catalog for a precision of the flags (`flags`).
   */
  source: 'option' | 'default' | 'target' | 'flag-precision';
  /** The option that sets it, and overrides a target. */
  option: '--min-confidence' | '--low-confidence';
  /** source 'target': the target precision, named by --target-precision or the bundle's first stored one. */
  target: { precision: number; from: '--target-precision' | 'bundle' } | null;
  /** Where the score came from in words: "--min-confidence", "the bundle's threshold for target precision 0.95". */
  from: string;
  /** Which rows count, in words (annotation titles), e.g. "score ≥ 0.9276 (the bundle's threshold for target precision 0.95)". */
  criterion: string;
  /** source 'flag-precision': the cutoff chosen and what vouches for it (its score is the cutoff; 0 when none). */
  flags?: FlagCutoff;
}

export interface CheckOutcome {
  name: CheckName;
  /** An attribute's disagreement or low_confidence (a bundle attribute judged against its own column); absent: the category's. */
  attribute?: string;
  status: 'pass' | 'fail' | 'skip';
  /** Why a skipped check did not run; null otherwise. */
  skipReason: string | null;
  /** What the threshold is compared with: offending rows, or distinct ids/categories for duplicate_id and unknown_category. */
  count: number;
  /** Offending rows (equals count except for duplicate_id and unknown_category). */
  rows: number;
  /** Rows the check looked at (the rate's denominator). */
  checked: number;
  /** rows / checked (0 when nothing was checked). */
  rate: number;
  threshold: { flag: string; on: 'rate' | 'count'; max: number };
  /** The figures in words, e.g. "16 of 300 labelled rows (5.33%) disagree with a prediction scored ≥ 0.8". */
  summary: string;
  /** summary + how it compares with the threshold: one line for JUnit messages and annotations. */
  message: string;
  findings: Finding[];
  /** duplicate_id: each repeated id with every line it is on, in order of first appearance. */
  duplicates?: { id: string; lines: number[] }[];
  /**
   * unknown_category: each stored category the model does not know. Path bundles add the deepest ancestor that is a
   * node of the model's tree (null when not even the top level is).
   */
  categories?: { category: string; count: number; firstLine: number; firstId: string; knownAncestor?: string | null }[];
  /** disagreement with a path bundle: the findings per level, every level of the tree listed. */
  levels?: LevelOutcome[];
  /** disagreement and low_confidence: the cutoff they counted rows by. */
  cutoff?: ConfidenceCutoff;
}

/** What check knows of a path bundle's tree. */
export interface CheckPaths {
  separator: string;
  /** The answer threshold in force (--min-path-score, or the bundle's). */
  minPathScore: number;
  /** Levels of the deepest class. */
  depth: number;
}

export interface CheckResult {
  /** As given (annotations point at it) and resolved. */
  input: string;
  inputPath: string | null;
  model: string;
  rows: number;
  /** Rows with a non-empty label (null without --label-column). */
  labelled: number | null;
  usesImages: boolean;
  /** Path bundles: how labels were compared; null for flat bundles. */
  paths: CheckPaths | null;
  /** The target precision in effect and its threshold (whether or not an option overrode it for both checks), or null. */
  decision: (Decision & { from: '--target-precision' | 'bundle' }) | null;
  checks: CheckOutcome[];
  /** The failed checks by checkLabel (an attribute's as `disagreement:colour`). */
  failed: string[];
  startedAt: string;
  elapsedSeconds: number;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const prob = (x: number) => x.toFixed(2);
/** A stored label's probability: small ones in exponent form, where two decimals would read 0.00. */
const labelProb = (x: number) => (x >= 0.01 ? x.toFixed(2) : x === 0 ? '0' : x.toExponential(1));
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
const quote = (s: string) => `'${s}'`;

/** A check's name as reports list it: `disagreement`, or an attribute's `disagreement:colour`. */
export function checkLabel(c: Pick<CheckOutcome, 'name' | 'attribute'>): string {
  return c.attribute === undefined ? c.name : `${c.name}:${c.attribute}`;
}

function finding(row: CatalogRow, detail: string): Finding {
  return { line: row.line, id: row.id, detail };
}

/** A row's image problem in words, or null: an empty cell, or any warning or error with an image_ or url_ code. */
function imageProblem(row: CatalogRow, rec: PredictionRecord): string | null {
  if (row.image === '') return 'image cell is empty';
  const isImageCode = (s: string) => /^(image|url)_[a-z0-9_]+(:|$)/.test(s);
  const reasons = rec.warnings.filter(isImageCode);
  // An error may join several reasons with '; ' (see FeatureExtractor.extract).
  if (rec.error) reasons.push(...rec.error.split('; ').filter(isImageCode));
  return reasons.length > 0 ? reasons.join('; ') : null;
}

/** Where a stored path and a path answer part, when the model is sure enough of its side there. */
export interface PathDisagreement {
  /** The highest level (1 = top) that both paths have and where their nodes differ. */
  level: number;
  /** Levels of the stored path. */
  storedDepth: number;
  /** The answered path's probability at that level. */
  score: number;
}

/**
 * Compares a stored path with the answered node (both in stored form, levels joined by " > ") given the answer's
 * probability per level, top first. Only levels both paths have are compared: an answer that stops above the stored
 * leaf (an ancestor) or goes below a stored inner node says less or more, not something else. The score is the one at
 * the differing level, not the answer's own (its deepest): a sure wrong department is flagged even when the leaf
 * under it is a guess. Null when the paths agree, nothing was answered, or the score there is below minConfidence.
 * minConfidence null: the caller has judged the row sure already (run would accept it at a target precision: a full
 * path scored at least the threshold), so any level where the paths part counts.
 */
export function pathDisagreement(stored: string, answered: string | null, scores: readonly number[], minConfidence: number | null): PathDisagreement | null {
  if (answered === null || answered === '') return null;
  const s = pathLevels(stored);
  const a = pathLevels(answered);
  const shared = Math.min(s.length, a.length);
  for (let d = 0; d < shared; d++) {
    if (s[d] === a[d]) continue;
    const score = scores[d] ?? 0;
    return minConfidence === null || score >= minConfidence ? { level: d + 1, storedDepth: s.length, score } : null;
  }
  return null;
}

/** A path disagreement in words, e.g. "stored 'A > B > C', predicted 'A > D' (differs at level 2 of 3, 0.93 sure)". */
export function describePathDisagreement(stored: string, answered: string, d: PathDisagreement): string {
  return `stored ${quote(stored)}, predicted ${quote(answered)} (differs at level ${d.level} of ${d.storedDepth}, ${prob(d.score)} sure)`;
}

/** The two confidence checks' cutoffs, and the decision a cutoff of source 'target' judges rows by. */
export interface ConfidenceCutoffs {
  disagreement: ConfidenceCutoff;
  lowConfidence: ConfidenceCutoff;
  decision: Decision | null;
}

/**
 * Each confidence check's cutoff: its option when given; else the decision in effect (`decision`: --target-precision,
 * or the bundle's first stored target), so the gate flags what run would apply unseen or send for review; else the
 * option's default, as before calibration. `paths`: a path bundle, whose decision is on the full path.
 */
export function confidenceCutoffs(
  opts: Pick<CheckOptions, 'minConfidence' | 'lowConfidence' | 'targetPrecision' | 'flagPrecision'>,
  decision: Decision | null,
  paths: boolean,
  tail: LabelTail | null = null,
): ConfidenceCutoffs {
  const target = decision ? { precision: decision.target, from: opts.targetPrecision !== undefined ? ('--target-precision' as const) : ('bundle' as const) } : null;
  const targetFrom = target ? (target.from === 'bundle' ? `the bundle's threshold for target precision ${target.precision}` : `the bundle's threshold for --target-precision ${target.precision}`) : '';
  const cutoff = (option: ConfidenceCutoff['option'], given: number | undefined, fallback: number, words: (value: string, from: string, byTarget: boolean) => string): ConfidenceCutoff => {
    if (given !== undefined || !decision) {
      const score = given ?? fallback;
      return { score, source: given !== undefined ? 'option' : 'default', option, target: null, from: option, criterion: words(String(score), option, false) };
    }
    return { score: decision.threshold, source: 'target', option, target, from: targetFrom, criterion: words(decision.threshold.toFixed(4), targetFrom, true) };
  };
  // Flat classes whose bundle measured how improbable right labels look: flags at a stated precision (set once the
  // whole catalog is seen: the cutoff depends on how many stored labels are improbable).
  const flagPrecision = opts.flagPrecision ?? DEFAULT_FLAG_PRECISION;
  const byFlags: ConfidenceCutoff | null =
    opts.minConfidence === undefined && tail && !paths
      ? { score: 0, source: 'flag-precision', option: '--min-confidence', target: null, from: opts.flagPrecision !== undefined ? `--flag-precision ${flagPrecision}` : `flag precision ${flagPrecision}`, criterion: '' }
      : null;
  return {
    disagreement:
      byFlags ??
      cutoff('--min-confidence', opts.minConfidence, DEFAULT_MIN_CONFIDENCE, (v, from, byTarget) =>
        byTarget && paths ? `accepted: full path score ≥ ${v} (${from})` : `score ≥ ${v} (${from})`,
      ),
    lowConfidence: cutoff('--low-confidence', opts.lowConfidence, DEFAULT_LOW_CONFIDENCE, (v, from, byTarget) =>
      byTarget ? `review: ${paths ? 'full path not reached or ' : ''}score < ${v} (${from})` : `score < ${v} (${from})`,
    ),
    decision,
  };
}

/** The cutoff's score as its summary quotes it: a target's threshold to 4 places, an option as given. */
function cutoffValue(c: ConfidenceCutoff): string {
  return c.source === 'target' ? c.score.toFixed(4) : String(c.score);
}

/** A path bundle's tree as check needs it: its nodes (each class and each of its ancestors) and the threshold. */
interface PathTree extends CheckPaths {
  tree: Taxonomy;
}

function pathTree(bundle: ModelBundle, minPathScore: number | undefined): PathTree | null {
  const paths = bundle.manifest.paths;
  if (!paths) return null;
  const tree = new Taxonomy(bundle.manifest.classes);
  return { separator: paths.separator, minPathScore: minPathScore ?? paths.minPathScore, depth: tree.maxDepth, tree };
}

/** The deepest ancestor of a stored path (itself excluded) that is a node of the tree, or null. */
function knownAncestor(stored: string, tree: Taxonomy): string | null {
  const chain = withAncestors(stored).slice(0, -1);
  for (let d = chain.length - 1; d >= 0; d--) if (tree.has(chain[d])) return chain[d];
  return null;
}

/** Level limits refer to the tree's levels: a limit with a flat bundle, or below the deepest class, is a typo. */
function checkLevelLimits(limits: LevelShare[], tree: PathTree | null, model: string): void {
  if (limits.length === 0) return;
  if (!tree) throw new UsageError(`--max-disagreement-rate-level needs a path bundle; ${model} has flat classes (use --max-disagreement-rate)`);
  const deep = limits.find((l) => l.level > tree.depth);
  if (deep) throw new UsageError(`--max-disagreement-rate-level ${deep.level}:${deep.share}: the bundle's paths have ${plural(tree.depth, 'level', 'levels')}`);
}

function hasColumn(header: string[], name: string): boolean {
  const lower = name.toLowerCase();
  return header.some((h) => h === name || h.toLowerCase() === lower);
}

/** One attribute's observations: rows with a stored value, predicted rows, and its two confidence checks' findings. */
interface AttributeTally {
  attribute: BundleAttribute;
  cutoffs: ConfidenceCutoffs;
  labelled: number;
  predicted: number;
  /** Stored values the attribute's model does not know (not judged for disagreement). */
  unknown: number;
  readonly disagreement: Finding[];
  readonly lowConfidence: Finding[];
  /** Flag-precision disagreement: the rows that may be flagged, settled once the catalog is seen. */
  readonly candidates: FlagCandidate[];
}

/** A row whose stored label is the model's answer neither, and at most LABEL_TAIL_MAX probable: flagged within the cutoff. */
interface FlagCandidate {
  finding: Finding;
  p: number;
}

/**
 * Chooses a flag-precision cutoff over the whole catalog's candidates (`judged` labelled rows with known labels) and
 * returns the flagged findings in line order; sets the cutoff's score, criterion and flags.
 */
function settleFlags(cutoff: ConfidenceCutoff, tail: LabelTail, candidates: FlagCandidate[], judged: number, precision: number): Finding[] {
  const flags = flagCutoff(tail, candidates.map((c) => c.p), judged, precision);
  cutoff.flags = flags;
  cutoff.score = flags.cutoff ?? 0;
  cutoff.criterion = flags.cutoff === null ? `none flagged (${cutoff.from})` : `stored label at most ${labelProb(flags.cutoff)} probable (${cutoff.from})`;
  if (flags.cutoff === null) return [];
  return candidates.filter((c) => c.p <= flags.cutoff!).map((c) => c.finding).sort((a, b) => a.line - b.line);
}

/** A flag-precision disagreement's summary: how many rows were flagged, and at what cutoff or why none. */
function flagSummary(name: string, n: number, of: number, rate: string, cutoff: ConfidenceCutoff, what: string): string {
  const f = cutoff.flags!;
  const head = `${name}${n} of ${plural(of, 'labelled row', 'labelled rows')} (${rate})`;
  const bound = `95% bound from ${f.heldOutRows.toLocaleString('en')} held-out rows`;
  if (f.cutoff === null) return `${head} flagged: no cutoff of the stored ${what}'s probability vouches for ${cutoff.from} (${f.reason}; ${bound})`;
  return `${head} ${n === 1 ? 'has' : 'have'} a stored ${what} the model finds at most ${labelProb(f.cutoff)} probable: at least ${f.lower.toFixed(3)} of them mislabelled (${bound}; ${cutoff.from})`;
}

/** An attribute's disagreement (a confident prediction other than the stored value) and low confidence on one row. */
function observeAttribute(a: AttributeTally, row: CatalogRow, rec: PredictionRecord, probs: Float32Array | null): void {
  const p = rec.attributes?.[a.attribute.name];
  if (rec.status !== 'ok' || !p || p.score === null || p.value === null) return;
  a.predicted++;
  const { disagreement: sure, lowConfidence: low, decision } = a.cutoffs;
  const accepted = (source: ConfidenceCutoff['source'], score: number) => (source === 'target' ? p.score! >= decision!.threshold : p.score! >= score);
  if (!accepted(low.source, low.score)) {
    const next = p.top[1];
    a.lowConfidence.push(finding(row, `${a.attribute.name}: predicted ${quote(p.value)} with ${prob(p.score)}${next ? ` (runner-up ${quote(next.value)} ${prob(next.prob)})` : ''}`));
  }
  if (row.error) return;
  const stored = (row.extra[a.attribute.name] ?? '').trim();
  if (stored === '') return;
  a.labelled++;
  const index = a.attribute.classes.indexOf(stored);
  if (index < 0) a.unknown++;
  else if (sure.source === 'flag-precision') {
    const own = probs?.[index];
    if (own !== undefined && p.value !== stored && own <= LABEL_TAIL_MAX) {
      a.candidates.push({ finding: finding(row, `${a.attribute.name}: stored ${quote(stored)} (${labelProb(own)} probable), predicted ${quote(p.value)} (${prob(p.score)})`), p: own });
    }
  } else if (accepted(sure.source, sure.score) && p.value !== stored) {
    a.disagreement.push(finding(row, `${a.attribute.name}: stored ${quote(stored)}, predicted ${quote(p.value)} (${prob(p.score)})`));
  }
}

/** An attribute's two checks, each against the attribute's own limit (else the category's). */
function attributeOutcomes(a: AttributeTally, th: CheckThresholds, flagPrecision: number): CheckOutcome[] {
  const name = a.attribute.name;
  const own = th.attributes?.[name] ?? {};
  const { disagreement: sure, lowConfidence: low } = a.cutoffs;
  const unknown = a.unknown > 0 ? `; ${plural(a.unknown, 'stored value', 'stored values')} unknown to the model not judged` : '';
  const judged = a.labelled - a.unknown;
  const byFlags = sure.source === 'flag-precision';
  if (byFlags) a.disagreement.push(...settleFlags(sure, a.attribute.calibration!.labelTail!, a.candidates, judged, flagPrecision));
  const disagreement = rateOutcome('disagreement', '--max-disagreement-rate', own.maxDisagreementRate ?? th.maxDisagreementRate, a.disagreement, judged, (n, of, r) =>
    byFlags
      ? flagSummary(`${name}: `, n, of, r, sure, 'value') + unknown
      : `${name}: ${n} of ${plural(of, 'labelled row', 'labelled rows')} (${r}) ${n === 1 ? 'disagrees' : 'disagree'} with a prediction scored ≥ ${cutoffValue(sure)} (${sure.from})${unknown}`,
  );
  const lowConfidence = rateOutcome('low_confidence', '--max-low-confidence-rate', own.maxLowConfidenceRate ?? th.maxLowConfidenceRate, a.lowConfidence, a.predicted, (n, of, r) =>
    `${name}: ${n} of ${plural(of, 'predicted row', 'predicted rows')} (${r}) ${low.source === 'target' ? `${n === 1 ? 'is' : 'are'} for review: scored` : n === 1 ? 'scores' : 'score'} below ${cutoffValue(low)} (${low.from})`,
  );
  return [
    { ...disagreement, attribute: name, cutoff: sure },
    { ...lowConfidence, attribute: name, cutoff: low },
  ];
}

/** A check of a share of rows against its maximum. */
function rateOutcome(name: CheckName, flag: string, max: number, findings: Finding[], checked: number, words: (n: number, of: number, rate: string) => string): CheckOutcome {
  const rate = checked > 0 ? findings.length / checked : 0;
  const status = rate > max ? 'fail' : 'pass';
  const summary = words(findings.length, checked, pct(rate));
  return {
    name,
    status,
    skipReason: null,
    count: findings.length,
    rows: findings.length,
    checked,
    rate,
    threshold: { flag, on: 'rate', max },
    summary,
    message: `${summary}; ${status === 'fail' ? 'over' : 'within'} ${flag} ${pct(max)}`,
    findings,
  };
}

/** Per-row observations gathered in the single pass; turned into outcomes at the end. */
class Tally {
  rows = 0;
  predicted = 0;
  labelled = 0;
  notRagged = 0;
  readonly disagreement: Finding[] = [];
  /** Flag-precision disagreement: the rows that may be flagged, settled once the catalog is seen. */
  readonly candidates: FlagCandidate[] = [];
  readonly lowConfidence: Finding[] = [];
  readonly emptyTitle: Finding[] = [];
  readonly imageProblem: Finding[] = [];
  readonly predictionError: Finding[] = [];
  /** Each id's first line: a duplicate may come at the very end, so every id is kept (a string and a number per row). */
  readonly firstLine = new Map<string, number>();
  /** Repeated ids only, with all their lines. */
  readonly repeated = new Map<string, number[]>();
  /** Keyed by the stored category (path bundles: its stored form); knownAncestor for path bundles only. */
  readonly unknown = new Map<string, { rows: Finding[]; knownAncestor?: string | null }>();
}

export async function checkCommand(opts: CheckOptions): Promise<CheckResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const progress = opts.progress ?? silentProgress;
  // Two classes per row: the runner-up makes a low-confidence finding readable.
  const { bundle, catalog, predictor, decision, close, attributes } = await openBundleSession(opts, {
    extra: opts.labelColumn ? [opts.labelColumn] : [],
    extraFlags: opts.labelColumn ? { [opts.labelColumn]: '--label-column' } : {},
    attributeColumns: true,
    topN: 2,
    topKTags: 0,
    // A misfit level limit fails before the catalog is opened or a model loaded.
    beforeCatalog: (b) => checkLevelLimits(opts.thresholds.maxDisagreementRateByLevel ?? [], pathTree(b, opts.minPathScore), opts.model),
  });
  const inputs = bundleInputs(bundle);
  const titleColumn = hasColumn(catalog.header, opts.columns.title);
  const idColumn = hasColumn(catalog.header, opts.columns.id);
  const known = new Set(bundle.manifest.classes);
  const paths = pathTree(bundle, opts.minPathScore);
  const cutoffs = confidenceCutoffs(opts, decision, paths !== null, bundle.manifest.calibration?.labelTail ?? null);
  if (opts.targetPrecision !== undefined && cutoffs.disagreement.source !== 'target' && cutoffs.lowConfidence.source !== 'target') {
    opts.log?.(`warning: --target-precision ${opts.targetPrecision} has no effect: ${cutoffs.disagreement.source === 'flag-precision' ? 'disagreement is judged by flag precision and --low-confidence sets low_confidence' : '--min-confidence and --low-confidence set both checks'}`);
  }
  const t = new Tally();
  // Each attribute whose column the catalog has is checked like the category, by its own decision at the same target.
  const judged = attributes.filter((a) => hasColumn(catalog.header, a.name));
  const unknownLimit = Object.keys(opts.thresholds.attributes ?? {}).find((n) => !judged.some((a) => a.name === n));
  if (unknownLimit !== undefined) {
    await close();
    throw new UsageError(`a limit names attribute '${unknownLimit}', which ${bundle.attributes.some((a) => a.name === unknownLimit) ? `the catalog has no column for (or --attributes left out)` : `the bundle does not have${bundle.attributes.length ? ` (it has ${bundle.attributes.map((a) => a.name).join(', ')})` : ''}`}`, 'usage');
  }
  const attributeTallies: AttributeTally[] = judged.map((attribute) => ({
    attribute,
    cutoffs: confidenceCutoffs(opts, attributeDecision(attribute, decision) ?? null, false, attribute.calibration?.labelTail ?? null),
    labelled: 0,
    predicted: 0,
    unknown: 0,
    disagreement: [],
    lowConfidence: [],
    candidates: [],
  }));
  const classIndex = new Map(bundle.manifest.classes.map((c, i) => [c, i]));
  try {
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    let warned = 0;
    await orderedMap(
      catalog.rows,
      async (row) => ({ row, p: await predictor.predict(row) }),
      ({ row, p }) => {
        observe(t, row, p.record, opts, { known, paths, titleColumn, usesImages: inputs.image, cutoffs, labelProb: (stored) => (p.probs ? (p.probs[classIndex.get(stored)!] ?? null) : null) });
        for (const a of attributeTallies) observeAttribute(a, row, p.record, p.attributes[a.attribute.name]?.probs ?? null);
        if (p.record.warnings.length > 0) warned++;
        progress.update({ rows: t.rows, errors: t.predictionError.length, warnings: warned, bytesRead: catalog.bytesRead(), totalBytes });
      },
      { window: opts.window, onInputEnd: () => predictor.flush() },
    );
  } finally {
    progress.stop();
    await close();
  }
  const flagPrecision = opts.flagPrecision ?? DEFAULT_FLAG_PRECISION;
  if (cutoffs.disagreement.source === 'flag-precision') {
    const judged = t.labelled - [...t.unknown.values()].reduce((n, u) => n + u.rows.length, 0);
    t.disagreement.push(...settleFlags(cutoffs.disagreement, bundle.manifest.calibration!.labelTail!, t.candidates, judged, flagPrecision));
  }
  const checks = [...outcomes(t, opts, { idColumn, titleColumn, usesImages: inputs.image, classes: bundle.manifest.classes.length, paths, cutoffs }), ...attributeTallies.flatMap((a) => attributeOutcomes(a, opts.thresholds, flagPrecision))];
  const result: CheckResult = {
    input: opts.input,
    inputPath: opts.input === '-' ? null : path.resolve(opts.input),
    model: path.resolve(opts.model),
    rows: t.rows,
    labelled: opts.labelColumn ? t.labelled : null,
    usesImages: inputs.image,
    paths: paths ? { separator: paths.separator, minPathScore: paths.minPathScore, depth: paths.depth } : null,
    decision: decision ? { ...decision, from: opts.targetPrecision !== undefined ? '--target-precision' : 'bundle' } : null,
    checks,
    failed: checks.filter((c) => c.status === 'fail').map(checkLabel),
    startedAt,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(checkJson(result, opts), null, 2) + '\n');
  if (opts.junit) fs.writeFileSync(opts.junit, checkJUnit(result, opts.maxListed));
  return result;
}

function observe(
  t: Tally,
  row: CatalogRow,
  rec: PredictionRecord,
  opts: CheckOptions,
  ctx: { known: Set<string>; paths: PathTree | null; titleColumn: boolean; usesImages: boolean; cutoffs: ConfidenceCutoffs; labelProb?: (stored: string) => number | null },
): void {
  t.rows++;
  const first = t.firstLine.get(row.id);
  if (first === undefined) t.firstLine.set(row.id, row.line);
  else {
    const lines = t.repeated.get(row.id);
    if (lines) lines.push(row.line);
    else t.repeated.set(row.id, [first, row.line]);
  }
  if (rec.status === 'error') t.predictionError.push(finding(row, rec.error ?? 'error'));
  else {
    t.predicted++;
    const low = ctx.cutoffs.lowConfidence;
    const byDecision = low.source === 'target' ? ctx.cutoffs.decision! : null;
    if (ctx.paths) {
      const words = pathLowConfidence(rec, low.score, byDecision, ctx.paths.minPathScore);
      if (words) t.lowConfidence.push(finding(row, words));
    } else if (byDecision ? decide(rec, byDecision).decision === 'review' : rec.score! < low.score) {
      const next = rec.top_categories[1];
      t.lowConfidence.push(finding(row, `predicted ${quote(rec.category!)} with ${prob(rec.score!)}${next ? ` (runner-up ${quote(next.category)} ${prob(next.prob)})` : ''}`));
    }
  }
  // A ragged row's fields may sit under the wrong columns: it is a prediction error, and nothing else is judged on it.
  if (row.error) return;
  t.notRagged++;
  if (ctx.titleColumn && row.title.trim() === '') t.emptyTitle.push(finding(row, 'title is empty'));
  if (ctx.usesImages) {
    const problem = imageProblem(row, rec);
    if (problem) t.imageProblem.push(finding(row, problem));
  }
  if (!opts.labelColumn) return;
  const sure = ctx.cutoffs.disagreement;
  if (ctx.paths) {
    observePath(t, row, rec, opts, ctx.paths, sure.source === 'target' ? ctx.cutoffs.decision! : sure.score);
    return;
  }
  const stored = row.extra[opts.labelColumn].trim();
  if (stored === '') return;
  t.labelled++;
  if (!ctx.known.has(stored)) {
    const f = finding(row, `stored category ${quote(stored)} is not one of the model's classes`);
    const u = t.unknown.get(stored);
    if (u) u.rows.push(f);
    else t.unknown.set(stored, { rows: [f] });
  } else if (sure.source === 'flag-precision') {
    const own = ctx.labelProb?.(stored) ?? null;
    if (rec.status === 'ok' && own !== null && rec.category !== stored && own <= LABEL_TAIL_MAX) {
      t.candidates.push({ finding: finding(row, `stored ${quote(stored)} (${labelProb(own)} probable), predicted ${quote(rec.category!)} (${prob(rec.score!)})`), p: own });
    }
  } else if (rec.status === 'ok' && (sure.source === 'target' ? decide(rec, ctx.cutoffs.decision!).decision === 'accept' : rec.score! >= sure.score) && rec.category !== stored) {
    t.disagreement.push(finding(row, `stored ${quote(stored)}, predicted ${quote(rec.category!)} (${prob(rec.score!)})`));
  }
}

/**
 * A path answer's low confidence in words, or null. An unanswered row (no top-level node reached the path
 * threshold) has no score of its own and is always low; an answered one is when its node scores below lowConfidence,
 * or with `decision`, when run would send it for review (stopped above full depth, or its full path scored below the
 * threshold).
 */
function pathLowConfidence(rec: PredictionRecord, lowConfidence: number, decision: Decision | null, minPathScore: number): string | null {
  const full = rec.path ? ` (most probable full path ${quote(rec.path.full_path)} ${prob(rec.path.full_path_score)})` : '';
  if (rec.category === null || rec.score === null) return `no top-level node reaches the path threshold ${minPathScore}${full}`;
  if (decision ? decide(rec, decision).decision === 'accept' : rec.score >= lowConfidence) return null;
  // A complete answer under review scored its full path too low: the full path's score is the one that decided.
  const why = !rec.path ? '' : !rec.path.complete ? `, stopped at level ${rec.path.depth}${full}` : decision ? `, full path ${prob(rec.path.full_path_score)}` : '';
  return `predicted ${quote(rec.category)} with ${prob(rec.score)}${why}`;
}

/**
 * The label checks for a path bundle: the stored label is split on the bundle's separator; it is unknown when it is
 * not a node of the tree (an inner node is known: a product may be filed above the leaves), and otherwise compared
 * with the answered node level by level. An unknown path is not also judged for disagreement, as with flat classes:
 * the level it is unknown at would always "differ".
 */
function observePath(t: Tally, row: CatalogRow, rec: PredictionRecord, opts: CheckOptions, tree: PathTree, sure: number | Decision): void {
  const stored = canonicalPath(row.extra[opts.labelColumn!], tree.separator);
  // Only separators and spaces: a label with no level is no label.
  if (stored === '') return;
  t.labelled++;
  if (!tree.tree.has(stored)) {
    const ancestor = knownAncestor(stored, tree.tree);
    const depth = pathLevels(stored).length;
    const where = ancestor === null ? 'not even its top level is' : `deepest known ancestor ${quote(ancestor)}, level ${pathLevels(ancestor).length} of ${depth}`;
    const f = finding(row, `stored path ${quote(stored)} is not in the model's tree (${where})`);
    const u = t.unknown.get(stored);
    if (u) u.rows.push(f);
    else t.unknown.set(stored, { rows: [f], knownAncestor: ancestor });
    return;
  }
  if (rec.status !== 'ok' || rec.category === null) return;
  // At a target, only a row run would accept counts, and then wherever its path parts from the stored one.
  if (typeof sure !== 'number' && decide(rec, sure).decision !== 'accept') return;
  const d = pathDisagreement(stored, rec.category, rec.path?.scores ?? [], typeof sure === 'number' ? sure : null);
  if (d) t.disagreement.push({ ...finding(row, describePathDisagreement(stored, rec.category, d)), level: d.level });
}

function outcomes(
  t: Tally,
  opts: CheckOptions,
  ctx: { idColumn: boolean; titleColumn: boolean; usesImages: boolean; classes: number; paths: PathTree | null; cutoffs: ConfidenceCutoffs },
): CheckOutcome[] {
  const th = opts.thresholds;
  const rateCheck = rateOutcome;
  const countCheck = (name: CheckName, flag: string, max: number, count: number, findings: Finding[], checked: number, summary: string): CheckOutcome => {
    const status = count > max ? 'fail' : 'pass';
    return {
      name,
      status,
      skipReason: null,
      count,
      rows: findings.length,
      checked,
      rate: checked > 0 ? findings.length / checked : 0,
      threshold: { flag, on: 'count', max },
      summary,
      message: `${summary}; ${status === 'fail' ? 'over' : 'within'} ${flag} ${max}`,
      findings,
    };
  };
  const skipped = (name: CheckName, flag: string, on: 'rate' | 'count', max: number, reason: string): CheckOutcome => ({
    name,
    status: 'skip',
    skipReason: reason,
    count: 0,
    rows: 0,
    checked: 0,
    rate: 0,
    threshold: { flag, on, max },
    summary: `skipped: ${reason}`,
    message: `skipped: ${reason}`,
    findings: [],
  });
  const noLabels = 'no --label-column given';

  const { disagreement: sure, lowConfidence: low } = ctx.cutoffs;
  let disagreement: CheckOutcome;
  if (!opts.labelColumn) disagreement = skipped('disagreement', '--max-disagreement-rate', 'rate', th.maxDisagreementRate, noLabels);
  else if (!ctx.paths) {
    disagreement = rateCheck('disagreement', '--max-disagreement-rate', th.maxDisagreementRate, t.disagreement, t.labelled, (n, of, r) =>
      sure.source === 'flag-precision'
        ? flagSummary('', n, of, r, sure, 'category')
        : `${n} of ${plural(of, 'labelled row', 'labelled rows')} (${r}) ${n === 1 ? 'disagrees' : 'disagree'} with a prediction scored ≥ ${cutoffValue(sure)} (${sure.from})`,
    );
  } else disagreement = pathDisagreementCheck(t, opts, ctx.paths, sure, rateCheck);
  disagreement.cutoff = sure;

  const lowConfidence = rateCheck('low_confidence', '--max-low-confidence-rate', th.maxLowConfidenceRate, t.lowConfidence, t.predicted, (n, of, r) =>
    low.source === 'target'
      ? `${n} of ${plural(of, 'predicted row', 'predicted rows')} (${r}) ${n === 1 ? 'is' : 'are'} for review: ${ctx.paths ? 'full path not reached or ' : ''}scored below ${cutoffValue(low)} (${low.from})`
      : `${n} of ${plural(of, 'predicted row', 'predicted rows')} (${r}) ${n === 1 ? 'scores' : 'score'} below ${cutoffValue(low)} (${low.from})`,
  );
  lowConfidence.cutoff = low;

  let duplicateId: CheckOutcome;
  if (ctx.idColumn) {
    const duplicates = [...t.repeated].map(([id, lines]) => ({ id, lines })).sort((a, b) => a.lines[0] - b.lines[0]);
    const rows = duplicates.flatMap((d) =>
      d.lines.map((line) => ({
        line,
        id: d.id,
        detail: `id ${quote(d.id)} is also on line${d.lines.length > 2 ? 's' : ''} ${d.lines.filter((l) => l !== line).join(', ')}`,
      })),
    );
    duplicateId = {
      ...countCheck('duplicate_id', '--max-duplicate-ids', th.maxDuplicateIds, duplicates.length, rows, t.rows,
        `${plural(duplicates.length, 'id appears', 'ids appear')} more than once (${plural(rows.length, 'row', 'rows')})`),
      duplicates,
    };
  } else {
    duplicateId = skipped('duplicate_id', '--max-duplicate-ids', 'count', th.maxDuplicateIds, `the catalog has no '${opts.columns.id}' column (ids are row numbers)`);
  }

  const emptyTitle = ctx.titleColumn
    ? countCheck('empty_title', '--max-empty-titles', th.maxEmptyTitles, t.emptyTitle.length, t.emptyTitle, t.notRagged,
        `${t.emptyTitle.length} of ${plural(t.notRagged, 'row', 'rows')} (${pct(t.notRagged > 0 ? t.emptyTitle.length / t.notRagged : 0)}) ${t.emptyTitle.length === 1 ? 'has' : 'have'} an empty title`)
    : skipped('empty_title', '--max-empty-titles', 'count', th.maxEmptyTitles, `the catalog has no '${opts.columns.title}' column`);

  const image = ctx.usesImages
    ? rateCheck('image_problem', '--max-image-problem-rate', th.maxImageProblemRate, t.imageProblem, t.notRagged, (n, of, r) =>
        `${n} of ${plural(of, 'row', 'rows')} (${r}) ${n === 1 ? 'has' : 'have'} a missing or unreadable image`,
      )
    : skipped('image_problem', '--max-image-problem-rate', 'rate', th.maxImageProblemRate, 'the bundle does not use images');

  let unknownCategory: CheckOutcome;
  if (opts.labelColumn) {
    const categories = [...t.unknown].map(([category, u]) => ({
      category,
      count: u.rows.length,
      firstLine: u.rows[0].line,
      firstId: u.rows[0].id,
      ...(ctx.paths ? { knownAncestor: u.knownAncestor ?? null } : {}),
    }));
    const rows = [...t.unknown.values()].flatMap((u) => u.rows).sort((a, b) => a.line - b.line);
    const summary = ctx.paths
      ? `${plural(categories.length, 'stored path is', 'stored paths are')} not in the model's tree of ${ctx.classes} classes (${plural(rows.length, 'row', 'rows')})`
      : `${plural(categories.length, 'stored category is', 'stored categories are')} not among the model's ${ctx.classes} classes (${plural(rows.length, 'row', 'rows')})`;
    unknownCategory = {
      ...countCheck('unknown_category', '--max-unknown-categories', th.maxUnknownCategories, categories.length, rows, t.labelled, summary),
      categories,
    };
  } else {
    unknownCategory = skipped('unknown_category', '--max-unknown-categories', 'count', th.maxUnknownCategories, noLabels);
  }

  const predictionError = rateCheck('prediction_error', '--max-error-rate', th.maxErrorRate, t.predictionError, t.rows, (n, of, r) =>
    `${n} of ${plural(of, 'row', 'rows')} (${r}) could not be predicted`,
  );

  return [disagreement, lowConfidence, duplicateId, emptyTitle, image, unknownCategory, predictionError];
}

/**
 * The disagreement check of a path bundle: the overall rate against --max-disagreement-rate as for flat classes, and
 * each level's rate against its own limit where one is set; every limit must hold. Findings are listed worst first
 * (top level first), in line order within a level.
 */
function pathDisagreementCheck(
  t: Tally,
  opts: CheckOptions,
  tree: PathTree,
  sure: ConfidenceCutoff,
  rateCheck: (name: CheckName, flag: string, max: number, findings: Finding[], checked: number, words: (n: number, of: number, rate: string) => string) => CheckOutcome,
): CheckOutcome {
  const limits = new Map((opts.thresholds.maxDisagreementRateByLevel ?? []).map((l) => [l.level, l.share]));
  const findings = [...t.disagreement].sort((a, b) => a.level! - b.level! || a.line - b.line);
  const levels: LevelOutcome[] = Array.from({ length: tree.depth }, (_, d) => {
    const count = findings.filter((f) => f.level === d + 1).length;
    const rate = t.labelled > 0 ? count / t.labelled : 0;
    const max = limits.get(d + 1) ?? null;
    return { level: d + 1, count, rate, max, status: max !== null && rate > max ? 'fail' : 'pass' };
  });
  const prediction =
    sure.source === 'target' ? `an accepted prediction (full path scored ≥ ${cutoffValue(sure)}, ${sure.from})` : `a prediction scored ≥ ${cutoffValue(sure)} (${sure.from})`;
  const base = rateCheck('disagreement', '--max-disagreement-rate', opts.thresholds.maxDisagreementRate, findings, t.labelled, (n, of, r) =>
    `${n} of ${plural(of, 'labelled row', 'labelled rows')} (${r}) ${n === 1 ? 'disagrees' : 'disagree'} with ${prediction} at the highest level where they differ (${levels.map((l) => `level ${l.level}: ${l.count}`).join(', ')})`,
  );
  const limited = levels.filter((l) => l.max !== null);
  const status = base.status === 'fail' || limited.some((l) => l.status === 'fail') ? 'fail' : 'pass';
  const perLevel = limited.map((l) => `level ${l.level} ${pct(l.rate)} ${l.status === 'fail' ? 'over' : 'within'} ${pct(l.max!)}`);
  const message = perLevel.length > 0 ? `${base.message}; --max-disagreement-rate-level: ${perLevel.join(', ')}` : base.message;
  return { ...base, status, message, levels };
}

/**
 * The rows to quote for a check, in order: its findings, except unknown_category, which quotes each category once
 * (at its first row) so one big unknown category cannot hide the others.
 */
export function listedFindings(check: CheckOutcome): Finding[] {
  if (check.name === 'unknown_category' && check.categories) {
    return check.categories.map((c) => ({
      line: c.firstLine,
      id: c.firstId,
      detail:
        c.knownAncestor === undefined
          ? `stored category ${quote(c.category)} is unknown to the model (${plural(c.count, 'row', 'rows')}, first on this line)`
          : `stored path ${quote(c.category)} is not in the model's tree (${c.knownAncestor === null ? 'not even its top level' : `known down to ${quote(c.knownAncestor)}`}; ${plural(c.count, 'row', 'rows')}, first on this line)`,
    }));
  }
  return check.findings;
}

export function formatFinding(f: Finding): string {
  return `line ${f.line}: id ${f.id}: ${f.detail}`;
}

/** What --json writes: the settings, every check's figures and every offending row. */
export function checkJson(result: CheckResult, opts: Pick<CheckOptions, 'labelColumn' | 'thresholds' | 'onImageError' | 'toolVersion'>) {
  // The fixed scores in force (null where a target precision set the check instead: its cutoff says so).
  const score = (name: CheckName) => {
    const c = result.checks.find((x) => x.name === name)?.cutoff;
    return c && c.source !== 'target' && c.source !== 'flag-precision' ? c.score : null;
  };
  const flags = result.checks.find((x) => x.name === 'disagreement')?.cutoff?.flags;
  return {
    tool: 'categorize check',
    toolVersion: opts.toolVersion,
    createdAt: result.startedAt,
    model: result.model,
    input: result.inputPath ?? 'stdin',
    settings: {
      labelColumn: opts.labelColumn ?? null,
      minConfidence: score('disagreement'),
      lowConfidence: score('low_confidence'),
      // Only when the category's disagreement was judged by it, so other reports keep their shape.
      ...(flags ? { flagPrecision: flags.precision } : {}),
      targetPrecision: result.decision,
      thresholds: opts.thresholds,
      onImageError: opts.onImageError,
    },
    // Path bundles only, so a flat bundle's report stays as it was.
    ...(result.paths ? { paths: result.paths } : {}),
    rows: result.rows,
    labelled: result.labelled,
    usesImages: result.usesImages,
    passed: result.failed.length === 0,
    failed: result.failed,
    elapsedSeconds: result.elapsedSeconds,
    checks: result.checks,
  };
}

/** One JUnit test case per check; a failure quotes up to maxListed offending rows. */
export function checkJUnit(result: CheckResult, maxListed: number): string {
  const cases: JUnitCase[] = result.checks.map((c) => {
    const base = { name: checkLabel(c), classname: 'categorize.check', time: 0 };
    if (c.status === 'skip') return { ...base, skipped: { message: c.skipReason ?? 'skipped' } };
    if (c.status === 'pass') return { ...base, systemOut: c.message };
    const listed = listedFindings(c);
    const lines = [c.message, ...listed.slice(0, maxListed).map(formatFinding)];
    if (listed.length > maxListed) lines.push(`… and ${listed.length - maxListed} more (all of them in --json)`);
    return { ...base, failure: { message: c.message, type: 'threshold', text: lines.join('\n') } };
  });
  return renderJUnit([
    {
      name: 'categorize check',
      // The checks share one pass over the catalog, so the time belongs to the suite, not to any one case.
      time: result.elapsedSeconds,
      timestamp: result.startedAt,
      properties: [
        ['model', result.model],
        ['input', result.inputPath ?? 'stdin'],
        ['rows', String(result.rows)],
        // Only when a check judged by it, so a report without targets keeps its properties.
        ...(result.checks.some((c) => c.cutoff?.source === 'target') && result.decision
          ? [
              ['target_precision', String(result.decision.target)] as [string, string],
              ['decision_threshold', String(result.decision.threshold)] as [string, string],
            ]
          : []),
      ],
      cases,
    },
  ]);
}

/**
 * GitHub Actions workflow commands: a warning on the file's line for each offending row (failing checks first, at
 * most maxAnnotations, since GitHub shows only so many), a notice saying how many were left out, and an error per
 * failing check.
 */
export function checkAnnotations(result: CheckResult, opts: { file: string; maxAnnotations: number }): string[] {
  const ran = result.checks.filter((c) => c.status !== 'skip');
  const ordered = [...ran.filter((c) => c.status === 'fail'), ...ran.filter((c) => c.status === 'pass')];
  const all = ordered.flatMap((c) => c.findings.map((f) => ({ check: checkLabel(c), f })));
  // A confidence check's title says what made the row count, since that moves with the bundle's target.
  const title = new Map(ran.map((c) => [checkLabel(c), c.cutoff ? `${checkLabel(c)}: ${c.cutoff.criterion}` : checkLabel(c)]));
  const lines = all.slice(0, opts.maxAnnotations).map(({ check, f }) =>
    formatAnnotation({ level: 'warning', file: opts.file, line: f.line, title: title.get(check), message: `id ${f.id}: ${f.detail}` }),
  );
  const leftOut = all.length - lines.length;
  if (leftOut > 0) {
    lines.push(
      formatAnnotation({
        level: 'notice',
        title: 'categorize check',
        message: `${plural(leftOut, 'more finding was', 'more findings were')} not annotated (--max-annotations ${opts.maxAnnotations}); --json lists them all`,
      }),
    );
  }
  for (const c of result.checks.filter((c) => c.status === 'fail')) {
    lines.push(formatAnnotation({ level: 'error', title: 'categorize check', message: `${checkLabel(c)} failed: ${c.message}` }));
  }
  return lines;
}
