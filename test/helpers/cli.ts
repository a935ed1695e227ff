// Runs the real `categorize` binary and the demo build for end-to-end tests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const bin = path.join(repoRoot, 'bin', 'categorize.js');

export function runCli(args: string[], opts: { stdin?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runNode(bin, args, opts);
}

/** Runs a node script of the repository (the CLI binary, or e.g. the demo orchestration) and collects its output. */
export function runNode(script: string, args: string[], opts: { stdin?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

export const demo = {
  bundle: path.join(repoRoot, 'models', 'demo'),
  catalog: path.join(repoRoot, 'fixtures', 'demo', 'catalog.csv'),
  train: path.join(repoRoot, 'fixtures', 'demo', 'train.csv'),
  images: path.join(repoRoot, 'fixtures', 'demo', 'images'),
};

/** Builds the demo once (npm test builds it before the tests; this covers running a test file alone). */
export async function ensureDemo(): Promise<void> {
  if (fs.existsSync(path.join(demo.bundle, 'manifest.json')) && fs.existsSync(demo.catalog)) return;
  const { buildDemo } = await import('../../fixtures/build-demo.js');
  await buildDemo();
}

export function readJsonl(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
