// A seeded synthetic text catalog shaped like the real ones (id,title,description,category,category_path): many
// classes with Zipf sizes, titles built from class, family, department, brand and shared words, so related classes
// overlap; category_path files each class under its department and family (a 3-level taxonomy).
//
//   node dist/bench/synthetic-catalog.js -o catalog.csv                       # 5,000 classes, 100,000 rows, seed 1
//   node dist/bench/synthetic-catalog.js --classes 100 --rows 3000 --sample 1 --sample-rows 500 -o heldout.csv
//
// The classes (names, vocabularies, sizes) depend on --classes, --rows and --seed only; --sample picks the row
// stream: 0 (default) is the training catalog, with every class present at least twice; 1, 2 … are independent rows
// from the same classes, drawn in the same proportions (held-out sets; --sample-rows of them, default --rows).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'csv-stringify/sync';
import { mulberry32, shuffleInPlace } from '../src/head/random.js';

export interface SyntheticCatalogOptions {
  classes: number;
  rows: number;
  seed: number;
  /** 0: the training catalog (every class ≥ 2 rows); n > 0: n-th independent sample of the same classes. */
  sample?: number;
  /** Rows of a sample n > 0 (default `rows`); the classes and their proportions still come from `rows`. */
  sampleRows?: number;
}

export interface SyntheticRow {
  id: string;
  title: string;
  description: string;
  category: string;
  /** The class's place in a 3-level tree: department > family > class (siblings in a family share words). */
  category_path: string;
}

export const SYNTHETIC_COLUMNS = ['id', 'title', 'description', 'category', 'category_path'] as const;

/** Class sizes: 2 rows each plus a share of the rest ∝ 1/rank^ZIPF_S (at 5,000 classes and 100,000 rows: 9,898 down to 4). */
const ZIPF_S = 1;
/** Leaves per family, on average (siblings share family words, so they are the confusable ones). */
const LEAVES_PER_FAMILY = 8;

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const between = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'st', 'tr', 'pl', 'gr', 'ch', 'sh'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou', 'y'];
const CODAS = ['', '', '', 'n', 'r', 'l', 's', 'x', 'm', 'k'];

/** A pronounceable pseudo-word of 2–3 syllables (tokenises like a real word, including its character n-grams). */
function pseudoWord(rand: Rand): string {
  let w = '';
  for (let s = between(rand, 2, 3); s > 0; s--) w += pick(rand, ONSETS) + pick(rand, VOWELS);
  return w + pick(rand, CODAS);
}

/** Shared, class-neutral words every catalog has: colours, materials, sizes, marketing. */
const SHARED_WORDS = [
  'new', 'pack', 'set', 'of', 'with', 'for', 'and', 'black', 'white', 'blue', 'red', 'green', 'grey', 'silver', 'gold',
  'pink', 'brown', 'large', 'small', 'medium', 'mini', 'pro', 'plus', 'max', 'premium', 'classic', 'original', 'series',
  'edition', 'deluxe', 'compact', 'portable', 'wireless', 'heavy', 'duty', 'soft', 'hard', 'cotton', 'steel', 'plastic',
  'leather', 'wood', 'glass', 'men', 'women', 'kids', 'unisex', 'home', 'office', 'outdoor', 'travel', 'replacement',
  'compatible', 'universal', 'adjustable', 'waterproof', 'durable', 'lightweight', 'slim', 'round', 'square', 'double',
  'single', 'multi', 'combo', 'kit', 'case', 'cover', 'holder', 'stand', 'box', 'bag', 'inch', 'cm', 'ml', 'gb', 'mm',
  'x', '2', '3', '4', '5', '6', '10', '12', '16', '20', '24', '32', '50', '64', '100', '128', '250', '500', '1000',
];

interface Family {
  words: string[];
  brands: string[];
  department: number;
  leaves: number[];
}

interface ClassSpec {
  name: string;
  words: string[];
  family: number;
}

interface Structure {
  classes: ClassSpec[];
  families: Family[];
  departments: string[][];
  brands: string[];
  /** Rows per class in the training catalog (sample 0). */
  counts: number[];
}

