/**
 * How the guest coped with an injected failure, read off the run's result:
 * the statement that met it and what the kernel returned (fork -ENOMEM, exec
 * -ENOMEM, vmalloc NULL, the process killed by the OOM path, ...), or that
 * the failure was absorbed and the run completed. What is not a way of
 * coping is a crash: a kernel BUG, a broken invariant, a hypervisor refusal
 * (the guest asked Xen for something wrong while unwinding), an internal
 * error.
 */
import type { RunFailure, RunResult } from '../workload/interpreter.js';

export interface Outcome {
  /** Short text for tables and --json: "fork -ENOMEM", "touch: killed by the OOM path", "absorbed (run completed)". */
  text: string;
  /** The statement's line, when the run stopped at one. */
  line: number | null;
  /** Set when the run crashed: what went wrong. */
  crash: string | null;
}

/** The statement keyword a failure message names ("FILE:L:C: fork a b: ..." -> "fork"). */
export function failedOp(f: RunFailure): string {
  const m = /^.*?:\d+:\d+: (?:boot: )?([a-z]+)/.exec(f.message);
  return m ? m[1]! : '?';
}

/** The message without its "FILE:LINE:COL: " prefix. */
export function bareMessage(f: RunFailure): string {
  return f.message.replace(/^.*?:\d+:\d+: /, '');
}

const OOM_TEXT: Record<string, string> = {
  process: 'process -ENOMEM',
  fork: 'fork -ENOMEM',
  exec: 'exec -ENOMEM',
  mmap: 'mmap -ENOMEM',
  munmap: 'munmap -ENOMEM',
  vmalloc: 'vmalloc NULL',
  cpa: 'change_page_attr -ENOMEM',
};

/** The outcome of a run with an injected allocation failure. */
export function allocationOutcome(r: RunResult, cleanObservations: readonly string[]): Outcome {
  const f = r.failure;
  if (r.invariants.length > 0) {
    return { text: 'invariant broken', line: f?.line ?? null, crash: `invariants broken after the run: ${r.invariants.slice(0, 3).join('; ')}` };
  }
  if (f === null) {
    // The allocation failure was handled inside the kernel; the guest must not have noticed.
    const same = r.observations.length === cleanObservations.length && r.observations.every((o, i) => o === cleanObservations[i]);
    return same
      ? { text: 'absorbed (run completed)', line: null, crash: null }
      : { text: 'absorbed, guest saw a difference', line: null, crash: 'the run completed but the guest observed something else than in the clean run' };
  }
  const op = failedOp(f);
  switch (f.kind) {
    case 'oom': {
      const killed = /killed by the OOM path/.test(f.message);
      return { text: killed ? `${op}: killed by the OOM path` : (OOM_TEXT[op] ?? `${op} -ENOMEM`), line: f.line, crash: null };
    }
    case 'expect':
    case 'segv':
      // A later statement met the consequences of the OOM (the script did not plan for it).
      return { text: `${op}: ${f.kind === 'segv' ? 'SIGSEGV' : 'expect failed'} after the OOM`, line: f.line, crash: null };
    case 'refusal':
      return { text: `${op}: hypervisor refused`, line: f.line, crash: bareMessage(f) };
    case 'bug':
      return { text: `${op}: kernel BUG`, line: f.line, crash: bareMessage(f) };
    case 'invariant':
      return { text: `${op}: invariant broken`, line: f.line, crash: bareMessage(f) };
    case 'interrupted':
      return { text: `${op}: interrupted`, line: f.line, crash: bareMessage(f) };
  }
}

/**
 * The outcome of a run with an injected mmu_update failure: Linux's Xen port
 * BUGs on a failed mmu_update, so the expected outcome is a clean stop at the
 * statement with the refusal named. Going on as if nothing happened, or
 * stopping for another reason, is a crash.
 */
export function refusalOutcome(r: RunResult, injectedRule: string): Outcome {
  const f = r.failure;
  if (f === null) {
    return { text: 'went on after the refusal', line: null, crash: 'the guest went on after a failed mmu_update (Linux BUGs)' };
  }
  const op = failedOp(f);
  if (f.kind === 'refusal' && f.message.includes(injectedRule)) return { text: `${op}: stopped, mmu_update refused`, line: f.line, crash: null };
  return { text: `${op}: ${f.kind}`, line: f.line, crash: `stopped for another reason than the injected refusal: ${bareMessage(f)}` };
}
