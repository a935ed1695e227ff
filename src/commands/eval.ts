// `categorize eval`: run a bundle over a labelled catalog (run's own predictor) and judge it against the labels.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import { labelledRows, resolveColumn, type CatalogRow } from '../io/catalog-reader.js';
import { topClasses } from '../head/classifier.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { openBundleSession, type BundleRunOptions } from '../pipeline/bundle-session.js';
import { silentProgress, type ProgressReporter } from '../pipeline/progress.js';
import { computeMetrics, mostConfusedPairs, type EvalMetrics } from '../report/metrics.js';
import { formatAblationTable, formatAttributeTable, formatCalibrationTable, formatMetricsTable, formatPathTable } from '../report/table.js';
import { PathMetricsAccumulator, type PathMetrics } from '../report/path-metrics.js';
import { Taxonomy, canonicalPath } from '../head/taxonomy.js';
import { UsageError } from '../errors.js';
import { renderEvalReport, type LowConfidenceRow } from '../report/html-report.js';
import { thumbnailForCell, type Thumbnail } from '../report/thumbnail.js';
import { CalibrationReportAccumulator, planTargets, precisionGateFailures, type CalibrationReport, type PrecisionGate, type TargetPlan } from '../report/calibration-report.js';

export interface EvalOptions extends BundleRunOptions {
  labelColumn: string;
  json?: string;
  report?: string;
  minAccuracy?: number;
  minMacroF1?: number;
  /** Path bundles: exit 3 when hierarchical F1 (at the answer threshold) is below this. */
  minHf?: number;
  /** Path bundles: exit 3 when accuracy at a level is below its minimum (level 1 = top). */
  minLevelAccuracy?: { level: number; share: number }[];
  /** Attribute gates (--min-accuracy / --min-macro-f1 NAME:X): exit 3 when the attribute's figure is below its minimum. */
  attributeGates?: AttributeGate[];
  /** Exit 3 when, at a target's threshold (resolveDecision: run --target-precision's), the accepted rows' precision is below its minimum. */
  minPrecisionAt?: PrecisionGate[];
  /** Also score each modality head alone (text-only, image-only) on the same embeddings. */
  ablation: boolean;
  /** Blank this share of titles (rows picked by a hash of id and seed): how the bundle copes with missing titles. */
  blankTitles: number;
  seed: number;
  toolVersion: string;
  color: boolean;
  progress?: ProgressReporter;
}

export interface EvalResult {
  /** For a path bundle, over the most probable full path of each row (exact-path accuracy is `accuracy`). */
  metrics: EvalMetrics;
  /** A path bundle's figures by level, hierarchical, and as --min-path-score moves; null for flat bundles. */
  paths: PathMetrics | null;
  /** Rows skipped for an empty label. */
  emptyLabel: number;
  table: string;
  /** With --ablation and a bundle of per-modality heads: each head alone, then the fused bundle. */
  ablation: AblationVariant[] | null;
  /** Rows whose title --blank-titles blanked. */
  blankedTitles: number;
  /** Calibration figures (before/after for a calibrated bundle), the precision–coverage curve and each target's decisions. */
  calibration: CalibrationReport;
  /** The bundle's attributes whose column the catalog has, side by side with the category. */
  attributes: AttributeEval[];
  /** One line per failed quality gate (--min-accuracy, --min-macro-f1, --min-precision-at …); empty when all pass. */
  gateFailures: string[];
}

/** A quality gate on one attribute's figure (eval --min-macro-f1 colour:0.6). */
export interface AttributeGate {
  attribute: string;
  metric: 'accuracy' | 'macroF1';
  min: number;
}

/** One attribute judged against its column: rows with a value, its metrics, and with --ablation each head alone. */
export interface AttributeEval {
  name: string;
  /** Rows skipped for an empty value in the attribute's column. */
  emptyLabel: number;
  metrics: EvalMetrics;
  ablation: AblationVariant[] | null;
}

