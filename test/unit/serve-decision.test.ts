// `serve` and accept/review decisions: the target_precision field's validation, a request's target resolved against
// the bundle's calibration (400 when it cannot be served), a path row decided again after a request's min_path_score,
// and the server on the demo bundle with targets added from its own held-out curve: /predict's added keys, the batch
// records' decision fields, /metrics; and the demo bundle without targets left exactly as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDemo, demo } from '../helpers/cli.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { serveOptions } from '../helpers/serve-options.js';
import { parseTargetField, requestDecision, type ServeDecision } from '../../src/serve/decision.js';
import { predictUpload } from '../../src/serve/predict.js';
import { runBatch } from '../../src/serve/batch.js';
import { imagePolicy } from '../../src/serve/image-policy.js';
import { HttpError } from '../../src/serve/http-error.js';
import { Taxonomy } from '../../src/head/taxonomy.js';
import { thresholdForTarget, type PrecisionCurve } from '../../src/head/calibration.js';
import { DECISION_FIELDS, PATH_FIELDS, RECORD_FIELDS, type PredictionRecord } from '../../src/io/prediction-writer.js';
import { decide, pathRecord, type Predictor } from '../../src/pipeline/predictor.js';
import type { BundleCalibration } from '../../src/models/bundle.js';
import { UsageError } from '../../src/errors.js';

