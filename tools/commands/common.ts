/**
 * What `boot`, `compare` and `inject` share: the common flags of cli.md
 * (--backend, --pae/--no-pae, --split, --mem, --cpu, --kernel, --trace,
 * --json, --seed), reading and checking a workload before anything runs.
 */
import { Option, type Command } from 'commander';
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { InputError } from '../input-error.js';
import type { Script } from '../workload/ast.js';
import { parseSizeFlag, type ConfigOverrides, type RunConfig } from '../workload/config.js';
import { loadWorkload } from '../workload/load.js';

export interface CommonFlags {
  backend?: 'native' | 'xen';
  pae?: boolean;
  split?: '3G' | '2G' | '1G';
  mem?: string;
  cpu?: string;
  kernel?: 'patched' | 'seed' | 'prepatch';
  trace?: string;
  json?: boolean;
  seed?: string;
}

export function addCommonFlags(cmd: Command, opts: { backend?: boolean; trace?: boolean } = {}): Command {
  if (opts.backend !== false) cmd.addOption(new Option('--backend <name>', 'paravirt backend').choices(['native', 'xen']));
  cmd
    .option('--pae', 'PAE paging (3-level, 64-bit entries)')
    .option('--no-pae', '2-level paging (32-bit entries)')
    .addOption(new Option('--split <split>', 'user/kernel split (PAGE_OFFSET 0xC0000000, 0x80000000, 0x40000000)').choices(['3G', '2G', '1G']))
    .option('--mem <size>', 'guest memory, e.g. 256M, 1G')
    .addOption(new Option('--cpu <preset>', 'CPU preset of the cost model').choices(PRESET_NAMES))
    .addOption(new Option('--kernel <variant>', "pgtable.c variant: the seed with later fixes, the seed as posted, or before it").choices(['patched', 'seed', 'prepatch']))
    .option('--json', 'print one JSON document on stdout')
    .option('--seed <n>', 'seed for anything randomised (Xen p2m layout)', '1');
  if (opts.trace !== false) cmd.option('--trace <file>', 'write a Chrome trace-event JSON page-walk trace');
  return cmd;
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
  if (!/^\d{1,9}$/.test(s)) throw new InputError(`--seed: expected a non-negative integer below 10^9, got '${s}'`);
  return Number(s);
}

/** loadWorkload under the command-line flags (all input errors before anything runs). */
export function loadWorkloadFlags(file: string, flags: CommonFlags): { script: Script; cfg: RunConfig } {
  return loadWorkload(file, overridesOf(flags));
}
