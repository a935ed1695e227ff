// One row in, one prediction out: features (encoders, imputation, TF-IDF block) → heads → top classes and tags.
// Linear heads score the row at once in JS (the TF-IDF block stays sparse); ONNX heads take the dense layout
// through a micro-batcher.
// `run` writes what it returns; `eval` scores it against labels. Same code, so eval measures what run ships.
import type { CatalogRow } from '../io/catalog-reader.js';
import type { PredictionRecord, RecordAttribute, RecordDecision } from '../io/prediction-writer.js';
import { applyTopLabel, type Decision } from '../head/calibration.js';
import { shiftedArgmax } from '../head/selection.js';
import { nameMatchBias } from '../head/name-match.js';
import type { BundleAttribute, BundleHead, FeatureBlock, ModelBundle } from '../models/bundle.js';
import { fuseHeads, headInput } from '../head/fusion.js';
import { LinearClassifier, type Classifier, topClasses } from '../head/classifier.js';
import { topTags, topTagsOfRow } from '../head/tfidf.js';
import { FeatureExtractor, assembleFeatures, bundleLayout, linearHeadRow, type FeatureOptions, type FeatureLayout, type RowFeatures } from './features.js';
import { MicroBatcher } from './micro-batcher.js';
import type { OpenEncoders } from './encoders.js';
import { oneLine } from '../errors.js';
import { Taxonomy, type PathAnswer } from '../head/taxonomy.js';

/** An attribute as the predictor runs it: the bundle's attribute, its loaded heads, and its accept/review threshold if any. */
export interface PredictorAttribute {
  attribute: BundleAttribute;
  classifiers: Classifier[];
  decision?: Decision;
}

export interface PredictorOptions extends FeatureOptions {
  topN: number;
  topKTags: number;
  /** A path bundle's answer threshold (--min-path-score); default: the bundle's. */
  minPathScore?: number;
  /** Accept a row when its decision score reaches the threshold (resolveDecision); absent: no decision. */
  decision?: Decision;
}

/**
 * A row's accept/review decision: accepted when its score reaches the threshold; for a path bundle the score is the
 * full path's, and the answer must be that full path. Error rows are for review.
 */
export function decide(record: Pick<PredictionRecord, 'status' | 'score' | 'path' | 'category'>, decision: Decision): RecordDecision {
  // A path answer counts only when it is the full path itself (below 0.5 a greedy descent may end at another leaf).
  const fullAnswer = record.path?.complete === true && record.category === record.path.full_path;
  const score = record.status !== 'ok' ? null : record.path ? (fullAnswer ? record.path.full_path_score : null) : record.score;
  return { decision: score !== null && score >= decision.threshold ? 'accept' : 'review', target: decision.target };
}

/** Warning codes of a path answer: stopped above full depth, or not sure of any top-level node. */
export const PATH_BACKOFF = 'path_backoff';
export const PATH_UNANSWERED = 'path_unanswered';

/** What a path bundle's record says: the answered node as `category`/`score`, and its path fields. */
export function pathRecord(answer: PathAnswer): Pick<PredictionRecord, 'category' | 'score' | 'path'> & { warning: string | null } {
  return {
    category: answer.node,
    score: answer.node === null ? null : answer.score,
    path: { depth: answer.depth, complete: answer.complete, scores: answer.levels.map((l) => l.prob), full_path: answer.full.path, full_path_score: answer.full.prob },
    warning: answer.node === null ? PATH_UNANSWERED : answer.complete ? null : PATH_BACKOFF,
  };
}

export interface Prediction {
  record: PredictionRecord;
  /** All class probabilities (bundle class order), or null for an error row. */
  probs: Float32Array | null;
  /** Per head (by name), its own probabilities over the bundle's classes, or null when the row lacks its modality. */
  heads: Record<string, Float32Array | null>;
  /** Per attribute run (by name): its calibrated probabilities (its classes' order) and each head's alone; absent for an error row. */
  attributes: Record<string, { probs: Float32Array; heads: Record<string, Float32Array | null> }>;
  /**
   * A calibrated bundle's probabilities before calibration (eval's before/after figures), else `probs`; computed
   * when asked, so run does not fuse every row twice.
   */
  rawProbs(): Float32Array | null;
}

/** A loaded head as the predictor runs it: `score` gets the row and, for a head that needs it, its dense layout. */
interface HeadRunner {
  head: BundleHead;
  score(f: RowFeatures, denseLayout: () => Float32Array): Float32Array | Promise<Float32Array>;
  flush?(): void;
}

export class Predictor {
  private readonly extractor: FeatureExtractor;
  private readonly heads: HeadRunner[];
  /** A path bundle's top-level heads (bundle.top), whose fused probabilities decide the top level; else empty. */
  private readonly topHeads: HeadRunner[];
  private readonly layout: FeatureLayout;
  private readonly classes: string[];
  /** A path bundle's tree and threshold; null for flat classes. */
  private readonly taxonomy: { tree: Taxonomy; minScore: number } | null;
  /** Calibration temperatures of the main and the top-level head sets (1: a bundle without calibration). */
  private readonly temperature: number;
  private readonly topTemperature: number;
  /** The attributes this run predicts (all the bundle's, or --attributes), each with its heads. */
  private readonly attributes: { attribute: BundleAttribute; runners: HeadRunner[]; decision?: Decision }[];

