// Getting a registry model into the cache: resolve the revision, fetch each file (verified), derive the tapped
// image model when the export only has logits. Offline, the same walk only checks what is already there.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { downloadFile, fetchFileInfo, hubFileUrl, type HubOptions } from './download.js';
import { atomicWrite, ModelCache, type CachedFile, type PullRecord, type Verification } from './cache.js';
import { defaultVariant, filesToFetch, shippedFolder, type ModelSelector, type RegistryEntry } from './registry.js';
import { classifierFeature, tapModel, type TapInfo, type TapMode } from './tap.js';
import { readModel } from './onnx-graph.js';
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
  /** Shipped with categorize (dir is the package's folder): nothing was or will be downloaded. */
  shipped?: boolean;
}

/**
 * The repository folder name of an entry: hub repository, local/<name> for a model added from files, shipped/<name>
 * for a model shipped with categorize (its cache folder holds only what is derived from it, e.g. the tap).
 */
export function entryRepository(entry: RegistryEntry): string {
  return entry.repository ?? `${entry.shipped ? 'shipped' : 'local'}/${entry.id.slice(entry.kind.length + 1)}`;
}

export interface CacheState {
  /** Pinned commit, else the commit the cache resolved 'main' to, else null. */
  revision: string | null;
  /** The folder holding the files (a shipped model's: the package's), or null when no revision is known. */
  dir: string | null;
  record?: PullRecord;
  /** complete: every file present; partial: some; absent: none. From the records, without hashing. */
  state: 'complete' | 'partial' | 'absent';
}

/** What the cache holds of a registry model's variant (a shipped model is always there, unless the install is damaged). */
export function cacheState(sel: ModelSelector, cache: ModelCache): CacheState {
  const { entry, variant } = sel;
  if (entry.shipped) {
    const dir = shippedFolder(entry);
    return { revision: entry.revision, dir, state: fs.existsSync(path.join(dir, entry.variants[variant]!.file)) ? 'complete' : 'absent' };
  }
  const repository = entryRepository(entry);
  const revision = entry.revision ?? cache.readRef(repository, 'main') ?? null;
  const dir = revision ? cache.folder(repository, revision) : null;
  const record = dir ? cache.readRecord(dir) : undefined;
  const wanted = filesToFetch(entry, variant).map((f) => f.file);
  const present = wanted.filter((f) => record?.files[f] && fs.existsSync(path.join(dir!, f))).length;
  return { revision, dir, record, state: present === wanted.length ? 'complete' : present > 0 ? 'partial' : 'absent' };
}

/**
 * A shipped model's file checked against the registry's pins (size and sha256; 3.7 MB hash in milliseconds):
 * nothing to download, ever. `revision` (a bundle's) must be the one shipped.
 */
export function checkShipped(sel: ModelSelector, revision?: string): PulledModel {
  const { entry, variant } = sel;
  if (revision && revision !== entry.revision) {
    throw new ConfigError(`${entry.kind} model ${entry.id} at revision ${revision} is not the one this categorize ships (${entry.revision}): run the bundle with the categorize version that trained it, or train it again`, 'model_missing');
  }
  const dir = shippedFolder(entry);
  const want = entry.variants[variant]!;
  const abs = path.join(dir, want.file);
  const damaged = (what: string): never => {
    throw new ConfigError(`the ${entry.kind} model ${entry.id} shipped with categorize is damaged: ${abs} ${what}; reinstall categorize`, 'model_files');
  };
  if (!fs.existsSync(abs)) damaged('is missing');
  const st = fs.statSync(abs);
  if (st.size !== want.size) damaged(`has ${st.size} bytes, the registry pins ${want.size}`);
  const sha256 = sha256File(abs);
  if (sha256 !== want.sha256) damaged(`has sha256 ${sha256}, the registry pins ${want.sha256}`);
  const file: PulledFile = { file: want.file, size: st.size, sha256, verified: 'registry', at: st.mtime.toISOString(), cached: true };
  return { id: entry.id, variant, repository: null, revision: entry.revision!, dir, modelFile: abs, sha256, output: entry.output, files: [file], shipped: true };
}

/** A shipped model ready to run: checked, and for a classifier export its tap, made once into the model cache. */
async function pullShipped(sel: ModelSelector, opts: PullOptions): Promise<PulledModel> {
  const pulled = checkShipped(sel, opts.revision);
  const { entry } = sel;
  if (entry.kind !== 'image' || !entry.tap) return pulled;
  // The package's folder may be read-only (a global install): what is derived goes to the cache, keyed by the hash.
  const folder = opts.cache.folder(entryRepository(entry), pulled.revision);
  const key = pulled.files[0]!.file;
  const derived = await ensureTap(`${entry.id} (${key})`, tapMode(entry.tap), { abs: pulled.modelFile, key, sha256: pulled.sha256 }, folder, opts.cache.readRecord(folder)?.taps[key], { repository: null, revision: pulled.revision }, entry.output, opts);
  return { ...pulled, tap: derived.tap, output: derived.tap.output, ...(derived.file ? { modelFile: derived.file, sha256: derived.sha256 } : {}) };
}

