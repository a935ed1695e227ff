// Transforms of the catalog row stream for run: keep one shard, skip rows an interrupted run already wrote,
// stop taking rows when asked (signals). Each renumbers `index` 0, 1, 2… so ordered processing has no gaps.
import type { CatalogRow } from '../io/catalog-reader.js';
import { UsageError } from '../errors.js';
import { shardOf, type Shard } from './shard.js';

export async function* shardRows(rows: AsyncIterable<CatalogRow>, shard: Shard): AsyncGenerator<CatalogRow> {
  let index = 0;
  for await (const row of rows) {
    if (shardOf(row.id, shard.count) === shard.index) yield { ...row, index: index++ };
  }
}

/**
 * Skips the rows whose records an earlier run already wrote (`doneIds`, in order), checking that they are the
 * same rows: an output from another catalog, shard or id column must not be silently continued.
 */
export async function* skipDone(rows: AsyncIterable<CatalogRow>, doneIds: readonly string[], output: string): AsyncGenerator<CatalogRow> {
  let seen = 0;
  let index = 0;
  for await (const row of rows) {
    if (seen < doneIds.length) {
      if (row.id !== doneIds[seen]) {
        throw new UsageError(
          `cannot resume ${output}: its record ${seen + 1} has id '${doneIds[seen]}' but input row ${seen + 1} has id '${row.id}' (another catalog, shard or --id-column?); use --force to start over`,
          'resume_mismatch',
        );
      }
      seen++;
      continue;
    }
    yield { ...row, index: index++ };
  }
  if (seen < doneIds.length) {
    throw new UsageError(`cannot resume ${output}: it holds ${doneIds.length} records but the input has only ${seen} rows; use --force to start over`, 'resume_mismatch');
  }
}

/** Ends the stream when `signal` aborts: rows already taken finish and are written, no new row starts. */
export async function* untilAborted<T>(rows: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (!signal) return yield* rows;
  for await (const row of rows) {
    if (signal.aborted) return;
    yield row;
  }
}
