// A seeded labelled catalog, already embedded, where neither modality alone names the class: for the head
// training tests (fusion, selection, row space).
import type { CollectedRow } from '../../src/pipeline/collect.js';
import { mulberry32 } from '../../src/head/random.js';

/**
 * Four classes: text tells {0,1} from {2,3} and image tells {0,2} from {1,3}; only both together name the class.
 * 30% of rows have no text, so the image head alone must carry them.
 */
export function twoModalityRows(n: number, seed: number): { rows: CollectedRow[]; labels: string[] } {
  const rnd = mulberry32(seed);
  const words = [
    ['cotton', 'shirt', 'casual'],
    ['leather', 'shoe', 'sole'],
  ];
  const rows: CollectedRow[] = [];
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 4;
    const t = k < 2 ? 0 : 1;
    const im = k % 2;
    const noText = rnd() < 0.3;
    const text = noText ? '' : `${words[t][Math.floor(rnd() * 3)]} ${words[t][Math.floor(rnd() * 3)]} item ${Math.floor(rnd() * 50)}`;
    const image = Float32Array.from({ length: 8 }, (_, d) => (d === im ? 2 : 0) + (rnd() - 0.5));
    rows.push({ row: { index: i, id: `r${i}`, title: text, description: '', image: '', extra: {}, line: i + 2 }, vectors: { image }, ok: true, text, warnings: [], error: null });
    labels.push(`class-${k}`);
  }
  return { rows, labels };
}

