// The demo's train/eval split (scripts/demo.ts): a seeded stratified order whose every prefix keeps the categories
// in proportion, the same on every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stratifiedOrder } from '../../scripts/demo.js';

const rows = [
  ...Array.from({ length: 60 }, (_, i) => ({ id: `a${i}`, category: 'A' })),
  ...Array.from({ length: 30 }, (_, i) => ({ id: `b${i}`, category: 'B' })),
  ...Array.from({ length: 10 }, (_, i) => ({ id: `c${i}`, category: 'C' })),
];

test('seeded: the same seed gives the same order, another seed another; every row once', () => {
  const a = stratifiedOrder(rows, 'category', 7).map((r) => r.id);
  assert.deepEqual(stratifiedOrder(rows, 'category', 7).map((r) => r.id), a);
  assert.notDeepEqual(stratifiedOrder(rows, 'category', 8).map((r) => r.id), a);
  assert.deepEqual([...a].sort(), rows.map((r) => r.id).sort());
});

test('stratified: any prefix holds each category within one row of its share', () => {
  const order = stratifiedOrder(rows, 'category', 7);
  for (let n = 1; n <= order.length; n++) {
    const prefix = order.slice(0, n);
    for (const [c, share] of [['A', 0.6], ['B', 0.3], ['C', 0.1]] as const) {
      const got = prefix.filter((r) => r.category === c).length;
      assert.ok(Math.abs(got - share * n) <= 1, `${c} in the first ${n}: ${got}`);
    }
  }
});