const tapMode = (tap: string): TapMode => (tap === 'auto' || tap === 'logits' ? tap : { tensor: tap });

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
  if (sel.entry.shipped) return pullShipped(sel, opts);
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
    const derived = await ensureTap(`${entry.id} (${onnx.file})`, tapMode(entry.tap), { abs: path.join(dir, onnx.file), key: onnx.file, sha256: onnx.sha256 }, dir, rec?.taps[onnx.file], init, entry.output, opts);
    tap = derived.tap;
    output = tap.output;
    if (derived.file) {
      modelFile = derived.file;
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

/** The ONNX file a tap is made from: where it is, its name in the cache record (`taps` key), its sha256. */
interface TapSource {
  abs: string;
  key: string;
  sha256: string;
}

/**
 * The tapped model for an image classifier export: made once per source file into `folder` (a cache folder),
 * recorded there, re-made if deleted. `file` is the derived model's absolute path; absent when the source already
 * outputs the pooled tensor (then the source runs as it is).
 */
async function ensureTap(
  label: string,
  mode: TapMode,
  src: TapSource,
  folder: string,
  known: PullRecord['taps'][string] | undefined,
  init: Omit<PullRecord, 'files' | 'taps'>,
  fallbackOutput: string,
  opts: Pick<PullOptions, 'cache' | 'log'>,
): Promise<{ tap: TapInfo; file?: string; sha256: string }> {
  if (known && known.file === src.key) return { tap: known.tap, sha256: src.sha256 };
  if (known && fs.existsSync(path.join(folder, known.file))) return { tap: known.tap, file: path.join(folder, known.file), sha256: known.sha256 };
  const original = new Uint8Array(fs.readFileSync(src.abs));
  const { bytes, tap } = tapModel(original, mode, label);
  if (!tap) return { tap: { output: fallbackOutput, source: fallbackOutput, op: 'logits', dequantized: false, dim: null }, sha256: src.sha256 };
  let file = src.key;
  // The export may already output the pooled tensor: then there is nothing to derive.
  if (bytes !== original) {
    file = src.key.replace(/\.onnx$/i, '') + '.pooled.onnx';
    fs.mkdirSync(path.dirname(path.join(folder, file)), { recursive: true });
    atomicWrite(path.join(folder, file), bytes);
    opts.log?.(`${label}: exposed the pooled features ${tap.source} (${tap.op}${tap.dequantized ? ', dequantized' : ''}) as output '${tap.output}' in ${path.join(folder, file)}`);
  }
  const derived = file !== src.key;
  const abs = derived ? path.join(folder, file) : src.abs;
  const entryTap = { file, size: fs.statSync(abs).size, sha256: derived ? sha256File(abs) : src.sha256, tap };
  await opts.cache.updateRecord(folder, init, (r) => {
    r.taps[src.key] = entryTap;
  });
  return { tap, file: derived ? abs : undefined, sha256: entryTap.sha256 };
}

/** A local image model (a path given as --image-model) after the tap decision. */
export interface LocalImageTap {
  /** The pooled feature exposed (as `models import` would), or null: the model runs as it is. */
  tap: TapInfo | null;
  /** The derived model (in the model cache) to run instead of the file; absent when the file already outputs the tap. */
  file?: string;
  /** Without a tap: the graph ends in a matrix product (a classifier, likely) with no pooled feature found before it. */
  classifierOutput: boolean;
  /** Without a tap: the output the encoder takes (the graph's first). */
  output?: string;
}

/**
 * A classifier export given as a path is tapped as `models import` taps it, but only where the last global average
 * pool feeds the classifier (a matrix product, through reshapes): a pool inside a block (squeeze-excitation) of a
 * feature extractor is not the embedding. The derived model lives in the model cache, in a folder keyed by the
 * file's sha256, so the user's folder is never written to and an edited file is tapped anew.
 */
export async function tapLocalImageModel(onnxFile: string, opts: Pick<PullOptions, 'cache' | 'log'>): Promise<LocalImageTap> {
  const sha256 = sha256File(onnxFile);
  const key = path.basename(onnxFile);
  const revision = `sha256-${sha256.slice(0, 12)}`;
  const folder = opts.cache.folder(`file/${key.replace(/\.onnx$/i, '')}`, revision);
  const known = opts.cache.readRecord(folder)?.taps[key];
  if (!known) {
    let feature: ReturnType<typeof classifierFeature>;
    try {
      feature = classifierFeature(readModel(fs.readFileSync(onnxFile)));
    } catch {
      // Not a readable ONNX model: the encoder's own load says so, naming the file.
      return { tap: null, classifierOutput: false };
    }
    if (!feature.pooled) return { tap: null, classifierOutput: feature.classifier, output: feature.outputs[0] };
  }
  // No log line of its own: the caller says what the embedding is (resolve.ts localImageNotice).
  const derived = await ensureTap(onnxFile, 'auto', { abs: onnxFile, key, sha256 }, folder, known, { repository: null, revision }, '', { cache: opts.cache });
  return { tap: derived.tap, file: derived.file, classifierOutput: false };
}
