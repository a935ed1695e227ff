// scikit-learn TfidfVectorizer (word analyzer) reimplemented exactly: tokenisation, stop words, n-grams,
// min_df/max_df/max_features pruning, idf, sublinear tf, l2 rows; plus top-k tags and the bundle's tfidf.json.
import { ConfigError, UsageError } from '../errors.js';
import { sortByCodePoint } from './labels.js';
import { ENGLISH_STOP_WORDS } from './stop-words-en.js';

/**
 * A document-frequency bound. sklearn tells counts from proportions by Python type (min_df=1 is one
 * document, min_df=1.0 is every document), which JSON and JS numbers cannot carry, so the kind is explicit:
 * `{ count: 2 }` ≡ sklearn `2`, `{ proportion: 0.5 }` ≡ sklearn `0.5`.
 */
export type DfBound = { count: number } | { proportion: number };

export interface TfidfConfig {
  /**
   * sklearn's analyzer: 'word' (tokens and word n-grams), 'char' (character n-grams over the whole text) or
   * 'char_wb' (character n-grams inside space-padded words). The char analyzers ignore tokenPattern and stopWords.
   */
  analyzer: 'word' | 'char' | 'char_wb';
  lowercase: boolean;
  /** Only sklearn's default `(?u)\b\w\w+\b` (or the same without `(?u)`) is supported. */
  tokenPattern: string;
  ngramRange: [number, number];
  stopWords: 'english' | null;
  /** Default `{ count: 1 }` (sklearn min_df=1). */
  minDf: DfBound;
  /** Default `{ proportion: 1 }` (sklearn max_df=1.0). */
  maxDf: DfBound;
  maxFeatures: number | null;
  smoothIdf: boolean;
  sublinearTf: boolean;
  norm: 'l2' | null;
}

export const DEFAULT_TOKEN_PATTERN = '(?u)\\b\\w\\w+\\b';

export const defaultTfidfConfig: Readonly<TfidfConfig> = Object.freeze({
  analyzer: 'word' as const,
  lowercase: true,
  tokenPattern: DEFAULT_TOKEN_PATTERN,
  ngramRange: [1, 1] as [number, number],
  stopWords: null,
  minDf: { count: 1 },
  maxDf: { proportion: 1 },
  maxFeatures: null,
  smoothIdf: true,
  sublinearTf: false,
  norm: 'l2' as const,
});

export interface TfidfModel {
  config: TfidfConfig;
  /** term → column index; columns are the terms in code-point order. */
  vocabulary: Map<string, number>;
  terms: string[];
  idf: Float64Array;
}

/** One transformed document: column indices ascending, with their tf-idf weights. */
export interface SparseRow {
  indices: Int32Array;
  values: Float64Array;
}

// Python's str \w is exactly [\p{L}\p{N}_] (checked over every code point of Unicode 14); `(?u)\b\w\w+\b`
// therefore finds the maximal runs of two or more of them.
const TOKEN_RE = /[\p{L}\p{N}_]{2,}/gu;
const SUPPORTED_PATTERNS = new Set([DEFAULT_TOKEN_PATTERN, '\\b\\w\\w+\\b']);

const CONFIG_KEYS = Object.keys(defaultTfidfConfig) as (keyof TfidfConfig)[];

type ErrorFactory = (message: string) => Error;

function checkDfBound(v: unknown, name: string, fail: ErrorFactory): DfBound {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw fail(`${name} must be {"count": <integer >= 1>} or {"proportion": <number in [0, 1]>}, got ${JSON.stringify(v)}`);
  }
  const keys = Object.keys(v);
  const o = v as Record<string, unknown>;
  if (keys.length === 1 && keys[0] === 'count') {
    const c = o.count;
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 1) throw fail(`${name}.count must be an integer >= 1, got ${JSON.stringify(c)}`);
    return { count: c };
  }
  if (keys.length === 1 && keys[0] === 'proportion') {
    const p = o.proportion;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw fail(`${name}.proportion must be a number in [0, 1], got ${JSON.stringify(p)}`);
    return { proportion: p };
  }
  throw fail(`${name} must have exactly one key, "count" or "proportion", got ${JSON.stringify(v)}`);
}

