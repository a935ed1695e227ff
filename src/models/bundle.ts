// Model bundle: the directory `run` loads (manifest.json, classifier.onnx, tfidf.json, imputation.json), checked on load.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { ImagePreprocess } from './model-dir.js';
import type { TapInfo } from './tap.js';
import { tfidfFromJSON, type TfidfModel } from '../head/tfidf.js';

export const BUNDLE_FORMAT = 'categorize-bundle';
export const BUNDLE_FORMAT_VERSION = 1;

/** Where a feature block's embedding model lives. `path` is relative to the bundle folder (or absolute). */
export interface ModelRef {
  /** Registry id, e.g. text:all-MiniLM-L6-v2. */
  id?: string;
  path?: string;
  repository?: string;
  /** The commit the files came from. */
  revision?: string;
  /** Registry variant (fp32, quantized …). */
  variant?: string;
  /** The ONNX file in the repository (before any tap). */
  file?: string;
  /** sha256 of the ONNX file the encoder runs (the tapped one, for a tapped classifier); checked when loaded. */
  sha256?: string;
  /** The pooled-feature output added to a classifier export, when one was. */
  tap?: TapInfo;
}

export type FeatureBlock =
  | { kind: 'text'; offset: number; dim: number; model: ModelRef; preprocess: { maxLength: number; pooling: 'mean'; normalize: boolean } }
  | { kind: 'image'; offset: number; dim: number; model: ModelRef; preprocess: ImagePreprocess }
  /** The bundle's TF-IDF vector of title + description (tfidf.json), unscaled: rows are already L2-normalised. */
  | { kind: 'tfidf'; offset: number; dim: number };

/** Blocks produced by an embedding model (these have imputation means). */
export type EncoderBlock = Extract<FeatureBlock, { kind: 'text' | 'image' }>;
export const isEncoderBlock = (b: FeatureBlock): b is EncoderBlock => b.kind === 'text' || b.kind === 'image';

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  toolVersion: string;
  createdAt: string;
  classes: string[];
  /** Classifier input layout, in order (e.g. [text | image | tfidf]). */
  features: FeatureBlock[];
  classifier: { file: string; input: string; output: string };
  /** Training means per block (imputation of a missing modality). */
  imputation: { file: string };
  tfidf: { file: string } | null;
  training?: Record<string, unknown>;
}

export interface ModelBundle {
  dir: string;
  manifest: BundleManifest;
  classifierPath: string;
  tfidf: TfidfModel | null;
  /** Per feature kind: the mean vector imputed when that modality is missing. */
  means: Map<FeatureBlock['kind'], Float32Array>;
  /** Total classifier input width. */
  width: number;
}

function fail(dir: string, what: string): never {
  throw new ConfigError(`model bundle ${dir}: ${what}`, 'bundle');
}

