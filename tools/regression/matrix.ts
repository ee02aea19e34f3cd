/**
 * The regression matrix: every example workload in tools/workloads/ under
 * `compare` semantics, on the native and the Xen backend, in PAE and 2-level
 * paging and every split the workload supports (all three unless its machine
 * line pins one; a pinned `pae=` is honoured the same way). Shared by the
 * regression tests (tests/regression/) and `npm run golden:update`, so both
 * run exactly the same thing.
 *
 * A run goes through the interpreter as `pvmmu compare` does (same seed,
 * same comparison, compareRuns); on top of that the Xen model's own
 * invariant checker (checkXenInvariants) is run on the Xen backend after a
 * run that did not end in a refusal or a BUG, so "both backends' invariant
 * checkers clean" covers the hypervisor's bookkeeping as well as the
 * guest's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkXenInvariants } from '../../hypervisor/xen/index.js';
import { compareRuns } from '../workload/compare.js';
import type { Script } from '../workload/ast.js';
import { checkScript } from '../workload/check.js';
import { resolveConfig, type RunConfig, type Split } from '../workload/config.js';
import { Interpreter, runWorkload, type RunResult } from '../workload/interpreter.js';
import { parseScript } from '../workload/parser.js';

/** The project root (this file is dist/tools/regression/matrix.js once built). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WORKLOADS_DIR = join(ROOT, 'tools', 'workloads');
export const GOLDEN_DIR = join(ROOT, 'tests', 'golden');

/** The seed `pvmmu compare` uses by default (--seed 1). */
export const SEED = 1;

const ALL_SPLITS: readonly Split[] = ['3G', '2G', '1G'];

export interface MatrixConfig {
  /** "PAE 3G", "2-level 1G", ... */
  label: string;
  pae: boolean;
  split: Split;
}

/** One backend's run: the interpreter's result plus the backend's own invariant checker. */
export interface BackendRun {
  result: RunResult;
  /** checkXenInvariants on the Xen backend (empty on native, which has no hypervisor state). */
  backendInvariants: string[];
}

export interface MatrixRun {
  /** Base name, e.g. "fork-exit.pvw". */
  workload: string;
  config: MatrixConfig;
  /** The full configuration (machine line + the matrix's pae/split), backend native. */
  cfg: RunConfig;
  native: BackendRun;
  xen: BackendRun;
  /** compareRuns(native, xen) plus backend invariant violations: empty when equivalent and clean. */
  divergences: string[];
}

/** The example workloads, sorted by name. */
export function listWorkloads(dir = WORKLOADS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pvw'))
    .sort();
}

/** Parse a workload; its file name in messages is relative to the root ("tools/workloads/x.pvw"). */
export function loadScript(workload: string, dir = WORKLOADS_DIR): Script {
  return parseScript(`tools/workloads/${workload}`, readFileSync(join(dir, workload), 'utf8'));
}

export function configLabel(pae: boolean, split: Split): string {
  return `${pae ? 'PAE' : '2-level'} ${split}`;
}

/** The configurations a workload runs under: both paging modes and its splits, unless its machine line pins them. */
export function configsFor(script: Script): MatrixConfig[] {
  const paes = script.machine.pae !== undefined ? [script.machine.pae] : [true, false];
  const splits = script.machine.split !== undefined ? [script.machine.split] : ALL_SPLITS;
  return paes.flatMap((pae) => splits.map((split) => ({ label: configLabel(pae, split), pae, split })));
}

/** Run a checked script on one backend, keeping the backend for its invariant checker. */
export function runBackend(script: Script, cfg: RunConfig): BackendRun {
  let it: Interpreter;
  try {
    it = new Interpreter(script, cfg, { seed: SEED });
  } catch {
    // Boot itself failed (e.g. Xen refusing the kernel): runWorkload turns that into a failure at the machine line.
    return { result: runWorkload(script, cfg, { seed: SEED }), backendInvariants: [] };
  }
  const result = it.run();
  const stopped = result.failure?.kind === 'refusal' || result.failure?.kind === 'bug';
  const backendInvariants = !stopped && it.xen ? checkXenInvariants(it.xen) : [];
  return { result, backendInvariants };
}

/** One workload in one configuration, on both backends, compared as `pvmmu compare` compares. */
export function runConfig(workload: string, script: Script, config: MatrixConfig): MatrixRun {
  const cfg = resolveConfig(script.file, script.machine, { pae: config.pae, split: config.split, backend: 'native' });
  checkScript(script, cfg);
  const native = runBackend(script, cfg);
  const xen = runBackend(script, { ...cfg, backend: 'xen' });
  const divergences = compareRuns(native.result, xen.result);
  for (const v of native.backendInvariants) divergences.push(`native backend invariant: ${v}`);
  for (const v of xen.backendInvariants) divergences.push(`xen backend invariant: ${v}`);
  return { workload, config, cfg, native, xen, divergences };
}

const cache = new Map<string, MatrixRun[]>();

/**
 * Every configuration of one workload. Memoised per process: the regression
 * and golden tests run in one uvu process and share the runs (the results are
 * deterministic, so running them twice would only cost time).
 */
export function runMatrix(workload: string, opts: { fresh?: boolean } = {}): MatrixRun[] {
  const hit = cache.get(workload);
  if (hit && !opts.fresh) return hit;
  const script = loadScript(workload);
  const runs = configsFor(script).map((c) => runConfig(workload, script, c));
  if (!opts.fresh) cache.set(workload, runs);
  return runs;
}
