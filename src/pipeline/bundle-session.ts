// What run, eval and check share: load a bundle, open the catalog (columns checked first), open the bundle's
// encoders and head, and build the predictor — then close it all in one place, whatever happened.
import { openCatalog, type Catalog, type ColumnOptions } from '../io/catalog-reader.js';
import { bundleInputs, isEncoderBlock, loadBundle, type BundleAttribute, type ModelBundle } from '../models/bundle.js';
import { resolveBundleModels, type ModelContext } from '../models/resolve.js';
import { Classifier } from '../head/classifier.js';
import { openEncoders, type EncoderOptions, type OpenEncoders } from './encoders.js';
import { Predictor } from './predictor.js';
import { resolveDecision, thresholdForTarget, type Decision } from '../head/calibration.js';
import { UsageError } from '../errors.js';
import type { FeatureOptions } from './features.js';
import { EmbedCache, type EmbedCacheStats } from './embed-cache.js';

/** --cache DIR / --cache-max-gb: where embeddings are kept between runs, and how much of them. */
export interface EmbedCacheSetting {
  dir: string;
  maxBytes?: number;
}

/** Opens the embedding cache a command asked for (none: undefined). */
export function openEmbedCache(setting: EmbedCacheSetting | undefined, log?: (line: string) => void): EmbedCache | undefined {
  return setting ? EmbedCache.open({ dir: setting.dir, maxBytes: setting.maxBytes, onWarning: (m) => log?.(`warning: ${m}`) }) : undefined;
}

/** The cache counters a summary reports, or null without a cache. */
export function cacheSummary(cache: EmbedCache | undefined): (EmbedCacheStats & { dir: string; usedBytes: number }) | null {
  return cache ? { ...cache.stats, dir: cache.dir, usedBytes: cache.usedBytes() } : null;
}

/** The options of every command that runs a bundle over a catalog. */
export interface BundleRunOptions extends EncoderOptions, Omit<FeatureOptions, 'imageRoot' | 'cache' | 'identity'> {
  input: string;
  model: string;
  columns: Omit<ColumnOptions, 'require' | 'extra'>;
  delimiter?: string;
  /** Relative image paths resolve here; default the catalog's folder. */
  imageRoot?: string;
  /** Registry, cache and download policy for the bundle's models. */
  models: ModelContext;
  textModel?: string;
  imageModel?: string;
  /** Rows in flight at once (bounds memory). */
  window: number;
  /** A path bundle's answer threshold (--min-path-score); default: the bundle's. */
  minPathScore?: number;
  /** Decide accept/review at this target precision (--target-precision); default: the bundle's first stored target. */
  targetPrecision?: number;
  /** Embedding cache (--cache); embeddings found there are not computed again. */
  embedCache?: EmbedCacheSetting;
  /** The bundle's attributes to predict (--attributes); default all of them. */
  attributes?: string[];
  log?: (line: string) => void;
  stdin?: NodeJS.ReadableStream;
}

export interface BundleSession {
  bundle: ModelBundle;
  catalog: Catalog;
  encoders: OpenEncoders;
  predictor: Predictor;
  /** The accept/review threshold in effect (resolveDecision), or null: records carry no decision. */
  decision: Decision | null;
  /** The attributes predicted (all the bundle's, or --attributes). */
  attributes: BundleAttribute[];
  cache: EmbedCache | undefined;
  close(): Promise<void>;
}

/** The attributes a run predicts: those named (in the bundle's order), or all the bundle has; an unknown name is a usage error. */
export function selectAttributes(bundle: ModelBundle, requested: string[] | undefined, bundleName: string): BundleAttribute[] {
  if (requested === undefined) return bundle.attributes;
  const known = bundle.attributes.map((a) => a.name);
  const unknown = requested.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(`--attributes ${unknown.join(',')}: ${bundleName} has ${known.length ? `attributes ${known.join(', ')}` : 'no attributes (train it with --attribute)'}`, 'attribute');
  }
  return bundle.attributes.filter((a) => requested.includes(a.name));
}

/**
 * An attribute's accept/review threshold at the category's target: its stored one, or one from its curve; none when
 * it has no calibration or its held-out rows cannot vouch for that target (its records then carry no decision).
 */
