// Embeds a whole catalog into memory (for training and evaluation), through the same extractor `run` streams with.
import type { CatalogRow } from '../io/catalog-reader.js';
import type { FeatureBlock } from '../models/bundle.js';
import { orderedMap } from './ordered-map.js';
import type { FeatureExtractor, RowFeatures } from './features.js';

export interface CollectedRow extends RowFeatures {
  row: CatalogRow;
}

export async function collectFeatures(
  rows: AsyncIterable<CatalogRow>,
  extractor: FeatureExtractor,
  opts: { window: number; onRow?: (r: CollectedRow, done: number) => void },
): Promise<CollectedRow[]> {
  const out: CollectedRow[] = [];
  await orderedMap(
    rows,
    async (row) => ({ ...(await extractor.extract(row)), row }),
    (r) => {
      out.push(r);
      opts.onRow?.(r, out.length);
    },
    { window: opts.window, onInputEnd: () => extractor.flush() },
  );
  return out;
}

/** Per block, the mean embedding over the rows that have it: what a missing modality is imputed with. */
export function blockMeans(rows: CollectedRow[], layout: readonly FeatureBlock[]): Record<string, Float64Array> {
  const means: Record<string, Float64Array> = {};
  for (const block of layout) {
    const acc = new Float64Array(block.dim);
    let count = 0;
    for (const r of rows) {
      const v = r.vectors[block.kind];
      if (!r.ok || !v) continue;
      for (let k = 0; k < block.dim; k++) acc[k] += v[k];
      count++;
    }
    if (count > 0) for (let k = 0; k < block.dim; k++) acc[k] /= count;
    means[block.kind] = acc;
  }
  return means;
}
