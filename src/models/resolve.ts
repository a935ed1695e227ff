// From what the user or a bundle names (a path, a registry id, nothing = the default) to an encoder to open:
// local files as they are, registry models from the cache, fetched only when downloads are allowed.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { EncoderRequest } from '../pipeline/encoders.js';
import type { HubOptions } from './download.js';
import type { EncoderBlock, ModelRef } from './bundle.js';
import type { ModelCache } from './cache.js';
import { pullModel, pullCommand, tapLocalImageModel, type FileProgress, type LocalImageTap, type PulledModel } from './pull.js';
import { defaultModel, findModel, looksLikeModelId, type ModelKind, type ModelSelector, type Registry } from './registry.js';
import { untappedImageOnnx } from './model-dir.js';

export interface ModelContext {
  registry: Registry;
  cache: ModelCache;
  hub: HubOptions;
  /** HF_HUB_OFFLINE / --offline: never touch the network. */
  offline: boolean;
  /** --allow-download: run/train/eval may fetch a missing registry model (off by default: nightly jobs stay reproducible). */
  allowDownload: boolean;
  /** --ignore-model-mismatch: a bundle's model whose sha256 differs is used with a warning instead of refused. */
  ignoreMismatch: boolean;
  progress?: (label: string, size: number | undefined) => FileProgress;
  log?: (line: string) => void;
}

export interface ResolvedModel {
  request: EncoderRequest;
  /** What a bundle trained with this model records. For local files `path` is absolute (the caller relativises it). */
  ref: ModelRef;
  pulled?: PulledModel;
  /** A local image model (a path) whose output nobody chose: the tap decision, and the ONNX file it was made on. */
  local?: LocalImageTap & { onnx: string };
}

/** Is a --text-model/--image-model argument a path (checked on disk first) rather than a registry reference? */
export function isModelPath(arg: string): boolean {
  return fs.existsSync(arg) || !looksLikeModelId(arg) || arg.includes(path.sep) || arg.startsWith('.');
}

async function fromRegistry(sel: ModelSelector, ctx: ModelContext, revision?: string): Promise<PulledModel> {
  const offline = ctx.offline || !ctx.allowDownload;
  const hint = ctx.offline
    ? `offline (HF_HUB_OFFLINE or --offline): fetch it first, with network, by \`${pullCommand(sel, revision)}\``
    : `run \`${pullCommand(sel, revision)}\` first, or pass --allow-download`;
  return pullModel(sel, { cache: ctx.cache, hub: ctx.hub, offline, missingHint: hint, revision, progress: ctx.progress, log: ctx.log });
}

function registryRequest(kind: ModelKind, p: PulledModel, entry: ModelSelector['entry']): EncoderRequest {
  return {
    kind,
    location: p.dir,
    file: p.modelFile,
    output: p.output,
    sha256: p.sha256,
    dim: entry.dim ?? undefined,
    text: kind === 'text' ? { maxLength: entry.preprocess.maxLength ?? 256, normalize: entry.normalize ?? true } : undefined,
    image: kind === 'image' ? imagePreprocess(entry) : undefined,
    owner: `${entry.id} in ${p.dir}`,
  };
}

function imagePreprocess(entry: ModelSelector['entry']): EncoderRequest['image'] {
  const p = entry.preprocess;
  if (p.resize === undefined || p.crop === undefined || !p.mean || !p.std) return undefined;
  return { resize: p.resize, crop: p.crop, mean: p.mean, std: p.std };
}

/**
 * The model a training run uses: `arg` is a folder, an .onnx file, or a registry reference; undefined means the
 * registry's default for the kind.
 */
