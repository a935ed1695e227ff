// Prometheus text exposition (format 0.0.4) for `serve`: counters, gauges and histograms with labels, and the
// server's own metric set. Written here because prom-client is not a dependency and the format is small.

type Labels = Record<string, string>;

/** Label values may hold anything a client sent (a route, a code): escaped as the format requires. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

/** Go's and Prometheus' spelling of numbers: +Inf, -Inf, NaN; integers without a decimal point. */
function num(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return String(x);
}

/** Series are kept per distinct label set; the key keeps label order irrelevant. */
function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

interface Metric {
  readonly name: string;
  expose(): string;
}

abstract class Family<S> implements Metric {
  protected readonly series = new Map<string, { labels: Labels; state: S }>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}

  protected get(labels: Labels, init: () => S): S {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: { ...labels }, state: init() };
      this.series.set(key, s);
    }
    return s.state;
  }

  protected abstract lines(labels: Labels, state: S): string[];

  expose(): string {
    const out = [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, state } of this.series.values()) out.push(...this.lines(labels, state));
    return out.join('\n') + '\n';
  }
}

export class Counter extends Family<{ value: number }> {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError('a counter only goes up');
    this.get(labels, () => ({ value: 0 })).value += by;
  }
  /** For a count kept elsewhere (the embedding cache's): mirrored at scrape time; it only goes up there too. */
  set(value: number, labels: Labels = {}): void {
    this.get(labels, () => ({ value: 0 })).value = value;
  }
  value(labels: Labels = {}): number {
    return this.series.get(keyOf(labels))?.state.value ?? 0;
  }
  /** Over every label set. */
  total(): number {
    let t = 0;
    for (const { state } of this.series.values()) t += state.value;
    return t;
  }
  protected lines(labels: Labels, s: { value: number }): string[] {
    return [`${this.name}${labelText(labels)} ${num(s.value)}`];
  }
}

export class Gauge extends Family<{ value: number }> {
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  set(value: number, labels: Labels = {}): void {
    this.get(labels, () => ({ value: 0 })).value = value;
  }
  value(labels: Labels = {}): number {
    return this.series.get(keyOf(labels))?.state.value ?? 0;
  }
  protected lines(labels: Labels, s: { value: number }): string[] {
    return [`${this.name}${labelText(labels)} ${num(s.value)}`];
  }
}

interface HistogramState {
  /** Per bucket, observations ≤ its bound (not cumulative; summed on exposition). */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family<HistogramState> {
  private readonly bounds: number[];
  constructor(name: string, help: string, buckets: number[]) {
    super(name, help, 'histogram');
    this.bounds = [...buckets].sort((a, b) => a - b);
  }
  observe(value: number, labels: Labels = {}): void {
    const s = this.get(labels, () => ({ counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 }));
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  /** Sum and count of one series (zeros if never observed): what a mean over an interval is computed from. */
  totals(labels: Labels = {}): { sum: number; count: number } {
    const s = this.series.get(keyOf(labels))?.state;
    return { sum: s?.sum ?? 0, count: s?.count ?? 0 };
  }
  protected lines(labels: Labels, s: HistogramState): string[] {
    const out: string[] = [];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += s.counts[i];
      out.push(`${this.name}_bucket${labelText(labels, ['le', num(b)])} ${cumulative}`);
    });
    out.push(`${this.name}_bucket${labelText(labels, ['le', '+Inf'])} ${s.count}`);
    out.push(`${this.name}_sum${labelText(labels)} ${num(s.sum)}`);
    out.push(`${this.name}_count${labelText(labels)} ${s.count}`);
    return out;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What `serve` reports on /metrics. */
export class ServeMetrics {
  readonly requests = new Counter('categorize_http_requests_total', 'HTTP requests answered, by route, method and status code.');
  readonly latency = new Histogram('categorize_http_request_duration_seconds', 'Time from request start to response end, by route.', [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
  ]);
  readonly errors = new Counter(
    'categorize_errors_total',
    'Failed requests (by the reason code of the response) and failed rows of /predict/batch (by the row error code).',
  );
  readonly modelBatch = new Histogram('categorize_model_batch_size', 'Rows per encoder call (micro-batch size), by model (text, image).', [
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096,
  ]);
  readonly batchRows = new Histogram('categorize_batch_request_rows', 'Rows per /predict/batch request.', [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]);
  readonly queueDepth = new Gauge('categorize_queue_depth', 'Prediction requests admitted and not finished (/predict and /predict/batch).');
  readonly queueLimit = new Gauge('categorize_queue_limit', 'Most prediction requests admitted at once (--max-queue); more get 503.');
  readonly ready = new Gauge('categorize_ready', '1 once the bundle and its models are loaded, 0 while loading or shutting down.');
  readonly cacheLookups = new Counter('categorize_embed_cache_lookups_total', 'Embedding cache (--cache) lookups, by result (hit, miss); absent without a cache.');
  readonly bundleInfo = new Gauge(
    'categorize_bundle_info',
    'The loaded bundle, as labels: kind (flat, or paths for category paths) and a path bundle\'s path_separator; 1 once loaded.',
  );
  readonly minPathScore = new Gauge(
    'categorize_min_path_score',
    'A path bundle\'s answer threshold (--min-path-score, else the bundle\'s); a request may send its own min_path_score. Absent for a flat bundle.',
  );
  readonly targetPrecision = new Gauge(
    'categorize_target_precision',
    'The target precision answers are decided accept/review at (--target-precision, else the bundle\'s first stored target); a request may send its own target_precision. Absent without one.',
  );
  readonly decisionThreshold = new Gauge(
    'categorize_decision_threshold',
    'The calibrated score an answer needs to be accepted at categorize_target_precision (a path bundle: its full path\'s). Absent without a target.',
  );
  readonly rss = new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');

  private readonly all: Metric[] = [
    this.requests,
    this.latency,
    this.errors,
    this.modelBatch,
    this.batchRows,
    this.queueDepth,
    this.queueLimit,
    this.ready,
    this.cacheLookups,
    this.bundleInfo,
    this.minPathScore,
    this.targetPrecision,
    this.decisionThreshold,
    this.rss,
  ];

  expose(): string {
    this.rss.set(process.memoryUsage.rss());
    return this.all.map((m) => m.expose()).join('');
  }
}
