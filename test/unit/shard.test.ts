import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseShard, shardOf } from '../../src/pipeline/shard.js';
import { UsageError } from '../../src/errors.js';

test('shardOf is the documented hash: first 8 bytes of sha256(utf-8 id), big-endian, mod N (values from Python hashlib)', () => {
  const golden: [string, number, number, number][] = [
    ['P0001', 3, 3, 15],
    ['T0371', 1, 5, 33],
    ['é-42', 3, 0, 127],
    ['', 0, 1, 652],
  ];
  for (const [id, m4, m7, m1000] of golden) assert.deepEqual([shardOf(id, 4), shardOf(id, 7), shardOf(id, 1000)], [m4, m7, m1000], id);
});

test('shards are balanced and cover every id exactly once', () => {
  const counts = new Array(8).fill(0);
  for (let i = 0; i < 80_000; i++) counts[shardOf(`SKU-${i}`, 8)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 500, `shard size ${c}`);
});

test('parseShard takes I/N with 0 ≤ I < N', () => {
  assert.deepEqual(parseShard('0/1'), { index: 0, count: 1 });
  assert.deepEqual(parseShard(' 3 / 8 '), { index: 3, count: 8 });
  for (const bad of ['4/4', '1/0', '-1/3', 'a/b', '3', '1/2/3']) assert.throws(() => parseShard(bad), UsageError, bad);
});
