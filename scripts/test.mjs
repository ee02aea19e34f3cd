// Runs every compiled uvu test file under dist/tests in one uvu process
// (scripts/uvu-run.mjs: uvu's runner plus a check that every suite ran all of
// its registered tests) and ends with the line "N passed, N failed" (the CI
// contract). Exit code is non-zero on any failure, on a suite that stopped
// early, or when no test ran. The runner's output is passed through as it
// comes (a full run takes minutes), and kept to read the totals at the end.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const uvuRun = fileURLToPath(new URL('./uvu-run.mjs', import.meta.url));
const only = process.argv[2];
const filter = only ? `^(?=.*(?:${only})).*\\.test\\.js$` : '\\.test\\.js$';
const child = spawn(process.execPath, [uvuRun, 'dist/tests', filter], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, FORCE_COLOR: '0' },
});
// Only the summary at the end is parsed: keep the last 64 KiB of stdout.
let tail = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk).slice(-65536);
});
child.on('close', (status) => {
  const total = Number(/Total:\s+(\d+)/.exec(tail)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(tail)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(tail)?.[1] ?? 0);
  if (!Number.isFinite(total) || !Number.isFinite(passed)) {
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const failed = total - passed - skipped;
  const ok = status === 0 && failed === 0 && total > 0;
  console.log(`${passed} passed, ${ok ? failed : Math.max(failed, 1)} failed`);
  process.exit(ok ? 0 : 1);
});
