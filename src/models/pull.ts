// Getting a registry model into the cache: resolve the revision, fetch each file (verified), derive the tapped
// image model when the export only has logits. Offline, the same walk only checks what is already there.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { downloadFile, fetchFileInfo, hubFileUrl, type HubOptions } from './download.js';
import { atomicWrite, ModelCache, type CachedFile, type PullRecord, type Verification } from './cache.js';
import { defaultVariant, filesToFetch, type ModelSelector, type RegistryEntry } from './registry.js';
import { tapModel, type TapInfo } from './tap.js';
import { sha256File } from './bundle.js';

export interface FileProgress {
  update(received: number, total: number | undefined): void;
  done(): void;
}

export interface PullOptions {
  cache: ModelCache;
  hub: HubOptions;
  /** Never touch the network: only check (and complete, e.g. a tap) what the cache holds. */
  offline: boolean;
  /** What to tell the user when a file is missing offline (e.g. "run `categorize models pull …`"). */
  missingHint?: string;
  /** A commit to use instead of the registry's (e.g. the one a bundle recorded). */
  revision?: string;
  progress?: (label: string, size: number | undefined) => FileProgress;
  log?: (line: string) => void;
}

export interface PulledFile extends CachedFile {
  file: string;
  /** Already in the cache (nothing downloaded). */
  cached: boolean;
}

export interface PulledModel {
  id: string;
  variant: string;
  repository: string | null;
  revision: string;
  dir: string;
  /** Absolute path of the ONNX file the encoder runs (the tapped one for a classifier export). */
  modelFile: string;
  /** sha256 of modelFile. */
  sha256: string;
  /** Output holding the embedding. */
  output: string;
  tap?: TapInfo;
  files: PulledFile[];
}

/** The repository folder name of an entry: hub repository, or local/<name> for a model added from files. */
export function entryRepository(entry: RegistryEntry): string {
  return entry.repository ?? `local/${entry.id.slice(entry.kind.length + 1)}`;
}

export function pullCommand(sel: ModelSelector, revision?: string): string {
  const variant = sel.variant === defaultVariant(sel.entry) ? '' : ` --variant ${sel.variant}`;
  return `categorize models pull ${sel.entry.id}${variant}${revision && revision !== sel.entry.revision ? ` --revision ${revision}` : ''}`;
}

function missing(sel: ModelSelector, what: string, opts: PullOptions, revision?: string): never {
  const how = sel.entry.repository === null
    ? `add it again with categorize models add${sel.entry.source ? ` ${sel.entry.source}` : ''} --kind ${sel.entry.kind} --id ${sel.entry.id}`
    : (opts.missingHint ?? `run \`${pullCommand(sel, revision)}\``);
  throw new ConfigError(`${sel.entry.kind} model ${sel.entry.id} (${sel.variant}) is not in the model cache ${opts.cache.root} (${what}); ${how}`, 'model_missing');
}

async function resolveRevision(sel: ModelSelector, opts: PullOptions): Promise<{ revision: string; branch?: string }> {
  const { entry } = sel;
  if (opts.revision) return { revision: opts.revision };
  if (entry.revision) return { revision: entry.revision };
  const repository = entryRepository(entry);
  const known = opts.cache.readRef(repository, 'main');
  if (opts.offline || entry.repository === null) {
    if (!known) missing(sel, 'never pulled', opts);
    return { revision: known };
  }
  // The registry pins files by sha256 but not the commit: resolve the branch once and record what it was.
  const info = await fetchFileInfo(hubFileUrl(opts.hub.endpoint, entry.repository, 'main', entry.variants[sel.variant]!.file), opts.hub);
  if (!info.commit) {
    opts.log?.(`warning: ${opts.hub.endpoint} did not say which commit 'main' of ${entry.repository} is; caching it as 'main' (files are still verified by sha256 where known)`);
    return { revision: 'main', branch: 'main' };
  }
  return { revision: info.commit, branch: 'main' };
}

