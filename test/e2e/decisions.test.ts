// End-to-end: a calibrated bundle with target precisions, through train (thresholds stored, an unsupported target
// said so), run (decision fields in JSONL and CSV, the summary's counts, --target-precision from the stored curve,
// --review-output, rebuilt on --resume), and bundles without calibration (no decision field; the flags refused).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { runCli, readJsonl } from '../helpers/cli.js';
import { syntheticCatalog, syntheticCatalogCsv } from '../../bench/synthetic-catalog.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-decisions-'));
const train = path.join(tmp, 'train.csv');
const held = path.join(tmp, 'held.csv');
const bundle = path.join(tmp, 'bundle');
const plain = path.join(tmp, 'plain');

before(async () => {
  // 30 classes, 1,500 rows: 5-fold selection holds every row out once, enough to vouch for 0.9 but not for 0.999.
  // No validation share: it would only add its own figures (the 'validated' bundle below is calibrated on one).
  fs.writeFileSync(train, syntheticCatalogCsv(syntheticCatalog({ classes: 30, rows: 1500, seed: 11 })));
  fs.writeFileSync(held, syntheticCatalogCsv(syntheticCatalog({ classes: 30, rows: 1500, seed: 11, sample: 1, sampleRows: 600 })));
  const r = await runCli(['train', train, '--label-column', 'category', '--features', 'tfidf', '--target-precision', '0.9,0.999', '--validation', '0', '-o', bundle, '--json-summary', path.join(tmp, 'train.json')]);
  assert.equal(r.code, 0, r.stderr);
  const p = await runCli(['train', train, '--label-column', 'category', '--features', 'tfidf', '--C', '10', '--validation', '0', '-q', '-o', plain]);
  assert.equal(p.code, 0, p.stderr);
});

const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

test('train: a temperature and top-label scaling fitted on the held-out rows, their figures, and each target threshold or why not', async () => {
  const m = manifest(bundle);
  assert.equal(m.formatVersion, 8, 'a shifted decision (below) needs format 8');
  const c = m.calibration;
  assert.equal(c.method, 'temperature');
  assert.equal(c.source, 'selection');
  assert.equal(c.rows, 1500, 'five folds: every row held out once');
  assert.ok(c.temperature > 0.2 && c.temperature < 5, String(c.temperature));
  assert.ok(c.after.logLoss <= c.before.logLoss + 1e-12, 'the temperature minimises held-out log-loss');
  // Each step with its likelihood-ratio test; these held-out rows show both gains beyond chance, so both are applied.
  assert.deepEqual([c.tests.temperature.kept, c.tests.topLabel.kept], [true, true], JSON.stringify(c.tests));
  assert.equal(c.temperature, c.tests.temperature.fitted);
  assert.deepEqual(c.topLabel, c.tests.topLabel.fitted);
  assert.equal(c.tests.temperature.critical, 3.841458820694124);
  assert.ok(c.tests.temperature.statistic >= c.tests.temperature.critical && c.tests.topLabel.statistic >= c.tests.topLabel.critical);
  assert.ok(c.after.ece <= c.before.ece, `ECE ${c.before.ece} → ${c.after.ece}`);
  assert.equal(c.curve.rows, 1500);
  assert.equal(c.curve.accepted[c.curve.accepted.length - 1], 1500);
  assert.equal(c.targets.length, 2);
  const [t90, t999] = c.targets;
  assert.equal(t90.target, 0.9);
  assert.ok(t90.threshold > 0 && t90.lower >= 0.9 && t90.precision >= t90.lower, JSON.stringify(t90));
  assert.equal(t999.threshold, null);
  assert.match(t999.reason, /1500 held-out rows vouch for precision 0\.\d+ at most/);
  const s = JSON.parse(fs.readFileSync(path.join(tmp, 'train.json'), 'utf8'));
  assert.equal(s.calibration.temperature, c.temperature);
  // Without held-out rows (a fixed C, one head, no validation share): not calibrated, and the bundle stays format 3.
  const pm = manifest(plain);
  assert.equal(pm.calibration, undefined);
  assert.equal(pm.formatVersion, 3);
  // A fixed C and one head with the default validation share: calibrated on the validation model's predictions.
  const v = path.join(tmp, 'validated');
  const r = await runCli(['train', train, '--label-column', 'category', '--features', 'tfidf', '--C', '10', '-q', '-o', v]);
  assert.equal(r.code, 0, r.stderr);
  const vc = manifest(v).calibration;
  assert.equal(vc.source, 'validation');
  assert.equal(vc.rows, 151, 'the stratified 10% share');
  assert.deepEqual(vc.targets, []);
});

