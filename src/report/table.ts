// The terminal summary of an evaluation: headline figures, per-class table by support, most confused pairs.
// Fixed-width columns measured in terminal cells, so accented, CJK and emoji labels still line up.
import { compareCodePoints } from '../head/labels.js';
import { mostConfusedPairs, type EvalMetrics } from './metrics.js';
import type { PathMetrics } from './path-metrics.js';
import { curveAtCoverage, type CalibrationReport } from './calibration-report.js';
import { ECE_BINS, calibrationSteps } from '../head/calibration.js';

export interface TableOptions {
  /** ANSI colours and bold; off for pipes and files. */
  color: boolean;
  /** Classes shown in the per-class table (largest support first); default all. */
  maxClasses?: number;
  /** Confused pairs listed; default 5. */
  topPairs?: number;
  /** Widest label column, in terminal cells; default 32. */
  maxLabelWidth?: number;
  /** The labels are category paths: the figures are over each row's most probable full path. */
  pathLabels?: boolean;
}

const ESC = '\u001b[';
type Style = 'bold' | 'dim' | 'red' | 'yellow' | 'green';
const CODES: Record<Style, string> = { bold: '1', dim: '2', red: '31', yellow: '33', green: '32' };

/** Terminal cells one code point takes: 0 for combining marks and zero-width characters, 2 for wide ones. */
function cellWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += cellWidth(ch.codePointAt(0)!);
  return w;
}

/** Labels are user data: control characters (ANSI escapes, newlines) would break the layout or the terminal. */
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Cuts `s` to at most `width` cells, marking the cut with an ellipsis. */
export function truncate(s: string, width: number): string {
  if (displayWidth(s) <= width) return s;
  let out = '';
  let w = 0;
  for (const ch of s) {
    const cw = cellWidth(ch.codePointAt(0)!);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return out + '…';
}

function padEnd(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - displayWidth(s)));
}

