// Writes prediction records as JSONL or CSV (JSON-encoded list cells), to a file or stdout, honouring backpressure.
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { stringify } from 'csv-stringify/sync';
import { CategorizeError, UsageError } from '../errors.js';

export type OutputFormat = 'jsonl' | 'csv';

export interface PredictionRecord {
  id: string;
  category: string | null;
  score: number | null;
  top_categories: { category: string; prob: number }[];
  tags: string[];
  status: 'ok' | 'error';
  error: string | null;
  warnings: string[];
  /** Passed-through input columns (--keep-columns). */
  kept?: Record<string, string>;
  /** A path bundle's answer (absent for flat bundles and error rows): `category` and `score` are then its answered node. */
  path?: RecordPath;
  /** With a target precision in effect: whether the row can be applied unseen (`accept`) or needs a person (`review`). */
  decision?: RecordDecision;
  /** A bundle with attributes (train --attribute): each attribute's prediction by name; absent on error rows. */
  attributes?: Record<string, RecordAttribute>;
}

/** One attribute's prediction: its value and score, its top values, and its decision where its calibration has the target. */
export interface RecordAttribute {
  value: string | null;
  score: number | null;
  top: { value: string; prob: number }[];
  decision?: RecordDecision;
}

/** A row's accept/review decision and the target precision whose threshold made it. */
export interface RecordDecision {
  decision: 'accept' | 'review';
  target: number;
}

/** How deep a path answer went and how sure each level was, beside the most probable full path. */
export interface RecordPath {
  /** Levels answered (0: no top-level node was sure enough). */
  depth: number;
  /** False when the answer stopped above full depth for lack of confidence (the `path_backoff` warning). */
  complete: boolean;
  /** The probability at each level of the answered path, top first. */
  scores: number[];
  full_path: string;
  full_path_score: number;
}

export const RECORD_FIELDS = ['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings'] as const;
/** The fields a path bundle's records add after RECORD_FIELDS. */
export const PATH_FIELDS = ['path_depth', 'path_complete', 'path_scores', 'full_path', 'full_path_score'] as const;
/** The fields a run with a target precision adds after those. */
export const DECISION_FIELDS = ['decision', 'target_precision'] as const;

/** Which optional field groups a run's records carry. */
export interface RecordShape {
  /** A path bundle's PATH_FIELDS. */
  paths?: boolean;
  /** A target precision's DECISION_FIELDS. */
  decision?: boolean;
  /** The attributes the records carry (JSONL `attributes`; CSV `<name>`, `<name>_score` and, with a decision, `<name>_decision`). */
  attributes?: string[];
}

/** An attribute's CSV columns, in order. */
function attributeColumns(name: string, shape: RecordShape): string[] {
  return [name, `${name}_score`, ...(shape.decision ? [`${name}_decision`] : [])];
}

/** Output format from --format or the file extension; stdout defaults to JSONL. */
export function formatFor(target: string, explicit?: string): OutputFormat {
  if (explicit) {
    if (explicit === 'jsonl' || explicit === 'csv') return explicit;
    throw new UsageError(`--format must be jsonl or csv, got '${explicit}'`);
  }
  if (target === '-') return 'jsonl';
  const ext = path.extname(target).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.csv') return 'csv';
  throw new UsageError(`cannot tell the output format from '${target}': use .jsonl, .ndjson or .csv, or pass --format`);
}

/** The CSV output's header line, as fields. */
export function csvHeader(keep: string[], shape: RecordShape = {}): string[] {
  return [...outputFields(shape), ...keptFieldNames(keep, shape)];
}

function outputFields(shape: RecordShape): string[] {
  return [...RECORD_FIELDS, ...(shape.paths ? PATH_FIELDS : []), ...(shape.decision ? DECISION_FIELDS : []), ...(shape.attributes ?? []).flatMap((a) => attributeColumns(a, shape))];
}

/** A record's attributes as JSONL writes them: every attribute of the run, nulls on an error row. */
function attributeObject(r: PredictionRecord, names: string[], decision: boolean): Record<string, unknown> {
  return Object.fromEntries(
    names.map((name) => {
      const a = r.attributes?.[name];
      const fields: Record<string, unknown> = { value: a?.value ?? null, score: a?.score === null || a?.score === undefined ? null : round(a.score), top: (a?.top ?? []).map((t) => ({ value: t.value, prob: round(t.prob) })) };
      if (decision) Object.assign(fields, decisionFields(a?.decision));
      return [name, fields];
    }),
  );
}

/**
 * The output name of each kept input column: its own, or `input_<name>` when an output field has that name (keeping
 * the stored `category` beside the predicted one is common; writing it over the prediction would be a silent lie).
 */
export function keptFieldNames(keep: string[], shape: RecordShape = {}): string[] {
  const taken = new Set(outputFields(shape));
  const names = keep.map((k) => (taken.has(k) ? `input_${k}` : k));
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new UsageError(`--keep-columns: two kept columns would both be written as "${twice}"`, 'keep_columns');
  return names;
}

/** A record's decision fields as JSON values (nulls without a decision). */
export function decisionFields(d: RecordDecision | undefined): Record<(typeof DECISION_FIELDS)[number], unknown> {
  return { decision: d?.decision ?? null, target_precision: d?.target ?? null };
}

/** A record's path fields as JSON values (nulls for a row without a path answer). */
export function pathFields(p: RecordPath | undefined): Record<(typeof PATH_FIELDS)[number], unknown> {
  return {
    path_depth: p ? p.depth : null,
    path_complete: p ? p.complete : null,
    path_scores: p ? p.scores.map(round) : null,
    full_path: p ? p.full_path : null,
    full_path_score: p ? round(p.full_path_score) : null,
  };
}