const RESPONSE_KEYS = ['category', 'score', 'top_categories', 'tags'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-serve-decision-'));
/** The demo bundle with targets 0.995 (none: its held-out rows cannot vouch for it) and 0.9, as train stores them. */
const targeted = path.join(tmp, 'targeted');
/** The demo bundle without calibration. */
const uncalibrated = path.join(tmp, 'uncalibrated');
let curve: PrecisionCurve;
let t90: number;

before(async () => {
  await ensureDemo();
  const m = JSON.parse(fs.readFileSync(path.join(demo.bundle, 'manifest.json'), 'utf8'));
  curve = m.calibration.curve;
  const targets = [thresholdForTarget(curve, 0.995), thresholdForTarget(curve, 0.9)];
  assert.equal(targets[0].threshold, null);
  t90 = targets[1].threshold!;
  fs.cpSync(demo.bundle, targeted, { recursive: true });
  fs.writeFileSync(path.join(targeted, 'manifest.json'), JSON.stringify({ ...m, calibration: { ...m.calibration, targets } }, null, 2));
  fs.cpSync(demo.bundle, uncalibrated, { recursive: true });
  const { calibration: _, ...plain } = m;
  fs.writeFileSync(path.join(uncalibrated, 'manifest.json'), JSON.stringify(plain, null, 2));
});

test('parseTargetField: absent is undefined; strictly between 0 and 1 passes; anything else is a pydantic-worded problem', () => {
  assert.equal(parseTargetField(undefined, 'target_precision', 'body'), undefined);
  for (const [raw, p] of [['0.9', 0.9], [' .95 ', 0.95], ['9e-1', 0.9], ['0.999', 0.999]] as const) assert.equal(parseTargetField(raw, 'target_precision', 'body'), p, raw);
  for (const [raw, type] of [['', 'float_parsing'], ['x', 'float_parsing'], ['nan', 'float_parsing'], ['0', 'greater_than'], ['-0.5', 'greater_than'], ['1', 'less_than'], ['1.5', 'less_than']]) {
    const problem = parseTargetField(raw, 'target_precision', 'query');
    assert.equal(typeof problem, 'object', raw);
    assert.deepEqual(problem, { ...(problem as object), type, loc: ['query', 'target_precision'], input: raw }, raw);
  }
});

test('requestDecision: the server\'s decision, a request\'s own target from the stored curve, or a 400 saying why not', () => {
  const calibration = { curve, targets: [thresholdForTarget(curve, 0.9)] } as unknown as BundleCalibration;
  const served: ServeDecision = { calibration, decision: { target: 0.9, threshold: t90 }, source: 'bundle' };
  assert.equal(requestDecision(served, undefined), served.decision);
  assert.deepEqual(requestDecision(served, 0.8), { target: 0.8, threshold: thresholdForTarget(curve, 0.8).threshold });
  // A server without a target of its own still decides for a request that names one.
  assert.deepEqual(requestDecision({ ...served, decision: null }, 0.9), { target: 0.9, threshold: t90 });
  assert.equal(requestDecision({ ...served, decision: null }, undefined), null);
  const refused = (s: ServeDecision, p: number, re: RegExp, code: string) =>
    assert.throws(() => requestDecision(s, p), (e: unknown) => e instanceof HttpError && e.status === 400 && e.code === code && re.test(e.message) && !e.message.includes('\n'));
  refused(served, 0.995, /^target_precision 0\.995: the bundle cannot vouch for it: the 480 held-out rows vouch for precision 0\.\d+ at most/, 'target_unsupported');
  refused({ calibration: undefined, decision: null, source: 'bundle' }, 0.9, /^target_precision 0\.9 needs a calibrated bundle: the bundle has no calibration/, 'not_calibrated');
});

/** Two departments: A (x, y) and B (z). */
const classes = ['A > x', 'A > y', 'B > z'];
const tree = new Taxonomy(classes);

function recordAt(probs: Float32Array, minScore: number, decision: { target: number; threshold: number } | null): PredictionRecord {
  const { warning, ...answer } = pathRecord(tree.answer(probs, minScore));
  const top = [...probs].map((prob, k) => ({ category: classes[k], prob })).sort((a, b) => b.prob - a.prob);
  const rec: PredictionRecord = { id: '1', ...answer, top_categories: top, tags: ['t'], status: 'ok', error: null, warnings: warning ? [warning] : [] };
  if (decision) rec.decision = decide(rec, decision);
  return rec;
}

test('predictUpload: a path row re-answered at the request\'s min_path_score is decided again; a flat answer adds the decision last', async () => {
  // A is sure (0.85), its leaf y less (0.6): complete at 0.5, stopped at A at 0.7.
  const probs = new Float32Array([0.25, 0.6, 0.15]);
  const decision = { target: 0.9, threshold: 0.55 };
  const predictor = { predict: async () => ({ record: recordAt(probs, 0.5, decision), probs, heads: {} }), attributeNames: [], predictedAttributes: [] } as unknown as Predictor;
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const form = { image: png, title: 't', description: '', topKTags: 5 };
  const paths = { tree, minScore: 0.5, separator: '>', source: 'bundle' as const };
  const at = await predictUpload(predictor, form, paths, decision);
  assert.deepEqual(Object.keys(at.body), [...RESPONSE_KEYS, ...PATH_FIELDS, ...DECISION_FIELDS]);
  assert.deepEqual([at.body.category, at.body.decision, at.body.target_precision], ['A > y', 'accept', 0.9]);
  const high = await predictUpload(predictor, { ...form, minPathScore: 0.7 }, paths, decision);
  assert.deepEqual([high.body.category, high.body.decision], ['A', 'review'], 'stopped above full depth: for review, whatever the predictor decided');
  // The request's own target: decided at its threshold.
  const strict = await predictUpload(predictor, form, paths, { target: 0.95, threshold: 0.65 });
  assert.deepEqual([strict.body.decision, strict.body.target_precision], ['review', 0.95]);
  // No decision: the keys stay as they were.
  const none = await predictUpload(predictor, form, paths, null);
  assert.deepEqual(Object.keys(none.body), [...RESPONSE_KEYS, ...PATH_FIELDS]);

  const flatRecord: PredictionRecord = { id: '1', category: 'B > z', score: 0.7, top_categories: [{ category: 'B > z', prob: 0.7 }], tags: [], status: 'ok', error: null, warnings: [] };
  const flatPredictor = { predict: async () => ({ record: flatRecord, probs, heads: {} }), attributeNames: [], predictedAttributes: [] } as unknown as Predictor;
  const flat = await predictUpload(flatPredictor, form, null, decision);
  assert.deepEqual(Object.keys(flat.body), [...RESPONSE_KEYS, ...DECISION_FIELDS]);
  assert.deepEqual([flat.body.decision, flat.body.target_precision], ['accept', 0.9]);
});

test('runBatch: a path row re-answered at the request\'s min_path_score carries the decision of that answer', async () => {
  const probs = new Float32Array([0.25, 0.6, 0.15]);
  const decision = { target: 0.9, threshold: 0.55 };
  const predictor = { predict: async () => ({ record: recordAt(probs, 0.5, decision), probs, heads: {} }), flush: () => {}, attributeNames: [], predictedAttributes: [] } as unknown as Predictor;
  const paths = { tree, minScore: 0.5, separator: '>', source: 'bundle' as const };
  const rows = async function* () {
    yield { index: 0, line: 1, id: '1', title: 't', description: '', image: '', extra: {} };
  };
  const records = async (minPathScore: number | undefined) => {
    const b = await runBatch(rows(), { predictor, policy: await imagePolicy(undefined, false), format: 'jsonl', topKTags: 5, paths, minPathScore, decision, window: 4, signal: new AbortController().signal });
    let text = '';
    for await (const chunk of b.output) text += String(chunk);
    await b.done;
    return JSON.parse(text);
  };
  const at = await records(undefined);
  assert.deepEqual(Object.keys(at), [...RECORD_FIELDS, ...PATH_FIELDS, ...DECISION_FIELDS]);
  assert.deepEqual([at.category, at.decision], ['A > y', 'accept']);
  const high = await records(0.7);
  assert.deepEqual([high.category, high.path_complete, high.decision, high.target_precision], ['A', false, 'review', 0.9]);
});

const jpg = () => fs.readFileSync(path.join(demo.images, 'P0001.jpg'));

async function predict(s: RunningServer, fields: Record<string, string>): Promise<{ status: number; body: any }> {
  const f = new FormData();
  f.append('image', new Blob([new Uint8Array(jpg())], { type: 'image/jpeg' }), 'a.jpg');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  const res = await fetch(`${s.url}/predict`, { method: 'POST', body: f });
  return { status: res.status, body: await res.json() };
}

async function batch(s: RunningServer, query = '', accept = 'application/x-ndjson'): Promise<{ status: number; text: string }> {
  const body = '{"id":"a","title":"Acme running shoes mesh"}\n{"id":"b","title":"Oak dining table"}\n{"id":"c","image":"nope.jpg"}\n';
  const res = await fetch(`${s.url}/predict/batch${query}`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', accept } });
  return { status: res.status, text: await res.text() };
}

let server: RunningServer;
const logged: string[] = [];

test('a bundle with targets: /predict adds decision and target_precision; a request may name its own target', async () => {
  server = await startServer(serveOptions({ model: targeted, log: (l) => logged.push(l) }));
  await server.ready;
  assert.ok(logged.includes(`decisions: accept at target precision 0.9 (score ≥ ${t90.toFixed(4)}; the bundle's first stored target), else review; requests may send target_precision`), logged.join('\n'));
  const fields = { title: 'Acme running shoes mesh', description: 'Lightweight trainers for daily runs' };
  const r = await predict(server, fields);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body), [...RESPONSE_KEYS, ...DECISION_FIELDS]);
  assert.equal(r.body.target_precision, 0.9);
  assert.equal(r.body.decision, r.body.score >= t90 ? 'accept' : 'review');
  // Its own target: from the bundle's curve, no retraining; the rest of the answer is the same.
  const t80 = thresholdForTarget(curve, 0.8).threshold!;
  const own = await predict(server, { ...fields, target_precision: '0.8' });
  assert.equal(own.status, 200);
  assert.deepEqual({ ...own.body, decision: null, target_precision: null }, { ...r.body, decision: null, target_precision: null });
  assert.deepEqual([own.body.decision, own.body.target_precision], [own.body.score >= t80 ? 'accept' : 'review', 0.8]);
  const refused = await predict(server, { ...fields, target_precision: '0.995' });
  assert.equal(refused.status, 400);
  assert.match(refused.body.detail, /^target_precision 0\.995: the bundle cannot vouch for it: the 480 held-out rows/);
  const bad = await predict(server, { ...fields, target_precision: '1' });
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail.map((d: { loc: string[]; type: string }) => [d.loc.join('.'), d.type]), [['body.target_precision', 'less_than']]);
});

