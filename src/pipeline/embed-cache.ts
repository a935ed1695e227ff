// Persistent embedding cache (LMDB): a vector per (model identity, exact model input), so a nightly re-run over a
// mostly unchanged catalog embeds only what changed. Size-bounded by generation-based eviction.
//
// API: `EmbedCache.open({ dir, maxBytes?, onWarning? })` (sync; ConfigError when the folder or store cannot be
// opened), `get(namespace, inputKey, expectedLength?)` (sync LMDB read, a Float32Array copy or undefined),
// `put(namespace, inputKey, vector)` (queued: returns at once), `stats`, `usedBytes()`, `flush()` (queued writes
// committed, running eviction finished) and `close()` (flush, evict when over the bound, close the store).
// One instance per folder per process; any number of processes may share a folder (LMDB's lock file serialises
// writers, readers never block).
//
// Layout: one LMDB environment, `<dir>/embeddings.mdb`, with four named databases:
//   vectors        sha256(namespace, inputKey) → 'E' 'V' 1 0, dim (u32 LE), dim × float32 LE
//   stamps         same key → the generation that last wrote or read the vector, as the entry's LMDB version.
//                  Kept apart from the vector so that re-stamping a hit rewrites a few bytes, not 8 KB.
//   by-generation  generation (uint32) → key, dupSort: eviction walks it oldest first, never scanning everything
//   meta           format, and the generation counter, bumped once per open in a synchronous write
//                  transaction (so two processes opening at once get distinct generations).
// Invariant: a vector has a stamp, and a stamp with generation g has the index entry (g, key): every write
// touches them together in one transaction, so eviction reaches every vector.
//
// Writes (new vectors, re-stamps) are queued in memory and handed to LMDB as one `batch()` every 25 ms or 512
// writes: one batch is one transaction, so a crash (even SIGKILL) leaves each entry whole or absent, and LMDB never
// shows a reader a half-written value; the disk sees a few transactions a second rather than one per row.
// lmdb-js's async `transaction(callback)` is not used: its callback never ran here (Node 20, lmdb 3.5 prebuilt),
// while batches, conditional writes (`ifVersion`) and `transactionSync` all work.
//
// Eviction: once the pages held by the three databases exceed `maxBytes` (checked each time 1/32 of the bound has
// been written, off the hot path, at open and at close), entries are removed oldest generation first until under
// 90% of the bound. The file itself keeps freed pages for reuse, so it stays near the bound rather than under it.
// Each removal is conditional on the stamp still carrying the generation it was found under, so a vector that
// another process has just used is not evicted. The current generation goes last: a single run larger than the
// bound keeps an arbitrary (hash-ordered) part of what it wrote.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import { lazyModule } from '../runtime/lazy-module.js';
import { ConfigError, oneLine } from '../errors.js';

const lmdb = lazyModule<typeof import('lmdb')>('lmdb');

export interface EmbedCacheOptions {
  /** Folder of the store; created when missing. */
  dir: string;
  /** Bound on the store's size in bytes (pages in use); unbounded when absent. */
  maxBytes?: number;
  /** Non-fatal problems (a write that failed, eviction errors): the run goes on without caching them. */
  onWarning?: (message: string) => void;
}

export interface EmbedCacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups not answered (absent, unreadable or of the wrong length). */
  misses: number;
  /** Vectors queued for writing. */
  writes: number;
  /** Vectors removed by eviction, by this process. */
  evicted: number;
  /** Values found but unreadable (bad header, wrong length): counted as misses too, and overwritten on put. */
  corrupt: number;
  /** Writes that failed (disk full, store closed under us): those vectors are simply not cached. */
  failed: number;
}

const STORE_FILE = 'embeddings.mdb';
const FORMAT = 1;
const HEADER_BYTES = 8;
const MAGIC = [0x45, 0x56, FORMAT] as const; // 'E' 'V' format
/** Eviction stops below this share of maxBytes, leaving room so that it does not run again at once. */
const EVICT_TARGET = 0.9;
/** Most index entries removed per write transaction during eviction. */
const EVICT_CHUNK = 512;
const STAMP_VALUE = Buffer.from([1]);
/**
 * Queued writes go out as one transaction at most this often, or sooner once WRITE_BATCH are queued: one LMDB
 * transaction (and disk flush) per row would fall behind a fast run, and a backlog of uncommitted writes is
 * also invisible to the size check.
 */
const WRITE_DELAY_MS = 25;
const WRITE_BATCH = 512;
const LITTLE_ENDIAN = os.endianness() === 'LE';

