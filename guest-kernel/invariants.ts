/**
 * The guest kernel's invariant checker. What must hold between operations:
 *  - frames: the buddy lists and counters agree, free + allocated + reserved
 *    = total, and every allocated frame has an owner the kernel knows (slab,
 *    page table, user page, vmalloc page, pending df_list) — a frame nobody
 *    owns has leaked; a user page's reference count equals the ptes mapping it;
 *  - pgd_list: no cycle, back links consistent, each pgd once, and exactly the
 *    pgds the variant lists (patched: the live unshared pgds; seed/prepatch:
 *    every constructed object of the pgd cache);
 *  - kernel mappings: every live pgd agrees with init_mm where it must
 *    (shared: the same kernel pmd; unshared: its own copy, equal outside the
 *    vmalloc area, where an entry may be missing but never different);
 *  - user mappings: only anonymous pages or the zero page, never a kernel
 *    frame; a writable pte maps a page nobody else maps (copy-on-write);
 *  - low page 0 (reserved at boot) is untouched: a page-table update through
 *    an empty pgd entry lands there;
 *  - CR3 holds the active mm's pgd, and (probe vs. a walk of memory) the
 *    processor's view — under PAE the PDPTE registers — matches the pgd.
 */
import { ACCESS_READ } from '../emulator/paging-bits.js';
import type { KState, MmStruct } from './kstate.js';
import { hex } from '../emulator/hex.js';
import { PG_anon, PG_reserved } from './mm/page-alloc.js';
import { PGD_LIST_HEAD, pgdListEntries } from './mm/pgtable-common.js';
import { _PAGE_PSE, _PAGE_RW, entryPa, entryPfn, pgd_read, pmd_read, present, pte_read, readRaw } from './mm/pgtable-defs.js';

const MAX_REPORTS = 20;

export function checkInvariants(k: KState, tasks: { name: string; mm: MmStruct }[]): string[] {
  const out: string[] = [];
  const report = (s: string): void => {
    if (out.length < MAX_REPORTS) out.push(s);
  };
  const audit = k.pages.audit();
  if (audit !== null) report(`page allocator: ${audit}`);
  checkPgdList(k, report);
  checkKernelMappings(k, report);
  checkFrames(k, tasks, report);
  checkLowPage(k, report);
  checkCr3(k, report);
  for (const pfn of k.unbalancedReleasePd) {
    report(`unbalanced paravirt_release_pd of pfn ${hex(pfn)}: never announced with alloc_pd/alloc_pd_clone (pvmmu's guest debug check)`);
  }
  return out;
}

type Report = (s: string) => void;

function checkPgdList(k: KState, report: Report): void {
  const p = k.pages;
  const seen = new Set<number>();
  let prev = PGD_LIST_HEAD;
  for (let page = k.pgd_list; page >= 0; page = p.index[page]!) {
    if (seen.has(page)) {
      report(`pgd_list: pgd ${hex(page * 4096)} appears twice (cycle)`);
      return;
    }
    seen.add(page);
    if (p.private[page] !== prev) report(`pgd_list: pgd ${hex(page * 4096)} has a wrong back link`);
    prev = page;
  }
  const expected = new Set<number>();
  if (k.variant === 'patched') {
    if (!k.SHARED_KERNEL_PMD) for (const mm of k.mms) expected.add(mm.pgd / 4096);
  } else if (!k.SHARED_KERNEL_PMD) {
    // The slab constructor lists every object of a pgd slab, live or cached.
    for (const obj of k.pgd_cache.allObjects()) expected.add(Math.floor(obj / 4096));
  }
  for (const page of seen) if (!expected.has(page)) report(`pgd_list: ${hex(page * 4096)} is listed but is not a pgd that may be listed`);
  for (const page of expected) if (!seen.has(page)) report(`pgd_list: pgd ${hex(page * 4096)} is missing from the list`);
}

/** Compare every live pgd's kernel part with swapper_pg_dir. */
function checkKernelMappings(k: KState, report: Report): void {
  const L = k.L;
  const sw = k.swapper_pg_dir;
  const pmdOwners = new Map<number, number>();
  for (const mm of k.mms) {
    if (L.pae && k.SHARED_KERNEL_PMD) {
      for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
        if (readRaw(k, mm.pgd + i * 8) !== readRaw(k, sw + i * 8)) {
          report(`pgd ${hex(mm.pgd)} (${mm.owner}): kernel slot ${i} is not init_mm's shared pmd`);
        }
      }
      continue;
    }
    if (L.pae) {
      for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
        const e = pgd_read(k, mm.pgd + i * 8);
        if (!present(e)) {
          report(`pgd ${hex(mm.pgd)} (${mm.owner}): kernel slot ${i} is empty`);
          continue;
        }
        const pmd = entryPa(e);
        const pmd_k = entryPa(pgd_read(k, sw + i * 8));
        if (pmd === pmd_k) {
          report(`pgd ${hex(mm.pgd)} (${mm.owner}): kernel slot ${i} shares init_mm's pmd while unshared`);
          continue;
        }
        const other = pmdOwners.get(pmd);
        if (other !== undefined) report(`pgd ${hex(mm.pgd)}: kernel pmd ${hex(pmd)} also used by pgd ${hex(other)}`);
        pmdOwners.set(pmd, mm.pgd);
        for (let j = 0; j < 512; j++) {
          const va = i * L.PGDIR_SIZE + j * L.PMD_SIZE;
          compareEntry(k, report, mm, va, pmd + j * 8, pmd_k + j * 8);
        }
      }
    } else {
      for (let i = L.USER_PTRS_PER_PGD; i < 1024; i++) {
        compareEntry(k, report, mm, i * L.PGDIR_SIZE, mm.pgd + i * 4, sw + i * 4);
      }
    }
  }
}