/** Classes grouped into families and departments, each with its own words; sizes Zipf over a shuffled rank order. */
function buildStructure(classCount: number, rows: number, seed: number): Structure {
  const rand = mulberry32(seed);
  const used = new Set<string>(SHARED_WORDS);
  const freshWord = (): string => {
    for (;;) {
      const w = pseudoWord(rand);
      if (!used.has(w)) {
        used.add(w);
        return w;
      }
    }
  };
  const familyCount = Math.max(1, Math.round(classCount / LEAVES_PER_FAMILY));
  const departmentCount = Math.max(1, Math.round(Math.sqrt(familyCount) / 2));
  const departments = Array.from({ length: departmentCount }, () => Array.from({ length: 30 }, freshWord));
  const brands = Array.from({ length: Math.max(50, Math.round(classCount / 5)) }, freshWord);
  const families: Family[] = Array.from({ length: familyCount }, () => ({
    words: Array.from({ length: 12 }, freshWord),
    brands: Array.from({ length: 5 }, () => pick(rand, brands)),
    department: Math.floor(rand() * departmentCount),
    leaves: [],
  }));
  // Family sizes vary (a few big families, many small): each class joins a family drawn with weight 1/(f+1)^0.5.
  const familyWeights = cumulative(families.map((_, f) => 1 / Math.sqrt(f + 1)));
  const classes: ClassSpec[] = [];
  const names = new Set<string>();
  for (let k = 0; k < classCount; k++) {
    const family = k < familyCount ? k : drawIndex(rand, familyWeights);
    const words = Array.from({ length: 5 }, freshWord);
    let name = `${words[0]} ${families[family]!.words[0]}`;
    for (let n = 2; names.has(name); n++) name = `${words[0]} ${families[family]!.words[0]} ${n}`;
    names.add(name);
    families[family]!.leaves.push(k);
    classes.push({ name, words, family });
  }
  // Zipf sizes over ranks; the rank of each class is random, so size does not follow family or name.
  if (rows < 2 * classCount) throw new Error(`syntheticCatalog: ${rows} rows cannot give ${classCount} classes 2 rows each`);
  const weights = classes.map((_, r) => 1 / Math.pow(r + 1, ZIPF_S));
  const total = weights.reduce((a, b) => a + b, 0);
  const extra = rows - 2 * classCount;
  const shares = weights.map((w) => (extra * w) / total);
  const bySize = shares.map((s) => 2 + Math.floor(s));
  // Largest remainders get the rows the floors left over.
  let left = rows - bySize.reduce((a, b) => a + b, 0);
  const order = shares.map((s, r) => [s - Math.floor(s), r] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let i = 0; left > 0; i++, left--) bySize[order[i]![1]]!++;
  const rank = shuffleInPlace(classes.map((_, k) => k), rand);
  const counts = new Array<number>(classCount);
  rank.forEach((k, r) => (counts[k] = bySize[r]!));
  return { classes, families, departments, brands, counts };
}

function cumulative(weights: number[]): Float64Array {
  const out = new Float64Array(weights.length);
  let acc = 0;
  weights.forEach((w, i) => (out[i] = acc += w));
  for (let i = 0; i < out.length; i++) out[i]! /= acc;
  return out;
}

