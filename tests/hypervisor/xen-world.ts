/**
 * A small guest for the Xen tests, built only through ParavirtOps the way a
 * correct Linux 2.6.22 guest under Xen does it (like backend-suite.ts), plus
 * the helpers the hostile-guest tests need: a pre-patch pgd sharing the
 * kernel pmd, a snapshot of hypervisor and guest state, and expectRefusal.
 *
 * Layout (guest pfns): data frames D0.. (mapped RW in the kernel direct map
 * by the kernel pte page `kpt`), then page-table frames from `next`; all of
 * them below pfn 512, the range `kpt` covers.
 */
import * as assert from 'uvu/assert';
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../../emulator/paging-bits.js';
import type { MachineConfig, MmHandle } from '../../hypervisor/paravirt-ops.js';
import { checkXenInvariants, createXenBackend, XenBackend, XenRefusal, type XenOptions } from '../../hypervisor/xen/index.js';
import { checkXenInvariantsExact, xenInvariantsHold } from '../../hypervisor/xen/invariants.js';
import { suite } from '../harness.js';
import type { PteVal } from '../../hypervisor/types.js';

export const P = BigInt(PTE_P);
export const RW = BigInt(PTE_RW);
export const US = BigInt(PTE_US);
export const AD = BigInt(PTE_A | PTE_D);
export const PAGE_TABLE = P | RW | US | AD;
export const KERNPG_TABLE = P | RW | AD;
export const PAGE_KERNEL = P | RW | AD;
export const USER_RW = P | RW | US;

export const NDATA = 32;
export const UVA = 0x08048000;

export interface XW {
  b: XenBackend;
  pae: boolean;
  pageOffset: number;
  D0: number;
  next: number;
  base: number;
  basePmds: number[];
  kpt: number;
  /** Kernel pmd index (PAE) / pgd index (2-level) of kpt, and its pgd slot. */
  kSlot: number;
  kIdx: number;
  initMm: MmHandle;
}

import { lx } from '../../hypervisor/xen/reasons.js';
/** Xen's %lx form (no prefix), as its log lines print numbers. */
export const hx = lx;

export function cfg(pae: boolean, memBytes = 8 << 20): MachineConfig {
  return { pae, memBytes, cpu: 'core2', pageOffset: 0xc0000000, seed: 7 };
}

export function alloc(w: XW): number {
  const pfn = w.next++;
  w.b.mem.zeroPage(pfn);
  return pfn;
}

export const kva = (w: XW, pfn: number): number => (w.pageOffset + pfn * 4096) >>> 0;
export const esz = (w: XW): number => (w.pae ? 8 : 4);
export const mfn = (w: XW, pfn: number): number => w.b.domain.p2m.pfnToMfn(pfn);
export const pteIdx = (w: XW, va: number): number => (w.pae ? (va >>> 12) & 511 : (va >>> 12) & 1023);
export const pmdIdx = (va: number): number => (va >>> 21) & 511;
export const pgdIdx = (w: XW, va: number): number => (w.pae ? va >>> 30 : va >>> 22);
export const ptep = (w: XW, pt: number, va: number): number => pt * 4096 + esz(w) * pteIdx(w, va);
export const mkpte = (w: XW, pfn: number, flags: PteVal): PteVal => w.b.make_pte((BigInt(pfn) << 12n) | flags);
export const mkpmd = (w: XW, pfn: number, flags: PteVal): PteVal => w.b.make_pmd((BigInt(pfn) << 12n) | flags);
export const mkpgd = (w: XW, pfn: number, flags: PteVal): PteVal => w.b.make_pgd((BigInt(pfn) << 12n) | flags);

/** Address of the pde/pmd entry for `va` in a pgd (2-level) or its pmds (PAE). */
export function pdep(w: XW, pgd: number, pmds: number[], va: number): number {
  return w.pae ? pmds[pgdIdx(w, va)]! * 4096 + 8 * pmdIdx(va) : pgd * 4096 + 4 * pgdIdx(w, va);
}

/** paging_init: swapper_pg_dir with the direct map of the data frames, pinned and loaded. */
export function makeWorld(pae: boolean, opts: XenOptions = {}, memBytes = 8 << 20, firstTable = 0x120): XW {
  const b = createXenBackend(cfg(pae, memBytes), opts);
  const w: XW = {
    b,
    pae,
    pageOffset: 0xc0000000,
    D0: 0x100,
    next: firstTable,
    base: 0,
    basePmds: [],
    kpt: 0,
    kSlot: 0,
    kIdx: 0,
    initMm: { pgd: 0 },
  };
  w.base = alloc(w);
  b.pagetable_setup_start(w.base * 4096);
  if (pae) {
    for (let i = 0; i < 4; i++) {
      const pmd = alloc(w);
      b.alloc_pd(pmd);
      b.set_pud(w.base * 4096 + 8 * i, mkpgd(w, pmd, P));
      w.basePmds.push(pmd);
    }
  }
  w.kpt = alloc(w);
  b.alloc_pt(w.kpt);
  const kv = kva(w, w.D0);
  w.kSlot = pgdIdx(w, kv);
  w.kIdx = pae ? pmdIdx(kv) : pgdIdx(w, kv);
  b.set_pmd(pdep(w, w.base, w.basePmds, kv), mkpmd(w, w.kpt, KERNPG_TABLE));
  for (let i = 0; i < NDATA; i++) b.set_pte(ptep(w, w.kpt, kva(w, w.D0 + i)), mkpte(w, w.D0 + i, PAGE_KERNEL));
  b.pagetable_setup_done(w.base * 4096);
  b.write_cr3(w.base * 4096);
  w.initMm = { pgd: w.base * 4096 };
  return w;
}

