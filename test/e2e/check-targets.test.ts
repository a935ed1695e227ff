// End-to-end: `categorize check` on calibrated bundles with target precisions. The confidence checks follow run's own
// accept/review decision (run's records are the oracle): low confidence is a row run sends for review, and on a
// bundle without a held-out label tail (older bundles, path bundles) a disagreement is a row run accepts against its
// label; the options override the target per check; the reports say which cutoff
// each check used. A flat bundle (the demo's, with targets added from its own held-out curve) and a path bundle
// trained with --target-precision.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import { syntheticCatalog, syntheticCatalogCsv } from '../../bench/synthetic-catalog.js';
import { thresholdForTarget, type PrecisionCurve, type TargetThreshold } from '../../src/head/calibration.js';
import type { CheckOutcome, ConfidenceCutoff } from '../../src/commands/check.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-check-targets-'));
const imageRoot = path.dirname(demo.catalog);
const flat = path.join(tmp, 'flat');
const pathBundle = path.join(tmp, 'paths');
const pathCatalog = path.join(tmp, 'paths.csv');

interface CheckJson {
  passed: boolean;
  settings: { minConfidence: number | null; lowConfidence: number | null; targetPrecision: { target: number; threshold: number; from: string } | null };
  checks: (CheckOutcome & { cutoff?: ConfidenceCutoff })[];
}
const check = (j: CheckJson, name: string) => j.checks.find((c) => c.name === name)!;
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as CheckJson;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Rec {
  id: string;
  category: string | null;
  score: number | null;
  status: string;
  decision: 'accept' | 'review';
  path_complete?: boolean;
  path_scores?: number[];
}

/** The demo bundle's targets as train would store them for --target-precision 0.995,0.9 (0.995: none, 0.9: one). */
let flatTargets: TargetThreshold[];
let flatCurve: PrecisionCurve;
/** run's records on the demo catalog with the flat bundle, its labels, and each row's CSV line. */
let flatRecs: Rec[];
let flatLabels: string[];
let pathRecs: Rec[];
let pathLabels: string[];
let pathThreshold: number;
/** Rows whose label was changed in the path catalog: accepted by run (must be findings) or for review (must not). */
const acceptedChanged: { line: number; level: number }[] = [];
const reviewChanged: number[] = [];

