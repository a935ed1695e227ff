// POST /predict/batch: many rows in one request, streamed both ways. The body is JSON lines or a CSV/TSV catalog
// (run's reader and columns); the answer is one JSON line (or CSV record) per input row, in input order, in run's
// record shape (a path bundle's with run's path fields, then with a target precision run's decision fields), a bad
// row reported in its own record. Rows in flight are
// bounded by --window, so neither a big upload nor a slow reader makes memory grow.
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { openCatalog, type CatalogRow, type ColumnOptions } from '../io/catalog-reader.js';
import { PredictionWriter, type OutputFormat } from '../io/prediction-writer.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { untilAborted } from '../pipeline/row-stream.js';
import type { Predictor } from '../pipeline/predictor.js';
import { CategorizeError, oneLine, reasonCode } from '../errors.js';
import { HttpError } from './http-error.js';
import { screenImageRef, type ImagePolicy } from './image-policy.js';
import { answerAt, type ServePaths } from './paths.js';
import { withDecision } from './decision.js';
import type { Decision } from '../head/calibration.js';

export const JSONL_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/json-lines'];
export const CSV_TYPES = ['text/csv', 'text/tab-separated-values'];

export interface BatchInput {
  /** Media type of the body, without parameters. */
  type: string;
  body: Readable;
  columns: ColumnOptions;
  delimiter?: string;
  /** Largest image bytes one JSON line may carry (image_base64); the line may be a third longer. */
  maxImageBytes: number;
}

/** Bytes a JSON line may hold besides its base64 image: title, description, id, keys. */
const LINE_SLACK = 2 * 1024 * 1024;

/**
 * Rows of the body: JSON lines (each `{id?, title?, description?, image? | image_base64?}`) or a CSV/TSV catalog.
 * A CSV whose header lacks what the bundle needs is a 422 before any output; a bad JSON line is a bad row.
 */
export async function batchRows(input: BatchInput): Promise<AsyncIterable<CatalogRow>> {
  if (JSONL_TYPES.includes(input.type)) return jsonlRows(input.body, input.maxImageBytes);
  if (CSV_TYPES.includes(input.type)) {
    try {
      const catalog = await openCatalog('-', {
        columns: input.columns,
        delimiter: input.type === 'text/tab-separated-values' ? '\t' : input.delimiter,
        stdin: input.body,
      });
      return catalog.rows;
    } catch (err) {
      if (err instanceof CategorizeError) throw new HttpError(422, err.message.replace(/ with --[a-z-]+( \/ --[a-z-]+)?$/, ''), err.code);
      throw err;
    }
  }
  throw new HttpError(415, `send the rows as application/x-ndjson (JSON lines) or text/csv, not ${input.type || 'a body without Content-Type'}`, 'unsupported_media_type');
}

/** Lines of a stream, each at most `maxBytes` long: a longer one is skipped to its end and reported by its length. */
export async function* boundedLines(stream: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<{ text: string } | { tooLong: number }> {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  const take = function* (): Generator<{ text: string } | { tooLong: number }> {
    if (skipping) yield { tooLong: size };
    else yield { text: Buffer.concat(parts, size).toString('utf8') };
    parts = [];
    size = 0;
    skipping = false;
  };
  for await (const chunk of stream) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (;;) {
      const nl = buf.indexOf(10);
      const piece = nl < 0 ? buf : buf.subarray(0, nl);
      if (!skipping && size + piece.length > maxBytes) {
        skipping = true;
        parts = [];
      }
      if (!skipping) parts.push(piece);
      size += piece.length;
      if (nl < 0) break;
      yield* take();
      buf = buf.subarray(nl + 1);
    }
  }
  if (size > 0 || skipping) yield* take();
}

const BASE64 = /^[A-Za-z0-9+/\-_\s]*={0,2}\s*$/;

