// Opens the embedding models a feature layout needs, each in its own worker thread, and checks them (hash, dims).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256File, type EncoderBlock } from '../models/bundle.js';
import { resolveImageModel, resolveTextModel, type ImageModelSpec, type ImagePreprocess, type TextModelSpec } from '../models/model-dir.js';
import { EncoderPool, allOrNone } from '../runtime/encoder-client.js';
import { ImageDecoderPool, type ImageDecoder } from '../runtime/image-decoder.js';
import { preprocessingOf } from '../embed/image-preprocess.js';
import { runsOnGpu, type Device, type SessionOptions } from '../runtime/session.js';
import { ConfigError } from '../errors.js';

export interface EncoderOptions {
  device: Device;
  /** ONNX Runtime intra-op threads per model copy; 0 = share the cores between the copies (see encoderPlan). */
  threads: number;
  /** Copies of each model, each in its own worker thread; 0 or absent = automatic (see encoderPlan). */
  replicas?: number;
  /** Where ONNX Runtime's optimized copies of the models are kept between runs (see createSession). */
  optimizedModelDir?: string;
  /** Worker threads decoding images beside an image model (see imageDecoders); 0: on the main thread; absent: automatic. */
  imageDecoders?: number;
}

/** One model to open. Optional fields are checks (expected hash, dim) or overrides of the folder's own spec. */
export interface EncoderRequest {
  kind: EncoderBlock['kind'];
  /** Model folder (or .onnx file). */
  location: string;
  /** The ONNX file to run when the folder holds several (registry variants, a tapped export). */
  file?: string;
  /** Output taken as the embedding, overriding the folder's own spec. */
  output?: string;
  sha256?: string;
  /** A sha256 that differs: refuse (default) or use the model with a warning (--ignore-model-mismatch). */
  onMismatch?: 'error' | 'warn';
  dim?: number;
  text?: { maxLength: number; normalize: boolean };
  image?: ImagePreprocess;
  /** Who asked for this model, for error messages (e.g. "bundle models/shop"). */
  owner?: string;
}

export interface OpenEncoders {
  text?: EncoderPool;
  image?: EncoderPool;
  /** Which provider runs each model, e.g. { text: 'cpu', image: 'cuda' }. */
  providers: Record<string, string>;
  /** Copies of each model and intra-op threads per copy (see encoderPlan). */
  plan: Partial<Record<EncoderBlock['kind'], { replicas: number; threads: number }>>;
  /** Resolved ONNX file per kind (for manifests). */
  files: Record<string, string>;
  /** The spec each model was opened with (file, output, preprocessing), for manifests. */
  specs: { text?: TextModelSpec; image?: ImageModelSpec };
  /**
   * What each model computes, as one string (see modelIdentity): the embedding cache's namespace, so that a vector
   * is only ever served to the exact model file, output and preprocessing that produced it.
   */
  identity: { text?: string; image?: string };
  notices: string[];
  /** Decodes images for the image model (worker threads, see imageDecoders); absent without one. */
  decoder?: ImageDecoder;
  close(): Promise<void>;
}

export async function openEncoders(requests: EncoderRequest[], opts: EncoderOptions): Promise<OpenEncoders> {
  const plan = encoderPlan(requests.map((r) => r.kind), { ...opts, gpu: runsOnGpu(opts.device) });
  const workers = await allOrNone(
    requests.map((r) => {
      const { replicas, threads } = plan[r.kind]!;
      return startEncoder(r, { device: opts.device, threads, optimizedDir: opts.optimizedModelDir }, replicas);
    }),
    (w) => w.worker.close(),
  );
  const warnings = workers.flatMap((w) => w.warnings);
  const byKind: Partial<Record<EncoderBlock['kind'], EncoderPool>> = {};
  const specs: OpenEncoders['specs'] = {};
  const identity: OpenEncoders['identity'] = {};
  for (const w of workers) {
    byKind[w.kind] = w.worker;
    identity[w.kind] = w.identity;
    if (w.spec.kind === 'text') specs.text = w.spec;
    else specs.image = w.spec;
  }
  const decoders = byKind.image ? imageDecoders(opts.imageDecoders) : 0;
  const decoder = decoders > 0 ? ImageDecoderPool.start(decoders) : undefined;
  return {
    text: byKind.text,
    image: byKind.image,
    providers: Object.fromEntries(workers.map((w) => [w.kind, w.worker.provider])),
    plan,
    files: Object.fromEntries(workers.map((w) => [w.kind, w.spec.modelPath])),
    specs,
    identity,
    notices: [...warnings, ...new Set(workers.flatMap((w) => (w.worker.notice ? [w.worker.notice] : [])))],
    decoder,
    close: async () => {
      await Promise.all([...workers.map((w) => w.worker.close()), decoder?.close()]);
    },
  };
}