/** Validates a complete config; `fail` decides the error class (usage for flags, config for bundles). */
function checkConfig(c: Record<string, unknown>, fail: ErrorFactory): TfidfConfig {
  for (const k of Object.keys(c)) {
    if (!(CONFIG_KEYS as string[]).includes(k)) throw fail(`unknown config key "${k}" (known: ${CONFIG_KEYS.join(', ')})`);
  }
  const bool = (k: keyof TfidfConfig): boolean => {
    if (typeof c[k] !== 'boolean') throw fail(`${k} must be true or false, got ${JSON.stringify(c[k])}`);
    return c[k] as boolean;
  };
  const analyzer = c.analyzer ?? 'word';
  if (analyzer !== 'word' && analyzer !== 'char' && analyzer !== 'char_wb') throw fail(`analyzer must be "word", "char" or "char_wb", got ${JSON.stringify(analyzer)}`);
  if (typeof c.tokenPattern !== 'string' || !SUPPORTED_PATTERNS.has(c.tokenPattern)) {
    throw fail(`tokenPattern ${JSON.stringify(c.tokenPattern)} is not supported; only scikit-learn's default ${JSON.stringify(DEFAULT_TOKEN_PATTERN)} is`);
  }
  const ng = c.ngramRange;
  if (!Array.isArray(ng) || ng.length !== 2 || !ng.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 1) || ng[0] > ng[1]) {
    throw fail(`ngramRange must be [min, max] integers with 1 <= min <= max, got ${JSON.stringify(ng)}`);
  }
  if (c.stopWords !== 'english' && c.stopWords !== null) throw fail(`stopWords must be "english" or null, got ${JSON.stringify(c.stopWords)}`);
  const mf = c.maxFeatures;
  if (mf !== null && (typeof mf !== 'number' || !Number.isInteger(mf) || mf < 1)) {
    throw fail(`maxFeatures must be null or an integer >= 1, got ${JSON.stringify(mf)}`);
  }
  if (c.norm !== 'l2' && c.norm !== null) throw fail(`norm must be "l2" or null, got ${JSON.stringify(c.norm)}`);
  return {
    analyzer,
    lowercase: bool('lowercase'),
    tokenPattern: c.tokenPattern,
    ngramRange: [ng[0] as number, ng[1] as number],
    stopWords: c.stopWords,
    minDf: checkDfBound(c.minDf, 'minDf', fail),
    maxDf: checkDfBound(c.maxDf, 'maxDf', fail),
    maxFeatures: mf as number | null,
    smoothIdf: bool('smoothIdf'),
    sublinearTf: bool('sublinearTf'),
    norm: c.norm,
  };
}

/** Defaults filled in and every field checked; throws UsageError naming the bad field. */
export function resolveTfidfConfig(config: Partial<TfidfConfig> = {}): TfidfConfig {
  const merged: Record<string, unknown> = { ...defaultTfidfConfig };
  for (const [k, v] of Object.entries(config)) if (v !== undefined) merged[k] = v;
  return checkConfig(merged, (m) => new UsageError(`tfidf: ${m}`, 'tfidf_config'));
}

/**
 * sklearn's word analyzer: lowercase, tokens, stop words dropped, then n-grams joined by one space in
 * sklearn's order (all unigrams, then all bigrams, ...). Calls `emit` per feature to avoid building arrays.
 */
function analyzeInto(config: TfidfConfig, text: string, emit: (feature: string) => void): void {
  const doc = config.lowercase ? text.toLowerCase() : text;
  if (config.analyzer === 'char_wb') return charWbNgrams(doc, config.ngramRange, emit);
  if (config.analyzer === 'char') return charNgrams(doc, config.ngramRange, emit);
  const found = doc.match(TOKEN_RE);
  if (found === null) return;
  const tokens: string[] = config.stopWords === 'english' ? found.filter((t) => !ENGLISH_STOP_WORDS.has(t)) : found;
  const [minN, maxN] = config.ngramRange;
  const nTok = tokens.length;
  if (minN === 1) for (let i = 0; i < nTok; i++) emit(tokens[i]!);
  for (let n = Math.max(minN, 2); n <= Math.min(maxN, nTok); n++) {
    for (let i = 0; i + n <= nTok; i++) {
      let s = tokens[i]!;
      for (let j = 1; j < n; j++) s += ' ' + tokens[i + j]!;
      emit(s);
    }
  }
}

