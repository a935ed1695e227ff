// Streams catalog rows from CSV/TSV (path or stdin) with csv-parse: delimiter detection, BOM, quoted newlines, ragged rows.
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse, type Parser } from 'csv-parse';
import { UsageError } from '../errors.js';

export interface ColumnOptions {
  /** Id column; when the file lacks it, ids are 1-based row numbers. */
  id: string;
  title: string;
  description: string;
  /** Candidates in order; the first present wins. */
  image: string[];
  /** Which of title/description/image the caller needs (missing → exit 2). */
  require: { text: boolean; image: boolean };
  /** What else to do about a missing image column, for its error (default: add an empty one, as run may). */
  imageColumnHint?: string;
  /** Extra columns to carry through (keep-columns, labels); each must exist. */
  extra: string[];
  /** The flag that named each extra column (`--label-column`, `--attribute` …), for the error when one is missing. */
  extraFlags?: Record<string, string>;
  /** Extra columns carried through when the file has them (a bundle's attribute labels in eval and check). */
  optional?: string[];
}

export interface CatalogRow {
  /** 0-based position among data rows: output order. */
  index: number;
  /** 1-based line of the input where the record starts (for annotations that point into the CSV). */
  line: number;
  id: string;
  title: string;
  description: string;
  image: string;
  /**
   * The image itself, when it arrived as bytes (an upload to `serve`) rather than as a path or URL in `image`;
   * it takes precedence over `image`. Cached by the bytes' sha256, like a file.
   */
  imageBytes?: Buffer;
  /** Values of the requested extra columns. */
  extra: Record<string, string>;
  /** Set when the row cannot be read faithfully (wrong field count). */
  error?: string;
}

export interface Catalog {
  header: string[];
  delimiter: string;
  /** Folder relative image paths resolve against (the CSV's folder; cwd for stdin). */
  baseDir: string;
  rows: AsyncIterable<CatalogRow>;
  /** Input bytes handed to the parser so far (progress and ETA). */
  bytesRead(): number;
}

export interface OpenCatalogOptions {
  columns: ColumnOptions;
  /** Force a delimiter; otherwise detected from the header line. */
  delimiter?: string;
  /** Stream to read when source is '-'. */
  stdin?: NodeJS.ReadableStream;
}

const CANDIDATE_DELIMITERS = [',', '\t', ';', '|'];

/** Picks the delimiter that splits the header line most often, counting outside quotes only. */
export function detectDelimiter(headerLine: string): string {
  const counts = new Map<string, number>(CANDIDATE_DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, counts.get(ch)! + 1);
  }
  let best = ',';
  for (const [d, n] of counts) if (n > counts.get(best)!) best = d;
  return best;
}

/** Reads chunks until the first line ends, so the delimiter is known before parsing starts. */
async function peekFirstLine(stream: NodeJS.ReadableStream): Promise<{ head: Buffer[]; line: string; rest: AsyncIterator<Buffer> }> {
  const it = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await it.next();
    if (done) break;
    const buf = typeof value === 'string' ? Buffer.from(value) : value;
    head.push(buf);
    size += buf.length;
    if (buf.includes(10) || buf.includes(13) || size > 1 << 20) break;
  }
  const text = Buffer.concat(head).toString('utf8').replace(/^\uFEFF/, '');
  const line = text.split(/\r?\n|\r/, 1)[0] ?? '';
  return { head, line, rest: it as AsyncIterator<Buffer> };
}

/** The column's index in the header (exact name first, then ignoring case), or -1. */
export function resolveColumn(header: string[], name: string): number {
  const exact = header.indexOf(name);
  if (exact >= 0) return exact;
  const lower = name.toLowerCase();
  return header.findIndex((h) => h.toLowerCase() === lower);
}

const columnList = (header: string[]) => header.map((h) => `'${h}'`).join(', ') || 'none';

function missingColumn(what: string, names: string[], header: string[], flag: string): UsageError {
  const tried = names.map((n) => `'${n}'`).join(' or ');
  return new UsageError(
    `${what} column ${tried} not found (columns found: ${columnList(header)}); set it with ${flag}`,
    'missing_column',
  );
}

const lineBreaks = (s: string) => s.match(/\r\n|\r|\n/g)?.length ?? 0;

