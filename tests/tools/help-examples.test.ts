/**
 * Every command's --help has examples, and every file an example names
 * exists (compare's help once cited a workload that did not).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const cli = join(process.cwd(), 'dist/tools/cli.js');

// Every command `pvmmu --help` lists (so a new command cannot come without examples).
const top = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' }).stdout;
const commands = [...top.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z0-9-]*) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');

test('the command list is read from --help', () => {
  for (const c of ['boot', 'compare', 'vectors', 'inject', 'report', 'demo']) assert.ok(commands.includes(c), c);
});

for (const cmd of commands) {
  test(`${cmd} --help has examples naming files that exist`, () => {
    const r = spawnSync(process.execPath, [cli, cmd, '--help'], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /Examples:\n/);
    const examples = r.stdout.split('Examples:\n')[1]!.split('\n').filter((l) => l.trim().startsWith('pvmmu '));
    assert.ok(examples.length >= 1, 'at least one example');
    for (const l of examples) {
      for (const w of l.split(/\s+/)) {
        if (/^(tools|tests|docs)\//.test(w) && !w.includes('*')) assert.ok(existsSync(w), `${cmd} --help names ${w}, which does not exist`);
      }
    }
  });
}

test('plain `pvmmu` is a usage error: usage on stderr, exit 2', () => {
  const r = spawnSync(process.execPath, [cli], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /Usage: pvmmu/);
});

test('one error style: commander usage errors start with "pvmmu: " like ours', () => {
  const r = spawnSync(process.execPath, [cli, 'boot', 'x.pvw', '--cpu', 'p9'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, /^pvmmu: option '--cpu <preset>' argument 'p9' is invalid/);
  assert.not.match(r.stderr, /^error:/m);
});

test.run();
