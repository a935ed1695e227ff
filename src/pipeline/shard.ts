// Splitting a catalog across machines with no coordination: a row belongs to shard I of N when a stable hash of
// its id falls there. The same id always lands in the same shard, whatever the machine, order or catalog size.
import crypto from 'node:crypto';
import { UsageError } from '../errors.js';

export interface Shard {
  index: number;
  count: number;
}

/** "I/N" (0-based I), e.g. 3/8. */
export function parseShard(value: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count || count > 1_000_000) {
    throw new UsageError(`--shard expects I/N with 0 ≤ I < N (e.g. 0/4), got '${value}'`, 'shard');
  }
  return { index, count };
}

/**
 * The shard of an id: the first 8 bytes of its UTF-8 sha256 as an unsigned big-endian integer, modulo N.
 * sha256 rather than a fast hash: it is specified everywhere, so other tools can reproduce the split.
 */
export function shardOf(id: string, count: number): number {
  const h = crypto.createHash('sha256').update(id, 'utf8').digest();
  return Number(h.readBigUInt64BE(0) % BigInt(count));
}