export class EmbedCache {
  readonly stats: EmbedCacheStats = { hits: 0, misses: 0, writes: 0, evicted: 0, corrupt: 0, failed: 0 };
  /** Bytes written since the size was last checked against maxBytes. */
  private sinceCheck = 0;
  private readonly checkEvery: number;
  /** Put but not committed yet, by hex key: a get right after a put sees it (read-your-writes). */
  private readonly pending = new Map<string, Buffer>();
  /** Writes not yet handed to LMDB; each runs inside the next batch. */
  private queue: (() => void)[] = [];
  private queuedKeys: [string, Buffer][] = [];
  /** Keys with a re-stamp in the queue: a popular image hit by many rows is re-stamped once. */
  private queuedStamps = new Set<string>();
  private writeTimer: NodeJS.Timeout | undefined;
  private lastWrite: Promise<unknown> = Promise.resolve();
  private eviction: Promise<void> | undefined;
  private recheck = false;
  private closing: Promise<void> | undefined;
  /** Kinds of problem already reported (read, write, eviction): one line each per run, the counts are in stats. */
  private readonly warned = new Set<string>();

  private constructor(
    private readonly env: RootDatabase,
    private readonly vectors: Database<Buffer, Buffer>,
    private readonly stamps: Database<Buffer, Buffer>,
    private readonly byGeneration: Database<Buffer, number>,
    /** path → "stat stamp\nsha256 of the bytes": a file whose stat is unchanged is not read and hashed again. */
    private readonly fileDigests: Database<string, Buffer>,
    /** This process's generation: what its writes and hits are stamped with. */
    readonly generation: number,
    private readonly opts: EmbedCacheOptions,
  ) {
    this.checkEvery = opts.maxBytes ? Math.max(256 * 1024, Math.floor(opts.maxBytes / 32)) : Infinity;
  }

  /** The cache folder (absolute). */
  get dir(): string {
    return path.resolve(this.opts.dir);
  }

