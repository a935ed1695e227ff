import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { makeIterationProgress, makeProgress } from '../../src/cli/progress.js';

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

test('optimiser progress: a bar on a TTY, periodic lines in cron logs, nothing when quiet', async () => {
  const tty = capture(true);
  const bar = makeIterationProgress(tty.stream, { quiet: false, label: 'optimising', total: 100 });
  bar.update(7, 123.456789);
  bar.stop();
  assert.match(tty.text(), /optimising .* 7\/100 iterations \| loss 123\.45679/);
  const log = capture(false);
  const lines = makeIterationProgress(log.stream, { quiet: false, label: 'optimising', total: 100, logEveryMs: 10 });
  lines.update(1, 5);
  await new Promise((r) => setTimeout(r, 20));
  lines.update(2, 4.5);
  lines.stop();
  assert.equal(log.text(), 'optimising: iteration 2, loss 4.5000000\n');
  const quiet = capture(true);
  const q = makeIterationProgress(quiet.stream, { quiet: true, label: 'optimising', total: 10 });
  q.update(1, 1);
  q.stop();
  assert.equal(quiet.text(), '');
});
