// JUnit XML: totals on both levels, failures and skips where viewers look for them, and user data (markup, quotes,
// control characters, emoji, lone surrogates) that can neither break the document nor be lost beyond what XML forbids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from 'xmlbuilder2';
import { renderJUnit, xmlSafe, type JUnitSuite } from '../../src/report/junit.js';

/**
 * xmlbuilder2's parser forgives a lot (unclosed tags, raw control characters), so the document is also checked
 * against XML 1.0's rules here: allowed characters only, known entities, quoted attributes, balanced tags.
 */
function assertWellFormed(xml: string): void {
  const bad = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.exec(xml);
  assert.equal(bad, null, `forbidden character U+${bad?.[0].codePointAt(0)?.toString(16)}`);
  for (const m of xml.matchAll(/&([^;\s]*);?/g)) {
    const ref = m[1];
    const ok = /^(amp|lt|gt|quot|apos)$/.test(ref) || /^#(\d+|x[0-9a-fA-F]+)$/.test(ref);
    assert.ok(ok && m[0].endsWith(';'), `bad entity ${m[0]}`);
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      assert.ok(cp === 9 || cp === 10 || cp === 13 || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000, `forbidden reference ${m[0]}`);
    }
  }
  const body = xml.replace(/^<\?xml[^?]*\?>/, '');
  const stack: string[] = [];
  for (const m of body.matchAll(/<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|</g)) {
    assert.ok(m[2] !== undefined, `stray '<' at ${m.index}`);
    if (m[1]) assert.equal(stack.pop(), m[2], `unbalanced </${m[2]}>`);
    else if (!m[4]) stack.push(m[2]);
  }
  assert.deepEqual(stack, [], 'unclosed elements');
}

/** The slice of the DOM that xmlbuilder2's parsed nodes offer and the tests read (the project has no DOM lib types). */
interface XmlElement {
  nodeName: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  getElementsByTagName(name: string): ArrayLike<XmlElement> & Iterable<XmlElement>;
}

const parseXml = (xml: string) => create(xml).root().node as unknown as XmlElement;

const hostile = 'T<0042> & "quoted" \'single\' ]]> \u0000\u0001\u0007\u000b\u001b[31m \uFFFE \uD800 emoji 🙂 中文 tab\tnl\ncr\r';

const suite = (cases: JUnitSuite['cases']): JUnitSuite => ({
  name: 'categorize check',
  time: 2.5,
  timestamp: '2026-01-02T03:04:05.000Z',
  properties: [
    ['model', '/models/shop & co'],
    ['input', hostile],
  ],
  cases,
});

test('xmlSafe drops exactly what XML 1.0 forbids', () => {
  assert.equal(xmlSafe('a\u0000b\u0008c\u000bd\u000ce\u001ff'), 'abcdef');
  assert.equal(xmlSafe('\t\n\r kept'), '\t\n\r kept');
  assert.equal(xmlSafe('x\uFFFE\uFFFFy'), 'xy');
  assert.equal(xmlSafe('lone \uD800 high, lone \uDC00 low'), 'lone  high, lone  low');
  assert.equal(xmlSafe('pair 🙂 kept, \u007f and \u0085 allowed'), 'pair 🙂 kept, \u007f and \u0085 allowed');
  assert.equal(xmlSafe('<&>"\''), '<&>"\'', 'markup characters are the serializer’s job, not removed');
});

