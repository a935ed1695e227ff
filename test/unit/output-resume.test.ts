import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readExistingOutput } from '../../src/io/output-resume.js';
import { csvHeader } from '../../src/io/prediction-writer.js';
import { UsageError } from '../../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-resume-'));
const file = (name: string, content: string) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
};
const header = csvHeader([]);

test('JSONL: complete lines count; a torn or unparsable last line is cut off', async () => {
  const a = '{"id":"1","category":"A"}\n{"id":"2","category":"B"}\n';
  let r = await readExistingOutput(file('ok.jsonl', a), 'jsonl', header);
  assert.deepEqual(r, { ids: ['1', '2'], completeBytes: Buffer.byteLength(a), tornBytes: 0, review: [] });
  r = await readExistingOutput(file('torn.jsonl', a + '{"id":"3","categ'), 'jsonl', header);
  assert.deepEqual(r, { ids: ['1', '2'], completeBytes: Buffer.byteLength(a), tornBytes: 16, review: [] });
  // A line that ends but does not parse (a torn write followed by a newline) ends the complete part too.
  r = await readExistingOutput(file('garbled.jsonl', a + '{"id":"3",\n{"id":"4"}\n'), 'jsonl', header);
  assert.deepEqual(r.ids, ['1', '2']);
  assert.equal(r.completeBytes, Buffer.byteLength(a));
  r = await readExistingOutput(file('utf8.jsonl', '{"id":"é✓"}\n{"id":"'), 'jsonl', header);
  assert.deepEqual(r, { ids: ['é✓'], completeBytes: Buffer.byteLength('{"id":"é✓"}\n'), tornBytes: 7, review: [] });
  assert.deepEqual(await readExistingOutput(path.join(tmp, 'absent.jsonl'), 'jsonl', header), { ids: [], completeBytes: 0, tornBytes: 0, review: [] });
});

test('CSV: header checked; quoted newlines kept; an unclosed quote or a missing newline at the end is cut', async () => {
  const head = header.join(',') + '\n';
  const rec1 = '1,A,0.9,"[]","[""a""]",ok,,"[]"\n';
  const rec2 = '2,B,0.8,"[]","[]",error,"line one\nline two","[]"\n';
  let r = await readExistingOutput(file('ok.csv', head + rec1 + rec2), 'csv', header);
  assert.deepEqual(r, { ids: ['1', '2'], completeBytes: Buffer.byteLength(head + rec1 + rec2), tornBytes: 0, review: [] });
  r = await readExistingOutput(file('quote.csv', head + rec1 + '2,B,0.8,"[]","[""a'), 'csv', header);
  assert.deepEqual(r.ids, ['1']);
  assert.equal(r.completeBytes, Buffer.byteLength(head + rec1));
  r = await readExistingOutput(file('nonl.csv', head + rec1 + '2,B,0.8,"[]","[]",ok,,"[]"'), 'csv', header);
  assert.deepEqual(r.ids, ['1']);
  r = await readExistingOutput(file('header-only.csv', head), 'csv', header);
  assert.deepEqual(r, { ids: [], completeBytes: Buffer.byteLength(head), tornBytes: 0, review: [] });
  await assert.rejects(readExistingOutput(file('other.csv', 'id,category,brand\n1,A,x\n'), 'csv', header), (e: unknown) => e instanceof UsageError && /header .* is not the one this run writes/.test(e.message));
});
