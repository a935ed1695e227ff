// `categorize eval`: run a bundle over a labelled catalog (run's own predictor) and judge it against the labels.
import fs from 'node:fs';
import path from 'node:path';
import { labelledRows } from '../io/catalog-reader.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { openBundleSession, type BundleRunOptions } from '../pipeline/bundle-session.js';
import { silentProgress, type ProgressReporter } from '../pipeline/progress.js';
import { computeMetrics, mostConfusedPairs, type EvalMetrics } from '../report/metrics.js';
import { formatMetricsTable } from '../report/table.js';
import { renderEvalReport } from '../report/html-report.js';

export interface EvalOptions extends BundleRunOptions {
  labelColumn: string;
  json?: string;
  report?: string;
  minAccuracy?: number;
  minMacroF1?: number;
  toolVersion: string;
  color: boolean;
  progress?: ProgressReporter;
}

export interface EvalResult {
  metrics: EvalMetrics;
  /** Rows skipped for an empty label. */
  emptyLabel: number;
  table: string;
  /** One line per failed quality gate (--min-accuracy, --min-macro-f1); empty when all pass. */
  gateFailures: string[];
}

const EXAMPLES_PER_PAIR = 5;
const PAIRS_IN_REPORT = 10;

export async function evalCommand(opts: EvalOptions): Promise<EvalResult> {
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? silentProgress;
  const { bundle, catalog, predictor, cache, close } = await openBundleSession(opts, { extra: [opts.labelColumn], topN: 3, topKTags: 0 });
  const yTrue: string[] = [];
  const yPred: (string | null)[] = [];
  const ranked: string[][] = [];
  const rowInfo: { id: string; title: string; score: number | null }[] = [];
  let emptyLabel = 0;
  try {
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    let errors = 0;
    await orderedMap(
      labelledRows(catalog.rows, opts.labelColumn, () => emptyLabel++),
      async (row) => ({ row, p: await predictor.predict(row) }),
      ({ row, p }) => {
        yTrue.push(row.extra[opts.labelColumn].trim());
        yPred.push(p.record.category);
        ranked.push(p.record.top_categories.map((t) => t.category));
        rowInfo.push({ id: row.id, title: row.title, score: p.record.score });
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
  if (emptyLabel > 0) log(`${emptyLabel} rows without a label were skipped`);
  if (metrics.unseenLabels.length > 0) {
    log(`labels the bundle does not know (counted as errors): ${metrics.unseenLabels.map((u) => `${u.label} (${u.count})`).join(', ')}`);
  }
  const pairs = mostConfusedPairs(metrics, PAIRS_IN_REPORT).map((pair) => ({
    ...pair,
    examples: rowInfo.filter((_, i) => yTrue[i] === pair.trueLabel && yPred[i] === pair.predLabel).slice(0, EXAMPLES_PER_PAIR),
  }));
  const meta = { model: path.resolve(opts.model), input: opts.input === '-' ? 'stdin' : path.resolve(opts.input), createdAt: new Date().toISOString(), toolVersion: opts.toolVersion };
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ ...meta, emptyLabel, metrics, mostConfused: pairs }, null, 2) + '\n');
  if (opts.report) fs.writeFileSync(opts.report, renderEvalReport({ metrics, confusedExamples: pairs, meta }));
  const gateFailures: string[] = [];
  if (opts.minAccuracy !== undefined && metrics.accuracy < opts.minAccuracy) {
    gateFailures.push(`accuracy ${metrics.accuracy.toFixed(4)} is below --min-accuracy ${opts.minAccuracy}`);
  }
  if (opts.minMacroF1 !== undefined && metrics.macroF1 < opts.minMacroF1) {
    gateFailures.push(`macro-F1 ${metrics.macroF1.toFixed(4)} is below --min-macro-f1 ${opts.minMacroF1}`);
  }
  return { metrics, emptyLabel, table: formatMetricsTable(metrics, { color: opts.color }), gateFailures };
}