function compareEntry(k: KState, report: Report, mm: MmStruct, va: number, p: number, p_k: number): void {
  const L = k.L;
  if (va >= L.HYPERVISOR_START) return;
  const v = readRaw(k, p);
  const v_k = readRaw(k, p_k);
  if (v === v_k) return;
  const inVmalloc = va + L.PMD_SIZE > L.VMALLOC_START && va < L.VMALLOC_END;
  if (inVmalloc && v === 0n) return; // not synced yet: vmalloc_fault will
  report(
    `pgd ${hex(mm.pgd)} (${mm.owner}): kernel entry for ${hex(va)} is ${hex(v)}, init_mm has ${hex(v_k)}` +
      (inVmalloc ? ' (vmalloc area)' : ''),
  );
}

/** Census of allocated frames and user page references. */
function checkFrames(k: KState, tasks: { name: string; mm: MmStruct }[], report: Report): void {
  const L = k.L;
  const p = k.pages;
  const owner = new Map<number, string>();
  const claim = (pfn: number, what: string): void => {
    const o = owner.get(pfn);
    if (o !== undefined && o !== what) report(`frame ${hex(pfn)} owned twice: ${o} and ${what}`);
    owner.set(pfn, what);
  };
  for (const c of k.slab.caches) for (const pfn of c.slabs.keys()) claim(pfn, `slab ${c.name}`);
  for (const a of k.vmlist) for (const pfn of a.pages) claim(pfn, `vmalloc ${hex(a.addr)}`);
  for (const pfn of k.df_list) claim(pfn, 'df_list');
  // init_mm's kernel pte pages allocated after boot (vmalloc, split large pages).
  const kernelPtePages = (pgd: number, what: string): void => {
    const first = L.USER_PTRS_PER_PGD;
    for (let i = first; i < L.PTRS_PER_PGD; i++) {
      const tables = L.pae ? entryPa(pgd_read(k, pgd + i * 8)) : -1;
      const n = L.pae ? 512 : 1;
      for (let j = 0; j < n; j++) {
        const e = L.pae ? pmd_read(k, tables + j * 8) : pmd_read(k, pgd + i * 4);
        if (!present(e) || (e & _PAGE_PSE) !== 0n) continue;
        const pfn = entryPfn(e);
        if ((p.flags[pfn]! & PG_reserved) === 0) claim(pfn, what);
      }
    }
  };
  kernelPtePages(k.swapper_pg_dir, 'kernel pte page');
  // User page tables and pages of every live mm.
  const refs = new Map<number, number>();
  const mmSeen = new Set<MmStruct>();
  for (const t of tasks) mmSeen.add(t.mm);
  for (const mm of k.mms) {
    if (!mmSeen.has(mm)) report(`mm of ${mm.owner} is alive but no process owns it`);
    if (L.pae && !k.SHARED_KERNEL_PMD) {
      for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
        const e = pgd_read(k, mm.pgd + i * 8);
        if (present(e)) claim(entryPfn(e), `kernel pmd of ${mm.owner}`);
      }
    }
    for (let i = 0; i < L.USER_PTRS_PER_PGD; i++) {
      let pmdBase: number;
      let n: number;
      if (L.pae) {
        const e = pgd_read(k, mm.pgd + i * 8);
        if (!present(e)) {
          report(`pgd ${hex(mm.pgd)} (${mm.owner}): user slot ${i} has no pmd`);
          continue;
        }
        pmdBase = entryPa(e);
        n = 512;
      } else {
        pmdBase = mm.pgd + i * 4;
        n = 1;
      }
      for (let j = 0; j < n; j++) {
        const pmd = pmd_read(k, pmdBase + j * L.ENTRY_SIZE);
        if (!present(pmd)) continue;
        const ptePfn = entryPfn(pmd);
        claim(ptePfn, `pte page of ${mm.owner}`);
        const va0 = i * L.PGDIR_SIZE + j * L.PMD_SIZE;
        for (let x = 0; x < L.PTRS_PER_PTE; x++) {
          const pte = pte_read(k, ptePfn * 4096 + x * L.ENTRY_SIZE);
          if (!present(pte)) continue;
          const pfn = entryPfn(pte);
          const va = va0 + x * 4096;
          if (pfn === k.empty_zero_page) {
            if ((pte & _PAGE_RW) !== 0n) report(`${mm.owner}: ZERO_PAGE mapped writable at ${hex(va)}`);
            continue;
          }
          if (pfn >= p.nrPages || (p.flags[pfn]! & PG_anon) === 0) {
            report(`${mm.owner}: user pte at ${hex(va)} maps frame ${hex(pfn)}, which is not a user page`);
            continue;
          }
          refs.set(pfn, (refs.get(pfn) ?? 0) + 1);
          if ((pte & _PAGE_RW) !== 0n && p._count[pfn]! > 1) {
            report(`${mm.owner}: writable pte at ${hex(va)} maps frame ${hex(pfn)} shared ${p._count[pfn]} ways (COW broken)`);
          }
        }
      }
    }
  }
  for (const [pfn, n] of refs) {
    claim(pfn, 'user page');
    if (p._count[pfn] !== n) report(`user frame ${hex(pfn)}: ${n} ptes map it, reference count ${p._count[pfn]}`);
  }
  // Every allocated block must be owned; every owned frame allocated.
  let leaked = 0;
  for (let pfn = 0; pfn < p.nrPages; pfn++) {
    const order = p.allocOrder[pfn]!;
    if (order < 0) continue;
    if (!owner.has(pfn)) {
      if (leaked++ < 5) report(`frame ${hex(pfn)} is allocated (by ${p.owner[pfn] ?? '?'}) but nothing owns it: leaked`);
    }
  }
  if (leaked > 5) report(`${leaked} leaked frames in all`);
  for (const [pfn, what] of owner) {
    if (p.allocOrder[pfn]! < 0) report(`frame ${hex(pfn)} is used as ${what} but is not allocated`);
  }
}

