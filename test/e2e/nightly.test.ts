// End to end: what unattended jobs rely on — resume after kill -9 (in a loop), --force, signals (130/143 with a
// resumable output), shards + merge, --log-format json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bin, demo, ensureDemo, readJsonl, runCli } from '../helpers/cli.js';
import { mulberry32 } from '../../src/head/random.js';
import { repoRoot } from '../helpers/paths.js';

let tmp: string;
let catalog: string;
let reference: string;
const imageRoot = path.dirname(demo.catalog);
const runArgs = (out: string, ...more: string[]) => ['run', catalog, '--model', demo.bundle, '--image-root', imageRoot, '-o', out, '-q', ...more];

/** Records compared on what a user reads; probabilities to 1e-6 (they are written rounded to 6 decimals). */
function assertSameRecords(actualFile: string, expectedFile: string): void {
  const a = readJsonl(actualFile);
  const e = readJsonl(expectedFile);
  assert.equal(a.length, e.length, 'one record per input row');
  for (let i = 0; i < e.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    assert.deepEqual([x.id, x.category, x.tags, x.status, x.error, x.warnings], [y.id, y.category, y.tags, y.status, y.error, y.warnings], `record ${i + 1}`);
    if (y.score !== null) assert.ok(Math.abs((x.score as number) - (y.score as number)) <= 1e-6, `record ${i + 1} score`);
  }
}

before(async () => {
  await ensureDemo();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-nightly-'));
  // The demo catalog twice over (unique ids), so a run lasts long enough to be killed in the middle.
  const [header, ...lines] = fs.readFileSync(demo.catalog, 'utf8').trim().split('\n');
  const rows = [header];
  for (let k = 0; k < 2; k++) for (const l of lines) rows.push(l.replace(/^([^,]+),/, `$1-${k},`));
  catalog = path.join(tmp, 'catalog.csv');
  fs.writeFileSync(catalog, rows.join('\n') + '\n');
  reference = path.join(tmp, 'reference.jsonl');
  const r = await runCli(runArgs(reference));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readJsonl(reference).length, lines.length * 2);
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function startRun(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

/** Kills per output format; each costs a process start-up. */
const KILLS = 5;

const lineCount = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : 0);

test('kill -9 at random points, many times: --resume ends with exactly the uninterrupted output', async (t) => {
  for (const format of ['jsonl', 'csv'] as const) {
    const out = path.join(tmp, `killed.${format}`);
    const rand = mulberry32(format === 'jsonl' ? 11 : 12);
    let kills = 0;
    let attempts = 0;
    let torn = 0;
    for (;;) {
      attempts++;
      assert.ok(attempts < 40, 'the run should finish after a bounded number of kills');
      const { child, done } = startRun(runArgs(out, '--resume', '--batch-size', '8'));
      // Kill somewhere between start-up and the end of the run (a full run takes a few seconds here).
      const outcome = kills < KILLS ? await Promise.race([done, sleep(300 + rand() * 2200).then(() => null)]) : await done;
      if (outcome) {
        assert.equal(outcome.code, 0, outcome.stderr);
        break;
      }
      child.kill('SIGKILL');
      const r = await done;
      assert.equal(r.signal, 'SIGKILL');
      kills++;
      if (fs.existsSync(out) && !fs.readFileSync(out, 'utf8').endsWith('\n') && fs.statSync(out).size > 0) torn++;
    }
    assert.ok(kills >= Math.min(KILLS, 3), `killed ${kills} times`);
    if (format === 'jsonl') assertSameRecords(out, reference);
    else {
      // CSV: the same records, in the same order, as a CSV run without interruption.
      const clean = path.join(tmp, 'reference.csv');
      if (!fs.existsSync(clean)) assert.equal((await runCli(runArgs(clean))).code, 0);
      assert.equal(fs.readFileSync(out, 'utf8'), fs.readFileSync(clean, 'utf8'));
    }
    // A kill mid-write leaves a torn last record; the comparison above shows every one was cut off, not kept.
    t.diagnostic(`${format}: ${kills} kills, ${torn} of them left a torn last record, ${attempts} runs in all`);
  }
});

test('an existing output is never appended to silently: exit 2 unless --resume or --force', async () => {
  const out = path.join(tmp, 'exists.jsonl');
  fs.writeFileSync(out, '{"id":"x"}\n');
  let r = await runCli(runArgs(out));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /output .*exists\.jsonl already exists: pass --resume to continue it or --force to overwrite it/);
  r = await runCli(runArgs(out, '--resume'));
  assert.equal(r.code, 2, 'another catalog’s output is not continued');
  assert.match(r.stderr, /cannot resume .*: its record 1 has id 'x' but input row 1 has id/);
  r = await runCli(runArgs(out, '--force'));
  assert.equal(r.code, 0, r.stderr);
  assertSameRecords(out, reference);
  r = await runCli(runArgs(out, '--resume'));
  assert.equal(r.code, 0, 'resuming a finished output writes nothing more');
  assertSameRecords(out, reference);
  assert.equal((await runCli(runArgs(out, '--resume', '--force'))).code, 2);
  assert.equal((await runCli(['run', catalog, '--model', demo.bundle, '--resume'])).code, 2, '--resume needs a file');
});

