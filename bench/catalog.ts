// The benchmark's realistic catalog: seeded synthetic products (id,title,description,image,category) with one real
// image file per row, in the sizes, formats and quirks (alpha, EXIF orientation) of a real catalog's photos.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { mulberry32, shuffleInPlace } from '../src/head/random.js';

/** Bump when generation changes: a cached catalog of another version is regenerated. */
export const CATALOG_VERSION = 1;

export interface BenchCatalog {
  csv: string;
  dir: string;
  rows: number;
  words: string[];
  categories: string[];
}

export interface CatalogImageStats {
  count: number;
  /** Longer side in pixels, as displayed (EXIF orientation applied). */
  longerSide: { min: number; median: number; max: number; p10: number; p90: number };
  formats: Record<'jpeg' | 'png' | 'webp', number>;
  withAlpha: number;
  exifOriented: number;
  totalBytes: number;
  medianBytes: { jpeg: number; png: number; webp: number };
}

interface Manifest {
  version: number;
  rows: number;
  seed: number;
  categories: string[];
  images: CatalogImageStats;
  seconds: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultRoot = path.resolve(here, '..', '..');

// Categories carry a few real nouns each so titles read like products; their hue tints the photos, so images are
// informative about the category without being decisive (shapes and backgrounds are shared).
const CATEGORIES: { name: string; nouns: string[] }[] = [
  { name: 'Footwear', nouns: ['shoes', 'sneakers', 'boots', 'sandals', 'loafers', 'trainers'] },
  { name: 'Watches', nouns: ['watch', 'chronograph', 'smartwatch', 'wristwatch', 'strap'] },
  { name: 'Laptops', nouns: ['laptop', 'notebook', 'ultrabook', 'chromebook', 'keyboard'] },
  { name: 'Kitchen', nouns: ['pan', 'knife', 'saucepan', 'blender', 'kettle', 'skillet'] },
  { name: 'Books', nouns: ['novel', 'cookbook', 'biography', 'paperback', 'hardcover'] },
  { name: 'Toys', nouns: ['blocks', 'puzzle', 'doll', 'plush', 'game', 'robot'] },
  { name: 'Beauty', nouns: ['cream', 'lipstick', 'shampoo', 'perfume', 'serum', 'lotion'] },
  { name: 'Furniture', nouns: ['chair', 'bookshelf', 'table', 'sofa', 'wardrobe', 'desk'] },
  { name: 'Garden', nouns: ['hose', 'planter', 'shears', 'seeds', 'mower', 'trowel'] },
  { name: 'Sports', nouns: ['ball', 'racket', 'dumbbell', 'mat', 'bicycle', 'helmet'] },
  { name: 'Jewelry', nouns: ['necklace', 'ring', 'bracelet', 'earrings', 'pendant'] },
  { name: 'Phones', nouns: ['smartphone', 'phone', 'charger', 'case', 'cable'] },
  { name: 'Audio', nouns: ['headphones', 'earbuds', 'speaker', 'soundbar', 'microphone'] },
  { name: 'Cameras', nouns: ['camera', 'lens', 'tripod', 'camcorder', 'flash'] },
  { name: 'Bags', nouns: ['backpack', 'handbag', 'suitcase', 'wallet', 'tote'] },
  { name: 'Clothing', nouns: ['shirt', 'dress', 'jacket', 'jeans', 'sweater', 'hoodie'] },
  { name: 'Pet Supplies', nouns: ['collar', 'leash', 'litter', 'kibble', 'aquarium'] },
  { name: 'Automotive', nouns: ['tyre', 'wiper', 'jumper', 'dashcam', 'polish'] },
  { name: 'Office', nouns: ['stapler', 'pen', 'folder', 'printer', 'notepad'] },
  { name: 'Baby', nouns: ['stroller', 'diaper', 'bottle', 'crib', 'pacifier'] },
];

// Shared product-listing words (function words included): the part of every title and description that says
// nothing about the category, as in real listings.
const COMMON_WORDS = (
  'a an the and or with for of in on to by from at is are it its this that your you our new updated premium quality ' +
  'durable lightweight compact portable classic modern vintage black white red blue green grey gray silver gold pink ' +
  'purple orange brown beige navy small medium large extra set pack pair kit bundle design easy use clean perfect gift ' +
  'home office travel daily everyday soft comfortable stylish original genuine warranty year years month size colour ' +
  'color material cotton leather steel stainless plastic wood wooden glass metal rubber aluminium ceramic silicone inch ' +
  'cm mm kg ml litre watt pro max mini plus ultra edition series model version generation made high low fast slow long ' +
  'short wide slim thin thick heavy strong safe secure smart wireless digital electric manual automatic rechargeable ' +
  'battery power charging fit adjustable removable washable waterproof resistant breathable non slip eco friendly ' +
  'natural organic best top great value price deal sale limited exclusive official brand collection range style look ' +
  'feel finish texture pattern print matte gloss shiny bright dark light all day night men women kids unisex adults ' +
  'indoor outdoor summer winter spring autumn season care includes included free shipping box package instructions ' +
  'one two three four five six ten dozen piece pieces item items perfect ideal suitable compatible designed built ' +
  'provides offers keeps helps makes ensures features combines delivers support protection storage capacity space'
).split(' ');

const NUMBERS = ['1', '2', '3', '4', '5', '6', '8', '10', '12', '16', '20', '24', '32', '42', '50', '64', '100', '128', '200', '250', '256', '500', '512', '1000'];

const PSEUDO_WORDS = 4000;
const PER_CATEGORY_WORDS = 120;
const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'cl', 'dr', 'fl', 'gr', 'kr', 'pl', 'st', 'tr', 'sh', 'ch', 'th'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'o', 'ai', 'ou', 'y'];
const CODAS = ['', '', '', 'n', 'r', 's', 'x', 'l', 'm', 'nd', 'st', 'rk'];

