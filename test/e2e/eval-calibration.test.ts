// End-to-end: eval's calibration section through the built binary: figures before and after, the curve and the
// stored targets in the table, --json and --report; target decisions the same as run's; the --min-precision-at gate
// and its exit codes, on a calibrated flat bundle, an uncalibrated one and a calibrated path bundle.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { parse } from 'csv-parse/sync';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import { syntheticCatalog } from '../../bench/synthetic-catalog.js';
import type { CalibrationReport } from '../../src/report/calibration-report.js';
import type { BundleCalibration } from '../../src/models/bundle.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-eval-cal-'));
const calibrated = path.join(tmp, 'calibrated');
const plain = path.join(tmp, 'plain');
const paths = path.join(tmp, 'paths');
const pathTrain = path.join(tmp, 'path-train.csv');
const pathHeld = path.join(tmp, 'path-held.csv');

const manifestCalibration = (bundle: string) => JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')).calibration as BundleCalibration | undefined;
const evalJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')).calibration as CalibrationReport;
const labels = (file: string, column: string) => new Map((parse(fs.readFileSync(file), { columns: true, bom: true }) as Record<string, string>[]).map((r) => [r.id!, r[column]!]));

/** The rows run accepts at a target, and how many of them are right: what eval's target row must say. */
async function runDecisions(catalog: string, bundle: string, target: number, right: (rec: Record<string, unknown>) => boolean): Promise<{ accepted: number; correct: number }> {
  const out = path.join(tmp, `run-${path.basename(bundle)}-${target}.jsonl`);
  const r = await runCli(['run', catalog, '-m', bundle, '-o', out, '--target-precision', String(target), '-q']);
  assert.equal(r.code, 0, r.stderr);
  const accepted = readJsonl(out).filter((rec) => rec.decision === 'accept');
  return { accepted: accepted.length, correct: accepted.filter(right).length };
}

before(async () => {
  await ensureDemo();
  const rows = (sample: number) => syntheticCatalog({ classes: 20, rows: 600, seed: 5, ...(sample ? { sample, sampleRows: 300 } : {}) });
  const write = (file: string, rs: ReturnType<typeof syntheticCatalog>) => fs.writeFileSync(file, stringify(rs.map((r) => ({ id: r.id, title: r.title, description: r.description, category_path: r.category_path })), { header: true }));
  write(pathTrain, rows(0));
  write(pathHeld, rows(1));
  // --validation 0: the held-out rows that choose C calibrate, and the validation rerun is not needed here.
  const trained = await Promise.all([
    runCli(['train', demo.train, '--label-column', 'category', '--features', 'tfidf', '--validation', '0', '--target-precision', '0.8,0.9', '-q', '-o', calibrated]),
    runCli(['train', demo.train, '--label-column', 'category', '--features', 'tfidf', '--C', '1', '--validation', '0', '-q', '-o', plain]),
    runCli(['train', pathTrain, '--label-column', 'category_path', '--features', 'tfidf', '--validation', '0', '--target-precision', '0.8,0.9', '-q', '-o', paths]),
  ]);
  for (const r of trained) assert.equal(r.code, 0, r.stderr);
  assert.equal(manifestCalibration(plain), undefined, 'a fixed C without validation: no calibration');
  for (const b of [calibrated, paths]) assert.ok(manifestCalibration(b)!.targets.every((t) => t.threshold !== null), `${b}: both targets stored`);
});

