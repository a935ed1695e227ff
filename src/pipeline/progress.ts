// What a command reports while it runs; the CLI decides how to show it (bar, log lines, nothing).

export interface ProgressStats {
  rows: number;
  errors: number;
  warnings: number;
  /** Input bytes consumed so far and in all (when the input is a file), for ETA. */
  bytesRead: number;
  totalBytes: number | null;
}

export interface ProgressReporter {
  start(totalBytes: number | null): void;
  update(stats: ProgressStats): void;
  stop(): void;
}

export const silentProgress: ProgressReporter = { start() {}, update() {}, stop() {} };

/** Where head fitting stands (train's selection and final fits): fits done of those planned, the latest fit's head and C. */
export interface FitProgressStats {
  done: number;
  total: number;
  /** Training run the latest event came from: 'final', 'validation', 'cv 2/5'. */
  procedure: string;
  head: string;
  C: number;
  /** The latest iteration of a fit under way, or null when the event was a finished fit. */
  iteration: number | null;
  elapsedSeconds: number;
  /** Remaining time at the pace so far (null before the first fit finishes). */
  etaSeconds: number | null;
}

export interface FitProgressReporter {
  update(stats: FitProgressStats): void;
  stop(): void;
}

export const silentFitProgressReporter: FitProgressReporter = { update() {}, stop() {} };
