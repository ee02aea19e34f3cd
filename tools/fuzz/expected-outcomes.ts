/**
 * Expected outcomes of the differential fuzzer: a run that stops on one
 * backend for a reason that is the real behaviour of the kernel and
 * hypervisor modelled, caused by the generated script, not by the model.
 *
 * Only one such outcome exists: the script broke change_page_attr's caller
 * contract. Linux 2.6.22 arch/i386/mm/pageattr.c (change_page_attr's header
 * comment) leaves it to the caller to own the pages it changes and to see
 * that no conflicting mapping exists; real callers (AGP's
 * map_page_into_agp, module text) change only pages they allocated. The
 * workload generator's `cpa` picks direct-map pages at random above 16 MiB,
 * so a changed page can be (or become) a page the kernel itself uses.
 * Under Xen (Linux 2.6.23 arch/i386/xen, Xen 3.1.0) that has two visible
 * results, both real:
 *
 *  1. `cpa … ro` on a free page that the kernel then allocates (a pte page,
 *     a copied or zeroed user page): the kernel's store through the
 *     read-only direct-map pte faults. The 2.6.23 Xen guest has no large
 *     pages (enlighten.c xen_cpuid masks PSE), so the pte is a 4 KiB one;
 *     the frame is not a live L1, so Xen 3.1.0 ptwr_do_page_fault bails and
 *     the #PF is bounced to the guest, whose do_page_fault has no fixup for
 *     a supervisor write fault on a kernel address: an oops. (On real
 *     hardware a native kernel oopses too, since head.S sets CR0.WP; the
 *     native, VMI and lguest backends of pvmmu do not model a supervisor
 *     store through a read-only direct-map pte, so they complete.)
 *  2. `cpa … rw|nx|x` (a writable PAGE_KERNEL or PAGE_KERNEL_EXEC) on a page
 *     Xen has typed as a page table: the direct-map pte store is trapped
 *     (xen_set_pte_atomic is a plain 64-bit store into a read-only L1) and
 *     Xen 3.1.0 mm.c ptwr_emulated_update -> get_page_from_l1e ->
 *     get_page_and_type(PGT_writable_page) fails ("Bad type (saw lN != exp
 *     writable)"): a page table is never mapped writable.
 *
 * The classification is narrow on purpose: the failure must be exactly one
 * of these two and must be traceable to a `cpa` of the script; anything
 * else stays a failure.
 *
 * A second expected outcome is lguest's (Linux 2.6.23, drivers/lguest):
 * its lguest_init leaves pte_update/pte_update_defer unhooked (later lguest
 * hooks them as lguest_pte_update, an LHCALL_SET_PTE), so a pte changed in
 * place (ptep_set_wrprotect in fork's copy_page_range, ptep_get_and_clear
 * in munmap) in an mm that is not loaded is never told to the host, and the
 * guest's flush_tlb_mm flushes only the active mm: a cached shadow of that
 * mm keeps the old entry, and LHCALL_NEW_PGTABLE reuses it. Linux runs
 * those paths in the calling process, so on a real 2.6.23 guest the mm is
 * the loaded one; the workload language can fork or unmap a process that
 * is not current. The classification (lguestUnhookedUpdate) needs the
 * lguest backend to have seen such an update of a cached, unloaded shadow,
 * lguest to be the only backend that failed or disagreed, and every other
 * backend to have run clean and agreed.
 */
import type { Script, Stmt } from '../workload/ast.js';
import type { RunFailure } from '../workload/interpreter.js';

const PAGE = 4096;
const STORE_RE = /a store through the read-only direct-map pte of pfn 0x([0-9a-f]+)/;
const BAD_TYPE_RE = /Bad type \(saw l[1-4] != exp writable\) for mfn [0-9a-f]+ \(pfn ([0-9a-f]+)\)/;

function* cpaStatements(body: Stmt[]): Generator<Stmt & { op: 'cpa' }> {
  for (const s of body) {
    if (s.op === 'cpa') yield s;
    else if ('body' in s && Array.isArray(s.body)) yield* cpaStatements(s.body);
  }
}

/**
 * Why a run's failure is the expected outcome of a `cpa` that broke
 * change_page_attr's caller contract (see above), or null when it is not.
 */
export function cpaContractBreach(script: Script, failure: RunFailure): string | null {
  const cpas = [...cpaStatements(script.body)];
  if (failure.kind === 'bug') {
    const m = STORE_RE.exec(failure.message);
    if (!m) return null;
    const pfn = parseInt(m[1]!, 16);
    // Under Xen the direct map has 4 KiB ptes only, each cpa sets the pte to
    // exactly its protection: the last cpa of the pfn before the failing
    // line must be the `ro` (one restored since does not count).
    const covering = cpas.filter((c) => c.line < failure.line && pfn >= c.phys / PAGE && pfn < c.phys / PAGE + c.pages);
    const by = covering.reduce<(typeof covering)[number] | null>((last, c) => (last === null || c.line > last.line ? c : last), null);
    if (by === null || by.attr !== 'ro') return null;
    return `cpa contract: line ${by.line} made pfn 0x${pfn.toString(16)} read-only, then the kernel stored to it (an oops under Xen, as on hardware with CR0.WP)`;
  }
  if (failure.kind === 'refusal') {
    const at = cpas.find((c) => c.line === failure.line);
    if (!at || at.attr === 'ro') return null;
    // The frame Xen found typed as a page table must be one this cpa changes.
    const typed = (failure.refusal?.log ?? []).map((l) => BAD_TYPE_RE.exec(l)).find((m) => m !== null);
    if (!typed) return null;
    const pfn = parseInt(typed[1]!, 16);
    if (pfn < at.phys / PAGE || pfn >= at.phys / PAGE + at.pages) return null;
    return `cpa contract: line ${at.line} asked a writable direct-map pte for a page Xen has typed as a page table (ptwr_emulated_update refuses it)`;
  }
  return null;
}

/**
 * Why an lguest-only failure is the expected outcome of 2.6.23's unhooked
 * pte_update (see above), or null. `staleUpdates`: the lguest backend's count of
 * in-place pte changes in an mm whose cached shadow was not loaded;
 * `othersClean`: every other backend ran to the end with no failure and
 * they agree with one another.
 */
export function lguestUnhookedUpdate(staleUpdates: number, othersClean: boolean): string | null {
  if (staleUpdates === 0 || !othersClean) return null;
  return `lguest 2.6.23: ${staleUpdates} pte change(s) in place in an mm that was not loaded, which 2.6.23's lguest does not tell the host (pte_update unhooked; later lguest hooks it as lguest_pte_update), so its cached shadow kept the old entry`;
}
