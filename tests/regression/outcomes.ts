/**
 * The regression suite's verdict on one matrix run: either the default
 * (guest-visible results identical on native and Xen, both backends'
 * invariant checkers clean) or, for a configuration that
 * tests/regression/expected-outcomes.json declares, exactly the declared
 * outcome per backend. Returns the problems found (empty = pass), so that the
 * checker itself can be tested against wrong expectations.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendRun, MatrixConfig, MatrixRun } from '../../tools/regression/matrix.js';
import { ROOT, WORKLOADS_DIR } from '../../tools/regression/matrix.js';

export interface BackendExpectation {
  outcome: 'completed' | 'refusal' | 'bug' | 'expect' | 'segv' | 'oom' | 'invariant';
  /** The statement (as written, comments stripped) on whose line the run stops. */
  at?: string;
  /** A regular expression the failure message must match. */
  message?: string;
}

export interface OutcomeRule {
  when: { pae?: boolean; split?: '3G' | '2G' | '1G' };
  why?: string;
  native: BackendExpectation;
  xen: BackendExpectation;
}

export type ExpectedOutcomes = Record<string, OutcomeRule[]>;

export const EXPECTED_FILE = join(ROOT, 'tests', 'regression', 'expected-outcomes.json');

export function loadExpectedOutcomes(file = EXPECTED_FILE): ExpectedOutcomes {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const out: ExpectedOutcomes = {};
  for (const [k, v] of Object.entries(raw)) if (!k.startsWith('$')) out[k] = v as OutcomeRule[];
  return out;
}

export function ruleFor(rules: OutcomeRule[] | undefined, c: MatrixConfig): OutcomeRule | null {
  for (const r of rules ?? []) {
    if (r.when.pae !== undefined && r.when.pae !== c.pae) continue;
    if (r.when.split !== undefined && r.when.split !== c.split) continue;
    return r;
  }
  return null;
}

/** The line numbers (1-based) of a workload whose statement text is `stmt`. */
export function linesOf(workload: string, stmt: string): number[] {
  const text = readFileSync(join(WORKLOADS_DIR, workload), 'utf8').split(/\r?\n/);
  const norm = (s: string): string => s.replace(/(^|\s)#(\s.*|$)/, '').trim().replace(/\s+/g, ' ');
  const out: number[] = [];
  text.forEach((l, i) => {
    if (norm(l) === stmt) out.push(i + 1);
  });
  return out;
}

function checkBackend(workload: string, name: string, run: BackendRun, exp: BackendExpectation): string[] {
  const p: string[] = [];
  const r = run.result;
  if (exp.outcome === 'completed') {
    if (r.failure) p.push(`${name}: expected to complete, failed: ${r.failure.message}`);
    for (const v of r.invariants) p.push(`${name}: guest invariant: ${v}`);
    for (const v of run.backendInvariants) p.push(`${name}: backend invariant: ${v}`);
    return p;
  }
  if (!r.failure && exp.outcome === 'invariant') {
    // A run that completes with the guest's invariant checker reporting
    // (what it checks at the end of every run): no statement to stop at.
    if (r.invariants.length === 0) return [`${name}: expected an invariant report, the run completed clean`];
    if (exp.message !== undefined && !r.invariants.some((v) => new RegExp(exp.message!).test(v))) {
      p.push(`${name}: no guest invariant report matches /${exp.message}/: ${r.invariants.slice(0, 2).join('; ')}`);
    }
    for (const v of run.backendInvariants) p.push(`${name}: backend invariant: ${v}`);
    return p;
  }
  if (!r.failure) return [`${name}: expected a ${exp.outcome}, the run completed`];
  if (r.failure.kind !== exp.outcome) p.push(`${name}: expected a ${exp.outcome}, got a ${r.failure.kind}: ${r.failure.message}`);
  if (exp.at !== undefined) {
    const lines = linesOf(workload, exp.at);
    if (lines.length !== 1) p.push(`${name}: expected-outcomes 'at' "${exp.at}" occurs ${lines.length} times in ${workload} (must be once)`);
    else if (r.failure.line !== lines[0]) p.push(`${name}: expected to stop at line ${lines[0]} ("${exp.at}"), stopped at line ${r.failure.line}: ${r.failure.message}`);
  }
  if (exp.message !== undefined && !new RegExp(exp.message).test(r.failure.message)) {
    p.push(`${name}: failure message does not match /${exp.message}/: ${r.failure.message}`);
  }
  return p;
}

/** Problems with one matrix run under the expectations (empty when it passes). */
export function verdict(run: MatrixRun, rules: OutcomeRule[] | undefined): string[] {
  const rule = ruleFor(rules, run.config);
  if (rule === null) return run.divergences.map((d) => `divergence: ${d}`);
  const p = [...checkBackend(run.workload, 'native', run.native, rule.native), ...checkBackend(run.workload, 'xen', run.xen, rule.xen)];
  const n = run.native.result;
  const x = run.xen.result;
  if (rule.native.outcome === 'completed' && rule.xen.outcome === 'completed') {
    // Both complete: the default check, nothing less.
    for (const d of run.divergences) if (!p.some((q) => q.endsWith(d))) p.push(`divergence: ${d}`);
  } else {
    // What the guest saw before a run stopped must agree with the other run.
    const [short, long] = n.observations.length <= x.observations.length ? [n, x] : [x, n];
    const shortName = short === n ? 'native' : 'xen';
    short.observations.forEach((o, i) => {
      if (long.observations[i] !== o) p.push(`observation ${i}: ${shortName} ${o} / other ${long.observations[i] ?? '(none)'}`);
    });
    if (short.failure === null && long.failure === null && n.observations.length !== x.observations.length) {
      p.push(`both completed with different observation counts (${n.observations.length} / ${x.observations.length})`);
    }
  }
  return p;
}
