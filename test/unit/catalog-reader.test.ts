import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { openCatalog, detectDelimiter, type ColumnOptions, type CatalogRow } from '../../src/io/catalog-reader.js';
import { UsageError } from '../../src/errors.js';

const columns: ColumnOptions = {
  id: 'id',
  title: 'title',
  description: 'description',
  image: ['image', 'image_path'],
  require: { text: true, image: false },
  extra: [],
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'categorize-csv-'));
function file(name: string, content: string | Buffer): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}
async function all(rows: AsyncIterable<CatalogRow>): Promise<CatalogRow[]> {
  const out: CatalogRow[] = [];
  for await (const r of rows) out.push(r);
  return out;
}

test('detectDelimiter counts outside quotes only', () => {
  assert.equal(detectDelimiter('id,title,description'), ',');
  assert.equal(detectDelimiter('id\ttitle\tdescription'), '\t');
  assert.equal(detectDelimiter('id;title;"a,b,c"'), ';');
  assert.equal(detectDelimiter('single'), ',');
});

test('BOM, CRLF and quoted fields with embedded newlines and commas', async () => {
  const p = file('crlf.csv', Buffer.from('\uFEFFid,title,description,image\r\n1,"Red, big shoe","line one\r\nline two",a.jpg\r\n2,Watch,,\r\n'));
  const cat = await openCatalog(p, { columns });
  assert.deepEqual(cat.header, ['id', 'title', 'description', 'image']);
  const rows = await all(cat.rows);
  assert.equal(rows.length, 2);
  assert.equal(rows[0].title, 'Red, big shoe');
  assert.equal(rows[0].description, 'line one\r\nline two');
  assert.equal(rows[0].image, 'a.jpg');
  assert.equal(rows[1].image, '');
  assert.equal(cat.baseDir, tmp);
});

test('TSV by extension and by detection; image_path accepted', async () => {
  const body = 'id\ttitle\tdescription\timage_path\nx1\tLamp\tA lamp, with a shade\tl.png\n';
  for (const name of ['cat.tsv', 'cat-tab.csv']) {
    const cat = await openCatalog(file(name, body), { columns });
    assert.equal(cat.delimiter, '\t');
    const [row] = await all(cat.rows);
    assert.deepEqual([row.id, row.title, row.description, row.image], ['x1', 'Lamp', 'A lamp, with a shade', 'l.png']);
  }
});

test('ids fall back to the 1-based row number when the id column is absent', async () => {
  const cat = await openCatalog(file('noid.csv', 'title,description\na,b\nc,d\n'), { columns });
  const rows = await all(cat.rows);
  assert.deepEqual(rows.map((r) => r.id), ['1', '2']);
  assert.deepEqual(rows.map((r) => r.index), [0, 1]);
});

test('ragged rows are marked, not dropped, and do not disturb their neighbours', async () => {
  const cat = await openCatalog(file('ragged.csv', 'id,title,description,image\n1,a,b,c\n2,only-two\n3,a,b,c,extra\n4,x,y,z\n'), { columns });
  const rows = await all(cat.rows);
  assert.equal(rows.length, 4);
  assert.equal(rows[0].error, undefined);
  assert.match(rows[1].error!, /^ragged_row: 2 fields where the header has 4/);
  assert.match(rows[2].error!, /^ragged_row: 5 fields/);
  assert.equal(rows[3].title, 'x');
});

test('a missing required column is a usage error naming it and listing the columns found', async () => {
  const p = file('cols.csv', 'sku,name\n1,a\n');
  await assert.rejects(openCatalog(p, { columns }), (err: unknown) => {
    assert.ok(err instanceof UsageError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /text column 'title' or 'description' not found \(columns found: 'sku', 'name'\)/);
    return true;
  });
  await assert.rejects(
    openCatalog(file('noimg.csv', 'id,title\n1,a\n'), { columns: { ...columns, require: { text: true, image: true } } }),
    /image column 'image' or 'image_path' not found \(columns found: 'id', 'title'\); set it with --image-column, or add an empty image column to predict every row from its text alone$/,
  );
  await assert.rejects(
    openCatalog(file('noimg2.csv', 'id,title\n1,a\n'), { columns: { ...columns, require: { text: true, image: true }, imageColumnHint: 'train on the text alone (--features tfidf)' } }),
    /set it with --image-column, or train on the text alone \(--features tfidf\)$/,
  );
  await assert.rejects(openCatalog(file('keep.csv', 'id,title\n1,a\n'), { columns: { ...columns, extra: ['brand'] } }), /'brand' not found/);
  // With the flag that named it, the error names the flag.
  await assert.rejects(
    openCatalog(file('keep2.csv', 'id,title\n1,a\n'), { columns: { ...columns, extra: ['brand'], extraFlags: { brand: '--keep-columns' } } }),
    /^UsageError: --keep-columns brand: the catalog has no such column \(columns found: 'id', 'title'\)$/,
  );
});

test('column names match case-insensitively; extra columns are carried', async () => {
  const cat = await openCatalog(file('case.csv', 'ID,Title,Brand\n7,Kettle,Acme\n'), { columns: { ...columns, extra: ['brand'] } });
  const [row] = await all(cat.rows);
  assert.equal(row.id, '7');
  assert.deepEqual(row.extra, { brand: 'Acme' });
});

test('reads stdin with "-" in small chunks', async () => {
  const text = 'id;title;description\n1;Shoe;Red\n2;Watch;"multi\nline"\n';
  const stdin = Readable.from(text.match(/.{1,5}/gs)!.map((s) => Buffer.from(s)));
  const cat = await openCatalog('-', { columns, stdin });
  assert.equal(cat.delimiter, ';');
  const rows = await all(cat.rows);
  assert.deepEqual(rows.map((r) => r.description), ['Red', 'multi\nline']);
});

test('missing file, empty file, and unparseable file are usage errors', async () => {
  await assert.rejects(openCatalog(path.join(tmp, 'nope.csv'), { columns }), /input file not found/);
  await assert.rejects(openCatalog(file('empty.csv', ''), { columns }), /is empty/);
  const cat = await openCatalog(file('bad.csv', 'id,title\n1,"never closed\n'), { columns });
  await assert.rejects(all(cat.rows), /cannot parse/);
});

test('streams a large file without reading it whole', async () => {
  const n = 50_000;
  const p = path.join(tmp, 'big.csv');
  const fd = fs.openSync(p, 'w');
  fs.writeSync(fd, 'id,title,description\n');
  for (let i = 0; i < n; i++) fs.writeSync(fd, `${i},title ${i},"desc, ${i}"\n`);
  fs.closeSync(fd);
  const cat = await openCatalog(p, { columns });
  let count = 0;
  for await (const r of cat.rows) {
    if (count === 10) assert.ok(cat.bytesRead() < fs.statSync(p).size, 'read ahead of the consumer');
    assert.equal(r.index, count++);
  }
  assert.equal(count, n);
  assert.equal(cat.bytesRead(), fs.statSync(p).size);
});

test('each row knows the line it starts on, past quoted newlines, blank lines and CRLF', async () => {
  const lf = file('lines.csv', 'id,title\n1,a\n\n2,"multi\nline"\n3,c\n');
  const crlf = file('lines-crlf.csv', 'id,title\r\n1,a\r\n\r\n2,"multi\r\nline"\r\n3,c\r\n');
  for (const f of [lf, crlf]) {
    const cat = await openCatalog(f, { columns });
    assert.deepEqual((await all(cat.rows)).map((r) => [r.id, r.line]), [['1', 2], ['2', 4], ['3', 6]]);
  }
});
