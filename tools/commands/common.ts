/**
 * What `boot`, `compare` and `inject` share: the common flags of cli.md
 * (--backend, --pae/--no-pae, --split, --mem, --cpu, --kernel, --trace,
 * --json, --seed), reading and checking a workload before anything runs.
 */
import { Option, type Command } from 'commander';
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { BACKEND_KINDS, isBackendKind } from '../../hypervisor/backend.js';
import { InputError } from '../input-error.js';
import type { Script } from '../workload/ast.js';
import { parseSizeFlag, type Backend, type ConfigOverrides, type RunConfig } from '../workload/config.js';
import { loadWorkload } from '../workload/load.js';
import { statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { refuseOutputOverInput } from '../output-file.js';
import type { TraceWriter } from '../trace/writer.js';

export interface CommonFlags {
  backend?: Backend;
  pae?: boolean;
  split?: '3G' | '2G' | '1G';
  mem?: string;
  cpu?: string;
  kernel?: 'patched' | 'seed' | 'prepatch';
  trace?: string;
  json?: boolean;
  seed?: string;
  above4g?: boolean;
}

export function addCommonFlags(cmd: Command, opts: { backend?: boolean; trace?: boolean } = {}): Command {
  if (opts.backend !== false) cmd.addOption(new Option('--backend <name>', 'paravirt backend').choices([...BACKEND_KINDS]));
  cmd
    .option('--pae', 'PAE paging (3-level, 64-bit entries)')
    .option('--no-pae', '2-level paging (32-bit entries)')
    .addOption(new Option('--split <split>', 'user/kernel split (PAGE_OFFSET 0xC0000000, 0x80000000, 0x40000000)').choices(['3G', '2G', '1G']))
    .option('--mem <size>', 'guest memory, e.g. 256M, 1G')
    .addOption(new Option('--cpu <preset>', 'CPU preset of the cost model').choices(PRESET_NAMES))
    .addOption(new Option('--kernel <variant>', "pgtable.c variant: the seed with later fixes, the seed as posted, or before it").choices(['patched', 'seed', 'prepatch']))
    .option('--json', 'print one JSON document on stdout')
    .option('--seed <n>', "Xen: shuffle the guest's machine frames (the p2m) with this seed (default: mfn = pfn)")
    .option('--above-4g', "Xen, PAE: give the guest machine frames above 4 GiB (half of them)");
  if (opts.trace !== false) cmd.option('--trace <file>', 'write a Chrome trace-event JSON trace to FILE (compare: FILE with .native/.xen before .json)');
  return cmd;
}

/** The Xen machine layout the flags ask for (the native backend has no p2m). */
export interface Layout {
  seed: number;
  xenP2m: 'identity' | 'shuffled';
  xenAbove4g: boolean;
}

export function layoutOf(f: CommonFlags): Layout {
  return { seed: seedOf(f), xenP2m: f.seed !== undefined ? 'shuffled' : 'identity', xenAbove4g: f.above4g === true };
}

export function overridesOf(f: CommonFlags): ConfigOverrides {
  const o: ConfigOverrides = {};
  if (f.backend) o.backend = f.backend;
  if (f.pae !== undefined) o.pae = f.pae;
  if (f.split) o.split = f.split;
  if (f.mem !== undefined) o.mem = parseSizeFlag('--mem', f.mem);
  if (f.cpu) o.cpu = f.cpu;
  if (f.kernel) o.kernel = f.kernel;
  return o;
}

export function seedOf(f: CommonFlags): number {
  const s = f.seed ?? '1';
  if (f.seed !== undefined && /^\d{1,9}$/.test(s) && Number(s) === 0) throw new InputError(`--seed: 0 is not a seed; give a positive integer`);
  if (!/^\d{1,9}$/.test(s)) throw new InputError(`--seed: expected a non-negative integer below 10^9, got '${s}'`);
  return Number(s);
}

/**
 * loadWorkload under the command-line flags (all input errors before anything
 * runs); `backends` are the backends the command will run it on.
 */
export function loadWorkloadFlags(file: string, flags: CommonFlags, backends?: Backend[]): { script: Script; cfg: RunConfig; bytes: number } {
  const w = loadWorkload(file, overridesOf(flags), { backends, above4g: flags.above4g === true });
  const xen = (backends ?? [w.cfg.backend]).includes('xen');
  // --seed is accepted on native (nothing there is randomised) so that one command line serves both backends.
  if (!xen && flags.above4g) throw new InputError(`--above-4g: only the Xen backend places the guest in machine memory, and this run is not on Xen (add --backend xen)`);
  if (flags.above4g && !w.cfg.pae) throw new InputError(`--above-4g: machine frames above 4 GiB need PAE (a 2-level entry holds 20 frame bits); drop --no-pae`);
  return w;
}

/**
 * The trace files of a run: FILE itself for one run (boot), FILE with the
 * backend before its extension for two (compare: t.json -> t.native.json,
 * t.xen.json). Never a directory, never one of the inputs.
 */
export function tracePaths(flag: string, file: string, backends: string[], inputs: string[]): string[] {
  let st;
  try {
    st = statSync(file);
  } catch {
    st = undefined;
  }
  if (file.trim() === '') throw new InputError(`${flag}: empty file name`);
  if (st?.isDirectory()) throw new InputError(`${flag}: ${file} is a directory; give a file name such as ${join(file, 'trace.json')}`);
  const paths = backends.length === 1 ? [file] : backends.map((b) => (extname(file) ? file.slice(0, -extname(file).length) : file) + `.${b}${extname(file) || '.json'}`);
  for (const p of paths) refuseOutputOverInput(flag, p, inputs);
  return paths;
}

/**
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed) while a run is in progress: the run stops at
 * the next statement, its trace is closed there, and the command says so. A
 * second Ctrl-C exits at once (partial files are removed by their owners'
 * exit hooks).
 */
export function interruptible(): { stopped: () => boolean; dispose: () => void } {
  let stop = false;
  const on = (): void => {
    if (stop) {
      process.stderr.write('\npvmmu: interrupted again: stopping at once; an incomplete trace is removed, not kept\n');
      process.exit(130);
    }
    stop = true;
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  process.on('SIGHUP', on);
  return {
    stopped: () => stop,
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      process.off('SIGHUP', on);
    },
  };
}

/** What happened to a trace, for stderr: written, closed early, or removed (and why). */
export function traceNote(t: TraceWriter, interrupted: boolean): string | null {
  if (t.error) return `${t.error.message}`;
  if (t.state === 'removed') return `${t.flag}: removed the incomplete trace ${t.path}`;
  if (interrupted) return `${t.flag}: the trace ${t.path} was closed at the interruption (${t.events} events; it ends there)`;
  return null;
}

/** `--backends a,b,…`: registered kinds, each once, in the order given. */
export function parseBackends(flag: string, v: string): Backend[] {
  const out: Backend[] = [];
  for (const raw of v.split(',')) {
    const b = raw.trim();
    if (!isBackendKind(b)) throw new InputError(`${flag}: unknown backend '${b}' (known: ${BACKEND_KINDS.join(', ')})`);
    if (out.includes(b)) throw new InputError(`${flag}: backend '${b}' given twice`);
    out.push(b);
  }
  return out;
}

/**
 * Ctrl-C (SIGINT), SIGTERM or SIGHUP during a sweep (inject, matrix): the
 * sweep stops after the items in progress, prints no report and says so on
 * stderr; the exit code is 130. A second signal exits at once.
 */
export function interruptibleSweep(what: string): { more: () => boolean; finish: (done: number, of: number | null) => boolean } {
  const intr = interruptible();
  return {
    more: () => !intr.stopped(),
    finish: (done, of) => {
      intr.dispose();
      if (!intr.stopped()) return false;
      process.stderr.write(`pvmmu: interrupted; ${done}${of === null ? '' : ` of ${of}`} ${what} done, no report printed\n`);
      process.exitCode = 130;
      return true;
    },
  };
}