test('a bundle with targets: /predict/batch records carry run\'s decision fields (JSON lines and CSV); /metrics shows the target', async () => {
  const b = await batch(server);
  assert.equal(b.status, 200);
  const recs = b.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(recs.length, 3);
  for (const rec of recs) {
    assert.deepEqual(Object.keys(rec), [...RECORD_FIELDS, ...DECISION_FIELDS]);
    assert.equal(rec.target_precision, 0.9);
    assert.equal(rec.decision, rec.status === 'ok' && rec.score >= t90 ? 'accept' : 'review');
  }
  assert.equal(recs[2].status, 'error');
  assert.equal(recs[2].decision, 'review');
  const own = await batch(server, '?target_precision=0.8');
  assert.ok(own.text.trim().split('\n').every((l) => JSON.parse(l).target_precision === 0.8), own.text);
  const csv = await batch(server, '', 'text/csv');
  assert.equal(csv.text.split('\n')[0], [...RECORD_FIELDS, ...DECISION_FIELDS].join(','));
  const refused = await batch(server, '?target_precision=0.995');
  assert.equal(refused.status, 400);
  assert.match(JSON.parse(refused.text).detail, /^target_precision 0\.995: the bundle cannot vouch for it/);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^categorize_target_precision 0\.9$/m);
  assert.match(metrics, new RegExp(`^categorize_decision_threshold ${String(t90).replace(/\./g, '\\.')}$`, 'm'));
  assert.match(metrics, /^categorize_errors_total\{route="\/predict\/batch",code="target_unsupported"\} 1$/m);
});

