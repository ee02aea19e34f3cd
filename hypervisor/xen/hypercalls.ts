/**
 * The hypercalls of Xen's direct-paging interface (xen/arch/x86/mm.c
 * do_mmu_update, do_mmuext_op, common/multicall.c do_multicall,
 * common/domain.c vm_assist, ptwr_do_page_fault / ptwr_emulated_update):
 *
 *  - mmu_update(reqs): each request is (ptr, val); the low bits of ptr are
 *    the command: MMU_NORMAL_PT_UPDATE writes the entry at machine address
 *    ptr after checking it against the rules of the frame's current type (a
 *    frame that is not a page table is simply written, if it can be typed
 *    writable); MMU_MACHPHYS_UPDATE sets m2p[ptr >> 12] = val. Stops at the
 *    first failure, reporting how many were done; the failing request
 *    changes nothing.
 *    The dispatch is on the frame's recorded type, even at count zero (Xen
 *    keeps it): an update into a former page table revalidates it first
 *    (get_page_type), and if that fails it is written as a plain frame
 *    (not_a_pt), as do_mmu_update does.
 *  - mmuext_op(ops): PIN_L1..L3 (validate and keep typed), UNPIN, NEW_BASEPTR
 *    (type the root, load it, drop the old one), TLB_FLUSH_LOCAL (queued as
 *    DOP_FLUSH_TLB: one flush at the end of the call, dropped by a
 *    NEW_BASEPTR after it), TLB_FLUSH_ALL, INVLPG_LOCAL/ALL. Stops at the first failure too. A pin of a level the
 *    hypervisor lacks (PIN_L4 on x86_32 PAE, PIN_L3/L4 on 2-level) is
 *    ignored and succeeds ("Ignore pinning of invalid paging levels").
 *  - update_va_mapping(va, val, flags) (do_update_va_mapping): the L1 entry
 *    mapping `va` in the current page tables (guest_map_l1e) is replaced
 *    through mod_l1_entry, then the TLB is flushed as `flags` say.
 *  - multicall(entries): runs each entry in order, writes each result back,
 *    and goes on after a failure; one ring transition for the whole batch.
 *  - vm_assist(cmd, type) (common/domain.c): any type up to MAX_VMASST_TYPE
 *    (3): 4gb_segments, 4gb_segments_notify, writable_pagetables,
 *    pae_extended_cr3.
 *  - ptwr: a guest store to a read-only mapped L1 traps into Xen, which
 *    emulates it as a validated L1 update (writable_pagetables assist); a
 *    4-byte store to the upper half of a PAE pte whose combined value fails
 *    get_page_from_l1e is accepted with P cleared ("fixing up invalid PAE
 *    PTE", ptwr_emulated_update).
 *  - every hypercall ends with process_deferred_ops (the TLB flush
 *    free_page_type queued).
 *  - fault injection (pvmmu inject --refuse-hypercall): `failMmuUpdateAt(k)`
 *    makes the k-th mmu_update call from now fail part-way: its first
 *    request is applied, the second is refused with -ENOMEM (a one-request
 *    call fails outright), as a hypervisor short of memory would.
 *
 * Every call charges the cost model (costs.ts): the round trip, then the work.
 */
import {
  EINVAL,
  ENOMEM,
  ENOSYS,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMUEXT_INVLPG_ALL,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_NAMES,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_UNPIN_TABLE,
  MAX_VMASST_TYPE,
  UVMF_ALL,
  UVMF_FLUSHTYPE_MASK,
  UVMF_INVLPG,
  UVMF_TLB_FLUSH,
  VMASST_CMD_DISABLE,
  VMASST_CMD_ENABLE,
} from './abi.js';
import { CC_HYPERCALL, CC_TRAP } from '../../emulator/cost-model.js';
import { hex } from '../../emulator/hex.js';
import { PTE_P, PTE_PS } from '../../emulator/paging-bits.js';
import { pteHi, pteLo, pteSplit } from '../types.js';
import type { XenDomain } from './domain.js';
import { PGT_L1, PGT_L2, PGT_L3, PGT_WRITABLE, type PageType } from './frame-table.js';
import { R, type XenRefusal } from './reasons.js';

