// `categorize run`: stream a catalog through the bundle's encoders and head, one prediction record per input row.
import fs from 'node:fs';
import path from 'node:path';
import type { CatalogRow } from '../io/catalog-reader.js';
import { PredictionWriter, type OutputFormat } from '../io/prediction-writer.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { cacheSummary, openBundleSession, selectAttributes, type BundleRunOptions } from '../pipeline/bundle-session.js';
import { silentProgress, type ProgressReporter } from '../pipeline/progress.js';
import { reasonCode, UsageError } from '../errors.js';
import { readExistingOutput, type ExistingOutput } from '../io/output-resume.js';
import { csvHeader, type RecordShape } from '../io/prediction-writer.js';
import { shardRows, skipDone, untilAborted } from '../pipeline/row-stream.js';
import type { Shard } from '../pipeline/shard.js';
import type { OpenEncoders } from '../pipeline/encoders.js';

export interface RunOptions extends BundleRunOptions {
  output: string;
  format: OutputFormat;
  /** Categories listed per record. */
  topN: number;
  /** Tags per record. */
  topKTags: number;
  keepColumns: string[];
  maxErrorRate: number;
  /** Continue an output an interrupted run left: keep its complete records, skip those rows, cut a torn tail. */
  resume: boolean;
  /** Overwrite an existing output (without it and without resume, an existing output is an error). */
  force: boolean;
  /** Also write the rows decided `review` here (--review-output; needs a target precision), same format. */
  reviewOutput?: string;
  /** Process only the rows of this shard. */
  shard?: Shard;
  /** Aborted on SIGINT/SIGTERM: no new row starts; rows in flight finish and are written; the output stays resumable. */
  signal?: AbortSignal;
  progress?: ProgressReporter;
  stdout?: NodeJS.WritableStream;
}

export interface RunSummary {
  input: string;
  output: string;
  /** Records in the output now (kept from an earlier run + written by this one). */
  rows: number;
  /** Records kept from the interrupted run that --resume continued (0 otherwise). */
  resumed: number;
  /** Bytes of a torn last record that --resume cut off. */
  tornBytes: number;
  /** The signal that stopped the run early (output complete up to there, resumable), or null. */
  interrupted: string | null;
  shard: string | null;
  ok: number;
  errors: number;
  /** Rows that carry at least one warning. */
  warned: number;
  /** Count per error/warning code. */
  reasons: Record<string, number>;
  /** With a target precision: the target, its threshold, and rows accepted / for review (this run's rows). */
  decision: { target: number; threshold: number; accepted: number; review: number; reviewOutput: string | null } | null;
  errorRate: number;
  maxErrorRate: number;
  thresholdExceeded: boolean;
  elapsedSeconds: number;
  /** Of elapsedSeconds, the time to open the bundle, models and output before the first row. */
  startupSeconds: number;
  rowsPerSecond: number;
  providers: Record<string, string>;
  /** Copies of each model and ONNX Runtime threads per copy. */
  encoders: OpenEncoders['plan'];
  /** Embedding cache counters (--cache), or null. */
  cache: ReturnType<typeof cacheSummary>;
  /** Peak resident memory of the process so far (worker threads included), MB. */
  peakRssMB: number;
  /** CPU time (user + system, every thread) spent after start-up, seconds: rows' cost whatever else the machine ran. */
  rowsCpuSeconds: number;
  meanBatch: { text: number | null; image: number | null };
  /** Texts and images the encoders embedded (cache hits excluded): one each per row, however many attributes. */
  embedded: { text: number; image: number };
}


