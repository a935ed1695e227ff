// GitHub workflow commands: the runner's escaping rules (data: % CR LF; properties also : and ,), applied in the
// right order so an escape is never escaped twice, and one command per line whatever the message holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeData, escapeProperty, formatAnnotation } from '../../src/report/github-annotations.js';

test('escapeData: % first, then CR and LF; nothing else touched', () => {
  assert.equal(escapeData('100% sure'), '100%25 sure');
  assert.equal(escapeData('a\r\nb\nc\rd'), 'a%0D%0Ab%0Ac%0Dd');
  // A literal "%0A" in the data must survive as text, not turn into a newline when GitHub decodes it.
  assert.equal(escapeData('%0A'), '%250A');
  assert.equal(escapeData('a:b,c ::x:: <&> 🙂'), 'a:b,c ::x:: <&> 🙂');
});

test('escapeProperty: also : and ,', () => {
  assert.equal(escapeProperty('data/cat,a:log.csv'), 'data/cat%2Ca%3Alog.csv');
  assert.equal(escapeProperty('50%\n'), '50%25%0A');
  assert.equal(escapeProperty('C:\\shop\\catalog.csv'), 'C%3A\\shop\\catalog.csv');
});

test('formatAnnotation: properties in order, message escaped, one line', () => {
  assert.equal(
    formatAnnotation({ level: 'warning', file: 'data/catalog.csv', line: 12, title: 'disagreement', message: "id T0042: stored 'Shoes', predicted 'Bags' (0.93)" }),
    "::warning file=data/catalog.csv,line=12,title=disagreement::id T0042: stored 'Shoes', predicted 'Bags' (0.93)",
  );
  assert.equal(formatAnnotation({ level: 'error', title: 'categorize check', message: 'disagreement failed: 5.00% > 2.00%' }), '::error title=categorize check::disagreement failed: 5.00%25 > 2.00%25');
  assert.equal(formatAnnotation({ level: 'notice', message: 'plain' }), '::notice::plain');
  const hostile = formatAnnotation({ level: 'warning', file: 'a,b:c.csv', line: 3, title: 'x,y:z', message: 'evil\n::error::injected\r\n100%' });
  assert.equal(hostile, '::warning file=a%2Cb%3Ac.csv,line=3,title=x%2Cy%3Az::evil%0A::error::injected%0D%0A100%25');
  assert.equal(hostile.split(/\r|\n/).length, 1, 'a message cannot start a second command');
});