export interface MmuUpdate {
  /** Machine address of the entry | command (low bits). */
  ptr: number;
  val: bigint;
}

export interface MmuextOp {
  cmd: number;
  /** PIN/UNPIN/NEW_BASEPTR: the machine frame. */
  mfn?: number;
  /** INVLPG_*: the linear address. */
  linearAddr?: number;
}

export type MulticallCall =
  | { op: 'mmu_update'; reqs: MmuUpdate[] }
  | { op: 'mmuext_op'; ops: MmuextOp[] }
  | { op: 'vm_assist'; cmd: number; type: number }
  | { op: 'update_va_mapping'; va: number; val: bigint; flags: number };

/** A multicall entry; `result` (and `refusal`) are written back. */
export type MulticallEntry = MulticallCall & { result?: number; refusal?: XenRefusal };

export interface HypercallResult {
  /** 0, or a negative errno. */
  rc: number;
  /** Requests/ops completed before the failure (all of them on success). */
  done: number;
  refusal?: XenRefusal;
}

export class XenHypercalls {
  /** mmu_update calls until the injected failure (0: none armed). */
  private mmuUpdateCountdown = 0;
  /** The injected mmu_update failure, once it happened. */
  injectedMmuUpdate: { k: number; done: number; of: number; inMulticall: boolean } | null = null;
  private mmuUpdateK = 0;

  constructor(readonly d: XenDomain) {}

