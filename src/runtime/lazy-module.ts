// Packages a command may never use, loaded at their first use rather than at start-up: the CLI imports every
// command, and loading sharp, lmdb, undici, fastify and xmlbuilder2 up front cost ~0.3 s of each process's
// ~0.5 s start (measured on `categorize --version`), for nightly cron runs, CI checks and the tests' CLI processes.
import { createRequire } from 'node:module';
import type SharpModule from 'sharp';

const require = createRequire(import.meta.url);

/** A CommonJS package's exports, required once at the first call (then `init`), the same object after. */
export function lazyModule<T>(id: string, init?: (exports: T) => void): () => T {
  let exports: T | undefined;
  return () => {
    if (exports === undefined) {
      exports = require(id) as T;
      init?.(exports);
    }
    return exports;
  };
}

/** sharp (libvips). Decoded images are used once: libvips' operation cache would only hold memory. */
export const sharpLib = lazyModule<typeof SharpModule>('sharp', (sharp) => sharp.cache(false));
