// End-to-end: the built `categorize` binary on the demo catalog and on catalogs of bad rows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { parse } from 'csv-parse/sync';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import { cudaAvailable } from '../../src/runtime/session.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-e2e-'));
const out = (name: string) => path.join(tmp, name);
const FIELDS = ['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings'];

function csvRows(file: string): Record<string, string>[] {
  return parse(fs.readFileSync(file), { columns: true, bom: true }) as Record<string, string>[];
}

before(async () => {
  await ensureDemo();
});

test('demo catalog: one ordered JSONL record per row, the exact fields, sensible predictions', async () => {
  const r = await runCli(['run', demo.catalog, '--model', demo.bundle, '-o', out('demo.jsonl'), '--json-summary', out('summary.json')]);
  assert.equal(r.code, 0, r.stderr);
  const input = csvRows(demo.catalog);
  const recs = readJsonl(out('demo.jsonl'));
  assert.equal(recs.length, input.length);
  assert.deepEqual(recs.map((x) => x.id), input.map((x) => x.id));
  const classes = JSON.parse(fs.readFileSync(path.join(demo.bundle, 'manifest.json'), 'utf8')).classes as string[];
  let correct = 0;
  for (const [i, rec] of recs.entries()) {
    assert.deepEqual(Object.keys(rec), FIELDS);
    assert.equal(rec.status, 'ok');
    assert.equal(rec.error, null);
    const top = rec.top_categories as { category: string; prob: number }[];
    assert.equal(top.length, 3);
    assert.equal(top[0].category, rec.category);
    assert.equal(top[0].prob, rec.score);
    assert.ok(top[0].prob >= top[1].prob && top[1].prob >= top[2].prob);
    assert.ok(classes.includes(rec.category as string));
    const tags = rec.tags as string[];
    assert.ok(tags.length > 0 && tags.length <= 5);
    if (input[i].image === '') assert.deepEqual(rec.warnings, ['image_missing']);
    else assert.deepEqual(rec.warnings, []);
    if (rec.category === input[i].category) correct++;
  }
  // A real fitted head on held-out rows: far above chance (1/8).
  assert.ok(correct / recs.length > 0.7, `accuracy ${correct / recs.length}`);
  const summary = JSON.parse(fs.readFileSync(out('summary.json'), 'utf8'));
  assert.equal(summary.rows, input.length);
  assert.equal(summary.errors, 0);
  assert.equal(summary.reasons.image_missing, input.filter((x) => x.image === '').length);
  assert.match(r.stderr, new RegExp(`${input.length} rows · ${input.length} ok · 0 errors`));
});

test('CSV output: header, JSON-encoded list cells, --keep-columns, --top-n, --top-k-tags', async () => {
  const r = await runCli(['run', demo.catalog, '-m', demo.bundle, '-o', out('demo.csv'), '--keep-columns', 'category,title', '--top-n', '2', '--top-k-tags', '3', '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const header = fs.readFileSync(out('demo.csv'), 'utf8').split('\n')[0];
  // The stored category is kept beside the prediction, never over it.
  assert.equal(header, [...FIELDS, 'input_category', 'title'].join(','));
  const rows = parse(fs.readFileSync(out('demo.csv')), { columns: false, from_line: 2 }) as string[][];
  const input = csvRows(demo.catalog);
  assert.equal(rows.length, input.length);
  for (const [i, row] of rows.entries()) {
    assert.equal(row[0], input[i].id);
    assert.equal(JSON.parse(row[3]).length, 2);
    assert.ok(JSON.parse(row[4]).length <= 3);
    assert.equal(row[8], input[i].category);
    assert.equal(row[9], input[i].title);
  }
});

test('stdin to stdout (JSONL), with --image-root since stdin has no folder', async () => {
  const csv = fs.readFileSync(demo.catalog, 'utf8');
  const r = await runCli(['run', '-', '-m', demo.bundle, '--image-root', path.dirname(demo.catalog), '-q'], { stdin: csv });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, csvRows(demo.catalog).length);
  assert.ok(lines.every((l) => l.status === 'ok'));
  // Without --image-root the relative paths resolve against cwd: rows become text-only with a warning, never lost.
  const r2 = await runCli(['run', '-', '-m', demo.bundle, '-q', '--format', 'jsonl'], { stdin: csv, cwd: tmp });
  const lines2 = r2.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines2.length, lines.length);
  assert.ok(lines2.filter((l) => l.image !== '').every((l) => l.status === 'ok'));
  assert.ok(lines2.some((l) => (l.warnings as string[]).some((w) => w.startsWith('image_not_found'))));
});

