// The evaluation report as one self-contained HTML page: inline CSS, no scripts, nothing fetched, so it opens
// offline and from a mail attachment. Every label, title and id is user data and goes through escapeHtml; photos
// are embedded as data: URIs of JPEG bytes (src/report/thumbnail.ts), never a URL or path from the catalog.
import { compareCodePoints } from '../head/labels.js';
import type { EvalMetrics } from './metrics.js';
import type { PathMetrics } from './path-metrics.js';
import { thinCurve, type CalibrationReport } from './calibration-report.js';
import { ECE_BINS, calibrationSteps, type CalibrationFigures } from '../head/calibration.js';
import type { Thumbnail } from './thumbnail.js';

export interface ConfusedExample {
  id: string;
  title: string;
  /** Probability of the (wrong) predicted class; null when unknown. */
  score: number | null;
  /** The row's photo; null or absent when it has none or it could not be read. */
  thumbnail?: Thumbnail | null;
}

/** A row among the least confident of the eval: its top-1 (a path bundle: full path) probability is among the lowest. */
export interface LowConfidenceRow {
  id: string;
  title: string;
  trueLabel: string;
  predLabel: string;
  score: number;
  thumbnail?: Thumbnail | null;
}

export interface ConfusedPairExamples {
  trueLabel: string;
  predLabel: string;
  count: number;
  examples: ConfusedExample[];
}

export interface ReportMeta {
  model: string;
  input: string;
  createdAt: string;
  toolVersion: string;
}

export interface EvalReportInput {
  metrics: EvalMetrics;
  /** A path bundle's figures (levels, hierarchical, the curve over --min-path-score); null or absent: no section. */
  paths?: PathMetrics | null;
  /** Calibration figures, reliability, the precision–coverage curve and targets; null or absent: no section. */
  calibration?: CalibrationReport | null;
  confusedExamples: ConfusedPairExamples[];
  /** The least confident rows, lowest score first; null or absent: no section. */
  lowConfidence?: LowConfidenceRow[] | null;
  meta: ReportMeta;
  /** eval --ablation: each head alone, then fused (null or one entry: no section). */
  ablation?: readonly { name: string; predicted: number; metrics: EvalMetrics }[] | null;
  /** The bundle's fusion weights and how they were chosen. */
  fusion?: { heads: { name: string; weight: number }[]; selection: Record<string, unknown> | null } | null;
  /** The bundle's attributes judged against their columns: one section each (headline, ablation, per class, confusion). */
  attributes?: readonly AttributeReportSection[];
}

export interface AttributeReportSection {
  name: string;
  metrics: EvalMetrics;
  ablation: readonly { name: string; predicted: number; metrics: EvalMetrics }[] | null;
  fusion: EvalReportInput['fusion'];
}

