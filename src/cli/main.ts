// The CLI edge: parse argv into typed options, call a command, print its summary, map errors to exit codes.
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { runCommand, type RunSummary } from '../commands/run.js';
import { formatFor } from '../io/prediction-writer.js';
import { CategorizeError, ExitCode, oneLine } from '../errors.js';
import { makeProgress } from './progress.js';
import { choiceOption, floatOption, intOption, listOption } from './options.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

interface RunFlags {
  output: string;
  format?: string;
  model: string;
  idColumn: string;
  titleColumn: string;
  descriptionColumn: string;
  imageColumn?: string;
  imageRoot?: string;
  delimiter?: string;
  keepColumns: string[];
  textModel?: string;
  imageModel?: string;
  device: 'auto' | 'cpu' | 'cuda';
  threads: number;
  batchSize: number;
  maxWaitMs: number;
  concurrency: number;
  window?: number;
  topN: number;
  topKTags: number;
  maxErrorRate: number;
  onImageError: 'impute' | 'error';
  fetchTimeoutMs: number;
  fetchRetries: number;
  maxImageMb: number;
  maxImagePixels: number;
  quiet: boolean;
  jsonSummary?: string;
}

function formatSummary(s: RunSummary): string {
  const reasons = Object.entries(s.reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `categorize: ${s.rows} rows · ${s.ok} ok · ${s.errors} errors · ${s.warned} with warnings · ` +
    `${s.elapsedSeconds.toFixed(2)} s · ${s.rowsPerSecond.toFixed(1)} rows/s` +
    (reasons ? `\n  reasons: ${reasons}` : '') +
    `\n  output: ${s.output === '-' ? 'stdout' : s.output}`
  );
}

