// End-to-end: `categorize serve` on a path bundle trained by the real CLI (TF-IDF on a synthetic catalog with
// category_path, so no embedding model is needed), checked against what `categorize run` writes for the same rows:
// /predict keeps the original keys and adds the path fields, /predict/batch sends run's records byte for byte, and
// --min-path-score (or a request's min_path_score) moves the answer's depth the way run's does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import sharp from 'sharp';
import { stringify } from 'csv-stringify/sync';
import { bin, runCli, readJsonl } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { syntheticCatalog } from '../../bench/synthetic-catalog.js';
import { PATH_FIELDS } from '../../src/io/prediction-writer.js';
import { pathLevels } from '../../src/head/taxonomy.js';

const RESPONSE_KEYS = ['category', 'score', 'top_categories', 'tags'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-serve-paths-'));
const bundle = path.join(tmp, 'bundle');
const held = path.join(tmp, 'held.csv');
/** Above most rows' top-level probability on this catalog: many answers back off, some go unanswered. */
const HIGH = 0.9;

interface Row {
  id: string;
  title: string;
  description: string;
}
type Rec = Record<string, any>;

let rows: Row[];
/** run's records for `held`: at the bundle's threshold, and at HIGH. */
let runAt: Rec[];
let runHigh: Rec[];
let photo: Buffer;

interface Server {
  url: string;
  child: ChildProcess;
  stderr: () => string;
}
const servers: Server[] = [];

async function startServe(...extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [bin, 'serve', '--model', bundle, '--port', '0', '--max-wait-ms', '1', ...extra], {
    cwd: repoRoot,
    env: { ...process.env, HF_HUB_OFFLINE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let out = '';
  let url: string | undefined;
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    url = /^listening on (http:\/\/\S+)$/m.exec(out)?.[1];
    if (url) break;
  }
  if (!url) throw new Error(`serve exited before listening: ${stderr}`);
  const server = { url, child, stderr: () => stderr };
  servers.push(server);
  for (let i = 0; (await fetch(`${url}/readyz`)).status !== 200; i++) {
    assert.ok(i < 300, `not ready after 30 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

async function predict(s: Server, row: Row, extra: Record<string, string> = {}): Promise<{ status: number; warnings: string | null; body: any }> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(photo)], { type: 'image/png' }), 'photo.png');
  form.append('title', row.title);
  form.append('description', row.description);
  for (const [k, v] of Object.entries(extra)) form.append(k, v);
  const res = await fetch(`${s.url}/predict`, { method: 'POST', body: form });
  return { status: res.status, warnings: res.headers.get('x-categorize-warnings'), body: await res.json() };
}

async function batch(s: Server, body: string, type: string, opts: { query?: string; accept?: string } = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${s.url}/predict/batch${opts.query ?? ''}`, { method: 'POST', body, headers: { 'content-type': type, ...(opts.accept ? { accept: opts.accept } : {}) } });
  return { status: res.status, text: await res.text() };
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-6, `${what}: ${a} vs ${b}`);

/** /predict's answer for a row against run's record of it (run rounds to 6 decimals; /predict does not). */
function assertMatchesRecord(body: Rec, warnings: string | null, rec: Rec, id: string): void {
  assert.deepEqual(Object.keys(body), [...RESPONSE_KEYS, ...PATH_FIELDS], id);
  assert.deepEqual(
    body.top_categories.map((t: Rec) => t.category),
    rec.top_categories.map((t: Rec) => t.category),
    id,
  );
  assert.deepEqual(body.tags, rec.tags, id);
  assert.equal(body.path_depth, rec.path_depth, id);
  assert.equal(body.path_complete, rec.path_complete, id);
  assert.equal(body.path_scores.length, rec.path_scores.length, id);
  body.path_scores.forEach((p: number, i: number) => close(p, rec.path_scores[i], `${id} path_scores[${i}]`));
  assert.equal(body.full_path, rec.full_path, id);
  close(body.full_path_score, rec.full_path_score, `${id} full_path_score`);
  assert.equal(warnings, rec.warnings.length ? rec.warnings.join(', ') : null, id);
  if (rec.category !== null) {
    assert.equal(body.category, rec.category, id);
    close(body.score, rec.score, `${id} score`);
    // The answered node's score is the last level's.
    assert.equal(body.score, body.path_scores.at(-1), id);
  }
}

before(async () => {
  // 80 classes make 2 departments (40 make 1, whose top level is always sure); C fixed: seconds, not a C search.
  const csv = (rs: ReturnType<typeof syntheticCatalog>) => stringify([['id', 'title', 'description', 'category_path'], ...rs.map((r) => [r.id, r.title, r.description, r.category_path])]);
  fs.writeFileSync(path.join(tmp, 'train.csv'), csv(syntheticCatalog({ classes: 80, rows: 1600, seed: 2 })));
  const sample = syntheticCatalog({ classes: 80, rows: 1600, seed: 2, sample: 1, sampleRows: 40 });
  fs.writeFileSync(held, csv(sample));
  rows = sample.map((r) => ({ id: r.id, title: r.title, description: r.description }));
  const t = await runCli(['train', path.join(tmp, 'train.csv'), '--label-column', 'category_path', '--features', 'tfidf', '--C', '1', '--validation', '0', '-q', '-o', bundle]);
  assert.equal(t.code, 0, t.stderr);
  assert.ok(JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')).paths, 'a path bundle');
  for (const [out, extra] of [
    ['run.jsonl', []],
    ['run.csv', []],
    ['run-high.jsonl', ['--min-path-score', String(HIGH)]],
  ] as const) {
    const r = await runCli(['run', held, '-m', bundle, '-o', path.join(tmp, out), '-q', ...extra]);
    assert.equal(r.code, 0, r.stderr);
  }
  runAt = readJsonl(path.join(tmp, 'run.jsonl'));
  runHigh = readJsonl(path.join(tmp, 'run-high.jsonl'));
  // The catalog is one the tests can tell thresholds apart on: at 0.5 some answers are full paths and some stop
  // short; at HIGH some go unanswered (category null in run's records).
  assert.ok(runAt.some((r) => r.path_complete) && runAt.some((r) => r.warnings.includes('path_backoff')));
  assert.ok(runHigh.some((r) => r.category === null && r.warnings.includes('path_unanswered')));
  // A text-only bundle never reads the image, but /predict's form still requires one (the original contract).
  photo = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c0ffee' } }).png().toBuffer();
});

after(() => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
});

test('path bundle /predict: the original keys (the answered node) then run\'s path fields; warnings in the header', async () => {
  const s = await startServe();
  assert.match(s.stderr(), /category paths: \d+ nodes, 3 levels; answering at min-path-score 0\.5 \(the bundle's;/);
  for (const [i, row] of rows.entries()) {
    const r = await predict(s, row);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assertMatchesRecord(r.body, r.warnings, runAt[i], row.id);
  }
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(metrics, /^categorize_bundle_info\{kind="paths",path_separator=">"\} 1$/m);
  assert.match(metrics, /^categorize_min_path_score 0\.5$/m);
});

test('path bundle /predict/batch: run\'s records, byte for byte (JSON lines and CSV out; CSV and JSON lines in)', async () => {
  const s = servers[0] ?? (await startServe());
  const catalog = fs.readFileSync(held, 'utf8');
  const jsonl = await batch(s, catalog, 'text/csv');
  assert.equal(jsonl.status, 200, jsonl.text);
  assert.equal(jsonl.text, fs.readFileSync(path.join(tmp, 'run.jsonl'), 'utf8'));
  const csv = await batch(s, catalog, 'text/csv', { accept: 'text/csv' });
  assert.equal(csv.status, 200, csv.text);
  assert.equal(csv.text, fs.readFileSync(path.join(tmp, 'run.csv'), 'utf8'));
  const lines = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const fromLines = await batch(s, lines, 'application/x-ndjson');
  assert.equal(fromLines.text, fs.readFileSync(path.join(tmp, 'run.jsonl'), 'utf8'));
  // A request's own threshold: what `run --min-path-score` writes.
  const high = await batch(s, catalog, 'text/csv', { query: `?min_path_score=${HIGH}` });
  assert.equal(high.text, fs.readFileSync(path.join(tmp, 'run-high.jsonl'), 'utf8'));
  // A repeated parameter is its last value, as the Python service read it (not a 500).
  const repeated = await batch(s, catalog, 'text/csv', { query: `?min_path_score=0.1&min_path_score=${HIGH}` });
  assert.equal(repeated.text, high.text);
});

test('serve --min-path-score: answers move up the path as run\'s do; unanswered rows keep a string category (the likeliest top-level node)', async () => {
  const s = await startServe('--min-path-score', String(HIGH));
  assert.match(s.stderr(), /answering at min-path-score 0\.9 \(--min-path-score;/);
  assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^categorize_min_path_score 0\.9$/m);
  let shallower = 0;
  let unanswered = 0;
  for (const [i, row] of rows.entries()) {
    const r = await predict(s, row);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const rec = runHigh[i];
    assertMatchesRecord(r.body, r.warnings, rec, row.id);
    if (rec.path_depth < runAt[i].path_depth) shallower++;
    if (rec.category === null) {
      unanswered++;
      // What the 0.5 answer took as its first level is the likeliest top-level node, and its probability (with two
      // departments one of them always reaches 0.5, so that answer has a first level).
      assert.equal(r.body.category, pathLevels(runAt[i].category)[0], row.id);
      close(r.body.score, runAt[i].path_scores[0], `${row.id} fallback score`);
      assert.ok(r.body.score < HIGH);
      assert.deepEqual([r.body.path_depth, r.body.path_complete, r.body.path_scores], [0, false, []]);
      assert.equal(r.warnings, 'path_unanswered');
    }
    // The same answer from the default server when the request names the threshold itself.
    const perRequest = await predict(servers[0], row, { min_path_score: String(HIGH) });
    assert.deepEqual(perRequest.body, r.body, row.id);
    assert.equal(perRequest.warnings, r.warnings, row.id);
    // And back: this server answers at the bundle's 0.5 when asked.
    const back = await predict(s, row, { min_path_score: '0.5' });
    assertMatchesRecord(back.body, back.warnings, runAt[i], row.id);
  }
  assert.ok(shallower > 0 && unanswered > 0, `${shallower} shallower, ${unanswered} unanswered`);
  const batchHigh = await batch(s, fs.readFileSync(held, 'utf8'), 'text/csv');
  assert.equal(batchHigh.text, fs.readFileSync(path.join(tmp, 'run-high.jsonl'), 'utf8'));
});

test('min_path_score outside 0..1 or not a number: 422 naming the field, FastAPI-style, gathered with the others', async () => {
  const s = servers[0] ?? (await startServe());
  for (const [bad, type] of [
    ['abc', 'float_parsing'],
    ['', 'float_parsing'],
    ['nan', 'float_parsing'],
    ['1.5', 'less_than_equal'],
    ['-0.1', 'greater_than_equal'],
  ]) {
    const r = await predict(s, rows[0], { min_path_score: bad });
    assert.equal(r.status, 422, bad);
    assert.deepEqual(r.body.detail.map((d: Rec) => [d.loc.join('.'), d.type]), [['body.min_path_score', type]], bad);
  }
  const both = await predict(s, rows[0], { min_path_score: '2', top_k_tags: 'x' });
  assert.deepEqual(both.body.detail.map((d: Rec) => d.loc.join('.')), ['body.top_k_tags', 'body.min_path_score']);
  for (const ok of ['0', '1', '.75', '1e-1']) assert.equal((await predict(s, rows[0], { min_path_score: ok })).status, 200, ok);
  const b = await batch(s, '{"title":"x"}\n', 'application/x-ndjson', { query: '?min_path_score=7&top_k_tags=99' });
  assert.equal(b.status, 422);
  assert.deepEqual(JSON.parse(b.text).detail.map((d: Rec) => d.loc.join('.')), ['query.top_k_tags', 'query.min_path_score']);
});