before(async () => {
  await ensureDemo();
  fs.cpSync(demo.bundle, flat, { recursive: true });
  const manifestFile = path.join(flat, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  flatCurve = m.calibration.curve;
  flatTargets = [thresholdForTarget(flatCurve, 0.995), thresholdForTarget(flatCurve, 0.9)];
  assert.equal(flatTargets[0].threshold, null, 'the demo held-out rows cannot vouch for 0.995: the first target with a threshold is 0.9');
  assert.ok(flatTargets[1].threshold !== null);
  m.calibration.targets = flatTargets;
  // As a bundle from before the held-out label tail: disagreement then follows the target too (decisions.test.ts
  // covers flag precision).
  delete m.calibration.labelTail;
  fs.writeFileSync(manifestFile, JSON.stringify(m, null, 2));
  const run = await runCli(['run', demo.catalog, '-m', flat, '--image-root', imageRoot, '-o', path.join(tmp, 'flat.jsonl'), '-q']);
  assert.equal(run.code, 0, run.stderr);
  flatRecs = readJsonl(path.join(tmp, 'flat.jsonl')) as unknown as Rec[];
  const text = fs.readFileSync(demo.catalog, 'utf8');
  const rows = parse(text, { columns: true }) as { category: string }[];
  assert.equal(text.trimEnd().split('\n').length, rows.length + 1, 'no line breaks inside fields: row i is on line i + 2');
  flatLabels = rows.map((r) => r.category);
  assert.ok(flatRecs.every((r) => r.decision === 'accept' || r.decision === 'review'));

  // A path bundle with a target, and a held-out sample of the same classes (so some rows are for review).
  const train = path.join(tmp, 'paths-train.csv');
  fs.writeFileSync(train, syntheticCatalogCsv(syntheticCatalog({ classes: 80, rows: 800, seed: 2 })));
  const t = await runCli(['train', train, '--label-column', 'category_path', '--features', 'tfidf', '--char-ngram-range', 'none', '--target-precision', '0.9', '--validation', '0', '-o', pathBundle, '-q']);
  assert.equal(t.code, 0, t.stderr);
  const pm = JSON.parse(fs.readFileSync(path.join(pathBundle, 'manifest.json'), 'utf8'));
  pathThreshold = pm.calibration.targets[0].threshold;
  assert.ok(pathThreshold > 0);
  const classes = pm.classes as string[];
  const held = syntheticCatalog({ classes: 80, rows: 800, seed: 2, sample: 1, sampleRows: 400 });
  fs.writeFileSync(pathCatalog, syntheticCatalogCsv(held));
  const r = await runCli(['run', pathCatalog, '-m', pathBundle, '-o', path.join(tmp, 'paths.jsonl'), '-q']);
  assert.equal(r.code, 0, r.stderr);
  pathRecs = readJsonl(path.join(tmp, 'paths.jsonl')) as unknown as Rec[];
  const decided = (i: number, d: string) => pathRecs[i].decision === d && pathRecs[i].category === held[i].category_path && pathRecs[i].path_complete;
  const top = (p: string) => p.split(' > ')[0];
  const family = (p: string) => p.split(' > ').slice(0, 2).join(' > ');
  const pick = (d: string, n: number, used: Set<number>) => held.map((_, i) => i).filter((i) => !used.has(i) && decided(i, d)).slice(0, n);
  const used = new Set<number>();
  // Right answers relabelled: to another department (level 1) or a sibling leaf (level 3).
  for (const [k, i] of pick('accept', 4, used).entries()) {
    used.add(i);
    const answered = held[i].category_path;
    const stored = k < 2 ? classes.find((c) => top(c) !== top(answered)) : classes.find((c) => c !== answered && family(c) === family(answered));
    if (!stored) continue;
    held[i].category_path = stored;
    acceptedChanged.push({ line: i + 2, level: k < 2 ? 1 : 3 });
  }
  for (const i of pick('review', 3, used)) {
    used.add(i);
    held[i].category_path = classes.find((c) => top(c) !== top(held[i].category_path))!;
    reviewChanged.push(i + 2);
  }
  assert.ok(acceptedChanged.length >= 3 && reviewChanged.length >= 2, `${acceptedChanged.length} accepted, ${reviewChanged.length} review rows changed`);
  fs.writeFileSync(pathCatalog, syntheticCatalogCsv(held));
  pathLabels = held.map((x) => x.category_path);
});

test('a flat bundle with targets: disagreement is what run accepts against its label, low_confidence what it sends for review; every report says so', async () => {
  const json = path.join(tmp, 'flat.json');
  const junit = path.join(tmp, 'flat.xml');
  const r = await runCli([
    'check', demo.catalog, '-m', flat, '--label-column', 'category', '--image-root', imageRoot, '--json', json, '--junit', junit, '--annotations', 'github',
    '--max-disagreement-rate', '1', '--max-low-confidence-rate', '1', '--max-image-problem-rate', '1', '--max-annotations', '1000', '-q',
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const threshold = flatTargets[1].threshold!;
  const j = readJson(json);
  const d = check(j, 'disagreement');
  const low = check(j, 'low_confidence');
  const expectDisagree = flatRecs.flatMap((p, i) => (p.decision === 'accept' && p.category !== flatLabels[i] ? [i + 2] : []));
  const expectLow = flatRecs.flatMap((p, i) => (p.status === 'ok' && p.decision === 'review' ? [i + 2] : []));
  assert.ok(expectDisagree.length > 0 && expectLow.length > 0, `${expectDisagree.length} disagreements, ${expectLow.length} for review`);
  assert.deepEqual(d.findings.map((f) => f.line), expectDisagree);
  assert.deepEqual(low.findings.map((f) => f.line), expectLow);
  // The accepted rows are exactly those scoring at least the threshold.
  assert.ok(flatRecs.every((p) => (p.decision === 'accept') === (p.status === 'ok' && p.score! >= threshold)));

  const from = "the bundle's threshold for target precision 0.9";
  assert.deepEqual(d.cutoff, { score: threshold, source: 'target', option: '--min-confidence', target: { precision: 0.9, from: 'bundle' }, from, criterion: `score ≥ ${threshold.toFixed(4)} (${from})` });
  assert.equal(low.cutoff!.source, 'target');
  assert.deepEqual(j.settings.targetPrecision, { target: 0.9, threshold, from: 'bundle' });
  assert.equal(j.settings.minConfidence, null);
  assert.equal(j.settings.lowConfidence, null);

  const value = esc(threshold.toFixed(4));
  assert.match(r.stdout, new RegExp(`^ {2}PASS {2}disagreement {6}${d.count} of 320 labelled rows \\(.*\\) disagree with a prediction scored ≥ ${value} \\(${esc(from)}\\) · max 100\\.00%`, 'm'));
  assert.match(r.stdout, new RegExp(`^ {2}PASS {2}low_confidence {4}${low.count} of 320 predicted rows \\(.*\\) are for review: scored below ${value} \\(${esc(from)}\\) · max`, 'm'));
  const xml = fs.readFileSync(junit, 'utf8');
  assert.ok(xml.includes(`<property name="target_precision" value="0.9"/>`), xml);
  assert.ok(xml.includes(`<property name="decision_threshold" value="${threshold}"/>`), xml);
  assert.ok(xml.includes(`disagree with a prediction scored ≥ ${threshold.toFixed(4)} (${from}); within --max-disagreement-rate`), xml);
  // Each row annotation's title names the cutoff that made it a finding.
  const title = (s: string) => s.replace(/%/g, '%25').replace(/:/g, '%3A').replace(/,/g, '%2C');
  const warnings = r.stdout.split('\n').filter((l) => l.startsWith('::warning '));
  assert.equal(warnings.filter((w) => w.includes(`,title=${title(`disagreement: score ≥ ${threshold.toFixed(4)} (${from})`)}::`)).length, d.count);
  assert.equal(warnings.filter((w) => w.includes(`,title=${title(`low_confidence: review: score < ${threshold.toFixed(4)} (${from})`)}::`)).length, low.count);
});

test('a flat bundle: --min-confidence / --low-confidence override the target for their check only; --target-precision picks another', async () => {
  const json = path.join(tmp, 'override.json');
  const lenient = ['--max-disagreement-rate', '1', '--max-low-confidence-rate', '1', '--max-image-problem-rate', '1'];
  const r = await runCli(['check', demo.catalog, '-m', flat, '--label-column', 'category', '--image-root', imageRoot, '--json', json, '--min-confidence', '0.8', '--target-precision', '0.8', ...lenient, '-q']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const j = readJson(json);
  const d = check(j, 'disagreement');
  const low = check(j, 'low_confidence');
  assert.deepEqual(d.findings.map((f) => f.line), flatRecs.flatMap((p, i) => (p.status === 'ok' && p.score! >= 0.8 && p.category !== flatLabels[i] ? [i + 2] : [])));
  assert.equal(d.cutoff!.source, 'option');
  assert.match(d.summary, /disagree with a prediction scored ≥ 0\.8 \(--min-confidence\)$/);
  // The low-confidence check decides at 0.8, a target train did not store: its threshold from the bundle's curve.
  const t80 = thresholdForTarget(flatCurve, 0.8).threshold!;
  assert.deepEqual(low.cutoff!.target, { precision: 0.8, from: '--target-precision' });
  assert.equal(low.cutoff!.score, t80);
  assert.deepEqual(low.findings.map((f) => f.line), flatRecs.flatMap((p, i) => (p.status === 'ok' && p.score! < t80 ? [i + 2] : [])));
  assert.match(low.summary, new RegExp(`(is|are) for review: scored below ${esc(t80.toFixed(4))} \\(the bundle's threshold for --target-precision 0\\.8\\)$`));
  assert.deepEqual([j.settings.minConfidence, j.settings.lowConfidence, j.settings.targetPrecision], [0.8, null, { target: 0.8, threshold: t80, from: '--target-precision' }]);

  // Both options given: a target named as well has nothing left to set, and says so.
  const both = await runCli(['check', demo.catalog, '-m', flat, '--label-column', 'category', '--image-root', imageRoot, '--min-confidence', '0.8', '--low-confidence', '0.5', '--target-precision', '0.9', ...lenient]);
  assert.equal(both.code, 0, both.stdout + both.stderr);
  assert.match(both.stderr, /warning: --target-precision 0\.9 has no effect: --min-confidence and --low-confidence set both checks/);
  assert.match(both.stdout, /scores? below 0\.5 \(--low-confidence\)/);

  // A target the bundle cannot vouch for, and a bundle without calibration: one-line usage errors, before any row.
  const unsupported = await runCli(['check', demo.catalog, '-m', flat, '--label-column', 'category', '--target-precision', '0.995']);
  assert.equal(unsupported.code, 2);
  assert.match(unsupported.stderr, /--target-precision 0\.995: .* cannot vouch for it: the 480 held-out rows vouch for precision 0\.\d+ at most/);
  assert.equal(unsupported.stderr.trim().split('\n').length, 1, unsupported.stderr);
  const plain = path.join(tmp, 'plain');
  const t = await runCli(['train', demo.train, '--label-column', 'category', '--features', 'tfidf', '--C', '10', '--validation', '0', '-o', plain, '-q']);
  assert.equal(t.code, 0, t.stderr);
  const uncalibrated = await runCli(['check', demo.catalog, '-m', plain, '--target-precision', '0.9']);
  assert.equal(uncalibrated.code, 2);
  assert.match(uncalibrated.stderr, /--target-precision (0\.9 )?needs a calibrated bundle: .* has no calibration/);
  // Without a target the fixed scores apply, as before calibration, and the reports say so.
  const json2 = path.join(tmp, 'plain.json');
  const p = await runCli(['check', demo.catalog, '-m', plain, '--label-column', 'category', '--json', json2, ...lenient, '-q']);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  const pj = readJson(json2);
  assert.deepEqual([check(pj, 'disagreement').cutoff!.source, check(pj, 'disagreement').cutoff!.score, check(pj, 'low_confidence').cutoff!.score], ['default', 0.8, 0.5]);
  assert.deepEqual([pj.settings.minConfidence, pj.settings.lowConfidence, pj.settings.targetPrecision], [0.8, 0.5, null]);
  assert.match(p.stdout, /disagree with a prediction scored ≥ 0\.8 \(--min-confidence\)/);
});

/** The highest level (1 = top) both paths have where they differ, or 0. */
function partsAt(stored: string, answered: string): number {
  const s = stored.split(' > ');
  const a = answered.split(' > ');
  for (let d = 0; d < Math.min(s.length, a.length); d++) if (s[d] !== a[d]) return d + 1;
  return 0;
}

test('a path bundle with a target: a disagreement is an accepted full path that parts from the label, at the highest level; review rows are low confidence', async () => {
  const json = path.join(tmp, 'paths.json');
  const r = await runCli(['check', pathCatalog, '-m', pathBundle, '--label-column', 'category_path', '--json', json, '--max-disagreement-rate', '1', '--max-low-confidence-rate', '1', '-q']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const j = readJson(json);
  const d = check(j, 'disagreement');
  const expect = pathRecs.flatMap((p, i) => {
    const level = p.decision === 'accept' && p.category ? partsAt(pathLabels[i], p.category) : 0;
    return level ? [[level, i + 2]] : [];
  });
  // Worst first: by level, then line.
  assert.deepEqual(d.findings.map((f) => [f.level, f.line]), expect.sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  for (const c of acceptedChanged) assert.equal(d.findings.find((f) => f.line === c.line)?.level, c.level, `line ${c.line}`);
  for (const line of reviewChanged) assert.equal(d.findings.find((f) => f.line === line), undefined, `line ${line} is for review: not a disagreement`);
  assert.match(
    d.summary,
    new RegExp(`disagree with an accepted prediction \\(full path scored ≥ ${esc(pathThreshold.toFixed(4))}, the bundle's threshold for target precision 0\\.9\\) at the highest level where they differ \\(level 1: \\d+, level 2: \\d+, level 3: \\d+\\)$`),
  );
  const low = check(j, 'low_confidence');
  assert.deepEqual(low.findings.map((f) => f.line), pathRecs.flatMap((p, i) => (p.status === 'ok' && p.decision === 'review' ? [i + 2] : [])));
  assert.match(low.summary, /(is|are) for review: full path not reached or scored below 0\.\d{4} \(the bundle's threshold for target precision 0\.9\)$/);

  // --min-confidence: the score at the differing level again, as without a target; the review rows changed count now.
  const r2 = await runCli(['check', pathCatalog, '-m', pathBundle, '--label-column', 'category_path', '--json', json, '--min-confidence', '0.5', '--max-disagreement-rate', '1', '--max-low-confidence-rate', '1', '-q']);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  const d2 = check(readJson(json), 'disagreement');
  const expect2 = pathRecs.flatMap((p, i) => {
    const level = p.status === 'ok' && p.category ? partsAt(pathLabels[i], p.category) : 0;
    return level && p.path_scores![level - 1] >= 0.5 ? [[level, i + 2]] : [];
  });
  assert.deepEqual(d2.findings.map((f) => [f.level, f.line]), expect2.sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  assert.ok(reviewChanged.some((line) => d2.findings.some((f) => f.line === line)), 'a relabelled review row is sure enough at level 1');
});