  /** Make the k-th mmu_update call from now fail after its first request (k >= 1); null disarms. */
  failMmuUpdateAt(k: number | null): void {
    if (k === null) {
      this.mmuUpdateCountdown = 0;
      return;
    }
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`failMmuUpdateAt(${k}): k must be a positive integer`);
    this.mmuUpdateCountdown = this.mmuUpdateK = k;
    this.injectedMmuUpdate = null;
  }

  /** Enter Xen: count the hypercall and charge its round trip (or, inside a multicall, its dispatch). */
  private enter(kind: string, batched: boolean): void {
    this.d.stats.count('hypercalls', kind);
    this.d.charge(batched ? this.d.costs.multicallEntry : this.d.costs.hypercall, CC_HYPERCALL);
    this.d.memlog.length = 0;
  }

  // ---- mmu_update ----

  mmu_update(reqs: readonly MmuUpdate[], batched = false): HypercallResult {
    const at = this.d.mmu.cycles;
    const r = this.mmuUpdate(reqs, batched);
    if (this.d.stats.listener !== null) {
      const first = reqs[0];
      this.d.stats.slice('hypercall', 'mmu_update', at, {
        batch: reqs.length,
        done: r.done,
        rc: r.rc,
        ...(first !== undefined ? { mfn: hex(Math.floor(first.ptr / 4096)), ptr: hex(first.ptr) } : {}),
        ...(batched ? { in: 'multicall' } : {}),
      });
    }
    return r;
  }

  private mmuUpdate(reqs: readonly MmuUpdate[], batched: boolean): HypercallResult {
    this.enter('mmu_update', batched);
    const failAt = this.mmuUpdateCountdown > 0 && --this.mmuUpdateCountdown === 0 ? Math.min(1, reqs.length - 1) : -1;
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      if (i === failAt) {
        // Injected: this request and the rest are not applied.
        this.injectedMmuUpdate = { k: this.mmuUpdateK, done: i, of: reqs.length, inMulticall: batched };
        this.d.log(R.injectedMmuUpdate(i, reqs.length));
        return { rc: -ENOMEM, done: i, refusal: this.d.refuse('mmu_update', Math.floor(r.ptr / 4096)) };
      }
      const rc = this.oneUpdate(r.ptr, r.val);
      this.d.chargeWork();
      if (rc !== 0) {
        const mfn = Math.floor(r.ptr / 4096);
        this.d.processDeferredOps();
        return { rc, done: i, refusal: this.d.refuse('mmu_update', mfn) };
      }
    }
    this.d.processDeferredOps();
    return { rc: 0, done: reqs.length };
  }

  private oneUpdate(ptr: number, val: bigint): number {
    const d = this.d;
    const esz = d.pae ? 8 : 4;
    const cmd = ptr % esz;
    if (cmd === MMU_NORMAL_PT_UPDATE) {
      const mfn = Math.floor(ptr / 4096);
      if (!d.p2m.isGuestMfn(mfn)) {
        d.log(R.normalUpdateNoPage());
        return -EINVAL;
      }
      const idx = (ptr - mfn * 4096) / esz;
      const w = pteSplit(val);
      const lo = w[0]! | 0;
      const hi = d.pae ? w[1]! | 0 : 0;
      const rules = d.rules;
      // The recorded type, even at count zero (Xen keeps it).
      const type = d.frames.typeOf(mfn);
      if (type >= PGT_L1 && type <= PGT_L3) {
        const xenL2 = d.frames.isXenL2(mfn);
        if (d.frames.countOf(mfn) > 0) {
          // get_page_type / put_page_type around the update.
          d.frames.typeRefChanges += 2;
          return this.modEntry(type, mfn, idx, lo, hi, xenL2) ? 0 : -EINVAL;
        }
        // A former page table: get_page_type of its type revalidates it, the
        // update is checked against it, put_page_type releases it again.
        if (d.frames.getPageType(mfn, type, xenL2)) {
          const ok = this.modEntry(type, mfn, idx, lo, hi, xenL2);
          d.frames.putPageType(mfn);
          return ok ? 0 : -EINVAL;
        }
        // Revalidation failed (logged): do_mmu_update goes on to not_a_pt.
      }
      // not_a_pt: an ordinary write, if the frame can be typed writable.
      if (!d.frames.getPageType(mfn, PGT_WRITABLE)) return -EINVAL;
      rules.writeRaw(mfn, idx, lo, hi);
      d.frames.putPageType(mfn);
      return 0;
    }
    if (cmd === MMU_MACHPHYS_UPDATE) {
      const mfn = Math.floor(ptr / 4096);
      if (!d.p2m.isGuestMfn(mfn)) {
        d.log(R.machphysNoPage());
        return -EINVAL;
      }
      d.p2m.setM2p(mfn, Number(val));
      return 0;
    }
    d.log(R.invalidUpdateCmd(cmd));
    return -ENOSYS;
  }

  private modEntry(type: PageType, mfn: number, idx: number, lo: number, hi: number, xenL2: boolean): boolean {
    const rules = this.d.rules;
    if (type === PGT_L1) return rules.modL1Entry(mfn, idx, lo, hi);
    if (type === PGT_L2) return rules.modL2Entry(mfn, idx, lo, hi, xenL2);
    return this.d.pae ? rules.modL3Entry(mfn, idx, lo, hi) : false;
  }

  // ---- mmuext_op ----

  mmuext_op(ops: readonly MmuextOp[], batched = false): HypercallResult {
    const at = this.d.mmu.cycles;
    const r = this.mmuextOp(ops, batched);
    if (this.d.stats.listener !== null) {
      const first = ops[0];
      this.d.stats.slice('hypercall', 'mmuext_op', at, {
        batch: ops.length,
        done: r.done,
        rc: r.rc,
        cmd: ops.map((o) => MMUEXT_NAMES[o.cmd] ?? `cmd${o.cmd}`).join(','),
        ...(first?.mfn !== undefined ? { mfn: hex(first.mfn) } : {}),
        ...(first?.linearAddr !== undefined ? { va: hex(first.linearAddr) } : {}),
        ...(batched ? { in: 'multicall' } : {}),
      });
    }
    return r;
  }

  private mmuextOp(ops: readonly MmuextOp[], batched: boolean): HypercallResult {
    this.enter('mmuext_op', batched);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const name = MMUEXT_NAMES[op.cmd] ?? `cmd${op.cmd}`;
      this.d.stats.count('hypercalls', `mmuext_op:${name}`);
      const rc = this.oneExt(op);
      this.d.chargeWork();
      if (rc !== 0) {
        this.d.processDeferredOps();
        return { rc, done: i, refusal: this.d.refuse(`mmuext_op ${name}`, op.mfn) };
      }
    }
    this.d.processDeferredOps();
    return { rc: 0, done: ops.length };
  }

  private oneExt(op: MmuextOp): number {
    const d = this.d;
    const mfn = op.mfn ?? -1;
    switch (op.cmd) {
      case MMUEXT_PIN_L1_TABLE:
      case MMUEXT_PIN_L1_TABLE + 1:
      case MMUEXT_PIN_L1_TABLE + 2:
      case MMUEXT_PIN_L4_TABLE: {
        const level = op.cmd - MMUEXT_PIN_L1_TABLE + 1;
        const levels = d.pae ? 3 : 2;
        // do_mmuext_op: "Ignore pinning of invalid paging levels" (PIN_L4 on
        // any x86_32 guest, PIN_L3 on a 2-level hypervisor): nothing is
        // done and the op succeeds.
        if (level > levels) return 0;
        const type = level as PageType;
        if (!d.p2m.isGuestMfn(mfn)) {
          d.log(R.noPageRef(mfn));
          d.log(R.errorPinning(mfn));
          return -EINVAL;
        }
        if (!d.frames.getPageType(mfn, type)) {
          d.log(R.errorPinning(mfn));
          return -EINVAL;
        }
        if (d.frames.isPinned(mfn)) {
          d.frames.putPageType(mfn);
          d.log(R.alreadyPinned(mfn));
          return -EINVAL;
        }
        d.frames.setPinned(mfn, true);
        return 0;
      }
      case MMUEXT_UNPIN_TABLE:
        if (!d.p2m.isGuestMfn(mfn)) {
          d.log(R.badDomain(mfn));
          return -EINVAL;
        }
        if (!d.frames.isPinned(mfn)) {
          d.log(R.notPinned(mfn));
          return -EINVAL;
        }
        d.frames.setPinned(mfn, false);
        d.frames.putPageType(mfn);
        return 0;
      case MMUEXT_NEW_BASEPTR: {
        const ok = this.newBaseptr(mfn);
        // write_ptbase flushed: a TLB_FLUSH_LOCAL queued before it in this call is dropped.
        d.cancelLocalFlush();
        return ok ? 0 : -EINVAL;
      }
      case MMUEXT_TLB_FLUSH_LOCAL:
        // Queued (DOP_FLUSH_TLB): done once at the end of this hypercall.
        d.queueLocalFlush();
        return 0;
      case MMUEXT_TLB_FLUSH_ALL:
        // flush_tlb_mask of the domain's dirty cpus: with one vcpu, a local flush, at once.
        d.flushTlbLocal();
        return 0;
      case MMUEXT_INVLPG_LOCAL:
      case MMUEXT_INVLPG_ALL:
        d.mmu.invlpg((op.linearAddr ?? 0) >>> 0);
        return 0;
      default:
        d.log(R.invalidExtCmd(op.cmd));
        return -ENOSYS;
    }
  }

  /** new_guest_cr3: type the new root (validating it unless pinned), load it, drop the old. */
  private newBaseptr(mfn: number): boolean {
    const d = this.d;
    const root: PageType = d.pae ? PGT_L3 : PGT_L2;
    if (!d.p2m.isGuestMfn(mfn)) {
      d.log(R.noPageRef(mfn));
      d.log(R.newBaseptr(mfn));
      return false;
    }
    if (!d.frames.getPageType(mfn, root)) {
      d.log(R.newBaseptr(mfn));
      return false;
    }
    const old = d.baseMfn;
    d.baseMfn = mfn;
    d.loadCr3();
    if (old >= 0) d.frames.putPageType(old);
    return true;
  }

  // ---- multicall ----

  /** Run each entry in order, write back its result, go on after a failure. Returns the results. */
  multicall(entries: MulticallEntry[]): number[] {
    const at = this.d.mmu.cycles;
    const out = this.multicallBody(entries);
    if (this.d.stats.listener !== null) {
      this.d.stats.slice('hypercall', 'multicall', at, { batch: entries.length, calls: entries.map((e) => e.op).join(','), failed: out.filter((rc) => rc !== 0).length });
    }
    return out;
  }

  private multicallBody(entries: MulticallEntry[]): number[] {
    this.enter('multicall', false);
    const out: number[] = [];
    for (const e of entries) {
      let r: HypercallResult;
      if (e.op === 'mmu_update') r = this.mmu_update(e.reqs, true);
      else if (e.op === 'mmuext_op') r = this.mmuext_op(e.ops, true);
      else if (e.op === 'update_va_mapping') r = this.update_va_mapping(e.va, e.val, e.flags, true);
      else r = this.vm_assist(e.cmd, e.type, true);
      e.result = r.rc;
      if (r.refusal !== undefined) e.refusal = r.refusal;
      out.push(r.rc);
    }
    return out;
  }

  // ---- iret ----

  /**
   * HYPERVISOR_iret (do_iret, xen/arch/x86/x86_32/traps.c): the guest's
   * return from its kernel to user mode (Linux 2.6.23's Xen iret op is
   * this hypercall): the round trip, Xen restoring the frame.
   */
  iret(): void {
    const at = this.d.mmu.cycles;
    this.enter('iret', false);
    if (this.d.stats.listener !== null) this.d.stats.slice('hypercall', 'iret', at, {});
  }

  // ---- vm_assist ----

  vm_assist(cmd: number, type: number, batched = false): HypercallResult {
    this.enter('vm_assist', batched);
    // xen/common/domain.c vm_assist: -EINVAL above MAX_VMASST_TYPE, -ENOSYS
    // for an unknown command, silently in both cases.
    if (!Number.isInteger(type) || type < 0 || type > MAX_VMASST_TYPE) {
      this.d.log(R.vmAssistBadType(type));
      return { rc: -EINVAL, done: 0, refusal: this.d.refuse('vm_assist') };
    }
    if (cmd !== VMASST_CMD_ENABLE && cmd !== VMASST_CMD_DISABLE) {
      this.d.log(R.vmAssistBadCmd(cmd));
      return { rc: -ENOSYS, done: 0, refusal: this.d.refuse('vm_assist') };
    }
    if (cmd === VMASST_CMD_ENABLE) this.d.assists.add(type);
    else this.d.assists.delete(type);
    return { rc: 0, done: 1 };
  }

  // ---- update_va_mapping ----

  /**
   * do_update_va_mapping: replace the L1 entry that maps `va` in the
   * current page tables (guest_map_l1e walks them; no L1 gives -EINVAL
   * without a log line) through mod_l1_entry, process the deferred ops, then
   * flush as `flags` say (UVMF_TLB_FLUSH: the local TLB; UVMF_INVLPG: the
   * one entry; 0: nothing).
   */
  update_va_mapping(va: number, val: bigint, flags: number, batched = false): HypercallResult {
    const at = this.d.mmu.cycles;
    const r = this.updateVaMapping(va, val, flags, batched);
    if (this.d.stats.listener !== null) {
      this.d.stats.slice('hypercall', 'update_va_mapping', at, { va: hex(va), val: hex(val), flags, rc: r.rc, ...(batched ? { in: 'multicall' } : {}) });
    }
    return r;
  }

  private updateVaMapping(va: number, val: bigint, flags: number, batched: boolean): HypercallResult {
    this.enter('update_va_mapping', batched);
    const d = this.d;
    va >>>= 0;
    let rc = 0;
    const l1 = this.guestMapL1e(va);
    if (l1 < 0) {
      rc = -EINVAL; // silent: the caller builds R.uvmNoL1 if it BUGs on it
    } else {
      const w = pteSplit(val);
      const lo = w[0]! | 0;
      const hi = d.pae ? w[1]! | 0 : 0;
      if (!d.rules.modL1Entry(l1, this.uvmIdx, lo, hi)) rc = -EINVAL;
      d.chargeWork();
    }
    d.processDeferredOps();
    const how = flags & UVMF_FLUSHTYPE_MASK;
    if (how === UVMF_TLB_FLUSH) d.flushTlbLocal();
    else if (how === UVMF_INVLPG) d.mmu.invlpg(va);
    void UVMF_ALL; // one vcpu: ALL is the same as LOCAL
    if (rc !== 0) return l1 < 0 ? { rc, done: 0 } : { rc, done: 0, refusal: d.refuse('update_va_mapping', l1) };
    return { rc: 0, done: 1 };
  }

  private uvmIdx = 0;

  /** guest_map_l1e: the L1 frame mapping `va` in the current page tables (index left in uvmIdx), or -1. */
  private guestMapL1e(va: number): number {
    const d = this.d;
    if (d.baseMfn < 0 || va >= d.hole.start) return -1;
    const rules = d.rules;
    let l2 = d.baseMfn;
    if (d.pae) {
      const i3 = va >>> 30;
      const lo3 = rules.lo(l2, i3);
      if ((lo3 & PTE_P) === 0) return -1;
      l2 = rules.frameOf(lo3, rules.hi(l2, i3));
      const i2 = (va >>> 21) & 511;
      const lo2 = rules.lo(l2, i2);
      if ((lo2 & (PTE_P | PTE_PS)) !== PTE_P) return -1;
      const l1 = rules.frameOf(lo2, rules.hi(l2, i2));
      if (!d.p2m.isGuestMfn(l1)) return -1;
      this.uvmIdx = (va >>> 12) & 511;
      return l1;
    }
    const lo2 = rules.lo(l2, va >>> 22);
    if ((lo2 & (PTE_P | PTE_PS)) !== PTE_P) return -1;
    const l1 = rules.frameOf(lo2, 0);
    if (!d.p2m.isGuestMfn(l1)) return -1;
    this.uvmIdx = (va >>> 12) & 1023;
    return l1;
  }

  // ---- writable page tables ----

  /**
   * A guest store of `bytes` (4 or 8) at byte `off` of L1 frame `mfn`, which
   * is mapped read-only: the #PF goes to Xen, which emulates the store as a
   * validated L1 update (a 4-byte store to half of a PAE entry is combined
   * with the other half, as ptwr_emulated_update does). Throws the refusal.
   */
  ptwr(mfn: number, off: number, bytes: 4 | 8, value: bigint, va: number): void {
    const at = this.d.mmu.cycles;
    try {
      this.ptwrBody(mfn, off, bytes, value, va);
    } finally {
      if (this.d.stats.listener !== null) this.d.stats.slice('trap', 'ptwr_emulate', at, { mfn: hex(mfn), offset: hex(off), bytes, value: hex(value), va: hex(va) });
    }
  }

  private ptwrBody(mfn: number, off: number, bytes: 4 | 8, value: bigint, va: number): void {
    const d = this.d;
    d.stats.count('traps', 'ptwr_emulate');
    d.memlog.length = 0;
    d.charge(d.costs.ptwrTrap + d.costs.ptwrDecode, CC_TRAP);
    const esz = d.pae ? 8 : 4;
    const idx = Math.floor(off / esz);
    const within = off % esz;
    if (within + bytes > esz || off % bytes !== 0) {
      // "Only allow naturally-aligned stores within the original %cr2 page."
      d.log(R.ptwrBadAccess(va, va, bytes));
      throw d.refuse('ptwr_emulated_update', mfn);
    }
    let lo = d.rules.lo(mfn, idx);
    let hi = d.rules.hi(mfn, idx);
    if (bytes === 8) {
      lo = pteLo(value) | 0;
      hi = pteHi(value) | 0;
    } else if (within === 0) lo = pteLo(value) | 0;
    else hi = pteLo(value) | 0;
    let ok = d.rules.modL1Entry(mfn, idx, lo, hi);
    if (!ok && d.pae && bytes === 4 && within === 4 && (lo & PTE_P) !== 0) {
      // An upper-half write of a PAE pte: Xen assumes the two halves come in
      // the wrong order, clears P and lets the low half follow.
      d.log(R.ptwrFixup((hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0')));
      ok = d.rules.modL1Entry(mfn, idx, lo & ~PTE_P, hi);
    }
    d.chargeWork();
    if (!ok) {
      d.log(R.ptwrCouldNotGet());
      throw d.refuse('ptwr_emulated_update', mfn);
    }
  }
}
