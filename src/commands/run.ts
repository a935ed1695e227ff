// `categorize run`: stream a catalog through the bundle's encoders and head, one prediction record per input row.
import fs from 'node:fs';
import { openCatalog, type ColumnOptions } from '../io/catalog-reader.js';
import { PredictionWriter, type OutputFormat } from '../io/prediction-writer.js';
import { bundleInputs, isEncoderBlock, loadBundle } from '../models/bundle.js';
import { Classifier } from '../head/classifier.js';
import { Predictor, type PredictorOptions } from '../pipeline/predictor.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { openEncoders, type EncoderOptions } from '../pipeline/encoders.js';
import { resolveBundleModels, type ModelContext } from '../models/resolve.js';
import { silentProgress, type ProgressReporter } from '../pipeline/progress.js';
import { reasonCode } from '../errors.js';

export interface RunOptions extends EncoderOptions, Omit<PredictorOptions, 'imageRoot'> {
  input: string;
  output: string;
  format: OutputFormat;
  /** Registry, cache and download policy for the bundle's models. */
  models: ModelContext;
  textModel?: string;
  imageModel?: string;
  model: string;
  columns: Omit<ColumnOptions, 'require' | 'extra'>;
  delimiter?: string;
  imageRoot?: string;
  keepColumns: string[];
  maxErrorRate: number;
  /** Rows in flight at once (bounds memory). */
  window: number;
  progress?: ProgressReporter;
  log?: (line: string) => void;
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
}

export interface RunSummary {
  input: string;
  output: string;
  rows: number;
  ok: number;
  errors: number;
  /** Rows that carry at least one warning. */
  warned: number;
  /** Count per error/warning code. */
  reasons: Record<string, number>;
  errorRate: number;
  maxErrorRate: number;
  thresholdExceeded: boolean;
  elapsedSeconds: number;
  rowsPerSecond: number;
  providers: Record<string, string>;
  meanBatch: { text: number | null; image: number | null };
}


const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export async function runCommand(opts: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? silentProgress;
  const bundle = loadBundle(opts.model);
  // Columns first: a wrong file should fail before models spend seconds loading.
  const catalog = await openCatalog(opts.input, {
    columns: { ...opts.columns, require: bundleInputs(bundle), extra: opts.keepColumns },
    delimiter: opts.delimiter,
    stdin: opts.stdin,
  });
  const encoders = await openEncoders(await resolveBundleModels(bundle, bundle.manifest.features.filter(isEncoderBlock), opts, opts.models), opts);
  encoders.notices.forEach((n) => log(n));
  let classifier: Classifier | undefined;
  let writer: PredictionWriter | undefined;
  try {
    classifier = await Classifier.load(bundle, { device: opts.device, threads: 1 });
    writer = await PredictionWriter.open(opts.output, { format: opts.format, keep: opts.keepColumns, stdout: opts.stdout });
    const predictor = new Predictor(bundle, encoders, classifier, { ...opts, imageRoot: opts.imageRoot ?? catalog.baseDir });
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    const stats = { rows: 0, ok: 0, errors: 0, warned: 0, reasons: {} as Record<string, number> };
    const out = writer;
    const keep = opts.keepColumns.length > 0;
    await orderedMap(
      catalog.rows,
      async (row) => (await predictor.predict(row, keep ? row.extra : undefined)).record,
      async (rec) => {
        await out.writeRecord(rec);
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
    progress.stop();
    const elapsedSeconds = (performance.now() - started) / 1000;
    const errorRate = stats.rows ? stats.errors / stats.rows : 0;
    const batches = predictor.batchSizes;
    return {
      input: opts.input,
      output: opts.output,
      ...stats,
      errorRate,
      maxErrorRate: opts.maxErrorRate,
      thresholdExceeded: errorRate > opts.maxErrorRate,
      elapsedSeconds,
      rowsPerSecond: stats.rows / elapsedSeconds,
      providers: encoders.providers,
      meanBatch: { text: mean(batches.text), image: mean(batches.image) },
    };
  } finally {
    progress.stop();
    await writer?.close().catch(() => {});
    await classifier?.dispose();
    await encoders.close();
  }
}
