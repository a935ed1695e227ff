// `categorize models …` wiring: list, pull, verify, info, add. Output for people on stdout (tables), logs on stderr.
import { Command, Option } from 'commander';
import { addModel, inferModelKind, listModels, modelInfo, pullModels, pullSelection, verifyCache, type ModelListRow } from '../commands/models.js';
import { formatOnnxDescription } from '../models/inspect.js';
import { displayWidth } from '../report/table.js';
import { ExitCode, UsageError } from '../errors.js';
import { modelContext, type ModelFlags } from './model-context.js';
import { intOption } from './options.js';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream };

const mb = (n: number | null) => (n === null ? '?' : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);

/** Left-aligned columns measured in terminal cells. */
export function formatColumns(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - displayWidth(c)))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

function formatList(rows: ModelListRow[], cacheRoot: string): string {
  const table = formatColumns(
    ['MODEL', 'VARIANT', 'SIZE', 'REVISION', 'CACHED', 'LICENSE'],
    rows.map((r) => [
      `${r.id}${r.isDefault ? ' *' : ''}`,
      r.variant,
      mb(r.size),
      r.revision ? `${r.revision.slice(0, 12)}${r.pinned ? '' : ' (resolved)'}` : 'unpinned',
      r.shipped ? (r.cached === 'complete' ? 'shipped' : 'shipped, missing') : r.cached === 'complete' ? 'yes' : r.cached === 'partial' ? 'partial' : 'no',
      r.license ?? '',
    ]),
  );
  return `${table}\n\n* default for its kind · shipped: in the package, never downloaded · cache: ${cacheRoot}`;
}