test('run: decision and target_precision per record at the bundle first target; the summary counts both; accepted rows reach the threshold', async () => {
  const out = path.join(tmp, 'run.jsonl');
  const summary = path.join(tmp, 'run.json');
  const r = await runCli(['run', held, '-m', bundle, '-o', out, '--json-summary', summary]);
  assert.equal(r.code, 0, r.stderr);
  const threshold = manifest(bundle).calibration.targets[0].threshold;
  const recs = readJsonl(out);
  assert.equal(recs.length, 600);
  for (const rec of recs) {
    assert.equal(rec.target_precision, 0.9);
    assert.equal(rec.decision, (rec.score as number) >= threshold ? 'accept' : 'review');
  }
  const s = JSON.parse(fs.readFileSync(summary, 'utf8'));
  const accepted = recs.filter((x) => x.decision === 'accept').length;
  assert.deepEqual(s.decision, { target: 0.9, threshold, accepted, review: 600 - accepted, reviewOutput: null });
  assert.match(r.stderr, new RegExp(`decision at target precision 0\\.9 \\(score ≥ ${threshold.toFixed(4).replace('.', '\\.')}\\): ${accepted} accept · ${600 - accepted} review`));
  // On rows drawn afresh, the accepted rows are about as right as promised.
  const truth = new Map((parse(fs.readFileSync(held, 'utf8'), { columns: true }) as { id: string; category: string }[]).map((x) => [x.id, x.category]));
  const right = recs.filter((x) => x.decision === 'accept' && x.category === truth.get(x.id as string)).length;
  assert.ok(right / accepted >= 0.88, `precision of accepted rows ${right / accepted}`);
});

