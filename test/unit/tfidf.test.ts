// TF-IDF against scikit-learn's TfidfVectorizer goldens (scripts/reference/sklearn_reference.py), plus tag
// ordering, tfidf.json round trip and load validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { goldenDir } from '../helpers/paths.js';
import { ConfigError, UsageError } from '../../src/errors.js';
import {
  analyze,
  defaultTfidfConfig,
  fitTfidf,
  numpyArgsort,
  tfidfFromJSON,
  tfidfToJSON,
  tfidfBlockRow,
  topTags,
  topTagsOfRow,
  transform,
  type TfidfConfig,
} from '../../src/head/tfidf.js';
import { ENGLISH_STOP_WORDS } from '../../src/head/stop-words-en.js';

interface GoldenRow {
  indices: number[];
  values: number[];
}
interface GoldenCase {
  name: string;
  params: Record<string, unknown>;
  min_df_kind: 'count' | 'proportion';
  max_df_kind: 'count' | 'proportion';
  terms: string[];
  idf: number[];
  train: GoldenRow[];
  unseen: GoldenRow[];
  top3_train: string[][];
  top3_unseen: string[][];
}
interface Golden {
  texts: string[];
  unseen: string[];
  cases: GoldenCase[];
  argsort_cases: { values: number[]; argsort: number[] }[];
}

const golden = JSON.parse(fs.readFileSync(path.join(goldenDir, 'sklearn-tfidf.json'), 'utf8')) as Golden;

