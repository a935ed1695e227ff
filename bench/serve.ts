// `npm run bench:serve`: load test of `categorize serve` — the real CLI as a child process on loopback, autocannon
// posting one prebuilt multipart /predict request (image + title + description, as the original service's clients
// do) at each concurrency for a fixed time. Prints requests/s, p50/p99 latency, non-2xx and errors, and the mean
// micro-batch size the encoders saw (from /metrics); exits 1 if any request failed.
//
//   node dist/bench/serve.js                                   # demo bundle, concurrency 1,4,16,64, 5 s each
//   node dist/bench/serve.js --model models/shop --duration 10 --concurrency 1,8,32 --server-args="--threads 2"
//
// Writes bench/results/<date>-<host>-serve.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { repoRoot, bin, machine } from './common.js';


const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(repoRoot, 'models', 'demo') },
    image: { type: 'string', default: path.join(repoRoot, 'fixtures', 'demo', 'images', 'P0001.jpg') },
    concurrency: { type: 'string', default: '1,4,16,64' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'server-args': { type: 'string', default: '' },
    'results-dir': { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 9).join('\n'));
  process.exit(0);
}
const levels = args.concurrency!.split(',').map((s) => Number(s.trim()));
if (levels.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--concurrency takes whole numbers ≥ 1, got ${args.concurrency}`);
const duration = Number(args.duration);
const warmup = Number(args.warmup);
const serverArgs = args['server-args']!.split(/\s+/).filter((s) => s !== '');

// ---- the request: what a FastAPI client's requests.post(files=..., data=...) sends ------------------------------
const boundary = '----categorizebench';
const imageBytes = fs.readFileSync(args.image!);
const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const body = Buffer.concat([
  Buffer.from(field('title', 'Acme breathable running shoes') + field('description', 'Lightweight mesh upper, cushioned sole, for daily runs.') + field('top_k_tags', '5')),
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${path.basename(args.image!)}"\r\nContent-Type: image/jpeg\r\n\r\n`),
  imageBytes,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);

// ---- the server: the real CLI, its own process (autocannon here would otherwise share its event loop) -----------
const maxQueue = 2 * Math.max(...levels);
const child = spawn(process.execPath, [bin, 'serve', '--model', args.model!, '--port', '0', '--max-queue', String(maxQueue), '--device', 'cpu', '-q', ...serverArgs], {
  cwd: repoRoot,
  env: { ...process.env, HF_HUB_OFFLINE: '1' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
let url = '';
let stdout = '';
for await (const chunk of child.stdout!) {
  stdout += String(chunk);
  const m = /^listening on (\S+)$/m.exec(stdout);
  if (m) {
    url = m[1];
    break;
  }
}
if (!url) throw new Error(`categorize serve exited before listening (${(await exited)[0]})`);
const t0 = performance.now();
while ((await fetch(`${url}/readyz`)).status !== 200) {
  if (performance.now() - t0 > 120_000) throw new Error('the server was not ready after 120 s');
  await new Promise((r) => setTimeout(r, 100));
}

/** Sum and count of the encoders' micro-batch sizes so far, per model, from the server's /metrics. */
async function batchTotals(): Promise<Record<string, { sum: number; count: number }>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, { sum: number; count: number }> = {};
  for (const m of text.matchAll(/^categorize_model_batch_size_(sum|count)\{model="(\w+)"\} (\S+)$/gm)) {
    out[m[2]] ??= { sum: 0, count: 0 };
    out[m[2]][m[1] as 'sum' | 'count'] = Number(m[3]);
  }
  return out;
}

async function rssMB(): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Math.round(Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1] ?? 0) / 1e6);
}

function load(connections: number, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    body,
    connections,
    duration: seconds,
    timeout: 30,
  });
}

console.log(`categorize serve at ${url}: bundle ${path.relative(repoRoot, args.model!) || args.model}, image ${path.basename(args.image!)} (${imageBytes.length} bytes), ${duration} s per level`);
if (warmup > 0) await load(4, warmup);

interface Level {
  concurrency: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  meanMicroBatch: Record<string, number | null>;
}
const results: Level[] = [];
for (const c of levels) {
  const before = await batchTotals();
  const r = await load(c, duration);
  const after = await batchTotals();
  const meanMicroBatch: Record<string, number | null> = {};
  for (const model of Object.keys(after)) {
    const d = { sum: after[model].sum - (before[model]?.sum ?? 0), count: after[model].count - (before[model]?.count ?? 0) };
    meanMicroBatch[model] = d.count > 0 ? d.sum / d.count : null;
  }
  results.push({
    concurrency: c,
    requestsPerSecond: r.requests.average,
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99, mean: r.latency.average, max: r.latency.max },
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    meanMicroBatch,
  });
}
const peakRssMB = await rssMB();

child.kill('SIGTERM');
const [exitCode] = await exited;

const fmt = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? '—' : x.toFixed(d));
const header = ['concurrency', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'non-2xx', 'errors', 'batch text', 'batch image'];
const rows = results.map((l) => [String(l.concurrency), fmt(l.requestsPerSecond), fmt(l.latencyMs.p50, 0), fmt(l.latencyMs.p99, 0), String(l.requests), String(l.non2xx), String(l.errors), fmt(l.meanMicroBatch.text, 2), fmt(l.meanMicroBatch.image, 2)]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
console.log('');
console.log(header.map((h, i) => h.padStart(widths[i])).join('  '));
for (const r of rows) console.log(r.map((v, i) => v.padStart(widths[i])).join('  '));
console.log(`\nserver resident memory after the run: ${peakRssMB} MB; exit on SIGTERM: ${exitCode}`);

const result = {
  ...machine(),
  bundle: args.model,
  image: { file: path.basename(args.image!), bytes: imageBytes.length },
  requestBytes: body.length,
  durationSeconds: duration,
  serverArgs,
  maxQueue,
  levels: results,
  serverRssMB: peakRssMB,
  serverExitCode: exitCode,
};
fs.mkdirSync(args['results-dir']!, { recursive: true });
const outFile = path.join(args['results-dir']!, `${result.date.slice(0, 10)}-${os.hostname()}-serve.json`);
fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(`written ${path.relative(repoRoot, outFile)}`);

const failed = results.filter((l) => l.non2xx > 0 || l.errors > 0);
if (failed.length > 0 || exitCode !== 0) {
  console.error(`bench:serve: FAILED: ${failed.map((l) => `concurrency ${l.concurrency}: ${l.non2xx} non-2xx, ${l.errors} errors`).join('; ') || `server exit code ${exitCode}`}`);
  process.exitCode = 1;
}
