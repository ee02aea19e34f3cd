/**
 * The kernel's own work, charged where it is done (issue 9): what each
 * path costs beyond the page-table operations the backends already charge.
 *
 * How the layering is kept: the guest kernel never sees the CPU preset. It
 * reaches the processor only through the paravirt interface:
 *  - `ops.cpu_figure(name)`: the processor's cycles for one named piece of
 *    kernel work (the preset's table in emulator/cost-model.ts, each figure
 *    with its source: CALIBRATED from native lmbench, DERIVED or GUESS);
 *  - `ops.kernel_work(cycles, component)`: the processor executes that many
 *    cycles of kernel work (component `kernel` or `page_copy`); natively and
 *    under Xen alike, since the guest's own code runs on the processor;
 *  - `ops.syscall()`: int $0x80 in and out again, which differs by backend
 *    (native iret; Xen 2.6.23: the iret hypercall);
 *  - `ops.access(va, kind, false)`: the kernel's own memory accesses, through
 *    the modelled TLB, so the per-path footprint below costs walks when the
 *    kernel's mappings are not in the TLB (natively they are large, global
 *    pages that survive a CR3 write; a Xen PV guest has 4 KiB, non-global
 *    kernel mappings and refills them after every switch).
 *
 * The table KERNEL_PATHS is the guest's side: which figure each path costs
 * and which pages it touches. The footprints are GUESSES (no per-path
 * measurement exists): a plausible count of distinct 4 KiB pages of kernel
 * text and data (task_struct, mm_struct, vma and slab objects, run queue,
 * the kernel stack) each path touches, spread over the kernel image so that
 * paths share no page; docs/cost-model.md lists them.
 */
import { ACCESS_FETCH, ACCESS_READ, type AccessKind } from '../../emulator/paging-bits.js';
import type { KernelFigure } from '../../hypervisor/paravirt-ops.js';
import type { KState } from '../kstate.js';
import { KERNEL_IMAGE_PAGES, KERNEL_TEXT_PAGES, KERNEL_TEXT_START_PFN } from '../layout.js';

export type KernelPath = 'syscall' | 'fork' | 'exec' | 'exit' | 'schedule' | 'mmap' | 'munmap' | 'signal' | 'fault';

export interface KernelPathSpec {
  /** The preset figure of the path's fixed part (null: only its footprint). */
  figure: KernelFigure | null;
  /** Distinct kernel text pages the path executes (instruction fetches). */
  text: number;
  /** Distinct kernel data pages it reads or writes (its stack included). */
  data: number;
  /** The Linux 2.6.22 code the path stands for. */
  linux: string;
}

/** The per-path table (footprints: GUESS, see the header). */
export const KERNEL_PATHS: Readonly<Record<KernelPath, KernelPathSpec>> = {
  syscall: { figure: null, text: 1, data: 2, linux: 'arch/i386/kernel/entry.S system_call / syscall_exit (the task, the stack)' },
  fork: { figure: 'forkFixed', text: 8, data: 6, linux: 'kernel/fork.c do_fork, copy_process, dup_mm (apart from the page tables)' },
  exec: { figure: 'execFixed', text: 10, data: 6, linux: 'fs/exec.c do_execve, search_binary_handler, load_elf_binary (apart from exec_mmap)' },
  exit: { figure: 'exitFixed', text: 6, data: 4, linux: 'kernel/exit.c do_exit, exit_notify, release_task; the parent\'s wait4' },
  schedule: { figure: 'scheduleFixed', text: 2, data: 3, linux: 'kernel/sched.c schedule, context_switch, switch_to' },
  mmap: { figure: 'mmapFixed', text: 3, data: 2, linux: 'mm/mmap.c do_mmap_pgoff, get_unmapped_area, vma_link' },
  munmap: { figure: 'munmapFixed', text: 3, data: 2, linux: 'mm/mmap.c do_munmap, unmap_region' },
  signal: { figure: 'signalFixed', text: 3, data: 2, linux: 'kernel/signal.c force_sig_info, arch/i386/kernel/signal.c setup_frame, sys_sigreturn' },
  fault: { figure: 'faultFixed', text: 2, data: 2, linux: 'arch/i386/mm/fault.c do_page_fault, mm/memory.c handle_mm_fault' },
};

