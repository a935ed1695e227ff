// What every benchmark script shares: where things are, and the machine a result was measured on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
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

/** GNU time: wall seconds and peak RSS of a process and everything it waited for. */
export const gnuTime = '/usr/bin/time';

/** How a timed process went: wall time and peak RSS from GNU time, and how it ended, in words. */
export interface TimedRun {
  command: string;
  wallSeconds: number;
  /** Peak resident memory (GNU time's %M, the largest of the process and its waited-for children), MB. */
  peakRssMB: number;
  exitCode: number | null;
  /** 'finished', 'killed at N s (timeout N s)', 'MemoryError', 'killed by signal N', 'stopped (SIGTERM)', 'failed (exit N): …'. */
  ended: string;
  finished: boolean;
  stdout: string;
  /** The last lines of stderr. */
  stderrTail: string;
  /** stdout and stderr, as they came. */
  logFile: string;
}

export interface TimedOptions {
  /** Where stdout and stderr go (the folder must exist). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Sent SIGTERM after this many seconds (SIGKILL 60 s later); 0 or absent: no limit. */
  timeoutSeconds?: number;
  /** Address-space cap (prlimit --as), bytes: allocations beyond it fail (Python: MemoryError). */
  memoryLimitBytes?: number;
  /** Also copy the process's output to this process's stderr. */
  echo?: boolean;
}

/** Process groups of the timed processes still running (each runs in its own group: see stopTimedProcesses). */
const running = new Set<number>();

/** Sends SIGTERM to every timed process still running, and what it started (e.g. when the bench itself is stopped). */
export function stopTimedProcesses(): void {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/**
 * Runs argv under GNU time (`/usr/bin/time -f '%e %M'`), coreutils `timeout` and, with a memory cap, `prlimit`,
 * and reports wall seconds, peak RSS and how it ended. Never throws for the process's own failure.
 */
export async function timedProcess(argv: string[], opts: TimedOptions): Promise<TimedRun> {
  const timeFile = `${opts.logFile}.time`;
  fs.rmSync(timeFile, { force: true });
  const timeout = opts.timeoutSeconds ?? 0;
  const cap = opts.memoryLimitBytes ? ['prlimit', `--as=${Math.round(opts.memoryLimitBytes)}`, '--'] : [];
  // --foreground: timeout stays in our process group (by default it makes its own, which stopTimedProcesses would miss).
  const child = spawn(gnuTime, ['-f', '%e %M', '-o', timeFile, 'timeout', '--foreground', '-k', '60', String(timeout), ...cap, ...argv], {
    env: opts.env ?? process.env,
    cwd: opts.cwd ?? repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so that stopping it reaches GNU time's grandchildren too.
    detached: true,
  });
  if (child.pid !== undefined) running.add(child.pid);
  const log = fs.createWriteStream(opts.logFile);
  let stdout = '';
  let stderrTail = '';
  child.stdout.on('data', (chunk: Buffer) => {
    log.write(chunk);
    if (stdout.length < 1 << 24) stdout += chunk.toString('utf8');
    if (opts.echo) process.stderr.write(chunk);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    log.write(chunk);
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-8192);
    if (opts.echo) process.stderr.write(chunk);
  });
  // GNU time itself ends by a signal only when we stop it (stopTimedProcesses).
  let stoppedBy: string | null = null;
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => {
      stoppedBy = sig;
      resolve(code);
    });
  }).finally(() => running.delete(child.pid!));
  await new Promise<void>((resolve) => log.end(resolve));
  // GNU time writes "Command exited with non-zero status N" / "Command terminated by signal N" before its line.
  const timeLines = fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8').trim().split('\n') : [];
  const figures = /^([\d.]+) (\d+)$/.exec(timeLines.at(-1) ?? '');
  const wallSeconds = figures ? Number(figures[1]) : NaN;
  const rssKB = figures ? Number(figures[2]) : NaN;
  const signal = /terminated by signal (\d+)/.exec(timeLines.join('\n'))?.[1];
  const lastLine = stderrTail.trim().split('\n').at(-1) ?? '';
  let ended: string;
  if (exitCode === 0) ended = 'finished';
  else if (stoppedBy) ended = `stopped (${stoppedBy})`;
  else if (timeout > 0 && (exitCode === 124 || (signal === '9' && wallSeconds >= timeout - 1))) ended = `killed at ${Math.round(wallSeconds)} s (timeout ${timeout} s)`;
  else if (/MemoryError|Unable to allocate|bad_alloc|heap out of memory|Cannot allocate memory/.test(stderrTail)) ended = /MemoryError|Unable to allocate/.test(stderrTail) ? 'MemoryError' : `out of memory: ${lastLine}`;
  else if (signal) ended = `killed by signal ${signal}${signal === '9' ? ' (the kernel OOM killer?)' : ''}`;
  else ended = `failed (exit ${exitCode}): ${lastLine}`;
  return {
    command: argv.map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' '),
    wallSeconds,
    peakRssMB: Math.round(rssKB / 1024),
    exitCode,
    ended,
    finished: exitCode === 0,
    stdout,
    stderrTail,
    logFile: opts.logFile,
  };
}

/** A folder's size: apparent bytes (the files' lengths) and disk usage (`du -sk`). */
export function folderSize(dir: string): { bytes: number; diskBytes: number } {
  let bytes = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) bytes += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  const du = spawnSync('du', ['-sk', dir], { encoding: 'utf8' });
  return { bytes, diskBytes: du.status === 0 ? Number(du.stdout.split('\t')[0]) * 1024 : NaN };
}

/** The first of `paths` that does not exist, made relative to the repository for messages; undefined when all do. */
export function firstMissing(paths: string[]): string | undefined {
  const p = paths.find((f) => !fs.existsSync(f));
  return p === undefined ? undefined : path.relative(repoRoot, p);
}

/** --help of a bench script: its header comment (the leading // lines of its source), then exit 0. */
export function printHeaderHelp(scriptUrl: string): never {
  const lines = fs.readFileSync(fileURLToPath(scriptUrl), 'utf8').split('\n');
  console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).join('\n'));
  process.exit(0);
}

/** A bench script's usage error: one line naming the script, exit 2. */
export function usageExit(script: string, message: string): never {
  console.error(`${script}: ${message} (see --help)`);
  process.exit(2);
}