export async function pullModel(sel: ModelSelector, opts: PullOptions): Promise<PulledModel> {
  const { entry, variant } = sel;
  const repository = entryRepository(entry);
  const { revision, branch } = await resolveRevision(sel, opts);
  const dir = opts.cache.folder(repository, revision);
  const record = opts.cache.readRecord(dir);
  const files: PulledFile[] = [];
  for (const want of filesToFetch(entry, variant)) {
    const dest = path.join(dir, want.file);
    const have = record?.files[want.file];
    if (opts.offline || entry.repository === null) {
      if (!have || !fs.existsSync(dest)) missing(sel, `missing ${want.file}`, opts, revision);
      files.push({ file: want.file, ...have, cached: true });
      continue;
    }
    files.push(await fetchOne(entry.repository, revision, want, dest, have, opts));
  }
  if (branch && revision !== branch) opts.cache.writeRef(repository, branch, revision);
  const init = { repository: entry.repository, revision };
  let rec: PullRecord | undefined = record;
  const fresh = files.filter((f) => !f.cached || !record?.files[f.file]);
  if (fresh.length > 0 || !record) {
    rec = await opts.cache.updateRecord(dir, init, (r) => {
      for (const f of files) r.files[f.file] = { size: f.size, sha256: f.sha256, verified: f.verified, at: f.at };
    });
  }
  const onnx = files[0]!;
  let modelFile = path.join(dir, onnx.file);
  let sha256 = onnx.sha256;
  let output = entry.output;
  let tap: TapInfo | undefined;
  if (entry.kind === 'image' && entry.tap) {
    const derived = await ensureTap(entry, dir, onnx, rec!, init, opts);
    tap = derived.tap;
    output = tap.output;
    if (derived.file) {
      modelFile = path.join(dir, derived.file);
      sha256 = derived.sha256;
    }
  }
  return { id: entry.id, variant, repository: entry.repository, revision, dir, modelFile, sha256, output, tap, files };
}

async function fetchOne(
  repository: string,
  revision: string,
  want: { file: string; size: number | null; sha256: string | null },
  dest: string,
  have: CachedFile | undefined,
  opts: PullOptions,
): Promise<PulledFile> {
  const url = hubFileUrl(opts.hub.endpoint, repository, revision, want.file);
  let expected = want.sha256 ?? undefined;
  let verified: Verification | undefined = expected ? 'registry' : undefined;
  if (!expected && fs.existsSync(dest)) {
    if (have) {
      // Small non-LFS files (configs) have no content hash on the hub: compare with what we recorded when they arrived.
      expected = have.sha256;
      verified = have.verified;
    } else {
      // A complete file nobody recorded: check it against the hub's LFS sha256 before trusting it. (A file still
      // to download needs no such look-up: downloadFile checks the hub's hash from the download's own headers.)
      const info = await fetchFileInfo(url, opts.hub);
      if (info.sha256) {
        expected = info.sha256;
        verified = 'hub';
      }
    }
  }
  const bar = opts.progress?.(want.file, want.size ?? undefined);
  try {
    const result = await downloadFile({ url, dest, sha256: expected, size: want.size ?? undefined, onProgress: bar ? (r, t) => bar.update(r, t) : undefined }, opts.hub);
    verified ??= result.verifiedAgainst === 'hub' ? 'hub' : 'unverified';
    return { file: want.file, size: result.size, sha256: result.sha256, verified, at: have && result.cached ? have.at : new Date().toISOString(), cached: result.cached };
  } finally {
    bar?.done();
  }
}

/** The tapped model for an image classifier export: made once per source file, recorded, re-made if deleted. */
async function ensureTap(
  entry: RegistryEntry,
  dir: string,
  onnx: PulledFile,
  record: PullRecord,
  init: Omit<PullRecord, 'files' | 'taps'>,
  opts: PullOptions,
): Promise<{ tap: TapInfo; file?: string; sha256: string }> {
  const known = record.taps[onnx.file];
  if (known && known.file === onnx.file) return { tap: known.tap, sha256: onnx.sha256 };
  if (known && fs.existsSync(path.join(dir, known.file))) return { tap: known.tap, file: known.file, sha256: known.sha256 };
  const mode = entry.tap === 'auto' ? 'auto' : { tensor: entry.tap! };
  const src = path.join(dir, onnx.file);
  const original = new Uint8Array(fs.readFileSync(src));
  const { bytes, tap } = tapModel(original, mode, `${entry.id} (${onnx.file})`);
  if (!tap) return { tap: { output: entry.output, source: entry.output, op: 'logits', dequantized: false, dim: null }, sha256: onnx.sha256 };
  let file = onnx.file;
  // The export may already output the pooled tensor: then there is nothing to derive.
  if (bytes !== original) {
    file = onnx.file.replace(/\.onnx$/i, '') + '.pooled.onnx';
    atomicWrite(path.join(dir, file), bytes);
    opts.log?.(`${entry.id}: exposed the pooled features ${tap.source} (${tap.op}${tap.dequantized ? ', dequantized' : ''}) as output '${tap.output}' in ${file}`);
  }
  const abs = path.join(dir, file);
  const entryTap = { file, size: fs.statSync(abs).size, sha256: file === onnx.file ? onnx.sha256 : sha256File(abs), tap };
  await opts.cache.updateRecord(dir, init, (r) => {
    r.taps[onnx.file] = entryTap;
  });
  return { tap, file: file === onnx.file ? undefined : file, sha256: entryTap.sha256 };
}
