// Worker-thread entry of ImageDecoderPool: preprocessImage on the bytes it is sent (or the file it is named, read
// here), the tensor sent back transferred.
import { parentPort } from 'node:worker_threads';
import { preprocessImage, type ImagePreprocessSpec } from '../embed/image-preprocess.js';
import { readImageFile } from '../io/image-source.js';
import { RowError } from '../errors.js';

export interface DecodeRequest {
  id: number;
  /** The image's bytes, or a file to read (at most maxBytes) here, off the main thread. */
  source: { bytes: Uint8Array } | { file: string; maxBytes: number };
  spec: ImagePreprocessSpec;
  maxPixels: number;
  name: string;
}

export type DecodeReply =
  | { id: number; ok: true; tensor: Float32Array }
  /** `row`: a RowError (its code is the row's reason); otherwise a failure of the decoder itself. */
  | { id: number; ok: false; row: boolean; code: string; message: string };

const port = parentPort;
async function decode(req: DecodeRequest): Promise<Float32Array> {
  const { source } = req;
  const bytes = 'file' in source ? await readImageFile(source.file, source.maxBytes) : Buffer.from(source.bytes.buffer, source.bytes.byteOffset, source.bytes.byteLength);
  return preprocessImage(bytes, req.spec, undefined, 0, { maxPixels: req.maxPixels, name: req.name });
}

port?.on('message', (req: DecodeRequest) => {
  decode(req).then(
    (tensor) => port.postMessage({ id: req.id, ok: true, tensor } satisfies DecodeReply, [tensor.buffer as ArrayBuffer]),
    (err: unknown) => {
      const row = err instanceof RowError;
      port.postMessage({ id: req.id, ok: false, row, code: row ? err.code : 'image_error', message: err instanceof Error ? err.message : String(err) } satisfies DecodeReply);
    },
  );
});
