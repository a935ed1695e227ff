// Restores input order: results arrive in any order, tagged with their row index, and leave strictly in sequence.

export class OrderedSink<T> {
  private next = 0;
  private readonly held = new Map<number, T>();
  private draining: Promise<void> = Promise.resolve();

  /** `emit` receives items in index order 0, 1, 2, …, one at a time (a returned promise is awaited: backpressure). */
  constructor(private readonly emit: (item: T, index: number) => void | Promise<void>) {}

  /** Number of items waiting for an earlier index. */
  get waiting(): number {
    return this.held.size;
  }
  /** Next index to be emitted. */
  get emitted(): number {
    return this.next;
  }

  /** Resolves once every item that became emittable through this push has been emitted. */
  push(index: number, item: T): Promise<void> {
    if (index < this.next || this.held.has(index)) return Promise.reject(new Error(`OrderedSink: index ${index} pushed twice`));
    this.held.set(index, item);
    this.draining = this.draining.then(() => this.drain());
    return this.draining;
  }

  private async drain(): Promise<void> {
    while (this.held.has(this.next)) {
      const it = this.held.get(this.next)!;
      this.held.delete(this.next);
      await this.emit(it, this.next);
      this.next++;
    }
  }

  /** Throws when an index never arrived: the one-record-per-row guarantee was broken. */
  finish(total: number): void {
    if (this.next !== total || this.held.size > 0) {
      throw new Error(`OrderedSink: ${this.next} of ${total} records written, ${this.held.size} held back`);
    }
  }
}
