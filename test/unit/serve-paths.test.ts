// `serve` and category paths, without training: the min_path_score field's validation, a record re-answered at a
// request's threshold, /predict's answer when nothing is sure enough, and a flat bundle left exactly as it was
// (min_path_score unread, the response's keys unchanged). The trained path bundle is test/e2e/serve-paths.test.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ensureDemo, demo } from '../helpers/cli.js';
import { startServer } from '../../src/serve/server.js';
import { serveOptions } from '../helpers/serve-options.js';
import { answerAt, parseScoreField } from '../../src/serve/paths.js';
import { pathResponse, predictUpload } from '../../src/serve/predict.js';
import { Taxonomy } from '../../src/head/taxonomy.js';
import { PATH_FIELDS, type PredictionRecord } from '../../src/io/prediction-writer.js';
import { pathRecord, type Predictor } from '../../src/pipeline/predictor.js';

const RESPONSE_KEYS = ['category', 'score', 'top_categories', 'tags'];
const RECORD_KEYS = ['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings'];

/** Two departments: A (x, y) and B (z). */
const classes = ['A > x', 'A > y', 'B > z'];
const tree = new Taxonomy(classes);
/** The likeliest class is under B, but A is the likelier department: an unsure answer's two candidates differ. */
const split = new Float32Array([0.3, 0.3, 0.4]);

/** A record as the predictor makes it for a path bundle at threshold `minScore`, after a feature warning. */
function recordAt(probs: Float32Array, minScore: number): PredictionRecord {
  const { warning, ...answer } = pathRecord(tree.answer(probs, minScore));
  const top = [...probs].map((prob, k) => ({ category: classes[k], prob })).sort((a, b) => b.prob - a.prob);
  return { id: '1', ...answer, top_categories: top, tags: ['t1', 't2', 't3'], status: 'ok', error: null, warnings: ['text_missing', ...(warning ? [warning] : [])] };
}

test('parseScoreField: absent is undefined; a number in 0..1 passes; anything else is a pydantic-worded problem', () => {
  assert.equal(parseScoreField(undefined, 'min_path_score', 'body'), undefined);
  for (const [raw, p] of [
    ['0', 0],
    ['1', 1],
    [' 0.25 ', 0.25],
    ['.5', 0.5],
    ['5e-1', 0.5],
    ['+1.0', 1],
  ] as const) {
    assert.equal(parseScoreField(raw, 'min_path_score', 'body'), p, raw);
  }
  for (const [raw, type] of [
    ['', 'float_parsing'],
    ['x', 'float_parsing'],
    ['NaN', 'float_parsing'],
    ['inf', 'float_parsing'],
    ['0.5.1', 'float_parsing'],
    ['0x1', 'float_parsing'],
    ['-0.01', 'greater_than_equal'],
    ['1.0001', 'less_than_equal'],
  ]) {
    const problem = parseScoreField(raw, 'min_path_score', 'query');
    assert.equal(typeof problem, 'object', raw);
    assert.deepEqual(problem, { ...(problem as object), type, loc: ['query', 'min_path_score'], input: raw }, raw);
  }
});

test('answerAt: the path answer and its warning as the predictor would give them at that threshold, other warnings kept in place', () => {
  const sure = new Float32Array([0.05, 0.85, 0.1]);
  const at = recordAt(sure, 0.5);
  assert.equal(at.category, 'A > y');
  assert.deepEqual(at.warnings, ['text_missing']);
  for (const t of [0, 0.5, 0.87, 0.9, 0.95, 1]) {
    assert.deepEqual(answerAt(at, sure, tree, t), recordAt(sure, t), String(t));
  }
  // From an answer with a path warning to one with another, and back to none.
  assert.deepEqual(answerAt(recordAt(sure, 0.95), sure, tree, 0.5).warnings, ['text_missing']);
  assert.deepEqual(answerAt(recordAt(sure, 0.87), sure, tree, 0.95).warnings, ['text_missing', 'path_unanswered']);
  assert.deepEqual(answerAt(recordAt(sure, 0.5), sure, tree, 0.87).warnings, ['text_missing', 'path_backoff']);
});

