// The model registry: which embedding models exist, where they come from (hub repository + pinned revision),
// which files to fetch and their hashes, and how to feed them. Shipped entries plus the user's own (`models add`).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, UsageError } from '../errors.js';
import type { ImagePreprocessSpec } from '../embed/image-preprocess.js';

export const REGISTRY_FORMAT = 'categorize-registry';
export const REGISTRY_VERSION = 1;

export type ModelKind = 'text' | 'image';

/** A file of a model; size and sha256 are null when the registry does not know them (then the hub's are used). */
export interface RegistryFile {
  file: string;
  size: number | null;
  sha256: string | null;
}

export interface RegistryEntry {
  /** `<kind>:<name>`, e.g. text:all-MiniLM-L6-v2. */
  id: string;
  kind: ModelKind;
  description?: string;
  /** Hub repository (owner/name); null for a model added from local files. */
  repository: string | null;
  /** A commit. null: the registry does not pin one; `pull` resolves the branch once and records the commit. */
  revision: string | null;
  revisionNote?: string;
  license?: string;
  inputs?: string[];
  /** Output holding the embedding (text: token states to pool; image: pooled features). */
  output: string;
  pooling?: 'mean';
  normalize?: boolean;
  dim: number | null;
  preprocess: { tokenizer?: string[]; maxLength?: number } & Partial<ImagePreprocessSpec>;
  /** ONNX files by variant name (fp32, quantized, fp16 …). */
  variants: Record<string, RegistryFile>;
  defaultVariant?: string;
  /** Other files the model needs (tokenizer, configs). */
  files: (string | RegistryFile)[];
  /** Image classifier exports: expose the pooled features as an output after download ('auto' or a tensor name). */
  tap?: string;
  /** For entries written by `models add`: where the files were copied from. */
  source?: string;
  /**
   * Shipped with categorize: the folder under the package's models/ holding the files (e.g. mobilenetv2-12-int8).
   * Never downloaded; every variant is pinned by size and sha256, and `revision` is `sha256-<first 12 hex digits>`.
   */
  shipped?: string;
}

export interface Registry {
  defaults: Partial<Record<ModelKind, string>>;
  entries: RegistryEntry[];
  /** Files the registry was read from, for messages. */
  sources: string[];
}

export const shippedRegistryFile = fileURLToPath(new URL('../../../models/registry.json', import.meta.url));
/** The package's models/ folder: shipped entries' files live in its subfolders. */
export const shippedModelsDir = path.dirname(shippedRegistryFile);

/** Folder of a shipped entry's files. */
export function shippedFolder(entry: RegistryEntry): string {
  return path.join(shippedModelsDir, entry.shipped!);
}

interface RegistryFileJson {
  format?: string;
  version?: number;
  defaults?: Partial<Record<ModelKind, string>>;
  models?: RegistryEntry[];
}

function readRegistryFile(file: string, required: boolean): RegistryFileJson {
  if (!fs.existsSync(file)) {
    if (required) throw new ConfigError(`model registry not found: ${file}`, 'registry');
    return {};
  }
  let json: RegistryFileJson;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as RegistryFileJson;
  } catch (err) {
    throw new ConfigError(`model registry ${file} is not valid JSON (${err instanceof Error ? err.message : String(err)})`, 'registry');
  }
  if (json.format !== REGISTRY_FORMAT) throw new ConfigError(`model registry ${file}: format is '${String(json.format)}', expected '${REGISTRY_FORMAT}'`, 'registry');
  if (typeof json.version !== 'number' || json.version > REGISTRY_VERSION) {
    throw new ConfigError(`model registry ${file}: version ${String(json.version)} is newer than this categorize supports (${REGISTRY_VERSION})`, 'registry');
  }
  for (const e of json.models ?? []) validateEntry(e, file);
  return json;
}

function validateEntry(e: RegistryEntry, file: string): void {
  const bad = (what: string) => {
    throw new ConfigError(`model registry ${file}: entry '${String(e.id)}' ${what}`, 'registry');
  };
  if (typeof e.id !== 'string' || !/^(text|image):[\w.\-]+$/.test(e.id)) bad('has an invalid id (expected text:<name> or image:<name>)');
  if (e.kind !== 'text' && e.kind !== 'image') bad(`has an invalid kind '${String(e.kind)}'`);
  if (!e.id.startsWith(`${e.kind}:`)) bad(`id does not start with its kind '${e.kind}:'`);
  if (!e.variants || Object.keys(e.variants).length === 0) bad('lists no variants');
  if (e.revision !== null && !/^[0-9a-f]{40}$|^sha256-[0-9a-f]{12,64}$/.test(e.revision)) bad(`pins revision '${e.revision}', which is not a commit (branches and tags move)`);
  for (const [name, v] of Object.entries(e.variants)) {
    if (!v.file) bad(`variant ${name} has no file`);
    if (v.sha256 !== null && !/^[0-9a-f]{64}$/.test(v.sha256)) bad(`variant ${name} has an invalid sha256`);
  }
  if (e.shipped !== undefined) {
    // Shipped files are never downloaded, so nothing but the pins can vouch for them.
    if (typeof e.shipped !== 'string' || path.isAbsolute(e.shipped) || e.shipped.split(/[\\/]/).some((p) => p === '..' || p === '')) bad('has an invalid shipped folder (a folder name under the package\'s models/)');
    if (e.repository !== null || !e.revision?.startsWith('sha256-')) bad('is shipped: it needs repository null and a sha256-… revision');
    for (const [name, v] of Object.entries(e.variants)) if (v.sha256 === null || v.size === null) bad(`is shipped but variant ${name} is not pinned by size and sha256`);
  }
}