test('counts on testsuites and testsuite; failure, skipped and passing cases', () => {
  const xml = renderJUnit([
    suite([
      { name: 'ok', classname: 'categorize.check', time: 0.0004, systemOut: 'all good' },
      { name: 'bad', classname: 'categorize.check', time: 0, failure: { message: 'too many', type: 'threshold', text: 'line 2: id A: x\nline 3: id B: y' } },
      { name: 'later', classname: 'categorize.check', time: 0, skipped: { message: 'no --label-column given' } },
    ]),
  ]);
  assertWellFormed(xml);
  assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>/);
  const root = parseXml(xml);
  assert.equal(root.nodeName, 'testsuites');
  for (const el of [root, root.getElementsByTagName('testsuite')[0]]) {
    assert.equal(el.getAttribute('tests'), '3');
    assert.equal(el.getAttribute('failures'), '1');
    assert.equal(el.getAttribute('skipped'), '1');
    assert.equal(el.getAttribute('errors'), '0');
    assert.equal(el.getAttribute('time'), '2.500');
  }
  const ts = root.getElementsByTagName('testsuite')[0];
  assert.equal(ts.getAttribute('name'), 'categorize check');
  assert.equal(ts.getAttribute('timestamp'), '2026-01-02T03:04:05.000Z');
  const cases = [...root.getElementsByTagName('testcase')];
  assert.deepEqual(cases.map((c) => c.getAttribute('name')), ['ok', 'bad', 'later']);
  assert.deepEqual(cases.map((c) => c.getAttribute('classname')), ['categorize.check', 'categorize.check', 'categorize.check']);
  assert.equal(cases[0].getAttribute('time'), '0.000');
  assert.equal(cases[0].getElementsByTagName('failure').length, 0);
  assert.equal(cases[0].getElementsByTagName('system-out')[0].textContent, 'all good');
  const failure = cases[1].getElementsByTagName('failure')[0];
  assert.equal(failure.getAttribute('message'), 'too many');
  assert.equal(failure.getAttribute('type'), 'threshold');
  assert.equal(failure.textContent, 'line 2: id A: x\nline 3: id B: y');
  assert.equal(cases[2].getElementsByTagName('skipped')[0].getAttribute('message'), 'no --label-column given');
  const props = [...root.getElementsByTagName('property')].map((p) => [p.getAttribute('name'), p.getAttribute('value')]);
  assert.deepEqual(props[0], ['model', '/models/shop & co']);
});

test('hostile user data: well-formed, escaped by the serializer, round-trips minus forbidden characters', () => {
  const xml = renderJUnit([
    suite([
      { name: hostile, classname: 'categorize.check', time: 0, failure: { message: hostile, type: 'threshold', text: `line 9: id ${hostile}: detail` } },
      { name: 'skip', classname: 'c', time: 0, skipped: { message: hostile } },
    ]),
  ]);
  assertWellFormed(xml);
  assert.ok(xml.includes('🙂') && xml.includes('中文'), 'non-ASCII text kept as UTF-8');
  const root = parseXml(xml);
  const tc = root.getElementsByTagName('testcase')[0];
  const expected = xmlSafe(hostile);
  assert.equal(tc.getAttribute('name')!.replace(/\s/g, ' '), expected.replace(/\s/g, ' '));
  const failure = tc.getElementsByTagName('failure')[0];
  assert.equal(failure.getAttribute('message')!.replace(/\s/g, ' '), expected.replace(/\s/g, ' '));
  // Text content keeps its line breaks (a parser may turn CR into LF).
  assert.equal(failure.textContent!.replace(/\r\n?/g, '\n'), `line 9: id ${expected}: detail`.replace(/\r\n?/g, '\n'));
  assert.equal(root.getElementsByTagName('skipped')[0].getAttribute('message')!.replace(/\s/g, ' '), expected.replace(/\s/g, ' '));
  assert.equal(root.getElementsByTagName('property')[1].getAttribute('value')!.replace(/\s/g, ' '), expected.replace(/\s/g, ' '));
});

test('several suites add up; times never negative or NaN', () => {
  const a = { ...suite([{ name: 'x', classname: 'c', time: Number.NaN }]), time: 1 };
  const b = { ...suite([{ name: 'y', classname: 'c', time: -1, failure: { message: 'm', type: 't', text: '' } }]), time: 0.25 };
  const xml = renderJUnit([a, b]);
  assertWellFormed(xml);
  const root = parseXml(xml);
  assert.equal(root.getAttribute('tests'), '2');
  assert.equal(root.getAttribute('failures'), '1');
  assert.equal(root.getAttribute('time'), '1.250');
  assert.deepEqual([...root.getElementsByTagName('testcase')].map((c) => c.getAttribute('time')), ['0.000', '0.000']);
});