export function addModelsCommand(program: Command, io: Io, env: NodeJS.ProcessEnv, setCode: (c: number) => void): void {
  const models = program
    .command('models')
    .description('List, download, verify and inspect embedding models (registry: models/registry.json + your own).')
    .addHelpText(
      'after',
      `
Environment:
  CATEGORIZE_CACHE    model cache folder (default $XDG_CACHE_HOME/categorize or ~/.cache/categorize)
  HF_ENDPOINT         hub or mirror to download from (default https://huggingface.co)
  HF_TOKEN            bearer token for gated or private repositories
  HF_HUB_OFFLINE=1    never touch the network (same as --offline)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY   proxies for downloads
  CATEGORIZE_REGISTRY a registry file replacing the shipped one (e.g. a mirror's)`,
    );
  const ctxFor = (flags: ModelFlags) => modelContext(env, flags, io.stderr);

  models
    .command('list')
    .description('Registry entries (each variant) and what the cache holds (or categorize ships): sizes, revisions, licences.')
    .option('--json', 'print the rows as JSON')
    .action((flags: { json?: boolean }) => {
      const ctx = ctxFor({ quiet: true });
      const rows = listModels(ctx);
      io.stdout.write((flags.json ? JSON.stringify(rows, null, 2) : formatList(rows, ctx.cache.root)) + '\n');
    });

  models
    .command('pull')
    .description('Download models into the cache and verify their sha256 (default: the default text and image models); a model shipped with categorize is only checked.')
    .argument('[models...]', 'registry references: [text:|image:]name[:variant]')
    .option('--variant <name>', 'variant to pull (fp32, quantized, fp16 …)')
    .option('--revision <commit>', 'a commit other than the registry’s (one model at a time)')
    .option('--offline', 'do not download: only check that the files are cached (also HF_HUB_OFFLINE=1)')
    .option('-q, --quiet', 'no progress output')
    .action(async (refs: string[], flags: ModelFlags & { variant?: string; revision?: string }) => {
      const ctx = ctxFor(flags);
      const pulled = await pullModels(pullSelection(ctx, refs, flags.variant), { revision: flags.revision }, ctx);
      for (const p of pulled) {
        if (p.shipped) {
          io.stdout.write(`${p.id} (${p.variant}): shipped with categorize, nothing to download; sha256 ${p.sha256.slice(0, 12)}… as the registry pins it\n  ${p.dir}\n`);
          continue;
        }
        const fetched = p.files.filter((f) => !f.cached).length;
        // Say how each file's hash was checked: pinned by the registry, published by the hub, or only recorded.
        const by = (v: string) => p.files.filter((f) => f.verified === v).length;
        const checks = [['registry', 'pinned by the registry'], ['hub', "the hub's LFS sha256"], ['local', 'added locally'], ['unverified', 'recorded on arrival']]
          .filter(([v]) => by(v!) > 0)
          .map(([v, what]) => `${by(v!)} ${what}`)
          .join(', ');
        io.stdout.write(
          `${p.id} (${p.variant}) @ ${p.revision.slice(0, 12)}: ${p.files.length} files, ${fetched ? `${fetched} downloaded` : 'all cached'}; sha256: ${checks}` +
            `${p.tap ? `; embedding output '${p.output}' tapped from ${p.tap.source}` : ''}\n  ${p.dir}\n`,
        );
      }
    });

  models
    .command('verify')
    .description('Re-hash every cached file against what was recorded and what the registry pins, and the models shipped with categorize; exit 1 on any mismatch.')
    .option('-q, --quiet', 'print only problems')
    .action((flags: { quiet?: boolean }) => {
      const ctx = ctxFor({ quiet: true });
      const r = verifyCache(ctx, flags.quiet ? undefined : (dir, file) => io.stderr.write(`categorize: hashing ${file} in ${dir}\n`));
      for (const p of r.problems) io.stdout.write(`MISMATCH ${p.dir}/${p.file}: ${p.problem}\n`);
      io.stdout.write(`${r.files} files in ${r.folders} folders (${mb(r.bytes)}${r.shipped ? `; ${r.shipped} shipped with categorize` : ''}) checked: ${r.problems.length ? `${r.problems.length} problem(s); pull the model again to repair` : 'all verified'}\n`);
      if (r.problems.length) setCode(ExitCode.runtime);
    });

  models
    .command('info')
    .description('Describe an ONNX model: inputs, outputs, shapes, opsets, parameters, size, sha256, pooled-feature tap.')
    .argument('<model>', '.onnx file, model folder, or registry reference of a cached model')
    .option('--json', 'print as JSON')
    .action((target: string, flags: { json?: boolean }) => {
      const d = modelInfo(target, ctxFor({ quiet: true }));
      io.stdout.write((flags.json ? JSON.stringify(d, null, 2) : formatOnnxDescription(d)) + '\n');
    });

  models
    .command('add')
    .alias('import')
    .description('Register local files as a model: copied into the cache with their hashes, listed in your registry.')
    .argument('<path>', 'model folder (model.onnx + tokenizer files for text) or an .onnx file (image)')
    .addOption(new Option('--kind <kind>', 'text or image (default: read from the model: token inputs → text, one 4-D float input → image)').choices(['text', 'image']))
    .option('--id <name>', 'name to use with --text-model/--image-model, e.g. my-vit')
    .option('--name <name>', 'same as --id')
    .option('--tap <auto|tensor|logits>', 'image classifiers: expose the pooled features (auto), a named tensor, or keep the output (logits)')
    .option('--output <name>', 'output holding the embedding')
    .option('--max-length <n>', 'text models: tokens per text', intOption(1, 8192))
    .option('--license <spdx>', 'licence to record')
    .option('-q, --quiet', 'no log lines')
    .action(async (location: string, flags: ModelFlags & { kind?: 'text' | 'image'; id?: string; name?: string; tap?: string; output?: string; maxLength?: number; license?: string }) => {
      const id = flags.id ?? flags.name;
      if (!id) throw new UsageError('models add: give the model a name with --name (or --id)');
      if (flags.id && flags.name && flags.id !== flags.name) throw new UsageError(`models add: --id ${flags.id} and --name ${flags.name} disagree`);
      const ctx = ctxFor({ quiet: flags.quiet });
      const { entry, pulled } = await addModel(location, { kind: flags.kind ?? inferModelKind(location), id, tap: flags.tap, output: flags.output, maxLength: flags.maxLength, license: flags.license }, ctx);
      io.stdout.write(`${entry.id} added (sha256 ${entry.variants.fp32!.sha256}); embedding output '${pulled.output}'${pulled.tap ? ` tapped from ${pulled.tap.source}` : ''}\n  ${pulled.dir}\n  registry: ${ctx.cache.userRegistryFile}\n`);
    });
}
