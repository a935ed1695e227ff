// `categorize models`: list the registry and the cache, pull (verified), verify the cache, describe an ONNX file,
// and add local models to the user's registry.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, UsageError } from '../errors.js';
import { sha256File } from '../models/bundle.js';
import { describeOnnx, type OnnxDescription } from '../models/inspect.js';
import { cacheState, checkShipped, entryRepository, pullModel, type PulledModel } from '../models/pull.js';
import { defaultModel, defaultVariant, findModel, saveUserEntry, shippedFolder, type ModelKind, type ModelSelector, type RegistryEntry } from '../models/registry.js';
import type { ModelContext } from '../models/resolve.js';
import { imagenetPreprocess } from '../embed/image-preprocess.js';
import { onnxInFolder, sentenceTransformersMaxLength } from '../models/model-dir.js';

export interface ModelListRow {
  id: string;
  kind: ModelKind;
  isDefault: boolean;
  variant: string;
  file: string;
  /** Bytes of the ONNX file: the registry's figure, else the cached file's, else null. */
  size: number | null;
  /** Pinned commit, else the commit the cache resolved 'main' to, else null. */
  revision: string | null;
  pinned: boolean;
  /** complete: every file present; partial: some; absent: none. A shipped model is complete (unless the install is damaged). */
  cached: 'complete' | 'partial' | 'absent';
  /** Shipped with categorize (dir is the package's folder): never downloaded. */
  shipped: boolean;
  dir: string | null;
  license: string | null;
  repository: string | null;
}

/** One row per registry entry and variant; what is cached is read from the cache records (no hashing). */
export function listModels(ctx: Pick<ModelContext, 'registry' | 'cache'>): ModelListRow[] {
  const rows: ModelListRow[] = [];
  for (const entry of ctx.registry.entries) {
    for (const [variant, v] of Object.entries(entry.variants)) {
      const { revision, dir, record, state } = cacheState({ entry, variant }, ctx.cache);
      rows.push({
        id: entry.id,
        kind: entry.kind,
        isDefault: ctx.registry.defaults[entry.kind] === entry.id && variant === defaultVariant(entry),
        variant,
        file: v.file,
        size: v.size ?? record?.files[v.file]?.size ?? null,
        revision,
        pinned: entry.revision !== null,
        cached: state,
        shipped: entry.shipped !== undefined,
        dir: state !== 'absent' ? dir : null,
        license: entry.license ?? null,
        repository: entry.repository,
      });
    }
  }
  return rows;
}

/** The selectors `models pull` works on: the named ones, or the registry's default text and image models. */
export function pullSelection(ctx: Pick<ModelContext, 'registry'>, refs: string[], variant?: string): ModelSelector[] {
  if (refs.length === 0) {
    const defaults = (['text', 'image'] as const).filter((k) => ctx.registry.defaults[k]).map((k) => defaultModel(ctx.registry, k));
    return variant ? defaults.map((d) => findModel(ctx.registry, d.entry.id, { variant })) : defaults;
  }
  return refs.map((r) => findModel(ctx.registry, r, { variant }));
}

export async function pullModels(selection: ModelSelector[], opts: { revision?: string }, ctx: ModelContext): Promise<PulledModel[]> {
  if (opts.revision && selection.length !== 1) throw new UsageError('--revision applies to one model at a time', 'revision');
  const pulled: PulledModel[] = [];
  for (const sel of selection) {
    // Shipped: nothing to fetch; its hash is checked all the same (its tap is made at first use, into the cache).
    if (sel.entry.shipped) {
      pulled.push(checkShipped(sel, opts.revision));
      continue;
    }
    pulled.push(
      await pullModel(sel, {
        cache: ctx.cache,
        hub: ctx.hub,
        offline: ctx.offline,
        missingHint: ctx.offline ? 'offline (HF_HUB_OFFLINE or --offline): pull it without --offline on a machine with network' : undefined,
        revision: opts.revision,
        progress: ctx.progress,
        log: ctx.log,
      }),
    );
  }
  return pulled;
}

export interface VerifyProblem {
  dir: string;
  file: string;
  problem: string;
}

export interface VerifyResult {
  folders: number;
  files: number;
  /** Of those, files shipped with categorize (checked against the registry's pins). */
  shipped: number;
  bytes: number;
  problems: VerifyProblem[];
}

/**
 * Re-hashes every file the cache records (and every tapped model), comparing with the record and the registry, and
 * every file shipped with categorize, comparing with the registry's pins.
 */
