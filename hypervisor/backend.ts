/**
 * One typed handle per backend, and the registry of backend kinds. Tools
 * reach a backend only through this handle: the paravirt ops the guest kernel
 * runs on, the machine (the emulated processor) under it, the machine address
 * of a guest frame, the backend's own invariant check, its statistics, what
 * it holds on the guest's behalf (for leak accounting), and a typed
 * extension for what only that backend has. Nothing outside hypervisor/
 * needs to know a backend's class.
 *
 * Kinds: native (bare hardware), xen (direct paging, Xen 3.1 + Linux 2.6.23's
 * port), vmi (VMware's VMI, Linux 2.6.21, shadow paging), lguest (Linux
 * 2.6.23, shadow paging, 2-level only).
 */
import type { Mmu } from '../emulator/mmu.js';
import { checkXenInvariants, createXenBackend, type XenBackend } from './xen/index.js';
import { createLguestBackend, lguestUnsupported, type LguestBackend } from './lguest/index.js';
import { createNativeBackend, type NativeBackend } from './native.js';
import type { MachineConfig, ParavirtOps } from './paravirt-ops.js';
import type { BackendStats } from './stats.js';
import { createVmiBackend, type VmiBackend } from './vmi/index.js';

/** Every registered kind, in display order. */
export const BACKEND_KINDS = ['native', 'xen', 'vmi', 'lguest'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export function isBackendKind(s: string): s is BackendKind {
  return (BACKEND_KINDS as readonly string[]).includes(s);
}

/** Options only some kinds use (ignored by the others). */
export interface BackendOptions {
  /** Xen: machine layout of the p2m ('shuffled' permutes it by config.seed). */
  xenP2m?: 'identity' | 'shuffled';
  /** Xen (PAE): put part of the guest's frames above 4 GiB. */
  above4g?: boolean;
}

/** What the hypervisor holds on the guest's behalf (leak accounting: compare a run's teardown with a clean boot's). */
export interface HeldAccounts {
  /** Frames pinned (Xen). */
  pins: number;
  /** Guest frames the hypervisor knows as page tables (Xen: typed l1..l4 with a count; VMI: allocated L1/L2), `kept` excepted. */
  pageTables: number;
  /** Type references on those frames (Xen: the type counts; VMI: one per page the monitor knows as a page table), else 0. */
  typeRefs: number;
}

/** What only each kind has. */
export interface BackendExtensions {
  native: { readonly backend: NativeBackend };
  xen: { readonly backend: XenBackend };
  vmi: { readonly backend: VmiBackend };
  lguest: { readonly backend: LguestBackend };
}

export interface Backend<K extends BackendKind = BackendKind> {
  readonly kind: K;
  /** The paravirt ops the guest kernel runs on. */
  readonly ops: ParavirtOps;
  /** The emulated processor under the backend (tools may look at the hardware; the guest may not). */
  readonly machine: Mmu;
  readonly stats: BackendStats;
  /** Machine address of a guest-physical address, or -1 when the frame has none. */
  machineAddress(gpa: number): number;
  /** The backend's own invariants (empty when they hold). */
  checkInvariants(): string[];
  /** What the hypervisor holds for the guest; `kept` are guest frames to leave out (kernel pte pages Linux never frees). */
  held(kept: ReadonlySet<number>): HeldAccounts;
  /** What only this kind has. */
  readonly ext: BackendExtensions[K];
}

export interface BackendKindInfo {
  readonly kind: BackendKind;
  /** One line for `--help` and docs. */
  readonly description: string;
  /** Why this kind cannot run `config` (an input error for the tools), or null. */
  unsupported(config: Pick<MachineConfig, 'pae' | 'memBytes'>): string | null;
  create(config: MachineConfig, opts?: BackendOptions): Backend;
}

/** Guest memory a shadow-paging backend can host: its shadow tables live in machine frames above the guest's, below 4 GiB. */
export const SHADOW_MAX_MEM = 3 * 2 ** 30;

function shadowMemLimit(c: Pick<MachineConfig, 'memBytes'>, who: string): string | null {
  return c.memBytes > SHADOW_MAX_MEM
    ? `mem=${c.memBytes / 2 ** 20}M is too large for the ${who} model: its shadow page tables live in machine frames above the guest's and below 4 GiB (a 32-bit CR3 and 2-level entries must reach them), so a guest gets at most ${SHADOW_MAX_MEM / 2 ** 20}M`
    : null;
}

const NONE: HeldAccounts = { pins: 0, pageTables: 0, typeRefs: 0 };

function nativeHandle(b: NativeBackend): Backend<'native'> {
  return {
    kind: 'native',
    ops: b,
    machine: b.mmu,
    stats: b.stats,
    machineAddress: (gpa) => gpa,
    checkInvariants: () => [],
    held: () => NONE,
    ext: { backend: b },
  };
}

function xenHandle(b: XenBackend): Backend<'xen'> {
  const d = b.domain;
  return {
    kind: 'xen',
    ops: b,
    machine: d.mmu,
    stats: b.stats,
    machineAddress: (gpa) => {
      const mfn = d.p2m.pfnToMfn(Math.floor(gpa / 4096));
      return mfn < 0 ? -1 : mfn * 4096 + (gpa % 4096);
    },
    checkInvariants: () => checkXenInvariants(b),
    held: (kept) => {
      const keptM = new Set([...kept].map((pfn) => d.p2m.pfnToMfn(pfn)));
      const { frames, refs } = d.frames.pageTableRefs(keptM);
      return { pins: b.stats.pinned, pageTables: frames, typeRefs: refs };
    },
    ext: { backend: b },
  };
}

function vmiHandle(b: VmiBackend): Backend<'vmi'> {
  return {
    kind: 'vmi',
    ops: b,
    machine: b.mmu,
    stats: b.stats,
    machineAddress: (gpa) => gpa,
    checkInvariants: () => b.checkInvariants(),
    held: (kept) => {
      let pageTables = 0;
      const t = b.monitor.pageType;
      for (let pfn = 0; pfn < t.length; pfn++) if (t[pfn] !== 0 && !kept.has(pfn)) pageTables++;
      // Each page the monitor knows as a page table is one reference it holds (its page type).
      return { pins: 0, pageTables, typeRefs: pageTables };
    },
    ext: { backend: b },
  };
}

function lguestHandle(b: LguestBackend): Backend<'lguest'> {
  return {
    kind: 'lguest',
    ops: b,
    machine: b.mmu,
    stats: b.stats,
    machineAddress: (gpa) => gpa,
    checkInvariants: () => b.checkInvariants(),
    held: () => NONE,
    ext: { backend: b },
  };
}

const REGISTRY: Record<BackendKind, BackendKindInfo> = {
  native: {
    kind: 'native',
    description: 'bare hardware: every op a store or a CPU instruction (docs/native-backend.md)',
    unsupported: () => null,
    create: (c) => nativeHandle(createNativeBackend(c)),
  },
  xen: {
    kind: 'xen',
    description: 'Xen 3.1 direct paging with Linux 2.6.23\'s Xen port (docs/hypervisor.md)',
    unsupported: () => null,
    create: (c, o = {}) =>
      xenHandle(createXenBackend(c, { ...(o.xenP2m ? { p2m: o.xenP2m } : {}), ...(o.above4g !== undefined ? { above4g: o.above4g } : {}) })),
  },
  vmi: {
    kind: 'vmi',
    description: 'VMware VMI (Linux 2.6.21 vmi.c) over shadow page tables (docs/vmi.md)',
    unsupported: (c) => shadowMemLimit(c, 'VMI'),
    create: (c) => vmiHandle(createVmiBackend(c)),
  },
  lguest: {
    kind: 'lguest',
    description: 'lguest (Linux 2.6.23) over shadow page tables, 2-level paging only (docs/lguest.md)',
    unsupported: (c) => lguestUnsupported(c) ?? shadowMemLimit(c, 'lguest'),
    create: (c) => lguestHandle(createLguestBackend(c)),
  },
};

/** The registry entry of a kind. */
export function backendKind(kind: BackendKind): BackendKindInfo {
  return REGISTRY[kind];
}

/** A backend of `kind` for `config` (throws RangeError with the reason when the kind cannot run it). */
export function createBackend<K extends BackendKind>(kind: K, config: MachineConfig, opts: BackendOptions = {}): Backend<K> {
  const info = REGISTRY[kind];
  if (info === undefined) throw new RangeError(`unknown backend '${String(kind)}' (known: ${BACKEND_KINDS.join(', ')})`);
  const why = info.unsupported(config);
  if (why !== null) throw new RangeError(why);
  return info.create(config, opts) as Backend<K>;
}

/** Narrow a handle to one kind (the typed way to reach `ext`). */
export function isKind<K extends BackendKind>(b: Backend, kind: K): b is Backend<K> {
  return b.kind === kind;
}

/**
 * A handle on a copy of `h`'s backend, for machine snapshots
 * (emulator/snapshot.ts): `copy` copies the backend's object graph (the
 * handle itself is closures over the backend, so it is made anew).
 */
export function copyBackend(h: Backend, copy: <T>(x: T) => T): Backend {
  if (isKind(h, 'native')) return nativeHandle(copy(h.ext.backend));
  if (isKind(h, 'xen')) return xenHandle(copy(h.ext.backend));
  if (isKind(h, 'vmi')) return vmiHandle(copy(h.ext.backend));
  if (isKind(h, 'lguest')) return lguestHandle(copy(h.ext.backend));
  throw new RangeError(`unknown backend '${h.kind}'`);
}
