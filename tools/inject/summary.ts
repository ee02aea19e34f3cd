/**
 * The fault-injection sweep's output (cli.md): the `inject --json` document,
 * the text table, and the exit verdict.
 */
import { isLeak, leakText } from './accounts.js';
import type { InjectReport } from './sweep.js';
import { num, size, table } from '../table.js';

/** Exit 1: a leak, a crash, an invariant breach, or a clean run that fails or leaks. */
export function failed(rep: InjectReport): boolean {
  const c = rep.clean;
  return rep.leaks > 0 || rep.crashes > 0 || c.failure !== null || isLeak(c.leaked) || c.invariants.length > 0 || c.teardown !== null;
}

/** The --json document of cli.md (workload, config, runs, leaks, crashes, results), plus the mode and the clean run. */
export function injectJson(rep: InjectReport): Record<string, unknown> {
  return {
    workload: rep.workload,
    config: rep.config,
    mode: rep.mode,
    runs: rep.runs,
    leaks: rep.leaks,
    crashes: rep.crashes,
    clean: rep.clean,
    results: rep.results.map((r) => ({ failAt: r.failAt, site: r.site, outcome: r.outcome, leaked: r.leaked, line: r.line, crash: r.crash })),
  };
}

export function injectText(rep: InjectReport): string {
  const c = rep.config;
  const lines: string[] = [];
  lines.push(`${rep.workload}: backend ${c.backend}, ${c.pae ? 'PAE' : '2-level'}, split ${c.split}, mem ${size(c.mem)}, cpu ${c.cpu}, kernel ${c.kernel}`);
  const what = rep.mode === 'allocation' ? 'allocations (page allocator and slab)' : 'mmu_update calls';
  if (rep.clean.failure !== null) {
    lines.push(`clean run: FAILED: ${rep.clean.failure}`);
    lines.push('nothing to sweep: the workload must complete without injection');
    return lines.join('\n');
  }
  const cleanLeak = isLeak(rep.clean.leaked) ? `LEAKED ${leakText(rep.clean.leaked)}` : 'nothing leaked';
  lines.push(`clean run: ${num(rep.clean.points)} ${what} after boot; ${cleanLeak}${rep.clean.invariants.length ? `; invariants: ${rep.clean.invariants.join('; ')}` : ''}`);
  if (rep.clean.teardown !== null) lines.push(`clean run CRASHED while tearing down: ${rep.clean.teardown}`);
  lines.push(rep.runs < rep.clean.points ? `injected runs: ${num(rep.runs)} of ${num(rep.clean.points)} points (--max-runs)` : `injected runs: ${num(rep.runs)}`);
  if (rep.results.length > 0) {
    lines.push('');
    lines.push(
      table(
        ['k', 'site', 'outcome', 'line', 'leaked'],
        rep.results.map((r) => [
          String(r.failAt),
          r.site,
          r.crash !== null ? `CRASH: ${r.outcome}` : r.outcome,
          r.line === null ? '-' : String(r.line),
          r.leaked === null ? (rep.mode === 'allocation' ? '?' : 'n/a (guest stopped)') : leakText(r.leaked),
        ]),
        [0, 3],
      ),
    );
  }
  const crashes = rep.results.filter((r) => r.crash !== null);
  if (crashes.length > 0) {
    lines.push('');
    lines.push('crashes:');
    for (const r of crashes.slice(0, 20)) lines.push(`  k=${r.failAt} (${r.site}): ${r.crash}`);
    if (crashes.length > 20) lines.push(`  … and ${crashes.length - 20} more`);
  }
  const outcomes = new Map<string, number>();
  for (const r of rep.results) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
  lines.push('');
  const by = [...outcomes].map(([o, n]) => `${o} ×${n}`).join(', ');
  const verdict = failed(rep) ? 'FAILED' : 'ok';
  lines.push(`${verdict}: ${num(rep.runs)} runs, ${num(rep.leaks)} leaks, ${num(rep.crashes)} crashes${by ? ` (${by})` : ''}`);
  return lines.join('\n');
}
