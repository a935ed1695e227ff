// Flags shared by every command that reads a catalog and embeds it (run, train, eval, check), and their mapping
// into the options object the commands take.
import path from 'node:path';
import { Command, Option } from 'commander';
import { floatOption, intOption } from './options.js';
import { modelContext } from './model-context.js';
import { CliLog, type LogFormat } from './log.js';
import { UsageError } from '../errors.js';
import type { EmbedCacheSetting } from '../pipeline/bundle-session.js';
import { runsOnGpu } from '../runtime/session.js';

export type Io = { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream };

/** Flags shared by every command that reads a catalog and embeds it. */
export interface PipelineFlags {
  idColumn: string;
  titleColumn: string;
  descriptionColumn: string;
  imageColumn?: string;
  imageRoot?: string;
  delimiter?: string;
  textModel?: string;
  imageModel?: string;
  device: 'auto' | 'cpu' | 'cuda';
  threads: number;
  replicas: number;
  batchSize?: number;
  maxWaitMs: number;
  concurrency: number;
  window?: number;
  onImageError: 'impute' | 'error';
  fetchTimeoutMs: number;
  fetchRetries: number;
  maxImageMb: number;
  maxImagePixels: number;
  offline?: boolean;
  allowDownload?: boolean;
  ignoreModelMismatch?: boolean;
  cache?: string;
  cacheMaxGb?: number;
  logFormat: LogFormat;
  quiet: boolean;
}