// Python's str.isspace() set, which is what `\s` and str.split() use on str (JS's \s differs at U+FEFF and U+001C-1F).
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITE_SPACES_RE = new RegExp(`[${PY_SPACE}]{2,}`, 'g');
const WORDS_RE = new RegExp(`[^${PY_SPACE}]+`, 'g');

/** Slicing by code point, as Python indexes str; plain string slices when there are no surrogate pairs. */
function codePoints(s: string): { length: number; slice(a: number, b: number): string } {
  if (!/[\uD800-\uDFFF]/.test(s)) return s;
  const cps = Array.from(s);
  return { length: cps.length, slice: (a, b) => cps.slice(a, b).join('') };
}

/** sklearn's `_char_ngrams`: runs of 2+ white space become one space; n-grams by code point. */
function charNgrams(doc: string, [minN, maxN]: [number, number], emit: (feature: string) => void): void {
  const cps = codePoints(doc.replace(WHITE_SPACES_RE, ' '));
  const len = cps.length;
  let lo = minN;
  if (minN === 1) {
    for (let i = 0; i < len; i++) emit(cps.slice(i, i + 1));
    lo = 2;
  }
  for (let n = lo; n <= Math.min(maxN, len); n++) for (let i = 0; i + n <= len; i++) emit(cps.slice(i, i + n));
}

/** sklearn's `_char_wb_ngrams`: each white-space-separated word padded with one space each side. */
function charWbNgrams(doc: string, range: [number, number], emit: (feature: string) => void): void {
  for (const word of charWbWords(doc)) charWbWordNgrams(word, range, emit);
}

/** The words `_char_wb_ngrams` takes n-grams of, in order. */
function charWbWords(doc: string): string[] {
  return doc.replace(WHITE_SPACES_RE, ' ').match(WORDS_RE) ?? [];
}

/** One word's char_wb n-grams: the word padded with a space each side, n-grams by code point. */
function charWbWordNgrams(word: string, [minN, maxN]: [number, number], emit: (feature: string) => void): void {
  const w = codePoints(` ${word} `);
  const wLen = w.length;
  for (let n = minN; n <= maxN; n++) {
    let offset = 0;
    emit(w.slice(0, n));
    while (offset + n < wLen) {
      offset++;
      emit(w.slice(offset, offset + n));
    }
    if (offset === 0) break; // a word shorter than n is counted once
  }
}

/** The features (tokens and n-grams) sklearn's analyzer yields for `text`, in its order. */
export function analyze(text: string, config: Partial<TfidfConfig> = {}): string[] {
  const out: string[] = [];
  analyzeInto(resolveTfidfConfig(config), text, (f) => out.push(f));
  return out;
}

/**
 * numpy's default `argsort` (introsort: median-of-3 quicksort, insertion sort below 16, heapsort past
 * 2·log2(n) depth), as in numpy < 1.26 without SIMD sorting. Not stable; reproduced because sklearn's
 * max_features cut `(-tfs).argsort()[:limit]` decides ties with it.
 */
