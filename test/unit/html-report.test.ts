// The HTML evaluation report: headline figures, one heatmap cell per confusion entry, user text escaped,
// nothing loaded from outside the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { computeMetrics, mostConfusedPairs, type EvalMetrics } from '../../src/report/metrics.js';
import { escapeHtml, renderEvalReport, type ConfusedPairExamples, type LowConfidenceRow } from '../../src/report/html-report.js';
import type { Thumbnail } from '../../src/report/thumbnail.js';

const EVIL = '<script>alert("x")</script>';
const meta = { model: 'models/demo', input: 'holdout.csv', createdAt: '2026-01-02T03:04:05Z', toolVersion: '0.1.0' };

function small(): EvalMetrics {
  const yTrue = ['Books', 'Books', 'Toys & Games', EVIL, 'Toys & Games', 'Books', 'Garden'];
  const yPred = ['Books', 'Toys & Games', 'Toys & Games', 'Books', null, 'Books', 'Garden'];
  const ranked = yPred.map((p) => (p === null ? [] : [p, 'Books', 'Garden']));
  return computeMetrics({ yTrue, yPred, ranked, modelClasses: ['Books', 'Garden', 'Toys & Games'] });
}

function examples(m: EvalMetrics): ConfusedPairExamples[] {
  return mostConfusedPairs(m, 5).map((p) => ({
    ...p,
    examples: [{ id: `id"><img src=x onerror=alert(1)>`, title: `Lego <b>set</b> & "more" ${EVIL}`, score: 0.8123 }],
  }));
}