export async function openCatalog(source: string, opts: OpenCatalogOptions): Promise<Catalog> {
  let input: NodeJS.ReadableStream;
  let baseDir: string;
  if (source === '-') {
    if (!opts.stdin) throw new UsageError('reading from stdin (-) is not available here');
    input = opts.stdin;
    baseDir = process.cwd();
  } else {
    const file = path.resolve(source);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw new UsageError(`input file not found: ${source}`, 'input_not_found');
    }
    if (!st.isFile()) throw new UsageError(`input is not a file: ${source}`, 'input_not_found');
    input = fs.createReadStream(file);
    baseDir = path.dirname(file);
  }
  const { head, line, rest } = await peekFirstLine(input);
  let bytesRead = 0;
  const delimiter = opts.delimiter ?? (source.toLowerCase().endsWith('.tsv') ? '\t' : detectDelimiter(line));
  const parser: Parser = parse({
    delimiter,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    // Tolerate a stray quote inside an unquoted field rather than failing the whole file.
    relax_quotes: true,
    // The raw text of each record, so each row knows the line it starts on (csv-parse's own line count
    // drifts on CRLF inside quoted fields).
    raw: true,
  });
  Readable.from(
    (async function* () {
      for (const h of head) {
        bytesRead += h.length;
        yield h;
      }
      for (;;) {
        const { value, done } = await rest.next();
        if (done) return;
        bytesRead += value.length;
        yield value;
      }
    })(),
  ).pipe(parser);
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<{ record: string[]; raw: string }>;
  const first = await records.next().catch((err: unknown) => {
    throw new UsageError(`cannot parse ${source}: ${err instanceof Error ? err.message : String(err)}`, 'bad_csv');
  });
  if (first.done) throw new UsageError(`input ${source} is empty: expected a header line`, 'bad_csv');
  const header = first.value.record.map((h) => h.trim());
  // A record starts where the previous one ended, past the empty lines skipped before it (leading breaks).
  let cursor = 1 + lineBreaks(first.value.raw);
  const col = opts.columns;
  const idIdx = resolveColumn(header, col.id);
  const titleIdx = resolveColumn(header, col.title);
  const descIdx = resolveColumn(header, col.description);
  const imageIdx = col.image.map((n) => resolveColumn(header, n)).find((i) => i >= 0) ?? -1;
  if (col.require.text && titleIdx < 0 && descIdx < 0) {
    throw missingColumn('text', [col.title, col.description], header, '--title-column / --description-column');
  }
  if (col.require.image && imageIdx < 0) {
    // The default hint is run's (and eval's, check's, serve's): with an empty image column each row is predicted from
    // its text (warning image_missing). train says how to train without photos instead.
    throw missingColumn('image', col.image, header, `--image-column, or ${col.imageColumnHint ?? 'add an empty image column to predict every row from its text alone'}`);
  }
  const extraIdx = col.extra.map((name) => {
    const i = resolveColumn(header, name);
    if (i < 0) {
      const flag = col.extraFlags?.[name];
      if (!flag) throw missingColumn('requested', [name], header, 'the column flags');
      throw new UsageError(`${flag} ${name}: the catalog has no such column (columns found: ${columnList(header)})`, 'missing_column');
    }
    return [name, i] as const;
  });
  for (const name of col.optional ?? []) {
    const i = resolveColumn(header, name);
    if (i >= 0 && !col.extra.includes(name)) extraIdx.push([name, i] as const);
  }

  async function* rows(): AsyncGenerator<CatalogRow> {
    let index = 0;
    for (;;) {
      let next: IteratorResult<{ record: string[]; raw: string }>;
      try {
        next = await records.next();
      } catch (err) {
        // csv-parse cannot resynchronise after a malformed record (e.g. an unclosed quote running to EOF).
        throw new UsageError(`cannot parse ${source} after data row ${index}: ${err instanceof Error ? err.message : String(err)}`, 'bad_csv');
      }
      if (next.done) return;
      const fields = next.value.record;
      const line = cursor + lineBreaks(/^[\r\n]*/.exec(next.value.raw)![0]);
      cursor += lineBreaks(next.value.raw);
      const get = (i: number) => (i >= 0 && i < fields.length ? fields[i] : '');
      const row: CatalogRow = {
        index,
        line,
        id: idIdx >= 0 ? get(idIdx).trim() || String(index + 1) : String(index + 1),
        title: get(titleIdx),
        description: get(descIdx),
        image: get(imageIdx).trim(),
        extra: Object.fromEntries(extraIdx.map(([name, i]) => [name, get(i)])),
      };
      if (fields.length !== header.length) {
        row.error = `ragged_row: ${fields.length} fields where the header has ${header.length}`;
      }
      index++;
      yield row;
    }
  }
  return { header, delimiter, baseDir, rows: rows(), bytesRead: () => bytesRead };
}

/**
 * Rows whose `column` (an extra column) is non-empty, renumbered 0, 1, 2… so ordered processing has no gaps;
 * `onSkip` counts the others. For train and eval, where a row without a label has nothing to learn or judge.
 */
export async function* labelledRows(rows: AsyncIterable<CatalogRow>, column: string, onSkip: () => void): AsyncGenerator<CatalogRow> {
  let index = 0;
  for await (const row of rows) {
    if (row.extra[column].trim() === '') {
      onSkip();
      continue;
    }
    yield { ...row, index: index++ };
  }
}