export interface AblationVariant {
  /** 'fused', or a head's name ('text', 'image'). */
  name: string;
  /** Rows this variant could predict, which its metrics are over (a head: the rows that have its modality). */
  predicted: number;
  metrics: EvalMetrics;
}

/** Whether --blank-titles picks this row: a uniform draw from the row's id and the seed. */
export function blanksTitle(id: string, share: number, seed: number): boolean {
  if (share <= 0) return false;
  const h = crypto.createHash('sha256').update(`${seed}\n${id}`).digest();
  return h.readUInt32BE(0) / 2 ** 32 < share;
}

const EXAMPLES_PER_PAIR = 5;
const PAIRS_IN_REPORT = 10;
const LOW_CONFIDENCE_IN_REPORT = 10;

/** Indices of the `n` rows with the lowest score (rows without a prediction left out), lowest first; ties in input order. */
export function leastConfident(rows: readonly { score: number | null }[], yPred: readonly (string | null)[], n: number): number[] {
  return rows
    .flatMap((r, i) => (r.score !== null && yPred[i] !== null ? [i] : []))
    .sort((a, b) => rows[a].score! - rows[b].score! || a - b)
    .slice(0, n);
}

/** Each distinct row's thumbnail (null when it has none), read `concurrency` at a time. */
async function thumbnails(
  rows: { index: number; cell: string }[],
  opts: { baseDir: string; fetch: EvalOptions['fetch']; maxPixels: number; concurrency: number },
): Promise<Map<number, Thumbnail | null>> {
  const limit = pLimit(Math.max(1, opts.concurrency));
  const unique = [...new Map(rows.map((r) => [r.index, r.cell])).entries()];
  const made = await Promise.all(unique.map(([index, cell]) => limit(async () => [index, await thumbnailForCell(cell, opts)] as const)));
  return new Map(made);
}