interface Lexicon {
  common: string[];
  general: string[];
  /** Per category: its real nouns and its own pseudo-words (brands, model names, jargon). */
  byCategory: string[][];
  vocabulary: string[];
}

const lexicons = new Map<number, Lexicon>();

function lexicon(seed: number): Lexicon {
  const cached = lexicons.get(seed);
  if (cached) return cached;
  const rand = mulberry32(mix(seed, 0x51ab));
  const taken = new Set<string>([...COMMON_WORDS, ...NUMBERS, ...CATEGORIES.flatMap((c) => c.nouns)]);
  const pseudo: string[] = [];
  while (pseudo.length < PSEUDO_WORDS) {
    const syllables = rand() < 0.6 ? 2 : 3;
    let w = '';
    for (let s = 0; s < syllables; s++) w += pick(rand, ONSETS) + pick(rand, VOWELS) + (s === syllables - 1 ? pick(rand, CODAS) : '');
    if (!taken.has(w)) { taken.add(w); pseudo.push(w); }
  }
  const byCategory = CATEGORIES.map((c, i) => [...c.nouns, ...pseudo.slice(i * PER_CATEGORY_WORDS, (i + 1) * PER_CATEGORY_WORDS)]);
  const general = pseudo.slice(CATEGORIES.length * PER_CATEGORY_WORDS);
  const common = [...new Set(COMMON_WORDS)];
  const vocabulary = [...new Set([...common, ...NUMBERS, ...CATEGORIES.flatMap((c) => c.nouns), ...pseudo])];
  const lex = { common, general, byCategory, vocabulary };
  lexicons.set(seed, lex);
  return lex;
}

/** The words titles and descriptions are drawn from (lower case; punctuation `.,:-` and digits also occur). */
export function catalogVocabulary(seed: number): string[] {
  return [...lexicon(seed).vocabulary];
}

/** Punctuation that catalog texts contain besides the vocabulary, so a tokenizer can cover it too. */
export const CATALOG_PUNCTUATION = '. , : -';

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