  constructor(
    private readonly bundle: ModelBundle,
    encoders: OpenEncoders,
    classifiers: Classifier[],
    topClassifiers: Classifier[],
    private readonly opts: PredictorOptions,
    attributes: PredictorAttribute[] = [],
  ) {
    this.layout = bundleLayout(bundle);
    this.temperature = bundle.manifest.calibration?.temperature ?? 1;
    this.topTemperature = bundle.manifest.calibration?.topTemperature ?? 1;
    this.classes = bundle.manifest.classes;
    const paths = bundle.manifest.paths;
    this.taxonomy = paths ? { tree: new Taxonomy(this.classes), minScore: opts.minPathScore ?? paths.minPathScore } : null;
    this.extractor = new FeatureExtractor(bundle.manifest.features, encoders.text, encoders.image, { ...opts, decoder: encoders.decoder }, bundle.tfidfBlock);
    this.heads = bundle.heads.map((head, h) => this.runner(head, classifiers[h]));
    this.topHeads = (bundle.top?.heads ?? []).map((head, h) => this.runner(head, topClassifiers[h]));
    this.attributes = attributes.map((a) => ({ attribute: a.attribute, runners: a.attribute.heads.map((head, h) => this.runner(head, a.classifiers[h]!)), decision: a.decision }));
  }

  /** The attributes predicted (their names, in bundle order). */
  get attributeNames(): string[] {
    return this.attributes.map((a) => a.attribute.name);
  }

  /** The attributes predicted, as the bundle has them (their calibration decides again at another target). */
  get predictedAttributes(): BundleAttribute[] {
    return this.attributes.map((a) => a.attribute);
  }

  /** Linear heads score the row at once; ONNX heads take the dense layout through a micro-batcher. */
  private runner(head: BundleHead, classifier: Classifier): HeadRunner {
    if (classifier instanceof LinearClassifier) {
      return { head, score: (f) => classifier.score(linearHeadRow(f, head.kinds, this.layout.means)) };
    }
    const batcher = new MicroBatcher<Float32Array, Float32Array>(
      async (rows) => {
        const width = head.width;
        const x = new Float32Array(rows.length * width);
        rows.forEach((r, i) => x.set(r, i * width));
        const p = await classifier.predict(x, rows.length);
        const c = classifier.classes.length;
        return rows.map((_, i) => p.subarray(i * c, (i + 1) * c));
      },
      { maxBatch: this.opts.batchSize, maxWaitMs: this.opts.maxWaitMs, maxInFlight: 1 },
    );
    return { head, score: (_f, denseLayout) => batcher.submit(headInput(denseLayout(), head.slices, head.width)), flush: () => batcher.flush() };
  }

  get batchSizes(): { text: number[]; image: number[] } {
    return this.extractor.batchSizes;
  }

  /** Sends partial batches now (end of input). */
  flush(): void {
    this.extractor.flush();
    for (const h of [...this.heads, ...this.topHeads, ...this.attributes.flatMap((a) => a.runners)]) h.flush?.();
  }

  /** The row's top-k tags; the TF-IDF block row already holds the tags' word part when the block has one. */
  private tags(f: RowFeatures): string[] {
    const model = this.bundle.tfidf;
    if (!model || !f.text) return [];
    if (f.tfidf && this.bundle.tfidfBlock?.word === model) return topTagsOfRow(model, f.tfidf, this.opts.topKTags);
    return topTags(model, f.text, this.opts.topKTags);
  }

