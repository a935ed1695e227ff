// Training presets: a named classifier input and the models that feed it. `original` is the seed's stack (the
// registry's default text and image models, from the cache); `embedded` needs no download (the shipped image model).
import { UsageError } from '../errors.js';
import type { FeatureKind } from '../head/target.js';
import { cacheState } from './pull.js';
import { defaultModel, findModel, type ModelKind } from './registry.js';
import { isModelPath, type ModelContext } from './resolve.js';

export const PRESET_NAMES = ['original', 'embedded'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** The image model shipped in the package (models/mobilenetv2-12-int8): the `embedded` preset's. */
export const SHIPPED_IMAGE_MODEL = 'image:mobilenetv2-int8';

/** A classifier input and its models (registry references or paths; undefined: the kind is not used). */
export interface TrainingStack {
  features: FeatureKind[];
  textModel?: string;
  imageModel?: string;
}

export interface StackChoice extends TrainingStack {
  /** The preset the stack is (recorded in the bundle), or null for features and models chosen by flags. */
  preset: PresetName | null;
  /** One line for the log when the preset was chosen for the user (no --preset, --features or model flag). */
  note?: string;
}

type Ctx = Pick<ModelContext, 'registry' | 'cache'>;

/** A preset's features and registry models. original: the registry's defaults (all-MiniLM-L6-v2, ResNet-50). */
export function presetStack(name: PresetName, ctx: Pick<ModelContext, 'registry'>): Required<Pick<TrainingStack, 'features'>> & TrainingStack {
  if (name === 'embedded') return { features: ['image', 'tfidf'], imageModel: SHIPPED_IMAGE_MODEL };
  return { features: ['text', 'image'], textModel: defaultModel(ctx.registry, 'text').entry.id, imageModel: defaultModel(ctx.registry, 'image').entry.id };
}

const flagOf = (kind: ModelKind) => `--${kind}-model`;
const short = (id: string) => id.replace(/^(text|image):/, '');

/** The preset's stack as flags, for messages: "--features image,tfidf --image-model mobilenetv2-int8". */
export function presetFlags(name: PresetName, ctx: Pick<ModelContext, 'registry'>): string {
  const s = presetStack(name, ctx);
  return [`--features ${s.features.join(',')}`, ...(name === 'embedded' ? [`--image-model ${short(s.imageModel!)}`] : [])].join(' ');
}

/** Does a model flag name the preset's model (any variant of the same registry entry)? Paths never do. */
function sameModel(ctx: Ctx, kind: ModelKind, flag: string, presetId: string): boolean {
  if (isModelPath(flag)) return false;
  try {
    return findModel(ctx.registry, flag, { kind }).entry.id === presetId;
  } catch {
    return false;
  }
}

/**
 * The classifier input and models a training run uses. With --preset, --features and the model flags may only
 * repeat it (a model flag may pick another variant of the preset's model, e.g. all-MiniLM-L6-v2:quantized); anything
 * else is a usage error, so a bundle that records a preset was trained on exactly that stack. Without --preset, any
 * of those flags means a stack of one's own (features default text,image; models the registry defaults). With none
 * of them: original when both its models are in the cache, else embedded, said on one line.
 */
export function chooseStack(req: { preset?: PresetName; features?: FeatureKind[]; textModel?: string; imageModel?: string }, ctx: Ctx): StackChoice {
  if (req.preset) {
    const stack = presetStack(req.preset, ctx);
    const conflict = (what: string): never => {
      throw new UsageError(`--preset ${req.preset} trains on ${presetFlags(req.preset!, ctx)}; ${what} contradicts it (leave out --preset to choose features and models yourself)`, 'preset_conflict');
    };
    if (req.features && (req.features.length !== stack.features.length || req.features.some((f) => !stack.features.includes(f)))) conflict(`--features ${req.features.join(',')}`);
    const models: Partial<Record<ModelKind, string>> = {};
    for (const kind of ['text', 'image'] as const) {
      const flag = kind === 'text' ? req.textModel : req.imageModel;
      const presetId = kind === 'text' ? stack.textModel : stack.imageModel;
      if (flag === undefined) models[kind] = presetId;
      else if (presetId === undefined) conflict(`${flagOf(kind)} ${flag} (it has no ${kind} model)`);
      else if (!sameModel(ctx, kind, flag, presetId)) conflict(`${flagOf(kind)} ${flag}`);
      else models[kind] = flag;
    }
    return { features: stack.features, textModel: models.text, imageModel: models.image, preset: req.preset };
  }
  if (req.features || req.textModel !== undefined || req.imageModel !== undefined) {
    return { features: req.features ?? ['text', 'image'], textModel: req.textModel, imageModel: req.imageModel, preset: null };
  }
  // A registry (CATEGORIZE_REGISTRY) may name no default of a kind: then original is not to be had.
  const ids = (['text', 'image'] as const).map((kind) => ctx.registry.defaults[kind] ? defaultModel(ctx.registry, kind) : null);
  const missing = ids.map((sel, i) => (sel === null ? `a default ${i === 0 ? 'text' : 'image'} model` : cacheState(sel, ctx.cache).state !== 'complete' ? sel.entry.id : null)).filter((m) => m !== null);
  const models = ids.map((sel) => (sel ? short(sel.entry.id) : '?')).join(' + ');
  if (missing.length === 0) {
    return { ...presetStack('original', ctx), preset: 'original', note: `preset original: ${models} from the model cache (${presetFlags('original', ctx)}); --preset embedded trains on the shipped ${short(SHIPPED_IMAGE_MODEL)} + TF-IDF instead` };
  }
  return {
    ...presetStack('embedded', ctx),
    preset: 'embedded',
    note: `preset embedded: the shipped ${short(SHIPPED_IMAGE_MODEL)} image model + TF-IDF (${presetFlags('embedded', ctx)}), as ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not in the model cache; for ${models}: \`categorize models pull\`, then --preset original`,
  };
}
