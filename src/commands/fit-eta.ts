// The ETA of a training run's head fits. Fits differ by orders of magnitude (a head at C 1000 can take fifty
// times one at C 0.01; an image head's fit differs from a text head's), so "elapsed × left / done" misleads
// exactly when it matters. Each procedure (validation, cross-validation, final) runs the same heads over the
// same grid on about the same rows, so a fit's duration is learned from the same (head, C) fit where it finished
// first; the work left is the learned durations of the fits planned and not done, and the rate at which the
// pool gets through work is measured, not assumed (fits run side by side on the pool's cores).
import type { PlannedFit } from '../head/selection.js';

export interface FinishedFit {
  head: string;
  C: number;
  final: boolean;
  /** The fit's own wall seconds. */
  seconds: number;
}

const key = (head: string, C: number | null, final: boolean) => `${head}\u0000${final ? 'final' : C}`;

/** Learns fit durations as fits finish and estimates the seconds left. */
export class FitEta {
  private readonly planned: PlannedFit[] = [];
  private readonly learned = new Map<string, { sum: number; count: number }>();
  private workDone = 0;
  private fitsDone = 0;

  plan(fits: PlannedFit[]): void {
    this.planned.push(...fits);
  }

  get total(): number {
    return this.planned.length + this.fitsDone;
  }

  get done(): number {
    return this.fitsDone;
  }

  finished(fit: FinishedFit): void {
    this.unplan(fit);
    this.fitsDone++;
    this.workDone += fit.seconds;
    for (const k of [key(fit.head, fit.C, fit.final), key(fit.head, null, fit.final), key('', null, fit.final)]) {
      const m = this.learned.get(k) ?? { sum: 0, count: 0 };
      m.sum += fit.seconds;
      m.count++;
      this.learned.set(k, m);
    }
  }

  /** A planned fit that will not run (a selection path stopped before its C): neither done nor left. */
  skipped(fit: Omit<FinishedFit, 'seconds'>): void {
    this.unplan(fit);
  }

  private unplan(fit: Omit<FinishedFit, 'seconds'>): void {
    // The planned fit it was: the same head, final or not, at its C (a planned C of null is any C; a support
    // head's C is NaN, which Object.is matches).
    let at = this.planned.findIndex((p) => p.head === fit.head && p.final === fit.final && p.C !== null && Object.is(p.C, fit.C));
    if (at < 0) at = this.planned.findIndex((p) => p.head === fit.head && p.final === fit.final && p.C === null);
    if (at >= 0) this.planned.splice(at, 1);
  }

  /** A planned fit's expected seconds: the same fit's mean, else its head's (final or not), else any fit's. */
  private expected(p: PlannedFit): number | null {
    for (const k of [key(p.head, p.C, p.final), key(p.head, null, p.final), key('', null, p.final), key('', null, !p.final)]) {
      const m = this.learned.get(k);
      if (m) return m.sum / m.count;
    }
    return null;
  }

  /**
   * Seconds left, given the wall seconds since fitting started: the expected work left at the rate work has
   * been done so far (fit-seconds per wall second, ≥ 1 worker's worth). Null before the first fit finishes.
   */
  secondsLeft(elapsedSeconds: number): number | null {
    if (this.fitsDone === 0 || elapsedSeconds <= 0) return null;
    let left = 0;
    for (const p of this.planned) left += this.expected(p) ?? 0;
    const rate = Math.max(1, this.workDone / elapsedSeconds);
    return left / rate;
  }
}
