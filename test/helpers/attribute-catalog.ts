// A labelled catalog with two attributes whose evidence lies in different places, for the attribute tests:
// `audience` is named in the title only (the photo knows nothing of it), `tone` is in the photo only (a dark or a
// light picture; the text never says). The category stays the demo's (its text, a shape in the photo).
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { mulberry32 } from '../../src/head/random.js';

export const AUDIENCES = ['men', 'women', 'kids'] as const;
export const TONES = ['dark', 'light'] as const;

export interface AttributeRow {
  id: string;
  title: string;
  description: string;
  image: string;
  category: string;
  audience: string;
  tone: string;
}

/**
 * Writes `<dir>/<name>.csv` (+ `<dir>/images/`) from a demo CSV: each row's title gains "for <audience>", its photo is
 * a small noisy square, dark or light by its tone. `blankAudience` rows (every n-th) get an empty audience cell, and
 * `rareAudience` names a value given to exactly one row.
 */
export async function writeAttributeCatalog(
  source: string,
  dir: string,
  name: string,
  opts: { seed: number; limit?: number; blankAudienceEvery?: number; rareAudience?: string },
): Promise<AttributeRow[]> {
  const rnd = mulberry32(opts.seed);
  const input = parse(fs.readFileSync(source, 'utf8'), { columns: true }) as Record<string, string>[];
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  const rows: AttributeRow[] = [];
  for (const [i, r] of input.slice(0, opts.limit ?? input.length).entries()) {
    const audience = AUDIENCES[Math.floor(rnd() * AUDIENCES.length)]!;
    const tone = TONES[Math.floor(rnd() * TONES.length)]!;
    const image = `images/${r.id}.png`;
    const level = tone === 'dark' ? 40 : 215;
    const px = Buffer.alloc(24 * 24 * 3);
    for (let p = 0; p < px.length; p++) px[p] = Math.max(0, Math.min(255, level + Math.round((rnd() - 0.5) * 60)));
    await sharp(px, { raw: { width: 24, height: 24, channels: 3 } }).png().toFile(path.join(dir, image));
    const blank = opts.blankAudienceEvery !== undefined && i % opts.blankAudienceEvery === opts.blankAudienceEvery - 1;
    rows.push({ id: r.id!, title: `${r.title} for ${audience}`, description: r.description ?? '', image, category: r.category!, audience: blank ? '' : audience, tone });
  }
  if (opts.rareAudience !== undefined) rows.find((r) => r.audience !== '')!.audience = opts.rareAudience;
  const header = ['id', 'title', 'description', 'image', 'category', 'audience', 'tone'] as const;
  fs.writeFileSync(path.join(dir, `${name}.csv`), stringify([[...header], ...rows.map((r) => header.map((h) => r[h]))]));
  return rows;
}