function checkLowPage(k: KState, report: Report): void {
  for (let off = 0; off < 4096; off += 4) {
    if (k.mem.read32(off) !== 0) {
      report(`low page 0 was written at offset ${hex(off)} (a page-table update through an empty or stale pgd entry)`);
      return;
    }
  }
}

/** Software walk of `pgd` (memory only): the guest-physical address for `va`, or -1. */
export function softWalk(k: KState, pgd: number, va: number): number {
  const L = k.L;
  const pgdp = pgd + Math.floor(va / L.PGDIR_SIZE) * L.ENTRY_SIZE;
  let pmdp = pgdp;
  if (L.pae) {
    const e = pgd_read(k, pgdp);
    if (!present(e)) return -1;
    pmdp = entryPa(e) + ((va >>> 21) & 511) * 8;
  }
  const pmd = pmd_read(k, pmdp);
  if (!present(pmd)) return -1;
  if ((pmd & _PAGE_PSE) !== 0n) return entryPa(pmd) + (va % L.PMD_SIZE);
  const pte = pte_read(k, entryPa(pmd) + (L.pae ? ((va >>> 12) & 511) * 8 : ((va >>> 12) & 1023) * 4));
  if (!present(pte)) return -1;
  return entryPa(pte) + (va & 4095);
}

/** CR3 is the active mm's pgd, and the processor's walk agrees with memory (PDPTEs under PAE). */
function checkCr3(k: KState, report: Report): void {
  const L = k.L;
  const cr3 = k.ops.read_cr3();
  if (cr3 !== k.active_mm.pgd) {
    report(`CR3 holds ${hex(cr3)} but the active mm (${k.active_mm.owner}) has pgd ${hex(k.active_mm.pgd)}`);
    return;
  }
  const samples: number[] = [L.PAGE_OFFSET];
  // Where the active mm has mappings: the start of each of its first vmas.
  for (const v of k.active_mm.vmas.slice(0, 8)) samples.push(v.start);
  for (let i = 0; i < L.PTRS_PER_PGD; i++) {
    const base = i * L.PGDIR_SIZE;
    if (base >= L.HYPERVISOR_START) continue;
    if (!L.pae) {
      if (i % 64 === 0) samples.push(base);
      continue;
    }
    samples.push(base);
    const e = pgd_read(k, cr3 + i * 8);
    if (!present(e)) continue;
    let found = 0;
    for (let j = 0; j < 512 && found < 4; j++) {
      const va = base + j * L.PMD_SIZE;
      if (va >= L.HYPERVISOR_START) break;
      if (present(pmd_read(k, entryPa(e) + j * 8))) {
        samples.push(va);
        found++;
      }
    }
  }
  for (const va of samples) {
    const soft = softWalk(k, cr3, va);
    const hw = k.ops.probe(va, ACCESS_READ, false);
    const hwPa = hw.ok ? hw.gpa : -1;
    if (soft !== hwPa) {
      report(
        `the processor's walk of ${hex(va)} gives ${hwPa < 0 ? 'a fault' : hex(hwPa)} but the pgd in memory gives ` +
          `${soft < 0 ? 'no mapping' : hex(soft)}` +
          (L.pae ? ' (stale PDPTE registers: pgd changed after the CR3 load)' : ''),
      );
    }
  }
}