  static open(opts: EmbedCacheOptions): EmbedCache {
    if (opts.maxBytes !== undefined && !(opts.maxBytes > 0)) throw new ConfigError(`embedding cache: maxBytes must be positive, got ${opts.maxBytes}`, 'cache');
    const dir = path.resolve(opts.dir);
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK);
    } catch (err) {
      throw new ConfigError(`cannot use ${dir} as the embedding cache: ${oneLine(err)}`, 'cache', { cause: err });
    }
    let env: RootDatabase | undefined;
    try {
      // 4 KB pages whatever the OS's (macOS arm64: 16 KB): a 2048-d image vector (8 KB + header) takes three
      // overflow pages, 12 KB, where 16 KB pages would spend 16 KB on it (measured: 62 vs 83 MB for 5,000).
      env = lmdb().open({ path: path.join(dir, STORE_FILE), noSubdir: true, maxDbs: 8, pageSize: 4096 });
      const vectors = env.openDB<Buffer, Buffer>('vectors', { encoding: 'binary', keyEncoding: 'binary' });
      const stamps = env.openDB<Buffer, Buffer>('stamps', { encoding: 'binary', keyEncoding: 'binary', useVersions: true });
      const byGeneration = env.openDB<Buffer, number>('by-generation', { encoding: 'binary', keyEncoding: 'uint32', dupSort: true });
      const meta = env.openDB<number, string>('meta', { encoding: 'json' });
      const fileDigests = env.openDB<string, Buffer>('file-digests', { encoding: 'string', keyEncoding: 'binary' });
      const store = env;
      const generation = store.transactionSync(() => {
        const format = meta.get('format');
        if (format !== undefined && format !== FORMAT) {
          throw new ConfigError(`the embedding cache in ${dir} has format ${format}, this version reads ${FORMAT}: point the cache elsewhere or delete the folder`, 'cache');
        }
        const next = (meta.get('generation') ?? 0) + 1;
        meta.putSync('format', FORMAT);
        meta.putSync('generation', next);
        return next;
      });
      const cache = new EmbedCache(env, vectors, stamps, byGeneration, fileDigests, generation, opts);
      // A smaller bound than last time: trim in the background rather than delay the start.
      if (opts.maxBytes) cache.startEviction();
      return cache;
    } catch (err) {
      void env?.close().catch(() => undefined);
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`cannot open the embedding cache in ${dir}: ${oneLine(err)}`, 'cache', { cause: err });
    }
  }

  /**
   * The vector stored for this input, or undefined. `expectedLength` (the model's dim) turns a vector of another
   * length into a miss. A hit from an older generation is re-stamped (queued) so that eviction keeps it.
   */
  get(namespace: string, inputKey: string, expectedLength?: number): Float32Array | undefined {
    if (this.closing) return undefined;
    const key = cacheKey(namespace, inputKey);
    const queued = this.pending.get(key.toString('hex'));
    let vector: Float32Array | undefined;
    if (queued) vector = decodeVector(queued);
    else {
      let raw: Buffer | undefined;
      try {
        raw = this.vectors.getBinaryFast(key);
      } catch (err) {
        this.warn('read', err);
      }
      if (raw !== undefined) {
        vector = decodeVector(raw);
        if (!vector) this.stats.corrupt++;
      }
    }
    if (!vector || (expectedLength !== undefined && vector.length !== expectedLength)) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    if (!queued) this.restamp(key);
    return vector;
  }

  /**
   * The content digest recorded for a file whose stat stamp (device, inode, size, mtime and ctime in ns) is
   * `stamp`, or undefined. The same test git's index and make rely on: a rewrite keeps neither ctime nor inode.
   */
  fileDigest(file: string, stamp: string): string | undefined {
    if (this.closing) return undefined;
    let v: string | undefined;
    try {
      v = this.fileDigests.get(fileKey(file));
    } catch (err) {
      this.warn('read', err);
    }
    if (v === undefined) return undefined;
    const nl = v.indexOf('\n');
    return nl > 0 && v.slice(0, nl) === stamp ? v.slice(nl + 1) : undefined;
  }

  /** Records a file's digest under its stat stamp (queued, like vectors). */
  rememberFileDigest(file: string, stamp: string, digest: string): void {
    if (this.closing) return;
    const key = fileKey(file);
    const value = `${stamp}\n${digest}`;
    this.enqueue(() => {
      void this.fileDigests.put(key, value);
    });
  }

  /** Stores a vector (copied now, written in the background); a later get in this process sees it at once. */
  put(namespace: string, inputKey: string, vector: Float32Array): void {
    if (this.closing || vector.length === 0) return;
    const key = cacheKey(namespace, inputKey);
    const value = encodeVector(vector);
    const hex = key.toString('hex');
    const g = this.generation;
    this.pending.set(hex, value);
    this.queuedKeys.push([hex, value]);
    this.stats.writes++;
    this.enqueue(() => {
      // Read now, at the last moment: the stamp a write replaces must lose its index entry.
      const previous = this.stampOf(key);
      void this.vectors.put(key, value);
      void this.stamps.put(key, STAMP_VALUE, g);
      if (previous !== undefined && previous !== g) void this.byGeneration.remove(previous, key);
      void this.byGeneration.put(g, key);
    });
    this.sinceCheck += value.length;
    if (this.sinceCheck >= this.checkEvery) {
      this.sinceCheck = 0;
      this.startEviction();
    }
  }

  /** Pages in use by the cache's databases, in bytes: what maxBytes bounds (the file may keep freed pages for reuse). */
  usedBytes(): number {
    let pages = 0;
    let pageSize = 4096;
    for (const db of [this.vectors, this.stamps, this.byGeneration]) {
      const s = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      pageSize = s.pageSize;
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return pages * pageSize;
  }

  /** Waits until every queued write is committed and a running eviction is done. */
  async flush(): Promise<void> {
    for (;;) {
      this.writeQueued();
      const [write, eviction] = [this.lastWrite, this.eviction];
      await write;
      await eviction;
      if (write === this.lastWrite && eviction === this.eviction) return;
    }
  }

  /** Flushes, evicts when over the bound, closes the store. Idempotent; get and put do nothing afterwards. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flush();
      if (this.opts.maxBytes) await this.evictIfOver().catch((err) => this.warn('eviction', err));
      await this.env.close();
    })();
    return this.closing;
  }

  private restamp(key: Buffer): void {
    const g = this.generation;
    const seen = this.stampOf(key);
    if (seen !== undefined && seen >= g) return;
    const hex = key.toString('hex');
    if (this.queuedStamps.has(hex)) return;
    this.queuedStamps.add(hex);
    this.enqueue(() => {
      const previous = this.stampOf(key);
      if (previous !== undefined && previous >= g) return;
      // Only while the vector is still there: a concurrent eviction must not leave a stamp without a vector.
      void this.vectors.ifVersion(key, lmdb().IF_EXISTS, () => {
        void this.stamps.put(key, STAMP_VALUE, g);
        if (previous !== undefined) void this.byGeneration.remove(previous, key);
        void this.byGeneration.put(g, key);
      });
    });
  }

  private enqueue(write: () => void): void {
    this.queue.push(write);
    if (this.queue.length >= WRITE_BATCH) this.writeQueued();
    else this.writeTimer ??= setTimeout(() => this.writeQueued(), WRITE_DELAY_MS);
  }

  /** Hands the queued writes to LMDB as one batch: one transaction, so each entry lands whole or not at all. */
  private writeQueued(): void {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    if (this.queue.length === 0) return;
    const writes = this.queue;
    const keys = this.queuedKeys;
    this.queue = [];
    this.queuedKeys = [];
    this.queuedStamps = new Set();
    let written: Promise<unknown>;
    try {
      written = this.env.batch(() => {
        for (const w of writes) w();
      });
    } catch (err) {
      written = Promise.reject(err);
    }
    this.track(
      written.finally(() => {
        for (const [hex, value] of keys) if (this.pending.get(hex) === value) this.pending.delete(hex);
      }),
      keys.length,
    );
  }

  private stampOf(key: Buffer): number | undefined {
    try {
      return this.stamps.getEntry(key)?.version;
    } catch {
      return undefined;
    }
  }

  private track(write: Promise<unknown>, vectors: number): void {
    const settled = write.then(
      () => undefined,
      (err: unknown) => {
        this.stats.failed += vectors;
        this.warn('write', err);
      },
    );
    this.lastWrite = Promise.all([this.lastWrite, settled]);
  }

  private startEviction(): void {
    if (this.eviction) {
      // Writes went on while it ran: look again when it is done.
      this.recheck = true;
      return;
    }
    // Next turn: a put must stay a few microseconds.
    this.eviction = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.evictIfOver())
      .catch((err) => this.warn('eviction', err))
      .finally(() => {
        this.eviction = undefined;
        if (this.recheck && !this.closing) {
          this.recheck = false;
          this.startEviction();
        }
      });
  }

  private async evictIfOver(): Promise<void> {
    const max = this.opts.maxBytes;
    // Measure what this process has written, not what happens to be committed yet.
    this.writeQueued();
    await this.lastWrite;
    if (!max || this.usedBytes() <= max) return;
    const target = max * EVICT_TARGET;
    for (let used = this.usedBytes(); used > target; used = this.usedBytes()) {
      // Sized from the average entry so as not to overshoot the target by much.
      const entries = this.vectors.getStats() as { entryCount: number };
      const perEntry = used / Math.max(1, entries.entryCount);
      const limit = Math.min(EVICT_CHUNK, Math.max(1, Math.ceil((used - target) / perEntry)));
      // Oldest generation first; within a generation, key order (hash order: arbitrary, which is what we want).
      const chunk = [...this.byGeneration.getRange({ limit })].map(({ key, value }) => ({ g: key, key: Buffer.from(value) }));
      if (chunk.length === 0) break;
      const removals = chunk.map(({ g, key }) => {
        // The index entry goes either way: evicted, or stale (the stamp moved on and has its own entry).
        // Same transaction, and the condition is checked at commit: writes queued before (ours or another
        // process's) are seen, so a vector stamped since is kept.
        void this.byGeneration.remove(g, key);
        return this.stamps.ifVersion(key, g, () => {
          void this.vectors.remove(key);
          void this.stamps.remove(key);
        });
      });
      const done = await Promise.all(removals);
      this.stats.evicted += done.filter(Boolean).length;
      this.env.resetReadTxn();
    }
  }

  private warn(kind: 'read' | 'write' | 'eviction', err: unknown): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.opts.onWarning?.(`embedding cache ${kind} failed (caching goes on where it can): ${oneLine(err)}`);
  }
}

