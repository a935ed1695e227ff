// (Re)builds fixtures/real-demo/ from ../shared/data/flipkart-products: a seeded, stratified sample of the train split
// (never dev) with photos shrunk to thumbnails, small enough to commit. Same shared data and seed: the same files.
//   node dist/scripts/build-real-demo.js [--shared ../shared] [--out fixtures/real-demo] [--rows 300] [--seed 20261205]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import sharp from 'sharp';
import { mulberry32, shuffleInPlace } from '../src/head/random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const REAL_DEMO_DEFAULTS = {
  shared: path.resolve(root, '..', 'shared'),
  out: path.join(root, 'fixtures', 'real-demo'),
  rows: 300,
  seed: 20261205,
  /** Longer side of the committed photos: the image model crops 224 px, so more would only cost repository space. */
  maxSide: 256,
  quality: 80,
};

export type RealDemoOptions = typeof REAL_DEMO_DEFAULTS;

interface SourceRow {
  id: string;
  title: string;
  description: string;
  image: string;
  category: string;
}

/**
 * Rows per category: proportional to the category's share of the source (largest remainder, ties by name), so
 * every category keeps its share whatever the total.
 */
export function stratifiedQuotas(counts: Map<string, number>, total: number): Map<string, number> {
  const n = [...counts.values()].reduce((s, x) => s + x, 0);
  if (total > n) throw new Error(`asked for ${total} rows, the source has ${n}`);
  const names = [...counts.keys()].sort();
  const exact = names.map((c) => ({ c, q: (total * counts.get(c)!) / n }));
  const quotas = new Map(exact.map(({ c, q }) => [c, Math.floor(q)]));
  let left = total - [...quotas.values()].reduce((s, x) => s + x, 0);
  for (const { c } of [...exact].sort((a, b) => b.q - Math.floor(b.q) - (a.q - Math.floor(a.q)) || (a.c < b.c ? -1 : 1))) {
    if (left-- <= 0) break;
    quotas.set(c, quotas.get(c)! + 1);
  }
  return quotas;
}

/** The seeded stratified sample, in a seeded shuffled order (a catalog is not sorted by category). */
export function sampleRows(rows: SourceRow[], total: number, seed: number): SourceRow[] {
  const byCategory = new Map<string, SourceRow[]>();
  for (const r of rows) byCategory.set(r.category, [...(byCategory.get(r.category) ?? []), r]);
  const quotas = stratifiedQuotas(new Map([...byCategory].map(([c, rs]) => [c, rs.length])), total);
  const rand = mulberry32(seed);
  const picked: SourceRow[] = [];
  for (const c of [...byCategory.keys()].sort()) {
    // Sorted by id first: the sample must not depend on the source file's row order.
    const pool = [...byCategory.get(c)!].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    picked.push(...shuffleInPlace(pool, rand).slice(0, quotas.get(c)!));
  }
  return shuffleInPlace(picked, rand);
}