/** A 32-bit hash of (seed, n): independent streams per row, so images do not depend on generation order. */
function mix(seed: number, n: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const capitalize = (w: string): string => w.charAt(0).toUpperCase() + w.slice(1);

function drawWord(rand: () => number, lex: Lexicon, cat: number, shares: [number, number, number]): string {
  const u = rand();
  if (u < shares[0]) return pick(rand, lex.byCategory[cat]!);
  if (u < shares[0] + shares[1]) return pick(rand, lex.common);
  if (u < shares[0] + shares[1] + shares[2]) return pick(rand, lex.general);
  return pick(rand, NUMBERS);
}

function makeTitle(rand: () => number, lex: Lexicon, cat: number): string {
  const n = 5 + Math.floor(rand() * 16); // 5..20 words
  const brand = capitalize(pick(rand, lex.byCategory[cat]!.slice(CATEGORIES[cat]!.nouns.length)));
  const words = [brand];
  const nounAt = 1 + Math.floor(rand() * (n - 1));
  for (let i = 1; i < n; i++) {
    words.push(i === nounAt ? pick(rand, CATEGORIES[cat]!.nouns) : drawWord(rand, lex, cat, [0.45, 0.35, 0.15]));
  }
  // Listings title-case most words; a dash before the specs is common.
  return words.map((w, i) => (i > 0 && rand() < 0.6 ? capitalize(w) : w)).join(' ').replace(/ (\d+) /, rand() < 0.3 ? ' - $1 ' : ' $1 ');
}

function makeDescription(rand: () => number, lex: Lexicon, cat: number): string {
  const total = 20 + Math.floor(rand() * 101); // 20..120 words
  const sentences: string[] = [];
  let used = 0;
  while (used < total) {
    const len = Math.min(total - used, 5 + Math.floor(rand() * 11));
    const ws: string[] = [];
    for (let i = 0; i < len; i++) ws.push(drawWord(rand, lex, cat, [0.3, 0.5, 0.15]));
    ws[0] = capitalize(ws[0]!);
    if (len > 6 && rand() < 0.3) ws[2 + Math.floor(rand() * (len - 4))] += ',';
    sentences.push(`${ws.join(' ')}${rand() < 0.05 ? ':' : '.'}`);
    used += len;
  }
  return sentences.join(' ');
}

// ---------------------------------------------------------------------------------------------------------------
// Images

type Format = 'jpeg' | 'png' | 'webp';
const EXT: Record<Format, string> = { jpeg: 'jpg', png: 'png', webp: 'webp' };

interface ImagePlan {
  width: number;
  height: number;
  format: Format;
  alpha: boolean;
  /** EXIF orientation written into a JPEG (pixels stored rotated accordingly), or 0 for none. */
  orientation: 0 | 3 | 6 | 8;
  quality: number;
  noise: number;
  seed: number;
  hue: number;
}

function planImage(seed: number, row: number, cat: number): ImagePlan {
  const rand = mulberry32(mix(seed, row + 1));
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  // Longer side log-normal around 950 px (product photos cluster at 800-1200, a tail of large originals).
  const longer = Math.round(Math.min(2000, Math.max(300, Math.exp(Math.log(950) + 0.4 * normal()))));
  const a = rand();
  const ratio = a < 0.55 ? 1 : a < 0.7 ? 4 / 3 : a < 0.85 ? 3 / 4 : a < 0.95 ? 2 / 3 : 16 / 9; // width / height
  const width = ratio >= 1 ? longer : Math.round(longer * ratio);
  const height = ratio >= 1 ? Math.round(longer / ratio) : longer;
  const f = rand();
  const format: Format = f < 0.7 ? 'jpeg' : f < 0.9 ? 'png' : 'webp';
  const alpha = format !== 'jpeg' && rand() < 1 / 3;
  const o = rand();
  const orientation = format === 'jpeg' && o < 0.1 ? ([3, 6, 8] as const)[Math.floor((o / 0.1) * 3)]! : 0;
  const noise = 6 + rand() * 8;
  const quality = format === 'jpeg' ? 78 + Math.floor(rand() * 15) : 75 + Math.floor(rand() * 16);
  return { width, height, format, alpha, orientation, quality, noise, seed: mix(seed ^ 0x1234567, row + 1), hue: cat * (360 / CATEGORIES.length) };
}

function hsl(h: number, s: number, l: number): [number, number, number] {
  const k = (n: number): number => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => 255 * (l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1)));
  return [f(0), f(8), f(4)];
}

/**
 * Raw pixels: a two-colour gradient background, a few shaded ellipses and rectangles in the category's hue, and
 * per-pixel noise. The noise is what keeps JPEG sizes photo-like and makes every file's bytes unique. PNGs are
 * noisy only on the "product" (the shapes) and keep a clean studio background, as cut-out renders do; noisy
 * lossless backgrounds would make them several MB each.
 */