/**
 * Image decoding threads: one per 4 cores, 1 to 4. Decoding a photo is libvips' work on libuv's pool plus
 * JavaScript (the exact resampler up to 1 MP, crop, normalisation): on the main thread that JavaScript queued
 * behind TF-IDF, the heads and the output, and the main thread became what `run` waited on (flipkart originals,
 * 2 cores: main thread 9.2 ms a row with decoding, 4.3 without). One thread keeps up with 2 cores (its share is
 * ~15% of a row's CPU); a second added ~50 MB of peak RSS and no speed.
 */
export function imageDecoders(requested: number | undefined, cores = os.availableParallelism()): number {
  if (requested !== undefined && requested >= 0) return requested;
  return Math.max(1, Math.min(4, Math.ceil(cores / 4)));
}

/** Most copies of one model on CPU: beyond this, more intra-op threads per copy instead (memory: a copy of ResNet-50 holds ~150 MB). */
export const MAX_CPU_REPLICAS = 4;

/**
 * How many copies of each model run, each with how many ONNX Runtime intra-op threads. On CPU, copies that run
 * single-threaded on different batches beat one copy splitting each operator across the cores (measured on 2 cores,
 * ResNet-50 + MiniLM-L6 shapes, `npm run bench -- --levers`: 2 image copies × 1 thread 15.8 rows/s, 1 copy × 2
 * threads 14.9, 1 copy × 1 thread 12.2), so
 * the heaviest model (the image model when there is one) gets up to MAX_CPU_REPLICAS copies, the text model one when
 * it runs beside an image model (it needs a third of the image model's time), and the cores are shared out between
 * all copies. A GPU runs one copy per model, batching being where its gain is. Explicit settings win.
 */
export function encoderPlan(
  kinds: readonly EncoderBlock['kind'][],
  opts: { threads: number; replicas?: number; gpu: boolean },
  cores = os.availableParallelism(),
): Partial<Record<EncoderBlock['kind'], { replicas: number; threads: number }>> {
  const heaviest = kinds.includes('image') ? 'image' : kinds[0];
  const auto = (kind: EncoderBlock['kind']) => (opts.gpu ? 1 : kind === heaviest ? Math.min(cores, MAX_CPU_REPLICAS) : 1);
  const replicas = Object.fromEntries(kinds.map((k) => [k, opts.replicas && opts.replicas > 0 ? opts.replicas : auto(k)]));
  const copies = Object.values(replicas).reduce((a, b) => a + b, 0);
  const threads = opts.threads > 0 ? opts.threads : Math.max(1, Math.floor(cores / Math.max(1, copies)));
  return Object.fromEntries(kinds.map((k) => [k, { replicas: replicas[k]!, threads }]));
}

async function startEncoder(
  req: EncoderRequest,
  session: SessionOptions,
  replicas: number,
): Promise<{ kind: EncoderBlock['kind']; worker: EncoderPool; spec: TextModelSpec | ImageModelSpec; identity: string; warnings: string[] }> {
  const owner = req.owner ? ` (${req.owner})` : '';
  const chosen = req.output ? { output: req.output } : {};
  let spec: TextModelSpec | ImageModelSpec;
  if (req.kind === 'text') spec = { ...resolveTextModel(req.location, req.file), ...chosen, ...(req.text ?? {}) };
  else {
    const base = resolveImageModel(req.location, req.file);
    spec = { ...base, ...chosen, preprocess: req.image ?? base.preprocess };
  }
  const warnings: string[] = [];
  // An expected hash is checked (and the file hashed) before loading; otherwise the file is hashed while the
  // worker loads it, so the identity costs no start-up time.
  const checked = verifyHash(req, spec.modelPath, owner);
  warnings.push(...checked.warnings);
  const hashing = checked.actual !== undefined ? Promise.resolve(checked.actual) : sha256FileAsync(spec.modelPath);
  hashing.catch(() => undefined);
  const worker = await (spec.kind === 'text' ? EncoderPool.start({ kind: 'text', spec, session }, replicas) : EncoderPool.start({ kind: 'image', spec, session }, replicas));
  let identity: string;
  try {
    if (req.dim !== undefined && worker.dim !== req.dim) {
      throw new ConfigError(`the ${req.kind} model at ${req.location} produces ${worker.dim}-d embeddings but ${req.dim} are expected${owner}`, 'dim_mismatch');
    }
    identity = modelIdentity(spec, await hashing, spec.kind === 'text' ? await tokenizerHash(spec.tokenizerDir) : undefined);
  } catch (err) {
    await worker.close();
    throw err;
  }
  return { kind: req.kind, worker, spec, identity, warnings };
}

