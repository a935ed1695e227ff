import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicroBatcher } from '../../src/pipeline/micro-batcher.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fills batches up to maxBatch and returns results in item order', async () => {
  const calls: number[][] = [];
  const b = new MicroBatcher<number, number>(async (xs) => {
    calls.push(xs);
    return xs.map((x) => x * 10);
  }, { maxBatch: 4, maxWaitMs: 1000, maxInFlight: 2 });
  const out = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((x) => b.submit(x)));
  assert.deepEqual(out, [10, 20, 30, 40, 50, 60, 70, 80]);
  assert.deepEqual(calls, [[1, 2, 3, 4], [5, 6, 7, 8]]);
  assert.deepEqual(b.batchSizes, [4, 4]);
});

test('a partial batch leaves after maxWaitMs, or at once on flush', async () => {
  const b = new MicroBatcher<number, number>(async (xs) => xs, { maxBatch: 100, maxWaitMs: 20, maxInFlight: 1 });
  const t0 = performance.now();
  await b.submit(1);
  const waited = performance.now() - t0;
  assert.ok(waited >= 15, `waited ${waited} ms`);
  const t1 = performance.now();
  const p = b.submit(2);
  b.flush();
  await p;
  assert.ok(performance.now() - t1 < 15);
});

test('never runs more than maxInFlight batches at once', async () => {
  let running = 0;
  let peak = 0;
  const b = new MicroBatcher<number, number>(async (xs) => {
    running++;
    peak = Math.max(peak, running);
    await sleep(5);
    running--;
    return xs;
  }, { maxBatch: 2, maxWaitMs: 1, maxInFlight: 2 });
  await Promise.all(Array.from({ length: 20 }, (_, i) => b.submit(i)));
  assert.equal(peak, 2);
});

test('with every call slot busy, a partial batch stays open past maxWaitMs and leaves, fuller, when a slot frees', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const calls: number[][] = [];
  const b = new MicroBatcher<number, number>(async (xs) => {
    calls.push(xs);
    if (calls.length === 1) await gate;
    return xs;
  }, { maxBatch: 8, maxWaitMs: 2, maxInFlight: 1 });
  const first = b.submit(0);
  await sleep(10); // the first batch ([0]) left after maxWaitMs and holds the only slot
  const rest = [1, 2, 3].map((x) => b.submit(x));
  await sleep(10);
  rest.push(b.submit(4), b.submit(5));
  await sleep(10);
  assert.deepEqual(calls, [[0]], 'nothing else leaves while the slot is taken');
  release();
  assert.deepEqual(await Promise.all([first, ...rest]), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(calls, [[0], [1, 2, 3, 4, 5]]);
  // A slot free again: a partial batch leaves after maxWaitMs as before.
  await b.submit(6);
  assert.deepEqual(calls.at(-1), [6]);
});

test('a failing batch is retried item by item: only the bad item fails', async () => {
  const b = new MicroBatcher<number, number>(async (xs) => {
    if (xs.includes(3)) throw new Error('bad item 3');
    return xs.map((x) => -x);
  }, { maxBatch: 5, maxWaitMs: 1000, maxInFlight: 1 });
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map((x) => b.submit(x)));
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  assert.equal((results[3] as PromiseFulfilledResult<number>).value, -4);
  assert.match(String((results[2] as PromiseRejectedResult).reason), /bad item 3/);
});

test('a batch returning the wrong number of results is an error for its items', async () => {
  const b = new MicroBatcher<number, number>(async () => [1], { maxBatch: 1, maxWaitMs: 0, maxInFlight: 1 });
  const b2 = new MicroBatcher<number, number>(async () => [], { maxBatch: 1, maxWaitMs: 0, maxInFlight: 1 });
  assert.equal(await b.submit(7), 1);
  await assert.rejects(b2.submit(7), /0 results for 1 items/);
});