function renderPixels(plan: ImagePlan): { data: Uint8ClampedArray; channels: 3 | 4 } {
  const { width: w, height: h } = plan;
  const channels = plan.alpha ? 4 : 3;
  const rand = mulberry32(plan.seed);
  const data = new Uint8ClampedArray(w * h * channels);
  const product = plan.format === 'png' || plan.alpha ? new Uint8Array(w * h) : undefined;
  const light = rand() < 0.4; // a studio-white background, as many product shots have
  const c0 = light ? hsl(plan.hue, 0.1, 0.92 + 0.06 * rand()) : hsl((plan.hue + 360 * rand() * 0.3) % 360, 0.2 + 0.5 * rand(), 0.3 + 0.5 * rand());
  const c1 = light ? hsl(plan.hue, 0.05, 0.85 + 0.1 * rand()) : hsl((plan.hue + 180 * rand()) % 360, 0.2 + 0.5 * rand(), 0.2 + 0.6 * rand());
  // t = (gx * x + gy * y - t0) / span runs 0..1 across the frame along a random direction.
  const angle = 2 * Math.PI * rand();
  const gx = Math.cos(angle) / w;
  const gy = Math.sin(angle) / h;
  const t0 = Math.min(0, gx * w) + Math.min(0, gy * h);
  const span = Math.abs(gx * w) + Math.abs(gy * h);
  const [dr, dg, db] = [0, 1, 2].map((c) => (c1[c]! - c0[c]!) / span);
  const alphaBg = plan.alpha ? 0 : 255;
  for (let y = 0; y < h; y++) {
    const ty = gy * y - t0;
    const r0 = c0[0] + dr! * ty;
    const g0 = c0[1] + dg! * ty;
    const b0 = c0[2] + db! * ty;
    const [rx, gxc, bx] = [dr! * gx, dg! * gx, db! * gx];
    let i = y * w * channels;
    for (let x = 0; x < w; x++, i += channels) {
      data[i] = r0 + rx * x;
      data[i + 1] = g0 + gxc * x;
      data[i + 2] = b0 + bx * x;
      if (channels === 4) data[i + 3] = alphaBg;
    }
  }
  const shapes = 2 + Math.floor(rand() * 5);
  const m = Math.min(w, h);
  for (let s = 0; s < shapes; s++) {
    const [r, g, b] = hsl((plan.hue + (rand() - 0.5) * 40 + 360) % 360, 0.4 + 0.5 * rand(), 0.25 + 0.5 * rand());
    const cx = w * (0.2 + 0.6 * rand());
    const cy = h * (0.2 + 0.6 * rand());
    const rx = m * (0.08 + 0.25 * rand());
    const ry = rand() < 0.5 ? rx : m * (0.08 + 0.25 * rand());
    const ellipse = rand() < 0.6;
    const x0 = Math.max(0, Math.floor(cx - rx));
    const x1 = Math.min(w, Math.ceil(cx + rx));
    const y0 = Math.max(0, Math.floor(cy - ry));
    const y1 = Math.min(h, Math.ceil(cy + ry));
    for (let y = y0; y < y1; y++) {
      const dy = (y - cy) / ry;
      const shade = 1.15 - 0.15 * (dy + 1); // lit from above
      let i = (y * w + x0) * channels;
      for (let x = x0; x < x1; x++, i += channels) {
        if (ellipse) {
          const dx = (x - cx) / rx;
          if (dx * dx + dy * dy > 1) continue;
        }
        data[i] = r * shade;
        data[i + 1] = g * shade;
        data[i + 2] = b * shade;
        if (channels === 4) data[i + 3] = 255;
        if (product) product[y * w + x] = 1;
      }
    }
  }
  // Triangular noise (sd ~0.8 x plan.noise) from a lookup table, three 10-bit indices per xorshift draw: the
  // per-pixel cost has to stay small, pixels are drawn on the main thread.
  const table = new Int16Array(1024);
  for (let k = 0; k < 1024; k++) table[k] = Math.round((((k & 31) + (k >>> 5) - 31) * plan.noise) / 16);
  let st = plan.seed | 1;
  for (let p = 0, i = 0; p < w * h; p++, i += channels) {
    if (product && product[p] === 0) continue;
    st ^= st << 13; st ^= st >>> 17; st ^= st << 5;
    data[i] += table[st & 1023]!;
    data[i + 1] += table[(st >>> 10) & 1023]!;
    data[i + 2] += table[(st >>> 20) & 1023]!;
  }
  return { data, channels };
}

