// The terminal summary: figures present, classes by support, columns aligned in terminal cells, colour only
// when asked, and labels unable to smuggle escape sequences into the terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeMetrics } from '../../src/report/metrics.js';
import { displayWidth, formatMetricsTable, truncate } from '../../src/report/table.js';

const yTrue = ['Books', 'Books', 'Books', '玩具', '玩具', 'Café & Thé', 'new\u001b[31m', 'Books'];
const yPred = ['Books', 'Books', '玩具', '玩具', 'Books', 'Café & Thé', 'Books', null];
const m = computeMetrics({
  yTrue,
  yPred,
  ranked: yPred.map((p) => (p === null ? [] : [p])),
  modelClasses: ['Books', 'Café & Thé', '玩具'],
});

test('plain text: no escape codes, headline figures, classes by support', () => {
  const out = formatMetricsTable(m, { color: false });
  assert.doesNotMatch(out, /\u001b/);
  assert.match(out, /accuracy\s+50\.00%\s+\(4 of 8\)/);
  assert.ok(out.includes(m.macroF1.toFixed(4)));
  assert.ok(out.includes(m.weightedF1.toFixed(4)));
  assert.match(out, /top-3 accuracy\s+50\.00%/);
  assert.match(out, /failed\s+1 rows? without a prediction/);
  assert.match(out, /unseen labels\s+1 rows/);
  const order = ['Books', '玩具', 'Café & Thé', 'new?[31m'].map((l) => out.indexOf(`  ${l} `));
  assert.ok(order.every((i) => i > 0), 'every class listed');
  assert.deepEqual([...order].sort((a, b) => a - b), order);
  assert.match(out, /most confused \(true → predicted\)/);
  assert.match(out, /1 {2}Books → 玩具/);
});

test('per-class rows line up in terminal cells, wide characters included', () => {
  const out = formatMetricsTable(m, { color: false });
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l.trimStart().startsWith('class'));
  const rows = lines.slice(start, start + 2 + m.perClass.length);
  const widths = new Set(rows.map(displayWidth));
  assert.equal(widths.size, 1, rows.join('\n'));
});

test('colour on: ANSI styling, and the same text underneath', () => {
  const out = formatMetricsTable(m, { color: true });
  assert.match(out, /\u001b\[1m/);
  assert.equal(out.replace(/\u001b\[[0-9;]*m/g, ''), formatMetricsTable(m, { color: false }));
});

test('maxClasses and topPairs trim the lists', () => {
  const out = formatMetricsTable(m, { color: false, maxClasses: 2, topPairs: 1 });
  assert.match(out, /… 2 more classes with smaller support/);
  assert.equal(out.split('\n').filter((l) => l.includes(' → ')).length, 2); // the heading and one pair
});

test('truncate and displayWidth count terminal cells', () => {
  assert.equal(displayWidth('玩具'), 4);
  assert.equal(displayWidth('e\u0301'), 1);
  assert.equal(truncate('abcdef', 4), 'abc…');
  assert.equal(truncate('玩具玩具', 5), '玩具…');
  assert.equal(truncate('abc', 3), 'abc');
});
