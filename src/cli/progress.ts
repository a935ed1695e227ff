// Progress display: a cli-progress bar on a TTY, a log line every few seconds otherwise (cron), nothing with --quiet.
import cliProgress from 'cli-progress';
import type { FitProgressReporter, FitProgressStats, ProgressReporter, ProgressStats } from '../pipeline/progress.js';

const LOG_EVERY_MS = 5000;

export function makeProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  opts: { quiet: boolean; label: string; logEveryMs?: number; json?: boolean },
): ProgressReporter {
  if (opts.quiet) return { start() {}, update() {}, stop() {} };
  if (opts.json) return new JsonProgress(stream, opts.label, opts.logEveryMs ?? LOG_EVERY_MS);
  return stream.isTTY ? new BarProgress(stream, opts.label) : new LogProgress(stream, opts.label, opts.logEveryMs ?? LOG_EVERY_MS);
}

class BarProgress implements ProgressReporter {
  private bar: cliProgress.SingleBar | undefined;
  private t0 = 0;
  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly label: string,
  ) {}
  start(totalBytes: number | null): void {
    this.t0 = performance.now();
    const known = totalBytes !== null && totalBytes > 0;
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream as NodeJS.WriteStream,
        format: known
          ? `${this.label} {bar} {percentage}% | {rows} rows | {rate} rows/s | {errors} errors | ETA {eta_formatted}`
          : `${this.label} {rows} rows | {rate} rows/s | {errors} errors`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(known ? totalBytes : 1, 0, { rows: 0, rate: '0', errors: 0 });
  }
  update(s: ProgressStats): void {
    const secs = (performance.now() - this.t0) / 1000;
    this.bar?.update(s.totalBytes ? s.bytesRead : 0, { rows: s.rows, rate: secs > 0 ? (s.rows / secs).toFixed(1) : '0', errors: s.errors });
  }
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

/** Reports at most every `everyMs` (cron logs, log collectors), and once more at the end when `finalLine`. */
abstract class ThrottledProgress implements ProgressReporter {
  protected t0 = 0;
  private last = 0;
  private latest: ProgressStats | undefined;
  constructor(
    protected readonly stream: NodeJS.WritableStream,
    protected readonly label: string,
    private readonly everyMs: number,
    private readonly finalLine: boolean,
  ) {}
  start(): void {
    this.t0 = this.last = performance.now();
  }
  update(s: ProgressStats): void {
    this.latest = s;
    const now = performance.now();
    if (now - this.last < this.everyMs) return;
    this.last = now;
    this.write(s, (now - this.t0) / 1000);
  }
  stop(): void {
    if (this.finalLine && this.latest) this.write(this.latest, (performance.now() - this.t0) / 1000);
    this.latest = undefined;
  }
  protected abstract write(s: ProgressStats, secs: number): void;
}

/** Not a terminal (cron): a plain line every few seconds; the summary follows at the end. */
class LogProgress extends ThrottledProgress {
  constructor(stream: NodeJS.WritableStream, label: string, everyMs: number) {
    super(stream, label, everyMs, false);
  }
  protected write(s: ProgressStats, secs: number): void {
    const pct = s.totalBytes ? ` (${Math.min(100, (100 * s.bytesRead) / s.totalBytes).toFixed(0)}% of input read)` : '';
    this.stream.write(`${this.label}: ${s.rows} rows${pct}, ${(s.rows / secs).toFixed(1)} rows/s, ${s.errors} errors\n`);
  }
}

/** --log-format json: a `progress` event every few seconds and one at the end. */
class JsonProgress extends ThrottledProgress {
  constructor(stream: NodeJS.WritableStream, label: string, everyMs: number) {
    super(stream, label, everyMs, true);
  }
  protected write(s: ProgressStats, secs: number): void {
    this.stream.write(
      JSON.stringify({
        ts: new Date().toISOString(),
        level: 'info',
        event: 'progress',
        stage: this.label,
        rows: s.rows,
        errors: s.errors,
        warnings: s.warnings,
        rowsPerSecond: secs > 0 ? Math.round((s.rows / secs) * 10) / 10 : 0,
        inputShareRead: s.totalBytes ? Math.min(1, s.bytesRead / s.totalBytes) : null,
      }) + '\n',
    );
  }
}