function padStart(s: string, width: number): string {
  return ' '.repeat(Math.max(0, width - displayWidth(s))) + s;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const fix = (x: number) => x.toFixed(4);

/** Formats the evaluation figures as plain fixed-width text, with ANSI styling only when `color` is set. */
export function formatMetricsTable(metrics: EvalMetrics, options: TableOptions): string {
  const paint = (s: string, ...styles: Style[]) =>
    options.color && styles.length > 0 ? `${ESC}${styles.map((st) => CODES[st]).join(';')}m${s}${ESC}0m` : s;
  const grade = (f1: number): Style => (f1 >= 0.8 ? 'green' : f1 >= 0.5 ? 'yellow' : 'red');
  const lines: string[] = [];

  const scored = metrics.n - metrics.failed;
  const what = options.pathLabels ? ' (category paths: figures over the most probable full path)' : '';
  lines.push(paint(`Evaluation: ${metrics.n} row${metrics.n === 1 ? '' : 's'}, ${metrics.confusion.labels.length} labels${what}`, 'bold'));
  const head = (name: string, value: string, extra = '') => lines.push(`  ${padEnd(name, 16)}${value}${extra}`);
  head(options.pathLabels ? 'exact path' : 'accuracy', paint(padStart(pct(metrics.accuracy), 8), 'bold'), `  (${metrics.correct} of ${metrics.n})`);
  head('macro F1', paint(padStart(fix(metrics.macroF1), 8), 'bold'));
  head('weighted F1', padStart(fix(metrics.weightedF1), 8));
  head(`top-${metrics.topK} accuracy`, padStart(pct(metrics.top3Accuracy), 8));
  if (metrics.failed > 0) {
    const why = ` rows without a prediction (counted as wrong; per-class figures use the other ${scored})`;
    head('failed', paint(padStart(String(metrics.failed), 8), 'yellow'), why);
  }
  if (metrics.unseenLabels.length > 0) {
    const rows = metrics.unseenLabels.reduce((s, u) => s + u.count, 0);
    const shown = metrics.unseenLabels.slice(0, 5).map((u) => `${truncate(clean(u.label), 24)} ×${u.count}`);
    const more = metrics.unseenLabels.length > 5 ? `, +${metrics.unseenLabels.length - 5} more` : '';
    head('unseen labels', paint(padStart(String(rows), 8), 'yellow'), ` rows labelled with classes the model lacks (counted as wrong): ${shown.join(', ')}${more}`);
  }

  const classes = [...metrics.perClass].sort((a, b) => b.support - a.support || compareCodePoints(a.label, b.label));
  const limit = Math.min(classes.length, options.maxClasses ?? classes.length);
  if (classes.length > 0) {
    const maxW = options.maxLabelWidth ?? 32;
    const names = classes.slice(0, limit).map((c) => truncate(clean(c.label), maxW));
    const lw = Math.max(5, ...names.map(displayWidth));
    const cols: [string, number][] = [['support', 7], ['precision', 9], ['recall', 7], ['F1', 7]];
    lines.push('');
    lines.push('  ' + paint(padEnd('class', lw) + cols.map(([h, w]) => '  ' + padStart(h, w)).join(''), 'bold'));
    lines.push('  ' + '─'.repeat(lw) + cols.map(([, w]) => '  ' + '─'.repeat(w)).join(''));
    classes.slice(0, limit).forEach((c, i) => {
      const row =
        padEnd(names[i]!, lw) +
        '  ' + padStart(String(c.support), 7) +
        '  ' + padStart(fix(c.precision), 9) +
        '  ' + padStart(fix(c.recall), 7) +
        '  ' + paint(padStart(fix(c.f1), 7), grade(c.f1));
      lines.push('  ' + (c.support === 0 ? paint(row, 'dim') : row));
    });
    if (limit < classes.length) {
      lines.push(paint(`  … ${classes.length - limit} more class${classes.length - limit === 1 ? '' : 'es'} with smaller support`, 'dim'));
    }
  }

  const pairs = mostConfusedPairs(metrics, options.topPairs ?? 5);
  if (pairs.length > 0) {
    lines.push('');
    lines.push(paint('  most confused (true → predicted)', 'bold'));
    const cw = Math.max(...pairs.map((p) => String(p.count).length));
    for (const p of pairs) {
      lines.push(`  ${padStart(String(p.count), cw + 2)}  ${truncate(clean(p.trueLabel), 40)} → ${truncate(clean(p.predLabel), 40)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** A path bundle's figures: each level, the hierarchical ones at the answer threshold, and how they move with it. */
export function formatPathTable(m: PathMetrics): string {
  const lines = [`Category paths: ${m.rows} rows; levels judged on the path the answers descend along`];
  const levelHead = ['level', 'rows', 'accuracy', 'macro F1'];
  const levelRows = m.levels.map((l) => [String(l.level), String(l.rows), pct(l.accuracy), fix(l.macroF1)]);
  lines.push(...grid(levelHead, levelRows));
  lines.push('');
  lines.push(
    `  at --min-path-score ${m.minPathScore}: hierarchical precision ${fix(m.at.precision)}, recall ${fix(m.at.recall)}, F1 ${fix(m.at.f1)}; ` +
      `answered ${pct(m.at.answered)} of rows at some level, ${pct(m.at.complete)} to full depth`,
  );
  lines.push('');
  lines.push('  as --min-path-score moves (hierarchical precision against recall):');
  const curveHead = ['min-path-score', 'hP', 'hR', 'hF', 'answered', 'full depth'];
  const curveRows = m.curve.map((c) => [
    `${c.minPathScore}${c.minPathScore === m.minPathScore ? ' ◀' : ''}`,
    fix(c.precision),
    fix(c.recall),
    fix(c.f1),
    pct(c.answered),
    pct(c.complete),
  ]);
  lines.push(...grid(curveHead, curveRows));
  return lines.join('\n');
}

/** A fixed-width grid: first column left-aligned, the others right-aligned. */
function grid(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, c) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[c]))));
  const line = (r: string[]) => '  ' + r.map((x, c) => (c === 0 ? padEnd(x, widths[c]) : padStart(x, widths[c]))).join('  ');
  return [line(head), '  ' + widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)];
}

/** eval --ablation: one line per variant (each head alone, then fused), the same figures side by side. */
/** The category and each attribute side by side (eval with an attribute bundle). */
export function formatAttributeTable(category: EvalMetrics, attributes: readonly { name: string; metrics: EvalMetrics }[]): string {
  const head = ['target', 'rows', 'labels', 'accuracy', 'macro F1', 'weighted F1', 'top-3'];
  const row = (name: string, m: EvalMetrics) => [name, String(m.n), String(m.confusion.labels.length), pct(m.accuracy), m.macroF1.toFixed(4), m.weightedF1.toFixed(4), pct(m.top3Accuracy)];
  return ['Category and attributes (each attribute over the rows with a value in its column)', ...grid(head, [row('category', category), ...attributes.map((a) => row(a.name, a.metrics))])].join('\n');
}

export function formatAblationTable(variants: readonly { name: string; predicted: number; metrics: EvalMetrics }[]): string {
  const head = ['variant', 'rows', 'accuracy', 'macro F1', 'weighted F1', 'top-3'];
  const rows = variants.map((v) => [
    v.name === 'fused' ? 'fused' : `${v.name} only`,
    `${v.predicted}/${variants[variants.length - 1]!.metrics.n}`,
    pct(v.metrics.accuracy),
    v.metrics.macroF1.toFixed(4),
    v.metrics.weightedF1.toFixed(4),
    pct(v.metrics.top3Accuracy),
  ]);
  return ['Ablation (same embeddings; each head alone on the rows that have its modality, fused on all rows)', ...grid(head, rows)].join('\n');
}

/** A figure that may be missing (no scored rows, no accepted rows). */
const maybe = (x: number | null | undefined, f: (x: number) => string = fix) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : f(x));
const pct1 = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Coverages the terminal lists the precision–coverage curve at. */
const TABLE_COVERAGES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

/**
 * eval's calibration section: ECE, Brier and log-loss (raw beside calibrated, and what train measured on its
 * held-out rows), the reliability bins, the precision–coverage curve, and each target's threshold with its held-out
 * and realized precision and coverage.
 */
export function formatCalibrationTable(c: CalibrationReport): string {
  const b = c.bundle;
  const how = b
    ? `${stepsOn(b)}${b.priorAlpha !== null ? `; the answer is the top class of the probabilities ÷ prior^${b.priorAlpha} (its score stays its own probability)` : ''}`
    : 'this bundle is not calibrated: figures of its raw scores, no target thresholds';
  const errors = c.rows - c.scored;
  const lines = [`Calibration: ${c.rows} rows${errors ? ` (${errors} without probabilities left out of the figures)` : ''}; top-1 probability in ${ECE_BINS} bins; ${how}`];
  const names: [string, 'ece' | 'brier' | 'logLoss'][] = [['ECE', 'ece'], ['Brier', 'brier'], ['log-loss', 'logLoss']];
  if (b && c.raw) {
    const raw = c.raw;
    lines.push(...grid(['', 'eval raw', 'eval calibrated', 'held-out raw', 'held-out calibrated'], names.map(([name, k]) => [name, maybe(raw[k]), maybe(c.figures[k]), maybe(b.before[k]), maybe(b.after[k])])));
  } else {
    lines.push(...grid(['', 'eval'], names.map(([name, k]) => [name, maybe(c.figures[k])])));
  }

  lines.push('');
  lines.push(`  reliability of the ${b ? 'calibrated' : 'raw'} scores (bins with rows; gap = accuracy − mean confidence):`);
  const bins = c.figures.bins.filter((x) => x.count > 0);
  lines.push(
    ...grid(
      ['top-1 probability', 'rows', 'mean confidence', 'accuracy', 'gap'],
      bins.map((x) => [`(${x.lower.toFixed(3)}, ${x.upper.toFixed(3)}]`, String(x.count), maybe(x.confidence), maybe(x.accuracy), maybe(x.accuracy! - x.confidence!, (g) => `${g >= 0 ? '+' : '−'}${Math.abs(g).toFixed(4)}`)]),
    ),
  );

  lines.push('');
  lines.push('  precision against coverage (rows accepted at each threshold of the decision score):');
  const points = curveAtCoverage(c.curve, TABLE_COVERAGES);
  lines.push(...grid(['coverage', 'threshold', 'precision', 'accepted'], points.map((p) => [pct1(p.coverage), fix(p.threshold), fix(p.precision), `${p.accepted}/${c.rows}`])));

  if (c.targets.length === 0) {
    lines.push('');
    lines.push(b ? '  no target precisions: train stored none (train --target-precision), and no --min-precision-at asked for one' : '  no target precisions: an uncalibrated bundle has no thresholds to decide by');
    return lines.join('\n');
  }
  lines.push('');
  const conf = Math.round(c.confidence * 100);
  lines.push(`  targets (eval: rows accepted as run decides them; lower: ${conf}% lower bound; ◀ run's default decision):`);
  if (c.paths) lines.push('  (a path bundle accepts a row only when its answer also reaches full depth at --min-path-score)');
  const head = ['target', 'threshold', 'held-out cov', 'held-out prec', 'eval accepted', 'eval cov', 'eval prec', 'eval lower'];
  const gates = c.targets.some((t) => t.gate);
  if (gates) head.push('--min-precision-at');
  const rows = c.targets.map((t) => {
    const row = [
      `${t.target}${t.runDefault ? ' ◀' : ''}${t.stored ? '' : ' *'}`,
      t.threshold === null ? 'none' : fix(t.threshold),
      maybe(t.heldOut?.coverage, pct1),
      maybe(t.heldOut?.precision),
      t.eval ? `${t.eval.accepted}/${c.rows}` : '—',
      maybe(t.eval?.coverage, pct1),
      maybe(t.eval?.precision),
      t.eval?.accepted ? fix(t.eval.lower) : '—',
    ];
    if (gates) row.push(t.gate ? `${t.gate.passed ? 'pass' : 'FAIL'} (≥ ${t.gate.minPrecision})` : '—');
    return row;
  });
  lines.push(...grid(head, rows));
  if (c.targets.some((t) => !t.stored)) lines.push("  * not stored by train: its threshold from the bundle's held-out curve, as run --target-precision finds it");
  for (const t of c.targets) if (t.threshold === null) lines.push(`  ${t.target}: no threshold stored (${t.reason})`);
  return lines.join('\n');
}

/** The bundle's calibration steps and the held-out rows they were fitted (or tested and left out) on. */
function stepsOn(b: NonNullable<CalibrationReport['bundle']>): string {
  const steps = calibrationSteps(b);
  const on = steps.applied.length > 0 ? `${steps.text}, fitted on ${b.rows} held-out rows` : `no calibration step kept on ${b.rows} held-out rows`;
  return steps.note ? `${on} (${steps.note})` : on;
}
