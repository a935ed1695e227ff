// One row in, one prediction out: features (encoders, imputation, TF-IDF block) → head → top classes and tags.
// `run` writes what it returns; `eval` scores it against labels. Same code, so eval measures what run ships.
import type { CatalogRow } from '../io/catalog-reader.js';
import type { PredictionRecord } from '../io/prediction-writer.js';
import type { ModelBundle } from '../models/bundle.js';
import { Classifier, topClasses } from '../head/classifier.js';
import { topTags } from '../head/tfidf.js';
import { FeatureExtractor, assembleFeatures, bundleLayout, type FeatureOptions, type FeatureLayout } from './features.js';
import { MicroBatcher } from './micro-batcher.js';
import type { OpenEncoders } from './encoders.js';
import { oneLine } from '../errors.js';

export interface PredictorOptions extends FeatureOptions {
  topN: number;
  topKTags: number;
}

export interface Prediction {
  record: PredictionRecord;
  /** All class probabilities (bundle class order), or null for an error row. */
  probs: Float32Array | null;
}

export class Predictor {
  private readonly extractor: FeatureExtractor;
  private readonly head: MicroBatcher<Float32Array, Float32Array>;
  private readonly layout: FeatureLayout;

  constructor(
    private readonly bundle: ModelBundle,
    encoders: OpenEncoders,
    private readonly classifier: Classifier,
    private readonly opts: PredictorOptions,
  ) {
    this.layout = bundleLayout(bundle);
    this.extractor = new FeatureExtractor(bundle.manifest.features, encoders.text, encoders.image, opts, bundle.tfidf);
    const width = bundle.width;
    this.head = new MicroBatcher<Float32Array, Float32Array>(
      async (rows) => {
        const x = new Float32Array(rows.length * width);
        rows.forEach((r, i) => x.set(r, i * width));
        const p = await classifier.predict(x, rows.length);
        const c = classifier.classes.length;
        return rows.map((_, i) => p.subarray(i * c, (i + 1) * c));
      },
      { maxBatch: opts.batchSize, maxWaitMs: opts.maxWaitMs, maxInFlight: 1 },
    );
  }

  get batchSizes(): { text: number[]; image: number[] } {
    return this.extractor.batchSizes;
  }

  /** Sends partial batches now (end of input). */
  flush(): void {
    this.extractor.flush();
    this.head.flush();
  }

  async predict(row: CatalogRow, kept?: Record<string, string>): Promise<Prediction> {
    const f = await this.extractor.extract(row);
    const tags = this.bundle.tfidf && f.text ? topTags(this.bundle.tfidf, f.text, this.opts.topKTags) : [];
    const failed = (error: string): Prediction => ({
      record: { id: row.id, category: null, score: null, top_categories: [], tags, status: 'error', error, warnings: f.warnings, kept },
      probs: null,
    });
    if (!f.ok) return failed(f.error ?? 'unknown error');
    try {
      const probs = await this.head.submit(assembleFeatures(f, this.layout));
      const top = topClasses(probs, this.classifier.classes, this.opts.topN);
      return {
        record: { id: row.id, category: top[0].category, score: top[0].prob, top_categories: top, tags, status: 'ok', error: null, warnings: f.warnings, kept },
        probs,
      };
    } catch (err) {
      return failed(`classifier_failed: ${oneLine(err)}`);
    }
  }
}
