// End-to-end: `categorize check` through the built binary, on the demo catalog with injected problems (each at a known
// CSV line) and on the demo catalog itself; summary, JSON, JUnit XML and GitHub annotations checked against both.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { create } from 'xmlbuilder2';
import { runCli, ensureDemo, demo, readJsonl } from '../helpers/cli.js';
import type { CheckOutcome, Finding } from '../../src/commands/check.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-check-'));
const imageRoot = path.dirname(demo.catalog);
const CHECKS = ['disagreement', 'low_confidence', 'duplicate_id', 'empty_title', 'image_problem', 'unknown_category', 'prediction_error'];

/** The JSON report's checks are the command's own CheckOutcome records. */
type Check = CheckOutcome;
interface CheckJson {
  input: string;
  rows: number;
  labelled: number | null;
  passed: boolean;
  failed: string[];
  settings: { labelColumn: string | null; minConfidence: number; thresholds: Record<string, number> };
  checks: Check[];
}

interface XmlElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  getElementsByTagName(name: string): ArrayLike<XmlElement> & Iterable<XmlElement>;
}
const parseXml = (xml: string) => create(xml).root().node as unknown as XmlElement;

const byName = (j: CheckJson) => Object.fromEntries(j.checks.map((c) => [c.name, c])) as Record<string, Check>;
const lines = (fs_: Finding[]) => fs_.map((f) => f.line);

// What gets injected, and where it ends up (1-based CSV lines, filled in while the file is written).
const HOSTILE_ID = `X<&"'>🙂,:%\u0007`;
const UNKNOWN = 'Garden & <Patio> 🌱\u0001';
const at: Record<string, number> = {};
let catalogFile = '';
let swapped: { line: number; stored: string; truth: string }[] = [];
let emptyImageLines: number[] = [];

before(async () => {
  await ensureDemo();
  // Rows the bundle gets confidently right on the clean catalog: swapping their label makes a disagreement.
  const clean = await runCli(['run', demo.catalog, '-m', demo.bundle, '-o', path.join(tmp, 'clean.jsonl'), '-q']);
  assert.equal(clean.code, 0, clean.stderr);
  const preds = readJsonl(path.join(tmp, 'clean.jsonl')) as { category: string; score: number }[];
  const [header, ...rows] = parse(fs.readFileSync(demo.catalog)) as string[][];
  const classes = (JSON.parse(fs.readFileSync(path.join(demo.bundle, 'manifest.json'), 'utf8')) as { classes: string[] }).classes;
  const touched = new Set([1, 10, 30, 40, 50, 60, 70, 80, 90, 200]);
  const swaps = rows
    .map((r, i) => i)
    .filter((i) => i >= 100 && !touched.has(i) && preds[i].score >= 0.95 && preds[i].category === rows[i][4])
    .filter((_, k) => k % 7 === 0)
    .slice(0, 3);
  assert.equal(swaps.length, 3);

  const corrupt = path.join(tmp, 'corrupt.jpg');
  fs.writeFileSync(corrupt, fs.readFileSync(path.join(demo.images, 'P0001.jpg')).subarray(0, 300));
  const out: string[][] = [];
  const mark: Record<number, string> = {};
  rows.forEach((r, i) => {
    const row = [...r];
    if (i === 1) row[2] = 'First line of a long description,\nsecond line after a quoted break';
    if (i === 30) row[0] = rows[10][0];
    if (i === 40) row[1] = '   ';
    if (i === 50) row[3] = 'images/DOES-NOT-EXIST.jpg';
    if (i === 60) [row[0], row[3]] = [HOSTILE_ID, corrupt];
    if (i === 70 || i === 200) row[4] = UNKNOWN;
    if (i === 80) row[4] = '';
    if (swaps.includes(i)) row[4] = classes[(classes.indexOf(row[4]) + 1) % classes.length];
    mark[out.length] = `row${i}`;
    out.push(row);
    if (i === 90) {
      mark[out.length] = 'ragged';
      out.push(['R1', 'Short row']);
    }
  });
  // A comma and a colon in the file name: annotation properties must escape both.
  catalogFile = path.join(tmp, 'shop,cat:v2.csv');
  let text = stringify([header]);
  let line = 2;
  emptyImageLines = [];
  out.forEach((row, k) => {
    at[mark[k]] = line;
    if (mark[k] !== 'ragged' && row[3] === '') emptyImageLines.push(line);
    const rec = stringify([row]);
    text += rec;
    line += rec.split('\n').length - 1;
  });
  fs.writeFileSync(catalogFile, text);
  swapped = swaps.map((i) => ({ line: at[`row${i}`], stored: classes[(classes.indexOf(rows[i][4]) + 1) % classes.length], truth: rows[i][4] }));
});

