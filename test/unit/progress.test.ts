import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { makeFitProgress, makeProgress } from '../../src/cli/progress.js';

function capture(isTTY: boolean): { stream: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 120 });
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

const stats = (rows: number) => ({ rows, errors: 1, warnings: 0, bytesRead: rows * 10, totalBytes: 1000 });

test('not a TTY (cron): plain log lines, at most one per interval', async () => {
  const { stream, text } = capture(false);
  const p = makeProgress(stream, { quiet: false, label: 'categorize', logEveryMs: 20 });
  p.start(1000);
  p.update(stats(1));
  assert.equal(text(), '', 'nothing before the first interval');
  await new Promise((r) => setTimeout(r, 30));
  p.update(stats(50));
  p.update(stats(51));
  p.stop();
  const lines = text().trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^categorize: 50 rows \(50% of input read\), [\d.]+ rows\/s, 1 errors$/);
  assert.ok(!/\x1b\[/.test(text()), 'no terminal escape codes in logs');
});

test('TTY: a cli-progress bar with rows, rate, errors and ETA', () => {
  const { stream, text } = capture(true);
  const p = makeProgress(stream, { quiet: false, label: 'categorize' });
  p.start(1000);
  p.update(stats(40));
  p.stop();
  assert.match(text(), /categorize .*\| 40 rows \| [\d.]+ rows\/s \| 1 errors \| ETA/);
});

test('--quiet: nothing at all', () => {
  for (const tty of [true, false]) {
    const { stream, text } = capture(tty);
    const p = makeProgress(stream, { quiet: true, label: 'categorize', logEveryMs: 0 });
    p.start(10);
    p.update(stats(5));
    p.stop();
    assert.equal(text(), '');
  }
});

test('head fitting progress: a bar with fits, the fit under way and an ETA on a TTY, periodic lines in cron logs, JSON events, nothing when quiet', async () => {
  const fit = (done: number, iteration: number | null) => ({ done, total: 62, procedure: 'validation', head: 'text', C: 100, iteration, elapsedSeconds: 30, etaSeconds: done > 0 ? 95 : null });
  const tty = capture(true);
  const bar = makeFitProgress(tty.stream, { quiet: false, label: 'fitting heads' });
  bar.update(fit(7, 37));
  bar.stop();
  assert.match(tty.text(), /fitting heads .* 7\/62 fits \| validation: text C 100, iteration 37 \| ETA 1m 35s/);
  const log = capture(false);
  const lines = makeFitProgress(log.stream, { quiet: false, label: 'fitting heads', logEveryMs: 10 });
  lines.update(fit(0, 3));
  lines.update(fit(1, null));
  await new Promise((r) => setTimeout(r, 20));
  lines.update(fit(2, null));
  lines.stop();
  assert.deepEqual(log.text().trim().split('\n'), [
    'fitting heads: 0/62 fits, validation: text C 100, iteration 3, 30s elapsed, ETA ?',
    'fitting heads: 2/62 fits, validation: text C 100, 30s elapsed, ETA 1m 35s',
  ]);
  const json = capture(false);
  const events = makeFitProgress(json.stream, { quiet: false, label: 'fitting heads', json: true });
  events.update(fit(5, null));
  events.stop();
  assert.deepEqual({ ...JSON.parse(json.text()), ts: 0 }, { ts: 0, level: 'info', event: 'progress', stage: 'fitting heads', fits: 5, total: 62, procedure: 'validation', head: 'text', C: 100, iteration: null, elapsedSeconds: 30, etaSeconds: 95 });
  const quiet = capture(true);
  const q = makeFitProgress(quiet.stream, { quiet: true, label: 'fitting heads' });
  q.update(fit(1, 1));
  q.stop();
  assert.equal(quiet.text(), '');
});