/** An attribute's section: its figures as the category's, under its own heading. */
function attributeSection(a: AttributeReportSection): string {
  const id = `attribute-${a.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    `<section id="${escapeHtml(id)}"><h2>Attribute: ${escapeHtml(a.name)}</h2>\n${headline(a.metrics)}\n` +
    (a.ablation && a.ablation.length > 1 ? `<h3>Ablation: each modality alone and fused</h3>\n${ablationSection(a.ablation, a.fusion)}\n` : '') +
    `<h3>Per value</h3>\n${classTable(a.metrics)}\n<h3>Confusion matrix</h3>\n${heatmap(a.metrics)}</section>`
  );
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe both as element text and inside a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const fix = (x: number) => x.toFixed(4);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Cell colour from the row-normalised share: the diagonal (correct) in blue, confusions in red, both from
 * near-white at 0 to saturated at 1, so a bright red cell is a large share of that true class going astray.
 */
function cellStyle(share: number, diagonal: boolean): { background: string; dark: boolean } {
  const lightness = 97 - 60 * Math.sqrt(share); // sqrt: small shares stay visible next to a dominant diagonal
  const hue = diagonal ? 212 : 4;
  const sat = diagonal ? 68 : 72;
  return { background: `hsl(${hue} ${sat}% ${lightness.toFixed(1)}%)`, dark: lightness < 62 };
}

const CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5d6677; --line: #dde1e8; --bg: #fff; --soft: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; font-weight: 600; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0 0; color: var(--muted); }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 20px; }
.card { min-width: 150px; padding: 12px 16px; border: 1px solid var(--line); border-radius: 8px; background: var(--soft); }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .s { color: var(--muted); font-size: 12px; }
.notes { margin: 16px 0 0; padding: 10px 14px; border-left: 4px solid #e0a100; background: #fff8e5; }
.notes p { margin: 4px 0; }
table { border-collapse: collapse; }
.classes td, .classes th, .examples td, .examples th { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; }
.classes th, .examples th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--bg); }
.classes-wrap.long { max-height: 60vh; overflow: auto; width: fit-content; max-width: 100%; border: 1px solid var(--line); border-radius: 6px; }
.classes tr.mine td { font-weight: 650; background: #fff1ee; }
.classes-wrap.long thead th { position: sticky; top: 0; z-index: 1; }
.num { text-align: right !important; font-variant-numeric: tabular-nums; white-space: nowrap; }
.lab { overflow-wrap: anywhere; }
.classes .lab { max-width: 28em; }
.bar { display: inline-block; width: 90px; height: 8px; border-radius: 4px; background: #e8ebf0; vertical-align: middle; overflow: hidden; }
.bar span { display: block; height: 100%; background: hsl(212 60% 50%); }
.zero td { color: var(--muted); }
.badge { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; font-size: 11px; background: #fde8e6; color: #a0281c; white-space: nowrap; }
.badge.info { background: #eef1f5; color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; margin: 0 0 10px; color: var(--muted); font-size: 12px; }
.legend i { display: inline-block; width: 120px; height: 10px; border-radius: 3px; vertical-align: middle; margin: 0 6px; }
.hm-wrap { overflow: auto; width: fit-content; max-width: 100%; max-height: 85vh; border: 1px solid var(--line); border-radius: 6px; }
.hm { font-size: 12px; font-variant-numeric: tabular-nums; }
.hm th { background: var(--bg); font-weight: 500; }
.hm thead th { position: sticky; top: 0; z-index: 2; vertical-align: bottom; padding: 6px 0 4px; border-bottom: 1px solid #b9c0cc; }
.hm tbody th { position: sticky; left: 0; z-index: 1; text-align: right; padding: 0 8px 0 10px; max-width: 17em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; border-right: 1px solid #b9c0cc; }
.hm thead th.corner { left: 0; z-index: 3; text-align: right; padding: 6px 8px; color: var(--muted); font-size: 11px; border-right: 1px solid #b9c0cc; }
.hm .col div { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; max-height: 13em; overflow: hidden; text-overflow: ellipsis; margin: 0 auto; }
.hm td { width: 40px; min-width: 40px; height: 30px; text-align: center; border: 1px solid #fff; padding: 0; }
.hm td.dark { color: #fff; }
.hm td.z { color: transparent; background: #f7f8fa !important; }
.hm td.diag { outline: 1px solid hsl(212 40% 70%); outline-offset: -1px; }
.hm .tot { color: var(--muted); min-width: 44px; padding: 0 6px; text-align: right; border-left: 1px solid #b9c0cc; }
.hm.dense { font-size: 10px; }
.hm.dense td { width: 24px; min-width: 24px; height: 20px; }
.hm.dense thead th { font-size: 11px; }
.pairs { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 8px 28px; }
.pair h3 .n { color: var(--muted); font-weight: 400; }
.examples { width: 100%; font-size: 13px; }
.examples .id { white-space: nowrap; color: var(--muted); max-width: 12em; overflow: hidden; text-overflow: ellipsis; }
.examples td.photo { width: 104px; padding: 4px 8px 4px 0; text-align: center; vertical-align: middle; }
.examples td.photo img { display: block; margin: 0 auto; max-width: 96px; max-height: 96px; border-radius: 4px; background: var(--soft); }
.examples td.photo .none { color: var(--muted); font-size: 11px; }
.empty { color: var(--muted); font-style: italic; }
.figs { display: flex; flex-wrap: wrap; gap: 12px 28px; align-items: flex-start; }
.figs figure { margin: 0; }
.figs figcaption { color: var(--muted); font-size: 12px; }
.classes tr.fail td { background: #fde2dd; color: #8a1c10; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { .hm-wrap, .classes-wrap.long { max-height: none; overflow: visible; } body { padding: 0; } }
`;

function card(key: string, value: string, sub = ''): string {
  return `<div class="card"><div class="k">${key}</div><div class="v">${value}</div>${sub ? `<div class="s">${sub}</div>` : ''}</div>`;
}

function headline(m: EvalMetrics): string {
  const cards = [
    card('Accuracy', pct(m.accuracy), `${m.correct} of ${plural(m.n, 'row')}`),
    card('Macro F1', fix(m.macroF1), `unweighted mean over ${plural(m.perClass.length, 'label')}`),
    card('Weighted F1', fix(m.weightedF1), 'weighted by support'),
    card(`Top-${m.topK} accuracy`, pct(m.top3Accuracy), `true label among the first ${m.topK}`),
    card('Rows', String(m.n), m.failed > 0 ? `${m.failed} without a prediction` : 'all predicted'),
  ];
  const notes: string[] = [];
  if (m.failed > 0) {
    notes.push(
      `<p><b>${plural(m.failed, 'row')}</b> got no prediction (errors during the run). They count as wrong in accuracy ` +
        `and top-${m.topK}, and are left out of the per-class figures, the F1 averages and the confusion matrix.</p>`,
    );
  }
  if (m.unseenLabels.length > 0) {
    const rows = m.unseenLabels.reduce((s, u) => s + u.count, 0);
    const list = m.unseenLabels.map((u) => `<span class="lab">${escapeHtml(u.label)}</span> (${u.count})`).join(', ');
    notes.push(`<p><b>${plural(rows, 'row')}</b> carry labels the model does not know, counted as errors: ${list}.</p>`);
  }
  return `<div class="cards">${cards.join('')}</div>${notes.length ? `<div class="notes">${notes.join('')}</div>` : ''}`;
}

function classTable(m: EvalMetrics): string {
  const unseen = new Set(m.unseenLabels.map((u) => u.label));
  const rows = [...m.perClass]
    .sort((a, b) => b.support - a.support || compareCodePoints(a.label, b.label))
    .map((c) => {
      const badge = unseen.has(c.label)
        ? '<span class="badge">not a model class</span>'
        : c.support === 0
          ? '<span class="badge info">predicted only</span>'
          : '';
      return (
        `<tr${c.support === 0 ? ' class="zero"' : ''}><td class="lab">${escapeHtml(c.label)}${badge}</td>` +
        `<td class="num">${c.support}</td><td class="num">${fix(c.precision)}</td><td class="num">${fix(c.recall)}</td>` +
        `<td class="num">${fix(c.f1)}</td><td><span class="bar"><span style="width:${(100 * c.f1).toFixed(1)}%"></span></span></td></tr>`
      );
    });
  return (
    `<div class="classes-wrap${rows.length > 20 ? ' long' : ''}">` +
    '<table class="classes"><thead><tr><th>Label</th><th class="num">Support</th><th class="num">Precision</th>' +
    `<th class="num">Recall</th><th class="num">F1</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`
  );
}

function heatmap(m: EvalMetrics): string {
  const { labels, matrix } = m.confusion;
  if (labels.length === 0) return '<p class="empty">No rows with a prediction.</p>';
  const esc = labels.map(escapeHtml);
  const head = esc.map((l) => `<th class="col" scope="col" title="${l}"><div>${l}</div></th>`).join('');
  const body = matrix.map((row, i) => {
    const total = row.reduce((s, x) => s + x, 0);
    const cells = row.map((count, j) => {
      const share = total > 0 ? count / total : 0;
      const diag = i === j;
      const { background, dark } = cellStyle(share, diag);
      const cls = ['hm-cell', diag ? 'diag' : '', count === 0 ? 'z' : dark ? 'dark' : ''].filter(Boolean).join(' ');
      const tip = `true: ${esc[i]}&#10;predicted: ${esc[j]}&#10;${plural(count, 'row')}${total > 0 ? ` (${pct(share)} of this true label)` : ''}`;
      return `<td class="${cls}" style="background:${background}" title="${tip}">${count}</td>`;
    });
    return `<tr><th scope="row" title="${esc[i]}">${esc[i]}</th>${cells.join('')}<td class="tot">${total}</td></tr>`;
  });
  const dense = labels.length > 16 ? ' dense' : '';
  const legend =
    `<div class="legend"><span>Colour: share of the true label's rows (row-normalised).</span>` +
    `<span>correct<i style="background:linear-gradient(to right, hsl(212 68% 97%), hsl(212 68% 37%))"></i></span>` +
    `<span>confused<i style="background:linear-gradient(to right, hsl(4 72% 97%), hsl(4 72% 37%))"></i></span>` +
    `<span>Rows: true label · columns: predicted label · last column: rows per true label.</span></div>`;
  return (
    `${legend}<div class="hm-wrap"><table class="hm${dense}"><thead><tr><th class="corner">true ↓ · predicted →</th>${head}` +
    `<th class="col tot" scope="col"><div>rows</div></th></tr></thead><tbody>${body.join('')}</tbody></table></div>`
  );
}

/** What a thumbnail's src may be: base64 JPEG bytes, nothing else (a defence in depth: it is built from bytes). */
const DATA_URI = /^data:image\/jpeg;base64,[A-Za-z0-9+/]+={0,2}$/;

/** A photo cell: the thumbnail, or a quiet note when the row has none (no image, or one that could not be read). */
function photoCell(t: Thumbnail | null | undefined): string {
  if (!t || !DATA_URI.test(t.src)) return '<td class="photo"><span class="none">no photo</span></td>';
  const w = Math.max(1, Math.round(t.width));
  const h = Math.max(1, Math.round(t.height));
  return `<td class="photo"><img src="${t.src}" width="${w}" height="${h}" alt=""></td>`;
}

/** Whether a table gets a photo column: only when one of its rows has a photo to show. */
const anyPhoto = (rows: readonly { thumbnail?: Thumbnail | null }[]) => rows.some((r) => r.thumbnail && DATA_URI.test(r.thumbnail.src));

function pairs(list: ConfusedPairExamples[]): string {
  if (list.length === 0) return '<p class="empty">No confused pairs to show.</p>';
  const sections = list.map((p) => {
    const photos = anyPhoto(p.examples);
    const rows = p.examples.map(
      (e) =>
        `<tr>${photos ? photoCell(e.thumbnail) : ''}<td class="id" title="${escapeHtml(e.id)}">${escapeHtml(e.id)}</td><td class="lab">${escapeHtml(e.title)}</td>` +
        `<td class="num">${e.score === null ? '—' : e.score.toFixed(3)}</td></tr>`,
    );
    const table = rows.length
      ? `<table class="examples"><thead><tr>${photos ? '<th>photo</th>' : ''}<th>id</th><th>title</th><th class="num" title="probability of the predicted class">score</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
      : '<p class="empty">No example rows.</p>';
    return (
      `<section class="pair"><h3><span class="lab">${escapeHtml(p.trueLabel)}</span> → <span class="lab">${escapeHtml(p.predLabel)}</span> ` +
      `<span class="n">${plural(p.count, 'row')}</span></h3>${table}</section>`
    );
  });
  return `<div class="pairs">${sections.join('')}</div>`;
}

/** The least confident rows: where a person reviewing the model's answers would look first. */
function lowConfidenceSection(list: LowConfidenceRow[]): string {
  if (list.length === 0) return '<p class="empty">No row has a score.</p>';
  const photos = anyPhoto(list);
  const rows = list.map(
    (r) =>
      `<tr>${photos ? photoCell(r.thumbnail) : ''}<td class="id" title="${escapeHtml(r.id)}">${escapeHtml(r.id)}</td><td class="lab">${escapeHtml(r.title)}</td>` +
      `<td class="lab">${escapeHtml(r.trueLabel)}</td><td class="lab">${escapeHtml(r.predLabel)}${r.predLabel === r.trueLabel ? '' : '<span class="badge">wrong</span>'}</td>` +
      `<td class="num">${r.score.toFixed(3)}</td></tr>`,
  );
  return (
    `<p>The ${plural(list.length, 'row')} with the lowest top-1 probability, lowest first.</p>` +
    `<table class="examples"><thead><tr>${photos ? '<th>photo</th>' : ''}<th>id</th><th>title</th><th>label</th><th>predicted</th>` +
    `<th class="num" title="probability of the predicted class">score</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/** Why the weights are 1 and 0 where training chose the text head alone over the fusion (target.ts chooseTextAlone). */
function textAloneSentence(selection: Record<string, unknown> | null): string {
  const t = selection?.textAlone as { chosen?: boolean; rows?: number; text?: { macroF1?: number }; fused?: { macroF1?: number } } | undefined;
  if (!t?.chosen || typeof t.text?.macroF1 !== 'number' || typeof t.fused?.macroF1 !== 'number') return '';
  return ` Training chose the text head alone: on ${t.rows} held-out rows its macro-F1 ${fix(t.text.macroF1)} was at least the fusion's ${fix(t.fused.macroF1)}.`;
}

/** Ablation: the variants' headline figures, then per-class F1 side by side (best of a row in bold). */
function ablationSection(variants: NonNullable<EvalReportInput['ablation']>, fusion: EvalReportInput['fusion']): string {
  const label = (name: string) => (name === 'fused' ? 'fused' : `${escapeHtml(name)} only`);
  const weights = fusion
    ? `<p>Fusion weights (learned on held-out training rows${typeof fusion.selection?.rows === 'number' ? `, ${fusion.selection.rows} of them` : ''}): ` +
      fusion.heads.map((h) => `<b>${escapeHtml(h.name)}</b> ${h.weight.toFixed(2)}`).join(', ') +
      '. A row without one modality is predicted from the other head alone.' +
      textAloneSentence(fusion.selection) +
      '</p>'
    : '';
  const fused = variants.find((v) => v.name === 'fused') ?? variants[variants.length - 1]!;
  const summary =
    '<table class="classes ablation"><thead><tr><th>Variant</th><th class="num">Rows</th><th class="num">Accuracy</th>' +
    '<th class="num">Macro F1</th><th class="num">Weighted F1</th><th class="num">Top-3</th></tr></thead><tbody>' +
    variants
      .map(
        (v) =>
          `<tr><td>${label(v.name)}</td><td class="num">${v.predicted} / ${fused.metrics.n}</td><td class="num">${pct(v.metrics.accuracy)}</td>` +
          `<td class="num">${fix(v.metrics.macroF1)}</td><td class="num">${fix(v.metrics.weightedF1)}</td><td class="num">${pct(v.metrics.top3Accuracy)}</td></tr>`,
      )
      .join('') +
    '</tbody></table>';
  const f1 = variants.map((v) => new Map(v.metrics.perClass.map((c) => [c.label, c.f1])));
  const rows = [...fused.metrics.perClass]
    .filter((c) => c.support > 0)
    .sort((a, b) => b.support - a.support || compareCodePoints(a.label, b.label))
    .map((c) => {
      const vals = f1.map((m) => m.get(c.label) ?? 0);
      const best = Math.max(...vals);
      return (
        `<tr><td class="lab">${escapeHtml(c.label)}</td><td class="num">${c.support}</td>` +
        vals.map((x) => `<td class="num">${x === best ? `<b>${fix(x)}</b>` : fix(x)}</td>`).join('') +
        '</tr>'
      );
    });
  const perClass =
    `<div class="classes-wrap${rows.length > 20 ? ' long' : ''}"><table class="classes"><thead><tr><th>Label</th><th class="num">Support</th>` +
    variants.map((v) => `<th class="num">F1 ${label(v.name)}</th>`).join('') +
    `</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
  return `${weights}${summary}<h3>Per-class F1</h3>${perClass}<p class="note">Each head is scored alone on the rows that have its modality; fused on every row.</p>`;
}

/**
 * The hierarchical precision–recall curve as --min-path-score moves, as an inline SVG (no script): recall across,
 * precision up, axes zoomed to the points, the bundle's threshold marked; each point names its threshold.
 */
export function pathCurveSvg(m: PathMetrics): string {
  const W = 560;
  const H = 360;
  const pad = { l: 56, r: 20, t: 16, b: 44 };
  const pts = m.curve;
  const span = (xs: number[]) => {
    const lo = Math.max(0, Math.min(...xs) - 0.02);
    const hi = Math.min(1, Math.max(...xs) + 0.02);
    return hi - lo < 0.05 ? [Math.max(0, hi - 0.05), hi] : [lo, hi];
  };
  const [x0, x1] = span(pts.map((p) => p.recall));
  const [y0, y1] = span(pts.map((p) => p.precision));
  const X = (v: number) => pad.l + ((v - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const Y = (v: number) => H - pad.b - ((v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const ticks = (lo: number, hi: number) => Array.from({ length: 6 }, (_, i) => lo + ((hi - lo) * i) / 5);
  const grid =
    ticks(x0, x1).map((v) => `<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${pad.t}" y2="${H - pad.b}" class="g"/><text x="${X(v).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle">${v.toFixed(3)}</text>`).join('') +
    ticks(y0, y1).map((v) => `<line x1="${pad.l}" x2="${W - pad.r}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" class="g"/><text x="${pad.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(3)}</text>`).join('');
  const line = pts.map((p) => `${X(p.recall).toFixed(1)},${Y(p.precision).toFixed(1)}`).join(' ');
  const dots = pts
    .map((p) => {
      const mine = p.minPathScore === m.minPathScore;
      const tip = `min-path-score ${p.minPathScore}: hP ${fix(p.precision)}, hR ${fix(p.recall)}, hF ${fix(p.f1)}; answered ${pct(p.answered)}, full depth ${pct(p.complete)}`;
      return `<circle cx="${X(p.recall).toFixed(1)}" cy="${Y(p.precision).toFixed(1)}" r="${mine ? 6 : 3}" class="${mine ? 'mine' : 'pt'}"><title>${escapeHtml(tip)}</title></circle>`;
    })
    .join('');
  const me = m.at;
  const label = `<text x="${(X(me.recall) - 8).toFixed(1)}" y="${(Y(me.precision) - 10).toFixed(1)}" text-anchor="end" class="lbl">min-path-score ${m.minPathScore}</text>`;
  return (
    `<svg class="curve" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="hierarchical precision against recall as min-path-score moves">` +
    `<style>.curve text{font:11px system-ui,sans-serif;fill:#5d6677}.curve .g{stroke:#eef0f4}.curve .pt{fill:#2f6fd0}.curve .mine{fill:#d0452f}.curve .lbl{fill:#d0452f;font-weight:600}</style>` +
    grid +
    `<polyline points="${line}" fill="none" stroke="#2f6fd0" stroke-width="1.5"/>${dots}${label}` +
    `<text x="${((pad.l + W - pad.r) / 2).toFixed(0)}" y="${H - 8}" text-anchor="middle">hierarchical recall</text>` +
    `<text transform="translate(14 ${((pad.t + H - pad.b) / 2).toFixed(0)}) rotate(-90)" text-anchor="middle">hierarchical precision</text></svg>`
  );
}

/** Category paths: the headline hierarchical figures, each level, and the curve as the threshold moves. */
function pathSection(m: PathMetrics): string {
  const cards =
    '<div class="cards">' +
    card('exact path', pct(m.exactPath), 'most probable full path') +
    card('hierarchical F1', fix(m.at.f1), `hP ${fix(m.at.precision)} · hR ${fix(m.at.recall)}`) +
    card('answered', pct(m.at.answered), `${pct(m.at.complete)} to full depth`) +
    '</div>';
  const levels =
    '<table class="classes"><thead><tr><th>Level</th><th class="num">Rows</th><th class="num">Accuracy</th><th class="num">Macro F1</th></tr></thead><tbody>' +
    m.levels.map((l) => `<tr><td>${l.level}</td><td class="num">${l.rows}</td><td class="num">${pct(l.accuracy)}</td><td class="num">${fix(l.macroF1)}</td></tr>`).join('') +
    '</tbody></table>';
  const rows = m.curve
    .map(
      (c) =>
        `<tr${c.minPathScore === m.minPathScore ? ' class="mine"' : ''}><td class="num">${c.minPathScore}</td><td class="num">${fix(c.precision)}</td><td class="num">${fix(c.recall)}</td>` +
        `<td class="num">${fix(c.f1)}</td><td class="num">${pct(c.answered)}</td><td class="num">${pct(c.complete)}</td></tr>`,
    )
    .join('');
  const table =
    '<table class="classes"><thead><tr><th class="num">min-path-score</th><th class="num">hP</th><th class="num">hR</th><th class="num">hF</th><th class="num">Answered</th><th class="num">Full depth</th></tr></thead>' +
    `<tbody>${rows}</tbody></table>`;
  return (
    `${cards}<p>Answers stop at the deepest node whose probability (summed over the classes below it) reaches --min-path-score, here ${m.minPathScore}. ` +
    'Hierarchical precision and recall compare each answer and each true path with their ancestors, summed over rows (Kiritchenko et al.); a row with no answer costs recall only.</p>' +
    `<h3>By level (on the path the answers descend along)</h3>${levels}<h3>Precision against recall as --min-path-score moves</h3>${pathCurveSvg(m)}${table}`
  );
}

const maybe = (x: number | null | undefined, f: (x: number) => string = fix) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : f(x));
const pct1 = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * A reliability diagram as an inline SVG: per bin of the top-1 probability, the share of its rows that were right
 * (bar) against their mean confidence (the red band between them is the bin's gap), the diagonal where the two agree,
 * and each bin's row count above it.
 */
export function reliabilitySvg(f: CalibrationFigures, caption: string): string {
  const W = 400;
  const H = 380;
  const pad = { l: 48, r: 12, t: 40, b: 44 };
  const X = (v: number) => pad.l + v * (W - pad.l - pad.r);
  const Y = (v: number) => H - pad.b - v * (H - pad.t - pad.b);
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const grid =
    ticks.map((v) => `<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${pad.t}" y2="${H - pad.b}" class="g"/><text x="${X(v).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle">${v.toFixed(1)}</text>`).join('') +
    ticks.map((v) => `<line x1="${pad.l}" x2="${W - pad.r}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" class="g"/><text x="${pad.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}</text>`).join('');
  const bars = f.bins
    .filter((b) => b.count > 0)
    .map((b) => {
      const acc = b.accuracy!;
      const conf = b.confidence!;
      const x = X(b.lower) + 1;
      const w = X(b.upper) - X(b.lower) - 2;
      const tip = `top-1 probability (${b.lower.toFixed(3)}, ${b.upper.toFixed(3)}]: ${plural(b.count, 'row')}, mean confidence ${fix(conf)}, accuracy ${fix(acc)}`;
      const gapTop = Y(Math.max(acc, conf));
      const gap = `<rect x="${x.toFixed(1)}" y="${gapTop.toFixed(1)}" width="${w.toFixed(1)}" height="${(Y(Math.min(acc, conf)) - gapTop).toFixed(1)}" class="gap"/>`;
      const cx = x + w / 2;
      const count = `<text transform="translate(${(cx + 3).toFixed(1)} ${(gapTop - 4).toFixed(1)}) rotate(-90)" class="n">${b.count}</text>`;
      return (
        `<g class="bin"><title>${escapeHtml(tip)}</title><rect x="${x.toFixed(1)}" y="${Y(acc).toFixed(1)}" width="${w.toFixed(1)}" height="${(Y(0) - Y(acc)).toFixed(1)}" class="acc"/>` +
        `${gap}<line x1="${x.toFixed(1)}" x2="${(x + w).toFixed(1)}" y1="${Y(conf).toFixed(1)}" y2="${Y(conf).toFixed(1)}" class="conf"/>${count}</g>`
      );
    })
    .join('');
  return (
    `<figure><svg class="rel" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="reliability diagram: ${escapeHtml(caption)}">` +
    `<style>.rel text{font:11px system-ui,sans-serif;fill:#5d6677}.rel .g{stroke:#eef0f4}.rel .acc{fill:hsl(212 60% 55%)}.rel .gap{fill:#d0452f;fill-opacity:.3}` +
    `.rel .conf{stroke:#d0452f;stroke-width:1.5}.rel .diag{stroke:#1d2330;stroke-dasharray:4 3}.rel .n{font-size:9px}</style>` +
    grid +
    bars +
    `<line x1="${X(0)}" y1="${Y(0)}" x2="${X(1)}" y2="${Y(1)}" class="diag"/>` +
    `<text x="${((pad.l + W - pad.r) / 2).toFixed(0)}" y="${H - 8}" text-anchor="middle">top-1 probability (${ECE_BINS} bins; red line: bin's mean)</text>` +
    `<text transform="translate(14 ${((pad.t + H - pad.b) / 2).toFixed(0)}) rotate(-90)" text-anchor="middle">accuracy (share right)</text></svg>` +
    `<figcaption>${escapeHtml(caption)}: ECE ${maybe(f.ece)} over ${plural(f.rows, 'row')}; numbers above the bars: rows per bin</figcaption></figure>`
  );
}

/** Points of the curve an SVG draws (a polyline of ten thousand points says no more than one of a few hundred). */
const CURVE_POINTS = 400;

/**
 * The precision–coverage curve of the eval rows as an inline SVG: coverage across, precision up (zoomed to the curve
 * past its first few noisy rows), each target's precision as a dashed line and its threshold's realized coverage
 * and precision as a labelled point.
 */
export function precisionCoverageSvg(c: CalibrationReport): string {
  const pts = thinCurve(c.curve, CURVE_POINTS);
  if (pts.length === 0) return '<p class="empty">No row has a score: no curve to draw.</p>';
  const W = 560;
  const H = 360;
  const pad = { l: 56, r: 20, t: 16, b: 44 };
  const marks = c.targets.filter((t) => t.eval && t.eval.precision !== null);
  // The first rows' precision swings between 0 and 1: the axis follows the curve from 5% coverage on, and the targets.
  const settled = pts.filter((p) => p.coverage >= 0.05);
  const lows = [...(settled.length ? settled : pts).map((p) => p.precision), ...c.targets.map((t) => t.target), ...marks.map((t) => t.eval!.precision!)];
  // Five gridlines a round step apart, down to just below the lowest of them.
  const step = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2].find((s) => 1 - 5 * s <= Math.min(...lows) - 0.005) ?? 0.2;
  const y0 = Math.max(0, 1 - 5 * step);
  const y1 = 1;
  const X = (v: number) => pad.l + v * (W - pad.l - pad.r);
  const Y = (v: number) => H - pad.b - ((v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const ticks = (lo: number, hi: number) => Array.from({ length: 6 }, (_, i) => lo + ((hi - lo) * i) / 5);
  const grid =
    ticks(0, 1).map((v) => `<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${pad.t}" y2="${H - pad.b}" class="g"/><text x="${X(v).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle">${pct(v).replace('.00', '')}</text>`).join('') +
    ticks(y0, y1).map((v) => `<line x1="${pad.l}" x2="${W - pad.r}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" class="g"/><text x="${pad.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(3)}</text>`).join('');
  const line = pts.map((p) => `${X(p.coverage).toFixed(1)},${Y(p.precision).toFixed(1)}`).join(' ');
  const targetLines = c.targets
    .map((t) => `<line x1="${pad.l}" x2="${W - pad.r}" y1="${Y(t.target).toFixed(1)}" y2="${Y(t.target).toFixed(1)}" class="tl"/><text x="${pad.l + 4}" y="${(Y(t.target) - 3).toFixed(1)}" class="tt">target ${t.target}</text>`)
    .join('');
  // Labels left of their points, pushed apart where points crowd (targets a few rows apart), a leader line back.
  let below = -Infinity;
  const dots = marks
    .map((t) => ({ t, cx: X(t.eval!.coverage), cy: Y(t.eval!.precision!) }))
    .sort((a, b) => a.cy - b.cy)
    .map(({ t, cx, cy }) => {
      const e = t.eval!;
      const ly = Math.max(cy + 4, below + 13);
      below = ly;
      const tip = `target ${t.target}: score ≥ ${fix(t.threshold!)} accepts ${e.accepted} of ${c.rows} rows (${pct1(e.coverage)}), precision ${fix(e.precision!)}`;
      const cls = t.gate && !t.gate.passed ? 'fail' : 'mine';
      const leader = ly - cy > 8 ? `<line x1="${(cx - 12).toFixed(1)}" y1="${(ly - 4).toFixed(1)}" x2="${(cx - 4).toFixed(1)}" y2="${(cy + 2).toFixed(1)}" class="ld"/>` : '';
      return (
        `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="5" class="${cls}"><title>${escapeHtml(tip)}</title></circle>${leader}` +
        `<text x="${(cx - 12).toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="end" class="lbl ${cls}">${t.target}: score ≥ ${fix(t.threshold!)}</text>`
      );
    })
    .join('');
  return (
    `<svg class="pc" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="precision against coverage as the score threshold moves, targets marked">` +
    `<style>.pc text{font:11px system-ui,sans-serif;fill:#5d6677}.pc .g{stroke:#eef0f4}.pc .tl{stroke:#e0a100;stroke-dasharray:5 4}.pc .tt{fill:#a07300}` +
    `.pc .mine{fill:#d0452f}.pc .fail{fill:#8a1c10}.pc .lbl{font-weight:600}.pc .ld{stroke:#5d6677}.pc text.mine{fill:#d0452f}.pc text.fail{fill:#8a1c10}</style>` +
    `<defs><clipPath id="pc-plot"><rect x="${pad.l}" y="${pad.t}" width="${W - pad.l - pad.r}" height="${H - pad.t - pad.b}"/></clipPath></defs>` +
    grid +
    targetLines +
    `<polyline points="${line}" fill="none" stroke="#2f6fd0" stroke-width="1.5" clip-path="url(#pc-plot)"/>${dots}` +
    `<text x="${((pad.l + W - pad.r) / 2).toFixed(0)}" y="${H - 8}" text-anchor="middle">coverage (share of rows accepted)</text>` +
    `<text transform="translate(14 ${((pad.t + H - pad.b) / 2).toFixed(0)}) rotate(-90)" text-anchor="middle">precision of the accepted rows</text></svg>`
  );
}

/** Calibration and decisions: the figures before and after, reliability diagrams, the curve and the targets. */
function calibrationSection(c: CalibrationReport): string {
  const b = c.bundle;
  const raw = c.raw;
  const sub = (k: 'ece' | 'brier' | 'logLoss') => (b && raw ? `raw ${maybe(raw[k])} · held-out ${maybe(b.after[k])}` : 'raw scores');
  const cards =
    '<div class="cards">' +
    card('ECE', maybe(c.figures.ece), sub('ece')) +
    card('Brier', maybe(c.figures.brier), sub('brier')) +
    card('Log-loss', maybe(c.figures.logLoss), sub('logLoss')) +
    '</div>';
  const names: [string, 'ece' | 'brier' | 'logLoss'][] = [['ECE', 'ece'], ['Brier', 'brier'], ['Log-loss', 'logLoss']];
  const figures =
    b && raw
      ? '<table class="classes"><thead><tr><th></th><th class="num">Eval, raw</th><th class="num">Eval, calibrated</th><th class="num">Held-out, raw</th><th class="num">Held-out, calibrated</th></tr></thead><tbody>' +
        names.map(([n, k]) => `<tr><td>${n}</td><td class="num">${maybe(raw[k])}</td><td class="num">${maybe(c.figures[k])}</td><td class="num">${maybe(b.before[k])}</td><td class="num">${maybe(b.after[k])}</td></tr>`).join('') +
        '</tbody></table>'
      : '<table class="classes"><thead><tr><th></th><th class="num">Eval</th></tr></thead><tbody>' +
        names.map(([n, k]) => `<tr><td>${n}</td><td class="num">${maybe(c.figures[k])}</td></tr>`).join('') +
        '</tbody></table>';
  const how = b
    ? `<p>${calibrationSentence(b)} ` +
      'Raw: the probabilities before that; held-out: what train measured on its own held-out rows.' +
      `${b.priorAlpha !== null ? ` The category answered is the most probable after dividing the probabilities by the class prior to the power ${b.priorAlpha} (chosen for held-out macro-F1): a row in doubt between a common and a rare class can be answered with the rare one; its score stays that category’s own probability.` : ''}</p>`
    : '<p class="notes">This bundle is not calibrated (trained without held-out rows, or by an older categorize): the figures are of its raw scores, and it stores no target thresholds.</p>';
  const errors = c.rows - c.scored;
  const explain =
    `<p>ECE: the ${ECE_BINS} equal-width bins of the top-1 probability, each bin’s |accuracy − mean confidence| weighted by its rows; ` +
    'Brier: the mean squared distance of the probabilities from the one-hot label; log-loss: the mean −log p(true label). Lower is better for all three.' +
    `${errors ? ` ${plural(errors, 'row')} without probabilities (errors) are left out of them.` : ''}</p>`;
  const diagrams =
    '<div class="figs">' +
    (b && raw ? reliabilitySvg(raw, 'raw probabilities') + reliabilitySvg(c.figures, 'calibrated probabilities') : reliabilitySvg(c.figures, 'raw probabilities')) +
    '</div>';
  const conf = Math.round(c.confidence * 100);
  const targets = c.targets.length
    ? '<table class="classes targets"><thead><tr><th class="num">Target</th><th class="num">Threshold</th><th class="num">Held-out coverage</th><th class="num">Held-out precision</th>' +
      `<th class="num">Eval accepted</th><th class="num">Eval coverage</th><th class="num">Eval precision</th><th class="num">Eval ${conf}% lower bound</th><th>Gate</th></tr></thead><tbody>` +
      c.targets
        .map((t) => {
          const cls = t.gate && !t.gate.passed ? ' class="fail"' : t.runDefault ? ' class="mine"' : '';
          const note = [t.runDefault ? 'run’s default' : '', t.stored ? '' : 'from the held-out curve'].filter(Boolean).join(', ');
          const gate = t.gate ? `${t.gate.passed ? 'pass' : '<b>fail</b>'} (≥ ${t.gate.minPrecision})` : '';
          return (
            `<tr${cls}><td class="num">${t.target}${note ? `<span class="badge info">${note}</span>` : ''}</td>` +
            `<td class="num"${t.reason ? ` title="${escapeHtml(t.reason)}"` : ''}>${t.threshold === null ? 'none' : fix(t.threshold)}</td>` +
            `<td class="num">${maybe(t.heldOut?.coverage, pct1)}</td><td class="num">${maybe(t.heldOut?.precision)}</td>` +
            `<td class="num">${t.eval ? `${t.eval.accepted} / ${c.rows}` : '—'}</td><td class="num">${maybe(t.eval?.coverage, pct1)}</td>` +
            `<td class="num">${maybe(t.eval?.precision)}</td><td class="num">${t.eval?.accepted ? fix(t.eval.lower) : '—'}</td><td>${gate}</td></tr>`
          );
        })
        .join('') +
      '</tbody></table>' +
      c.targets
        .filter((t) => t.threshold === null)
        .map((t) => `<p>Target ${t.target}: no threshold stored: ${escapeHtml(t.reason ?? '')}.</p>`)
        .join('')
    : `<p class="empty">${b ? 'No target precisions: train stored none (train --target-precision) and no --min-precision-at asked for one.' : 'No target precisions: an uncalibrated bundle has no thresholds to decide by.'}</p>`;
  return (
    `${cards}${how}${figures}${explain}<h3>Reliability</h3>${diagrams}` +
    `<h3>Precision against coverage</h3><p>Rows accepted when their decision score (the top-1 probability; a path bundle’s full path’s) reaches a threshold, from the highest down. ` +
    `Each target’s threshold was chosen on held-out rows by the ${conf}% lower bound of their precision; the points are what it accepts here, decided as run decides` +
    `${c.paths ? ' (a path bundle accepts a row only when its answer also reaches full depth at --min-path-score)' : ''}.</p>` +
    `${precisionCoverageSvg(c)}<h3>Target thresholds</h3>${targets}`
  );
}

/** Renders the whole report. The score column of the examples is the probability of the wrong prediction. */
export function renderEvalReport(input: EvalReportInput): string {
  const { metrics: m, meta } = input;
  const title = `Evaluation — ${meta.model}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="categorize ${escapeHtml(meta.toolVersion)}">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Evaluation report</h1>
<dl class="meta"><dt>Model</dt><dd>${escapeHtml(meta.model)}</dd><dt>Input</dt><dd>${escapeHtml(meta.input)}</dd><dt>Created</dt><dd>${escapeHtml(meta.createdAt)}</dd><dt>Tool</dt><dd>categorize ${escapeHtml(meta.toolVersion)}</dd></dl>
</header>
<main>
${headline(m)}
${input.paths ? `<h2>Category paths</h2>\n${pathSection(input.paths)}` : ''}
${input.calibration ? `<h2>Calibration and decisions</h2>\n${calibrationSection(input.calibration)}` : ''}
${input.ablation && input.ablation.length > 1 ? `<h2>Ablation: each modality alone and fused</h2>\n${ablationSection(input.ablation, input.fusion)}` : ''}
<h2>Per class</h2>
${classTable(m)}
<h2>Confusion matrix</h2>
${heatmap(m)}
<h2>Most confused pairs</h2>
${pairs(input.confusedExamples)}
${input.lowConfidence ? `<h2>Least confident rows</h2>\n${lowConfidenceSection(input.lowConfidence)}` : ''}
${(input.attributes ?? []).map(attributeSection).join('\n')}
</main>
<footer>Precision, recall and F1 follow scikit-learn with zero_division=0 over the labels that occur as true or predicted
labels; macro F1 is their unweighted mean, weighted F1 their support-weighted mean.</footer>
</body>
</html>
`;
}

/** What the bundle's calibration does, as fitted on its held-out rows at train time, and the steps it left out. */
function calibrationSentence(b: NonNullable<CalibrationReport['bundle']>): string {
  const steps = calibrationSteps(b);
  const done =
    steps.applied.length > 0
      ? `The bundle applies ${steps.applied.join(', then ')}, fitted on ${plural(b.rows, 'held-out row')} at train time (class names in the text raise the fused log-probabilities of the classes a row’s title or description names; a temperature divides the fused log-probabilities; top-label scaling rescales the top class’s probability).`
      : 'The bundle applies no calibration step: its scores are the heads’ fused probabilities.';
  const left = steps.leftOut.length > 0 ? ` Left out, because ${b.rows} held-out rows could not tell their gain from chance (likelihood-ratio test at 95%): ${escapeHtml(steps.leftOut.join(', '))}.` : '';
  return done + left;
}
