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
