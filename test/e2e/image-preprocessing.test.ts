// End-to-end: `train` records its image preprocessing (fast by default, or --image-preprocessing exact) in the
// bundle; run and eval follow it, and the embedding cache keeps a fast bundle's image vectors apart from an exact one's.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-preprocessing-'));
const imageModel = path.join(demo.bundle, 'encoders', 'image');
const train = (out: string, ...extra: string[]) =>
  runCli(['train', demo.train, '--label-column', 'category', '--image-model', imageModel, '--features', 'image,tfidf', '--C', '1', '--fusion-folds', '0', '-q', '-o', out, ...extra]);
const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

before(async () => {
  await ensureDemo();
});

test('train --image-preprocessing fast (the default) | exact: recorded in the bundle, followed by run and eval; the cache keys on it', async () => {
  const fast = path.join(tmp, 'fast');
  const exact = path.join(tmp, 'exact');
  for (const [dir, extra] of [[fast, []], [exact, ['--image-preprocessing', 'exact']]] as const) {
    const r = await train(dir, ...extra);
    assert.equal(r.code, 0, r.stderr);
  }
  const fm = manifestOf(fast);
  const em = manifestOf(exact);
  // 6 for the fast preprocessing; 7 when --fusion auto also chose early fusion's routed heads.
  assert.equal(fm.formatVersion, fm.fusion.heads.some((h: { route?: string }) => h.route) ? 7 : 6);
  assert.equal(fm.features.find((b: { kind: string }) => b.kind === 'image').preprocess.method, 'fast');
  assert.equal(em.features.find((b: { kind: string }) => b.kind === 'image').preprocess.method, undefined, 'exact is not spelt out: such bundles read as they always have');
  // An exact bundle is readable by tools before 'fast' (< 6) unless early fusion's routes need 7.
  assert.ok(em.formatVersion < 6 || (em.formatVersion === 7 && em.fusion.heads.some((h: { route?: string }) => h.route)));

  const cache = path.join(tmp, 'cache');
  const run = async (bundle: string, name: string) => {
    const summary = path.join(tmp, `${name}.summary.json`);
    const r = await runCli(['run', demo.catalog, '-m', bundle, '-o', path.join(tmp, `${name}.jsonl`), '-q', '--cache', cache, '--json-summary', summary]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readJsonl(path.join(tmp, `${name}.jsonl`)).every((rec) => rec.status === 'ok'));
    return (JSON.parse(fs.readFileSync(summary, 'utf8')) as { cache: { hits: number; misses: number; writes: number } }).cache;
  };
  // `writes`: vectors computed and stored, one per distinct image the cache could not answer.
  const fastCold = await run(fast, 'fast-cold');
  assert.ok(fastCold.writes > 0);
  const exactCold = await run(exact, 'exact-cold');
  assert.equal(exactCold.writes, fastCold.writes, "the fast run's vectors are not served to the exact bundle: every image is embedded again");
  const fastWarm = await run(fast, 'fast-warm');
  assert.equal(fastWarm.writes, 0, 'a fast re-run finds its own vectors');
  assert.equal(fs.readFileSync(path.join(tmp, 'fast-warm.jsonl'), 'utf8'), fs.readFileSync(path.join(tmp, 'fast-cold.jsonl'), 'utf8'));

  const e = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', fast, '-q', '--json', path.join(tmp, 'fast-eval.json')]);
  assert.equal(e.code, 0, e.stderr);
  assert.ok(JSON.parse(fs.readFileSync(path.join(tmp, 'fast-eval.json'), 'utf8')).metrics.accuracy > 0.5);

  const bad = await train(path.join(tmp, 'bad'), '--image-preprocessing', 'bicubic');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--image-preprocessing.*bicubic.*exact, fast|exact.*fast/s);
});
