/**
 * Guest port: hypercall batching, as Linux 2.6.23's arch/i386/xen/
 * multicalls.c and multicalls.h do it.
 *
 *  - a per-cpu buffer of MC_BATCH (32) multicall entries and MC_ARGS (64)
 *    u64 words of argument space (__xen_mc_entry): an entry that does not
 *    fit flushes the buffer first;
 *  - xen_mc_flush issues everything queued as ONE multicall hypercall, even a
 *    single entry, and BUGs if any entry failed (the refusal is thrown after
 *    the whole batch ran, as the hypercall runs every entry);
 *  - xen_mc_issue(mode) flushes unless the cpu is in one of the lazy modes
 *    `mode` names: the MMU ops pass PARAVIRT_LAZY_MMU (batched only in lazy
 *    MMU mode), write_cr3 PARAVIRT_LAZY_CPU, the pin/unpin walks 0 (always
 *    issued).
 *
 * Argument sizes (i386): struct mmu_update 16 bytes, struct mmuext_op 12
 * bytes; update_va_mapping takes its arguments in the entry itself (0).
 */
import type { LazyMode } from '../paravirt-ops.js';
import type { MulticallEntry, XenHypercalls } from './hypercalls.js';

export const MC_BATCH = 32;
/** u64 words of argument space: MC_BATCH * 16 / sizeof(u64). */
export const MC_ARGS = (MC_BATCH * 16) / 8;

/** Argument bytes of one entry (sizeof the structure the entry points at). */
export const MC_ARG_BYTES = { mmu_update: 16, mmuext_op: 12, update_va_mapping: 0, vm_assist: 0 } as const;

/** Which lazy modes an xen_mc_issue leaves the batch queued in. */
export type IssueMode = 'mmu' | 'cpu' | 0;

export class XenMulticalls {
  private entries: MulticallEntry[] = [];
  private argidx = 0;

  constructor(
    private readonly hv: XenHypercalls,
    /** The cpu's current lazy mode (paravirt_get_lazy_mode). */
    private readonly lazy: () => LazyMode,
  ) {}

  /** Entries queued and not yet issued. */
  get pending(): number {
    return this.entries.length;
  }

  /** __xen_mc_entry: queue `e` (flushing first if the buffer is full). */
  entry(e: MulticallEntry): void {
    const argspace = Math.ceil(MC_ARG_BYTES[e.op] / 8);
    if (this.entries.length === MC_BATCH || this.argidx + argspace > MC_ARGS) this.flush();
    this.entries.push(e);
    this.argidx += argspace;
  }

  /** xen_mc_issue(mode): flush unless the cpu is in lazy mode `mode`. */
  issue(mode: IssueMode): void {
    if (mode === 0 || this.lazy() !== mode) this.flush();
  }

  /** xen_mc_flush: one multicall for everything queued; BUG (the first refusal thrown) if an entry failed. */
  flush(): void {
    if (this.entries.length === 0) return;
    const entries = this.entries;
    this.entries = [];
    this.argidx = 0;
    this.hv.multicall(entries);
    for (const e of entries) if (e.refusal !== undefined) throw e.refusal;
  }
}
