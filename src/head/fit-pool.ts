// Runs the fits of a selection grid (fitPath over one head's design) and row-space bases on worker threads, one
// per core: the paths of different folds, heads and procedures are independent. Size 0 runs them on the calling
// thread; both give the same numbers (every fit uses one ONNX Runtime thread either way).
import { Worker } from 'node:worker_threads';
import { CategorizeError } from '../errors.js';
import type { CsrBlock } from './design-matrix.js';
import { fitPath, sharedArray, solverWidth, type HeadDesign, type PathEvent, type PathResult, type PathTask } from './modality-head.js';
import { rowSpaceBasis, type RowSpaceBasis } from './rowspace.js';
import { ortTrailingUpdate } from './gemm-ort.js';
import { fitSupportHead, type SupportFit, type SupportTask } from './support-head.js';

export type FitJob =
  | { kind: 'path'; design: HeadDesign; task: PathTask }
  | { kind: 'basis'; sparse: CsrBlock; rows: Int32Array }
  | { kind: 'support'; sparse: CsrBlock; y: Int32Array; nClasses: number; task: SupportTask };

export type FitResult = PathResult | RowSpaceBasis | SupportFit;

export type FitReply =
  | { id: number; type: 'event'; event: PathEvent }
  | { id: number; type: 'done'; result: FitResult }
  | { id: number; type: 'error'; message: string; code: string | null; exitCode: number };

/** Below this many rows the Cholesky's trailing updates stay in JS (no ONNX Runtime session to set up). */
const ORT_CHOLESKY_MIN_ROWS = 1000;

/** Runs one job where it is called (a worker, or the main thread for a pool of size 0). */
export async function runFitJob(job: FitJob, onEvent?: (e: PathEvent) => void): Promise<FitResult> {
  if (job.kind === 'path') return fitPath(job.design, job.task, onEvent);
  if (job.kind === 'support') return supportJob(job, onEvent);
  const alloc = (len: number) => sharedArray(Float32Array, len);
  if (job.rows.length < ORT_CHOLESKY_MIN_ROWS) return rowSpaceBasis(job.sparse, job.rows, { alloc });
  const gemm = await ortTrailingUpdate();
  try {
    return await rowSpaceBasis(job.sparse, job.rows, { alloc, update: gemm.update });
  } finally {
    await gemm.dispose();
  }
}

/** A support head's fit, its epochs reported as iterations and its end as a finished fit (C: NaN, it has none). */
function supportJob(job: Extract<FitJob, { kind: 'support' }>, onEvent?: (e: PathEvent) => void): SupportFit {
  const fit = fitSupportHead(job.sparse, job.y, job.nClasses, job.task, (e) => onEvent?.({ type: 'iteration', C: NaN, iteration: e.epoch }));
  const last = fit.curve[fit.curve.length - 1]!;
  const message = job.task.test.length > 0 ? `held-out log-loss least after ${fit.epochs} of ${fit.curve.length} epochs` : `${fit.epochs} epochs`;
  onEvent?.({ type: 'fit', stats: { C: NaN, iterations: fit.curve.length, evaluations: fit.curve.length, converged: true, loss: last.trainLoss, message, seconds: fit.seconds } });
  return fit;
}

/** Multiply-adds of one evaluation of a path's fits times the fits, as a priority (not a prediction). */
function pathWork(design: HeadDesign, task: PathTask): number {
  return task.train.length * solverWidth(design) * design.nClasses * task.Cs.length;
}

interface Pending {
  id: number;
  job: FitJob;
  /** Larger first: a rough count of the job's multiply-adds. */
  work: number;
  onEvent?: (e: PathEvent) => void;
  resolve: (r: FitResult) => void;
  reject: (e: Error) => void;
}

export class FitPool {
  private readonly idle: Worker[] = [];
  private readonly workers: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly running = new Map<Worker, Pending>();
  private nextId = 1;
  private closed = false;

  /** `size` workers at most (started when first needed); 0: every job on the calling thread. */
  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 0)) throw new RangeError(`FitPool: size must be a non-negative integer, got ${size}`);
  }

  /** The row-space basis of some rows of `sparse` (rowspace.ts). */
  basis(sparse: CsrBlock, rows: Int32Array): Promise<RowSpaceBasis> {
    return this.submit({ kind: 'basis', sparse, rows }, undefined, Infinity) as Promise<RowSpaceBasis>;
  }

  path(design: HeadDesign, task: PathTask, onEvent?: (e: PathEvent) => void): Promise<PathResult> {
    return this.submit({ kind: 'path', design, task }, onEvent, pathWork(design, task)) as Promise<PathResult>;
  }

  /** A support head's fit on some rows of a design's TF-IDF block (support-head.ts). */
  support(design: HeadDesign, task: SupportTask, onEvent?: (e: PathEvent) => void): Promise<SupportFit> {
    const work = (design.sparse!.indptr[design.n]! * task.epochs * task.train.length) / Math.max(1, design.n);
    return this.submit({ kind: 'support', sparse: design.sparse!, y: design.y, nClasses: design.nClasses, task }, onEvent, work) as Promise<SupportFit>;
  }

  /**
   * Queued jobs start largest first (bases first of all: fits wait for them), so the longest paths are not left
   * for the end while a core idles. The order changes when a result arrives, never what it is.
   */
  private submit(job: FitJob, onEvent: ((e: PathEvent) => void) | undefined, work: number): Promise<FitResult> {
    if (this.closed) return Promise.reject(new Error('FitPool: used after close()'));
    if (this.size === 0) return runFitJob(job, onEvent);
    return new Promise((resolve, reject) => {
      const p: Pending = { id: this.nextId++, job, work, onEvent, resolve, reject };
      const at = this.queue.findIndex((q) => q.work < work);
      this.queue.splice(at < 0 ? this.queue.length : at, 0, p);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let worker = this.idle.pop();
      if (!worker && this.workers.length < this.size) worker = this.spawn();
      if (!worker) return;
      const p = this.queue.shift()!;
      this.running.set(worker, p);
      worker.postMessage({ id: p.id, job: p.job });
    }
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./fit-worker.js', import.meta.url));
    this.workers.push(worker);
    worker.on('message', (msg: FitReply) => {
      const p = this.running.get(worker);
      if (!p || p.id !== msg.id) return;
      if (msg.type === 'event') {
        p.onEvent?.(msg.event);
        return;
      }
      this.running.delete(worker);
      this.idle.push(worker);
      if (msg.type === 'done') p.resolve(msg.result);
      else p.reject(msg.code ? new CategorizeError(msg.code, msg.message, msg.exitCode) : new Error(msg.message));
      this.dispatch();
    });
    const fail = (err: Error) => {
      const p = this.running.get(worker);
      this.running.delete(worker);
      this.workers.splice(this.workers.indexOf(worker), 1);
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      p?.reject(err);
      if (!this.closed) this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`head fit worker exited (code ${code})`));
    });
    return worker;
  }

  /** Stops the workers; jobs still queued are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('FitPool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