export function verifyCache(ctx: Pick<ModelContext, 'registry' | 'cache'>, onFile?: (dir: string, file: string) => void): VerifyResult {
  const result: VerifyResult = { folders: 0, files: 0, shipped: 0, bytes: 0, problems: [] };
  for (const e of ctx.registry.entries.filter((x) => x.shipped)) {
    const folder = shippedFolder(e);
    result.folders++;
    for (const v of Object.values(e.variants)) {
      onFile?.(folder, v.file);
      result.files++;
      result.shipped++;
      const abs = path.join(folder, v.file);
      if (!fs.existsSync(abs)) {
        result.problems.push({ dir: folder, file: v.file, problem: `missing (shipped with categorize as ${e.id}: reinstall categorize)` });
        continue;
      }
      const size = fs.statSync(abs).size;
      result.bytes += size;
      const actual = sha256File(abs);
      if (size !== v.size || actual !== v.sha256) result.problems.push({ dir: folder, file: v.file, problem: `sha256 ${actual} (${size} bytes), registry pins ${v.sha256} (${v.size} bytes) for the shipped ${e.id}: reinstall categorize` });
    }
  }
  const registryHash = new Map<string, string>();
  for (const e of ctx.registry.entries) {
    for (const f of [...Object.values(e.variants), ...e.files]) {
      if (typeof f !== 'string' && f.sha256) registryHash.set(`${entryRepository(e)}\u0000${f.file}`, f.sha256);
    }
  }
  for (const { folder, record } of ctx.cache.listFolders()) {
    result.folders++;
    const repository = record.repository ?? path.basename(folder).replace(/@.*$/, '').replace(/--/g, '/');
    const check = (file: string, expected: string, size: number) => {
      onFile?.(folder, file);
      result.files++;
      const abs = path.join(folder, file);
      if (!fs.existsSync(abs)) return result.problems.push({ dir: folder, file, problem: 'missing' });
      const actualSize = fs.statSync(abs).size;
      result.bytes += actualSize;
      if (actualSize !== size) return result.problems.push({ dir: folder, file, problem: `size ${actualSize}, recorded ${size}` });
      const actual = sha256File(abs);
      if (actual !== expected) return result.problems.push({ dir: folder, file, problem: `sha256 ${actual}, recorded ${expected}` });
      const pinned = registryHash.get(`${repository}\u0000${file}`);
      if (pinned && pinned !== actual) result.problems.push({ dir: folder, file, problem: `sha256 ${actual}, registry pins ${pinned}` });
      return 0;
    };
    for (const [file, f] of Object.entries(record.files)) check(file, f.sha256, f.size);
    // A tap whose file is its source's name made nothing (the export already had the output): nothing to check here.
    for (const [source, t] of Object.entries(record.taps)) if (!record.files[t.file] && t.file !== source) check(t.file, t.sha256, t.size);
  }
  return result;
}

/** `models info`: an .onnx path, or a registry reference whose cached ONNX file is described. */
export function modelInfo(target: string, ctx: Pick<ModelContext, 'registry' | 'cache'>): OnnxDescription {
  if (fs.existsSync(target)) {
    const st = fs.statSync(target);
    const file = st.isDirectory() ? onnxInFolder(target) : target;
    if (!file) throw new ConfigError(`${target} holds no model.onnx or onnx/model.onnx`, 'model_files');
    return describeOnnx(file);
  }
  const sel = findModel(ctx.registry, target);
  const row = listModels(ctx).find((r) => r.id === sel.entry.id && r.variant === sel.variant);
  const file = row?.dir ? path.join(row.dir, sel.entry.variants[sel.variant]!.file) : undefined;
  if (!file || !fs.existsSync(file)) throw new ConfigError(`${sel.entry.id} (${sel.variant}) is not in the model cache ${ctx.cache.root}: run \`categorize models pull ${sel.entry.id}\` first, or give a path`, 'model_missing');
  return describeOnnx(file);
}

export interface AddOptions {
  kind: ModelKind;
  /** Name or id (`my-vit` or `image:my-vit`). */
  id: string;
  /** Image models: expose pooled features of a classifier ('auto', a tensor name, or 'logits' to keep the output). */
  tap?: string;
  /** Output holding the embedding, when not the usual one. */
  output?: string;
  /** Text models: tokens per text (default: sentence_bert_config.json's, else 256). */
  maxLength?: number;
  license?: string;
}

const TEXT_FILES = ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'special_tokens_map.json', 'sentence_bert_config.json', 'categorize-model.json'];

/**
 * Registers local files as a model: copies them into the cache (so `models verify` covers them and the source may
 * move), records their hashes, writes a user registry entry, and makes the tap for an image classifier.
 */
/** text or image, read from the model's inputs: token ids → text, one 4-D float tensor → image. */
export function inferModelKind(location: string): 'text' | 'image' {
  const src = path.resolve(location);
  if (!fs.existsSync(src)) throw new UsageError(`models add: ${location} does not exist`, 'model_files');
  const onnx = fs.statSync(src).isDirectory() ? onnxInFolder(src) : src;
  if (!onnx || !onnx.toLowerCase().endsWith('.onnx')) throw new UsageError(`models add: ${location} is not an .onnx file or a folder with model.onnx`, 'model_files');
  const inputs = describeOnnx(onnx).inputs;
  if (inputs.some((i) => i.name === 'input_ids')) return 'text';
  if (inputs.length === 1 && inputs[0].shape.length === 4 && inputs[0].type.startsWith('float')) return 'image';
  throw new UsageError(`models add: cannot tell whether ${location} is a text or an image model (inputs: ${inputs.map((i) => i.name).join(', ')}); say --kind`, 'model_ref');
}