function drawIndex(rand: Rand, cum: Float64Array): number {
  const u = rand();
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One product title (6–12 words, lower case) and, for about 1 row in 10, a description. */
function makeRow(s: Structure, k: number, rand: Rand): { title: string; description: string } {
  const cls = s.classes[k]!;
  const family = s.families[cls.family]!;
  const department = s.departments[family.department]!;
  const siblings = family.leaves;
  // Class words favour the first ones (the head noun); now and then a sibling's word, as real catalogs mix them.
  const classWord = (): string => {
    const source = siblings.length > 1 && rand() < 0.15 ? s.classes[pick(rand, siblings)]! : cls;
    return source.words[Math.min(source.words.length - 1, Math.floor(-Math.log(1 - rand()) * 1.2))]!;
  };
  const length = between(rand, 6, 12);
  const brand = rand() < 0.85 ? [rand() < 0.7 ? pick(rand, family.brands) : pick(rand, s.brands)] : [];
  const head = classWord();
  const middle: string[] = [];
  for (let n = between(rand, 0, 2); n > 0; n--) middle.push(classWord());
  for (let n = between(rand, 1, 2); n > 0; n--) middle.push(pick(rand, family.words));
  if (rand() < 0.5) middle.push(pick(rand, department));
  if (rand() < 0.3) middle.push(`${pick(rand, ['x', 'k', 'm', 'pro', 'sx'])}${between(rand, 10, 9999)}`);
  while (brand.length + middle.length + 1 < length) middle.push(pick(rand, SHARED_WORDS));
  shuffleInPlace(middle, rand);
  const title = (rand() < 0.6 ? [...brand, ...middle, head] : [...brand, head, ...middle]).slice(0, length).join(' ');
  let description = '';
  if (rand() < 0.1) {
    const words: string[] = [];
    for (let n = between(rand, 12, 30); n > 0; n--) {
      const u = rand();
      words.push(u < 0.25 ? classWord() : u < 0.45 ? pick(rand, family.words) : u < 0.55 ? pick(rand, department) : pick(rand, SHARED_WORDS));
    }
    description = words.join(' ');
  }
  return { title, description };
}

/**
 * The catalog's rows. Sample 0 has exactly `rows` rows with the Zipf class sizes (every class at least 2), in a
 * shuffled order; sample n > 0 has `sampleRows` (default `rows`) rows drawn independently in the same proportions.
 */
export function syntheticCatalog({ classes, rows, seed, sample = 0, sampleRows = rows }: SyntheticCatalogOptions): SyntheticRow[] {
  const s = buildStructure(classes, rows, seed);
  const rand = mulberry32((Math.imul(seed, 0x9e3779b1) ^ Math.imul(sample + 1, 0x85ebca6b)) >>> 0);
  let labels: number[];
  if (sample === 0) {
    labels = s.counts.flatMap((c, k) => new Array<number>(c).fill(k));
    shuffleInPlace(labels, rand);
  } else {
    const cum = cumulative(s.counts);
    labels = Array.from({ length: sampleRows }, () => drawIndex(rand, cum));
  }
  const width = String(labels.length).length;
  const pathOf = (k: number): string => {
    const family = s.families[s.classes[k]!.family]!;
    return [s.departments[family.department]![0]!, family.words[0]!, s.classes[k]!.name].join(' > ');
  };
  return labels.map((k, i) => ({ id: `syn${sample}-${String(i + 1).padStart(width, '0')}`, ...makeRow(s, k, rand), category: s.classes[k]!.name, category_path: pathOf(k) }));
}

/** The rows as CSV text, header first (the real catalogs' column names). */
export function syntheticCatalogCsv(rows: SyntheticRow[]): string {
  return stringify(rows, { header: true, columns: [...SYNTHETIC_COLUMNS] });
}

/** Writes the catalog to `file` (folders created); returns the rows written. */
export function writeSyntheticCatalog(file: string, opts: SyntheticCatalogOptions): number {
  const rows = syntheticCatalog(opts);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, syntheticCatalogCsv(rows));
  return rows.length;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      classes: { type: 'string', default: '5000' },
      rows: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      sample: { type: 'string', default: '0' },
      'sample-rows': { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help || !args.output) {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(0, 8).join('\n'));
    process.exit(args.help ? 0 : 2);
  }
  const opts = { classes: Number(args.classes), rows: Number(args.rows), seed: Number(args.seed), sample: Number(args.sample), sampleRows: args['sample-rows'] ? Number(args['sample-rows']) : undefined };
  const n = writeSyntheticCatalog(args.output, opts);
  console.error(`wrote ${n} rows, ${opts.classes} classes (seed ${opts.seed}, sample ${opts.sample}) to ${args.output}`);
}