/** Rounds probabilities for output: 6 significant decimals are plenty and keep files small. */
function round(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}

/** How often written records are forced to disk, so a crash or power cut loses at most this much work. */
const SYNC_EVERY_MS = 2000;

export class PredictionWriter {
  /** The first error the stream reported (ENOSPC, EPIPE…); every later write fails with it. */
  private failure: CategorizeError | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private dirty = false;

  /** The kept columns' output names (keptFieldNames). */
  private readonly keptNames: string[];

  private constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly format: OutputFormat,
    private readonly keep: string[],
    /** Which optional fields follow the flat ones (PATH_FIELDS, then DECISION_FIELDS). */
    private readonly shape: RecordShape,
    private readonly ownsStream: boolean,
    private readonly target: string,
  ) {
    this.keptNames = keptFieldNames(keep, shape);
    out.on('error', (err: Error) => {
      this.failure ??= new CategorizeError('output_write', `cannot write ${target === '-' ? 'stdout' : target}: ${err.message}`);
    });
    if (ownsStream) {
      // The stream hands each record to the OS at once (a kill -9 loses nothing written); fsync now and then
      // makes it survive a reboot too. Unref'd: the timer never keeps the process alive.
      this.syncTimer = setInterval(() => this.sync(), SYNC_EVERY_MS).unref();
    }
  }

  private sync(): void {
    const fd = (this.out as fs.WriteStream & { fd: number | null }).fd;
    if (!this.dirty || typeof fd !== 'number') return;
    this.dirty = false;
    fs.fsync(fd, () => {});
  }

  /**
   * `resumeAt`: continue an existing file after its first `resumeAt` bytes (its complete records; see
   * output-resume.ts), cutting off whatever follows; the CSV header is written only when starting from 0.
   */
  static async open(target: string, opts: { format: OutputFormat; keep: string[]; shape?: RecordShape; stdout?: NodeJS.WritableStream; resumeAt?: number }): Promise<PredictionWriter> {
    let out: NodeJS.WritableStream;
    let owns = false;
    if (target === '-') {
      if (!opts.stdout) throw new UsageError('writing to stdout (-) is not available here');
      out = opts.stdout;
    } else {
      const dir = path.dirname(path.resolve(target));
      if (!fs.existsSync(dir)) throw new UsageError(`output folder does not exist: ${dir}`, 'output_dir');
      const resumeAt = opts.resumeAt ?? 0;
      if (resumeAt > 0) fs.truncateSync(target, resumeAt);
      const stream = resumeAt > 0 ? fs.createWriteStream(target, { flags: 'r+', start: resumeAt }) : fs.createWriteStream(target);
      await once(stream, 'open').catch((err: unknown) => {
        throw new UsageError(`cannot write ${target}: ${err instanceof Error ? err.message : String(err)}`, 'output_open');
      });
      out = stream;
      owns = true;
    }
    const writer = new PredictionWriter(out, opts.format, opts.keep, opts.shape ?? {}, owns, target);
    if (opts.format === 'csv' && !(opts.resumeAt ?? 0)) await writer.write(stringify([csvHeader(opts.keep, opts.shape)]));
    return writer;
  }

  formatRecord(r: PredictionRecord): string {
    const score = r.score === null ? null : round(r.score);
    const top = r.top_categories.map((t) => ({ category: t.category, prob: round(t.prob) }));
    if (this.format === 'jsonl') {
      const base: Record<string, unknown> = {
        id: r.id,
        category: r.category,
        score,
        top_categories: top,
        tags: r.tags,
        status: r.status,
        error: r.error,
        warnings: r.warnings,
        ...(this.shape.paths ? pathFields(r.path) : {}),
        ...(this.shape.decision ? decisionFields(r.decision) : {}),
        ...(this.shape.attributes?.length ? { attributes: attributeObject(r, this.shape.attributes, this.shape.decision === true) } : {}),
      };
      this.keep.forEach((k, i) => (base[this.keptNames[i]!] = r.kept?.[k] ?? ''));
      return JSON.stringify(base) + '\n';
    }
    return stringify([
      [
        r.id,
        r.category ?? '',
        score === null ? '' : String(score),
        JSON.stringify(top),
        JSON.stringify(r.tags),
        r.status,
        r.error ?? '',
        JSON.stringify(r.warnings),
        ...[
          ...(this.shape.paths ? Object.values(pathFields(r.path)) : []),
          ...(this.shape.decision ? Object.values(decisionFields(r.decision)) : []),
          ...(this.shape.attributes ?? []).flatMap((name) => {
            const a = r.attributes?.[name];
            return [a?.value ?? null, a?.score === null || a?.score === undefined ? null : round(a.score), ...(this.shape.decision ? [a?.decision?.decision ?? null] : [])];
          }),
        ].map((v) => (v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v))),
        ...this.keep.map((k) => r.kept?.[k] ?? ''),
      ],
    ]);
  }

  async writeRecord(r: PredictionRecord): Promise<void> {
    await this.write(this.formatRecord(r));
  }

  /** Records already formatted (as another output holds them: --review-output rebuilt on --resume). */
  async writeFormatted(records: readonly string[]): Promise<void> {
    for (const r of records) await this.write(r);
  }

  private async write(chunk: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.dirty = true;
    if (!this.out.write(chunk)) {
      await once(this.out, 'drain').catch(() => {});
      if (this.failure) throw this.failure;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.syncTimer);
    if (this.failure) throw this.failure;
    if (!this.ownsStream) return;
    const stream = this.out as fs.WriteStream;
    await new Promise<void>((resolve) => stream.end(() => resolve()));
    if (this.failure) throw this.failure;
  }
}