export function numpyArgsort(v: Float64Array): Int32Array {
  const num = v.length;
  const tosort = new Int32Array(num);
  for (let i = 0; i < num; i++) tosort[i] = i;
  if (num < 2) return tosort;
  const less = (a: number, b: number): boolean => a < b || (b !== b && a === a);
  const swap = (i: number, j: number): void => {
    const t = tosort[i]!;
    tosort[i] = tosort[j]!;
    tosort[j] = t;
  };
  const stack: number[] = [];
  const depthStack: number[] = [];
  let pl = 0;
  let pr = num - 1;
  let cdepth = 2 * (31 - Math.clz32(num));
  for (;;) {
    if (cdepth < 0) {
      heapArgsort(v, tosort, pl, pr - pl + 1, less);
    } else {
      while (pr - pl > 15) {
        const pm = pl + ((pr - pl) >> 1);
        if (less(v[tosort[pm]!]!, v[tosort[pl]!]!)) swap(pm, pl);
        if (less(v[tosort[pr]!]!, v[tosort[pm]!]!)) swap(pr, pm);
        if (less(v[tosort[pm]!]!, v[tosort[pl]!]!)) swap(pm, pl);
        const vp = v[tosort[pm]!]!;
        let pi = pl;
        let pj = pr - 1;
        swap(pm, pj);
        for (;;) {
          do ++pi; while (less(v[tosort[pi]!]!, vp));
          do --pj; while (less(vp, v[tosort[pj]!]!));
          if (pi >= pj) break;
          swap(pi, pj);
        }
        swap(pi, pr - 1);
        // Larger partition onto the stack, loop on the smaller one.
        if (pi - pl < pr - pi) {
          stack.push(pi + 1, pr);
          pr = pi - 1;
        } else {
          stack.push(pl, pi - 1);
          pl = pi + 1;
        }
        depthStack.push(--cdepth);
      }
      for (let pi = pl + 1; pi <= pr; ++pi) {
        const vi = tosort[pi]!;
        const vp = v[vi]!;
        let pj = pi;
        while (pj > pl && less(vp, v[tosort[pj - 1]!]!)) {
          tosort[pj] = tosort[pj - 1]!;
          pj--;
        }
        tosort[pj] = vi;
      }
    }
    if (stack.length === 0) break;
    pr = stack.pop()!;
    pl = stack.pop()!;
    cdepth = depthStack.pop()!;
  }
  return tosort;
}

/** numpy's aheapsort_ on tosort[start .. start+n) (1-based heap indexing, as there). */
function heapArgsort(v: Float64Array, tosort: Int32Array, start: number, n: number, less: (a: number, b: number) => boolean): void {
  const a = (i: number): number => tosort[start + i - 1]!;
  const set = (i: number, val: number): void => {
    tosort[start + i - 1] = val;
  };
  // Sift `tmp` down from slot i of the 1-based heap a(1..size).
  const siftDown = (i: number, size: number, tmp: number): void => {
    for (let j = i << 1; j <= size; ) {
      if (j < size && less(v[a(j)]!, v[a(j + 1)]!)) j += 1;
      if (less(v[tmp]!, v[a(j)]!)) {
        set(i, a(j));
        i = j;
        j += j;
      } else break;
    }
    set(i, tmp);
  };
  for (let l = n >> 1; l > 0; --l) siftDown(l, n, a(l));
  for (; n > 1; ) {
    const tmp = a(n);
    set(n, a(1));
    n -= 1;
    siftDown(1, n, tmp);
  }
}

/**
 * Learns vocabulary and idf like `TfidfVectorizer(...).fit(texts)`. One streaming pass keeps, per term seen,
 * its document frequency and total count (typed arrays indexed by first-seen id); documents are not stored.
 */
