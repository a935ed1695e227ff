// `categorize serve` wiring: flags into ServeOptions, the bound address on stdout, SIGTERM/SIGINT into a graceful
// shutdown (exit 0). Kept out of main.ts so the command is one registration line there.
import fs from 'node:fs';
import type { Command } from 'commander';
import { serveCommand } from '../commands/serve.js';
import { MIN_PATH_SCORE_HELP, TARGET_PRECISION_HELP, floatOption, intOption, listOption, oneTargetPrecision } from './options.js';
import { addPipelineOptions, cliLog, pipelineOptions, type Io, type PipelineFlags } from './pipeline-options.js';
import { onStopSignals } from './stop-signals.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

interface ServeFlags extends PipelineFlags {
  model: string;
  host: string;
  port: number;
  maxUploadMb: number;
  requestTimeoutMs: number;
  maxQueue: number;
  shutdownTimeoutMs: number;
  allowImageUrls?: boolean;
  topN: number;
  minPathScore?: number;
  targetPrecision?: number;
  attributes?: string[];
}

export function addServeCommand(program: Command, io: Io, env: NodeJS.ProcessEnv): void {
  const cmd = addPipelineOptions(
    program
      .command('serve')
      .description(
        "HTTP service over a bundle (run's pipeline; concurrent requests share micro-batches): POST /predict (multipart image + title, description, top_k_tags; a path bundle adds the path fields and takes min_path_score; with a target precision, decision and target_precision come last), POST /predict/batch (JSON lines or CSV in, run's records out), GET /healthz, /readyz, /metrics.",
      )
      .requiredOption('-m, --model <dir>', 'model bundle folder')
      .option('--host <address>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
      .option('-p, --port <n>', 'port to listen on (0: any free port; the address is printed on stdout)', intOption(0, 65535), 8000)
      .option('--max-upload-mb <mb>', 'largest uploaded image (and image_base64 of a batch row); larger: 413', floatOption(0.001, 1024), 20)
      .option('--request-timeout-ms <ms>', '/predict: longest from request start to answer (upload, queue, prediction); then 504', intOption(1, 3_600_000), 30_000)
      .option('--max-queue <n>', 'prediction requests in flight at once; more get 503 with Retry-After', intOption(1, 1_000_000), 64)
      .option('--shutdown-timeout-ms <ms>', 'on SIGTERM/SIGINT, how long requests in flight may take before their connections are cut', intOption(0, 3_600_000), 30_000)
      .option('--allow-image-urls', '/predict/batch: fetch http(s) image URLs that rows name (default: refused, as the server would fetch what clients ask)')
      .option('--top-n <n>', 'categories listed in top_categories', intOption(1, 1000), 3)
      .option('--min-path-score <p>', `${MIN_PATH_SCORE_HELP}; a request may send its own min_path_score`, floatOption(0, 1))
      .option('--target-precision <p>', `${TARGET_PRECISION_HELP}; answers add decision and target_precision, and a request may send its own target_precision`, oneTargetPrecision)
      .option('--attributes <a,b>', "answer only these of the bundle's attributes (train --attribute; answers add an attributes object); default all", listOption),
    'override',
  );
  // The shared flags say what they mean for a catalog run; two mean something else here.
  for (const o of cmd.options) {
    if (o.long === '--image-root') o.description = '/predict/batch: rows may name image files under this folder only (default: no file is read)';
    if (o.long === '--quiet') o.description = 'no log lines on stderr (the listening address is still printed)';
  }
  cmd.action(async (flags: ServeFlags) => {
    const log = cliLog(flags, io);
    log.event('start', { command: 'serve', version: pkg.version, model: flags.model, host: flags.host, port: flags.port });
    // First signal: graceful shutdown (the command returns, exit 0).
    const stop = onStopSignals(log, 'no new requests; finishing the ones in flight');
    try {
      const summary = await serveCommand({
        ...pipelineOptions(flags, io, env),
        model: flags.model,
        host: flags.host,
        port: flags.port,
        topN: flags.topN,
        minPathScore: flags.minPathScore,
        targetPrecision: flags.targetPrecision,
        attributes: flags.attributes,
        maxUploadBytes: Math.round(flags.maxUploadMb * 1024 * 1024),
        requestTimeoutMs: flags.requestTimeoutMs,
        maxQueue: flags.maxQueue,
        shutdownTimeoutMs: flags.shutdownTimeoutMs,
        allowImageUrls: Boolean(flags.allowImageUrls),
        signal: stop.signal,
        // On stdout, always: scripts and tests started with --port 0 read the port from it.
        onListening: (url) => io.stdout.write(`listening on ${url}\n`),
        onReady: (seconds) => {
          log.line(`ready: ${flags.model} loaded in ${seconds.toFixed(1)} s`);
          log.event('ready', { model: flags.model, seconds });
        },
      });
      log.line(`stopped: ${summary.requests} requests served in ${summary.uptimeSeconds.toFixed(0)} s`);
      log.event('summary', { ...summary });
    } finally {
      stop.dispose();
    }
  });
}