test('SIGTERM and SIGINT finish the rows in flight, exit 143/130, and leave a resumable output', async () => {
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const out = path.join(tmp, `signal-${sig}.jsonl`);
    const { child, done } = startRun([...runArgs(out).filter((a) => a !== '-q'), '--batch-size', '8']);
    while (lineCount(out) < 50) await sleep(50);
    child.kill(sig);
    const r = await done;
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stderr, new RegExp(`stopped by ${sig}: \\d+ records written; run again with --resume`));
    const text = fs.readFileSync(out, 'utf8');
    assert.ok(text.endsWith('\n'), 'no torn record after a graceful stop');
    const written = readJsonl(out).length;
    assert.ok(written >= 50 && written < readJsonl(reference).length);
    const again = await runCli(runArgs(out, '--resume'));
    assert.equal(again.code, 0, again.stderr);
    assertSameRecords(out, reference);
  }
});

test('shards split the catalog with no overlap; merge restores input order and catches a missing or doubled shard', async () => {
  const parts = [0, 1, 2, 3].map((i) => path.join(tmp, `part-${i}.jsonl`));
  for (let i = 0; i < 4; i++) {
    const r = await runCli(runArgs(parts[i]!, '--shard', `${i}/4`));
    assert.equal(r.code, 0, r.stderr);
  }
  const sizes = parts.map((p) => readJsonl(p).length);
  assert.equal(sizes.reduce((a, b) => a + b, 0), readJsonl(reference).length);
  assert.ok(sizes.every((n) => n > 0));
  const merged = path.join(tmp, 'merged.jsonl');
  let r = await runCli(['merge', ...parts.reverse(), '-o', merged, '--input', catalog]);
  assert.equal(r.code, 0, r.stderr);
  assertSameRecords(merged, reference);
  // Id order without the catalog.
  r = await runCli(['merge', ...parts, '-o', path.join(tmp, 'by-id.jsonl')]);
  assert.equal(r.code, 0, r.stderr);
  const ids = readJsonl(path.join(tmp, 'by-id.jsonl')).map((x) => x.id as string);
  assert.deepEqual(ids, [...ids].sort());
  r = await runCli(['merge', parts[0]!, parts[1]!, parts[2]!, '-o', path.join(tmp, 'm2.jsonl'), '--input', catalog]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /input rows have no record .*nothing written/);
  assert.equal(fs.existsSync(path.join(tmp, 'm2.jsonl')), false);
  r = await runCli(['merge', ...parts, parts[0]!, '-o', path.join(tmp, 'm3.jsonl'), '--input', catalog]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /records match no input row or repeat one/);
  assert.equal((await runCli(['run', catalog, '--model', demo.bundle, '--shard', '4/4'])).code, 2);
});

test('--log-format json: start, progress, summary and errors as one JSON object per line', async () => {
  const out = path.join(tmp, 'json-log.jsonl');
  let r = await runCli(['run', catalog, '--model', demo.bundle, '--image-root', imageRoot, '-o', out, '--log-format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; level: string; ts: string; rows?: number });
  assert.equal(events[0]!.event, 'start');
  assert.ok(events.some((e) => e.event === 'progress'));
  const summary = events.at(-1)!;
  assert.equal(summary.event, 'summary');
  assert.equal(summary.rows, readJsonl(reference).length);
  assert.ok(events.every((e) => !Number.isNaN(Date.parse(e.ts))));
  r = await runCli(['run', path.join(tmp, 'nope.csv'), '--model', demo.bundle, '-o', path.join(tmp, 'x.jsonl'), '--log-format', 'json']);
  assert.equal(r.code, 2);
  const last = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { event: string; level: string; code: string; exitCode: number };
  assert.deepEqual([last.event, last.level, last.code, last.exitCode], ['error', 'error', 'input_not_found', 2]);
});

test('--cache: a re-run embeds only the changed rows, and predicts exactly what an uncached run does', async () => {
  const cache = path.join(tmp, 'embed-cache');
  const cold = path.join(tmp, 'cache-cold.jsonl');
  const summaryFile = path.join(tmp, 'cache-summary.json');
  let r = await runCli(runArgs(cold, '--cache', cache, '--json-summary', summaryFile));
  assert.equal(r.code, 0, r.stderr);
  assertSameRecords(cold, reference);
  const first = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { cache: { hits: number; misses: number } };
  // Change the text of 2% of the rows (the demo catalog is its 320 rows twice over: the copies hit the cache already).
  const lines = fs.readFileSync(catalog, 'utf8').trim().split('\n');
  const changedIdx = lines.map((_, i) => i).filter((i) => i > 0 && i % 50 === 0);
  for (const i of changedIdx) lines[i] = lines[i]!.replace(/^([^,]*),/, '$1,Refurbished ');
  const changedCatalog = path.join(tmp, 'catalog-changed.csv');
  fs.writeFileSync(changedCatalog, lines.join('\n') + '\n');
  const warm = path.join(tmp, 'cache-warm.jsonl');
  r = await runCli(['run', changedCatalog, '--model', demo.bundle, '--image-root', imageRoot, '-o', warm, '-q', '--cache', cache, '--json-summary', summaryFile]);
  assert.equal(r.code, 0, r.stderr);
  const second = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { cache: { hits: number; misses: number } };
  assert.equal(second.cache.misses, changedIdx.length, 'only the changed texts are embedded again');
  assert.equal(second.cache.hits + second.cache.misses, first.cache.hits + first.cache.misses);
  const uncached = path.join(tmp, 'cache-uncached.jsonl');
  assert.equal((await runCli(['run', changedCatalog, '--model', demo.bundle, '--image-root', imageRoot, '-o', uncached, '-q'])).code, 0);
  assert.equal(fs.readFileSync(warm, 'utf8'), fs.readFileSync(uncached, 'utf8'));
  // Bounded: --cache-max-gb without --cache is a usage error.
  assert.equal((await runCli(runArgs(path.join(tmp, 'x.jsonl'), '--cache-max-gb', '1'))).code, 2);
});
