// The model settings every command shares, read once from the environment and flags: registry, cache, hub
// endpoint and token, offline mode, download policy.
import { DEFAULT_ENDPOINT, type HubOptions } from '../models/download.js';
import { ModelCache, cacheRootFromEnv } from '../models/cache.js';
import { loadRegistry } from '../models/registry.js';
import type { ModelContext } from '../models/resolve.js';
import { makeDownloadProgress } from './progress.js';
import { CliLog } from './log.js';

export interface ModelFlags {
  offline?: boolean;
  allowDownload?: boolean;
  ignoreModelMismatch?: boolean;
  quiet?: boolean;
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

export function hubOptions(env: NodeJS.ProcessEnv): HubOptions {
  const timeout = Number(env.CATEGORIZE_DOWNLOAD_TIMEOUT_MS);
  const retries = Number(env.CATEGORIZE_DOWNLOAD_RETRIES);
  return {
    endpoint: env.HF_ENDPOINT || DEFAULT_ENDPOINT,
    token: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined,
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 30_000,
    retries: Number.isInteger(retries) && retries >= 0 ? retries : 4,
    backoffMs: env.CATEGORIZE_DOWNLOAD_BACKOFF_MS ? Number(env.CATEGORIZE_DOWNLOAD_BACKOFF_MS) : undefined,
    userAgent: 'categorize',
  };
}

export function modelContext(env: NodeJS.ProcessEnv, flags: ModelFlags, stderr: NodeJS.WriteStream, log?: CliLog): ModelContext {
  const cache = new ModelCache(cacheRootFromEnv(env));
  return {
    registry: loadRegistry({ registryFile: env.CATEGORIZE_REGISTRY || undefined, userFile: cache.userRegistryFile }),
    cache,
    hub: { ...hubOptions(env), offline: Boolean(flags.offline) || truthy(env.HF_HUB_OFFLINE) },
    offline: Boolean(flags.offline) || truthy(env.HF_HUB_OFFLINE),
    allowDownload: Boolean(flags.allowDownload),
    ignoreMismatch: Boolean(flags.ignoreModelMismatch),
    progress: makeDownloadProgress(stderr, { quiet: Boolean(flags.quiet) || log?.format === 'json' }),
    log: (line) => (log ?? new CliLog(stderr, 'text', Boolean(flags.quiet))).line(line),
  };
}