export function addPipelineOptions(cmd: Command, models: 'override' | 'choose'): Command {
  const overrideWord = models === 'override' ? ", overriding the bundle's" : "; default: the preset's (--preset), else the registry default";
  return cmd
    .option('--id-column <name>', 'id column (when absent: the 1-based row number)', 'id')
    .option('--title-column <name>', 'title column', 'title')
    .option('--description-column <name>', 'description column', 'description')
    .option('--image-column <name>', "image column: path or http(s) URL (default: 'image', else 'image_path')")
    .option('--image-root <dir>', "folder relative image paths resolve against (default: the CSV's folder; cwd for stdin)")
    .option('--delimiter <char>', 'field delimiter (default: detected from the header line; tab for .tsv)')
    .option('--text-model <id|dir>', `text model: registry reference (categorize models list) or folder (model.onnx + tokenizer.json)${overrideWord}`)
    .option('--image-model <id|dir|file>', `image model: registry reference, folder or .onnx file (a classifier export's pooled feature is tapped, as models import does)${overrideWord}`)
    .option('--allow-download', 'download a registry model missing from the cache (default: fail, so nightly jobs never download)')
    .option('--offline', 'never touch the network (also HF_HUB_OFFLINE=1)')
    .option('--ignore-model-mismatch', "use a model whose sha256 differs from the one the bundle was trained with (warns)")
    .addOption(new Option('--device <device>', 'where models run').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('--threads <n>', 'ONNX Runtime intra-op threads per model copy (0: share the cores between the copies)', intOption(0, 256), 0)
    .option('--replicas <n>', 'copies of each model, each in its own worker thread (0: on CPU, one per core, at most 4, of the heaviest model (the image model when there is one) and 1 of the other; on a GPU, 1)', intOption(0, 64), 0)
    .option('--batch-size <n>', `most rows per model call (default: ${DEFAULT_BATCH.cpu} on CPU, ${DEFAULT_BATCH.gpu} on a GPU)`, intOption(1, 4096))
    .option('--max-wait-ms <ms>', 'longest a row waits for a batch to fill', intOption(0, 60000), 5)
    .option('--concurrency <n>', 'image reads, downloads and decodes at once', intOption(1, 1024), 8)
    .option('--window <n>', 'rows in flight at once (bounds memory; default 4 × batch size, at least 64)', intOption(1, 1_000_000))
    .addOption(
      new Option('--on-image-error <mode>', 'a row whose image fails but whose text is present: predict from text with a warning, or mark it an error')
        .choices(['impute', 'error'])
        .default('impute'),
    )
    .option('--fetch-timeout-ms <ms>', 'timeout per image download attempt', intOption(1, 600000), 15000)
    .option('--fetch-retries <n>', 'retries for an image download (5xx, network errors)', intOption(0, 10), 2)
    .option('--max-image-mb <mb>', 'largest image file or download, in MB', floatOption(0.001, 10240), 20)
    .option('--max-image-pixels <n>', 'largest decoded image in pixels (decompression-bomb guard)', intOption(1), 100_000_000)
    .option('--cache <dir>', 'embedding cache: embeddings kept here are not computed again (default: $CATEGORIZE_EMBED_CACHE, else none)')
    .option('--cache-max-gb <gb>', 'bound the embedding cache; the least recently used runs’ entries go first', floatOption(0.001, 1e6))
    .addOption(new Option('--log-format <format>', 'stderr: text for people, json for log collectors (one object per line)').choices(['text', 'json']).default('text'))
    .option('-q, --quiet', 'no progress and no summary on stderr', false);
}

function embedCacheSetting(flags: PipelineFlags, env: NodeJS.ProcessEnv): EmbedCacheSetting | undefined {
  const dir = flags.cache ?? (env.CATEGORIZE_EMBED_CACHE || undefined);
  if (!dir) {
    if (flags.cacheMaxGb !== undefined) throw new UsageError('--cache-max-gb needs --cache DIR (or CATEGORIZE_EMBED_CACHE)');
    return undefined;
  }
  return { dir, maxBytes: flags.cacheMaxGb !== undefined ? Math.round(flags.cacheMaxGb * 1024 ** 3) : undefined };
}

export function cliLog(flags: Pick<PipelineFlags, 'logFormat' | 'quiet'>, io: Io): CliLog {
  return new CliLog(io.stderr, flags.logFormat ?? 'text', flags.quiet);
}

/**
 * Rows per model call when --batch-size is not given. On CPU, batching buys little: ResNet-50's shape runs 26.1
 * images/s at batch 1, 25.5 at 4, 23.4 at 32 (2 cores); MiniLM-L6's, texts sorted by length, 80 texts/s one by
 * one, 89 at 4-8, 65 at 32; the int8 MobileNetV2 351 at 1, 535 at 8. Batches of 8 keep the per-call overhead of a
 * fast model small without long waits or big arenas (`npm run bench -- --levers`, `npm run bench:photos`).
 * On a GPU, batching is where the speed is.
 */
export const DEFAULT_BATCH = { cpu: 8, gpu: 32 } as const;

export function defaultBatchSize(device: PipelineFlags['device']): number {
  return runsOnGpu(device) ? DEFAULT_BATCH.gpu : DEFAULT_BATCH.cpu;
}

export function pipelineOptions(flags: PipelineFlags, io: Io, env: NodeJS.ProcessEnv) {
  const log = cliLog(flags, io);
  const batchSize = flags.batchSize ?? defaultBatchSize(flags.device);
  const models = modelContext(env, flags, io.stderr, log);
  return {
    models,
    optimizedModelDir: path.join(models.cache.root, 'optimized'),
    columns: {
      id: flags.idColumn,
      title: flags.titleColumn,
      description: flags.descriptionColumn,
      image: flags.imageColumn ? [flags.imageColumn] : ['image', 'image_path'],
    },
    delimiter: flags.delimiter === '\\t' ? '\t' : flags.delimiter,
    imageRoot: flags.imageRoot,
    textModel: flags.textModel,
    imageModel: flags.imageModel,
    device: flags.device,
    threads: flags.threads,
    replicas: flags.replicas,
    batchSize,
    maxWaitMs: flags.maxWaitMs,
    concurrency: flags.concurrency,
    window: flags.window ?? Math.max(64, 4 * batchSize),
    onImageError: flags.onImageError,
    fetch: { timeoutMs: flags.fetchTimeoutMs, retries: flags.fetchRetries, maxBytes: Math.round(flags.maxImageMb * 1024 * 1024) },
    maxPixels: flags.maxImagePixels,
    embedCache: embedCacheSetting(flags, env),
    log: (line: string) => log.line(line),
    stdin: io.stdin,
  };
}