export async function evalCommand(opts: EvalOptions): Promise<EvalResult> {
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? silentProgress;
  const { bundle, catalog, predictor, cache, close, attributes: predicted } = await openBundleSession(opts, { extra: [opts.labelColumn], extraFlags: { [opts.labelColumn]: '--label-column' }, attributeColumns: true, topN: 3, topKTags: 0 });
  // The attributes judged: those predicted whose column the catalog has; a gate on any other is a usage error.
  const judged = predicted.filter((a) => resolveColumn(catalog.header, a.name) >= 0);
  for (const a of predicted.filter((a) => !judged.includes(a))) log(`attribute ${a.name}: the catalog has no '${a.name}' column, not judged`);
  const badGate = (opts.attributeGates ?? []).find((g) => !judged.some((a) => a.name === g.attribute));
  if (badGate) {
    await close();
    const known = bundle.attributes.map((a) => a.name);
    throw new UsageError(`--min-${badGate.metric === 'macroF1' ? 'macro-f1' : 'accuracy'} ${badGate.attribute}:${badGate.min}: ${known.includes(badGate.attribute) ? `the catalog has no '${badGate.attribute}' column (or --attributes left it out)` : `the bundle has no attribute '${badGate.attribute}'${known.length ? ` (it has ${known.join(', ')})` : ''}`}`, 'usage');
  }
  const attributeRows = judged.map((a) => ({ a, yTrue: [] as string[], yPred: [] as (string | null)[], ranked: [] as string[][], heads: [] as Record<string, Float32Array | null>[], emptyLabel: 0 }));
  const pathSpec = bundle.manifest.paths;
  if (!pathSpec && (opts.minHf !== undefined || opts.minLevelAccuracy?.length)) {
    await close();
    throw new UsageError('--min-hf and --min-level-accuracy judge category paths: this bundle was trained on flat labels', 'usage');
  }
  // The targets' thresholds before any row runs: a gate the bundle cannot serve fails now, not after the catalog.
  const calibrationSpec = bundle.manifest.calibration;
  let plans: TargetPlan[];
  try {
    plans = planTargets(calibrationSpec, opts.minPrecisionAt ?? [], opts.model);
  } catch (err) {
    await close();
    throw err;
  }
  const calibrationScorer = new CalibrationReportAccumulator(bundle.manifest.classes, Boolean(pathSpec), calibrationSpec !== undefined);
  // A path bundle's labels are read as its training labels were (split on its separator, levels trimmed); its
  // flat figures are over each row's most probable full path, the path figures over its answers.
  const pathScorer = pathSpec ? new PathMetricsAccumulator(new Taxonomy(bundle.manifest.classes), opts.minPathScore ?? pathSpec.minPathScore) : null;
  const labelOf = (row: CatalogRow): string => (pathSpec ? canonicalPath(row.extra[opts.labelColumn], pathSpec.separator) : row.extra[opts.labelColumn].trim());
  const yTrue: string[] = [];
  const yPred: (string | null)[] = [];
  const ranked: string[][] = [];
  const rowInfo: { id: string; title: string; score: number | null; image: string }[] = [];
  const headProbs: Record<string, Float32Array | null>[] = [];
  let emptyLabel = 0;
  let blankedTitles = 0;
  try {
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    let errors = 0;
    await orderedMap(
      blankTitles(labelledRows(catalog.rows, opts.labelColumn, () => emptyLabel++), opts, () => blankedTitles++),
      async (row) => ({ row, p: await predictor.predict(row) }),
      ({ row, p }) => {
        const label = labelOf(row);
        yTrue.push(label);
        yPred.push(pathScorer ? (p.record.path?.full_path ?? null) : p.record.category);
        pathScorer?.add(label, p.probs);
        calibrationScorer.add(label, p.record, p.probs, p.rawProbs());
        ranked.push(p.record.top_categories.map((t) => t.category));
        // A path bundle's rows are judged on their most probable full path, so that is the score shown beside them.
        const score = p.record.status !== 'ok' ? null : p.record.path ? p.record.path.full_path_score : p.record.score;
        rowInfo.push({ id: row.id, title: row.title, score, image: row.image });
        if (opts.ablation) headProbs.push(p.heads);
        for (const at of attributeRows) {
          const label = row.extra[at.a.name]!.trim();
          if (label === '') {
            at.emptyLabel++;
            continue;
          }
          const r = p.record.attributes?.[at.a.name];
          at.yTrue.push(label);
          at.yPred.push(r?.value ?? null);
          at.ranked.push((r?.top ?? []).map((t) => t.value));
          if (opts.ablation) at.heads.push(p.attributes[at.a.name]?.heads ?? {});
        }
        if (p.record.status === 'error') errors++;
        progress.update({ rows: yTrue.length, errors, warnings: 0, bytesRead: catalog.bytesRead(), totalBytes });
      },
      { window: opts.window, onInputEnd: () => predictor.flush() },
    );
    progress.stop();
    const c = cache?.stats;
    if (c) log(`embedding cache: ${c.hits} hits, ${c.misses} misses`);
  } finally {
    progress.stop();
    await close();
  }
  const metrics = computeMetrics({ yTrue, yPred, ranked, modelClasses: bundle.manifest.classes });
  const paths = pathScorer?.result() ?? null;
  const calibration = calibrationScorer.result(calibrationSpec, plans);
  if (emptyLabel > 0) log(`${emptyLabel} rows without a label were skipped`);
  if (metrics.unseenLabels.length > 0) {
    log(`labels the bundle does not know (counted as errors): ${metrics.unseenLabels.map((u) => `${u.label} (${u.count})`).join(', ')}`);
  }
  if (blankedTitles > 0) log(`--blank-titles ${opts.blankTitles}: blanked ${blankedTitles} of ${yTrue.length} titles`);
  const classes = bundle.manifest.classes;
  let ablation: AblationVariant[] | null = null;
  if (opts.ablation) {
    const names = bundle.heads.map((h) => h.name);
    if (names.length < 2) log(`--ablation: this bundle has one head (${names[0]}), nothing to take apart; train with text and image features and --fusion late`);
    ablation = ablationVariants(names, headProbs, yTrue, yPred, classes, metrics);
  }
  const attributes: AttributeEval[] = attributeRows.map((at) => {
    const m = computeMetrics({ yTrue: at.yTrue, yPred: at.yPred, ranked: at.ranked, modelClasses: at.a.classes });
    if (at.emptyLabel > 0) log(`attribute ${at.a.name}: ${at.emptyLabel} rows without a value were skipped`);
    if (m.unseenLabels.length > 0) log(`attribute ${at.a.name}: values the bundle does not know (counted as errors): ${m.unseenLabels.map((u) => `${u.label} (${u.count})`).join(', ')}`);
    const ab = opts.ablation ? ablationVariants(at.a.heads.map((h) => h.name), at.heads, at.yTrue, at.yPred, at.a.classes, m) : null;
    return { name: at.a.name, emptyLabel: at.emptyLabel, metrics: m, ablation: ab };
  });
  const attributeFusion = (name: string) => {
    const a = judged.find((x) => x.name === name)!;
    const spec = bundle.manifest.attributes?.find((x) => x.name === name);
    return { heads: a.heads.map((h) => ({ name: h.name, weight: h.weight, ...(h.route ? { route: h.route } : {}) })), selection: spec?.fusion.selection ?? null };
  };
  const pairRows = mostConfusedPairs(metrics, PAIRS_IN_REPORT).map((pair) => ({
    pair,
    rows: rowInfo.flatMap((_, i) => (yTrue[i] === pair.trueLabel && yPred[i] === pair.predLabel ? [i] : [])).slice(0, EXAMPLES_PER_PAIR),
  }));
  const example = (i: number) => ({ id: rowInfo[i].id, title: rowInfo[i].title, score: rowInfo[i].score });
  const pairs = pairRows.map(({ pair, rows }) => ({ ...pair, examples: rows.map(example) }));
  const lowRows = leastConfident(rowInfo, yPred, LOW_CONFIDENCE_IN_REPORT);
  const lowConfidence: LowConfidenceRow[] = lowRows.map((i) => ({ ...example(i), score: rowInfo[i].score!, trueLabel: yTrue[i], predLabel: yPred[i]! }));
  const meta = { model: path.resolve(opts.model), input: opts.input === '-' ? 'stdin' : path.resolve(opts.input), createdAt: new Date().toISOString(), toolVersion: opts.toolVersion };
  const fusion = bundle.manifest.fusion ? { heads: bundle.heads.map((h) => ({ name: h.name, weight: h.weight, ...(h.route ? { route: h.route } : {}), ...(h.blockWeight !== undefined ? { blockWeight: h.blockWeight } : {}) })), selection: bundle.manifest.fusion.selection ?? null } : null;
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ ...meta, emptyLabel, blankedTitles, metrics, paths, calibration, ablation, fusion, mostConfused: pairs, lowConfidence, attributes: attributes.map((a) => ({ ...a, fusion: attributeFusion(a.name) })) }, null, 2) + '\n');
  if (opts.report) {
    // Thumbnails only for the rows the report shows, read again after the run (a few dozen): the report is one file.
    const thumbs = await thumbnails(
      [...pairRows.flatMap((p) => p.rows), ...lowRows].map((i) => ({ index: i, cell: rowInfo[i].image })),
      { baseDir: opts.imageRoot ?? catalog.baseDir, fetch: opts.fetch, maxPixels: opts.maxPixels, concurrency: opts.concurrency },
    );
    const confusedExamples = pairRows.map(({ pair, rows }) => ({ ...pair, examples: rows.map((i) => ({ ...example(i), thumbnail: thumbs.get(i) ?? null })) }));
    const low = lowConfidence.map((r, k) => ({ ...r, thumbnail: thumbs.get(lowRows[k]) ?? null }));
    fs.writeFileSync(opts.report, renderEvalReport({ metrics, paths, calibration, confusedExamples, lowConfidence: low, meta, ablation, fusion, attributes: attributes.map((a) => ({ ...a, fusion: attributeFusion(a.name) })) }));
  }
  const gateFailures: string[] = [];
  if (opts.minAccuracy !== undefined && metrics.accuracy < opts.minAccuracy) {
    gateFailures.push(`accuracy ${metrics.accuracy.toFixed(4)} is below --min-accuracy ${opts.minAccuracy}`);
  }
  if (opts.minMacroF1 !== undefined && metrics.macroF1 < opts.minMacroF1) {
    gateFailures.push(`macro-F1 ${metrics.macroF1.toFixed(4)} is below --min-macro-f1 ${opts.minMacroF1}`);
  }
  if (paths && opts.minHf !== undefined && paths.at.f1 < opts.minHf) {
    gateFailures.push(`hierarchical F1 ${paths.at.f1.toFixed(4)} (--min-path-score ${paths.minPathScore}) is below --min-hf ${opts.minHf}`);
  }
  for (const { level, share: min } of opts.minLevelAccuracy ?? []) {
    const at = paths?.levels.find((l) => l.level === level);
    if (!at) gateFailures.push(`--min-level-accuracy ${level}:${min}: no labelled row has a path ${level} levels deep`);
    else if (at.accuracy < min) gateFailures.push(`level ${level} accuracy ${at.accuracy.toFixed(4)} is below --min-level-accuracy ${level}:${min}`);
  }
  gateFailures.push(...precisionGateFailures(calibration));
  for (const g of opts.attributeGates ?? []) {
    const m = attributes.find((a) => a.name === g.attribute)!.metrics;
    const value = g.metric === 'accuracy' ? m.accuracy : m.macroF1;
    const flag = g.metric === 'accuracy' ? '--min-accuracy' : '--min-macro-f1';
    if (value < g.min) gateFailures.push(`${g.attribute} ${g.metric === 'accuracy' ? 'accuracy' : 'macro-F1'} ${value.toFixed(4)} is below ${flag} ${g.attribute}:${g.min}`);
  }
  const table =
    formatMetricsTable(metrics, { color: opts.color, pathLabels: paths !== null }) +
    (paths ? '\n\n' + formatPathTable(paths) : '') +
    '\n\n' + formatCalibrationTable(calibration) +
    (ablation && ablation.length > 1 ? '\n\n' + formatAblationTable(ablation) : '') +
    (attributes.length > 0 ? '\n\n' + formatAttributeTable(metrics, attributes) : '') +
    attributes.map((a) => (a.ablation && a.ablation.length > 1 ? `\n\nattribute ${a.name}: ` + formatAblationTable(a.ablation) : '')).join('');
  return { metrics, paths, emptyLabel, ablation, blankedTitles, calibration, table, gateFailures, attributes };
}