export function fitTfidf(texts: Iterable<string>, config: Partial<TfidfConfig> = {}): TfidfModel {
  // A string is iterable too (by character); sklearn rejects it the same way.
  if (typeof texts === 'string') throw new UsageError('tfidf: expected an iterable of documents, got a single string', 'tfidf_input');
  const cfg = resolveTfidfConfig(config);
  const ids = new Map<string, number>();
  let cap = 1024;
  let df = new Int32Array(cap);
  let tf = new Float64Array(cap);
  let lastDoc = new Int32Array(cap).fill(-1);
  let nDoc = 0;
  let doc = 0;
  const emit = (feature: string): void => {
    let id = ids.get(feature);
    if (id === undefined) {
      id = ids.size;
      ids.set(feature, id);
      if (id === cap) {
        cap *= 2;
        const df2 = new Int32Array(cap);
        df2.set(df);
        df = df2;
        const tf2 = new Float64Array(cap);
        tf2.set(tf);
        tf = tf2;
        const ld2 = new Int32Array(cap).fill(-1);
        ld2.set(lastDoc);
        lastDoc = ld2;
      }
    }
    tf[id]++;
    if (lastDoc[id] !== doc) {
      lastDoc[id] = doc;
      df[id]++;
    }
  };
  for (const text of texts) {
    if (typeof text !== 'string') throw new UsageError(`tfidf: document ${nDoc} is not a string`, 'tfidf_input');
    doc = nDoc;
    analyzeInto(cfg, text, emit);
    nDoc++;
  }
  const nTerms = ids.size;
  if (nTerms === 0) {
    throw new UsageError('tfidf: empty vocabulary; perhaps the documents only contain stop words', 'tfidf_empty_vocabulary');
  }

  const high = 'count' in cfg.maxDf ? cfg.maxDf.count : cfg.maxDf.proportion * nDoc;
  const low = 'count' in cfg.minDf ? cfg.minDf.count : cfg.minDf.proportion * nDoc;
  if (high < low) throw new UsageError('tfidf: max_df corresponds to < documents than min_df', 'tfidf_config');

  // Column order is code-point order of the terms; sklearn sorts before the max_features cut, which matters
  // for how numpy's sort breaks ties.
  const sorted = sortByCodePoint([...ids.keys()]);
  const order = new Int32Array(nTerms);
  for (let r = 0; r < nTerms; r++) order[r] = ids.get(sorted[r]!)!;
  const keep = new Uint8Array(nTerms); // by rank in `sorted`
  let kept = 0;
  for (let r = 0; r < nTerms; r++) {
    const f = df[order[r]!]!;
    if (f <= high && f >= low) {
      keep[r] = 1;
      kept++;
    }
  }
  if (cfg.maxFeatures !== null && kept > cfg.maxFeatures) {
    const ranks = new Int32Array(kept);
    const negTf = new Float64Array(kept);
    for (let r = 0, t = 0; r < nTerms; r++) {
      if (keep[r]) {
        ranks[t] = r;
        negTf[t++] = -tf[order[r]!]!;
      }
    }
    const top = numpyArgsort(negTf).subarray(0, cfg.maxFeatures);
    keep.fill(0);
    for (let t = 0; t < top.length; t++) keep[ranks[top[t]!]!] = 1;
    kept = cfg.maxFeatures;
  }
  if (kept === 0) {
    throw new UsageError('tfidf: after pruning, no terms remain; try a lower min_df or a higher max_df', 'tfidf_empty_vocabulary');
  }

  const terms: string[] = new Array<string>(kept);
  const idf = new Float64Array(kept);
  const vocabulary = new Map<string, number>();
  const nS = nDoc + (cfg.smoothIdf ? 1 : 0);
  for (let r = 0, c = 0; r < nTerms; r++) {
    if (!keep[r]) continue;
    const term = sorted[r]!;
    terms[c] = term;
    vocabulary.set(term, c);
    idf[c] = Math.log(nS / (df[order[r]!]! + (cfg.smoothIdf ? 1 : 0))) + 1;
    c++;
  }
  return { config: cfg, vocabulary, terms, idf };
}

/**
 * What transform keeps per model between calls: a count per column with the columns touched (reset after each
 * document, so a row costs its features, not the vocabulary), and for char_wb each word's in-vocabulary n-gram
 * columns. A char_wb row is the concatenation of its words' n-grams and catalog text repeats its words, so a word
 * seen before costs one lookup instead of one per n-gram (flipkart-products' descriptions: ~4× less time a row).
 */
interface TransformState {
  counts: Float64Array;
  touched: Int32Array;
  words: Map<string, Int32Array> | null;
}
const transformStates = new WeakMap<TfidfModel, TransformState>();
/** Words whose columns are kept per model; past it the memo starts over (bounded memory on any stream). */
const WORD_MEMO_MAX = 100_000;

