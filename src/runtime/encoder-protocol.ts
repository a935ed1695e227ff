// Messages between the main thread and an encoder worker.
import type { ImageModelSpec, TextModelSpec } from '../models/model-dir.js';
import type { SessionOptions } from './session.js';

export type EncoderInit =
  | { kind: 'text'; spec: TextModelSpec; session: SessionOptions }
  | { kind: 'image'; spec: ImageModelSpec; session: SessionOptions };

export type EncoderRequest =
  | { type: 'texts'; id: number; texts: string[] }
  | { type: 'pixels'; id: number; pixels: Float32Array; count: number }
  /** One tensor per image, batched in the worker (the main thread then copies no pixels). */
  | { type: 'tensors'; id: number; tensors: Float32Array[] }
  | { type: 'close' };

export type EncoderReply =
  | { id: number; ok: true; vectors: Float32Array }
  | { id: number; ok: false; message: string; code: string; exitCode: number };

export type EncoderStatus =
  | { type: 'ready'; dim: number; provider: string; notice?: string }
  | { type: 'failed'; message: string; code: string; exitCode: number };