/** sklearn keyword arguments → our config, with min_df/max_df kinds taken from the golden's Python types. */
function configFor(c: GoldenCase): Partial<TfidfConfig> {
  const p = c.params;
  const cfg: Partial<TfidfConfig> = {};
  if ('analyzer' in p) cfg.analyzer = p.analyzer as TfidfConfig['analyzer'];
  if ('ngram_range' in p) cfg.ngramRange = p.ngram_range as [number, number];
  if ('stop_words' in p) cfg.stopWords = p.stop_words as 'english';
  if ('min_df' in p) cfg.minDf = c.min_df_kind === 'count' ? { count: p.min_df as number } : { proportion: p.min_df as number };
  if ('max_df' in p) cfg.maxDf = c.max_df_kind === 'count' ? { count: p.max_df as number } : { proportion: p.max_df as number };
  if ('max_features' in p) cfg.maxFeatures = p.max_features as number;
  if ('sublinear_tf' in p) cfg.sublinearTf = p.sublinear_tf as boolean;
  if ('smooth_idf' in p) cfg.smoothIdf = p.smooth_idf as boolean;
  if ('norm' in p) cfg.norm = p.norm as 'l2' | null;
  if ('lowercase' in p) cfg.lowercase = p.lowercase as boolean;
  return cfg;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('golden covers the four required configurations', () => {
  const names = golden.cases.map((c) => c.name);
  for (const n of ['defaults', 'bigrams_stop_mindf2', 'max_features_20', 'max_df_0.5']) assert.ok(names.includes(n), n);
});

for (const c of golden.cases) {
  test(`matches sklearn TfidfVectorizer: ${c.name}`, () => {
    const model = fitTfidf(golden.texts, configFor(c));
    assert.deepEqual(model.terms, c.terms, 'vocabulary (code-point sorted)');
    for (const [t, i] of model.vocabulary) assert.equal(model.terms[i], t);
    assert.ok(maxAbsDiff(model.idf, c.idf) <= 1e-12, 'idf');
    let worst = 0;
    const check = (texts: string[], rows: GoldenRow[], tags: string[][]): void => {
      texts.forEach((text, i) => {
        const row = transform(model, text);
        assert.deepEqual(Array.from(row.indices), rows[i]!.indices, `indices of ${JSON.stringify(text)}`);
        worst = Math.max(worst, maxAbsDiff(row.values, rows[i]!.values));
        assert.deepEqual(topTags(model, text, 3), tags[i], `top3 of ${JSON.stringify(text)}`);
      });
    };
    check(golden.texts, c.train, c.top3_train);
    check(golden.unseen, c.unseen, c.top3_unseen);
    assert.ok(worst <= 1e-6, `max |Δ tf-idf| = ${worst}`);
  });
}

test('numpyArgsort reproduces numpy argsort order on tie-heavy arrays', () => {
  for (const a of golden.argsort_cases) {
    assert.deepEqual(Array.from(numpyArgsort(Float64Array.from(a.values))), a.argsort, `n=${a.values.length}`);
  }
});

test('stop word list is sklearn ENGLISH_STOP_WORDS', () => {
  assert.equal(ENGLISH_STOP_WORDS.size, 318);
  for (const w of ['a', 'the', 'amoungst', 'bill', 'yourselves', 'co', 'ie']) assert.ok(ENGLISH_STOP_WORDS.has(w), w);
  assert.ok(!ENGLISH_STOP_WORDS.has('tea'));
});

test('analyzer: Unicode word runs of length >= 2, stop words before n-grams', () => {
  assert.deepEqual(analyze('T-shirt usb_c 2x ½ a b cd'), ['shirt', 'usb_c', '2x', 'cd']);
  assert.deepEqual(analyze('Café crème ΚΑΦΕΣ'), ['café', 'crème', 'καφες']);
  // Python's lower() maps İ to i + U+0307, which is not a word character, so the word splits.
  assert.deepEqual(analyze('İstanbul'), ['stanbul']);
  assert.deepEqual(analyze('the red and blue cup', { stopWords: 'english', ngramRange: [1, 2] }), ['red', 'blue', 'cup', 'red blue', 'blue cup']);
  assert.deepEqual(analyze('aa bb cc', { ngramRange: [2, 3] }), ['aa bb', 'bb cc', 'aa bb cc']);
  assert.deepEqual(analyze('aa', { ngramRange: [2, 2] }), []);
  assert.deepEqual(analyze('AA Bb', { lowercase: false }), ['AA', 'Bb']);
});

test('vocabulary sorts by code point, not UTF-16 unit', () => {
  // U+FF41 (full-width a) < U+1D401 (math bold B) in Python; JS's default sort says the opposite.
  const m = fitTfidf(['ａｂ 𝐁𝐁', 'zz']);
  assert.deepEqual(m.terms, ['zz', 'ａｂ', '𝐁𝐁']);
});

test('topTags: weight descending, ties by term ascending, never more than present', () => {
  const m = fitTfidf(['red blue green', 'red red yellow', 'blue green', 'green']);
  // yellow (df 1) outweighs blue (df 2).
  assert.deepEqual(topTags(m, 'yellow blue', 5), ['yellow', 'blue']);
  // Equal tf and idf: alphabetical.
  assert.deepEqual(topTags(m, 'red blue', 2), ['blue', 'red']);
  assert.deepEqual(topTags(m, 'red blue', 1), ['blue']);
  assert.deepEqual(topTags(m, 'red red blue', 1), ['red']);
  assert.deepEqual(topTags(m, 'nothing known here', 3), []);
  assert.deepEqual(topTags(m, '', 3), []);
  assert.deepEqual(topTags(m, 'red blue', 0), []);
  assert.throws(() => topTags(m, 'red', -1), RangeError);
  assert.throws(() => topTags(m, 'red', 1.5), RangeError);
});

test('transform returns sorted indices and unit l2 rows', () => {
  const m = fitTfidf(golden.texts);
  const row = transform(m, 'tea coffee green tea zzz');
  for (let i = 1; i < row.indices.length; i++) assert.ok(row.indices[i]! > row.indices[i - 1]!);
  const norm = Math.hypot(...row.values);
  assert.ok(Math.abs(norm - 1) < 1e-12);
  const empty = transform(m, '...');
  assert.equal(empty.indices.length, 0);
  assert.equal(empty.values.length, 0);
});

test('transform: remembered char_wb words and the reused counts give the same rows in any order', () => {
  const docs = ['Red red cotton shirt', 'cotton socks, red', 'Shirt SHIRT shirt', 'zzz qqq'];
  const fresh = (): ReturnType<typeof fitTfidf> => fitTfidf(golden.texts.concat(docs), { analyzer: 'char_wb', ngramRange: [2, 5] });
  const first = docs.map((d) => transform(fresh(), d)); // each on a model that has seen nothing yet
  const m = fresh();
  for (const order of [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 2, 1]]) {
    for (const i of order) {
      const row = transform(m, docs[i]!);
      assert.deepEqual(Array.from(row.indices), Array.from(first[i]!.indices), docs[i]);
      assert.deepEqual(Array.from(row.values), Array.from(first[i]!.values), docs[i]);
    }
  }
});

