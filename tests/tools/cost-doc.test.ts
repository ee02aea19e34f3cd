/**
 * docs/cost-model.md cannot go stale: its generated sections (every preset
 * figure with its source and what charges it, the Xen figures, the kernel's
 * path table, the worked fork, the lmbench comparison) are exactly what
 * tools/cost-doc.ts produces from the code; and every preset figure has a
 * "charged by" entry.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { PRESETS } from '../../emulator/cost-model.js';
import { CHARGED_BY, COST_DOC, regenerate } from '../../tools/cost-doc.js';

test('every preset figure says what charges it', () => {
  for (const k of Object.keys(PRESETS['core2']!.cycles)) assert.ok((CHARGED_BY as Record<string, string>)[k], k);
});

test('docs/cost-model.md holds what the code generates (run node dist/tools/cost-doc.js after a cost change)', () => {
  const doc = readFileSync(COST_DOC, 'utf8');
  const now = regenerate(doc);
  if (now !== doc) {
    const a = doc.split('\n');
    const b = now.split('\n');
    const i = a.findIndex((l, j) => l !== b[j]);
    assert.unreachable(`stale at line ${i + 1}: doc '${a[i]}' vs generated '${b[i]}'`);
  }
});

test.run();
