// Error classes with stable codes. Only src/cli maps them to exit codes; everything below throws them.

/** Exit codes shared by every command (see README). */
export const ExitCode = {
  ok: 0,
  runtime: 1,
  usage: 2,
  threshold: 3,
  /** Stopped by SIGINT (128 + 2); the output is complete up to there and resumable. */
  interrupted: 130,
  /** Stopped by SIGTERM (128 + 15). */
  terminated: 143,
} as const;

/** Base class: a failure the user can act on, with a stable machine-readable code. */
export class CategorizeError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number = ExitCode.runtime, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad flags, bad input file shape, missing columns: exit 2. */
export class UsageError extends CategorizeError {
  constructor(message: string, code = 'usage', options?: { cause?: unknown }) {
    super(code, message, ExitCode.usage, options);
  }
}

/** Unreadable bundle, missing model files, dimension mismatch: exit 2, raised before any row is processed. */
export class ConfigError extends CategorizeError {
  constructor(message: string, code = 'config', options?: { cause?: unknown }) {
    super(code, message, ExitCode.usage, options);
  }
}

/** The run finished but a threshold (error budget, quality gate) failed: exit 3. */
export class ThresholdError extends CategorizeError {
  constructor(message: string, code = 'threshold') {
    super(code, message, ExitCode.threshold);
  }
}

/**
 * A problem confined to one row (unreadable image, URL 404, empty text...). Never escapes the pipeline:
 * the row is marked and written. `code` is a short snake_case word used in warnings and summaries.
 */
export class RowError extends CategorizeError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, ExitCode.runtime, options);
  }
}

/** One line, whatever the error: for per-row `error` fields and CLI messages. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim();
}

/** The code of a row reason or warning ("image_not_found: …" → image_not_found), for summaries. */
export function reasonCode(reason: string): string {
  return /^([a-z0-9_]+)(:|$)/.exec(reason)?.[1] ?? 'other';
}