test('a calibrated bundle: figures raw and calibrated, reliability, curve and stored targets in the table, --json and --report', async () => {
  const json = path.join(tmp, 'cal.json');
  const html = path.join(tmp, 'cal.html');
  const r = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', calibrated, '-q', '--json', json, '--report', html]);
  assert.equal(r.code, 0, r.stderr);
  const c = evalJson(json);
  const stored = manifestCalibration(calibrated)!;
  assert.equal(c.calibrated, true);
  assert.equal(c.rows, 320);
  assert.equal(c.scored, 320);
  assert.ok(c.raw && c.raw.rows === 320 && c.figures.rows === 320);
  assert.notEqual(c.raw.logLoss, c.figures.logLoss, 'the temperature moves the probabilities');
  assert.equal(c.figures.bins.length, 15);
  assert.equal(c.figures.bins.reduce((s, b) => s + b.count, 0), 320);
  assert.deepEqual(c.bundle!.after, stored.after);
  assert.equal(c.curve.rows, 320);
  assert.equal(c.curve.accepted[c.curve.accepted.length - 1], 320);
  assert.deepEqual(
    c.targets.map((t) => [t.target, t.stored, t.runDefault, t.threshold]),
    stored.targets.map((t, i) => [t.target, true, i === 0, t.threshold]),
  );

  // Each target's eval row is what run decides at that target, on the same rows.
  const truth = labels(demo.catalog, 'category');
  for (const t of c.targets) {
    const fromRun = await runDecisions(demo.catalog, calibrated, t.target, (rec) => rec.category === truth.get(rec.id as string));
    assert.deepEqual({ accepted: t.eval!.accepted, correct: t.eval!.correct }, fromRun, `target ${t.target}`);
    assert.equal(t.eval!.precision, fromRun.correct / fromRun.accepted);
    assert.equal(t.eval!.coverage, fromRun.accepted / 320);
  }

  const f = (x: number) => x.toFixed(4);
  // The steps as stored, the name match first: the demo's texts name two of its classes (laptops, toys), and always rightly.
  assert.ok(stored.nameMatch && stored.tests?.nameMatch?.kept, 'the name match is kept on the demo');
  const names = `class names in the text \\(β ${stored.nameMatch.beta.toFixed(2)}\\) \\+ `;
  assert.match(r.stdout, new RegExp(`^Calibration: 320 rows; top-1 probability in 15 bins; ${names}temperature \\d\\.\\d{3}`, 'm'));
  assert.match(r.stdout, new RegExp(`\\n  ECE\\s+${f(c.raw.ece)}\\s+${f(c.figures.ece)}\\s+${f(c.bundle!.before.ece)}\\s+${f(c.bundle!.after.ece)}\\n`));
  for (const k of ['brier', 'logLoss'] as const) assert.ok(r.stdout.includes(f(c.raw[k])) && r.stdout.includes(f(c.figures[k])));
  assert.match(r.stdout, /reliability of the calibrated scores/);
  assert.match(r.stdout, /precision against coverage/);
  assert.match(r.stdout, /100\.0%\s+\d\.\d{4}\s+\d\.\d{4}\s+320\/320/);
  const [t8, t9] = c.targets;
  assert.match(r.stdout, new RegExp(`0\\.8 ◀\\s+${f(t8!.threshold!)}.*${t8!.eval!.accepted}/320.*${f(t8!.eval!.precision!)}`));
  assert.match(r.stdout, new RegExp(`0\\.9\\s+${f(t9!.threshold!)}.*${t9!.eval!.accepted}/320.*${f(t9!.eval!.precision!)}`));

  const page = fs.readFileSync(html, 'utf8');
  assert.match(page, /<h2>Calibration and decisions<\/h2>/);
  assert.equal(page.match(/<svg class="rel"/g)!.length, 2);
  assert.equal(page.match(/<svg class="pc"/g)!.length, 1);
  assert.ok(page.includes(`<td class="num">${f(c.raw.ece)}</td><td class="num">${f(c.figures.ece)}</td>`));
  for (const t of c.targets) {
    assert.ok(page.includes(`>target ${t.target}</text>`));
    assert.ok(page.includes(`<title>target ${t.target}: score ≥ ${f(t.threshold!)} accepts ${t.eval!.accepted} of 320 rows`));
  }
  assert.doesNotMatch(page, /<script|src="http/);
});

test('--min-precision-at: exit 0 when met, 3 when not (with a one-line reason), 2 for a target the bundle cannot vouch for', async () => {
  const json = path.join(tmp, 'gate.json');
  const base = ['eval', demo.catalog, '--label-column', 'category', '-m', calibrated, '-q'];
  // 0.95 is not stored: its threshold comes from the held-out curve, as run --target-precision 0.95 finds it.
  const pass = await runCli([...base, '--json', json, '--min-precision-at', '0.9:0.5', '--min-precision-at', '0.95:0.5']);
  assert.equal(pass.code, 0, pass.stderr);
  const c = evalJson(json);
  assert.deepEqual(
    c.targets.map((t) => [t.target, t.stored, t.gate]),
    [
      [0.8, true, null],
      [0.9, true, { minPrecision: 0.5, passed: true }],
      [0.95, false, { minPrecision: 0.5, passed: true }],
    ],
  );
  const truth = labels(demo.catalog, 'category');
  const t95 = c.targets[2]!;
  assert.deepEqual({ accepted: t95.eval!.accepted, correct: t95.eval!.correct }, await runDecisions(demo.catalog, calibrated, 0.95, (rec) => rec.category === truth.get(rec.id as string)));

  const p9 = c.targets[1]!.eval!.precision!;
  assert.ok(p9 < 1, 'the demo rows are not all right at 0.9');
  const exact = await runCli([...base, '--min-precision-at', `0.9:${p9}`]);
  assert.equal(exact.code, 0, 'a precision equal to the minimum passes');
  const fail = await runCli([...base, '--min-precision-at', '0.9:1,0.8:0.5']);
  assert.equal(fail.code, 3, fail.stderr);
  const lines = fail.stderr.trim().split('\n');
  assert.deepEqual(lines, [`categorize: precision ${p9.toFixed(4)} of the ${c.targets[1]!.eval!.accepted} eval rows accepted at target 0.9 (score ≥ ${c.targets[1]!.threshold!.toFixed(4)}) is below --min-precision-at 0.9:1`]);
  assert.match(fail.stdout, /FAIL \(≥ 1\)/);
  assert.match(fail.stdout, /pass \(≥ 0\.5\)/);

  const unservable = await runCli([...base, '--min-precision-at', '0.999:0.99']);
  assert.equal(unservable.code, 2);
  assert.match(unservable.stderr, /^categorize: error: --min-precision-at 0\.999:0\.99: .*calibrated cannot vouch for it: the 480 held-out rows vouch for precision/);
  assert.equal(unservable.stderr.trim().split('\n').length, 1);
  assert.equal(unservable.stdout, '', 'refused before any row');

  const malformed = await runCli([...base, '--min-precision-at', '0.9']);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /expected target:precision pairs/);
});

