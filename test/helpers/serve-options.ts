// The in-process server's options on the demo bundle (port 0, offline, small limits), with overrides.
import { demo } from './cli.js';
import { modelContext } from '../../src/cli/model-context.js';
import type { ServeOptions } from '../../src/serve/server.js';

const MB = 1024 * 1024;

export function serveOptions(over: Partial<ServeOptions> = {}): ServeOptions {
  return {
    models: modelContext({ ...process.env, HF_HUB_OFFLINE: '1' }, { quiet: true }, process.stderr),
    model: demo.bundle,
    columns: { id: 'id', title: 'title', description: 'description', image: ['image', 'image_path'] },
    device: 'cpu',
    threads: 1,
    batchSize: 32,
    maxWaitMs: 5,
    concurrency: 4,
    window: 64,
    onImageError: 'impute',
    fetch: { timeoutMs: 2000, retries: 0, maxBytes: 20 * MB },
    maxPixels: 100_000_000,
    topN: 3,
    host: '127.0.0.1',
    port: 0,
    allowImageUrls: false,
    maxUploadBytes: 20 * MB,
    requestTimeoutMs: 30_000,
    maxQueue: 64,
    shutdownTimeoutMs: 5000,
    ...over,
  };
}