function transformState(model: TfidfModel): TransformState {
  let st = transformStates.get(model);
  if (!st) {
    const n = model.terms.length;
    st = { counts: new Float64Array(n), touched: new Int32Array(n), words: model.config.analyzer === 'char_wb' ? new Map() : null };
    transformStates.set(model, st);
  }
  return st;
}

/** Tf-idf row of one document (sklearn's `transform`); out-of-vocabulary features are ignored. */
export function transform(model: TfidfModel, text: string): SparseRow {
  const { vocabulary, idf, config } = model;
  const { counts, touched, words } = transformState(model);
  let distinct = 0;
  const add = (c: number): void => {
    if (counts[c]++ === 0) touched[distinct++] = c;
  };
  if (words) {
    for (const word of charWbWords(config.lowercase ? text.toLowerCase() : text)) {
      let cols = words.get(word);
      if (cols === undefined) {
        const found: number[] = [];
        charWbWordNgrams(word, config.ngramRange, (f) => {
          const c = vocabulary.get(f);
          if (c !== undefined) found.push(c);
        });
        cols = Int32Array.from(found);
        if (words.size >= WORD_MEMO_MAX) words.clear();
        words.set(word, cols);
      }
      for (let t = 0; t < cols.length; t++) add(cols[t]!);
    }
  } else {
    analyzeInto(config, text, (f) => {
      const c = vocabulary.get(f);
      if (c !== undefined) add(c);
    });
  }
  const indices = touched.slice(0, distinct).sort();
  const values = new Float64Array(distinct);
  let sq = 0;
  for (let t = 0; t < distinct; t++) {
    const c = indices[t]!;
    const raw = counts[c]!;
    counts[c] = 0;
    const w = (config.sublinearTf ? Math.log(raw) + 1 : raw) * idf[c]!;
    values[t] = w;
    sq += w * w;
  }
  if (config.norm === 'l2' && sq > 0) {
    const norm = Math.sqrt(sq);
    for (let t = 0; t < values.length; t++) values[t] /= norm;
  }
  return { indices, values };
}

/**
 * The k highest-weighted terms of `text`, weight descending; equal weights go by term in code-point order
 * (column order). Terms of weight 0 are never returned, so fewer than k may come back.
 */
export function topTags(model: TfidfModel, text: string, k: number): string[] {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topTags: k must be an integer >= 0, got ${k}`);
  if (k === 0) return [];
  return topTagsOfRow(model, transform(model, text), k);
}

/**
 * topTags of a row `transform(model, text)` already gave, or a block row whose first part it is (tfidfBlockRow puts
 * the word part first; columns past the model's vocabulary are not looked at).
 */
export function topTagsOfRow(model: TfidfModel, row: SparseRow, k: number): string[] {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topTags: k must be an integer >= 0, got ${k}`);
  const dim = model.terms.length;
  let n = 0;
  while (n < row.indices.length && row.indices[n]! < dim) n++;
  const { indices, values } = row;
  const pos: number[] = [];
  for (let t = 0; t < n; t++) if (values[t]! > 0) pos.push(t);
  pos.sort((a, b) => values[b]! - values[a]! || indices[a]! - indices[b]!);
  const out: string[] = [];
  for (let t = 0; t < pos.length && t < k; t++) out.push(model.terms[indices[pos[t]!]!]!);
  return out;
}

/** The bundle's tfidf.json document. */
export interface TfidfJSON {
  format: 'categorize-tfidf';
  version: 1;
  config: TfidfConfig;
  terms: string[];
  idf: number[];
}

export function tfidfToJSON(model: TfidfModel): TfidfJSON {
  const c = model.config;
  return {
    format: 'categorize-tfidf',
    version: 1,
    config: {
      analyzer: c.analyzer,
      lowercase: c.lowercase,
      tokenPattern: c.tokenPattern,
      ngramRange: [c.ngramRange[0], c.ngramRange[1]],
      stopWords: c.stopWords,
      minDf: { ...c.minDf },
      maxDf: { ...c.maxDf },
      maxFeatures: c.maxFeatures,
      smoothIdf: c.smoothIdf,
      sublinearTf: c.sublinearTf,
      norm: c.norm,
    },
    terms: [...model.terms],
    idf: Array.from(model.idf),
  };
}