  async predict(row: CatalogRow, kept?: Record<string, string>): Promise<Prediction> {
    const f = await this.extractor.extract(row);
    const tags = this.tags(f);
    const decision = this.opts.decision;
    const failed = (error: string): Prediction => {
      const record: PredictionRecord = {
        id: row.id,
        category: null,
        score: null,
        top_categories: [],
        tags,
        status: 'error',
        error,
        warnings: f.warnings,
        kept,
      };
      // An error row is for review (decide() says so): a person looks at it.
      if (decision) record.decision = decide(record, decision);
      return { record, probs: null, heads: {}, attributes: {}, rawProbs: () => null };
    };
    if (!f.ok) return failed(f.error ?? 'unknown error');
    try {
      // The dense layout, built once and only when an ONNX head asks for it.
      let dense: Float32Array | undefined;
      const x = () => (dense ??= assembleFeatures(f, this.layout));
      // A head runs when the row has any of its blocks (the rest of its input imputed); a joint head always does.
      // Early fusion routes: the joint head takes the rows with every block, the per-modality heads the rest.
      const has = (k: FeatureBlock['kind']) => f.vectors[k] !== undefined || (k === 'tfidf' && f.tfidf !== undefined);
      const complete = this.bundle.manifest.features.every((b) => has(b.kind));
      // A head routed away from this row is still scored (each head alone: eval --ablation) but not fused.
      const scored = (runners: HeadRunner[]) =>
        Promise.all(
          runners.map(async ({ head, score }) => {
            const present = head.name === 'joint' || head.kinds.some(has);
            const routed = head.route === undefined || (head.route === 'complete') === complete;
            return { classes: head.classes, weight: head.weight, probs: present ? await score(f, x) : null, routed };
          }),
        );
      const [outputs, topOutputs, attributeOutputs] = await Promise.all([scored(this.heads), scored(this.topHeads), Promise.all(this.attributes.map((a) => scored(a.runners)))]);
      const routedOnly = (os: typeof outputs) => os.map((o) => (o.routed ? o : { ...o, probs: null }));
      const fusedOutputs = routedOnly(outputs);
      const fusedTop = routedOnly(topOutputs);
      // The calibrated probabilities (the name match and temperatures, then top-label scaling) and, for a calibrated
      // bundle, the raw ones.
      const calibration = this.bundle.manifest.calibration;
      const combined = (temperature: number, topTemperature: number, bias: Float64Array | null): Float32Array | null => {
        const fused = fuseHeads(fusedOutputs, this.classes, temperature, bias);
        const topLevel = this.bundle.top ? fuseHeads(fusedTop, this.bundle.top.classes, topTemperature) : null;
        return fused && topLevel && this.taxonomy ? Float32Array.from(this.taxonomy.tree.withTopLevel(fused, topLevel, this.bundle.top!.classes)) : fused;
      };
      let probs = combined(this.temperature, this.topTemperature, nameMatchBias(calibration?.nameMatch, this.classes, f.text));
      if (!probs) return failed('no_input: no modality this bundle reads');
      // A prior shift decides from the probabilities at the temperature, before top-label scaling (as train chose it).
      const answerAt = calibration?.prior && !this.taxonomy ? shiftedArgmax(probs, calibration.prior.bias, 1 / this.temperature) : null;
      if (calibration?.topLabel) probs = applyTopLabel(probs, calibration.topLabel, new Float32Array(probs.length));
      const final = probs;
      let raw: Float32Array | null | undefined;
      const rawProbs = () => (calibration ? (raw ??= combined(1, 1, null)) : final);
      const top = topClasses(probs, this.classes, this.opts.topN);
      const heads = Object.fromEntries(this.heads.map(({ head }, h) => [head.name, outputs[h].probs ? fuseHeads([outputs[h]], this.classes) : null]));
      let answer: Pick<PredictionRecord, 'category' | 'score' | 'path'> = answerAt === null ? { category: top[0].category, score: top[0].prob } : { category: this.classes[answerAt]!, score: probs[answerAt]! };
      let warnings = f.warnings;
      if (this.taxonomy) {
        const { warning, ...fields } = pathRecord(this.taxonomy.tree.answer(probs, this.taxonomy.minScore));
        answer = fields;
        if (warning) warnings = [...warnings, warning];
      }
      const record: PredictionRecord = { id: row.id, ...answer, top_categories: top, tags, status: 'ok', error: null, warnings, kept };
      if (decision) record.decision = decide(record, decision);
      // Each attribute as the category: its routed heads fused, with its name match at its temperature, then its
      // top-label scaling.
      const attributes: Prediction['attributes'] = {};
      this.attributes.forEach(({ attribute, decision }, k) => {
        const os = attributeOutputs[k]!;
        const c = attribute.calibration;
        let p = fuseHeads(routedOnly(os), attribute.classes, c?.temperature ?? 1, nameMatchBias(c?.nameMatch, attribute.classes, f.text));
        if (!p) return;
        const at = c?.prior ? shiftedArgmax(p, c.prior.bias, 1 / c.temperature) : null;
        if (c?.topLabel) p = applyTopLabel(p, c.topLabel, new Float32Array(p.length));
        const ranked = topClasses(p, attribute.classes, this.opts.topN);
        const answered = at === null ? ranked[0]! : { category: attribute.classes[at]!, prob: p[at]! };
        const value: RecordAttribute = { value: answered.category, score: answered.prob, top: ranked.map((t) => ({ value: t.category, prob: t.prob })) };
        if (decision) value.decision = { decision: value.score! >= decision.threshold ? 'accept' : 'review', target: decision.target };
        (record.attributes ??= {})[attribute.name] = value;
        attributes[attribute.name] = { probs: p, heads: Object.fromEntries(attribute.heads.map((head, h) => [head.name, os[h]!.probs ? fuseHeads([os[h]!], attribute.classes) : null])) };
      });
      return { record, probs, heads, attributes, rawProbs };
    } catch (err) {
      return failed(`classifier_failed: ${oneLine(err)}`);
    }
  }
}
