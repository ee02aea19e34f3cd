/**
 * The sessions quoted in README.md and docs/ are what pvmmu prints today
 * (tools/doc-figures.ts; `npm run docs:update` regenerates them).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkDocFigures } from '../../tools/doc-figures.js';

test('every quoted `$ pvmmu …` session matches the current output', () => {
  const diffs = checkDocFigures(false);
  const text = diffs.map((d) => `${d.file}:${d.line}: \`${d.command}\`\n  expected:\n    ${d.expected.join('\n    ')}\n  got:\n    ${d.actual.join('\n    ')}`);
  assert.equal(text, [], 'run `npm run docs:update` after reviewing the change');
});

test.run();