/** --ablation: each head alone, on the rows that have its modality (it cannot see the others at all), then fused. */
function ablationVariants(names: string[], headProbs: Record<string, Float32Array | null>[], yTrue: string[], yPred: (string | null)[], classes: string[], fused: EvalMetrics): AblationVariant[] {
  return [
    ...(names.length < 2 ? [] : names).map((name) => {
      const idx = headProbs.flatMap((h, i) => (h[name] ? [i] : []));
      const top = idx.map((i) => topClasses(headProbs[i]![name]!, classes, 3).map((t) => t.category));
      const m = computeMetrics({ yTrue: idx.map((i) => yTrue[i]!), yPred: top.map((t) => t[0]!), ranked: top, modelClasses: classes });
      return { name, predicted: idx.length, metrics: m };
    }),
    { name: 'fused', predicted: yPred.filter((p) => p !== null).length, metrics: fused },
  ];
}

/** Rows with the title blanked for the picked share (--blank-titles), counted through `onBlank`. */
async function* blankTitles(rows: AsyncIterable<CatalogRow>, opts: Pick<EvalOptions, 'blankTitles' | 'seed'>, onBlank: () => void): AsyncIterable<CatalogRow> {
  for await (const row of rows) {
    if (row.title !== '' && blanksTitle(row.id, opts.blankTitles, opts.seed)) {
      onBlank();
      yield { ...row, title: '' };
    } else yield row;
  }
}