/** The numbers shown in heatmap cells, in document order. */
function cellCounts(html: string): number[] {
  return [...html.matchAll(/<td class="hm-cell[^"]*"[^>]*>(\d+)<\/td>/g)].map((x) => Number(x[1]));
}

test('escapeHtml covers element text and quoted attributes', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('headline figures, per-class rows and one heatmap cell per matrix entry', () => {
  const m = small();
  const html = renderEvalReport({ metrics: m, confusedExamples: examples(m), meta });
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  for (const figure of [
    `${(100 * m.accuracy).toFixed(2)}%`,
    m.macroF1.toFixed(4),
    m.weightedF1.toFixed(4),
    `${(100 * m.top3Accuracy).toFixed(2)}%`,
  ]) {
    assert.ok(html.includes(figure), `missing ${figure}`);
  }
  assert.match(html, /1 row<\/b> got no prediction/);
  assert.match(html, /not a model class/);
  const L = m.confusion.labels.length;
  assert.equal(L, 4);
  assert.equal(html.match(/class="hm-cell/g)!.length, L * L);
  assert.deepEqual(cellCounts(html), m.confusion.matrix.flat());
  assert.equal(html.match(/<th class="col" scope="col"/g)!.length, L);
  assert.equal(html.match(/<th scope="row"/g)!.length, L);
  for (const c of m.perClass) assert.ok(html.includes(`<td class="num">${c.f1.toFixed(4)}</td>`));
});

test('labels, titles, ids and metadata are escaped', () => {
  const m = small();
  const html = renderEvalReport({
    metrics: m,
    confusedExamples: examples(m),
    meta: { ...meta, model: `models/<x>"`, input: `a&b ${EVIL}.csv` },
  });
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<img/i);
  assert.doesNotMatch(html, /<b>set/);
  assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  assert.ok(html.includes('Toys &amp; Games'));
  assert.ok(html.includes('models/&lt;x&gt;&quot;'));
  // The id's quote cannot close the title attribute it lands in, so no <img> attribute comes alive.
  assert.ok(html.includes('title="id&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"'));
});

test('self-contained: no external URLs, scripts, links or imports', () => {
  const m = small();
  const confusedExamples = mostConfusedPairs(m, 5).map((p) => ({ ...p, examples: [{ id: 'r1', title: 'Lego set', score: null }] }));
  const html = renderEvalReport({ metrics: m, confusedExamples, meta });
  assert.doesNotMatch(html, /https?:|\/\/[a-z0-9]/i);
  assert.doesNotMatch(html, /\b(src|href)=/i);
  assert.doesNotMatch(html, /url\(|@import|<link|<script|<iframe|<object/i);
  // A CSP pins it down even if a future change slipped something in.
  assert.match(html, /Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"/);
});

test('tables are balanced', () => {
  const m = small();
  const html = renderEvalReport({ metrics: m, confusedExamples: examples(m), meta });
  for (const tag of ['table', 'tr', 'td', 'th', 'section', 'div']) {
    const open = html.match(new RegExp(`<${tag}[\\s>]`, 'g'))?.length ?? 0;
    const close = html.match(new RegExp(`</${tag}>`, 'g'))?.length ?? 0;
    assert.equal(open, close, `<${tag}> ${open} opened, ${close} closed`);
  }
});

test('53 classes: dense heatmap with every cell, scrollable per-class table', () => {
  const g = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-metrics.json'), 'utf8')).cases.find(
    (c: { name: string }) => c.name === 'many',
  );
  const m = computeMetrics({ yTrue: g.y_true, yPred: g.y_pred, ranked: g.ranked, modelClasses: g.model_classes });
  const html = renderEvalReport({ metrics: m, confusedExamples: [], meta });
  assert.equal(m.confusion.labels.length, 53);
  assert.equal(html.match(/class="hm-cell/g)!.length, 53 * 53);
  assert.deepEqual(cellCounts(html), m.confusion.matrix.flat());
  assert.match(html, /<table class="hm dense">/);
  assert.match(html, /class="classes-wrap long"/);
  // Some of these labels carry < & >: escaped everywhere.
  const special = m.confusion.labels.filter((l) => /[<>&]/.test(l));
  assert.ok(special.length >= 3);
  for (const l of special) {
    assert.ok(html.includes(escapeHtml(l)), `escaped ${l}`);
    assert.ok(!html.split(escapeHtml(l)).join('').includes(l), `raw ${l}`);
  }
  assert.match(html, /No confused pairs to show\./);
});

test('no scored rows: renders without a matrix', () => {
  const m = computeMetrics({ yTrue: ['a'], yPred: [null], ranked: [[]], modelClasses: ['a'] });
  const html = renderEvalReport({ metrics: m, confusedExamples: [], meta });
  assert.match(html, /No rows with a prediction/);
  assert.equal(html.match(/class="hm-cell/g), null);
});

// A real 1×1 JPEG is not needed to test the markup: any base64 payload is what the renderer sees.
const thumb: Thumbnail = { src: 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD//Z==', width: 96, height: 48 };

function withPhotos(m: EvalMetrics): { confusedExamples: ConfusedPairExamples[]; lowConfidence: LowConfidenceRow[] } {
  const confusedExamples = mostConfusedPairs(m, 5).map((p) => ({
    ...p,
    examples: [
      { id: 'with-photo', title: `Lego "set" ${EVIL}`, score: 0.61, thumbnail: thumb },
      { id: 'no-photo', title: 'Lego box', score: 0.55, thumbnail: null },
    ],
  }));
  const lowConfidence: LowConfidenceRow[] = [
    { id: 'low-1', title: `It's <b>odd</b> ${EVIL}`, trueLabel: EVIL, predLabel: 'Books', score: 0.31, thumbnail: thumb },
    { id: 'low-2', title: 'Plain', trueLabel: 'Books', predLabel: 'Books', score: 0.42 },
  ];
  return { confusedExamples, lowConfidence };
}

test('thumbnails: an <img> with the data URI beside rows that have a photo, "no photo" beside the others', () => {
  const m = small();
  const html = renderEvalReport({ metrics: m, ...withPhotos(m), meta });
  const pairs = html.slice(html.indexOf('<h2>Most confused pairs</h2>'), html.indexOf('<h2>Least confident rows</h2>'));
  const low = html.slice(html.indexOf('<h2>Least confident rows</h2>'));
  const nPairs = mostConfusedPairs(m, 5).length;
  assert.ok(nPairs > 0);
  assert.equal(pairs.match(/<img src="data:image\/jpeg;base64,[^"]+" width="96" height="48" alt="">/g)!.length, nPairs);
  assert.equal(pairs.match(/<span class="none">no photo<\/span>/g)!.length, nPairs);
  assert.equal(pairs.match(/<th>photo<\/th>/g)!.length, nPairs);
  assert.equal(low.match(/<img src="data:image\/jpeg;base64,/g)!.length, 1);
  assert.equal(low.match(/no photo/g)!.length, 1);
  assert.match(low, /low-1.*0\.310.*low-2.*0\.420/s);
  assert.match(low, /<span class="badge">wrong<\/span>/);
  // The photos change nothing about escaping.
  assert.doesNotMatch(html, /<script|<b>odd|<b>set/i);
  assert.ok(html.includes('It&#39;s &lt;b&gt;odd&lt;/b&gt; &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  assert.ok(html.includes('Lego &quot;set&quot;'));
});

test('thumbnails: no photo column where no row has one; a src that is not a base64 JPEG data URI is never written', () => {
  const m = small();
  const bogus: Thumbnail[] = [
    { src: 'javascript:alert(1)', width: 1, height: 1 },
    { src: 'data:text/html;base64,PHNjcmlwdD4=', width: 1, height: 1 },
    { src: 'data:image/jpeg;base64,AAAA" onerror="alert(1)', width: 1, height: 1 },
    { src: 'https://example.com/x.jpg', width: 1, height: 1 },
  ];
  const confusedExamples = mostConfusedPairs(m, 5).map((p) => ({ ...p, examples: bogus.map((t, i) => ({ id: `r${i}`, title: 't', score: 0.5, thumbnail: t })) }));
  const lowConfidence = [{ id: 'r', title: 't', trueLabel: 'Books', predLabel: 'Books', score: 0.5 }];
  const html = renderEvalReport({ metrics: m, confusedExamples, lowConfidence, meta });
  assert.doesNotMatch(html, /<img|javascript:|onerror|data:text|https?:/i);
  assert.doesNotMatch(html, /<th>photo<\/th>/);
});

test('photos keep the page self-contained and balanced', () => {
  const m = small();
  const html = renderEvalReport({ metrics: m, ...withPhotos(m), meta });
  const rest = html.replace(/ src="data:image\/jpeg;base64,[A-Za-z0-9+/]+={0,2}"/g, '');
  assert.doesNotMatch(rest, /https?:|\/\/[a-z0-9]/i);
  assert.doesNotMatch(rest, /\b(src|href)=/i);
  for (const tag of ['table', 'tr', 'td', 'th', 'section', 'div']) {
    const open = html.match(new RegExp(`<${tag}[\\s>]`, 'g'))?.length ?? 0;
    const close = html.match(new RegExp(`</${tag}>`, 'g'))?.length ?? 0;
    assert.equal(open, close, `<${tag}> ${open} opened, ${close} closed`);
  }
});

test('least confident rows: no section without the list, a note when it is empty', () => {
  const m = small();
  assert.doesNotMatch(renderEvalReport({ metrics: m, confusedExamples: [], meta }), /Least confident rows/);
  assert.match(renderEvalReport({ metrics: m, confusedExamples: [], lowConfidence: [], meta }), /<h2>Least confident rows<\/h2>\n<p class="empty">No row has a score\.<\/p>/);
});

test('ablation: the fusion weights, and why they are 1 and 0 where training chose the text head alone', () => {
  const m = small();
  const ablation = ['text', 'image', 'fused'].map((name) => ({ name, predicted: 7, metrics: m }));
  const heads = [
    { name: 'text', weight: 1 },
    { name: 'image', weight: 0 },
  ];
  const textAlone = { chosen: true, rows: 120, text: { macroF1: 0.9486, logLoss: 0.1 }, fused: { macroF1: 0.9341, logLoss: 0.09 } };
  const chosen = renderEvalReport({ metrics: m, confusedExamples: [], meta, ablation, fusion: { heads, selection: { rows: 120, textAlone } } });
  assert.match(chosen, /<b>text<\/b> 1\.00, <b>image<\/b> 0\.00/);
  assert.match(chosen, /Training chose the text head alone: on 120 held-out rows its macro-F1 0\.9486 was at least the fusion's 0\.9341\./);
  const kept = renderEvalReport({ metrics: m, confusedExamples: [], meta, ablation, fusion: { heads, selection: { rows: 120, textAlone: { ...textAlone, chosen: false } } } });
  assert.doesNotMatch(kept, /text head alone/);
  // An older bundle's selection has no such record.
  assert.doesNotMatch(renderEvalReport({ metrics: m, confusedExamples: [], meta, ablation, fusion: { heads, selection: { rows: 120 } } }), /text head alone/);
});