test('an uncalibrated bundle: ECE, Brier, log-loss and the curve of its raw scores, no targets; --min-precision-at is a usage error', async () => {
  const json = path.join(tmp, 'plain.json');
  const html = path.join(tmp, 'plain.html');
  const r = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', plain, '-q', '--json', json, '--report', html]);
  assert.equal(r.code, 0, r.stderr);
  const c = evalJson(json);
  assert.equal(c.calibrated, false);
  assert.equal(c.raw, null);
  assert.equal(c.bundle, null);
  assert.deepEqual(c.targets, []);
  assert.ok(c.figures.ece > 0 && c.figures.brier > 0 && c.figures.logLoss > 0);
  assert.equal(c.curve.accepted[c.curve.accepted.length - 1], 320);
  assert.match(r.stdout, /this bundle is not calibrated: figures of its raw scores, no target thresholds/);
  assert.match(r.stdout, new RegExp(`ECE\\s+${c.figures.ece.toFixed(4)}\\n`));
  assert.match(r.stdout, /reliability of the raw scores/);
  const page = fs.readFileSync(html, 'utf8');
  assert.equal(page.match(/<svg class="rel"/g)!.length, 1);
  assert.equal(page.match(/<svg class="pc"/g)!.length, 1);
  assert.match(page, /This bundle is not calibrated/);

  const gated = await runCli(['eval', demo.catalog, '--label-column', 'category', '-m', plain, '-q', '--min-precision-at', '0.9:0.9']);
  assert.equal(gated.code, 2);
  assert.match(gated.stderr, /^categorize: error: --min-precision-at [0-9.:]+ needs a calibrated bundle: .*plain has no calibration/);
  assert.equal(gated.stderr.trim().split('\n').length, 1);
});

test('a path bundle: right when the full path is the label; target decisions as run decides them on the full path', async () => {
  const json = path.join(tmp, 'paths.json');
  const r = await runCli(['eval', pathHeld, '--label-column', 'category_path', '-m', paths, '-q', '--json', json, '--report', path.join(tmp, 'paths.html'), '--min-precision-at', '0.9:0.5']);
  assert.equal(r.code, 0, r.stderr);
  const c = evalJson(json);
  assert.equal(c.paths, true);
  assert.equal(c.calibrated, true);
  assert.equal(c.rows, 300);
  const truth = labels(pathHeld, 'category_path');
  // The curve's last point: every row, right where the most probable full path is the label.
  const all = path.join(tmp, 'paths-all.jsonl');
  const run = await runCli(['run', pathHeld, '-m', paths, '-o', all, '-q']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(c.curve.correct[c.curve.correct.length - 1], readJsonl(all).filter((rec) => rec.full_path === truth.get(rec.id as string)).length);
  for (const t of c.targets) {
    const decided = await runDecisions(pathHeld, paths, t.target, (rec) => rec.full_path === truth.get(rec.id as string));
    assert.deepEqual({ accepted: t.eval!.accepted, correct: t.eval!.correct }, decided, `target ${t.target}`);
  }
  assert.deepEqual(c.targets.find((t) => t.target === 0.9)!.gate, { minPrecision: 0.5, passed: true });
  assert.match(r.stdout, /reaches full depth at --min-path-score/);
});
