/**
 * Outputs named by a path in /dev (or /proc) are written in place, never
 * through a temporary file renamed over them. Guards the bug a new user found:
 * `boot W --trace /dev/stdout` with stdout redirected to a file wrote the trace
 * to /dev/.stdout.PID.partial and renamed it over the /dev/stdout link (as
 * root), so the trace never reached stdout and /dev/stdout became a file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.cwd();
const cli = join(root, 'dist/tools/cli.js');

test('--trace /dev/stdout with stdout redirected to a file: the trace is in that file, /dev/stdout is left alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pvmmu-dev-'));
  const w = join(dir, 'w.pvw');
  writeFileSync(w, 'machine mem=16M\nprocess a\nmmap a 0x08048000 8K rw\ntouch a 0x08048000 8K write\n');
  const outPath = join(dir, 'stdout.txt');
  const fd = openSync(outPath, 'w');
  const wasLink = lstatSync('/dev/stdout').isSymbolicLink();
  const r = spawnSync(process.execPath, [cli, 'boot', w, '--trace', '/dev/stdout'], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
  closeSync(fd);
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(outPath, 'utf8').includes('"traceEvents"'), 'the trace reached stdout');
  assert.is(lstatSync('/dev/stdout').isSymbolicLink(), wasLink, '/dev/stdout was not replaced');
});

test.run();
