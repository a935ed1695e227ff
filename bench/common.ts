// What every benchmark script shares: where things are, and the machine a result was measured on.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

/** The repository root (this file runs from dist/bench/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The CLI the benchmarks drive. */
export const bin = path.join(repoRoot, 'bin', 'categorize.js');
/** Real data and models beside the project, when present. */
export const shared = path.resolve(repoRoot, '..', 'shared');

/** When and where a result was measured: the head of every bench/results/*.json. */
export function machine(): { date: string; host: string; cpu: string; node: string; onnxruntime: string | null } {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpu: `${cpus[0]?.model ?? 'cpu'} × ${cpus.length}`,
    node: process.version,
    onnxruntime: ort.env.versions?.common ?? null,
  };
}
