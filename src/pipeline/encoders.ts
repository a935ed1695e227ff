// Opens the embedding models a feature layout needs, each in its own worker thread, and checks them (hash, dims).
import os from 'node:os';
import { sha256File, type EncoderBlock } from '../models/bundle.js';
import { resolveImageModel, resolveTextModel, type ImageModelSpec, type ImagePreprocess, type TextModelSpec } from '../models/model-dir.js';
import { EncoderWorker } from '../runtime/encoder-client.js';
import type { Device } from '../runtime/session.js';
import { ConfigError } from '../errors.js';

export interface EncoderOptions {
  device: Device;
  /** ONNX Runtime intra-op threads per model; 0 = share the cores between the models. */
  threads: number;
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
  text?: EncoderWorker;
  image?: EncoderWorker;
  /** Which provider runs each model, e.g. { text: 'cpu', image: 'cuda' }. */
  providers: Record<string, string>;
  /** Resolved ONNX file per kind (for manifests). */
  files: Record<string, string>;
  /** The spec each model was opened with (file, output, preprocessing), for manifests. */
  specs: { text?: TextModelSpec; image?: ImageModelSpec };
  notices: string[];
  close(): Promise<void>;
}

export async function openEncoders(requests: EncoderRequest[], opts: EncoderOptions): Promise<OpenEncoders> {
  const threads = opts.threads > 0 ? opts.threads : Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, requests.length)));
  const session = { device: opts.device, threads };
  const started = await Promise.allSettled(requests.map((r) => startEncoder(r, session)));
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const warnings = workers.flatMap((w) => w.warnings);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((w) => w.worker.close()));
    throw failed.reason;
  }
  const byKind: Partial<Record<EncoderBlock['kind'], EncoderWorker>> = {};
  const specs: OpenEncoders['specs'] = {};
  for (const w of workers) {
    byKind[w.kind] = w.worker;
    if (w.spec.kind === 'text') specs.text = w.spec;
    else specs.image = w.spec;
  }
  return {
    text: byKind.text,
    image: byKind.image,
    providers: Object.fromEntries(workers.map((w) => [w.kind, w.worker.provider])),
    files: Object.fromEntries(workers.map((w) => [w.kind, w.spec.modelPath])),
    specs,
    notices: [...warnings, ...new Set(workers.flatMap((w) => (w.worker.notice ? [w.worker.notice] : [])))],
    close: async () => {
      await Promise.all(workers.map((w) => w.worker.close()));
    },
  };
}

async function startEncoder(
  req: EncoderRequest,
  session: { device: Device; threads: number },
): Promise<{ kind: EncoderBlock['kind']; worker: EncoderWorker; spec: TextModelSpec | ImageModelSpec; warnings: string[] }> {
  const owner = req.owner ? ` (${req.owner})` : '';
  const chosen = req.output ? { output: req.output } : {};
  let worker: EncoderWorker;
  let spec: TextModelSpec | ImageModelSpec;
  const warnings: string[] = [];
  if (req.kind === 'text') {
    const text: TextModelSpec = { ...resolveTextModel(req.location, req.file), ...chosen, ...(req.text ?? {}) };
    spec = text;
    warnings.push(...verifyHash(req, text.modelPath, owner));
    worker = await EncoderWorker.start({ kind: 'text', spec: text, session });
  } else {
    const base = resolveImageModel(req.location, req.file);
    const image: ImageModelSpec = { ...base, ...chosen, preprocess: req.image ?? base.preprocess };
    spec = image;
    warnings.push(...verifyHash(req, image.modelPath, owner));
    worker = await EncoderWorker.start({ kind: 'image', spec: image, session });
  }
  if (req.dim !== undefined && worker.dim !== req.dim) {
    await worker.close();
    throw new ConfigError(`the ${req.kind} model at ${req.location} produces ${worker.dim}-d embeddings but ${req.dim} are expected${owner}`, 'dim_mismatch');
  }
  return { kind: req.kind, worker, spec, warnings };
}

/** Fails when the model file is not the one expected (a bundle names the exact file it was trained with). */
function verifyHash(req: EncoderRequest, file: string, owner: string): string[] {
  if (!req.sha256) return [];
  const actual = sha256File(file);
  if (actual === req.sha256) return [];
  const what = `the ${req.kind} model ${file} is not the expected one${owner}: sha256 ${actual}, expected ${req.sha256}`;
  if (req.onMismatch === 'warn') return [`warning: ${what}; used anyway (--ignore-model-mismatch): predictions may differ from the bundle's validation figures`];
  throw new ConfigError(`${what}; re-train the bundle on this model, or pass --ignore-model-mismatch to use it anyway`, 'model_mismatch');
}