function duration(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

/** The fit a progress line is about: "validation: text C 100, iteration 37". */
function fitLabel(s: FitProgressStats): string {
  // A support head has no C; its iterations are epochs.
  if (Number.isNaN(s.C)) return `${s.procedure}: ${s.head} support head${s.iteration !== null ? `, epoch ${s.iteration}` : ''}`;
  return `${s.procedure}: ${s.head} C ${s.C}${s.iteration !== null ? `, iteration ${s.iteration}` : ''}`;
}

/**
 * Head fitting progress (train): fits done of those planned, the fit under way and an ETA, as a bar on a TTY,
 * a log line every few seconds otherwise (cron), a JSON `progress` event with --log-format json.
 */
export function makeFitProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  opts: { quiet: boolean; label: string; logEveryMs?: number; json?: boolean },
): FitProgressReporter {
  if (opts.quiet) return { update() {}, stop() {} };
  if (stream.isTTY && !opts.json) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      update(s) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream: stream as NodeJS.WriteStream, format: `${opts.label} {bar} {value}/{total} fits | {fit} | ETA {remaining}`, hideCursor: true, clearOnComplete: true },
            cliProgress.Presets.shades_classic,
          );
          bar.start(s.total, 0, { fit: '', remaining: '?' });
        }
        bar.setTotal(s.total);
        bar.update(s.done, { fit: fitLabel(s), remaining: s.etaSeconds === null ? '?' : duration(s.etaSeconds) });
      },
      stop() {
        bar?.stop();
        bar = undefined;
      },
    };
  }
  const every = opts.logEveryMs ?? LOG_EVERY_MS;
  let last = -Infinity;
  let latest: FitProgressStats | undefined;
  const write = (s: FitProgressStats) => {
    if (opts.json) {
      stream.write(
        JSON.stringify({ ts: new Date().toISOString(), level: 'info', event: 'progress', stage: opts.label, fits: s.done, total: s.total, procedure: s.procedure, head: s.head, C: s.C, iteration: s.iteration, elapsedSeconds: Math.round(s.elapsedSeconds), etaSeconds: s.etaSeconds === null ? null : Math.round(s.etaSeconds) }) + '\n',
      );
    } else {
      stream.write(`${opts.label}: ${s.done}/${s.total} fits, ${fitLabel(s)}, ${duration(s.elapsedSeconds)} elapsed, ETA ${s.etaSeconds === null ? '?' : duration(s.etaSeconds)}\n`);
    }
  };
  return {
    update(s) {
      latest = s;
      const now = performance.now();
      if (now - last < every) return;
      last = now;
      write(s);
    },
    stop() {
      if (latest && latest.done === latest.total) write(latest);
      latest = undefined;
    },
  };
}

/** Download progress: one bar per file on a TTY (files may download at once), a line per file otherwise. */
export function makeDownloadProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  opts: { quiet: boolean },
): (label: string, size: number | undefined) => { update(received: number, total: number | undefined): void; done(): void } {
  const mb = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
  if (opts.quiet) return () => ({ update() {}, done() {} });
  if (stream.isTTY) {
    let multi: cliProgress.MultiBar | undefined;
    let open = 0;
    return (label, size) => {
      multi ??= new cliProgress.MultiBar(
        { stream: stream as NodeJS.WriteStream, format: '{file} {bar} {percentage}% | {got} of {size}', hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      open++;
      const bar = multi.create(size ?? 1, 0, { file: label, got: '0 MB', size: size ? mb(size) : '?' });
      return {
        update(received, total) {
          if (total) bar.setTotal(total);
          bar.update(received, { got: mb(received), size: total ? mb(total) : '?' });
        },
        done() {
          bar.stop();
          if (--open === 0) {
            multi?.stop();
            multi = undefined;
          }
        },
      };
    };
  }
  return (label) => {
    const t0 = performance.now();
    let got = 0;
    let total: number | undefined;
    let announced = false;
    return {
      update(received, t) {
        got = received;
        total = t ?? total;
        if (!announced) {
          announced = true;
          stream.write(`categorize: downloading ${label}${total ? ` (${mb(total)})` : ''}\n`);
        }
      },
      done() {
        if (!announced) return; // nothing was transferred: a cache hit
        const secs = (performance.now() - t0) / 1000;
        stream.write(`categorize: ${label}: ${mb(got)} in ${secs.toFixed(1)} s\n`);
      },
    };
  };
}