test('a prior shift: the answer moves toward rarer classes where held-out macro-F1 gains; probabilities and top categories stay the model\'s', async () => {
  // The synthetic classes are Zipf-sized: the shift is chosen on the same held-out rows as the temperature.
  const c = manifest(bundle).calibration;
  const s = JSON.parse(fs.readFileSync(path.join(tmp, 'train.json'), 'utf8'));
  const trials: { alpha: number; macroF1: number }[] = s.fusion.prior.trials;
  assert.deepEqual(trials.map((t) => t.alpha), [0, 0.25, 0.5, 0.75, 1]);
  assert.equal(c.prior.alpha, s.fusion.prior.alpha);
  assert.ok(c.prior.alpha > 0 && trials.find((t) => t.alpha === c.prior.alpha)!.macroF1 > trials[0]!.macroF1, JSON.stringify(trials));
  assert.equal(c.prior.bias.length, manifest(bundle).classes.length);
  // The same procedure without it: the same heads and calibration, so the same probabilities on every row.
  const unshifted = path.join(tmp, 'unshifted');
  const u = await runCli(['train', train, '--label-column', 'category', '--features', 'tfidf', '--target-precision', '0.9,0.999', '--validation', '0', '--no-prior-shift', '-q', '-o', unshifted]);
  assert.equal(u.code, 0, u.stderr);
  const um = manifest(unshifted);
  assert.equal(um.calibration.prior, undefined);
  assert.equal(um.formatVersion, 5);
  assert.equal(um.calibration.temperature, c.temperature);
  const runs = await Promise.all(
    [bundle, unshifted].map(async (b, k) => {
      const out = path.join(tmp, `shift-${k}.jsonl`);
      const r = await runCli(['run', held, '-m', b, '-o', out, '-q']);
      assert.equal(r.code, 0, r.stderr);
      return readJsonl(out) as { id: string; category: string; score: number; decision: string; top_categories: { category: string; prob: number }[] }[];
    }),
  );
  const [shifted, plainRecs] = runs as [typeof runs[0], typeof runs[0]];
  const truth = new Map((parse(fs.readFileSync(held, 'utf8'), { columns: true }) as { id: string; category: string }[]).map((x) => [x.id, x.category]));
  let moved = 0;
  shifted.forEach((rec, i) => {
    const p = plainRecs[i]!;
    assert.deepEqual(rec.top_categories, p.top_categories, 'probabilities are not shifted');
    assert.equal(p.category, p.top_categories[0]!.category);
    const listed = rec.top_categories.find((t) => t.category === rec.category);
    if (listed) assert.equal(rec.score, listed.prob, 'the score is the answer\'s own probability');
    if (rec.category !== p.category) {
      moved++;
      assert.ok(rec.score < p.score, 'a moved answer is less probable than the top class');
    } else assert.equal(rec.score, p.score);
  });
  assert.ok(moved > 0, 'some rows are answered otherwise');
  // What it is for: the moved answers are right more often than the top class they replace.
  const gained = shifted.filter((rec, i) => rec.category !== plainRecs[i]!.category && rec.category === truth.get(rec.id)).length;
  const lost = plainRecs.filter((rec, i) => rec.category !== shifted[i]!.category && rec.category === truth.get(rec.id)).length;
  assert.ok(gained > lost, `moved ${moved}: ${gained} right after, ${lost} right before`);
  // eval judges the answers run gives, and says how they are chosen (table and report).
  const json = path.join(tmp, 'shift-eval.json');
  const html = path.join(tmp, 'shift-eval.html');
  const e = await runCli(['eval', held, '-m', bundle, '--label-column', 'category', '--json', json, '--report', html]);
  assert.equal(e.code, 0, e.stderr);
  const right = shifted.filter((rec) => rec.category === truth.get(rec.id)).length;
  assert.equal(JSON.parse(fs.readFileSync(json, 'utf8')).metrics.correct, right);
  assert.match(e.stdout, new RegExp(`the answer is the top class of the probabilities ÷ prior\\^${c.prior.alpha}`));
  assert.match(fs.readFileSync(html, 'utf8'), new RegExp(`dividing the probabilities by the class prior to the power ${c.prior.alpha}`));
  // A bias that does not match the classes is refused in one line, before any row.
  const broken = path.join(tmp, 'broken-prior');
  fs.cpSync(bundle, broken, { recursive: true });
  const bm = manifest(broken);
  fs.writeFileSync(path.join(broken, 'manifest.json'), JSON.stringify({ ...bm, calibration: { ...bm.calibration, prior: { alpha: 0.5, bias: [0] } } }));
  const bad = await runCli(['run', held, '-m', broken, '-o', path.join(tmp, 'broken.jsonl')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /calibration\.prior must have a finite alpha and 30 finite biases, one per class/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});

test('run --target-precision: any target from the stored curve; one the bundle cannot vouch for is a usage error', async () => {
  const out = path.join(tmp, 'run80.jsonl');
  const r = await runCli(['run', held, '-m', bundle, '-o', out, '--target-precision', '0.8', '-q']);
  assert.equal(r.code, 0, r.stderr);
  const recs = readJsonl(out);
  assert.ok(recs.every((x) => x.target_precision === 0.8));
  const at90 = readJsonl(path.join(tmp, 'run.jsonl')).filter((x) => x.decision === 'accept').length;
  assert.ok(recs.filter((x) => x.decision === 'accept').length >= at90, 'a lower target accepts at least as many rows');
  const bad = await runCli(['run', held, '-m', bundle, '-o', path.join(tmp, 'bad.jsonl'), '--target-precision', '0.999']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--target-precision 0\.999: .* cannot vouch for it: the 1500 held-out rows/);
  assert.ok(!fs.existsSync(path.join(tmp, 'bad.jsonl')), 'refused before any output');
  const range = await runCli(['run', held, '-m', bundle, '--target-precision', '1']);
  assert.equal(range.code, 2);
});

test('run --review-output: the review rows apart, in CSV as in JSONL; rebuilt from the output on --resume', async () => {
  const out = path.join(tmp, 'rev.csv');
  const review = path.join(tmp, 'review.csv');
  const r = await runCli(['run', held, '-m', bundle, '-o', out, '--review-output', review, '-q']);
  assert.equal(r.code, 0, r.stderr);
  const rows = parse(fs.readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
  assert.deepEqual(Object.keys(rows[0]!).slice(-2), ['decision', 'target_precision']);
  const reviewRows = parse(fs.readFileSync(review, 'utf8'), { columns: true }) as Record<string, string>[];
  assert.deepEqual(
    reviewRows.map((x) => x.id),
    rows.filter((x) => x.decision === 'review').map((x) => x.id),
  );
  assert.ok(reviewRows.length > 0 && reviewRows.length < rows.length);
  const full = fs.readFileSync(review, 'utf8');
  // An existing review file is not overwritten silently.
  const again = await runCli(['run', held, '-m', bundle, '-o', path.join(tmp, 'other.csv'), '--review-output', review, '-q']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /review output .* already exists/);
  // A run killed half-way: the output cut to its first 300 records and a torn one, the review file to nothing.
  const lines = fs.readFileSync(out, 'utf8').split('\n');
  fs.writeFileSync(out, lines.slice(0, 301).join('\n') + '\n' + lines[301]!.slice(0, 10));
  fs.writeFileSync(review, '');
  const resumed = await runCli(['run', held, '-m', bundle, '-o', out, '--review-output', review, '--resume', '-q']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(fs.readFileSync(review, 'utf8'), full, 'the review file is the same as an uninterrupted run writes');
  // JSONL too, and the output itself is refused as the review file.
  const jout = path.join(tmp, 'rev.jsonl');
  const jrev = path.join(tmp, 'review.jsonl');
  assert.equal((await runCli(['run', held, '-m', bundle, '-o', jout, '--review-output', jrev, '-q'])).code, 0);
  assert.deepEqual(
    readJsonl(jrev).map((x) => x.id),
    readJsonl(jout).filter((x) => x.decision === 'review').map((x) => x.id),
  );
  const same = await runCli(['run', held, '-m', bundle, '-o', jout, '--force', '--review-output', jout, '-q']);
  assert.equal(same.code, 2);
  assert.match(same.stderr, /is the output itself/);
});

test('check: disagreement flags the stored labels the model finds improbable, at the precision asked for, vouched for by the held-out label tail', async () => {
  // The held-out sample with one label in twenty moved to another class.
  const rows = parse(fs.readFileSync(held, 'utf8'), { columns: true }) as Record<string, string>[];
  const classes = [...new Set(rows.map((x) => x.category))].sort();
  const flipped = new Set<string>();
  rows.forEach((x, i) => {
    if (i % 20 !== 7) return;
    x.category = classes[(classes.indexOf(x.category) + 7) % classes.length]!;
    flipped.add(x.id);
  });
  const noisy = path.join(tmp, 'noisy.csv');
  fs.writeFileSync(noisy, stringify(rows, { header: true, columns: Object.keys(rows[0]!) }));
  const tail = manifest(bundle).calibration.labelTail as { rows: number; values: number[] };
  assert.equal(tail.rows, 1500);
  assert.ok(tail.values.length > 0 && tail.values.every((v, i) => v >= 0 && v <= 0.5 && (i === 0 || v >= tail.values[i - 1]!)));

  // The oracle: run's probability of each stored label.
  const all = path.join(tmp, 'noisy.jsonl');
  assert.equal((await runCli(['run', noisy, '-m', bundle, '-o', all, '--top-n', '30', '-q'])).code, 0);
  const recs = readJsonl(all) as { id: string; category: string; top_categories: { category: string; prob: number }[] }[];
  const own = recs.map((x, i) => x.top_categories.find((t) => t.category === rows[i]!.category)!.prob);
  type Flags = { precision: number; cutoff: number | null; flagged: number; lower: number; heldOutRows: number; reason?: string };
  const check = async (...extra: string[]) => {
    const json = path.join(tmp, `check${extra.join('')}.json`);
    const r = await runCli(['check', noisy, '-m', bundle, '--label-column', 'category', '--json', json, '--max-disagreement-rate', '1', '--max-low-confidence-rate', '1', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(fs.readFileSync(json, 'utf8'));
    const d = j.checks.find((c: { name: string }) => c.name === 'disagreement');
    return { r, j, d, ids: (d.findings as { id: string }[]).map((f) => f.id) };
  };

  const { r, j, d, ids } = await check();
  const flags = d.cutoff.flags as Flags;
  assert.equal(d.cutoff.source, 'flag-precision');
  assert.equal(j.settings.flagPrecision, 0.9);
  assert.equal(j.settings.minConfidence, null);
  assert.deepEqual([flags.precision, flags.heldOutRows], [0.9, 1500]);
  assert.ok(flags.cutoff !== null && flags.cutoff <= 0.5 && flags.lower >= 0.9, JSON.stringify(flags));
  // Exactly the rows whose stored label is at most that probable and not the answer. run writes probabilities rounded
  // to 6 decimals (prediction-writer.ts): a row within that rounding of the cutoff may fall on either side of it.
  const rounding = 5e-7;
  const misread = (i: number) => recs[i]!.category !== rows[i]!.category;
  const expected = recs.flatMap((x, i) => (own[i]! <= flags.cutoff! - rounding && misread(i) ? [x.id] : []));
  const either = new Set(recs.flatMap((x, i) => (Math.abs(own[i]! - flags.cutoff!) <= rounding && misread(i) ? [x.id] : [])));
  assert.deepEqual(ids.filter((id) => !either.has(id)), expected);
  assert.equal(flags.flagged, ids.length);
  const right = ids.filter((id) => flipped.has(id)).length;
  assert.ok(right / ids.length >= 0.9, `${right} of ${ids.length} flags are moved labels`);
  assert.ok(right >= 10, `${right} of ${flipped.size} moved labels found`);
  assert.match(r.stdout, new RegExp(`disagreement +${ids.length} of 600 labelled rows \\(.*\\) have a stored category the model finds at most \\S+ probable: at least 0\\.9\\d\\d of them mislabelled \\(95% bound from 1,500 held-out rows; flag precision 0\\.9\\)`));

  // Asking for more flags no more rows; for less, no fewer. --min-confidence judges by the answer's score instead.
  const strict = await check('--flag-precision', '0.99');
  assert.ok(strict.ids.every((id) => ids.includes(id)));
  if (strict.d.cutoff.flags.cutoff === null) assert.match(strict.d.summary, /flagged: no cutoff of the stored category's probability vouches for --flag-precision 0\.99 \(at best 0\.\d+ of the flags would be mislabelled; 95% bound from 1,500 held-out rows\)/);
  const lax = await check('--flag-precision', '0.5');
  assert.ok(ids.every((id) => lax.ids.includes(id)));
  const byScore = await check('--min-confidence', '0.8');
  assert.equal(byScore.d.cutoff.source, 'option');
  assert.equal(byScore.j.settings.flagPrecision, undefined);
});

test('a bundle without calibration: no decision field, nothing changes; --target-precision and --review-output refused', async () => {
  const out = path.join(tmp, 'plain.jsonl');
  const r = await runCli(['run', held, '-m', plain, '-o', out, '-q']);
  assert.equal(r.code, 0, r.stderr);
  const rec = readJsonl(out)[0]!;
  assert.deepEqual(Object.keys(rec), ['id', 'category', 'score', 'top_categories', 'tags', 'status', 'error', 'warnings']);
  const t = await runCli(['run', held, '-m', plain, '-o', path.join(tmp, 'p2.jsonl'), '--target-precision', '0.9']);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /needs a calibrated bundle: .* has no calibration/);
  const v = await runCli(['run', held, '-m', plain, '-o', path.join(tmp, 'p3.jsonl'), '--review-output', path.join(tmp, 'p3-review.jsonl')]);
  assert.equal(v.code, 2);
  assert.match(v.stderr, /--review-output needs a target precision/);
});

test('a path bundle: both head sets calibrated on the same held-out rows; decisions on the full path, answered to full depth', async () => {
  // 90 classes under two departments: a top-level head set beside the main one.
  const dir = path.join(tmp, 'paths');
  const pathsTrain = path.join(tmp, 'paths-train.csv');
  const pathsHeld = path.join(tmp, 'paths-held.csv');
  fs.writeFileSync(pathsTrain, syntheticCatalogCsv(syntheticCatalog({ classes: 90, rows: 1000, seed: 11 })));
  fs.writeFileSync(pathsHeld, syntheticCatalogCsv(syntheticCatalog({ classes: 90, rows: 1000, seed: 11, sample: 1, sampleRows: 400 })));
  const r = await runCli(['train', pathsTrain, '--label-column', 'category_path', '--features', 'tfidf', '--target-precision', '0.9', '--validation', '0', '-q', '-o', dir]);
  assert.equal(r.code, 0, r.stderr);
  const m = manifest(dir);
  assert.equal(m.paths.top.classes.length, 2);
  const c = m.calibration;
  assert.equal(c.source, 'selection');
  assert.equal(c.rows, 1000, 'the top-level model was split on the full paths: its held-out rows are the main model’s');
  assert.ok(c.temperature > 0 && c.topTemperature > 0, `${c.temperature} ${c.topTemperature}`);
  const threshold = c.targets[0].threshold;
  assert.ok(threshold > 0);
  const out = path.join(tmp, 'paths.jsonl');
  const run = await runCli(['run', pathsHeld, '-m', dir, '-o', out, '-q']);
  assert.equal(run.code, 0, run.stderr);
  const recs = readJsonl(out);
  for (const rec of recs) {
    const accept = rec.path_complete === true && rec.category === rec.full_path && (rec.full_path_score as number) >= threshold;
    assert.equal(rec.decision, accept ? 'accept' : 'review', JSON.stringify(rec));
  }
  assert.ok(recs.some((x) => x.decision === 'accept') && recs.some((x) => x.decision === 'review'));
});