test('injected problems: exit 3, each found on its CSV line, in the summary, JSON, JUnit and annotations', async () => {
  assert.equal(at.row2, at.row1 + 2, 'the quoted line break moves every later row down one line');
  const json = path.join(tmp, 'bad.json');
  const junit = path.join(tmp, 'bad.xml');
  const r = await runCli([
    'check', catalogFile, '-m', demo.bundle, '--label-column', 'category', '--image-root', imageRoot,
    '--json', json, '--junit', junit, '--annotations', 'github', '--max-listed', '20', '--max-low-confidence-rate', '0.2', '--min-confidence', '0.8', '-q',
  ]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /categorize: check failed: disagreement, duplicate_id, empty_title, image_problem, unknown_category, prediction_error/);

  // The oracle for the model-dependent checks: `run`'s own predictions on the same file.
  const o = await runCli(['run', catalogFile, '-m', demo.bundle, '--image-root', imageRoot, '-o', path.join(tmp, 'bad.jsonl'), '-q']);
  assert.equal(o.code, 0, o.stderr);
  const preds = readJsonl(path.join(tmp, 'bad.jsonl')) as { category: string | null; score: number | null; status: string }[];
  const records = parse(fs.readFileSync(catalogFile), { relax_column_count: true }).slice(1) as string[][];
  const lineOf = Object.entries(at).sort((a, b) => a[1] - b[1]).map(([, l]) => l);
  assert.equal(preds.length, records.length);
  const labelledKnown = (i: number) => records[i].length === 5 && records[i][4].trim() !== '' && records[i][4] !== UNKNOWN;
  const expectDisagree = preds.flatMap((p, i) => (labelledKnown(i) && p.status === 'ok' && p.score! >= 0.8 && p.category !== records[i][4] ? [lineOf[i]] : []));
  const expectLow = preds.flatMap((p, i) => (p.status === 'ok' && p.score! < 0.5 ? [lineOf[i]] : []));

  const j = JSON.parse(fs.readFileSync(json, 'utf8')) as CheckJson;
  const c = byName(j);
  assert.deepEqual(j.checks.map((x) => x.name), CHECKS);
  assert.equal(j.rows, 321);
  assert.equal(j.labelled, 319, '320 rows, less one empty label; the ragged row is not judged');
  assert.equal(j.input, catalogFile);
  assert.equal(j.settings.labelColumn, 'category');
  assert.equal(j.settings.thresholds.maxDisagreementRate, 0.02);
  assert.equal(j.passed, false);

  assert.deepEqual(lines(c.disagreement.findings), expectDisagree);
  for (const s of swapped) {
    const f = c.disagreement.findings.find((x) => x.line === s.line);
    assert.ok(f, `swapped label on line ${s.line} found`);
    assert.match(f.detail, new RegExp(`^stored '${s.stored}', predicted '${s.truth}' \\((0\\.9\\d|1\\.00)\\)$`));
  }
  assert.equal(c.disagreement.checked, 319);
  assert.equal(c.disagreement.status, expectDisagree.length / 319 > 0.02 ? 'fail' : 'pass');

  assert.deepEqual(lines(c.low_confidence.findings), expectLow);
  assert.equal(c.low_confidence.checked, 320, 'rows with a prediction');
  assert.equal(c.low_confidence.status, expectLow.length / 320 > 0.2 ? 'fail' : 'pass');

  assert.equal(c.duplicate_id.status, 'fail');
  assert.equal(c.duplicate_id.count, 1);
  assert.deepEqual(c.duplicate_id.duplicates, [{ id: records[10][0], lines: [at.row10, at.row30] }]);
  assert.deepEqual(lines(c.duplicate_id.findings), [at.row10, at.row30]);
  assert.equal(c.duplicate_id.findings[0].detail, `id '${records[10][0]}' is also on line ${at.row30}`);

  assert.equal(c.empty_title.status, 'fail');
  assert.deepEqual(c.empty_title.findings, [{ line: at.row40, id: records[40][0], detail: 'title is empty' }]);

  assert.equal(c.image_problem.status, 'fail');
  assert.equal(emptyImageLines.length, 8, 'the demo catalog ships 8 rows without an image');
  assert.deepEqual(lines(c.image_problem.findings), [...emptyImageLines, at.row50, at.row60].sort((a, b) => a - b));
  assert.equal(c.image_problem.count, 10);
  assert.equal(c.image_problem.checked, 320);
  const img = (line: number) => c.image_problem.findings.find((f) => f.line === line)!;
  assert.match(img(at.row50).detail, /^image_not_found: image not found: .*DOES-NOT-EXIST\.jpg$/);
  assert.match(img(at.row60).detail, /^image_(corrupt|unsupported): /);
  assert.equal(img(at.row60).id, HOSTILE_ID);
  assert.equal(img(emptyImageLines[0]).detail, 'image cell is empty');

  assert.equal(c.unknown_category.status, 'fail');
  assert.deepEqual(c.unknown_category.categories, [{ category: UNKNOWN, count: 2, firstLine: at.row70, firstId: records[70][0] }]);
  assert.deepEqual(lines(c.unknown_category.findings), [at.row70, at.row200]);

  assert.equal(c.prediction_error.status, 'fail');
  assert.deepEqual(c.prediction_error.findings, [{ line: at.ragged, id: 'R1', detail: 'ragged_row: 2 fields where the header has 5' }]);

  // Summary: a line per check, the rows of failing checks with their lines, user data defanged.
  assert.doesNotMatch(r.stdout.split('\n::')[0], /\u001b|\u0007|\u0001/, 'no colour off a terminal, no control characters from the data');
  assert.match(r.stdout, /^ {2}FAIL {2}duplicate_id {6}1 id appears more than once \(2 rows\) · max 0 \(--max-duplicate-ids\)$/m);
  assert.match(r.stdout, /^ {2}FAIL {2}prediction_error {2}1 of 321 rows \(0\.31%\) could not be predicted · max 0\.00% \(--max-error-rate\)$/m);
  assert.match(r.stdout, new RegExp(`^ {2}line ${at.row40}: id ${records[40][0]}: title is empty$`, 'm'));
  assert.ok(r.stdout.includes(`  line ${at.row60}: id X<&"'>🙂,:%?: image_`), 'control character shown as ?');
  assert.match(r.stdout, new RegExp(`^ {2}line ${at.row70}: id ${records[70][0]}: stored category 'Garden & <Patio> 🌱\\?' is unknown to the model \\(2 rows, first on this line\\)$`, 'm'));
  assert.match(r.stdout, /^categorize check: FAILED: disagreement, duplicate_id, empty_title, image_problem, unknown_category, prediction_error \(6 of 7 checks\)$/m);

  // JUnit: parses, one case per check, failures where the JSON says, offending rows quoted, XML-forbidden characters gone.
  const xml = fs.readFileSync(junit, 'utf8');
  assert.equal(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml), false);
  const root = parseXml(xml);
  const suite = root.getElementsByTagName('testsuite')[0];
  assert.equal(suite.getAttribute('name'), 'categorize check');
  assert.equal(suite.getAttribute('tests'), '7');
  assert.equal(suite.getAttribute('failures'), String(j.failed.length));
  assert.equal(suite.getAttribute('skipped'), '0');
  const props = Object.fromEntries([...root.getElementsByTagName('property')].map((p) => [p.getAttribute('name'), p.getAttribute('value')]));
  assert.deepEqual(props, { model: demo.bundle, input: catalogFile, rows: '321' });
  const cases = [...root.getElementsByTagName('testcase')];
  assert.deepEqual(cases.map((x) => x.getAttribute('name')), CHECKS);
  assert.ok(cases.every((x) => x.getAttribute('classname') === 'categorize.check'));
  const failures = cases.filter((x) => x.getElementsByTagName('failure').length > 0).map((x) => x.getAttribute('name'));
  assert.deepEqual(failures, j.failed);
  const failureText = (name: string) => cases.find((x) => x.getAttribute('name') === name)!.getElementsByTagName('failure')[0];
  assert.equal(failureText('image_problem').getAttribute('type'), 'threshold');
  assert.match(failureText('image_problem').getAttribute('message')!, /^10 of 320 rows \(3\.13%\) have a missing or unreadable image; over --max-image-problem-rate 1\.00%$/);
  assert.ok(failureText('image_problem').textContent!.includes(`line ${at.row60}: id X<&"'>🙂,:%: image_`), 'hostile id intact but for the BEL');
  assert.ok(failureText('duplicate_id').textContent!.includes(`line ${at.row30}: id ${records[10][0]}: id '${records[10][0]}' is also on line ${at.row10}`));
  assert.ok(failureText('unknown_category').textContent!.includes(`line ${at.row70}: id ${records[70][0]}: stored category 'Garden & <Patio> 🌱' is unknown`));

  // Annotations: failing checks' rows first, capped at 50 with a notice, then one error per failing check.
  const ann = r.stdout.split('\n').filter((l) => l.startsWith('::'));
  const file = catalogFile.replace(/%/g, '%25').replace(/:/g, '%3A').replace(/,/g, '%2C');
  const ordered = [...j.checks.filter((x) => x.status === 'fail'), ...j.checks.filter((x) => x.status === 'pass')].flatMap((x) => x.findings.map((f) => ({ check: x.name, f })));
  const warnings = ann.filter((l) => l.startsWith('::warning '));
  assert.equal(warnings.length, Math.min(50, ordered.length));
  // The confidence checks' titles say the cutoff that made the row a finding (no target: --min-confidence as given,
  // --low-confidence's default).
  const titles: Record<string, string> = { disagreement: 'disagreement%3A score ≥ 0.8 (--min-confidence)', low_confidence: 'low_confidence%3A score < 0.5 (--low-confidence)' };
  warnings.forEach((w, k) => assert.ok(w.startsWith(`::warning file=${file},line=${ordered[k].f.line},title=${titles[ordered[k].check] ?? ordered[k].check}::id `), w));
  const hostile = warnings.find((w) => w.includes(`line=${at.row60},title=image_problem`));
  assert.ok(hostile, 'the hostile row is among the first 50');
  assert.ok(hostile.includes(`::id X<&"'>🙂,:%25\u0007: image_`), hostile);
  const notices = ann.filter((l) => l.startsWith('::notice '));
  if (ordered.length > 50) assert.deepEqual(notices, [`::notice title=categorize check::${ordered.length - 50} more findings were not annotated (--max-annotations 50); --json lists them all`]);
  else assert.deepEqual(notices, []);
  const errors = ann.filter((l) => l.startsWith('::error '));
  assert.deepEqual(errors.map((e) => /^::error title=categorize check::(\w+) failed: /.exec(e)?.[1]), j.failed);
  assert.ok(errors.includes('::error title=categorize check::duplicate_id failed: 1 id appears more than once (2 rows); over --max-duplicate-ids 0'));
  assert.ok(errors.some((e) => /::image_problem failed: 10 of 320 rows \(3\.13%25\) have a missing or unreadable image; over --max-image-problem-rate 1\.00%25$/.test(e)));
  assert.equal(ann.length, warnings.length + notices.length + errors.length);
});

