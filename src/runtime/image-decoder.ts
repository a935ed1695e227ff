// Image decoding off the main thread: preprocessImage in a few worker threads, so that its JavaScript (the exact
// resampler, cropping, normalisation) and its garbage run beside TF-IDF, the heads and the output, not in their way.
import { Worker } from 'node:worker_threads';
import { preprocessImage, type ImagePreprocessSpec } from '../embed/image-preprocess.js';
import { readImageFile } from '../io/image-source.js';
import { RowError } from '../errors.js';
import type { DecodeReply, DecodeRequest } from './image-decoder-worker.js';

/** Turns image bytes into the model's input tensor (preprocessImage's contract: RowError per bad image). */
export interface ImageDecoder {
  /** Decodes at once, at most; 0 for the calling thread. */
  readonly workers: number;
  decode(bytes: Buffer, spec: ImagePreprocessSpec, opts: DecodeOptions): Promise<Float32Array>;
  /** Reads the file (readImageFile: its errors, at most maxBytes) and decodes it, both off the calling thread. */
  decodeFile(file: string, maxBytes: number, spec: ImagePreprocessSpec, opts: DecodeOptions): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface DecodeOptions {
  maxPixels: number;
  /** The image as the row names it, for error messages. */
  name: string;
}

/** On the calling thread (tests, and what a pool of 0 means). */
export const inThreadDecoder: ImageDecoder = {
  workers: 0,
  decode: (bytes, spec, opts) => preprocessImage(bytes, spec, undefined, 0, opts),
  decodeFile: async (file, maxBytes, spec, opts) => preprocessImage(await readImageFile(file, maxBytes), spec, undefined, 0, opts),
  close: async () => {},
};

/**
 * `size` worker threads, each taking any number of images at once (libvips decodes on libuv's pool; the worker
 * runs the JavaScript between); a call goes to the worker with the fewest outstanding. Bytes are copied to the
 * worker (the caller keeps its buffer), or a file is read there; tensors come back transferred.
 */
export class ImageDecoderPool implements ImageDecoder {
  private readonly pending = new Map<number, { resolve: (t: Float32Array) => void; reject: (e: Error) => void; worker: number }>();
  private readonly load: number[];
  private nextId = 1;
  private dead: Error | undefined;

  private constructor(private readonly pool: Worker[]) {
    this.load = pool.map(() => 0);
    pool.forEach((w, i) => {
      w.on('message', (msg: DecodeReply) => {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        this.load[i]!--;
        if (msg.ok) p.resolve(msg.tensor);
        else p.reject(msg.row ? new RowError(msg.code, msg.message) : new Error(msg.message));
      });
      const fail = (err: Error) => {
        this.dead ??= err;
        for (const [id, p] of this.pending) {
          if (p.worker !== i) continue;
          this.pending.delete(id);
          p.reject(err);
        }
      };
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`image decoder worker exited (code ${code})`)));
    });
  }

  static start(size: number): ImageDecoderPool {
    return new ImageDecoderPool(Array.from({ length: Math.max(1, size) }, () => new Worker(new URL('./image-decoder-worker.js', import.meta.url))));
  }

  get workers(): number {
    return this.pool.length;
  }

  decode(bytes: Buffer, spec: ImagePreprocessSpec, opts: DecodeOptions): Promise<Float32Array> {
    return this.send({ bytes }, spec, opts);
  }

  /** The main thread then neither waits on the file's open, stat, read and close nor copies its bytes. */
  decodeFile(file: string, maxBytes: number, spec: ImagePreprocessSpec, opts: DecodeOptions): Promise<Float32Array> {
    return this.send({ file, maxBytes }, spec, opts);
  }

  private send(source: DecodeRequest['source'], spec: ImagePreprocessSpec, opts: DecodeOptions): Promise<Float32Array> {
    if (this.dead) return Promise.reject(this.dead);
    let pick = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[pick]!) pick = i;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: pick });
      this.load[pick]!++;
      this.pool[pick]!.postMessage({ id, source, spec, maxPixels: opts.maxPixels, name: opts.name } satisfies DecodeRequest);
    });
  }

  async close(): Promise<void> {
    this.dead ??= new Error('image decoder closed');
    await Promise.all(this.pool.map((w) => w.terminate()));
  }
}