/**
 * Parses and checks a tfidf.json value (already JSON.parse'd). Every problem is a ConfigError naming the
 * field and, for arrays, the first bad index. Unknown top-level keys are ignored; unknown config keys are not.
 */
export function tfidfFromJSON(json: unknown, source = 'tfidf.json'): TfidfModel {
  const fail = (m: string): ConfigError => new ConfigError(`${source}: ${m}`, 'tfidf_invalid');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fail('expected a JSON object');
  const o = json as Record<string, unknown>;
  if (o.format !== 'categorize-tfidf') throw fail(`"format" must be "categorize-tfidf", got ${JSON.stringify(o.format)}`);
  if (o.version !== 1) throw fail(`unsupported "version" ${JSON.stringify(o.version)} (this build reads version 1)`);
  if (typeof o.config !== 'object' || o.config === null || Array.isArray(o.config)) throw fail('"config" must be an object');
  const cfgIn = o.config as Record<string, unknown>;
  // analyzer came later: a file without it is a word analyzer.
  for (const k of CONFIG_KEYS) if (k !== 'analyzer' && !(k in cfgIn)) throw fail(`"config.${k}" is missing`);
  const config = checkConfig(cfgIn, (m) => fail(`config: ${m}`));

  const { terms, idf } = o;
  if (!Array.isArray(terms)) throw fail('"terms" must be an array of strings');
  if (!Array.isArray(idf)) throw fail('"idf" must be an array of numbers');
  if (terms.length === 0) throw fail('"terms" is empty');
  if (idf.length !== terms.length) throw fail(`"idf" has ${idf.length} values but "terms" has ${terms.length}`);
  const vocabulary = new Map<string, number>();
  const idfArr = new Float64Array(idf.length);
  for (let i = 0; i < terms.length; i++) {
    const t: unknown = terms[i];
    if (typeof t !== 'string' || t.length === 0) throw fail(`"terms"[${i}] must be a non-empty string, got ${JSON.stringify(t)}`);
    if (vocabulary.has(t)) throw fail(`"terms"[${i}] ${JSON.stringify(t)} is a duplicate of "terms"[${vocabulary.get(t)}]`);
    vocabulary.set(t, i);
    const v: unknown = idf[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw fail(`"idf"[${i}] must be a finite number > 0, got ${JSON.stringify(v)}`);
    idfArr[i] = v;
  }
  // Column order is part of the format (sparse indices and tie-breaks depend on it).
  const sorted = sortByCodePoint(terms.slice() as string[]);
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i] !== terms[i]) throw fail(`"terms" must be sorted by code point; "terms"[${i}] is ${JSON.stringify(terms[i])}, expected ${JSON.stringify(sorted[i])}`);
  }
  return { config, vocabulary, terms: terms as string[], idf: idfArr };
}

/**
 * The classifier's tfidf block: the word TF-IDF (which also gives the tags), optionally followed by a character
 * n-gram TF-IDF, as scikit-learn's FeatureUnion of the two would: each part L2-normalised on its own, then
 * concatenated (word columns first).
 */
export interface TfidfBlockModel {
  word: TfidfModel;
  char: TfidfModel | null;
}

export function tfidfBlockDim(m: TfidfBlockModel): number {
  return m.word.terms.length + (m.char?.terms.length ?? 0);
}

export function tfidfBlockRow(m: TfidfBlockModel, text: string): SparseRow {
  const w = transform(m.word, text);
  if (!m.char) return w;
  const c = transform(m.char, text);
  const off = m.word.terms.length;
  const indices = new Int32Array(w.indices.length + c.indices.length);
  indices.set(w.indices);
  for (let k = 0; k < c.indices.length; k++) indices[w.indices.length + k] = c.indices[k]! + off;
  const values = new Float64Array(indices.length);
  values.set(w.values);
  values.set(c.values, w.values.length);
  return { indices, values };
}