test('topTagsOfRow reads the word part of a block row as topTags reads the text', () => {
  const word = fitTfidf(golden.texts);
  const block = { word, char: fitTfidf(golden.texts, { analyzer: 'char_wb', ngramRange: [2, 4] }) };
  for (const text of golden.texts.concat(golden.unseen)) {
    for (const k of [0, 1, 3, 50]) assert.deepEqual(topTagsOfRow(word, tfidfBlockRow(block, text), k), topTags(word, text, k), text);
  }
});

test('config: min_df count vs proportion, validation and sklearn errors', () => {
  const docs = ['aa bb', 'aa cc', 'aa dd'];
  assert.deepEqual(fitTfidf(docs, { minDf: { count: 1 } }).terms, ['aa', 'bb', 'cc', 'dd']);
  // proportion 1.0 = every document, unlike count 1.
  assert.deepEqual(fitTfidf(docs, { minDf: { proportion: 1 } }).terms, ['aa']);
  assert.deepEqual(fitTfidf(docs, { maxDf: { count: 1 } }).terms, ['bb', 'cc', 'dd']);
  assert.throws(() => fitTfidf(docs, { tokenPattern: '\\w+' }), (e: unknown) => e instanceof UsageError && /tokenPattern/.test(e.message));
  assert.deepEqual(fitTfidf(docs, { tokenPattern: '\\b\\w\\w+\\b' }).terms, ['aa', 'bb', 'cc', 'dd']);
  assert.throws(() => fitTfidf(docs, { minDf: { count: 0 } }), /minDf.count/);
  assert.throws(() => fitTfidf(docs, { maxDf: { proportion: 1.5 } }), /maxDf.proportion/);
  assert.throws(() => fitTfidf(docs, { minDf: 2 as unknown as TfidfConfig['minDf'] }), /minDf must be/);
  assert.throws(() => fitTfidf(docs, { ngramRange: [2, 1] }), /ngramRange/);
  assert.throws(() => fitTfidf(docs, { maxFeatures: 0 }), /maxFeatures/);
  assert.throws(() => fitTfidf(docs, { minDf: { count: 3 }, maxDf: { count: 2 } }), /max_df corresponds to < documents than min_df/);
  assert.throws(() => fitTfidf(['a b', 'the'], { stopWords: 'english' }), /empty vocabulary/);
  assert.throws(() => fitTfidf([]), /empty vocabulary/);
  assert.throws(() => fitTfidf('aa bb' as unknown as string[]), /got a single string/);
  assert.throws(() => fitTfidf(docs, { minDf: { count: 2 }, maxDf: { count: 2 } }), /no terms remain/);
  assert.equal(defaultTfidfConfig.tokenPattern, '(?u)\\b\\w\\w+\\b');
});

test('tfidf.json round trip keeps vocabulary, idf bits and config', () => {
  const c = golden.cases.find((x) => x.name === 'bigrams_stop_mindf2')!;
  const model = fitTfidf(golden.texts, configFor(c));
  const json = JSON.parse(JSON.stringify(tfidfToJSON(model))) as unknown;
  const back = tfidfFromJSON(json);
  assert.deepEqual(back.terms, model.terms);
  assert.deepEqual(Array.from(back.idf), Array.from(model.idf));
  assert.deepEqual(back.config, model.config);
  assert.deepEqual([...back.vocabulary], [...model.vocabulary]);
  for (const t of golden.texts) {
    const a = transform(model, t);
    const b = transform(back, t);
    assert.deepEqual(Array.from(b.indices), Array.from(a.indices));
    assert.deepEqual(Array.from(b.values), Array.from(a.values));
  }
  const j = tfidfToJSON(model);
  assert.equal(j.format, 'categorize-tfidf');
  assert.equal(j.version, 1);
  assert.deepEqual(j.config.minDf, { count: 2 });
  assert.deepEqual(j.config.maxDf, { proportion: 1 });
});