async function encodeImage(plan: ImagePlan): Promise<Buffer> {
  const { data, channels } = renderPixels(plan);
  let img = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width: plan.width, height: plan.height, channels } });
  if (plan.orientation) {
    // Store the pixels the way a camera would, so that applying the tag shows the picture upright.
    img = img.rotate({ 3: 180, 6: 270, 8: 90 }[plan.orientation]).withMetadata({ orientation: plan.orientation });
  }
  switch (plan.format) {
    case 'jpeg': return img.jpeg({ quality: plan.quality }).toBuffer();
    case 'png': return img.png({ compressionLevel: 6 }).toBuffer();
    case 'webp': return img.webp({ quality: plan.quality, effort: 2 }).toBuffer();
  }
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
}

// ---------------------------------------------------------------------------------------------------------------

/** Generates once into bench/.data/catalog-<rows>-<seed>/ (git-ignored); reused when present. */
export async function ensureBenchCatalog(opts: { rows: number; seed: number; root?: string; log?: (line: string) => void }): Promise<BenchCatalog> {
  const { rows, seed } = opts;
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`rows must be a positive integer, got ${rows}`);
  const log = opts.log ?? (() => {});
  const dir = path.join(opts.root ?? defaultRoot, 'bench', '.data', `catalog-${rows}-${seed}`);
  const result: BenchCatalog = {
    csv: path.join(dir, 'catalog.csv'),
    dir,
    rows,
    words: catalogVocabulary(seed),
    categories: CATEGORIES.map((c) => c.name),
  };
  const manifest = readManifest(dir);
  if (manifest?.version === CATALOG_VERSION && manifest.rows === rows && manifest.seed === seed) {
    log(`catalog: reusing ${path.relative(process.cwd(), dir) || dir}`);
    return result;
  }

  // Built in a temporary sibling and renamed at the end: an interrupted run never leaves a half catalog behind.
  const t0 = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  let seconds: number;
  let images: CatalogImageStats;
  try {
    fs.mkdirSync(path.join(tmp, 'images'), { recursive: true });
    const lex = lexicon(seed);
    const rand = mulberry32(mix(seed, 0));
    // Mildly imbalanced classes, as real catalogs are (the largest ~4x the smallest).
    const weights = CATEGORIES.map((_, i) => 1 / (1 + 0.15 * i));
    const totalWeight = weights.reduce((a, b) => a + b, 0);
    const drawCategory = (): number => {
      let u = rand() * totalWeight;
      for (let i = 0; i < weights.length; i++) if ((u -= weights[i]!) < 0) return i;
      return weights.length - 1;
    };

    const records: string[][] = [];
    const plans: ImagePlan[] = [];
    for (let r = 0; r < rows; r++) {
      const cat = drawCategory();
      const plan = planImage(seed, r, cat);
      const image = `images/${String(r + 1).padStart(6, '0')}.${EXT[plan.format]}`;
      records.push([`P${String(r + 1).padStart(7, '0')}`, makeTitle(rand, lex, cat), makeDescription(rand, lex, cat), image, CATEGORIES[cat]!.name]);
      plans.push(plan);
    }
    fs.writeFileSync(path.join(tmp, 'catalog.csv'), stringify(records, { header: true, columns: ['id', 'title', 'description', 'image', 'category'] }));

    // Pixels are drawn on the main thread and encoded on libuv's pool, so a few images in flight keep 2 cores busy
    // while memory stays bounded (a 2000 px RGBA frame is 16 MB).
    const limit = pLimit(Math.max(2, Math.min(4, os.availableParallelism())));
    const hashes = new Set<string>();
    const bytes: number[] = new Array(rows).fill(0);
    let done = 0;
    await Promise.all(plans.map((plan, r) => limit(async () => {
      const buf = await encodeImage(plan);
      const digest = crypto.createHash('sha1').update(buf).digest('hex');
      if (hashes.has(digest)) throw new Error(`image ${r + 1} duplicates another image's bytes`);
      hashes.add(digest);
      bytes[r] = buf.length;
      await fs.promises.writeFile(path.join(tmp, records[r]![3]!), buf);
      if (++done % 250 === 0 || done === rows) log(`catalog: ${done}/${rows} images (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }))).catch((err: unknown) => {
      limit.clearQueue(); // no point drawing the rest
      throw err;
    });

    const longer = plans.map((p) => Math.max(p.width, p.height)).sort((a, b) => a - b);
    const byFormat = (f: Format): number[] => bytes.filter((_, i) => plans[i]!.format === f);
    images = {
      count: rows,
      longerSide: { min: longer[0]!, median: median(longer), max: longer[longer.length - 1]!, p10: quantile(longer, 0.1), p90: quantile(longer, 0.9) },
      formats: { jpeg: byFormat('jpeg').length, png: byFormat('png').length, webp: byFormat('webp').length },
      withAlpha: plans.filter((p) => p.alpha).length,
      exifOriented: plans.filter((p) => p.orientation).length,
      totalBytes: bytes.reduce((a, b) => a + b, 0),
      medianBytes: { jpeg: median(byFormat('jpeg')), png: median(byFormat('png')), webp: median(byFormat('webp')) },
    };
    seconds = (performance.now() - t0) / 1000;
    const m: Manifest = { version: CATALOG_VERSION, rows, seed, categories: result.categories, images, seconds };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  log(`catalog: ${rows} rows, ${(images.totalBytes / 1e6).toFixed(0)} MB of images in ${seconds.toFixed(1)} s → ${dir}`);
  return result;
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** Size, format and byte statistics of a generated catalog's images (recorded when it was generated). */
export function catalogImageStats(catalog: BenchCatalog): CatalogImageStats {
  const m = readManifest(catalog.dir);
  if (!m) throw new Error(`${catalog.dir} has no manifest.json; generate it with ensureBenchCatalog`);
  return m.images;
}

/**
 * Writes a copy of `csv` to `outCsv` in which a `share` of the rows (chosen by `seed`) have a new photo (the old
 * one brightened a little and re-encoded in its format, so other bytes) and an edited title: what a nightly re-run
 * sees after a day of catalog edits. New images go to `<outCsv without .csv>-images/`; image paths of the copy are
 * relative to its own folder.
 */
export async function changeRows(csv: string, share: number, seed: number, outCsv: string): Promise<{ changed: number }> {
  if (!(share >= 0 && share <= 1)) throw new Error(`share must be within [0, 1], got ${share}`);
  const srcDir = path.dirname(path.resolve(csv));
  const outDir = path.dirname(path.resolve(outCsv));
  const imgDir = path.join(outDir, `${path.basename(outCsv).replace(/\.csv$/i, '')}-images`);
  const records = parse(fs.readFileSync(csv), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const columns = Object.keys(records[0] ?? { id: '', title: '', description: '', image: '', category: '' });
  const rand = mulberry32(mix(seed, 0xc4a9));
  const order = shuffleInPlace(records.map((_, i) => i), rand);
  const chosen = new Set(order.slice(0, Math.round(share * records.length)));
  fs.rmSync(imgDir, { recursive: true, force: true });
  fs.mkdirSync(imgDir, { recursive: true });

  const limit = pLimit(2);
  await Promise.all(records.map((rec, i) => limit(async () => {
    const original = path.resolve(srcDir, rec.image ?? '');
    if (!chosen.has(i)) {
      if (rec.image) rec.image = path.relative(outDir, original);
      return;
    }
    const input = await fs.promises.readFile(original);
    const ext = path.extname(original).toLowerCase();
    // rotate() applies any EXIF orientation, since the re-encoded file carries no tag.
    const img = sharp(input).rotate().modulate({ brightness: 1.03 + 0.04 * ((i * 7919) % 10) / 10 });
    const out = ext === '.png' ? await img.png({ compressionLevel: 6 }).toBuffer()
      : ext === '.webp' ? await img.webp({ quality: 82, effort: 2 }).toBuffer()
        : await img.jpeg({ quality: 88 }).toBuffer();
    if (out.equals(input)) throw new Error(`re-encoding ${original} gave the same bytes`);
    const dest = path.join(imgDir, `${path.basename(original, ext)}-v2${ext || '.jpg'}`);
    await fs.promises.writeFile(dest, out);
    rec.image = path.relative(outDir, dest);
    rec.title = `Updated ${rec.title ?? ''}`.trimEnd();
  })));
  fs.writeFileSync(outCsv, stringify(records, { header: true, columns }));
  return { changed: chosen.size };
}
