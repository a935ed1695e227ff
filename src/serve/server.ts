// The HTTP service behind `categorize serve`: Fastify routes over one bundle session (run's pipeline), with
// readiness, a bounded number of requests in flight, per-request timeouts, Prometheus metrics and a graceful close.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BundleSession } from '../pipeline/bundle-session.js';
import { bundleInputs } from '../models/bundle.js';
import { oneLine, reasonCode, UsageError } from '../errors.js';
import { HttpError, parseIntField, unavailable, validationError, type FieldProblem } from './http-error.js';
import { CONTENT_TYPE, ServeMetrics } from './metrics.js';
import { imagePolicy } from './image-policy.js';
import { MAX_FIELD_BYTES, DEFAULT_TOP_K_TAGS, predictUpload, readPredictForm } from './predict.js';
import { batchRows, runBatch } from './batch.js';
import { MAX_TOP_K_TAGS, openServeSession, type ServeSessionOptions } from './session.js';
import { parseScoreField, servePaths, type ServePaths } from './paths.js';
import { parseTargetField, requestDecision, serveDecision, type ServeDecision } from './decision.js';

export interface ServeOptions extends ServeSessionOptions {
  host: string;
  /** 0: any free port (tests, load tests). */
  port: number;
  /** /predict/batch rows may name image files under this folder only; without it, none. */
  imageRoot?: string;
  /** /predict/batch rows may name http(s) image URLs for the server to fetch. */
  allowImageUrls: boolean;
  /** Largest uploaded image (and image_base64 of a batch row), in bytes. */
  maxUploadBytes: number;
  /** /predict: longest from the request's start to its answer (upload, queue and prediction); then 504. */
  requestTimeoutMs: number;
  /** Prediction requests admitted at once; more get 503 with Retry-After. */
  maxQueue: number;
  /** On close, how long requests in flight may take before their connections are cut. */
  shutdownTimeoutMs: number;
}

export interface ServeDeps {
  /** How the bundle session is opened (tests substitute a slow or failing one). */
  openSession?: (opts: ServeOptions) => Promise<BundleSession>;
}

export interface ServeApp {
  app: FastifyInstance;
  metrics: ServeMetrics;
  /** Settles when the models are loaded (resolves) or failed to load (rejects: a configuration error). */
  ready: Promise<void>;
  isReady(): boolean;
  /** Stops taking requests, finishes those in flight (up to shutdownTimeoutMs), closes the session. Idempotent. */
  close(): Promise<void>;
}

export interface RunningServer extends ServeApp {
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  port: number;
}

/** Bytes a /predict request may hold besides its image (form fields, multipart framing) before it is refused unread. */
const FORM_SLACK_BYTES = MAX_FIELD_BYTES + 64 * 1024;
/** The response stream of a batch buffers this much before it waits for the client to read. */
const BATCH_OUTPUT_BUFFER = 1024 * 1024;

function route(req: FastifyRequest): string {
  return req.routeOptions.url ?? 'unmatched';
}

/** A repeated query parameter is its last value, as Starlette reads a scalar one (fastify gives an array). */
function queryValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.at(-1) : v;
}

function timeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(504, `request timed out after ${ms} ms`, 'timeout', { connection: 'close' })), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

