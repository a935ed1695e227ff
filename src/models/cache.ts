// The model cache on disk: one folder per repository@revision holding the hub's file layout, a record of what was
// pulled and verified (sizes, sha256, taps), and refs from branch names to the commits they resolved to.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { TapInfo } from './tap.js';

/** `$CATEGORIZE_CACHE`, else `$XDG_CACHE_HOME/categorize`, else `~/.cache/categorize` (the caller passes the env). */
export function cacheRootFromEnv(env: Record<string, string | undefined>): string {
  if (env.CATEGORIZE_CACHE) return path.resolve(env.CATEGORIZE_CACHE);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'categorize');
}

/** How a cached file's hash was checked when it arrived. */
export type Verification = 'registry' | 'hub' | 'local' | 'unverified';

export interface CachedFile {
  size: number;
  sha256: string;
  verified: Verification;
  at: string;
}

export interface CachedTap {
  /** The derived ONNX file (relative to the folder) with the tap added as an output. */
  file: string;
  size: number;
  sha256: string;
  tap: TapInfo;
}

/** `.categorize-pull.json` in each cache folder. */
export interface PullRecord {
  repository: string | null;
  revision: string;
  files: Record<string, CachedFile>;
  /** Derived files keyed by the ONNX file they were made from. */
  taps: Record<string, CachedTap>;
}

const RECORD = '.categorize-pull.json';

const slug = (repository: string) => repository.replace(/\//g, '--');

export class ModelCache {
  constructor(readonly root: string) {}

  get userRegistryFile(): string {
    return path.join(this.root, 'registry.json');
  }

  /** Folder of repository@revision (a local model's "repository" is local/<name>). */
  folder(repository: string, revision: string): string {
    return path.join(this.root, 'models', `${slug(repository)}@${revision}`);
  }

  /** The commit a branch resolved to at the last pull, if any. */
  readRef(repository: string, branch: string): string | undefined {
    const file = path.join(this.root, 'refs', slug(repository), branch);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() || undefined : undefined;
  }

  writeRef(repository: string, branch: string, commit: string): void {
    const file = path.join(this.root, 'refs', slug(repository), branch);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    atomicWrite(file, commit + '\n');
  }

  readRecord(folder: string): PullRecord | undefined {
    const file = path.join(folder, RECORD);
    if (!fs.existsSync(file)) return undefined;
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as PullRecord;
    } catch {
      return undefined;
    }
  }

  /** Read-modify-write of a folder's record under a lock, so two pulls into one folder both land. */
  async updateRecord(folder: string, init: Omit<PullRecord, 'files' | 'taps'>, change: (r: PullRecord) => void): Promise<PullRecord> {
    fs.mkdirSync(folder, { recursive: true });
    const file = path.join(folder, RECORD);
    const release = await lockfile.lock(file, { realpath: false, lockfilePath: `${file}.lock`, stale: 30_000, retries: { retries: 100, minTimeout: 50, maxTimeout: 1000 } });
    try {
      const record: PullRecord = this.readRecord(folder) ?? { ...init, files: {}, taps: {} };
      change(record);
      atomicWrite(file, JSON.stringify(record, null, 2) + '\n');
      return record;
    } finally {
      await release();
    }
  }

  /** Every cache folder with its record (folders without one are skipped: nothing was completed there). */
  listFolders(): { folder: string; record: PullRecord }[] {
    const dir = path.join(this.root, 'models');
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .sort()
      .flatMap((name) => {
        const folder = path.join(dir, name);
        const record = this.readRecord(folder);
        return record ? [{ folder, record }] : [];
      });
  }
}

/** Write to a temporary file then rename: readers see the old or the new content, never half of one. */
export function atomicWrite(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}