// ---------- bad input ----------

let server: http.Server;
let base = '';

async function writeBadCatalog(): Promise<string> {
  const dir = path.join(tmp, 'bad');
  fs.mkdirSync(dir, { recursive: true });
  const demoImage = fs.readdirSync(demo.images).find((f) => f.endsWith('.jpg'))!;
  fs.copyFileSync(path.join(demo.images, demoImage), path.join(dir, 'good.jpg'));
  fs.writeFileSync(path.join(dir, 'corrupt.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 7)]));
  fs.writeFileSync(path.join(dir, 'notes.png'), 'this is a text file, not a picture\n');
  await sharp({ create: { width: 3000, height: 2000, channels: 3, background: '#808080' } }).png().toFile(path.join(dir, 'huge.png'));
  const rows = [
    ['id', 'title', 'description', 'image'],
    ['ok', 'Acme leather running shoes size 42', 'Grippy outsole', 'good.jpg'],
    ['missing-file', 'Zenith quartz analog watch', 'Date window', 'nope/absent.jpg'],
    ['corrupt', 'Orbit ultrabook 16 GB RAM', 'Full HD screen', 'corrupt.jpg'],
    ['not-image', 'Hearth cast iron frying pan', 'Even heat', 'notes.png'],
    ['too-large', 'Lumen illustrated cookbook', '320 pages', 'huge.png'],
    ['url-404', 'Pico plush bear ages 3+', 'Soft', `${base}/missing.jpg`],
    ['url-timeout', 'Kestrel hydrating face cream', '50 ml', `${base}/slow.jpg`],
    ['url-ok', 'Maple & Co oak bookshelf', 'Sturdy frame', `${base}/good.jpg`],
    ['no-text', '', '', 'good.jpg'],
    ['nothing', '', '', ''],
    ['no-image', 'Veloce gaming laptop', 'Backlit keyboard', ''],
    ['ragged', 'only a title'],
    ['after-ragged', 'Nordia sneakers', 'Lace-up', 'good.jpg'],
  ];
  const csv = rows.map((r) => r.map((c) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(',')).join('\n') + '\n';
  fs.writeFileSync(path.join(dir, 'bad.csv'), csv);
  return path.join(dir, 'bad.csv');
}

let badCatalog = '';
before(async () => {
  const good = fs.readFileSync(path.join(demo.images, fs.readdirSync(demo.images).find((f) => f.endsWith('.jpg'))!));
  server = http.createServer((req, res) => {
    if (req.url === '/good.jpg') {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      res.end(good);
    } else if (req.url === '/slow.jpg') {
      setTimeout(() => res.destroy(), 5000).unref();
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  badCatalog = await writeBadCatalog();
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('bad rows: every row is written, each with the right status and reason', async () => {
  const r = await runCli([
    'run', badCatalog, '-m', demo.bundle, '-o', out('bad.jsonl'),
    '--max-image-pixels', '4000000', '--fetch-timeout-ms', '300', '--fetch-retries', '1', '--json-summary', out('bad-summary.json'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const recs = readJsonl(out('bad.jsonl'));
  const byId = Object.fromEntries(recs.map((x) => [x.id as string, x]));
  assert.deepEqual(recs.map((x) => x.id), ['ok', 'missing-file', 'corrupt', 'not-image', 'too-large', 'url-404', 'url-timeout', 'url-ok', 'no-text', 'nothing', 'no-image', 'ragged', 'after-ragged']);
  const warn = (id: string) => (byId[id].warnings as string[]).map((w) => w.split(':')[0]);
  assert.equal(byId.ok.status, 'ok');
  assert.deepEqual(warn('ok'), []);
  // Image problems with text present: predicted from text, imputed image, a warning naming the problem.
  for (const [id, code] of [
    ['missing-file', 'image_not_found'],
    ['corrupt', 'image_corrupt'],
    ['not-image', 'image_unsupported'],
    ['too-large', 'image_too_large'],
    ['url-404', 'url_http_404'],
    ['url-timeout', 'url_timeout'],
  ]) {
    assert.equal(byId[id].status, 'ok', id);
    assert.ok(byId[id].category, id);
    assert.deepEqual(warn(id), [code], `${id}: ${JSON.stringify(byId[id].warnings)}`);
  }
  assert.equal(byId['url-ok'].status, 'ok');
  assert.deepEqual(warn('url-ok'), []);
  assert.equal(byId['no-text'].status, 'ok');
  assert.deepEqual(byId['no-text'].warnings, ['text_missing']);
  assert.deepEqual(byId['no-text'].tags, []);
  assert.deepEqual(byId['no-image'].warnings, ['image_missing']);
  assert.equal(byId.nothing.status, 'error');
  assert.match(byId.nothing.error as string, /^no_input: no text and no image$/);
  assert.equal(byId.nothing.category, null);
  assert.equal(byId.nothing.score, null);
  const ragged = byId.ragged;
  assert.equal(ragged.status, 'error');
  assert.match(ragged.error as string, /^ragged_row: 2 fields where the header has 4$/);
  assert.equal(byId['after-ragged'].status, 'ok');
  const summary = JSON.parse(fs.readFileSync(out('bad-summary.json'), 'utf8'));
  assert.equal(summary.rows, 13);
  assert.equal(summary.errors, 2);
  assert.equal(summary.reasons.url_timeout, 1);
});

test('--on-image-error error turns image failures into error rows', async () => {
  const r = await runCli(['run', badCatalog, '-m', demo.bundle, '-o', out('bad-strict.jsonl'), '--on-image-error', 'error', '--fetch-timeout-ms', '300', '--max-image-pixels', '4000000', '-q']);
  assert.equal(r.code, 0, r.stderr);
  const byId = Object.fromEntries(readJsonl(out('bad-strict.jsonl')).map((x) => [x.id as string, x]));
  assert.equal(byId['missing-file'].status, 'error');
  assert.match(byId['missing-file'].error as string, /^image_not_found: /);
  assert.equal(byId['url-404'].status, 'error');
  assert.equal(byId.ok.status, 'ok');
});

test('--max-error-rate: exit 3 after writing every row', async () => {
  const r = await runCli(['run', badCatalog, '-m', demo.bundle, '-o', out('gate.jsonl'), '--max-error-rate', '0.1', '--fetch-timeout-ms', '300', '--max-image-pixels', '4000000']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /error rate 15\.38% exceeds --max-error-rate 10\.00%/);
  assert.equal(readJsonl(out('gate.jsonl')).length, 13);
  const ok = await runCli(['run', badCatalog, '-m', demo.bundle, '-o', out('gate2.jsonl'), '--max-error-rate', '0.2', '--fetch-timeout-ms', '300', '-q']);
  assert.equal(ok.code, 0);
});

// ---------- configuration errors: exit 2 before any row ----------

test('missing column: exit 2, names the column and lists those found', async () => {
  const p = out('cols.csv');
  fs.writeFileSync(p, 'sku,name,picture\n1,a,b\n');
  const r = await runCli(['run', p, '-m', demo.bundle, '-o', out('cols.jsonl')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^categorize: error: text column 'title' or 'description' not found \(columns found: 'sku', 'name', 'picture'\)/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  const r2 = await runCli(['run', p, '-m', demo.bundle, '--title-column', 'name', '--image-column', 'photo']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /image column 'photo' not found/);
  const r3 = await runCli(['run', p, '-m', demo.bundle, '--title-column', 'name', '--image-column', 'picture', '-q']);
  assert.equal(r3.code, 0, r3.stderr);
});

test('bundle problems: missing, unreadable, wrong dims, wrong model file → exit 2 with what and where', async () => {
  const r = await runCli(['run', demo.catalog, '-m', out('no-such-bundle')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /model bundle not found: .*no-such-bundle/);

  const broken = out('broken-bundle');
  fs.cpSync(demo.bundle, broken, { recursive: true });
  fs.writeFileSync(path.join(broken, 'manifest.json'), '{ not json');
  const r2 = await runCli(['run', demo.catalog, '-m', broken]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /manifest\.json is not valid JSON/);

  const newer = out('newer-bundle');
  fs.cpSync(demo.bundle, newer, { recursive: true });
  const m = JSON.parse(fs.readFileSync(path.join(newer, 'manifest.json'), 'utf8'));
  fs.writeFileSync(path.join(newer, 'manifest.json'), JSON.stringify({ ...m, formatVersion: 99 }));
  const r3 = await runCli(['run', demo.catalog, '-m', newer]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /format version 99 is not supported/);

  const noFile = out('noclf-bundle');
  fs.cpSync(demo.bundle, noFile, { recursive: true });
  const headFile: string = m.fusion?.heads[0].file ?? m.classifier.file;
  fs.rmSync(path.join(noFile, headFile));
  const r4 = await runCli(['run', demo.catalog, '-m', noFile]);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, new RegExp(`missing ${headFile.replace('.', '\\.')}`));

  // The text model given where the image model belongs: wrong interface/dims, caught before any row.
  const r5 = await runCli(['run', demo.catalog, '-m', demo.bundle, '--image-model', path.join(demo.bundle, 'encoders', 'text', 'model.onnx'), '-o', out('x.jsonl')]);
  assert.equal(r5.code, 2, r5.stderr);
  assert.match(r5.stderr, /image model/);
  assert.ok(!fs.existsSync(out('x.jsonl')), 'no output before models load');

  // A different image model with the bundle's hash pinned: refused with both hashes.
  const other = out('other-image');
  fs.mkdirSync(other);
  const { buildImageEncoder } = await import('../../fixtures/tiny-models.js');
  fs.writeFileSync(path.join(other, 'model.onnx'), buildImageEncoder({ seed: 999, dim: 16 }));
  const r6 = await runCli(['run', demo.catalog, '-m', demo.bundle, '--image-model', other]);
  assert.equal(r6.code, 2);
  assert.match(r6.stderr, /is not the expected one \(bundle .*\): sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/);

  // Same interface, different width: the dims check names both numbers.
  const wide = out('wide-bundle');
  fs.cpSync(demo.bundle, wide, { recursive: true });
  const wm = JSON.parse(fs.readFileSync(path.join(wide, 'manifest.json'), 'utf8'));
  delete wm.features[1].model.sha256;
  fs.writeFileSync(path.join(wide, 'encoders', 'image', 'model.onnx'), buildImageEncoder({ seed: 5, dim: 24 }));
  const descriptor = path.join(wide, 'encoders', 'image', 'categorize-model.json');
  fs.writeFileSync(descriptor, JSON.stringify({ ...JSON.parse(fs.readFileSync(descriptor, 'utf8')), dim: 24 }));
  fs.writeFileSync(path.join(wide, 'manifest.json'), JSON.stringify(wm));
  const r7 = await runCli(['run', demo.catalog, '-m', wide]);
  assert.equal(r7.code, 2);
  assert.match(r7.stderr, /produces 24-d embeddings but 16 are expected/);
});

test('usage errors exit 2; --help and --version exit 0 and tell the truth', async () => {
  const r = await runCli(['run', demo.catalog, '-m', demo.bundle, '--batch-size', 'zero']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--batch-size/);
  const r2 = await runCli(['run', demo.catalog, '-m', demo.bundle, '--frobnicate']);
  assert.equal(r2.code, 2);
  const r3 = await runCli(['run', demo.catalog, '-m', demo.bundle, '-o', out('x.txt')]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /cannot tell the output format/);
  const r4 = await runCli(['run', out('absent.csv'), '-m', demo.bundle]);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, /input file not found/);
  const help = await runCli(['run', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--model', '--output', '--format', '--id-column', '--title-column', '--description-column', '--image-column', '--image-root', '--keep-columns', '--text-model', '--image-model', '--device', '--threads', '--batch-size', '--concurrency', '--top-n', '--top-k-tags', '--max-error-rate', '--quiet', '--json-summary']) {
    assert.ok(help.stdout.includes(flag), `help lists ${flag}`);
  }
  const trainHelp = await runCli(['train', '--help']);
  for (const flag of ['--label-column', '--output', '--features', '--C', '--class-weight', '--max-iter', '--tol', '--min-df', '--max-df', '--max-features', '--ngram-range', '--stop-words', '--validation', '--cv', '--no-refit', '--seed', '--text-model', '--image-model', '--no-prior-shift', '--no-name-match']) {
    assert.ok(trainHelp.stdout.includes(flag), `train help lists ${flag}`);
  }
  const evalHelp = await runCli(['eval', '--help']);
  for (const flag of ['--label-column', '--model', '--json', '--report', '--min-accuracy', '--min-macro-f1']) {
    assert.ok(evalHelp.stdout.includes(flag), `eval help lists ${flag}`);
  }
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
});

test('--device cuda without the CUDA provider falls back to CPU with a notice', async () => {
  const r = await runCli(['run', demo.catalog, '-m', demo.bundle, '-o', out('cuda.jsonl'), '--device', 'cuda']);
  assert.equal(r.code, 0, r.stderr);
  if (!cudaAvailable()) assert.match(r.stderr, /CUDA requested but this onnxruntime-node install has no CUDA provider; running on CPU/);
  assert.equal(readJsonl(out('cuda.jsonl')).length, csvRows(demo.catalog).length);
});

test('a runtime failure (output device full) is one line and exit 1', { skip: !fs.existsSync('/dev/full') && 'needs /dev/full' }, async () => {
  const r = await runCli(['run', demo.catalog, '-m', demo.bundle, '-o', '/dev/full', '--format', 'jsonl']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), 'categorize: error: cannot write /dev/full: ENOSPC: no space left on device, write');
});