test('pathResponse: the original keys then PATH_FIELDS; nothing sure enough answers the likeliest department, not the likeliest class', () => {
  const unsure = recordAt(split, 0.7);
  assert.equal(unsure.category, null);
  const r = pathResponse(unsure, split, tree, 2);
  assert.deepEqual(Object.keys(r), [...RESPONSE_KEYS, ...PATH_FIELDS]);
  assert.equal(r.category, 'A');
  assert.ok(Math.abs(r.score - 0.6) < 1e-6);
  assert.deepEqual(r.tags, ['t1', 't2']);
  assert.deepEqual([r.path_depth, r.path_complete, r.path_scores], [0, false, []]);
  assert.equal(r.full_path, 'B > z');
  assert.equal(r.top_categories[0].category, 'B > z');
  // Answered: the node and its probability, which is the last level's.
  const answered = pathResponse(recordAt(split, 0.5), split, tree, 5);
  assert.equal(answered.category, 'A');
  assert.equal(answered.score, answered.path_scores[0]);
  assert.deepEqual([answered.path_depth, answered.path_complete], [1, false]);
});

test('predictUpload on a path bundle: an unanswered row is a 200 with the path_unanswered warning; min_path_score re-answers from the same probabilities', async () => {
  let calls = 0;
  const predictor = {
    predict: async () => {
      calls++;
      return { record: recordAt(split, 0.5), probs: split, heads: {} };
    },
    attributeNames: [],
    predictedAttributes: [],
  } as unknown as Predictor;
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const form = { image: png, title: 't', description: '', topKTags: 5 };
  const paths = { tree, minScore: 0.5, separator: '>', source: 'bundle' as const };
  const at = await predictUpload(predictor, form, paths);
  assert.equal(at.body.category, 'A');
  assert.deepEqual(at.warnings, ['text_missing', 'path_backoff']);
  const high = await predictUpload(predictor, { ...form, minPathScore: 0.7 }, paths);
  assert.equal(high.body.category, 'A');
  assert.deepEqual(high.warnings, ['text_missing', 'path_unanswered']);
  assert.equal((high.body as { path_depth: number }).path_depth, 0);
  const low = await predictUpload(predictor, { ...form, minPathScore: 0.3 }, paths);
  assert.equal(low.body.category, 'A > x', 'ties go to the name that sorts first');
  assert.deepEqual(low.warnings, ['text_missing']);
  assert.equal(calls, 3, 'one model call per request');
});

before(async () => {
  await ensureDemo();
});

test('a flat bundle: min_path_score is left unread, the response and records keep their keys; --min-path-score is a startup warning', async () => {
  const logged: string[] = [];
  const opts = serveOptions({ minPathScore: 0.9, log: (line) => logged.push(line) });
  const s = await startServer(opts);
  try {
    await s.ready;
    assert.ok(logged.includes(`warning: --min-path-score 0.9 has no effect: ${demo.bundle} is a flat bundle (no category paths)`), logged.join('\n'));
    const jpg = fs.readFileSync(path.join(demo.images, 'P0001.jpg'));
    const post = async (extra: Record<string, string>) => {
      const f = new FormData();
      f.append('image', new Blob([new Uint8Array(jpg)], { type: 'image/jpeg' }), 'a.jpg');
      f.append('title', 'Acme running shoes mesh');
      for (const [k, v] of Object.entries(extra)) f.append(k, v);
      const res = await fetch(`${s.url}/predict`, { method: 'POST', body: f });
      return { status: res.status, text: await res.text() };
    };
    const plain = await post({});
    assert.equal(plain.status, 200);
    assert.deepEqual(Object.keys(JSON.parse(plain.text)), RESPONSE_KEYS);
    for (const v of ['abc', '0.1', '7']) assert.deepEqual(await post({ min_path_score: v }), plain, v);
    const b = await fetch(`${s.url}/predict/batch?min_path_score=abc`, { method: 'POST', body: '{"title":"Oak dining table"}\n', headers: { 'content-type': 'application/x-ndjson' } });
    assert.equal(b.status, 200);
    assert.deepEqual(Object.keys(JSON.parse(await b.text())), RECORD_KEYS);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /^categorize_bundle_info\{kind="flat"\} 1$/m);
    assert.doesNotMatch(metrics, /^categorize_min_path_score /m);
  } finally {
    await s.close();
  }
});