test('tfidf.json load errors are precise ConfigErrors', () => {
  const good = tfidfToJSON(fitTfidf(['aa bb', 'bb cc']));
  const mutate = (f: (j: Record<string, any>) => void): unknown => {
    const j = JSON.parse(JSON.stringify(good)) as Record<string, any>;
    f(j);
    return j;
  };
  const cases: [unknown, RegExp][] = [
    [null, /expected a JSON object/],
    [[], /expected a JSON object/],
    [mutate((j) => (j.format = 'other')), /"format" must be "categorize-tfidf"/],
    [mutate((j) => (j.version = 2)), /unsupported "version" 2/],
    [mutate((j) => delete j.config), /"config" must be an object/],
    [mutate((j) => delete j.config.norm), /"config.norm" is missing/],
    [mutate((j) => (j.config.extra = 1)), /unknown config key "extra"/],
    [mutate((j) => (j.config.minDf = 1)), /config: minDf must be/],
    [mutate((j) => (j.config.minDf = { count: 1.5 })), /minDf.count must be an integer/],
    [mutate((j) => (j.config.maxDf = { count: 1, proportion: 1 })), /maxDf must have exactly one key/],
    [mutate((j) => (j.config.tokenPattern = '\\S+')), /tokenPattern "\\\\S\+" is not supported/],
    [mutate((j) => (j.config.norm = 'l1')), /norm must be "l2" or null/],
    [mutate((j) => (j.config.lowercase = 'yes')), /lowercase must be true or false/],
    [mutate((j) => (j.terms = 'aa')), /"terms" must be an array/],
    [mutate((j) => (j.terms = [])), /"terms" is empty/],
    [mutate((j) => j.idf.pop()), /"idf" has 2 values but "terms" has 3/],
    [mutate((j) => (j.idf[1] = null)), /"idf"\[1\] must be a finite number > 0, got null/],
    [mutate((j) => (j.idf[2] = -1)), /"idf"\[2\] must be a finite number > 0/],
    [mutate((j) => (j.terms[1] = 7)), /"terms"\[1\] must be a non-empty string, got 7/],
    [mutate((j) => (j.terms[2] = 'aa')), /"terms"\[2\] "aa" is a duplicate of "terms"\[0\]/],
    [mutate((j) => (j.terms = ['bb', 'aa', 'cc'])), /"terms" must be sorted by code point; "terms"\[0\] is "bb"/],
  ];
  for (const [json, re] of cases) {
    assert.throws(() => tfidfFromJSON(json, 'bundle/tfidf.json'), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `ConfigError for ${re}`);
      assert.match(e.message, /^bundle\/tfidf\.json: /);
      assert.match(e.message, re);
      return true;
    });
  }
});

test('fit on 20,000 documents with 5,000 distinct terms stays fast', () => {
  let s = 12345;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  const words: string[] = [];
  for (let i = 0; i < 5000; i++) words.push('w' + i.toString(36) + (i % 7 === 0 ? 'é' : ''));
  const docs: string[] = [];
  for (let d = 0; d < 20000; d++) {
    const t: string[] = [];
    for (let j = 0; j < 15; j++) t.push(words[Math.floor(5000 * rnd() ** 2)]!);
    docs.push(t.join(' ') + ', 42 the Sale!');
  }
  const t0 = performance.now();
  const m = fitTfidf(docs);
  const ms = performance.now() - t0;
  assert.ok(m.terms.length > 4900);
  // Typically ~100 ms; the bound only catches accidental quadratic behaviour on slow CI machines.
  assert.ok(ms < 3000, `fit took ${ms.toFixed(0)} ms`);
});
