// What the CLI writes to stderr besides progress bars: plain "categorize: …" lines for people, or one JSON
// object per line (--log-format json) for log collectors — start, progress, warnings, summary, errors.
export type LogFormat = 'text' | 'json';

type Stream = NodeJS.WritableStream;

export class CliLog {
  constructor(
    private readonly stderr: Stream,
    readonly format: LogFormat,
    private readonly quiet: boolean,
  ) {}

  /** A message for people; in JSON a `log` event whose level is warn for warnings. `always`: even with --quiet. */
  line(message: string, always = false): void {
    if (this.quiet && !always) return;
    if (this.format === 'text') this.stderr.write(`categorize: ${message}\n`);
    else this.emit(/^warning\b/i.test(message) ? 'warn' : 'info', 'log', { message });
  }

  /** A structured event (start, summary …); text mode prints nothing for it (callers print their own text). */
  event(event: string, fields: Record<string, unknown>, level: 'info' | 'warn' | 'error' = 'info'): void {
    if (this.format === 'json' && (!this.quiet || level === 'error')) this.emit(level, event, fields);
  }

  private emit(level: string, event: string, fields: Record<string, unknown>): void {
    this.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields }) + '\n');
  }
}
