// The bundle session behind `serve`: run's own openBundleSession (same models, head, cache and predictor), fed a
// header-only catalog since requests bring their rows themselves.
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import { openBundleSession, type BundleRunOptions, type BundleSession } from '../pipeline/bundle-session.js';

/** Tags are computed this many deep once; each request takes the first top_k_tags of them (same ranking). */
export const MAX_TOP_K_TAGS = 50;

export type ServeSessionOptions = Omit<BundleRunOptions, 'input' | 'stdin'> & { topN: number };

export async function openServeSession(opts: ServeSessionOptions): Promise<BundleSession> {
  const c = opts.columns;
  // The session checks the bundle's required columns against a catalog header: give it the configured names.
  const header = stringify([[c.id, c.title, c.description, c.image[0] ?? 'image']]);
  return openBundleSession(
    { ...opts, input: '-', stdin: Readable.from([header]), delimiter: ',' },
    { extra: [], topN: opts.topN, topKTags: MAX_TOP_K_TAGS },
  );
}
