// `npm run mutate [AREA...]`: Stryker mutation testing, one area at a time
// (emulator, xen, mm, workload; default all), each area's mutants against
// that area's own tests (stryker/AREA.config.mjs). Not part of `npm test`.
// Reports: reports/mutation/AREA.json and the clear-text table on stdout.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const AREAS = ['emulator', 'xen', 'mm', 'workload'];
// Extra arguments after the areas go to Stryker (e.g. --mutate FILE).
const args = process.argv.slice(2);
const want = args.filter((a) => !a.startsWith('-') && AREAS.includes(a));
const extra = args.filter((a) => !want.includes(a));
if (extra.length > 0 && !extra[0].startsWith('-')) {
  console.error(`mutate: unknown area '${extra[0]}' (one of ${AREAS.join(', ')})`);
  process.exit(2);
}
const stryker = fileURLToPath(new URL('../node_modules/@stryker-mutator/core/bin/stryker.js', import.meta.url));
let rc = 0;
for (const a of want.length ? want : AREAS) {
  console.log(`\n=== mutate: ${a} ===`);
  const r = spawnSync(process.execPath, [stryker, 'run', `stryker/${a}.config.mjs`, ...extra], { stdio: 'inherit' });
  if (r.status !== 0) rc = 1;
}
process.exit(rc);