function buildProgram(io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream }, setCode: (c: number) => void): Command {
  const program = new Command('categorize')
    .description('Batch categorizer for e-commerce catalogs: text + image embeddings, a trained classifier head, TF-IDF tags.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => io.stderr.write(s), writeOut: (s) => io.stdout.write(s) });

  program
    .command('run')
    .description('Categorize every row of a catalog (CSV/TSV) with a model bundle; writes one JSONL or CSV record per input row.')
    .argument('<input>', "catalog CSV or TSV file, or '-' for stdin")
    .requiredOption('-m, --model <dir>', 'model bundle folder (manifest.json, classifier.onnx, tfidf.json)')
    .option('-o, --output <file>', "predictions file (.jsonl, .ndjson or .csv), or '-' for stdout", '-')
    .addOption(new Option('--format <format>', 'output format (default: from the file extension; JSONL on stdout)').choices(['jsonl', 'csv']))
    .option('--id-column <name>', 'id column (when absent: the 1-based row number)', 'id')
    .option('--title-column <name>', 'title column', 'title')
    .option('--description-column <name>', 'description column', 'description')
    .option('--image-column <name>', "image column: path or http(s) URL (default: 'image', else 'image_path')")
    .option('--image-root <dir>', "folder relative image paths resolve against (default: the CSV's folder; cwd for stdin)")
    .option('--delimiter <char>', 'field delimiter (default: detected from the header line; tab for .tsv)')
    .option('--keep-columns <a,b>', 'input columns to copy into each output record', listOption, [])
    .option('--text-model <dir>', "text model folder, overriding the bundle's")
    .option('--image-model <dir|file>', "image model folder or .onnx file, overriding the bundle's")
    .addOption(new Option('--device <device>', 'where models run').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .option('--threads <n>', 'ONNX Runtime intra-op threads per model (0: share the cores between models)', intOption(0, 256), 0)
    .option('--batch-size <n>', 'rows per model call', intOption(1, 4096), 32)
    .option('--max-wait-ms <ms>', 'longest a row waits for a batch to fill', intOption(0, 60000), 5)
    .option('--concurrency <n>', 'image reads, downloads and decodes at once', intOption(1, 1024), 8)
    .option('--window <n>', 'rows in flight at once (bounds memory; default 4 × batch size, at least 64)', intOption(1, 1_000_000))
    .option('--top-n <n>', 'categories listed per row in top_categories', intOption(1, 1000), 3)
    .option('--top-k-tags <k>', 'tags per row', intOption(0, 1000), 5)
    .option('--max-error-rate <r>', 'exit 3 when the share of error rows exceeds r (after writing everything)', floatOption(0, 1), 1)
    .addOption(
      new Option('--on-image-error <mode>', 'a row whose image fails but whose text is present: predict from text with a warning, or mark it an error')
        .choices(['impute', 'error'])
        .default('impute'),
    )
    .option('--fetch-timeout-ms <ms>', 'timeout per image download attempt', intOption(1, 600000), 15000)
    .option('--fetch-retries <n>', 'retries for an image download (5xx, network errors)', intOption(0, 10), 2)
    .option('--max-image-mb <mb>', 'largest image file or download, in MB', floatOption(0.001, 10240), 20)
    .option('--max-image-pixels <n>', 'largest decoded image in pixels (decompression-bomb guard)', intOption(1), 100_000_000)
    .option('-q, --quiet', 'no progress and no summary on stderr', false)
    .option('--json-summary <file>', 'write the run summary as JSON')
    .action(async (input: string, flags: RunFlags) => {
      const imageColumns = flags.imageColumn ? [flags.imageColumn] : ['image', 'image_path'];
      const log = (line: string) => {
        if (!flags.quiet) io.stderr.write(`categorize: ${line}\n`);
      };
      const summary = await runCommand({
        input,
        output: flags.output,
        format: formatFor(flags.output, flags.format),
        model: flags.model,
        columns: { id: flags.idColumn, title: flags.titleColumn, description: flags.descriptionColumn, image: imageColumns },
        delimiter: flags.delimiter === '\\t' ? '\t' : flags.delimiter,
        imageRoot: flags.imageRoot,
        keepColumns: flags.keepColumns,
        textModel: flags.textModel,
        imageModel: flags.imageModel,
        device: flags.device,
        threads: flags.threads,
        batchSize: flags.batchSize,
        maxWaitMs: flags.maxWaitMs,
        concurrency: flags.concurrency,
        window: flags.window ?? Math.max(64, 4 * flags.batchSize),
        topN: flags.topN,
        topKTags: flags.topKTags,
        maxErrorRate: flags.maxErrorRate,
        onImageError: flags.onImageError,
        fetch: { timeoutMs: flags.fetchTimeoutMs, retries: flags.fetchRetries, maxBytes: Math.round(flags.maxImageMb * 1024 * 1024) },
        maxPixels: flags.maxImagePixels,
        progress: makeProgress(io.stderr, { quiet: flags.quiet, label: 'categorize' }),
        log,
        stdin: io.stdin,
        stdout: io.stdout,
      });
      if (!flags.quiet) io.stderr.write(formatSummary(summary) + '\n');
      if (flags.jsonSummary) fs.writeFileSync(flags.jsonSummary, JSON.stringify(summary, null, 2) + '\n');
      if (summary.thresholdExceeded) {
        io.stderr.write(
          `categorize: error rate ${(summary.errorRate * 100).toFixed(2)}% exceeds --max-error-rate ${(summary.maxErrorRate * 100).toFixed(2)}%\n`,
        );
        setCode(ExitCode.threshold);
      }
    });
  return program;
}

/** Runs the CLI; resolves to the exit code (the caller sets process.exitCode). */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.ok;
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; everything else commander rejects is a usage error (message already printed).
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CategorizeError) {
      io.stderr.write(`categorize: error: ${oneLine(err)}\n`);
      return err.exitCode;
    }
    io.stderr.write(`categorize: internal error: ${oneLine(err)}\n`);
    if (process.env.CATEGORIZE_DEBUG) io.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
    return ExitCode.runtime;
  }
}