export async function buildServer(opts: ServeOptions, deps: ServeDeps = {}): Promise<ServeApp> {
  const log = opts.log ?? (() => {});
  const policy = await imagePolicy(opts.imageRoot, opts.allowImageUrls);
  const metrics = new ServeMetrics();
  metrics.queueLimit.set(opts.maxQueue);
  metrics.queueDepth.set(0);
  metrics.ready.set(0);

  let session: BundleSession | undefined;
  /** Set with the session: a path bundle's tree and threshold, null for a flat bundle. */
  let paths: ServePaths | null = null;
  /** Set with the session: the bundle's calibration and the server's decision. */
  let decisions: ServeDecision = { calibration: undefined, decision: null, source: 'bundle' };
  let closing = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const ready = (deps.openSession ?? ((o: ServeOptions) => openServeSession({ ...o, imageRoot: policy.root })))(opts).then((s) => {
    paths = servePaths(s, opts.minPathScore);
    if (paths) {
      metrics.bundleInfo.set(1, { kind: 'paths', path_separator: paths.separator });
      metrics.minPathScore.set(paths.minScore);
      const from = paths.source === 'bundle' ? "the bundle's" : '--min-path-score';
      log(`category paths: ${paths.tree.size} nodes, ${paths.tree.maxDepth} levels; answering at min-path-score ${paths.minScore} (${from}; requests may send min_path_score)`);
    } else {
      metrics.bundleInfo.set(1, { kind: 'flat' });
      if (opts.minPathScore !== undefined) log(`warning: --min-path-score ${opts.minPathScore} has no effect: ${opts.model} is a flat bundle (no category paths)`);
    }
    decisions = serveDecision(s, opts.targetPrecision);
    const d = decisions.decision;
    if (d) {
      metrics.targetPrecision.set(d.target);
      metrics.decisionThreshold.set(d.threshold);
      const from = decisions.source === 'bundle' ? "the bundle's first stored target" : '--target-precision';
      log(`decisions: accept at target precision ${d.target} (score ≥ ${d.threshold.toFixed(4)}; ${from}), else review; requests may send target_precision`);
    }
    session = s;
    if (!closing) metrics.ready.set(1);
  });
  ready.catch(() => {});

  /** Encoder batch sizes move from the predictor's lists (which only grow) into the histogram. */
  const drainBatchSizes = () => {
    if (!session) return;
    for (const [model, sizes] of Object.entries(session.predictor.batchSizes)) {
      for (const n of sizes.splice(0)) metrics.modelBatch.observe(n, { model });
    }
  };

  /** A slot among --max-queue, or 503; the release is idempotent and comes when the work is really over. */
  const admit = (): { session: BundleSession; release: () => void } => {
    if (closing) throw unavailable('the server is shutting down', 'shutting_down');
    if (!session) throw unavailable('models are loading', 'loading', 5);
    if (inFlight >= opts.maxQueue) throw unavailable(`busy: ${inFlight} requests in flight (--max-queue ${opts.maxQueue})`, 'queue_full');
    inFlight++;
    metrics.queueDepth.set(inFlight);
    let released = false;
    return {
      session,
      release: () => {
        if (released) return;
        released = true;
        inFlight--;
        metrics.queueDepth.set(inFlight);
        if (inFlight === 0) idle?.();
      },
    };
  };

  // Loaded here: no other command needs the web server.
  const [{ default: Fastify }, { default: multipart }] = await Promise.all([import('fastify'), import('@fastify/multipart')]);
  const app = Fastify({ logger: false, return503OnClosing: false, forceCloseConnections: 'idle' });
  await app.register(multipart);

  app.addHook('onSend', async (_req, reply) => {
    // While closing, each answer ends its connection, so keep-alive clients reconnect to another instance.
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (req, reply) => {
    const r = route(req);
    metrics.requests.inc({ route: r, method: req.method, status: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000, { route: r });
    drainBatchSizes();
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req: FastifyRequest, reply: FastifyReply) => {
    let e: HttpError;
    if (err instanceof HttpError) e = err;
    // A batch body that breaks off before any record went out (an unparseable CSV): the client's input, not us.
    else if (err instanceof UsageError) e = new HttpError(422, err.message, err.code);
    else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      e = new HttpError(err.statusCode, err.message, (err.code ?? 'client_error').replace(/^FST_ERR_/, '').toLowerCase());
    } else {
      log(`error: ${req.method} ${req.url}: ${oneLine(err)}`);
      e = new HttpError(500, 'Internal Server Error', 'internal');
    }
    if (err instanceof HttpError && e.status === 500) log(`error: ${req.method} ${req.url}: ${e.message}`);
    metrics.errors.inc({ route: route(req), code: e.code });
    return reply.code(e.status).headers(e.headers).type('application/json; charset=utf-8').send({ detail: e.detail });
  });
  app.setNotFoundHandler((req, reply) => {
    metrics.errors.inc({ route: 'unmatched', code: 'not_found' });
    return reply.code(404).send({ detail: 'Not Found' });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (session && !closing) return { status: 'ready' };
    const why = closing ? 'shutting_down' : 'loading';
    return reply.code(503).header('retry-after', '5').send({ status: why });
  });
  app.get('/metrics', async (_req, reply) => {
    drainBatchSizes();
    const cache = session?.cache?.stats;
    if (cache) {
      metrics.cacheLookups.set(cache.hits, { result: 'hit' });
      metrics.cacheLookups.set(cache.misses, { result: 'miss' });
    }
    return reply.type(CONTENT_TYPE).send(metrics.expose());
  });

  await app.register(async (scope) => {
    // Any body reaches the handler unread: a form is read part by part, and anything else is a missing image
    // (422, as FastAPI answers), not a 415 from the parser.
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    scope.post(
      '/predict',
      {
        onRequest: async (req) => {
          const length = Number(req.headers['content-length']);
          if (length > opts.maxUploadBytes + FORM_SLACK_BYTES) {
            throw new HttpError(413, `request of ${length} bytes is over the upload limit (--max-upload-mb: ${opts.maxUploadBytes} bytes)`, 'upload_too_large', {
              connection: 'close',
            });
          }
        },
      },
      async (req, reply) => {
        const { session: s, release } = admit();
        const p = paths;
        const served = decisions;
        // The request's target is resolved before the model is called: one it cannot have costs no prediction.
        const work = readPredictForm(req, opts.maxUploadBytes, { paths: p !== null }).then((form) =>
          predictUpload(s.predictor, form, p, requestDecision(served, form.targetPrecision)),
        );
        // The slot is held until the work is over, even after a timeout answered: the bound is on work, not replies.
        work.finally(release).catch(() => {});
        const { body, warnings } = await timeout(work, opts.requestTimeoutMs);
        if (warnings.length > 0) reply.header('x-categorize-warnings', warnings.map(reasonCode).join(', '));
        return body;
      },
    );
  });

  await app.register(async (scope) => {
    // The body stays a stream: rows are predicted while it arrives.
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.post('/predict/batch', async (req, reply) => {
      const query = req.query as Record<string, string | string[] | undefined>;
      const topKTags = parseIntField(queryValue(query.top_k_tags), 'top_k_tags', 'query', DEFAULT_TOP_K_TAGS, 0, MAX_TOP_K_TAGS);
      // As on /predict: a flat bundle leaves min_path_score unread (unknown parameters are ignored, as before).
      const p = paths;
      const minPathScore = p ? parseScoreField(queryValue(query.min_path_score), 'min_path_score', 'query') : undefined;
      const targetPrecision = parseTargetField(queryValue(query.target_precision), 'target_precision', 'query');
      const problems = [topKTags, minPathScore, targetPrecision].filter((x): x is FieldProblem => typeof x === 'object');
      if (problems.length > 0) throw validationError(problems);
      // Before admission and before a byte of the body is read: a target the bundle cannot serve is a 400 at once.
      // While loading there is no calibration to resolve against: admit() answers 503 first.
      const decision = session ? requestDecision(decisions, targetPrecision as number | undefined) : null;
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      const { session: s, release } = admit();
      try {
        if (!(req.body instanceof Readable)) throw new HttpError(415, `send the rows as application/x-ndjson (JSON lines) or text/csv, not ${type}`, 'unsupported_media_type');
        const rows = await batchRows({
          type,
          body: req.body,
          columns: { ...opts.columns, require: bundleInputs(s.bundle), extra: [] },
          delimiter: opts.delimiter,
          maxImageBytes: opts.maxUploadBytes,
        });
        const aborted = new AbortController();
        const format = /\btext\/csv\b/.test(req.headers.accept ?? '') ? 'csv' : 'jsonl';
        const batch = await runBatch(rows, {
          predictor: s.predictor,
          policy,
          format,
          topKTags: topKTags as number,
          paths: p,
          minPathScore: minPathScore as number | undefined,
          decision,
          window: opts.window,
          signal: aborted.signal,
          outputBuffer: BATCH_OUTPUT_BUFFER,
          onRowError: (code) => metrics.errors.inc({ route: '/predict/batch', code }),
        });
        reply.raw.on('close', () => {
          if (reply.raw.writableFinished) return;
          aborted.abort();
          batch.output.destroy(new Error('the client closed the connection'));
        });
        batch.done
          .then(
            (rowCount) => metrics.batchRows.observe(rowCount),
            (err: unknown) => {
              metrics.errors.inc({ route: '/predict/batch', code: 'batch_aborted' });
              if (!aborted.signal.aborted) log(`warning: /predict/batch ended early: ${oneLine(err)}`);
            },
          )
          .finally(release);
        return reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson').send(batch.output);
      } catch (err) {
        release();
        throw err;
      }
    });
  });

  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      closing = true;
      metrics.ready.set(0);
      // Rows waiting for a micro-batch to fill go now.
      session?.predictor.flush();
      let cut: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        cut = setTimeout(() => {
          app.server.closeAllConnections();
          resolve();
        }, opts.shutdownTimeoutMs);
      });
      try {
        await app.close();
        // Work whose answer already went (a timeout) may still hold a slot; the session must outlive it.
        if (inFlight > 0) await Promise.race([new Promise<void>((resolve) => (idle = resolve)), deadline]);
      } finally {
        clearTimeout(cut);
      }
      await ready.catch(() => {});
      await session?.close();
    })());

  return { app, metrics, ready, isReady: () => session !== undefined && !closing, close };
}

/** Builds the server and listens; models load in the background (/readyz says when). */
export async function startServer(opts: ServeOptions, deps: ServeDeps = {}): Promise<RunningServer> {
  const server = await buildServer(opts, deps);
  let url: string;
  try {
    url = await server.app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await server.close().catch(() => {});
    throw err;
  }
  const address = server.app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return { ...server, url, port };
}
