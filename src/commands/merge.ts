// `categorize merge`: the shard outputs of `run --shard i/n` back into one file, in the input catalog's order
// (or id order), verifying that every row has exactly one record — none missing, none duplicated.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { CategorizeError, ExitCode, UsageError } from '../errors.js';
import { openCatalog, type ColumnOptions } from '../io/catalog-reader.js';
import { formatFor, type OutputFormat } from '../io/prediction-writer.js';

export interface MergeOptions {
  parts: string[];
  output: string;
  /** The catalog the shards came from: output in its order, and every one of its rows must have a record. */
  input?: string;
  columns: Pick<ColumnOptions, 'id'>;
  delimiter?: string;
  force: boolean;
  stdin?: NodeJS.ReadableStream;
}

export interface MergeSummary {
  parts: number;
  records: number;
  order: 'input' | 'id';
  output: string;
}

/** A record as read: its id and its text, already formatted (a JSONL line, or a CSV row with its newline). */
interface PartRecord {
  id: string;
  text: string;
}

const LIST = 5;

function fail(message: string, code: string): never {
  throw new CategorizeError(code, message, ExitCode.runtime);
}

async function readPart(file: string, format: OutputFormat): Promise<{ header?: string; records: PartRecord[] }> {
  if (!fs.existsSync(file)) throw new UsageError(`merge: part not found: ${file}`, 'input_not_found');
  if (format === 'jsonl') {
    const text = fs.readFileSync(file, 'utf8');
    if (text !== '' && !text.endsWith('\n')) fail(`merge: ${file} ends with an incomplete record; finish that shard first (run it again with --resume)`, 'part_incomplete');
    const records: PartRecord[] = [];
    let line = 0;
    for (const l of text.split('\n')) {
      line++;
      if (l === '') continue;
      let id: unknown;
      try {
        id = (JSON.parse(l) as { id?: unknown }).id;
      } catch {
        fail(`merge: ${file} line ${line} is not a JSON record`, 'part_invalid');
      }
      if (typeof id !== 'string') fail(`merge: ${file} line ${line} has no string id`, 'part_invalid');
      records.push({ id, text: l + '\n' });
    }
    return { records };
  }
  let header: string[] | undefined;
  const records: PartRecord[] = [];
  const parser = fs.createReadStream(file).pipe(parse({ relax_column_count: true, raw: true }));
  try {
    for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
      if (!raw.endsWith('\n')) fail(`merge: ${file} ends with an incomplete record; finish that shard first (run it again with --resume)`, 'part_incomplete');
      if (!header) {
        header = record;
        continue;
      }
      if (record.length !== header.length) fail(`merge: ${file} has a record with ${record.length} fields where its header has ${header.length}`, 'part_invalid');
      records.push({ id: record[0]!, text: stringify([record]) });
    }
  } catch (err) {
    if (err instanceof CategorizeError) throw err;
    fail(`merge: ${file} is not valid CSV (${err instanceof Error ? err.message : String(err)}); an incomplete shard? run it again with --resume`, 'part_invalid');
  }
  return { header: header ? stringify([header]) : undefined, records };
}

/** Numbers by value, everything else by code point: ids 2 < 10, and a stable order for any strings. */
function compareIds(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? Number(a) : NaN;
  const nb = /^\d+$/.test(b) ? Number(b) : NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

const sample = (ids: string[]) => ids.slice(0, LIST).map((i) => `'${i}'`).join(', ') + (ids.length > LIST ? `, … (${ids.length} in all)` : '');

export async function mergeCommand(opts: MergeOptions): Promise<MergeSummary> {
  if (opts.parts.length === 0) throw new UsageError('merge: give the part files to merge', 'usage');
  const format = formatFor(opts.output);
  for (const p of opts.parts) {
    if (formatFor(p) !== format) throw new UsageError(`merge: ${p} is not ${format.toUpperCase()} like the output ${opts.output}; merge parts of one format`, 'usage');
    if (path.resolve(p) === path.resolve(opts.output)) throw new UsageError(`merge: the output ${opts.output} is also one of the parts`, 'usage');
  }
  if (fs.existsSync(opts.output) && !opts.force) throw new UsageError(`output ${opts.output} already exists: pass --force to overwrite it`, 'output_exists');

  // Records by id, each id's records in the order the parts hold them (an id repeated in the catalog keeps order).
  const byId = new Map<string, string[]>();
  let header: string | undefined;
  let total = 0;
  for (const p of opts.parts) {
    const part = await readPart(p, format);
    if (format === 'csv') {
      if (part.header === undefined) continue;
      if (header !== undefined && part.header !== header) fail(`merge: ${p} has another header than ${opts.parts[0]} (different --keep-columns?)`, 'part_invalid');
      header = part.header;
    }
    for (const r of part.records) {
      const list = byId.get(r.id);
      if (list) list.push(r.text);
      else byId.set(r.id, [r.text]);
      total++;
    }
  }

  const out: string[] = header !== undefined ? [header] : [];
  if (opts.input) {
    const catalog = await openCatalog(opts.input, {
      columns: { id: opts.columns.id, title: '', description: '', image: [], require: { text: false, image: false }, extra: [] },
      delimiter: opts.delimiter,
      stdin: opts.stdin,
    });
    const missing: string[] = [];
    for await (const row of catalog.rows) {
      const list = byId.get(row.id);
      const text = list?.shift();
      if (text === undefined) missing.push(row.id);
      else out.push(text);
    }
    const extra = [...byId].flatMap(([id, list]) => list.map(() => id));
    if (missing.length > 0 || extra.length > 0) {
      const what = [
        missing.length ? `${missing.length} input rows have no record (${sample(missing)}): a shard missing or unfinished?` : '',
        extra.length ? `${extra.length} records match no input row or repeat one (${sample(extra)}): a shard given twice, or another catalog?` : '',
      ].filter(Boolean);
      fail(`merge: ${what.join('; ')}; nothing written`, 'merge_mismatch');
    }
  } else {
    const dupes = [...byId].filter(([, list]) => list.length > 1).map(([id]) => id);
    if (dupes.length > 0) fail(`merge: ${dupes.length} ids have more than one record (${sample(dupes)}): a shard given twice? (with --input, ids repeated in the catalog are matched in order); nothing written`, 'merge_mismatch');
    for (const id of [...byId.keys()].sort(compareIds)) out.push(byId.get(id)![0]!);
  }

  const tmp = `${opts.output}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, out.join(''));
  fs.renameSync(tmp, opts.output);
  return { parts: opts.parts.length, records: total, order: opts.input ? 'input' : 'id', output: opts.output };
}
