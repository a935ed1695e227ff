// Class labels as scikit-learn's LabelEncoder sees them: sorted unique strings, in Python's code-point order,
// so class index k here is class k in any sklearn-trained head.
import { UsageError } from '../errors.js';

/**
 * Orders strings by Unicode code point, as Python compares `str`. JS `<` compares UTF-16 code units, which
 * puts U+E000..U+FFFF after astral characters (surrogates are U+D800..U+DFFF); that is the only disagreement,
 * so only the first differing unit needs fixing up.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Lift surrogates above U+E000..U+FFFF, drop those below: same trick as ICU's code point order compare.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** True when every string's code units already sort in code-point order (no unit at or above U+D800). */
export function allBelowSurrogates(strings: readonly string[]): boolean {
  for (const s of strings) {
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0xd800) return false;
  }
  return true;
}

/** Sorts in place by code point; uses the plain comparison when the two orders cannot differ. */
export function sortByCodePoint(strings: string[]): string[] {
  if (allBelowSurrogates(strings)) return strings.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return strings.sort(compareCodePoints);
}

/** LabelEncoder.fit: the sorted unique labels. Index k of the result is class k. */
export function fitLabelEncoder(labels: Iterable<string>): string[] {
  return sortByCodePoint([...new Set(labels)]);
}

/** LabelEncoder.transform: label → class index. Throws on a label missing from `classes`. */
export function encodeLabels(classes: readonly string[], labels: readonly string[]): Int32Array {
  const index = new Map<string, number>();
  classes.forEach((c, i) => index.set(c, i));
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const k = index.get(labels[i]!);
    if (k === undefined) {
      throw new UsageError(`label ${JSON.stringify(labels[i])} (row ${i}) is not one of the ${classes.length} known classes`, 'unknown_label');
    }
    out[i] = k;
  }
  return out;
}
