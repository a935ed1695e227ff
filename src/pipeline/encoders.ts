// Opens the embedding models a feature layout needs, each in its own worker thread, and checks them (hash, dims).
import os from 'node:os';
import type { ModelBundle } from '../models/bundle.js';
import { isEncoderBlock, modelLocation, sha256File, type EncoderBlock } from '../models/bundle.js';
import { resolveImageModel, resolveTextModel, type ImagePreprocess } from '../models/model-dir.js';
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
  location: string;
  sha256?: string;
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
  notices: string[];
  close(): Promise<void>;
}

/** The requests a bundle implies; --text-model / --image-model override its references. */
export function bundleEncoderRequests(bundle: ModelBundle, overrides: { textModel?: string; imageModel?: string }): EncoderRequest[] {
  return bundle.manifest.features.filter(isEncoderBlock).map((block) => ({
    kind: block.kind,
    location: modelLocation(bundle, block, block.kind === 'text' ? overrides.textModel : overrides.imageModel),
    sha256: block.model.sha256,
    dim: block.dim,
    text: block.kind === 'text' ? { maxLength: block.preprocess.maxLength, normalize: block.preprocess.normalize } : undefined,
    image: block.kind === 'image' ? block.preprocess : undefined,
    owner: `bundle ${bundle.dir}`,
  }));
}

export async function openEncoders(requests: EncoderRequest[], opts: EncoderOptions): Promise<OpenEncoders> {
  const threads = opts.threads > 0 ? opts.threads : Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, requests.length)));
  const session = { device: opts.device, threads };
  const started = await Promise.allSettled(requests.map((r) => startEncoder(r, session)));
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((w) => w.worker.close()));
    throw failed.reason;
  }
  const byKind: Partial<Record<EncoderBlock['kind'], EncoderWorker>> = {};
  for (const w of workers) byKind[w.kind] = w.worker;
  return {
    text: byKind.text,
    image: byKind.image,
    providers: Object.fromEntries(workers.map((w) => [w.kind, w.worker.provider])),
    files: Object.fromEntries(workers.map((w) => [w.kind, w.file])),
    notices: [...new Set(workers.flatMap((w) => (w.worker.notice ? [w.worker.notice] : [])))],
    close: async () => {
      await Promise.all(workers.map((w) => w.worker.close()));
    },
  };
}

async function startEncoder(
  req: EncoderRequest,
  session: { device: Device; threads: number },
): Promise<{ kind: EncoderBlock['kind']; worker: EncoderWorker; file: string }> {
  const owner = req.owner ? ` (${req.owner})` : '';
  let worker: EncoderWorker;
  let file: string;
  if (req.kind === 'text') {
    const spec = { ...resolveTextModel(req.location), ...(req.text ?? {}) };
    file = spec.modelPath;
    verifyHash(req, file, owner);
    worker = await EncoderWorker.start({ kind: 'text', spec, session });
  } else {
    const base = resolveImageModel(req.location);
    const spec = { ...base, preprocess: req.image ?? base.preprocess };
    file = spec.modelPath;
    verifyHash(req, file, owner);
    worker = await EncoderWorker.start({ kind: 'image', spec, session });
  }
  if (req.dim !== undefined && worker.dim !== req.dim) {
    await worker.close();
    throw new ConfigError(`the ${req.kind} model at ${req.location} produces ${worker.dim}-d embeddings but ${req.dim} are expected${owner}`, 'dim_mismatch');
  }
  return { kind: req.kind, worker, file };
}

/** Fails when the model file is not the one expected (a bundle names the exact file it was trained with). */
function verifyHash(req: EncoderRequest, file: string, owner: string): void {
  if (!req.sha256) return;
  const actual = sha256File(file);
  if (actual !== req.sha256) {
    throw new ConfigError(`the ${req.kind} model ${file} is not the expected one${owner}: sha256 ${actual}, expected ${req.sha256}`, 'model_mismatch');
  }
}