export async function addModel(location: string, opts: AddOptions, ctx: ModelContext): Promise<{ entry: RegistryEntry; pulled: PulledModel }> {
  const src = path.resolve(location);
  if (!fs.existsSync(src)) throw new UsageError(`models add: ${location} does not exist`, 'model_files');
  const name = opts.id.replace(/^(text|image):/, '');
  if (opts.id !== name && !opts.id.startsWith(`${opts.kind}:`)) throw new UsageError(`--id ${opts.id} does not match --kind ${opts.kind}`, 'model_ref');
  if (!/^[\w.\-]+$/.test(name)) throw new UsageError(`--id must be letters, digits, '.', '_' or '-', got '${opts.id}'`, 'model_ref');
  const st = fs.statSync(src);
  const dir = st.isDirectory() ? src : path.dirname(src);
  const onnxSrc = st.isDirectory() ? onnxInFolder(src) : src;
  if (!onnxSrc || !onnxSrc.toLowerCase().endsWith('.onnx')) throw new UsageError(`models add: ${location} is not an .onnx file or a folder with model.onnx`, 'model_files');
  const extras = opts.kind === 'text' ? TEXT_FILES.filter((f) => fs.existsSync(path.join(dir, f))) : fs.existsSync(path.join(dir, 'categorize-model.json')) && st.isDirectory() ? ['categorize-model.json'] : [];
  if (opts.kind === 'text') {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (!extras.includes(f)) throw new UsageError(`models add: a text model needs ${f} beside the ONNX file in ${dir}`, 'model_files');
  }
  const sha = sha256File(onnxSrc);
  const revision = `sha256-${sha.slice(0, 12)}`;
  const id = `${opts.kind}:${name}`;
  const shipped = ctx.registry.entries.find((e) => e.id === id && e.shipped);
  if (shipped) ctx.log?.(`note: ${id} is shipped with categorize (${shippedFolder(shipped)}); this entry replaces it in ${ctx.cache.userRegistryFile}`);
  const repository = `local/${name}`;
  const target = ctx.cache.folder(repository, revision);
  const files: Record<string, { from: string }> = { 'model.onnx': { from: onnxSrc } };
  for (const f of extras) files[f] = { from: path.join(dir, f) };
  fs.mkdirSync(target, { recursive: true });
  const recorded: Record<string, { size: number; sha256: string }> = {};
  for (const [f, { from }] of Object.entries(files)) {
    const dest = path.join(target, f);
    const tmp = `${dest}.${process.pid}.tmp`;
    fs.copyFileSync(from, tmp);
    fs.renameSync(tmp, dest);
    recorded[f] = { size: fs.statSync(dest).size, sha256: f === 'model.onnx' ? sha : sha256File(dest) };
  }
  const desc = describeOnnx(onnxSrc);
  const sentenceMax = sentenceTransformersMaxLength(dir);
  const tap = opts.kind === 'image' ? (opts.tap ?? 'auto') : undefined;
  const entry: RegistryEntry = {
    id,
    kind: opts.kind,
    description: `added from ${src}`,
    repository: null,
    revision,
    license: opts.license,
    inputs: desc.inputs.map((i) => i.name),
    output: opts.output ?? (opts.kind === 'text' ? 'last_hidden_state' : desc.outputs[0]!.name),
    ...(opts.kind === 'text' ? { pooling: 'mean' as const, normalize: true } : {}),
    dim: null,
    preprocess: opts.kind === 'text' ? { tokenizer: ['tokenizer.json', 'tokenizer_config.json'], maxLength: opts.maxLength ?? sentenceMax ?? 256 } : { ...imagenetPreprocess },
    variants: { fp32: { file: 'model.onnx', size: recorded['model.onnx']!.size, sha256: sha } },
    files: extras.map((f) => ({ file: f, size: recorded[f]!.size, sha256: recorded[f]!.sha256 })),
    ...(tap && tap !== 'logits' ? { tap } : {}),
    source: src,
  };
  if (opts.kind === 'text' && !desc.outputs.some((o) => o.name === entry.output)) {
    throw new UsageError(`models add: ${onnxSrc} has no output '${entry.output}' (outputs: ${desc.outputs.map((o) => o.name).join(', ')}); pass --output`, 'model_files');
  }
  const now = new Date().toISOString();
  await ctx.cache.updateRecord(target, { repository: null, revision }, (r) => {
    for (const [f, v] of Object.entries(recorded)) r.files[f] = { ...v, verified: 'local', at: now };
  });
  saveUserEntry(ctx.cache.userRegistryFile, entry);
  ctx.registry.entries = [...ctx.registry.entries.filter((e) => e.id !== id), entry];
  // The offline pull checks the copy and makes the tap, exactly as for a downloaded model.
  const pulled = await pullModel({ entry, variant: 'fp32' }, { cache: ctx.cache, hub: ctx.hub, offline: true, log: ctx.log });
  return { entry, pulled };
}