const PATH_ORDER = Object.keys(KERNEL_PATHS) as KernelPath[];
/** Text pages per path slot, data pages per path slot (the footprints' placement in the image). */
const TEXT_SLOT = 12;
const DATA_SLOT = 8;

/**
 * The figures this kernel's processor gives for its own work, read once at
 * boot through the interface, and the charging helpers. One per KState.
 */
export class KernelWork {
  private readonly fig: Record<KernelFigure, number>;
  /** Whether the footprints are touched (off only for the accounting tests). */
  footprints = true;

  constructor(private readonly k: KState) {
    const names: KernelFigure[] = [
      'adUpdate',
      'syscall',
      'clearPage',
      'copyPage',
      'pteCopy',
      'pteZap',
      'forkFixed',
      'execFixed',
      'exitFixed',
      'scheduleFixed',
      'mmapFixed',
      'munmapFixed',
      'signalFixed',
      'faultFixed',
    ];
    this.fig = {} as Record<KernelFigure, number>;
    for (const n of names) this.fig[n] = k.ops.cpu_figure(n);
  }

  /** A path's fixed part and its footprint. */
  path(p: KernelPath): void {
    const spec = KERNEL_PATHS[p];
    if (spec.figure !== null) {
      const c = this.fig[spec.figure];
      if (c > 0) this.k.ops.kernel_work(c, 'kernel');
    }
    if (this.footprints) this.touch(p, spec);
  }

  /** A system call: int $0x80 in and out (the backend's mechanism) and the entry path's footprint. */
  syscall(): void {
    this.k.ops.syscall();
    if (this.footprints) this.touch('syscall', KERNEL_PATHS.syscall);
  }

  /** clear_page × n. */
  clearPages(n: number): void {
    if (n > 0) this.k.ops.kernel_work(n * this.fig.clearPage, 'page_copy');
  }

  /** copy_page × n. */
  copyPages(n: number): void {
    if (n > 0) this.k.ops.kernel_work(n * this.fig.copyPage, 'page_copy');
  }

  /** memset/memcpy of part of a page: clear_page/copy_page pro rata (whole cycles). */
  clearBytes(bytes: number): void {
    const c = Math.round((bytes * this.fig.clearPage) / 4096);
    if (c > 0) this.k.ops.kernel_work(c, 'page_copy');
  }

  copyBytes(bytes: number): void {
    const c = Math.round((bytes * this.fig.copyPage) / 4096);
    if (c > 0) this.k.ops.kernel_work(c, 'page_copy');
  }

  /** copy_page_range's per-pte work for `n` present ptes. */
  pteCopies(n: number): void {
    if (n > 0) this.k.ops.kernel_work(n * this.fig.pteCopy, 'kernel');
  }

  /** `n` locked read-modify-writes of ptes by the kernel itself (ptep_set_wrprotect's clear_bit). */
  lockedPteOps(n: number): void {
    if (n > 0) this.k.ops.kernel_work(n * this.fig.adUpdate, 'kernel');
  }

  /** zap_pte_range's per-pte work for `n` present ptes. */
  pteZaps(n: number): void {
    if (n > 0) this.k.ops.kernel_work(n * this.fig.pteZap, 'kernel');
  }

  /** The path's kernel text and data pages, each touched once through the MMU. */
  private touch(p: KernelPath, spec: KernelPathSpec): void {
    const k = this.k;
    const slot = PATH_ORDER.indexOf(p);
    const base = k.L.PAGE_OFFSET + KERNEL_TEXT_START_PFN * 4096;
    const dataBase = base + KERNEL_TEXT_PAGES * 4096;
    for (let i = 0; i < spec.text; i++) this.access(base + (slot * TEXT_SLOT + i) * 4096, ACCESS_FETCH);
    for (let i = 0; i < spec.data; i++) this.access(dataBase + ((slot * DATA_SLOT + i) % (KERNEL_IMAGE_PAGES - KERNEL_TEXT_PAGES)) * 4096, ACCESS_READ);
  }

  private access(va: number, kind: AccessKind): void {
    const r = this.k.ops.access(va >>> 0, kind, false);
    if (!r.ok) this.k.BUG('kernel_work', `the kernel image at 0x${(va >>> 0).toString(16)} faults (error code 0x${r.errorCode.toString(16)})`);
  }
}