/** pgd_alloc of the patched kernel: own pmds, kernel pmd a copy of swapper's (PAE); kernel entries cloned (2-level). */
export function pgdAlloc(w: XW, pgdPfn?: number): { pgd: number; pmds: number[] } {
  const b = w.b;
  const pgd = pgdPfn ?? alloc(w);
  if (pgdPfn !== undefined) b.mem.zeroPage(pgd);
  const pmds: number[] = [];
  if (w.pae) {
    for (let i = 0; i < 4; i++) {
      const pmd = alloc(w);
      b.alloc_pd(pmd);
      if (i === w.kSlot) b.set_pmd(pmd * 4096 + 8 * w.kIdx, mkpmd(w, w.kpt, KERNPG_TABLE));
      b.set_pud(pgd * 4096 + 8 * i, mkpgd(w, pmd, P));
      pmds.push(pmd);
    }
  } else {
    b.mem.write32(pgd * 4096 + 4 * w.kIdx, b.mem.read32(w.base * 4096 + 4 * w.kIdx));
    b.alloc_pd_clone(pgd, w.base, 768, 256);
  }
  return { pgd, pmds };
}

/** The pre-patch PAE pgd: own user pmds, but slot 3 is swapper's kernel pmd (SHARED_KERNEL_PMD). */
export function prepatchPgd(w: XW): { pgd: number; pmds: number[] } {
  const b = w.b;
  const pgd = alloc(w);
  const pmds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const pmd = alloc(w);
    b.alloc_pd(pmd);
    b.set_pud(pgd * 4096 + 8 * i, mkpgd(w, pmd, P));
    pmds.push(pmd);
  }
  b.set_pud(pgd * 4096 + 24, mkpgd(w, w.basePmds[3]!, P));
  pmds.push(w.basePmds[3]!);
  return { pgd, pmds };
}

/** A user mm: pgd_alloc, activate_mm (pin), load, one pte page mapping data frame D0+8 at UVA. */
export function userMm(w: XW): { pgd: number; pmds: number[]; pt: number; mm: MmHandle } {
  const b = w.b;
  const { pgd, pmds } = pgdAlloc(w);
  const mm = { pgd: pgd * 4096 };
  b.activate_mm(w.initMm, mm);
  b.write_cr3(pgd * 4096);
  const pt = alloc(w);
  b.alloc_pt(pt, mm);
  b.set_pmd(pdep(w, pgd, pmds, UVA), mkpmd(w, pt, PAGE_TABLE));
  b.set_pte_at(mm, UVA, ptep(w, pt, UVA), mkpte(w, w.D0 + 8, USER_RW));
  return { pgd, pmds, pt, mm };
}

/** Hypervisor and guest state: frame types/counts/pins, base pointer, CR3, and every touched guest frame's contents. */
export function state(w: XW): string {
  const d = w.b.domain;
  const frames = [...d.frames.snapshot()]
    .sort((a, b) => a[0] - b[0])
    .map(([m, f]) => `${hx(m)}:${f.type}:${f.count}:${f.pinned ? 'P' : ''}:${f.xenL2 ? 'X' : ''}`)
    .join(',');
  let h = 0;
  const mem = d.mmu.mem;
  for (let pfn = 0; pfn < w.b.mem.nrPages; pfn++) {
    const m = d.p2m.pfnToMfn(pfn);
    if (!mem.isTouched(m)) continue;
    const f = mem.frame(m);
    for (let i = 0; i < 1024; i++) h = (Math.imul(h, 31) + f[i]! + pfn) | 0;
  }
  return `${frames} base=${d.baseMfn} cr3=${d.mmu.cpu.cr3} pinned=${w.b.stats.pinned} mem=${h}`;
}

/** Run `fn`, expect a XenRefusal with exactly `reason`; returns it. */
export function expectRefusal(fn: () => unknown, reason: string | RegExp): XenRefusal {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof XenRefusal)) throw e;
    if (typeof reason === 'string') assert.is(e.reason, reason);
    else assert.match(e.reason, reason);
    return e;
  }
  assert.unreachable(`expected a refusal: ${String(reason)}`);
  throw new Error('unreachable');
}

/**
 * Xen's invariant check at the end of a test, with its two passes compared:
 * the fast pass says "hold" exactly when the exact pass finds nothing, and
 * the check returns the exact pass's messages (xen-invariants-fast.test.ts).
 */
export function checkBothPasses(b: XenBackend): string[] {
  const v = checkXenInvariants(b);
  const exact = checkXenInvariantsExact(b);
  assert.equal(v, exact, 'checkXenInvariants is the exact pass');
  assert.is(xenInvariantsHold(b), exact.length === 0, 'the fast pass agrees with the exact pass');
  return v;
}

/**
 * A suite whose every test checks Xen's invariants at its end (through
 * tests/harness.ts, so a broken invariant fails that test by name), and the
 * `world` maker whose backend it checks.
 */
export function checkedSuite(name: string): { s: ReturnType<typeof suite>; world: (pae: boolean) => XW } {
  let current: XenBackend | null = null;
  const s = suite(name);
  s.after.each(() => {
    const b = current;
    current = null;
    if (b === null) return;
    const v = checkBothPasses(b);
    if (v.length > 0) throw new Error(`Xen invariants violated:\n  ${v.join('\n  ')}`);
  });
  return {
    s,
    world: (pae) => {
      const w = makeWorld(pae);
      current = w.b;
      return w;
    },
  };
}
