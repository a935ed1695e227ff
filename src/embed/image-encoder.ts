// Image embeddings: an ONNX image model run on preprocessed NCHW batches; 4-d outputs are global-average-pooled.
import ort from 'onnxruntime-node';
import type { ImageModelSpec } from '../models/model-dir.js';
import { createSession, type LoadedSession, type SessionOptions } from '../runtime/session.js';
import { spatialMeanPool } from './pooling.js';
import { ConfigError } from '../errors.js';

export class ImageEncoder {
  private constructor(
    readonly spec: ImageModelSpec,
    private readonly loaded: LoadedSession,
    private readonly inputName: string,
    private readonly outputName: string,
    readonly dim: number,
  ) {}

  get provider(): string {
    return this.loaded.provider;
  }
  get notice(): string | undefined {
    return this.loaded.notice;
  }
  /** Floats per preprocessed image. */
  get pixelsPerImage(): number {
    return 3 * this.spec.preprocess.crop * this.spec.preprocess.crop;
  }

  static async load(spec: ImageModelSpec, sessionOpts: SessionOptions): Promise<ImageEncoder> {
    const loaded = await createSession(spec.modelPath, sessionOpts);
    const { session } = loaded;
    if (session.inputNames.length !== 1) {
      throw new ConfigError(`image model ${spec.modelPath} must have one input, has ${session.inputNames.join(', ')}`, 'model_interface');
    }
    const outputName = spec.output ?? session.outputNames[0];
    if (!session.outputNames.includes(outputName)) {
      throw new ConfigError(`image model ${spec.modelPath} has no output '${outputName}' (outputs: ${session.outputNames.join(', ')})`, 'model_interface');
    }
    const crop = spec.preprocess.crop;
    const probe = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(3 * crop * crop), [1, 3, crop, crop]) }, [outputName]);
    const dims = probe[outputName].dims;
    if (dims.length !== 2 && dims.length !== 4) {
      throw new ConfigError(`image model output '${outputName}' has shape [${dims.join(', ')}], expected [N, D] or [N, D, H, W]`, 'model_interface');
    }
    const dim = dims[1];
    if (spec.dim !== undefined && spec.dim !== dim) {
      throw new ConfigError(`image model ${spec.modelPath} produces ${dim}-d vectors but ${spec.dim} were declared`, 'dim_mismatch');
    }
    return new ImageEncoder(spec, loaded, session.inputNames[0], outputName, dim);
  }

  /** Embeds `count` preprocessed images laid out back to back in `pixels` (NCHW): [count × dim]. */
  async embed(pixels: Float32Array, count: number): Promise<Float32Array> {
    const crop = this.spec.preprocess.crop;
    if (pixels.length !== count * this.pixelsPerImage) {
      throw new Error(`image batch has ${pixels.length} floats, expected ${count}×3×${crop}×${crop}`);
    }
    const input = new ort.Tensor('float32', pixels, [count, 3, crop, crop]);
    const out = (await this.loaded.session.run({ [this.inputName]: input }, [this.outputName]))[this.outputName];
    const data = out.data as Float32Array;
    const spatial = out.dims.length === 4 ? out.dims[2] * out.dims[3] : 1;
    return spatialMeanPool(data, count, this.dim, spatial);
  }

  async dispose(): Promise<void> {
    await this.loaded.session.release();
  }
}