export async function buildRealDemo(opts: RealDemoOptions = REAL_DEMO_DEFAULTS, log: (s: string) => void = () => {}): Promise<void> {
  const source = path.join(opts.shared, 'data', 'flipkart-products');
  const trainCsv = path.join(source, 'train.csv');
  if (!fs.existsSync(trainCsv)) throw new Error(`${trainCsv} not found: pass --shared DIR (the folder that holds data/flipkart-products)`);
  const rows = (parse(fs.readFileSync(trainCsv), { columns: true, bom: true }) as Record<string, string>[]).map(
    (r): SourceRow => ({ id: r.id, title: r.title, description: r.description, image: r.image, category: r.category }),
  );
  const sample = sampleRows(rows, opts.rows, opts.seed);

  fs.rmSync(opts.out, { recursive: true, force: true });
  fs.mkdirSync(path.join(opts.out, 'images'), { recursive: true });
  let bytes = 0;
  for (const r of sample) {
    const name = path.basename(r.image).replace(/\.[^.]+$/, '') + '.jpg';
    // autoOrient: the pixels as the photo is meant to be seen, since the output keeps no EXIF orientation.
    const jpeg = await sharp(path.join(source, r.image), { autoOrient: true })
      .resize({ width: opts.maxSide, height: opts.maxSide, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: opts.quality, mozjpeg: true })
      .toBuffer();
    fs.writeFileSync(path.join(opts.out, 'images', name), jpeg);
    bytes += jpeg.length;
    r.image = `images/${name}`;
  }
  const csv = stringify(sample, { header: true, columns: ['id', 'title', 'description', 'image', 'category'] });
  fs.writeFileSync(path.join(opts.out, 'catalog.csv'), csv);
  bytes += Buffer.byteLength(csv);

  const counts = new Map<string, number>();
  for (const r of sample) counts.set(r.category, (counts.get(r.category) ?? 0) + 1);
  const sourceMd = fs.readFileSync(path.join(source, 'SOURCE.md'), 'utf8');
  fs.writeFileSync(path.join(opts.out, 'SOURCE.md'), sourceNotes(opts, rows.length, counts, sourceMd));
  log(`${sample.length} of ${rows.length} train rows, ${counts.size} categories, ${(bytes / 1024 / 1024).toFixed(2)} MB written to ${path.relative(process.cwd(), opts.out) || '.'}`);
}

function sourceNotes(opts: RealDemoOptions, sourceRows: number, counts: Map<string, number>, sourceMd: string): string {
  // The attribution is the shared data's own first paragraph, copied, so the two never drift apart in wording.
  const provenance = sourceMd.split(/\n\s*\n/).find((p) => /CC BY-SA/.test(p))?.trim() ?? '';
  const table = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, n]) => `| ${c} | ${n} |`).join('\n');
  return `# real-demo

A small real catalog for \`npm run demo\`: ${[...counts.values()].reduce((s, x) => s + x, 0)} product listings with one photo each.

## Licence and attribution

**CC BY-SA 4.0** (https://creativecommons.org/licenses/by-sa/4.0/). These files are an adapted subset of the
following data (provenance copied from \`../shared/data/flipkart-products/SOURCE.md\`):

> ${provenance.replace(/\n/g, '\n> ')}

Changes: a subset of the rows, the \`category_path\` column dropped, photos downscaled and re-encoded (below). The
files in this folder stay under CC BY-SA 4.0 (ShareAlike), whatever the licence of the code around them.

## How the subset was made

\`node dist/scripts/build-real-demo.js\` (source: \`scripts/build-real-demo.ts\`; after \`npm run build\`) rebuilds this
folder from \`../shared/data/flipkart-products\`:

- rows from \`train.csv\` only (${sourceRows} rows; never \`dev.csv\`, which stays unseen for evaluation);
- ${opts.rows} rows, stratified by \`category\` (each category's share of train, largest remainder), picked within each
  category by a seeded shuffle (mulberry32, seed ${opts.seed}) of the rows sorted by id, then shuffled together;
- columns \`id,title,description,image,category\`, \`image\` relative to \`catalog.csv\`;
- photos: from the shared 512 px copies, EXIF orientation applied, at most ${opts.maxSide} px on the longer side,
  JPEG quality ${opts.quality} (mozjpeg), no metadata.

| category | rows |
|---|---:|
${table}
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { shared: { type: 'string' }, out: { type: 'string' }, rows: { type: 'string' }, seed: { type: 'string' } },
  });
  const opts: RealDemoOptions = {
    ...REAL_DEMO_DEFAULTS,
    ...(values.shared ? { shared: path.resolve(values.shared) } : {}),
    ...(values.out ? { out: path.resolve(values.out) } : {}),
    ...(values.rows ? { rows: Number(values.rows) } : {}),
    ...(values.seed ? { seed: Number(values.seed) } : {}),
  };
  buildRealDemo(opts, (s) => process.stderr.write(`build-real-demo: ${s}\n`)).catch((err: unknown) => {
    process.stderr.write(`build-real-demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
