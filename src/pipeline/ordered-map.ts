// Bounded-window concurrent map over a row stream, results emitted in input order; memory stays flat.
import { OrderedSink } from '../io/ordered-sink.js';

export interface OrderedMapOptions {
  /** Rows started but not yet emitted, at most. */
  window: number;
  /** Called when the input ends, before waiting for the stragglers (e.g. flush partial batches). */
  onInputEnd?: () => void;
}

/**
 * Runs `work` on every item with at most `window` items in flight and hands results to `emit`
 * in input order. `work` must not reject for row-level problems (rows carry their own status);
 * a rejection from `work` or `emit` is fatal and stops the run. Returns the number of items.
 */
export async function orderedMap<T extends { index: number }, O>(
  items: AsyncIterable<T>,
  work: (item: T) => Promise<O>,
  emit: (out: O, item: T) => Promise<void> | void,
  opts: OrderedMapOptions,
): Promise<number> {
  const sink = new OrderedSink<{ out: O; item: T }>((v) => emit(v.out, v.item));
  let inFlight = 0;
  let fatal: unknown;
  let wake: (() => void) | undefined;
  const settle = () => {
    inFlight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  let count = 0;
  for await (const item of items) {
    while (inFlight >= opts.window && fatal === undefined) await new Promise<void>((r) => (wake = r));
    if (fatal !== undefined) break;
    inFlight++;
    count++;
    work(item)
      .then((out) => sink.push(item.index, { out, item }))
      .catch((err: unknown) => {
        fatal ??= err;
      })
      .finally(settle);
  }
  opts.onInputEnd?.();
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  if (fatal !== undefined) throw fatal;
  sink.finish(count);
  return count;
}