after(async () => {
  await server?.close();
});

test('--target-precision: the server decides at it; one the bundle cannot vouch for stops the server from loading', async () => {
  const s = await startServer(serveOptions({ model: targeted, targetPrecision: 0.8 }));
  try {
    await s.ready;
    const r = await predict(s, { title: 'Oak dining table' });
    assert.equal(r.body.target_precision, 0.8);
    assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^categorize_target_precision 0\.8$/m);
  } finally {
    await s.close();
  }
  const bad = await startServer(serveOptions({ model: targeted, targetPrecision: 0.995 }));
  try {
    await assert.rejects(bad.ready, (e: unknown) => e instanceof UsageError && /--target-precision 0\.995: .* cannot vouch for it/.test((e as Error).message));
  } finally {
    await bad.close();
  }
});

test('without a target the answers keep their keys; a request\'s target works on any calibrated bundle, and is a 400 on one without', async () => {
  const s = await startServer(serveOptions());
  try {
    await s.ready;
    const plain = await predict(s, { title: 'Oak dining table' });
    assert.deepEqual(Object.keys(plain.body), RESPONSE_KEYS);
    const b = await batch(s);
    assert.deepEqual(Object.keys(JSON.parse(b.text.split('\n')[0])), [...RECORD_FIELDS]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /^categorize_(target_precision|decision_threshold) /m);
    // The demo bundle is calibrated, only without stored targets: a request's target is resolved from its curve.
    const own = await predict(s, { title: 'Oak dining table', target_precision: '0.9' });
    assert.deepEqual(Object.keys(own.body), [...RESPONSE_KEYS, ...DECISION_FIELDS]);
    assert.equal(own.body.decision, own.body.score >= t90 ? 'accept' : 'review');
  } finally {
    await s.close();
  }
  const u = await startServer(serveOptions({ model: uncalibrated }));
  try {
    await u.ready;
    assert.deepEqual(Object.keys((await predict(u, { title: 'Oak dining table' })).body), RESPONSE_KEYS);
    const refused = await predict(u, { title: 'Oak dining table', target_precision: '0.9' });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.detail, 'target_precision 0.9 needs a calibrated bundle: the bundle has no calibration (train it again with this categorize)');
    const batchRefused = await batch(u, '?target_precision=0.9');
    assert.equal(batchRefused.status, 400);
  } finally {
    await u.close();
  }
});
