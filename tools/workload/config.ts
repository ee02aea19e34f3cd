/**
 * The configuration a workload runs under: the spec's defaults, then the
 * script's `machine` line, then command-line flags (flags win).
 */
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { backendKind, type BackendKind } from '../../hypervisor/backend.js';
import { InputError } from '../input-error.js';
import type { MachineLine } from './ast.js';

/** A registered backend kind (hypervisor/backend.ts). */
export type Backend = BackendKind;
export type Split = '3G' | '2G' | '1G';
export type Variant = 'patched' | 'seed' | 'prepatch';

export interface RunConfig {
  backend: Backend;
  pae: boolean;
  split: Split;
  mem: number;
  cpu: string;
  kernel: Variant;
}

export const DEFAULT_CONFIG: RunConfig = {
  backend: 'native',
  pae: true,
  split: '3G',
  mem: 256 << 20,
  cpu: 'core2',
  kernel: 'patched',
};

/** Guest memory bounds: large enough to boot, small enough to model. */
export const MIN_MEM = 16 << 20;
export const MAX_MEM = 4 * 1024 ** 3;
/**
 * The largest Xen guest with the default machine layout (hypervisor/xen/
 * domain.ts): Xen's frames go just above the guest's pool and must stay below
 * 4 GiB (the PAE low L3 copy; 2-level machine addresses are 32 bits).
 */
export const XEN_MAX_MEM = 4095 * 2 ** 20;

export function pageOffset(split: Split): number {
  return split === '3G' ? 0xc0000000 : split === '2G' ? 0x80000000 : 0x40000000;
}

/** TASK_SIZE = PAGE_OFFSET on i386. */
export function taskSize(split: Split): number {
  return pageOffset(split);
}

export type ConfigOverrides = Partial<RunConfig>;

/**
 * Merge defaults, the machine line and flags; validate the result. Errors in
 * values that came from the machine line name its position.
 */
export function resolveConfig(
  file: string,
  machine: MachineLine,
  flags: ConfigOverrides,
  opts: { backends?: Backend[]; above4g?: boolean } = {},
): RunConfig {
  const cfg: RunConfig = { ...DEFAULT_CONFIG };
  const from: Partial<Record<keyof RunConfig, string>> = {};
  for (const k of ['backend', 'pae', 'split', 'mem', 'cpu', 'kernel'] as const) {
    if (machine[k] !== undefined) {
      (cfg as unknown as Record<string, unknown>)[k] = machine[k];
      const w = machine.where[k];
      from[k] = w ? `${file}:${w.line}:${w.col}` : file;
    }
    if (flags[k] !== undefined) {
      (cfg as unknown as Record<string, unknown>)[k] = flags[k];
      from[k] = `--${k === 'pae' ? (flags.pae ? 'pae' : 'no-pae') : k}`;
    }
  }
  const where = (k: keyof RunConfig): string => from[k] ?? file;
  if (!PRESET_NAMES.includes(cfg.cpu)) throw new InputError(`${where('cpu')}: unknown cpu preset '${cfg.cpu}' (known: ${PRESET_NAMES.join(', ')})`);
  if (cfg.mem < MIN_MEM || cfg.mem > MAX_MEM) {
    const hint = cfg.mem > 0 && cfg.mem * 2 ** 20 >= MIN_MEM && cfg.mem * 2 ** 20 <= MAX_MEM ? ` (a number without a suffix is bytes: did you mean ${cfg.mem}M?)` : '';
    throw new InputError(`${where('mem')}: mem=${cfg.mem} is outside ${MIN_MEM >> 20}M..${MAX_MEM / 1024 ** 3}G${hint}`);
  }
  if (cfg.mem % (1 << 20) !== 0) throw new InputError(`${where('mem')}: mem must be a whole number of MiB`);
  const backends = opts.backends ?? [cfg.backend];
  for (const b of backends) {
    const why = backendKind(b).unsupported({ pae: cfg.pae, memBytes: cfg.mem });
    if (why !== null) {
      const setting = from['pae'] === undefined ? `${file}: ${cfg.pae ? 'PAE' : '2-level paging'} (the default)` : `${from['pae']}`;
      const src = opts.backends && opts.backends.length > 1 ? `${setting} (compare runs it on ${b})` : `${setting} with backend=${b} from ${where('backend')}`;
      throw new InputError(`${src}: ${why}`);
    }
  }
  if (backends.includes('xen') && cfg.mem > XEN_MAX_MEM && !(opts.above4g && cfg.pae)) {
    const why = backends.length > 1 ? 'compare runs it under Xen' : `backend=xen from ${where("backend")}`;
    throw new InputError(
      `${where('mem')}: mem=${cfg.mem / 2 ** 20}M is too large for the Xen model (${why}): Xen keeps its own frames (idle page tables, the hypervisor hole, the m2p) ` +
        `in machine memory below 4 GiB next to the guest's, so a Xen guest gets at most ${XEN_MAX_MEM / 2 ** 20}M${cfg.pae ? ' (or 4G with --above-4g)' : ''}`,
    );
  }
  return cfg;
}

/** Parse a --mem SIZE flag (K/M/G suffixes). */
export function parseSizeFlag(flag: string, v: string): number {
  const m = /^(0x[0-9a-fA-F]+|[0-9]+)([KMGkmg])?$/.exec(v);
  if (!m) throw new InputError(`${flag}: bad size '${v}' (e.g. 256M, 1G)`);
  const u = m[2]?.toUpperCase();
  const n = Number(BigInt(m[1]!) * (u === 'K' ? 1024n : u === 'M' ? 1024n ** 2n : u === 'G' ? 1024n ** 3n : 1n));
  if (!Number.isSafeInteger(n)) throw new InputError(`${flag}: size '${v}' is too large`);
  return n;
}
