// Reading back a predictions file that a killed run left behind: the complete records it holds (in input order,
// since the writer keeps order) and the byte offset where a torn last record begins, so --resume can cut it off.
import fs from 'node:fs';
import { parse } from 'csv-parse';
import { UsageError } from '../errors.js';
import type { OutputFormat } from './prediction-writer.js';

export interface ExistingOutput {
  /** Ids of the complete records, in file order. */
  ids: string[];
  /** Bytes of the file that hold complete records (and the CSV header); the rest is a torn tail. */
  completeBytes: number;
  /** Bytes after completeBytes that were discarded. */
  tornBytes: number;
  /** The complete records whose decision is `review`, as written (CSV: without the header), for --review-output. */
  review: string[];
}

/** Whether a JSONL record's decision is review. */
function isReview(line: string): boolean {
  try {
    return (JSON.parse(line) as { decision?: unknown }).decision === 'review';
  } catch {
    return false;
  }
}

const CHUNK = 1 << 20;

/** JSONL: every line that ends in a newline and parses as an object with an id; stops at the first that does not. */
async function readJsonl(file: string): Promise<ExistingOutput> {
  const ids: string[] = [];
  const review: string[] = [];
  let complete = 0;
  let carry: Buffer = Buffer.alloc(0);
  let offset = 0;
  const stream = fs.createReadStream(file, { highWaterMark: CHUNK });
  outer: for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      const line = buf.subarray(start, nl).toString('utf8');
      const id = recordId(line);
      if (id === undefined) break outer;
      ids.push(id);
      if (isReview(line)) review.push(line + '\n');
      start = nl + 1;
      complete = offset + start;
    }
    offset += start;
    carry = buf.subarray(start);
  }
  stream.destroy();
  const size = fs.statSync(file).size;
  return { ids, completeBytes: complete, tornBytes: size - complete, review };
}

function recordId(line: string): string | undefined {
  try {
    const rec = JSON.parse(line) as { id?: unknown };
    return rec !== null && typeof rec === 'object' && typeof rec.id === 'string' ? rec.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CSV: the header must be the one this run would write; each following record counts when it is complete
 * (ends with its newline, has every field). A torn last record, even one with an unclosed quote, is cut off.
 */
async function readCsv(file: string, expectedHeader: string[]): Promise<ExistingOutput> {
  const ids: string[] = [];
  const review: string[] = [];
  let bytes = 0;
  let complete = 0;
  let header: string[] | undefined;
  let decisionAt = -1;
  const parser = fs.createReadStream(file, { highWaterMark: CHUNK }).pipe(parse({ raw: true, relax_column_count: true }));
  try {
    for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
      bytes += Buffer.byteLength(raw);
      if (!raw.endsWith('\n')) break;
      if (!header) {
        header = record;
        if (header.join('\u0000') !== expectedHeader.join('\u0000')) {
          throw new UsageError(`cannot resume ${file}: its header (${header.join(',')}) is not the one this run writes (${expectedHeader.join(',')}); same --keep-columns, or --force to start over`, 'resume_mismatch');
        }
        decisionAt = header.indexOf('decision');
      } else {
        if (record.length !== header.length) break;
        ids.push(record[0]!);
        if (decisionAt >= 0 && record[decisionAt] === 'review') review.push(raw);
      }
      complete = bytes;
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // An unclosed quote at the end: the torn record; everything before it stands.
  }
  const size = fs.statSync(file).size;
  return { ids, completeBytes: complete, tornBytes: size - complete, review };
}

/** What an existing output holds; an empty or missing file holds nothing. */
export async function readExistingOutput(file: string, format: OutputFormat, csvHeader: string[]): Promise<ExistingOutput> {
  if (!fs.existsSync(file) || fs.statSync(file).size === 0) return { ids: [], completeBytes: 0, tornBytes: 0, review: [] };
  return format === 'jsonl' ? readJsonl(file) : readCsv(file, csvHeader);
}
