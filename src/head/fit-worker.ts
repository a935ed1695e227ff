// Worker-thread entry of the FitPool: runs one fit job at a time and posts its events and result back.
import { parentPort } from 'node:worker_threads';
import { CategorizeError } from '../errors.js';
import { runFitJob, type FitJob, type FitReply } from './fit-pool.js';
import type { PathEvent, PathResult } from './modality-head.js';

const port = parentPort!;
/** Iteration events are sent at most this often (a row-space fit can do a hundred iterations a second). */
const ITERATION_EVENT_MS = 250;

port.on('message', async ({ id, job }: { id: number; job: FitJob }) => {
  let lastIteration = 0;
  const onEvent = (event: PathEvent) => {
    if (event.type === 'iteration') {
      const now = performance.now();
      if (now - lastIteration < ITERATION_EVENT_MS) return;
      lastIteration = now;
    }
    port.postMessage({ id, type: 'event', event } satisfies FitReply);
  };
  try {
    const result = await runFitJob(job, onEvent);
    // Fresh arrays go back by transfer; SharedArrayBuffer-backed ones (a basis's L) are shared, not copied.
    const transfer = 'probs' in result ? transferables(result) : 'curve' in result ? [result.values.buffer as ArrayBuffer, result.intercept.buffer as ArrayBuffer, result.colptr.buffer as ArrayBuffer, result.classIndex.buffer as ArrayBuffer] : [];
    port.postMessage({ id, type: 'done', result } satisfies FitReply, transfer);
  } catch (err) {
    const known = err instanceof CategorizeError;
    port.postMessage({ id, type: 'error', message: err instanceof Error ? err.message : String(err), code: known ? err.code : null, exitCode: known ? err.exitCode : 1 } satisfies FitReply);
  }
});

function transferables(r: PathResult): ArrayBuffer[] {
  const out = r.probs.map((p) => p.buffer as ArrayBuffer);
  if (r.head) out.push(r.head.coef.buffer as ArrayBuffer, r.head.intercept.buffer as ArrayBuffer);
  for (const s of r.solutions ?? []) out.push(s.coef.buffer as ArrayBuffer, s.intercept.buffer as ArrayBuffer);
  return [...new Set(out)];
}
