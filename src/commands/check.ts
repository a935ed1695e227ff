// `categorize check`: a catalog data-quality gate for CI. One pass of run's own predictor over the catalog; seven
// checks, each with a threshold; every finding keeps the CSV line it came from so reports can point into the file.
import fs from 'node:fs';
import path from 'node:path';
import type { CatalogRow } from '../io/catalog-reader.js';
import type { PredictionRecord } from '../io/prediction-writer.js';
import { bundleInputs } from '../models/bundle.js';
import { orderedMap } from '../pipeline/ordered-map.js';
import { openBundleSession, type BundleRunOptions } from '../pipeline/bundle-session.js';
import { silentProgress, type ProgressReporter } from '../pipeline/progress.js';
import { renderJUnit, type JUnitCase } from '../report/junit.js';
import { formatAnnotation } from '../report/github-annotations.js';

export const CHECK_NAMES = ['disagreement', 'low_confidence', 'duplicate_id', 'empty_title', 'image_problem', 'unknown_category', 'prediction_error'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** A check fails when its figure is strictly above its maximum. Rates are shares (0–1), counts whole numbers. */
export interface CheckThresholds {
  maxDisagreementRate: number;
  maxLowConfidenceRate: number;
  maxDuplicateIds: number;
  maxEmptyTitles: number;
  maxImageProblemRate: number;
  maxUnknownCategories: number;
  maxErrorRate: number;
}

export const DEFAULT_THRESHOLDS: CheckThresholds = {
  maxDisagreementRate: 0.02,
  maxLowConfidenceRate: 0.1,
  maxDuplicateIds: 0,
  maxEmptyTitles: 0,
  maxImageProblemRate: 0.01,
  maxUnknownCategories: 0,
  maxErrorRate: 0,
};

export interface CheckOptions extends BundleRunOptions {
  /** Column holding each row's stored category; without it the label checks are skipped. */
  labelColumn?: string;
  /** A prediction at least this probable that differs from the stored category is a disagreement. */
  minConfidence: number;
  /** A top score below this is low confidence. */
  lowConfidence: number;
  thresholds: CheckThresholds;
  json?: string;
  junit?: string;
  /** Offending rows quoted per failing check in the JUnit report (the JSON has all). */
  maxListed: number;
  toolVersion: string;
  progress?: ProgressReporter;
}

/** One offending row. */
export interface Finding {
  /** 1-based line of the input where the record starts. */
  line: number;
  id: string;
  detail: string;
}

export interface CheckOutcome {
  name: CheckName;
  status: 'pass' | 'fail' | 'skip';
  /** Why a skipped check did not run; null otherwise. */
  skipReason: string | null;
  /** What the threshold is compared with: offending rows, or distinct ids/categories for duplicate_id and unknown_category. */
  count: number;
  /** Offending rows (equals count except for duplicate_id and unknown_category). */
  rows: number;
  /** Rows the check looked at (the rate's denominator). */
  checked: number;
  /** rows / checked (0 when nothing was checked). */
  rate: number;
  threshold: { flag: string; on: 'rate' | 'count'; max: number };
  /** The figures in words, e.g. "16 of 300 labelled rows (5.33%) disagree with a prediction scored ≥ 0.8". */
  summary: string;
  /** summary + how it compares with the threshold: one line for JUnit messages and annotations. */
  message: string;
  findings: Finding[];
  /** duplicate_id: each repeated id with every line it is on, in order of first appearance. */
  duplicates?: { id: string; lines: number[] }[];
  /** unknown_category: each stored category the model does not know. */
  categories?: { category: string; count: number; firstLine: number; firstId: string }[];
}

export interface CheckResult {
  /** As given (annotations point at it) and resolved. */
  input: string;
  inputPath: string | null;
  model: string;
  rows: number;
  /** Rows with a non-empty label (null without --label-column). */
  labelled: number | null;
  usesImages: boolean;
  checks: CheckOutcome[];
  failed: CheckName[];
  startedAt: string;
  elapsedSeconds: number;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const prob = (x: number) => x.toFixed(2);
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
const quote = (s: string) => `'${s}'`;

function finding(row: CatalogRow, detail: string): Finding {
  return { line: row.line, id: row.id, detail };
}

/** A row's image problem in words, or null: an empty cell, or any warning or error with an image_ or url_ code. */
function imageProblem(row: CatalogRow, rec: PredictionRecord): string | null {
  if (row.image === '') return 'image cell is empty';
  const isImageCode = (s: string) => /^(image|url)_[a-z0-9_]+(:|$)/.test(s);
  const reasons = rec.warnings.filter(isImageCode);
  // An error may join several reasons with '; ' (see FeatureExtractor.extract).
  if (rec.error) reasons.push(...rec.error.split('; ').filter(isImageCode));
  return reasons.length > 0 ? reasons.join('; ') : null;
}

function hasColumn(header: string[], name: string): boolean {
  const lower = name.toLowerCase();
  return header.some((h) => h === name || h.toLowerCase() === lower);
}

/** Per-row observations gathered in the single pass; turned into outcomes at the end. */
class Tally {
  rows = 0;
  predicted = 0;
  labelled = 0;
  notRagged = 0;
  readonly disagreement: Finding[] = [];
  readonly lowConfidence: Finding[] = [];
  readonly emptyTitle: Finding[] = [];
  readonly imageProblem: Finding[] = [];
  readonly predictionError: Finding[] = [];
  /** Each id's first line: a duplicate may come at the very end, so every id is kept (a string and a number per row). */
  readonly firstLine = new Map<string, number>();
  /** Repeated ids only, with all their lines. */
  readonly repeated = new Map<string, number[]>();
  readonly unknown = new Map<string, { rows: Finding[] }>();
}

export async function checkCommand(opts: CheckOptions): Promise<CheckResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const progress = opts.progress ?? silentProgress;
  // Two classes per row: the runner-up makes a low-confidence finding readable.
  const { bundle, catalog, predictor, close } = await openBundleSession(opts, { extra: opts.labelColumn ? [opts.labelColumn] : [], topN: 2, topKTags: 0 });
  const inputs = bundleInputs(bundle);
  const titleColumn = hasColumn(catalog.header, opts.columns.title);
  const idColumn = hasColumn(catalog.header, opts.columns.id);
  const known = new Set(bundle.manifest.classes);
  const t = new Tally();
  try {
    const totalBytes = opts.input === '-' ? null : fs.statSync(opts.input).size;
    progress.start(totalBytes);
    let warned = 0;
    await orderedMap(
      catalog.rows,
      async (row) => ({ row, p: await predictor.predict(row) }),
      ({ row, p }) => {
        observe(t, row, p.record, opts, { known, titleColumn, usesImages: inputs.image });
        if (p.record.warnings.length > 0) warned++;
        progress.update({ rows: t.rows, errors: t.predictionError.length, warnings: warned, bytesRead: catalog.bytesRead(), totalBytes });
      },
      { window: opts.window, onInputEnd: () => predictor.flush() },
    );
  } finally {
    progress.stop();
    await close();
  }
  const checks = outcomes(t, opts, { idColumn, titleColumn, usesImages: inputs.image, classes: bundle.manifest.classes.length });
  const result: CheckResult = {
    input: opts.input,
    inputPath: opts.input === '-' ? null : path.resolve(opts.input),
    model: path.resolve(opts.model),
    rows: t.rows,
    labelled: opts.labelColumn ? t.labelled : null,
    usesImages: inputs.image,
    checks,
    failed: checks.filter((c) => c.status === 'fail').map((c) => c.name),
    startedAt,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(checkJson(result, opts), null, 2) + '\n');
  if (opts.junit) fs.writeFileSync(opts.junit, checkJUnit(result, opts.maxListed));
  return result;
}

function observe(
  t: Tally,
  row: CatalogRow,
  rec: PredictionRecord,
  opts: CheckOptions,
  ctx: { known: Set<string>; titleColumn: boolean; usesImages: boolean },
): void {
  t.rows++;
  const first = t.firstLine.get(row.id);
  if (first === undefined) t.firstLine.set(row.id, row.line);
  else {
    const lines = t.repeated.get(row.id);
    if (lines) lines.push(row.line);
    else t.repeated.set(row.id, [first, row.line]);
  }
  if (rec.status === 'error') t.predictionError.push(finding(row, rec.error ?? 'error'));
  else {
    t.predicted++;
    if (rec.score! < opts.lowConfidence) {
      const next = rec.top_categories[1];
      t.lowConfidence.push(finding(row, `predicted ${quote(rec.category!)} with ${prob(rec.score!)}${next ? ` (runner-up ${quote(next.category)} ${prob(next.prob)})` : ''}`));
    }
  }
  // A ragged row's fields may sit under the wrong columns: it is a prediction error, and nothing else is judged on it.
  if (row.error) return;
  t.notRagged++;
  if (ctx.titleColumn && row.title.trim() === '') t.emptyTitle.push(finding(row, 'title is empty'));
  if (ctx.usesImages) {
    const problem = imageProblem(row, rec);
    if (problem) t.imageProblem.push(finding(row, problem));
  }
  if (!opts.labelColumn) return;
  const stored = row.extra[opts.labelColumn].trim();
  if (stored === '') return;
  t.labelled++;
  if (!ctx.known.has(stored)) {
    const f = finding(row, `stored category ${quote(stored)} is not one of the model's classes`);
    const u = t.unknown.get(stored);
    if (u) u.rows.push(f);
    else t.unknown.set(stored, { rows: [f] });
  } else if (rec.status === 'ok' && rec.score! >= opts.minConfidence && rec.category !== stored) {
    t.disagreement.push(finding(row, `stored ${quote(stored)}, predicted ${quote(rec.category!)} (${prob(rec.score!)})`));
  }
}

function outcomes(t: Tally, opts: CheckOptions, ctx: { idColumn: boolean; titleColumn: boolean; usesImages: boolean; classes: number }): CheckOutcome[] {
  const th = opts.thresholds;
  const rateCheck = (
    name: CheckName,
    flag: string,
    max: number,
    findings: Finding[],
    checked: number,
    words: (n: number, of: number, rate: string) => string,
  ): CheckOutcome => {
    const rate = checked > 0 ? findings.length / checked : 0;
    const status = rate > max ? 'fail' : 'pass';
    const summary = words(findings.length, checked, pct(rate));
    return {
      name,
      status,
      skipReason: null,
      count: findings.length,
      rows: findings.length,
      checked,
      rate,
      threshold: { flag, on: 'rate', max },
      summary,
      message: `${summary}; ${status === 'fail' ? 'over' : 'within'} ${flag} ${pct(max)}`,
      findings,
    };
  };
  const countCheck = (name: CheckName, flag: string, max: number, count: number, findings: Finding[], checked: number, summary: string): CheckOutcome => {
    const status = count > max ? 'fail' : 'pass';
    return {
      name,
      status,
      skipReason: null,
      count,
      rows: findings.length,
      checked,
      rate: checked > 0 ? findings.length / checked : 0,
      threshold: { flag, on: 'count', max },
      summary,
      message: `${summary}; ${status === 'fail' ? 'over' : 'within'} ${flag} ${max}`,
      findings,
    };
  };
  const skipped = (name: CheckName, flag: string, on: 'rate' | 'count', max: number, reason: string): CheckOutcome => ({
    name,
    status: 'skip',
    skipReason: reason,
    count: 0,
    rows: 0,
    checked: 0,
    rate: 0,
    threshold: { flag, on, max },
    summary: `skipped: ${reason}`,
    message: `skipped: ${reason}`,
    findings: [],
  });
  const noLabels = 'no --label-column given';

  const disagreement = opts.labelColumn
    ? rateCheck('disagreement', '--max-disagreement-rate', th.maxDisagreementRate, t.disagreement, t.labelled, (n, of, r) =>
        `${n} of ${plural(of, 'labelled row', 'labelled rows')} (${r}) ${n === 1 ? 'disagrees' : 'disagree'} with a prediction scored ≥ ${opts.minConfidence}`,
      )
    : skipped('disagreement', '--max-disagreement-rate', 'rate', th.maxDisagreementRate, noLabels);

  const lowConfidence = rateCheck('low_confidence', '--max-low-confidence-rate', th.maxLowConfidenceRate, t.lowConfidence, t.predicted, (n, of, r) =>
    `${n} of ${plural(of, 'predicted row', 'predicted rows')} (${r}) ${n === 1 ? 'scores' : 'score'} below ${opts.lowConfidence}`,
  );

  let duplicateId: CheckOutcome;
  if (ctx.idColumn) {
    const duplicates = [...t.repeated].map(([id, lines]) => ({ id, lines })).sort((a, b) => a.lines[0] - b.lines[0]);
    const rows = duplicates.flatMap((d) =>
      d.lines.map((line) => ({
        line,
        id: d.id,
        detail: `id ${quote(d.id)} is also on line${d.lines.length > 2 ? 's' : ''} ${d.lines.filter((l) => l !== line).join(', ')}`,
      })),
    );
    duplicateId = {
      ...countCheck('duplicate_id', '--max-duplicate-ids', th.maxDuplicateIds, duplicates.length, rows, t.rows,
        `${plural(duplicates.length, 'id appears', 'ids appear')} more than once (${plural(rows.length, 'row', 'rows')})`),
      duplicates,
    };
  } else {
    duplicateId = skipped('duplicate_id', '--max-duplicate-ids', 'count', th.maxDuplicateIds, `the catalog has no '${opts.columns.id}' column (ids are row numbers)`);
  }

  const emptyTitle = ctx.titleColumn
    ? countCheck('empty_title', '--max-empty-titles', th.maxEmptyTitles, t.emptyTitle.length, t.emptyTitle, t.notRagged,
        `${t.emptyTitle.length} of ${plural(t.notRagged, 'row', 'rows')} (${pct(t.notRagged > 0 ? t.emptyTitle.length / t.notRagged : 0)}) ${t.emptyTitle.length === 1 ? 'has' : 'have'} an empty title`)
    : skipped('empty_title', '--max-empty-titles', 'count', th.maxEmptyTitles, `the catalog has no '${opts.columns.title}' column`);

  const image = ctx.usesImages
    ? rateCheck('image_problem', '--max-image-problem-rate', th.maxImageProblemRate, t.imageProblem, t.notRagged, (n, of, r) =>
        `${n} of ${plural(of, 'row', 'rows')} (${r}) ${n === 1 ? 'has' : 'have'} a missing or unreadable image`,
      )
    : skipped('image_problem', '--max-image-problem-rate', 'rate', th.maxImageProblemRate, 'the bundle does not use images');

  let unknownCategory: CheckOutcome;
  if (opts.labelColumn) {
    const categories = [...t.unknown].map(([category, u]) => ({ category, count: u.rows.length, firstLine: u.rows[0].line, firstId: u.rows[0].id }));
    const rows = [...t.unknown.values()].flatMap((u) => u.rows).sort((a, b) => a.line - b.line);
    unknownCategory = {
      ...countCheck('unknown_category', '--max-unknown-categories', th.maxUnknownCategories, categories.length, rows, t.labelled,
        `${plural(categories.length, 'stored category is', 'stored categories are')} not among the model's ${ctx.classes} classes (${plural(rows.length, 'row', 'rows')})`),
      categories,
    };
  } else {
    unknownCategory = skipped('unknown_category', '--max-unknown-categories', 'count', th.maxUnknownCategories, noLabels);
  }

  const predictionError = rateCheck('prediction_error', '--max-error-rate', th.maxErrorRate, t.predictionError, t.rows, (n, of, r) =>
    `${n} of ${plural(of, 'row', 'rows')} (${r}) could not be predicted`,
  );

  return [disagreement, lowConfidence, duplicateId, emptyTitle, image, unknownCategory, predictionError];
}

/**
 * The rows to quote for a check, in order: its findings, except unknown_category, which quotes each category once
 * (at its first row) so one big unknown category cannot hide the others.
 */
export function listedFindings(check: CheckOutcome): Finding[] {
  if (check.name === 'unknown_category' && check.categories) {
    return check.categories.map((c) => ({
      line: c.firstLine,
      id: c.firstId,
      detail: `stored category ${quote(c.category)} is unknown to the model (${plural(c.count, 'row', 'rows')}, first on this line)`,
    }));
  }
  return check.findings;
}

export function formatFinding(f: Finding): string {
  return `line ${f.line}: id ${f.id}: ${f.detail}`;
}

/** What --json writes: the settings, every check's figures and every offending row. */
export function checkJson(result: CheckResult, opts: Pick<CheckOptions, 'labelColumn' | 'minConfidence' | 'lowConfidence' | 'thresholds' | 'onImageError' | 'toolVersion'>) {
  return {
    tool: 'categorize check',
    toolVersion: opts.toolVersion,
    createdAt: result.startedAt,
    model: result.model,
    input: result.inputPath ?? 'stdin',
    settings: {
      labelColumn: opts.labelColumn ?? null,
      minConfidence: opts.minConfidence,
      lowConfidence: opts.lowConfidence,
      thresholds: opts.thresholds,
      onImageError: opts.onImageError,
    },
    rows: result.rows,
    labelled: result.labelled,
    usesImages: result.usesImages,
    passed: result.failed.length === 0,
    failed: result.failed,
    elapsedSeconds: result.elapsedSeconds,
    checks: result.checks,
  };
}

/** One JUnit test case per check; a failure quotes up to maxListed offending rows. */
export function checkJUnit(result: CheckResult, maxListed: number): string {
  const cases: JUnitCase[] = result.checks.map((c) => {
    const base = { name: c.name, classname: 'categorize.check', time: 0 };
    if (c.status === 'skip') return { ...base, skipped: { message: c.skipReason ?? 'skipped' } };
    if (c.status === 'pass') return { ...base, systemOut: c.message };
    const listed = listedFindings(c);
    const lines = [c.message, ...listed.slice(0, maxListed).map(formatFinding)];
    if (listed.length > maxListed) lines.push(`… and ${listed.length - maxListed} more (all of them in --json)`);
    return { ...base, failure: { message: c.message, type: 'threshold', text: lines.join('\n') } };
  });
  return renderJUnit([
    {
      name: 'categorize check',
      // The checks share one pass over the catalog, so the time belongs to the suite, not to any one case.
      time: result.elapsedSeconds,
      timestamp: result.startedAt,
      properties: [
        ['model', result.model],
        ['input', result.inputPath ?? 'stdin'],
        ['rows', String(result.rows)],
      ],
      cases,
    },
  ]);
}

/**
 * GitHub Actions workflow commands: a warning on the file's line for each offending row (failing checks first, at
 * most maxAnnotations, since GitHub shows only so many), a notice saying how many were left out, and an error per
 * failing check.
 */
export function checkAnnotations(result: CheckResult, opts: { file: string; maxAnnotations: number }): string[] {
  const ran = result.checks.filter((c) => c.status !== 'skip');
  const ordered = [...ran.filter((c) => c.status === 'fail'), ...ran.filter((c) => c.status === 'pass')];
  const all = ordered.flatMap((c) => c.findings.map((f) => ({ check: c.name, f })));
  const lines = all.slice(0, opts.maxAnnotations).map(({ check, f }) =>
    formatAnnotation({ level: 'warning', file: opts.file, line: f.line, title: check, message: `id ${f.id}: ${f.detail}` }),
  );
  const leftOut = all.length - lines.length;
  if (leftOut > 0) {
    lines.push(
      formatAnnotation({
        level: 'notice',
        title: 'categorize check',
        message: `${plural(leftOut, 'more finding was', 'more findings were')} not annotated (--max-annotations ${opts.maxAnnotations}); --json lists them all`,
      }),
    );
  }
  for (const c of result.checks.filter((c) => c.status === 'fail')) {
    lines.push(formatAnnotation({ level: 'error', title: 'categorize check', message: `${c.name} failed: ${c.message}` }));
  }
  return lines;
}
