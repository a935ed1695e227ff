import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderedSink } from '../../src/io/ordered-sink.js';
import { orderedMap } from '../../src/pipeline/ordered-map.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('emits strictly in index order whatever the arrival order', async () => {
  const seen: number[] = [];
  const sink = new OrderedSink<string>(async (item, i) => {
    await sleep(1);
    seen.push(i);
    assert.equal(item, `v${i}`);
  });
  const order = [3, 1, 0, 2, 6, 5, 4, 7];
  await Promise.all(order.map((i) => sink.push(i, `v${i}`)));
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7]);
  sink.finish(8);
});

test('holds items back until the gap is filled, and finish() reports a gap', async () => {
  const seen: number[] = [];
  const sink = new OrderedSink<number>((_, i) => void seen.push(i));
  await sink.push(1, 1);
  await sink.push(2, 2);
  assert.deepEqual(seen, []);
  assert.equal(sink.waiting, 2);
  assert.throws(() => sink.finish(3), /0 of 3 records written, 2 held back/);
  await sink.push(0, 0);
  assert.deepEqual(seen, [0, 1, 2]);
  sink.finish(3);
});

test('rejects a duplicate index', async () => {
  const sink = new OrderedSink<number>(() => {});
  await sink.push(0, 0);
  await assert.rejects(sink.push(0, 0), /pushed twice/);
});

async function* items(n: number) {
  for (let i = 0; i < n; i++) yield { index: i };
}

test('orderedMap keeps at most `window` items in flight and emits in order', async () => {
  let inFlight = 0;
  let peak = 0;
  const out: number[] = [];
  const n = await orderedMap(
    items(200),
    async (it) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep((it.index * 7) % 5);
      inFlight--;
      return it.index;
    },
    (v) => void out.push(v),
    { window: 16 },
  );
  assert.equal(n, 200);
  assert.ok(peak <= 16, `peak ${peak}`);
  assert.deepEqual(out, Array.from({ length: 200 }, (_, i) => i));
});

test('orderedMap stops on a failing worker and rethrows its error', async () => {
  await assert.rejects(
    orderedMap(
      items(50),
      async (it) => {
        if (it.index === 10) throw new Error('boom');
        return it.index;
      },
      () => {},
      { window: 4 },
    ),
    /boom/,
  );
});
