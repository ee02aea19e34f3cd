/**
 * Shared set-up for the guest-kernel suites: every scenario runs over every
 * backend (one line per backend in BACKENDS), PAE on/off and the three
 * VMSPLITs, through the same boot path the CLI uses.
 */
import { createBackend, type Backend, type BackendKind, type BackendOptions } from '../../hypervisor/backend.js';
import type { MachineConfig, ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { bootKernel, type Kernel, type Split, type Variant } from '../../guest-kernel/kernel.js';
import { PAGE_OFFSET_BY_SPLIT } from '../../guest-kernel/layout.js';

export interface BackendFactory {
  /** Which backend. */
  readonly name: 'native' | 'xen' | 'vmi' | 'lguest';
  /** Whether the backend runs PAE guests (lguest of 2.6.23 does not). */
  readonly pae: boolean;
  /** How the suites name it (a backend may appear in several set-ups). */
  readonly label: string;
  create(config: MachineConfig): ParavirtOps;
}

/** The handle of every backend the suites created, by its ops (for the backend's own invariants). */
const handles = new WeakMap<ParavirtOps, Backend>();

/** A backend through the registry; its ops, remembered with their handle. */
function make(kind: BackendKind, c: MachineConfig, o: BackendOptions = {}): ParavirtOps {
  const h = createBackend(kind, c, o);
  handles.set(h.ops, h);
  return h.ops;
}

/** Every backend the guest kernel must run on. Adding one is one line. */
export const BACKENDS: readonly BackendFactory[] = [
  { name: 'native', label: 'native', pae: true, create: (c) => make('native', c) },
  { name: 'xen', label: 'xen', pae: true, create: (c) => make('xen', c) },
  // Xen with a shuffled p2m (and, under PAE, half the frames above 4 GiB):
  // any pfn/mfn confusion in the guest shows here.
  {
    name: 'xen',
    label: 'xen (shuffled p2m, above 4G)',
    pae: true,
    create: (c) => make('xen', { ...c, seed: 7 }, { xenP2m: 'shuffled', above4g: c.pae }),
  },
  { name: 'vmi', label: 'vmi', pae: true, create: (c) => make('vmi', c) },
  { name: 'lguest', label: 'lguest', pae: false, create: (c) => make('lguest', c) },
];

/** Whether backend `b` runs a guest with this paging mode. */
export function runs(b: BackendFactory, pae: boolean): boolean {
  return !pae || b.pae;
}

export const NATIVE = BACKENDS[0]!;
export const XEN = BACKENDS[1]!;

export interface GuestConfig {
  pae: boolean;
  split: Split;
  /** Guest memory, default 64 MiB. */
  memBytes?: number;
  variant?: Variant;
  checkEachOp?: boolean;
}

export const PAGING: readonly { pae: boolean; label: string }[] = [
  { pae: true, label: 'PAE' },
  { pae: false, label: '2-level' },
];
export const SPLITS: readonly Split[] = ['3G', '2G', '1G'];

/** Every (pae, split) combination. */
export const CONFIGS: readonly { pae: boolean; split: Split; label: string }[] = PAGING.flatMap((p) =>
  SPLITS.map((split) => ({ pae: p.pae, split, label: `${p.label} ${split}` })),
);

export function machineConfig(g: GuestConfig): MachineConfig {
  return {
    pae: g.pae,
    memBytes: g.memBytes ?? 64 << 20,
    cpu: 'core2',
    pageOffset: PAGE_OFFSET_BY_SPLIT[g.split],
  };
}

export function boot(b: BackendFactory, g: GuestConfig): Kernel {
  const ops = b.create(machineConfig(g));
  return bootKernel({ ops, split: g.split, variant: g.variant ?? 'patched', checkEachOp: g.checkEachOp ?? false });
}

/** Boot with a wrapped backend (test doubles that change one property or record calls). */
export function bootWith(ops: ParavirtOps, g: GuestConfig): Kernel {
  return bootKernel({ ops, split: g.split, variant: g.variant ?? 'patched', checkEachOp: g.checkEachOp ?? false });
}

/**
 * A view of a backend with some members replaced (e.g. sharedKernelPmd:
 * false on native hardware, which Linux supports too): methods stay bound to
 * the real backend.
 */
export function override(ops: ParavirtOps, fields: Partial<Record<keyof ParavirtOps, unknown>>): ParavirtOps {
  return new Proxy(ops, {
    get(target, prop, _recv) {
      if (Object.prototype.hasOwnProperty.call(fields, prop)) return (fields as Record<string | symbol, unknown>)[prop];
      const v = (target as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The backend's own invariants (Xen: type counts, pins, no writable page tables). */
export function backendInvariants(ops: ParavirtOps): string[] {
  const h = handles.get(ops) ?? handles.get((ops as { unwrap?: ParavirtOps }).unwrap ?? ops);
  return h ? h.checkInvariants() : [];
}

/** Guest and backend invariants both clean. */
export function assertClean(k: Kernel, where: string): void {
  const v = [...k.checkInvariants(), ...backendInvariants(k.ops)];
  if (v.length > 0) throw new Error(`${where}: invariants violated:\n  ${v.join('\n  ')}`);
}

/** Records the page-table page announcements a guest makes and flags unbalanced releases. */
export interface PdSpy {
  ops: ParavirtOps;
  /** release_pd / release_pt of a pfn that was never announced (or announced as the other kind). */
  unbalanced: { pfn: number; what: string }[];
}

export function pdSpy(ops: ParavirtOps, fields: Partial<Record<keyof ParavirtOps, unknown>> = {}): PdSpy {
  const announced = new Map<number, 'pt' | 'pd'>();
  const unbalanced: { pfn: number; what: string }[] = [];
  const release = (pfn: number, kind: 'pt' | 'pd', what: string): void => {
    if (announced.get(pfn) !== kind) unbalanced.push({ pfn, what });
    announced.delete(pfn);
  };
  const wrapped = override(ops, {
    ...fields,
    alloc_pt: (pfn: number) => {
      announced.set(pfn, 'pt');
      ops.alloc_pt(pfn);
    },
    alloc_pd: (pfn: number) => {
      announced.set(pfn, 'pd');
      ops.alloc_pd(pfn);
    },
    alloc_pd_clone: (pfn: number, c: number, s: number, n: number) => {
      announced.set(pfn, 'pd');
      ops.alloc_pd_clone(pfn, c, s, n);
    },
    release_pt: (pfn: number) => {
      release(pfn, 'pt', 'release_pt');
      ops.release_pt(pfn);
    },
    release_pd: (pfn: number) => {
      release(pfn, 'pd', 'release_pd');
      ops.release_pd(pfn);
    },
  });
  return { ops: wrapped, unbalanced };
}

/**
 * A native backend that batches set_pmd in lazy MMU mode the way a
 * hypervisor port does (issued on lazy_flush or when leaving the mode), so
 * the seed's missing lazy flush in vmalloc_sync_one shows natively too.
 */
export function lazyBatching(ops: ParavirtOps, fields: Partial<Record<keyof ParavirtOps, unknown>> = {}): ParavirtOps {
  let lazy = false;
  const queue: [number, bigint][] = [];
  const flush = (): void => {
    for (const [p, v] of queue.splice(0)) ops.set_pmd(p, v);
  };
  return override(ops, {
    ...fields,
    set_pmd: (p: number, v: bigint) => {
      if (lazy) queue.push([p, v]);
      else ops.set_pmd(p, v);
    },
    set_lazy_mode: (m: 'none' | 'mmu' | 'cpu') => {
      if (m === 'none') flush();
      lazy = m === 'mmu';
      ops.set_lazy_mode(m);
    },
    lazy_flush: () => {
      flush();
      ops.lazy_flush();
    },
  });
}
