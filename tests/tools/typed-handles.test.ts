/**
 * Tools reach a backend only through its typed handle (the brief's rule): no
 * `instanceof` of a backend class and no cast to reach its machine.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('tools/ use no instanceof of a backend class and no cast into a backend', () => {
  const bad: string[] = [];
  for (const f of sources('tools')) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((l, i) => {
        if (/instanceof\s+(XenBackend|NativeBackend)\b/.test(l) || /as unknown as \{[^}]*\b(mmu|domain)\b/.test(l)) bad.push(`${f}:${i + 1}: ${l.trim()}`);
      });
  }
  assert.equal(bad, []);
});

test.run();
