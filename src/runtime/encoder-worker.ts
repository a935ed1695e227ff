// Worker-thread entry: hosts one encoder (text or image) so its synchronous ONNX Runtime runs never stall the main loop.
import { parentPort, workerData } from 'node:worker_threads';
import { TextEncoder } from '../embed/text-encoder.js';
import { ImageEncoder } from '../embed/image-encoder.js';
import type { EncoderInit, EncoderRequest, EncoderReply, EncoderStatus } from './encoder-protocol.js';
import { CategorizeError } from '../errors.js';

const port = parentPort!;
const init = workerData as EncoderInit;

function describe(err: unknown): { message: string; code: string; exitCode: number } {
  if (err instanceof CategorizeError) return { message: err.message, code: err.code, exitCode: err.exitCode };
  return { message: err instanceof Error ? err.message : String(err), code: 'model_run', exitCode: 1 };
}

/** One batch buffer from per-image tensors (a single one as it is). */
function concat(tensors: Float32Array[]): Float32Array {
  if (tensors.length === 1) return tensors[0]!;
  const per = tensors[0]!.length;
  const batch = new Float32Array(per * tensors.length);
  tensors.forEach((t, i) => batch.set(t, i * per));
  return batch;
}

async function main(): Promise<void> {
  let encoder: TextEncoder | ImageEncoder;
  try {
    encoder = init.kind === 'text' ? await TextEncoder.load(init.spec, init.session) : await ImageEncoder.load(init.spec, init.session);
  } catch (err) {
    port.postMessage({ type: 'failed', ...describe(err) } satisfies EncoderStatus);
    return;
  }
  port.postMessage({ type: 'ready', dim: encoder.dim, provider: encoder.provider, notice: encoder.notice } satisfies EncoderStatus);
  port.on('message', async (req: EncoderRequest) => {
    if (req.type === 'close') {
      await encoder.dispose();
      port.close();
      return;
    }
    try {
      const vectors =
        req.type === 'texts'
          ? await (encoder as TextEncoder).embed(req.texts)
          : req.type === 'pixels'
            ? await (encoder as ImageEncoder).embed(req.pixels, req.count)
            : await (encoder as ImageEncoder).embed(concat(req.tensors), req.tensors.length);
      // Copy out of ONNX Runtime's buffer so the transfer cannot touch memory the session still owns.
      const owned = new Float32Array(vectors);
      port.postMessage({ id: req.id, ok: true, vectors: owned } satisfies EncoderReply, [owned.buffer]);
    } catch (err) {
      port.postMessage({ id: req.id, ok: false, ...describe(err) } satisfies EncoderReply);
    }
  });
}

void main();