/** Fails when the model file is not the one expected (a bundle names the exact file it was trained with). */
function verifyHash(req: EncoderRequest, file: string, owner: string): { warnings: string[]; actual?: string } {
  if (!req.sha256) return { warnings: [] };
  const actual = sha256File(file);
  if (actual === req.sha256) return { warnings: [], actual };
  const what = `the ${req.kind} model ${file} is not the expected one${owner}: sha256 ${actual}, expected ${req.sha256}`;
  if (req.onMismatch === 'warn') return { warnings: [`warning: ${what}; used anyway (--ignore-model-mismatch): predictions may differ from the bundle's validation figures`], actual };
  throw new ConfigError(`${what}; re-train the bundle on this model, or pass --ignore-model-mismatch to use it anyway`, 'model_mismatch');
}

/**
 * Revision of what the code feeds a model for a given spec (tokenisation and truncation; decoding, resampling and
 * normalisation). Bump it when that changes, so that embedding caches stop serving vectors computed the old way.
 */
export const TEXT_INPUT_REVISION = 1;
export const IMAGE_INPUT_REVISION = 1;

/**
 * One string naming exactly what a model computes: the ONNX file's sha256, the output taken and the preprocessing
 * (text: tokenizer files, truncation, pooling, normalisation; image: resize, crop, mean, std, and the exact or fast
 * resize method). Two models, or one
 * model fed differently, never share an identity.
 */
export function modelIdentity(spec: TextModelSpec | ImageModelSpec, onnxSha256: string, tokenizerSha256?: string): string {
  if (spec.kind === 'text') {
    return [
      `text/${TEXT_INPUT_REVISION}`,
      `onnx=${onnxSha256}`,
      `output=${spec.output}`,
      `tokenizer=${tokenizerSha256 ?? 'none'}`,
      `maxLength=${spec.maxLength}`,
      `pooling=${spec.pooling}`,
      `normalize=${spec.normalize}`,
    ].join(' ');
  }
  const p = spec.preprocess;
  return [
    `image/${IMAGE_INPUT_REVISION}`,
    `onnx=${onnxSha256}`,
    // Undefined means the model's first output, which the file's hash already pins.
    `output=${spec.output ?? '(first)'}`,
    `resize=${p.resize}`,
    `crop=${p.crop}`,
    `mean=${p.mean.join(',')}`,
    `std=${p.std.join(',')}`,
    // The resize method: 'exact' adds nothing, so caches filled before 'fast' existed keep serving exact vectors.
    ...(preprocessingOf(p) === 'exact' ? [] : [`preprocessing=${preprocessingOf(p)}`]),
  ].join(' ');
}

/** The tokenizer's files (those present), hashed together: a changed vocabulary changes every text's input ids. */
async function tokenizerHash(dir: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) {
    const file = path.join(dir, name);
    const bytes = await fs.promises.readFile(file).catch(() => undefined);
    h.update(`${name}:${bytes ? bytes.length : -1}:`);
    if (bytes) h.update(bytes);
  }
  return h.digest('hex');
}

/** sha256File without blocking the event loop (models are hundreds of megabytes). */
function sha256FileAsync(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (chunk) => h.update(chunk))
      .on('error', (err) => reject(new ConfigError(`cannot read ${file}: ${err.message}`, 'model_files', { cause: err })))
      .on('end', () => resolve(h.digest('hex')));
  });
}
