// The Prometheus text exposition written by hand in src/serve/metrics.ts: types, labels, cumulative buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, ServeMetrics } from '../../src/serve/metrics.js';

test('counter: HELP and TYPE lines, one sample per label set, label order irrelevant', () => {
  const c = new Counter('x_total', 'Things.');
  c.inc({ route: '/a', status: '200' });
  c.inc({ status: '200', route: '/a' }, 2);
  c.inc({ route: '/b', status: '500' });
  assert.equal(c.value({ route: '/a', status: '200' }), 3);
  assert.equal(c.total(), 4);
  assert.equal(c.expose(), '# HELP x_total Things.\n# TYPE x_total counter\nx_total{route="/a",status="200"} 3\nx_total{route="/b",status="500"} 1\n');
  assert.throws(() => c.inc({}, -1), RangeError);
});

test('label values are escaped (backslash, quote, newline)', () => {
  const g = new Gauge('g', 'A gauge.');
  g.set(1.5, { v: 'a"b\\c\nd' });
  assert.match(g.expose(), /^g\{v="a\\"b\\\\c\\nd"\} 1\.5$/m);
});

test('histogram: cumulative buckets, +Inf, sum and count', () => {
  const h = new Histogram('h', 'Sizes.', [1, 4, 2]);
  for (const v of [1, 1, 3, 10]) h.observe(v, { model: 'text' });
  assert.deepEqual(h.totals({ model: 'text' }), { sum: 15, count: 4 });
  assert.deepEqual(h.totals({ model: 'image' }), { sum: 0, count: 0 });
  assert.equal(
    h.expose(),
    [
      '# HELP h Sizes.',
      '# TYPE h histogram',
      'h_bucket{model="text",le="1"} 2',
      'h_bucket{model="text",le="2"} 2',
      'h_bucket{model="text",le="4"} 3',
      'h_bucket{model="text",le="+Inf"} 4',
      'h_sum{model="text"} 15',
      'h_count{model="text"} 4',
      '',
    ].join('\n'),
  );
});

test('ServeMetrics exposes every family, each declared once', () => {
  const m = new ServeMetrics();
  m.queueLimit.set(8);
  const text = m.expose();
  for (const name of ['categorize_http_requests_total', 'categorize_http_request_duration_seconds', 'categorize_errors_total', 'categorize_model_batch_size', 'categorize_batch_request_rows', 'categorize_queue_depth', 'categorize_queue_limit', 'categorize_ready', 'process_resident_memory_bytes']) {
    assert.equal(text.split('\n').filter((l) => l.startsWith(`# TYPE ${name} `)).length, 1, name);
  }
  assert.match(text, /^categorize_queue_limit 8$/m);
  assert.match(text, /^process_resident_memory_bytes \d+$/m);
});