/** Fixed-length binary key: the namespace is length-prefixed so that no (namespace, input) pair can alias another. */
/** Fixed-length key of a file path in the file-digests database. */
function fileKey(file: string): Buffer {
  return crypto.createHash('sha256').update(`file\n${file}`).digest();
}

export function cacheKey(namespace: string, inputKey: string): Buffer {
  const ns = Buffer.from(namespace, 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(ns.length, 0);
  return crypto.createHash('sha256').update(len).update(ns).update(inputKey, 'utf8').digest();
}

export function encodeVector(v: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + v.length * 4);
  out[0] = MAGIC[0];
  out[1] = MAGIC[1];
  out[2] = MAGIC[2];
  out[3] = 0;
  out.writeUInt32LE(v.length, 4);
  if (LITTLE_ENDIAN) out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), HEADER_BYTES);
  else for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i], HEADER_BYTES + 4 * i);
  return out;
}

/** The vector in a stored value, or undefined when the value is not one (wrong header, short or long). */
export function decodeVector(value: Uint8Array): Float32Array | undefined {
  if (value.length < HEADER_BYTES || value[0] !== MAGIC[0] || value[1] !== MAGIC[1] || value[2] !== MAGIC[2]) return undefined;
  const view = Buffer.from(value.buffer, value.byteOffset, value.length);
  const dim = view.readUInt32LE(4);
  if (dim === 0 || value.length !== HEADER_BYTES + 4 * dim) return undefined;
  const out = new Float32Array(dim);
  // Copied: getBinaryFast's buffer is reused by the next read.
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(value.subarray(HEADER_BYTES, HEADER_BYTES + 4 * dim));
  else for (let i = 0; i < dim; i++) out[i] = view.readFloatLE(HEADER_BYTES + 4 * i);
  return out;
}