test('the demo catalog passes at thresholds set from what the demo bundle achieves; stdin works', async () => {
  // Measured on the demo catalog: no stored label is flagged (its labels are no more improbable to the model than the
  // held-out rows' right labels were; by score, 11 of 320 would disagree at ≥ 0.8), 29 (9.06%) score below 0.5
  // (early fusion: --fusion auto picks it on the demo's held-out rows; its joint head is less sure of the tiny
  // random-weight encoders' rows than late fusion was; the held-out rows keep the name match — the demo's texts name
  // `Laptops` and `Toys`, always rightly: β 5, statistic 25.3 — and then a temperature of 1.11, statistic 4.18 against
  // 3.84, which softens the rows the name match does not lift: 22 without either step), and 8 rows (2.50%) ship without
  // an image; no duplicates, empty titles, unknown categories or errors.
  const json = path.join(tmp, 'clean.json');
  const junit = path.join(tmp, 'clean.xml');
  const r = await runCli(
    ['check', '-', '-m', demo.bundle, '--label-column', 'category', '--image-root', imageRoot, '--max-disagreement-rate', '0.08', '--max-low-confidence-rate', '0.2', '--max-image-problem-rate', '0.03', '--json', json, '--junit', junit, '-q'],
    { stdin: fs.readFileSync(demo.catalog, 'utf8') },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^categorize check: passed \(7 checks\)$/m);
  assert.equal(r.stdout.split('\n').filter((l) => /^ {2}PASS {2}/.test(l)).length, 7);
  const j = JSON.parse(fs.readFileSync(json, 'utf8')) as CheckJson;
  const c = byName(j);
  assert.equal(j.input, 'stdin');
  assert.equal(j.passed, true);
  assert.deepEqual(j.failed, []);
  assert.equal(c.disagreement.count, 0);
  assert.equal(c.low_confidence.count, 29);
  // The demo bundle is calibrated but has no target: disagreement by flag precision (its held-out label tail), low
  // confidence by the fixed score; the reports say where each came from.
  assert.equal(c.disagreement.cutoff?.source, 'flag-precision');
  assert.match(c.disagreement.summary, /^0 of 320 labelled rows \(0\.00%\) flagged: no cutoff of the stored category's probability vouches for flag precision 0\.9 \(at best 0\.\d{3} of the flags would be mislabelled; 95% bound from 480 held-out rows\)$/);
  assert.match(c.low_confidence.summary, /scores? below 0\.5 \(--low-confidence\)$/);
  assert.equal(c.image_problem.count, 8);
  for (const name of ['duplicate_id', 'empty_title', 'unknown_category', 'prediction_error']) assert.equal(c[name].count, 0, name);
  const root = parseXml(fs.readFileSync(junit, 'utf8'));
  assert.equal(root.getAttribute('failures'), '0');
  assert.equal(root.getElementsByTagName('failure').length, 0);
  assert.equal(root.getElementsByTagName('property')[1].getAttribute('value'), 'stdin');
});

test('without --label-column the label checks are skipped, not passed; --annotations refuses stdin', async () => {
  const small = path.join(tmp, 'small.csv');
  fs.writeFileSync(small, fs.readFileSync(demo.catalog, 'utf8').split('\n').slice(0, 31).join('\n') + '\n');
  const junit = path.join(tmp, 'small.xml');
  const json = path.join(tmp, 'small.json');
  const r = await runCli(['check', small, '-m', demo.bundle, '--image-root', imageRoot, '--max-image-problem-rate', '1', '--max-low-confidence-rate', '1', '--junit', junit, '--json', json, '--annotations', 'github', '-q']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}SKIP {2}disagreement {6}skipped: no --label-column given$/m);
  assert.match(r.stdout, /^ {2}SKIP {2}unknown_category {2}skipped: no --label-column given$/m);
  assert.match(r.stdout, /^categorize check: passed \(5 checks, 2 skipped\)$/m);
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('::error')).length, 0);
  const c = byName(JSON.parse(fs.readFileSync(json, 'utf8')) as CheckJson);
  assert.equal(c.disagreement.status, 'skip');
  assert.equal(c.unknown_category.skipReason, 'no --label-column given');
  const root = parseXml(fs.readFileSync(junit, 'utf8'));
  assert.equal(root.getAttribute('skipped'), '2');
  assert.equal(root.getAttribute('failures'), '0');
  const skippedCases = [...root.getElementsByTagName('testcase')].filter((x) => x.getElementsByTagName('skipped').length > 0).map((x) => x.getAttribute('name'));
  assert.deepEqual(skippedCases, ['disagreement', 'unknown_category']);

  const stdin = await runCli(['check', '-', '-m', demo.bundle, '--annotations', 'github'], { stdin: 'id,title\n1,x\n' });
  assert.equal(stdin.code, 2);
  assert.match(stdin.stderr, /--annotations needs the catalog as a file path/);
  const badRate = await runCli(['check', small, '-m', demo.bundle, '--max-disagreement-rate', '2']);
  assert.equal(badRate.code, 2);
  assert.match(badRate.stderr, /--max-disagreement-rate.*expected a maximum rate from 0 to 1/);
  const badFormat = await runCli(['check', small, '-m', demo.bundle, '--annotations', 'gitlab']);
  assert.equal(badFormat.code, 2);
});
