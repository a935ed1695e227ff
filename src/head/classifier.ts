// The classifier head: an ONNX graph (scaler + logistic regression, ours or skl2onnx's) mapping features to class probabilities.
import ort from 'onnxruntime-node';
import { ConfigError } from '../errors.js';
import type { BundleHead, ModelBundle } from '../models/bundle.js';
import { createSession, type SessionOptions } from '../runtime/session.js';

export class Classifier {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    readonly width: number,
    readonly classes: string[],
  ) {}

  /** Loads one of the bundle's heads (the only one by default) and proves it accepts its input width and yields one probability per class. */
  static async load(bundle: ModelBundle, sessionOpts: SessionOptions, head: BundleHead = bundle.heads[0]): Promise<Classifier> {
    // The head is tiny: CPU on the main thread beats a device round trip.
    const { session } = await createSession(head.path, { ...sessionOpts, device: 'cpu', threads: 1 });
    const { input, output } = head;
    const inputName = session.inputNames.includes(input) ? input : session.inputNames[0];
    // skl2onnx (zipmap=False) names it 'probabilities' as we do; fall back to the last output otherwise.
    const outputName = session.outputNames.includes(output) ? output : session.outputNames[session.outputNames.length - 1];
    const classes = head.classes;
    const blocks = head.kinds.map((k) => `${k} ${bundle.manifest.features.find((f) => f.kind === k)?.dim}`).join(' + ');
    let probe: ort.Tensor;
    try {
      probe = (await session.run({ [inputName]: new ort.Tensor('float32', new Float32Array(head.width), [1, head.width]) }, [outputName]))[outputName];
    } catch (err) {
      throw new ConfigError(
        `classifier ${head.path} rejects the bundle's ${head.width}-wide feature layout (${blocks}): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
        'dim_mismatch',
      );
    }
    if (probe.dims.length !== 2 || probe.dims[1] !== classes.length) {
      throw new ConfigError(
        `classifier ${head.path} outputs shape [${probe.dims.join(', ')}] but the bundle lists ${classes.length} classes`,
        'dim_mismatch',
      );
    }
    return new Classifier(session, inputName, outputName, head.width, classes);
  }

  /** Probabilities [n × classes] for n feature rows laid back to back. */
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