/**
 * The shipped registry (or `registryFile` instead of it: a mirror's or a test's), then the user's entries from
 * `userFile` (written by `models add`); a user entry with the same id replaces the shipped one. The models whose
 * files ship in the package (`shipped`) stay available when `registryFile` replaces the list: they need no
 * download, whatever mirror the organisation uses (an entry of the same id in `registryFile` wins).
 */
export function loadRegistry(opts: { registryFile?: string; userFile?: string }): Registry {
  const mainFile = opts.registryFile ? path.resolve(opts.registryFile) : shippedRegistryFile;
  const main = readRegistryFile(mainFile, true);
  const packaged = mainFile === shippedRegistryFile ? [] : (readRegistryFile(shippedRegistryFile, false).models ?? []).filter((e) => e.shipped);
  const user = opts.userFile ? readRegistryFile(opts.userFile, false) : {};
  const byId = new Map<string, RegistryEntry>();
  for (const e of [...(main.models ?? []), ...(user.models ?? [])]) byId.set(e.id, e);
  for (const e of packaged) if (!byId.has(e.id)) byId.set(e.id, e);
  return {
    defaults: { ...main.defaults, ...user.defaults },
    entries: [...byId.values()],
    sources: [mainFile, ...(opts.userFile && fs.existsSync(opts.userFile) ? [opts.userFile] : [])],
  };
}

/** A reference to a registry model: `[kind:]name[:variant]`. */
export interface ModelSelector {
  entry: RegistryEntry;
  variant: string;
}

export function defaultVariant(entry: RegistryEntry): string {
  return entry.defaultVariant ?? (entry.variants.fp32 ? 'fp32' : Object.keys(entry.variants)[0]!);
}

/** Does the string look like a registry reference rather than a path? (Paths are checked on disk first.) */
export function looksLikeModelId(ref: string): boolean {
  return /^((text|image):)?[\w.\-]+(:[\w.\-]+)?$/.test(ref) && !ref.endsWith('.onnx');
}

/**
 * Finds `ref` ("text:all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "all-MiniLM-L6-v2:quantized") in the registry.
 * `kind` restricts the search (a --text-model never picks an image model); `variant` overrides the suffix.
 */
export function findModel(registry: Registry, ref: string, opts: { kind?: ModelKind; variant?: string } = {}): ModelSelector {
  const parts = ref.split(':');
  let kind: ModelKind | undefined = opts.kind;
  if (parts[0] === 'text' || parts[0] === 'image') {
    if (kind && parts[0] !== kind) throw new UsageError(`'${ref}' is ${parts[0]} model, but a ${kind} model is needed here`, 'model_kind');
    kind = parts.shift() as ModelKind;
  }
  const [name, suffix, ...rest] = parts;
  if (!name || rest.length > 0) throw new UsageError(`invalid model reference '${ref}' (expected [text:|image:]name[:variant])`, 'model_ref');
  const candidates = registry.entries.filter((e) => e.id.slice(e.kind.length + 1) === name && (!kind || e.kind === kind));
  if (candidates.length === 0) {
    const known = registry.entries.filter((e) => !kind || e.kind === kind).map((e) => e.id);
    throw new UsageError(`unknown model '${ref}'${kind ? ` (${kind})` : ''}: not a file or folder, and not in the registry (known: ${known.join(', ') || 'none'}; see categorize models list)`, 'model_unknown');
  }
  if (candidates.length > 1) throw new UsageError(`'${ref}' is ambiguous: ${candidates.map((e) => e.id).join(', ')}; prefix it with text: or image:`, 'model_ref');
  const entry = candidates[0]!;
  const variant = opts.variant ?? suffix ?? defaultVariant(entry);
  if (!entry.variants[variant]) {
    throw new UsageError(`model ${entry.id} has no variant '${variant}' (variants: ${Object.keys(entry.variants).join(', ')})`, 'model_variant');
  }
  return { entry, variant };
}

/** The registry's default model of a kind. */
export function defaultModel(registry: Registry, kind: ModelKind): ModelSelector {
  const id = registry.defaults[kind];
  if (!id) throw new ConfigError(`the model registry names no default ${kind} model; pass --${kind}-model`, 'registry');
  return findModel(registry, id, { kind });
}

/** Writes (or replaces) an entry in the user's registry file, atomically. */
export function saveUserEntry(userFile: string, entry: RegistryEntry): void {
  const current = readRegistryFile(userFile, false);
  const models = (current.models ?? []).filter((e) => e.id !== entry.id);
  models.push(entry);
  const json: RegistryFileJson = { format: REGISTRY_FORMAT, version: REGISTRY_VERSION, ...(current.defaults ? { defaults: current.defaults } : {}), models };
  fs.mkdirSync(path.dirname(userFile), { recursive: true });
  const tmp = `${userFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(json, null, 2) + '\n');
  fs.renameSync(tmp, userFile);
}

/** Every file a pull of `variant` fetches: the ONNX file first, then the others, as RegistryFile. */
export function filesToFetch(entry: RegistryEntry, variant: string): RegistryFile[] {
  const others = entry.files.map((f) => (typeof f === 'string' ? { file: f, size: null, sha256: null } : f));
  return [entry.variants[variant]!, ...others];
}