export async function resolveModel(kind: ModelKind, arg: string | undefined, ctx: ModelContext): Promise<ResolvedModel> {
  if (arg !== undefined && isModelPath(arg)) {
    const location = path.resolve(arg);
    if (!fs.existsSync(location)) throw new ConfigError(`${kind} model not found: ${arg} (not a file or folder)`, 'model_files');
    const onnx = kind === 'image' ? untappedImageOnnx(location) : undefined;
    if (!onnx) return { request: { kind, location }, ref: { path: location } };
    // A classifier export (ResNet, MobileNetV2) would give class logits: its pooled feature is the embedding.
    const local = { ...(await tapLocalImageModel(onnx, ctx)), onnx };
    if (!local.tap) return { request: { kind, location }, ref: { path: location }, local };
    return { request: { kind, location, ...(local.file ? { file: local.file } : {}), output: local.tap.output }, ref: { path: location, tap: local.tap }, local };
  }
  const sel = arg === undefined ? defaultModel(ctx.registry, kind) : findModel(ctx.registry, arg, { kind });
  const pulled = await fromRegistry(sel, ctx);
  return {
    request: registryRequest(kind, pulled, sel.entry),
    ref: { id: sel.entry.id, repository: sel.entry.repository ?? undefined, revision: pulled.revision, variant: sel.variant, file: sel.entry.variants[sel.variant]!.file, sha256: pulled.sha256, ...(pulled.tap ? { tap: pulled.tap } : {}) },
    pulled,
  };
}

/**
 * The encoders a bundle needs. An override (--text-model/--image-model) wins; then the bundle's local path; then
 * its registry id at the recorded revision, from the cache. Each must hash to what the bundle recorded.
 */
export async function resolveBundleModels(
  bundle: { dir: string },
  blocks: EncoderBlock[],
  overrides: { textModel?: string; imageModel?: string },
  ctx: ModelContext,
): Promise<EncoderRequest[]> {
  const requests: EncoderRequest[] = [];
  for (const block of blocks) {
    const override = block.kind === 'text' ? overrides.textModel : overrides.imageModel;
    const checks = {
      sha256: block.model.sha256,
      onMismatch: ctx.ignoreMismatch ? ('warn' as const) : ('error' as const),
      dim: block.dim,
      text: block.kind === 'text' ? { maxLength: block.preprocess.maxLength, normalize: block.preprocess.normalize } : undefined,
      image: block.kind === 'image' ? block.preprocess : undefined,
      owner: `bundle ${bundle.dir}`,
    };
    if (override) {
      const r = await resolveModel(block.kind, override, ctx);
      requests.push({ ...r.request, ...checks });
    } else if (block.model.path) {
      const location = path.resolve(bundle.dir, block.model.path);
      // Trained on a local classifier export's pooled feature: the same derived model, from the cache (made anew if absent).
      const onnx = block.kind === 'image' && block.model.tap ? untappedImageOnnx(location) : undefined;
      const local = onnx ? await tapLocalImageModel(onnx, ctx) : undefined;
      if (local?.tap) requests.push({ kind: block.kind, location, ...(local.file ? { file: local.file } : {}), output: local.tap.output, ...checks });
      else requests.push({ kind: block.kind, location, ...checks });
    } else if (block.model.id) {
      const sel = findModel(ctx.registry, block.model.id, { kind: block.kind, variant: block.model.variant });
      const pulled = await fromRegistry(sel, ctx, block.model.revision);
      requests.push({ ...registryRequest(block.kind, pulled, sel.entry), output: block.model.tap?.output ?? pulled.output, ...checks });
    } else {
      throw new ConfigError(`model bundle ${bundle.dir}: the ${block.kind} block names no model (no path, no id); pass --${block.kind}-model`, 'bundle');
    }
  }
  return requests;
}

/**
 * One line on what a local image model's embedding is, for a model given as a path: the pooled feature tapped from a
 * classifier export, or the output used as it is when the graph looks like a classifier with no pool found before
 * it. undefined for a plain feature extractor (nothing to say) and for registry models.
 */
export function localImageNotice(arg: string, r: ResolvedModel, dim: number): string | undefined {
  const l = r.local;
  if (!l) return undefined;
  if (l.tap) {
    return `image model ${arg}: a classifier export; its embedding is the pooled feature ${l.tap.source} (${l.tap.op}${l.tap.dequantized ? ', dequantized' : ''}, ${dim}-d) exposed as output '${l.tap.output}', as \`categorize models import\` does`;
  }
  if (!l.classifierOutput) return undefined;
  return `image model ${arg}: no global average pool found before its last matrix product, so its output '${l.output ?? '(first)'}' (${dim}-d) is the embedding; if those are class scores, name the feature tensor with \`categorize models import ${arg} --tap <tensor>\``;
}