function readJsonFile(dir: string, file: string): unknown {
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) fail(dir, `missing ${file}`);
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (err) {
    fail(dir, `${file} is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Loads and checks everything that can be checked without the embedding models. */
export function loadBundle(location: string): ModelBundle {
  const dir = path.resolve(location);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ConfigError(`model bundle not found: ${location} (expected a folder with manifest.json)`, 'bundle');
  }
  const m = readJsonFile(dir, 'manifest.json') as Partial<BundleManifest>;
  if (m.format !== BUNDLE_FORMAT) fail(dir, `manifest.json format is '${String(m.format)}', expected '${BUNDLE_FORMAT}'`);
  if (typeof m.formatVersion !== 'number' || m.formatVersion > BUNDLE_FORMAT_VERSION) {
    fail(dir, `format version ${String(m.formatVersion)} is not supported by this categorize (supports ≤ ${BUNDLE_FORMAT_VERSION}); upgrade categorize`);
  }
  if (!Array.isArray(m.classes) || m.classes.length < 2 || m.classes.some((c) => typeof c !== 'string')) {
    fail(dir, 'manifest.json classes must list at least two class names');
  }
  if (new Set(m.classes).size !== m.classes.length) fail(dir, 'manifest.json classes has duplicates');
  if (!Array.isArray(m.features) || m.features.length === 0) fail(dir, 'manifest.json features is empty');
  let width = 0;
  const kinds = new Set<string>();
  for (const b of m.features) {
    if (b.kind !== 'text' && b.kind !== 'image' && b.kind !== 'tfidf') fail(dir, `unknown feature kind '${String((b as { kind: unknown }).kind)}'`);
    if (kinds.has(b.kind)) fail(dir, `feature kind '${b.kind}' listed twice`);
    kinds.add(b.kind);
    if (!Number.isInteger(b.dim) || b.dim <= 0) fail(dir, `feature '${b.kind}' has invalid dim ${String(b.dim)}`);
    if (b.offset !== width) fail(dir, `feature '${b.kind}' offset ${b.offset} should be ${width} (blocks must be contiguous)`);
    width += b.dim;
  }
  if (!m.classifier?.file) fail(dir, 'manifest.json has no classifier file');
  const classifierPath = path.join(dir, m.classifier.file);
  if (!fs.existsSync(classifierPath)) fail(dir, `missing ${m.classifier.file}`);

  const means = new Map<FeatureBlock['kind'], Float32Array>();
  const imp = readJsonFile(dir, m.imputation?.file ?? 'imputation.json') as { means?: Record<string, number[]> };
  for (const b of m.features.filter(isEncoderBlock)) {
    const v = imp.means?.[b.kind];
    if (!Array.isArray(v) || v.length !== b.dim) fail(dir, `imputation means for '${b.kind}' must have ${b.dim} values`);
    means.set(b.kind, Float32Array.from(v));
  }
  let tfidf: TfidfModel | null = null;
  if (m.tfidf) {
    try {
      tfidf = tfidfFromJSON(readJsonFile(dir, m.tfidf.file));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      fail(dir, `${m.tfidf.file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const tfidfBlock = m.features.find((b) => b.kind === 'tfidf');
  if (tfidfBlock && !tfidf) fail(dir, 'the layout has a tfidf block but the bundle has no tfidf.json');
  if (tfidfBlock && tfidf && tfidf.terms.length !== tfidfBlock.dim) {
    fail(dir, `the tfidf block is ${tfidfBlock.dim} wide but tfidf.json has ${tfidf.terms.length} terms`);
  }
  return { dir, manifest: m as BundleManifest, classifierPath, tfidf, means, width };
}

/** Which catalog columns a bundle reads: text (title/description) for a text or tfidf block or for tags, images for an image block. */
export function bundleInputs(bundle: ModelBundle): { text: boolean; image: boolean } {
  const kinds = bundle.manifest.features.map((b) => b.kind);
  return { text: kinds.some((k) => k !== 'image') || bundle.tfidf !== null, image: kinds.includes('image') };
}

export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export interface BundleParts {
  manifest: Omit<BundleManifest, 'format' | 'formatVersion' | 'classifier' | 'imputation' | 'tfidf'> & { tfidf: boolean };
  classifierOnnx: Uint8Array;
  means: Record<string, number[] | Float32Array | Float64Array>;
  tfidfJson: unknown | null;
}

/** Writes a bundle folder; file contents depend only on the inputs, so equal inputs give identical bytes. */
export function saveBundle(location: string, parts: BundleParts): void {
  const dir = path.resolve(location);
  fs.mkdirSync(dir, { recursive: true });
  const { tfidf, ...rest } = parts.manifest;
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    ...rest,
    classifier: { file: 'classifier.onnx', input: 'features', output: 'probabilities' },
    imputation: { file: 'imputation.json' },
    tfidf: tfidf ? { file: 'tfidf.json' } : null,
  };
  fs.writeFileSync(path.join(dir, 'classifier.onnx'), parts.classifierOnnx);
  const means = Object.fromEntries(Object.entries(parts.means).map(([k, v]) => [k, Array.from(v, (x) => Math.fround(x))]));
  fs.writeFileSync(path.join(dir, 'imputation.json'), JSON.stringify({ means }) + '\n');
  if (tfidf) fs.writeFileSync(path.join(dir, 'tfidf.json'), JSON.stringify(parts.tfidfJson) + '\n');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}
