// ONNX Runtime sessions: execution provider choice (cpu, cuda) with a clear fallback, and thread sizing.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { ConfigError } from '../errors.js';

export type Device = 'auto' | 'cpu' | 'cuda';

export interface SessionOptions {
  device: Device;
  /** ONNX Runtime intra-op threads; 0 lets ONNX Runtime decide. */
  threads: number;
  /**
   * Folder for ONNX Runtime's optimized copies of models (its documented offline mode): the graph optimizations
   * that take ~0.5–1 s per model at every load are done once per model file, runtime version and CPU; undefined:
   * optimize at every load.
   */
  optimizedDir?: string;
  /**
   * Let ONNX Runtime's idle intra-op threads spin waiting for work (its default). Off by default here
   * (CATEGORIZE_ORT_SPINNING=1 turns it on): between batches a spinning thread burns a core that image decoding,
   * tokenization and the other models' copies need (measured on 2 cores, `npm run bench -- --levers`).
   */
  spinning?: boolean;
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

/** Whether models asked to run on `device` will run on a GPU: `cuda` or `auto`, and the provider installed. */
export function runsOnGpu(device: Device): boolean {
  return device !== 'cpu' && cudaAvailable();
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
  const spin = (opts.spinning ?? process.env.CATEGORIZE_ORT_SPINNING === '1') ? '1' : '0';
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.threads > 0 ? opts.threads : undefined,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // Session config entries (onnxruntime_session_options_config_keys.h): session.intra_op.allow_spinning …
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
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
    const session = typeof model === 'string' && opts.optimizedDir ? await createCached(model, opts.optimizedDir, base) : await create(model, { ...base, executionProviders: ['cpu'] });
    return { session, provider: 'cpu', notice };
  } catch (err) {
    throw new ConfigError(`cannot load ONNX model ${where}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, 'model_load');
  }
}

/**
 * Offline mode: the first load writes ONNX Runtime's optimized graph; later loads read it with optimizations off.
 * The copy is only valid for the same runtime version and hardware, so both are part of its name, with the model
 * file's stat stamp. A copy that fails to load is deleted and rebuilt; two processes writing one race harmlessly
 * (each writes its own temporary file, then renames).
 */
async function createCached(model: string, dir: string, base: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const st = fs.statSync(model, { bigint: true });
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  const key = crypto
    .createHash('sha256')
    .update([path.resolve(model), st.dev, st.ino, st.size, st.mtimeNs, ort.env.versions?.common ?? '', process.arch, cpu, base.graphOptimizationLevel].join('\n'))
    .digest('hex')
    .slice(0, 32);
  const file = path.join(dir, `${key}.onnx`);
  const cpuOnly = { ...base, executionProviders: ['cpu'] };
  if (fs.existsSync(file)) {
    try {
      return await create(file, { ...cpuOnly, graphOptimizationLevel: 'disabled' });
    } catch {
      fs.rmSync(file, { force: true });
    }
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch {
    return create(model, cpuOnly);
  }
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  // Severity 3 (errors only): ONNX Runtime warns that the copy is hardware-specific, which the file name accounts for.
  const session = await create(model, { ...cpuOnly, optimizedModelFilePath: tmp, logSeverityLevel: 3 });
  try {
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
  return session;
}

function create(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}
