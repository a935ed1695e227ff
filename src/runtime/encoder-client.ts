// Main-thread handle on an encoder worker: one request in, one Float32Array of vectors out.
import { Worker } from 'node:worker_threads';
import type { EncoderInit, EncoderReply, EncoderRequest, EncoderStatus } from './encoder-protocol.js';
import { CategorizeError } from '../errors.js';

export class EncoderWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Float32Array) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly dim: number,
    readonly provider: string,
    readonly notice: string | undefined,
  ) {
    worker.on('message', (msg: EncoderReply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.vectors);
      else p.reject(new CategorizeError(msg.code, msg.message, msg.exitCode));
    });
    const fail = (err: Error) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`encoder worker exited (code ${code})`)));
  }

  /** Starts the worker and waits until its model is loaded (or throws the load error, e.g. a ConfigError's code). */
  static start(init: EncoderInit): Promise<EncoderWorker> {
    const worker = new Worker(new URL('./encoder-worker.js', import.meta.url), { workerData: init });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      worker.once('error', onError);
      worker.once('message', (status: EncoderStatus) => {
        worker.off('error', onError);
        if (status.type === 'ready') resolve(new EncoderWorker(worker, status.dim, status.provider, status.notice));
        else {
          void worker.terminate();
          reject(new CategorizeError(status.code, status.message, status.exitCode));
        }
      });
    });
  }

  embedTexts(texts: string[]): Promise<Float32Array> {
    return this.request({ type: 'texts', id: 0, texts }, []);
  }

  /** The pixel buffer is transferred: the caller must not touch it afterwards. */
  embedPixels(pixels: Float32Array, count: number): Promise<Float32Array> {
    return this.request({ type: 'pixels', id: 0, pixels, count }, [pixels.buffer as ArrayBuffer]);
  }

  /** One image per tensor, batched in the worker; the buffers are transferred: the caller must not touch them. */
  embedTensors(tensors: Float32Array[]): Promise<Float32Array> {
    return this.request({ type: 'tensors', id: 0, tensors }, tensors.map((t) => t.buffer as ArrayBuffer));
  }

  private request(req: Exclude<EncoderRequest, { type: 'close' }>, transfer: ArrayBuffer[]): Promise<Float32Array> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  async close(): Promise<void> {
    if (this.dead) return;
    this.worker.postMessage({ type: 'close' } satisfies EncoderRequest);
    await new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
  }
}

/**
 * Several copies of one model, each in its own worker thread, behind EncoderWorker's interface: a call goes to the
 * copy with the fewest calls outstanding. On CPU, copies running single-threaded on different batches use the cores
 * better than one copy splitting every operator across threads (no per-operator barriers to wait at, nothing to
 * gain from spinning), and a busy model can take the cores another model leaves idle.
 */
export class EncoderPool {
  private readonly load: number[];
  /** Calls each copy has taken (summaries, tests). */
  readonly calls: number[];

  constructor(private readonly workers: EncoderWorker[]) {
    if (workers.length === 0) throw new Error('EncoderPool: no workers');
    this.load = workers.map(() => 0);
    this.calls = workers.map(() => 0);
  }

  /** Starts `copies` workers (in parallel); if any fails the others are closed and its error is thrown. */
  static async start(init: EncoderInit, copies: number): Promise<EncoderPool> {
    return new EncoderPool(await allOrNone(Array.from({ length: Math.max(1, copies) }, () => EncoderWorker.start(init)), (w) => w.close()));
  }

  get size(): number {
    return this.workers.length;
  }
  get dim(): number {
    return this.workers[0]!.dim;
  }
  get provider(): string {
    return this.workers[0]!.provider;
  }
  get notice(): string | undefined {
    return this.workers[0]!.notice;
  }

  embedTexts(texts: string[]): Promise<Float32Array> {
    return this.dispatch((w) => w.embedTexts(texts));
  }

  /** The pixel buffer is transferred: the caller must not touch it afterwards. */
  embedPixels(pixels: Float32Array, count: number): Promise<Float32Array> {
    return this.dispatch((w) => w.embedPixels(pixels, count));
  }

  /** One image per tensor; the buffers are transferred: the caller must not touch them. */
  embedTensors(tensors: Float32Array[]): Promise<Float32Array> {
    return this.dispatch((w) => w.embedTensors(tensors));
  }

  private async dispatch(call: (w: EncoderWorker) => Promise<Float32Array>): Promise<Float32Array> {
    let pick = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[pick]!) pick = i;
    this.load[pick]!++;
    this.calls[pick]!++;
    try {
      return await call(this.workers[pick]!);
    } finally {
      this.load[pick]!--;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/**
 * Waits for everything being started; if any start fails, closes the ones that did start and throws the first
 * failure, so that nothing is left running (worker threads keep the process alive).
 */
export async function allOrNone<T>(starting: Promise<T>[], close: (t: T) => Promise<void>): Promise<T[]> {
  const settled = await Promise.allSettled(starting);
  const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map(close));
    throw failed.reason;
  }
  return ok;
}
