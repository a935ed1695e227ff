// README.md and the CLI name the same flags: every option a command takes is documented where users read about it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/pipeline-options.js';

const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

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
