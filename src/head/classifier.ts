// The classifier head behind one interface: a linear head (head-io's file, scored in JS with the TF-IDF block
// sparse) or an ONNX graph (scaler + logistic regression, ours or skl2onnx's; bundles of format 1 and 2).
import ort from 'onnxruntime-node';
import { ConfigError } from '../errors.js';
import type { BundleHead, ModelBundle } from '../models/bundle.js';
import { createSession, type SessionOptions } from '../runtime/session.js';
import { readLinearHead } from './head-io.js';
import { headRowFromDense, linearLogits, softmaxInto, type HeadRow, type LinearHead } from './scoring.js';

export abstract class Classifier {
  abstract readonly type: BundleHead['type'];

  protected constructor(
    /** The head's input width: its blocks' dims added up. */
    readonly width: number,
    /** Its output order. */
    readonly classes: string[],
  ) {}

  /** Loads one of the bundle's heads (the only one by default) and proves it fits the bundle's layout and classes. */
  static async load(bundle: ModelBundle, sessionOpts: SessionOptions, head: BundleHead = bundle.heads[0]): Promise<Classifier> {
    return head.type === 'linear' ? LinearClassifier.fromBundle(bundle, head) : OnnxClassifier.fromBundle(bundle, sessionOpts, head);
  }

  /** Probabilities [n × classes] for n dense head-input rows laid back to back. */
  abstract predict(features: Float32Array, n: number): Promise<Float32Array>;

  abstract dispose(): Promise<void>;
}

/** What the bundle's layout says a head reads, for messages: "text 384 + tfidf 5000". */
function blocksOf(bundle: ModelBundle, head: BundleHead): string {
  return head.kinds.map((k) => `${k} ${bundle.manifest.features.find((f) => f.kind === k)?.dim}`).join(' + ');
}

/** A linear head: scored synchronously on the main thread, from the row's dense vectors and its sparse TF-IDF row. */
export class LinearClassifier extends Classifier {
  override readonly type = 'linear' as const;
  private readonly logits: Float64Array;

  private constructor(readonly head: LinearHead, width: number, classes: string[]) {
    super(width, classes);
    this.logits = new Float64Array(classes.length);
  }

  static fromBundle(bundle: ModelBundle, spec: BundleHead): LinearClassifier {
    const { head } = readLinearHead(spec.path);
    const fail = (what: string): never => {
      throw new ConfigError(`classifier ${spec.path}: ${what}`, 'dim_mismatch');
    };
    const tfidf = spec.kinds.includes('tfidf') ? bundle.manifest.features.find((f) => f.kind === 'tfidf')!.dim : 0;
    const dd = spec.width - tfidf;
    if ((head.dense?.width ?? 0) !== dd || (head.sparse?.width ?? 0) !== tfidf) {
      fail(`reads dense ${head.dense?.width ?? 0} + sparse ${head.sparse?.width ?? 0} columns but the bundle's layout gives it ${blocksOf(bundle, spec)}`);
    }
    if (head.classes.length !== spec.classes.length || head.classes.some((c, k) => c !== spec.classes[k])) {
      const list = (cs: string[]) => `${cs.length} [${cs.slice(0, 5).join(', ')}${cs.length > 5 ? ', …' : ''}]`;
      fail(`has classes ${list(head.classes)} but the bundle lists ${list(spec.classes)} for it`);
    }
    return new LinearClassifier(head, spec.width, spec.classes);
  }

  /** One row's probabilities: `row.dense` the head's dense blocks' raw vectors in layout order (means for a missing one), `row.sparse` the TF-IDF row. */
  score(row: HeadRow): Float32Array {
    return softmaxInto(linearLogits(this.head, row, this.logits), new Float32Array(this.classes.length)) as Float32Array;
  }

  predict(features: Float32Array, n: number): Promise<Float32Array> {
    const K = this.classes.length;
    const out = new Float32Array(n * K);
    for (let i = 0; i < n; i++) out.set(this.score(headRowFromDense(this.head, features.subarray(i * this.width, (i + 1) * this.width))), i * K);
    return Promise.resolve(out);
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

/** An ONNX head: input `features` [N, width] (or the graph's first input), output `probabilities` [N, K] (or its last). */
export class OnnxClassifier extends Classifier {
  override readonly type = 'onnx' as const;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    width: number,
    classes: string[],
  ) {
    super(width, classes);
  }

  static async fromBundle(bundle: ModelBundle, sessionOpts: SessionOptions, head: BundleHead): Promise<OnnxClassifier> {
    // The head is tiny: CPU on the main thread beats a device round trip.
    const { session } = await createSession(head.path, { ...sessionOpts, device: 'cpu', threads: 1 });
    const { input, output } = head;
    const inputName = input && session.inputNames.includes(input) ? input : session.inputNames[0];
    // skl2onnx (zipmap=False) names it 'probabilities' as we do; fall back to the last output otherwise.
    const outputName = output && session.outputNames.includes(output) ? output : session.outputNames[session.outputNames.length - 1];
    const classes = head.classes;
    let probe: ort.Tensor;
    try {
      probe = (await session.run({ [inputName]: new ort.Tensor('float32', new Float32Array(head.width), [1, head.width]) }, [outputName]))[outputName];
    } catch (err) {
      await session.release();
      throw new ConfigError(
        `classifier ${head.path} rejects the bundle's ${head.width}-wide feature layout (${blocksOf(bundle, head)}): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
        'dim_mismatch',
      );
    }
    if (probe.dims.length !== 2 || probe.dims[1] !== classes.length) {
      await session.release();
      throw new ConfigError(
        `classifier ${head.path} outputs shape [${probe.dims.join(', ')}] but the bundle lists ${classes.length} classes`,
        'dim_mismatch',
      );
    }
    return new OnnxClassifier(session, inputName, outputName, head.width, classes);
  }

  async predict(features: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.session.run({ [this.inputName]: new ort.Tensor('float32', features, [n, this.width]) }, [this.outputName]);
    return new Float32Array(out[this.outputName].data as Float32Array);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** The top-n classes of one probability row, most probable first (ties by class name). */
export function topClasses(probs: ArrayLike<number>, classes: string[], n: number): { category: string; prob: number }[] {
  const order = Array.from({ length: classes.length }, (_, i) => i);
  order.sort((a, b) => probs[b] - probs[a] || (classes[a] < classes[b] ? -1 : classes[a] > classes[b] ? 1 : 0));
  return order.slice(0, Math.max(0, n)).map((i) => ({ category: classes[i], prob: probs[i] }));
}