export function attributeDecision(attribute: BundleAttribute, decision: Decision | null, log?: (line: string) => void): Decision | undefined {
  if (!decision) return undefined;
  const c = attribute.calibration;
  const t = c ? (c.targets.find((x) => x.target === decision.target) ?? thresholdForTarget(c.curve, decision.target)) : null;
  if (t?.threshold === null || t === null) {
    log?.(`attribute ${attribute.name}: no decision at target precision ${decision.target} (${t ? t.reason : 'not calibrated'})`);
    return undefined;
  }
  return { target: decision.target, threshold: t.threshold };
}

/**
 * Opens everything in the order that fails cheapest first: bundle and its decision, `beforeCatalog` (e.g. the output check), the
 * models' files (found, not yet loaded), catalog header and columns, then the models themselves. `extra` are input columns the caller reads besides the usual ones.
 */
export async function openBundleSession(
  opts: BundleRunOptions,
  spec: { extra: string[]; /** The flag that named each extra column, for the error when the catalog lacks one. */ extraFlags?: Record<string, string>; /** Read each predicted attribute's column too, when the catalog has it (eval, check). */ attributeColumns?: boolean; topN: number; topKTags: number; beforeCatalog?: (bundle: ModelBundle, decision: Decision | null) => Promise<void> | void },
): Promise<BundleSession> {
  const bundle = loadBundle(opts.model);
  const decision = resolveDecision(bundle.manifest.calibration, opts.targetPrecision, opts.model);
  const attributes = selectAttributes(bundle, opts.attributes, opts.model);
  await spec.beforeCatalog?.(bundle, decision);
  // A model missing from the cache fails here, before a byte of the catalog (maybe stdin) is read.
  const requests = await resolveBundleModels(bundle, bundle.manifest.features.filter(isEncoderBlock), opts, opts.models);
  const catalog = await openCatalog(opts.input, {
    columns: { ...opts.columns, require: bundleInputs(bundle), extra: spec.extra, extraFlags: spec.extraFlags, optional: spec.attributeColumns ? attributes.map((a) => a.name) : [] },
    delimiter: opts.delimiter,
    stdin: opts.stdin,
  });
  const encoders = await openEncoders(requests, opts);
  encoders.notices.forEach((n) => opts.log?.(n));
  const classifiers: Classifier[] = [];
  const topClassifiers: Classifier[] = [];
  const attributeClassifiers: Classifier[][] = attributes.map(() => []);
  const disposeHeads = () => Promise.all([...classifiers, ...topClassifiers, ...attributeClassifiers.flat()].map((c) => c.dispose()));
  let cache: EmbedCache | undefined;
  try {
    for (const head of bundle.heads) classifiers.push(await Classifier.load(bundle, { device: opts.device, threads: 1 }, head));
    for (const head of bundle.top?.heads ?? []) topClassifiers.push(await Classifier.load(bundle, { device: opts.device, threads: 1 }, head));
    for (const [k, a] of attributes.entries()) for (const head of a.heads) attributeClassifiers[k]!.push(await Classifier.load(bundle, { device: opts.device, threads: 1 }, head));
    cache = openEmbedCache(opts.embedCache, opts.log);
  } catch (err) {
    await disposeHeads();
    await encoders.close();
    throw err;
  }
  const predictor = new Predictor(bundle, encoders, classifiers, topClassifiers, {
    ...opts,
    imageRoot: opts.imageRoot ?? catalog.baseDir,
    topN: spec.topN,
    topKTags: spec.topKTags,
    cache,
    identity: encoders.identity,
    decision: decision ?? undefined,
  }, attributes.map((attribute, k) => ({ attribute, classifiers: attributeClassifiers[k]!, decision: attributeDecision(attribute, decision, opts.log) })));
  return {
    bundle,
    catalog,
    encoders,
    predictor,
    decision,
    attributes,
    cache,
    close: async () => {
      // The cache first: its queued writes are the work of this run, worth keeping even if a model fails to close.
      await cache?.close();
      await disposeHeads();
      await encoders.close();
    },
  };
}
