// ONNX Runtime sessions: execution provider choice (cpu, cuda) with a clear fallback, and thread sizing.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { ConfigError } from '../errors.js';

export type Device = 'auto' | 'cpu' | 'cuda';

export interface SessionOptions {
  device: Device;
  /** ONNX Runtime intra-op threads; 0 lets ONNX Runtime decide. */
  threads: number;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  /** The provider that actually runs the model. */
  provider: 'cpu' | 'cuda';
  /** Set when the requested device could not be used, e.g. CUDA absent. */
  notice?: string;
}

/** Whether this onnxruntime-node install carries the CUDA provider (it is an opt-in download). */
export function cudaAvailable(): boolean {
  return ort.listSupportedBackends().some((b) => b.name === 'cuda' && b.bundled !== false) || cudaProviderFilePresent();
}

function cudaProviderFilePresent(): boolean {
  // The opt-in install (ONNXRUNTIME_NODE_INSTALL=cuda12) drops the provider library beside the binding.
  try {
    const pkg = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const binDir = path.join(pkg, 'bin');
    return fs.readdirSync(binDir).some((napi) => {
      const dir = path.join(binDir, napi, process.platform, process.arch);
      return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith('libonnxruntime_providers_cuda'));
    });
  } catch {
    return false;
  }
}

/** Creates a session once; the caller reuses it for every batch. */
export async function createSession(model: string | Uint8Array, opts: SessionOptions): Promise<LoadedSession> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.threads > 0 ? opts.threads : undefined,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  const where = typeof model === 'string' ? model : 'in-memory model';
  let notice: string | undefined;
  const wantCuda = opts.device === 'cuda' || (opts.device === 'auto' && cudaAvailable());
  if (opts.device === 'cuda' && !cudaAvailable()) {
    notice = 'CUDA requested but this onnxruntime-node install has no CUDA provider; running on CPU (install it with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci).';
  } else if (wantCuda) {
    try {
      const session = await create(model, { ...base, executionProviders: ['cuda', 'cpu'] });
      return { session, provider: 'cuda' };
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      notice = `CUDA unavailable (${why}); running on CPU.`;
    }
  }
  try {
    const session = await create(model, { ...base, executionProviders: ['cpu'] });
    return { session, provider: 'cpu', notice };
  } catch (err) {
    throw new ConfigError(`cannot load ONNX model ${where}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, 'model_load');
  }
}

function create(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}
