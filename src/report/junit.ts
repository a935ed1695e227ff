// JUnit XML for CI test-report viewers (GitHub, GitLab, Jenkins): test suites of test cases that pass, fail or skip.
// Values are user data (titles, ids, categories), so every string is cleaned of what XML 1.0 cannot carry.
import { lazyModule } from '../runtime/lazy-module.js';

const xmlbuilder = lazyModule<typeof import('xmlbuilder2')>('xmlbuilder2');

export interface JUnitCase {
  name: string;
  classname: string;
  /** Seconds. */
  time: number;
  failure?: { message: string; type: string; text: string };
  skipped?: { message: string };
  /** Extra output shown beside the case (e.g. findings of a passing check). */
  systemOut?: string;
}

export interface JUnitSuite {
  name: string;
  /** Seconds. */
  time: number;
  /** ISO 8601, when the suite started. */
  timestamp?: string;
  properties?: [name: string, value: string][];
  cases: JUnitCase[];
}

/**
 * Removes code points XML 1.0 forbids (C0 controls but tab/LF/CR, U+FFFE/U+FFFF, lone surrogates): a parser rejects
 * the whole file for one of them, even written as a character reference, so escaping cannot save them.
 */
export function xmlSafe(s: string): string {
  return s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '');
}

const seconds = (t: number) => (Number.isFinite(t) && t > 0 ? t : 0).toFixed(3);

function counts(cases: JUnitCase[]) {
  return {
    tests: cases.length,
    failures: cases.filter((c) => c.failure).length,
    skipped: cases.filter((c) => !c.failure && c.skipped).length,
  };
}

/** The document: `<testsuites>` holding each suite, totals on both levels (viewers read one or the other). */
export function renderJUnit(suites: JUnitSuite[]): string {
  const all = suites.flatMap((s) => s.cases);
  const total = counts(all);
  const doc = xmlbuilder().create({ version: '1.0', encoding: 'UTF-8' });
  const root = doc.ele('testsuites', {
    tests: String(total.tests),
    failures: String(total.failures),
    errors: '0',
    skipped: String(total.skipped),
    time: seconds(suites.reduce((a, s) => a + s.time, 0)),
  });
  for (const suite of suites) {
    const c = counts(suite.cases);
    const el = root.ele('testsuite', {
      name: xmlSafe(suite.name),
      tests: String(c.tests),
      failures: String(c.failures),
      errors: '0',
      skipped: String(c.skipped),
      time: seconds(suite.time),
      ...(suite.timestamp ? { timestamp: suite.timestamp } : {}),
    });
    if (suite.properties && suite.properties.length > 0) {
      const props = el.ele('properties');
      for (const [name, value] of suite.properties) props.ele('property', { name: xmlSafe(name), value: xmlSafe(value) });
    }
    for (const tc of suite.cases) {
      const caseEl = el.ele('testcase', { classname: xmlSafe(tc.classname), name: xmlSafe(tc.name), time: seconds(tc.time) });
      if (tc.failure) {
        caseEl.ele('failure', { message: xmlSafe(tc.failure.message), type: xmlSafe(tc.failure.type) }).txt(xmlSafe(tc.failure.text));
      } else if (tc.skipped) {
        caseEl.ele('skipped', { message: xmlSafe(tc.skipped.message) });
      }
      if (tc.systemOut) caseEl.ele('system-out').txt(xmlSafe(tc.systemOut));
    }
  }
  return doc.end({ prettyPrint: true }) + '\n';
}
