// README.md against the code and itself: every option a command takes is documented where users read about it, and
// the links between the README, docs/measurements.md and the repository's files lead somewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/pipeline-options.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Every command under `c`, with its full name (`models pull`). */
function* commandsOf(c: Command, prefix: string[] = []): Generator<[string, Command]> {
  for (const sub of c.commands) {
    const name = [...prefix, sub.name()];
    yield [name.join(' '), sub];
    yield* commandsOf(sub, name);
  }
}

/** Whether README mentions `flag` as a flag (not as part of a longer one: `--C` is not `--Cache`). */
function mentioned(flag: string): boolean {
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\w-])${escaped}(?![\\w-])`, 'm').test(readme);
}

test('README names every option of every command (by its long form, or its short one: -o, -m, -q)', () => {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() } as unknown as Io;
  const program = buildProgram(io, {}, () => {});
  const missing: string[] = [];
  let checked = 0;
  for (const [name, command] of commandsOf(program)) {
    for (const option of command.options) {
      if (!option.long || option.long === '--help' || option.long === '--version') continue;
      checked++;
      if (!mentioned(option.long) && !(option.short && mentioned(option.short))) missing.push(`${name} ${option.long}`);
    }
  }
  assert.ok(checked > 100, `only ${checked} options found: the walk over the commands is broken`);
  assert.deepEqual(missing, [], 'options --help lists and README.md does not mention');
});

/** Markdown lines outside fenced code blocks, numbered from 1. */
function proseLines(text: string): [number, string][] {
  let fenced = false;
  const out: [number, string][] = [];
  text.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced) out.push([i + 1, line]);
  });
  return out;
}

/** The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces as '-', repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, line] of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!.toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
    seen.set(slug, n + 1);
  }
  return anchors;
}

test('the links of README.md and docs/measurements.md lead to files that exist and to headings they have', () => {
  const broken: string[] = [];
  let checked = 0;
  // Each linked document's headings, read once however many links point into it.
  const anchors = new Map<string, Set<string>>();
  const anchorsIn = (file: string) => anchors.get(file) ?? anchors.set(file, anchorsOf(fs.readFileSync(file, 'utf8'))).get(file)!;
  for (const doc of ['README.md', 'docs/measurements.md']) {
    const text = fs.readFileSync(path.join(root, doc), 'utf8');
    for (const [n, line] of proseLines(text)) {
      // Code spans are not links: `[a](b)` inside backticks is an example.
      for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        checked++;
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const resolved = file === '' ? path.join(root, doc) : path.join(root, path.dirname(doc), file);
        if (!fs.existsSync(resolved)) broken.push(`${doc}:${n} ${target}: no such file`);
        else if (anchor && resolved.endsWith('.md') && !anchorsIn(resolved).has(anchor)) broken.push(`${doc}:${n} ${target}: no such heading`);
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} links found: the scan is broken`);
  assert.deepEqual(broken, []);
});
