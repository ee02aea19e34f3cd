// The uvu process behind scripts/test.mjs: loads every matching compiled test
// file the way `uvu` does (deferred queue, one group per file), then runs the
// queue through uvu's own exec, with two checks uvu lacks (issue 14, gap 7):
//  - a suite that stops early is a named failure. uvu's runner returns from a
//    `finally` block, so an exception thrown by a hook (before, before.each,
//    after.each) is dropped and the rest of the suite silently does not run;
//    here every suite's count of tests that ran (passed + failed) is compared
//    with its registered count, and a shortfall becomes a FAIL entry naming
//    the file, the suite and the test position where it stopped;
//  - a test file that registers no suite run (a forgotten `.run()`) fails.
// Usage: node scripts/uvu-run.mjs DIR PATTERN
import { parse } from 'uvu/parse';

const [dir = 'dist/tests', pattern = '\\.test\\.js$'] = process.argv.slice(2);
process.env.FORCE_COLOR = '0';

const { suites } = await parse(dir, pattern, {});
globalThis.UVU_DEFER = 1;
const uvu = await import('uvu');

let idx = 0;
for (const s of suites) {
  globalThis.UVU_INDEX = idx++;
  globalThis.UVU_QUEUE.push([s.name]);
  await import('file:///' + s.file);
}

// A failure entry in uvu's error text starts with the (uncoloured) FAIL badge.
const FAIL_ENTRY = /^\s+FAIL\s/gm;

for (const group of globalThis.UVU_QUEUE) {
  const file = group[0];
  if (file == null) continue;
  if (group.length === 1) {
    group.push(async () => [
      `   FAIL  ${file}: the file registered no suite run (is a suite's .run() missing?)\n`,
      0, 0, 1,
    ]);
    continue;
  }
  for (let i = 1; i < group.length; i++) {
    const run = group[i];
    group[i] = async () => {
      const [errs, ran, skipped, max] = await run();
      const failed = typeof errs === 'string' ? (errs.match(FAIL_ENTRY) ?? []).length : 0;
      if (ran + failed >= max) return [errs, ran, skipped, max];
      const msg =
        `   FAIL  ${file}: suite stopped early: ${ran + failed} of ${max} tests ran ` +
        `(${ran} passed, ${failed} failed); it stopped in test ${ran + failed + 1}: ` +
        'a hook (before, before.each or after.each) threw and uvu dropped the exception\n';
      return [(typeof errs === 'string' ? errs + '\n' : '') + msg, ran, skipped, max];
    };
  }
}

// PVMMU_TEST_BAIL=1 (npm run mutate): stop at the first failure.
await uvu.exec(process.env.PVMMU_TEST_BAIL === '1');