/** One JSON line as a catalog row; what is wrong with it becomes the row's error, never the request's. */
export function jsonlRow(text: string, index: number, line: number, maxImageBytes: number): CatalogRow {
  const row: CatalogRow = { index, line, id: String(index + 1), title: '', description: '', image: '', extra: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ...row, error: `bad_json: ${oneLine(err).slice(0, 200)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ...row, error: 'bad_row: expected a JSON object' };
  const o = value as Record<string, unknown>;
  if (typeof o.id === 'string' || typeof o.id === 'number') row.id = String(o.id).trim() || row.id;
  for (const key of ['title', 'description', 'image', 'image_base64'] as const) {
    if (o[key] !== undefined && o[key] !== null && typeof o[key] !== 'string') return { ...row, error: `bad_row: ${key} must be a string` };
  }
  row.title = (o.title as string | undefined) ?? '';
  row.description = (o.description as string | undefined) ?? '';
  row.image = ((o.image as string | undefined) ?? '').trim();
  const b64 = (o.image_base64 as string | undefined) ?? '';
  if (b64 !== '') {
    if (row.image !== '') return { ...row, image: '', error: 'bad_row: give image or image_base64, not both' };
    // A data: URL is accepted as well as bare base64 (what a browser's FileReader hands out).
    const payload = b64.replace(/^data:[^,]*;base64,/, '');
    if (!BASE64.test(payload)) return { ...row, error: 'bad_row: image_base64 is not base64' };
    const bytes = Buffer.from(payload, payload.includes('-') || payload.includes('_') ? 'base64url' : 'base64');
    if (bytes.length > maxImageBytes) return { ...row, error: `image_too_large: image_base64 holds ${bytes.length} bytes, over the ${maxImageBytes}-byte limit` };
    row.imageBytes = bytes;
  }
  return row;
}

async function* jsonlRows(body: Readable, maxImageBytes: number): AsyncGenerator<CatalogRow> {
  let index = 0;
  let line = 0;
  for await (const l of boundedLines(body, Math.ceil((maxImageBytes * 4) / 3) + LINE_SLACK)) {
    line++;
    if ('tooLong' in l) {
      yield { index, line, id: String(index + 1), title: '', description: '', image: '', extra: {}, error: `line_too_long: ${l.tooLong} bytes` };
      index++;
      continue;
    }
    if (l.text.trim() === '') continue;
    yield jsonlRow(l.text, index, line, maxImageBytes);
    index++;
  }
}

export interface BatchRun {
  /** The response body: records as they are ready, in input order. */
  output: PassThrough;
  /** Settles when every row is written (resolves to the row count) or the run failed (the output is destroyed). */
  done: Promise<number>;
}

export interface BatchRunOptions {
  predictor: Predictor;
  policy: ImagePolicy;
  format: OutputFormat;
  topKTags: number;
  /** A path bundle (its records get run's path fields); null or absent: a flat bundle. */
  paths?: ServePaths | null;
  /** A path bundle: the request's own min_path_score, when it differs from the server's. */
  minPathScore?: number;
  /** The decision this request gets (requestDecision): its records carry run's decision fields; null or absent: none. */
  decision?: Decision | null;
  window: number;
  /** Aborted when the client goes away: no new row starts. */
  signal: AbortSignal;
  /** Bytes of records the response buffers before waiting for the client to read. */
  outputBuffer?: number;
  onRowError?: (code: string) => void;
}

/**
 * Starts predicting `rows` and returns the response stream at once. A failure mid-stream (the body breaks off, a
 * CSV cannot be parsed further) cannot change a status already sent: the stream is destroyed, so the client
 * sees a truncated response rather than a complete-looking short one.
 */
export async function runBatch(rows: AsyncIterable<CatalogRow>, opts: BatchRunOptions): Promise<BatchRun> {
  const output = new PassThrough({ highWaterMark: opts.outputBuffer });
  const paths = opts.paths ?? null;
  const decision = opts.decision ?? null;
  const writer = await PredictionWriter.open('-', { format: opts.format, keep: [], shape: { paths: paths !== null, decision: decision !== null, attributes: opts.predictor.attributeNames }, stdout: output });
  const reanswerAt = paths && opts.minPathScore !== undefined && opts.minPathScore !== paths.minScore ? opts.minPathScore : undefined;
  const done = orderedMap(
    untilAborted(rows, opts.signal),
    async (row) => {
      // Screened here, inside the window, so a slow realpath does not hold up the reading of later rows.
      const { record: predicted, probs } = await opts.predictor.predict(await screenImageRef(row, opts.policy));
      const answered = paths && reanswerAt !== undefined && probs ? answerAt(predicted, probs, paths.tree, reanswerAt) : predicted;
      // Decided again: a path re-answered at the request's threshold, or the request's own target, may decide otherwise.
      const record = withDecision(answered, decision, opts.predictor.predictedAttributes);
      return { ...record, tags: record.tags.slice(0, opts.topKTags) };
    },
    async (record) => {
      if (record.status === 'error') opts.onRowError?.(reasonCode(record.error ?? ''));
      await writer.writeRecord(record);
    },
    { window: opts.window, onInputEnd: () => opts.predictor.flush() },
  ).then(
    async (count) => {
      await writer.close();
      output.end();
      return count;
    },
    (err: unknown) => {
      output.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    },
  );
  return { output, done };
}