const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export async function runCommand(opts: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? silentProgress;
  let existing: ExistingOutput | undefined;
  // The output check, then the columns, before models spend seconds loading.
  const session = await openBundleSession(opts, {
    extra: opts.keepColumns,
    extraFlags: Object.fromEntries(opts.keepColumns.map((c) => [c, '--keep-columns'])),
    topN: opts.topN,
    topKTags: opts.topKTags,
    beforeCatalog: async (bundle, decision) => {
      const decided = decision !== null;
      if (opts.reviewOutput !== undefined && !decided) {
        throw new UsageError(`--review-output needs a target precision: pass --target-precision, or train the bundle with one`, 'usage');
      }
      existing = await checkOutput(opts, { paths: bundle.manifest.paths !== undefined, decision: decided, attributes: selectAttributes(bundle, opts.attributes, opts.model).map((a) => a.name) });
      if (opts.reviewOutput !== undefined) checkReviewOutput(opts);
    },
  });
  const { catalog, encoders, predictor, bundle } = session;
  const shape = { paths: bundle.manifest.paths !== undefined, decision: session.decision !== null, attributes: predictor.attributeNames };
  let writer: PredictionWriter | undefined;
  let reviewWriter: PredictionWriter | undefined;
  try {
    writer = await PredictionWriter.open(opts.output, { format: opts.format, keep: opts.keepColumns, shape, stdout: opts.stdout, resumeAt: existing?.completeBytes });
    if (opts.reviewOutput !== undefined) {
      // The review file follows from the output: on --resume it is rebuilt from the records kept.
      reviewWriter = await PredictionWriter.open(opts.reviewOutput, { format: opts.format, keep: opts.keepColumns, shape, stdout: opts.stdout });
      await reviewWriter.writeFormatted(existing?.review ?? []);
    }
    if (existing && existing.ids.length + existing.tornBytes > 0) {
      log(`resuming ${opts.output}: ${existing.ids.length} complete records kept${existing.tornBytes ? `, a torn last record (${existing.tornBytes} bytes) cut off` : ''}`);
    }
    let rows: AsyncIterable<CatalogRow> = catalog.rows;
    if (opts.shard) rows = shardRows(rows, opts.shard);
    if (existing) rows = skipDone(rows, existing.ids, opts.output);
    rows = untilAborted(rows, opts.signal);
    const startupSeconds = (performance.now() - started) / 1000;
    const cpuAtStart = process.cpuUsage();
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    const stats = { rows: 0, ok: 0, errors: 0, warned: 0, reasons: {} as Record<string, number> };
    const decided = { accepted: 0, review: 0 };
    const out = writer;
    const review = reviewWriter;
    const keep = opts.keepColumns.length > 0;
    await orderedMap(
      rows,
      async (row) => (await predictor.predict(row, keep ? row.extra : undefined)).record,
      async (rec) => {
        await out.writeRecord(rec);
        if (rec.decision?.decision === 'accept') decided.accepted++;
        else if (rec.decision?.decision === 'review') {
          decided.review++;
          await review?.writeRecord(rec);
        }
        stats.rows++;
        if (rec.status === 'ok') stats.ok++;
        else {
          stats.errors++;
          const code = reasonCode(rec.error ?? '');
          stats.reasons[code] = (stats.reasons[code] ?? 0) + 1;
        }
        if (rec.warnings.length) stats.warned++;
        for (const w of rec.warnings) {
          const code = reasonCode(w);
          stats.reasons[code] = (stats.reasons[code] ?? 0) + 1;
        }
        progress.update({ rows: stats.rows, errors: stats.errors, warnings: stats.warned, bytesRead: catalog.bytesRead(), totalBytes });
      },
      { window: opts.window, onInputEnd: () => predictor.flush() },
    );
    await writer.close();
    writer = undefined;
    await reviewWriter?.close();
    reviewWriter = undefined;
    progress.stop();
    const elapsedSeconds = (performance.now() - started) / 1000;
    const errorRate = stats.rows ? stats.errors / stats.rows : 0;
    const batches = predictor.batchSizes;
    const resumed = existing?.ids.length ?? 0;
    return {
      input: opts.input,
      output: opts.output,
      ...stats,
      decision: session.decision ? { ...session.decision, ...decided, reviewOutput: opts.reviewOutput ?? null } : null,
      rows: resumed + stats.rows,
      resumed,
      tornBytes: existing?.tornBytes ?? 0,
      interrupted: opts.signal?.aborted ? String(opts.signal.reason ?? 'aborted') : null,
      shard: opts.shard ? `${opts.shard.index}/${opts.shard.count}` : null,
      errorRate,
      maxErrorRate: opts.maxErrorRate,
      thresholdExceeded: errorRate > opts.maxErrorRate,
      elapsedSeconds,
      startupSeconds,
      rowsPerSecond: stats.rows / elapsedSeconds,
      providers: encoders.providers,
      encoders: encoders.plan,
      cache: cacheSummary(session.cache),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      rowsCpuSeconds: cpuSeconds(process.cpuUsage(cpuAtStart)),
      meanBatch: { text: mean(batches.text), image: mean(batches.image) },
      embedded: { text: sum(batches.text), image: sum(batches.image) },
    };
  } finally {
    progress.stop();
    await writer?.close().catch(() => {});
    await reviewWriter?.close().catch(() => {});
    await session.close();
  }
}

/**
 * An existing output is never appended to silently: --resume continues it (returns what it holds), --force
 * overwrites it, anything else is a usage error, raised before models load.
 */
async function checkOutput(opts: RunOptions, shape: RecordShape): Promise<ExistingOutput | undefined> {
  if (opts.resume && opts.force) throw new UsageError('--resume and --force contradict each other: pick one', 'usage');
  if (opts.output === '-') {
    if (opts.resume) throw new UsageError('--resume needs an output file (-o FILE), not stdout', 'usage');
    return undefined;
  }
  const exists = fs.existsSync(opts.output) && fs.statSync(opts.output).size > 0;
  if (opts.resume) return exists ? readExistingOutput(opts.output, opts.format, csvHeader(opts.keepColumns, shape)) : undefined;
  if (exists && !opts.force) {
    throw new UsageError(`output ${opts.output} already exists: pass --resume to continue it or --force to overwrite it`, 'output_exists');
  }
  return undefined;
}

/**
 * The review file: not the output itself, not stdout; an existing one is overwritten only with --force or --resume
 * (which rebuilds it from the output's kept records).
 */
function checkReviewOutput(opts: RunOptions): void {
  const file = opts.reviewOutput!;
  if (file === '-' || file === '') throw new UsageError('--review-output needs a file, not stdout', 'usage');
  const same = path.resolve(file) === path.resolve(opts.output) || (fs.existsSync(file) && fs.existsSync(opts.output) && fs.realpathSync(file) === fs.realpathSync(opts.output));
  if (opts.output !== '-' && same) {
    throw new UsageError(`--review-output ${file} is the output itself: give it another file`, 'usage');
  }
  if (fs.existsSync(file) && fs.statSync(file).size > 0 && !opts.force && !opts.resume) {
    throw new UsageError(`review output ${file} already exists: pass --resume to continue the run or --force to overwrite it`, 'output_exists');
  }
}
