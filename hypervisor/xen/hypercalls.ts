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
 *  - mmuext_op(ops): PIN_L1..L3 (validate and keep typed), UNPIN, NEW_BASEPTR
 *    (type the root, load it, drop the old one), TLB_FLUSH_LOCAL/ALL,
 *    INVLPG_LOCAL/ALL. Stops at the first failure too.
 *  - multicall(entries): runs each entry in order, writes each result back,
 *    and goes on after a failure; one ring transition for the whole batch.
 *  - vm_assist(cmd, type): writable_pagetables, pae_extended_cr3.
 *  - ptwr: a guest store to a read-only mapped L1 traps into Xen, which
 *    emulates it as a validated L1 update (writable_pagetables assist).
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
  VMASST_CMD_DISABLE,
  VMASST_CMD_ENABLE,
  VMASST_TYPE_PAE_EXTENDED_CR3,
  VMASST_TYPE_WRITABLE_PAGETABLES,
} from './abi.js';
import { CC_HYPERCALL, CC_TRAP } from '../../emulator/cost-model.js';
import { hex } from '../../emulator/hex.js';
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
  | { op: 'vm_assist'; cmd: number; type: number };

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
        return { rc, done: i, refusal: this.d.refuse('mmu_update', mfn) };
      }
    }
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
      const f = d.frames.get(mfn);
      const rules = d.rules;
      if (f !== undefined && f.count > 0 && f.type >= PGT_L1 && f.type <= PGT_L3) {
        // get_page_type / put_page_type around the update.
        d.frames.typeRefChanges += 2;
        let ok: boolean;
        if (f.type === PGT_L1) ok = rules.modL1Entry(mfn, idx, lo, hi);
        else if (f.type === PGT_L2) ok = rules.modL2Entry(mfn, idx, lo, hi, f.xenL2);
        else ok = d.pae ? rules.modL3Entry(mfn, idx, lo, hi) : false;
        return ok ? 0 : -EINVAL;
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
      if (rc !== 0) return { rc, done: i, refusal: this.d.refuse(`mmuext_op ${name}`, op.mfn) };
    }
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
        if (level > levels) {
          d.log(R.invalidPinLevel(MMUEXT_NAMES[op.cmd]!, levels));
          return -EINVAL;
        }
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
      case MMUEXT_NEW_BASEPTR:
        return this.newBaseptr(mfn) ? 0 : -EINVAL;
      case MMUEXT_TLB_FLUSH_LOCAL:
      case MMUEXT_TLB_FLUSH_ALL:
        // local_flush_tlb: reload CR3 (one vcpu: ALL is the same).
        if (d.mmu.writeCr3(d.mmu.cpu.cr3) === 'GP') throw new Error('Xen: #GP on CR3 reload');
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
    if (
      (type !== VMASST_TYPE_WRITABLE_PAGETABLES && type !== VMASST_TYPE_PAE_EXTENDED_CR3) ||
      (cmd !== VMASST_CMD_ENABLE && cmd !== VMASST_CMD_DISABLE)
    ) {
      this.d.log(R.vmAssistBadType(type));
      return { rc: -EINVAL, done: 0, refusal: this.d.refuse('vm_assist') };
    }
    if (cmd === VMASST_CMD_ENABLE) this.d.assists.add(type);
    else this.d.assists.delete(type);
    return { rc: 0, done: 1 };
  }

  // ---- writable page tables ----

  /**
   * A guest store of `bytes` (4 or 8) at byte `off` of L1 frame `mfn`, which
   * is mapped read-only: the #PF goes to Xen, which emulates the store as a
   * validated L1 update (a 4-byte store to half of a PAE entry is combined
   * with the other half, as ptwr_emulated_update does). Throws the refusal.
   */
  ptwr(mfn: number, off: number, bytes: 4 | 8, value: bigint): void {
    const at = this.d.mmu.cycles;
    try {
      this.ptwrBody(mfn, off, bytes, value);
    } finally {
      if (this.d.stats.listener !== null) this.d.stats.slice('trap', 'ptwr_emulate', at, { mfn: hex(mfn), offset: hex(off), bytes, value: hex(value) });
    }
  }

  private ptwrBody(mfn: number, off: number, bytes: 4 | 8, value: bigint): void {
    const d = this.d;
    d.stats.count('traps', 'ptwr_emulate');
    d.memlog.length = 0;
    d.charge(d.costs.ptwrTrap + d.costs.ptwrDecode, CC_TRAP);
    if (!d.writablePagetables) {
      d.log(R.ptwrNotEnabled(mfn));
      throw d.refuse('ptwr_emulated_update', mfn);
    }
    const esz = d.pae ? 8 : 4;
    const idx = Math.floor(off / esz);
    const within = off % esz;
    if (within + bytes > esz || within % 4 !== 0) {
      d.log(R.ptwrBadAccess(mfn * 4096 + off, bytes));
      throw d.refuse('ptwr_emulated_update', mfn);
    }
    let lo = d.rules.lo(mfn, idx);
    let hi = d.rules.hi(mfn, idx);
    if (bytes === 8) {
      lo = pteLo(value) | 0;
      hi = pteHi(value) | 0;
    } else if (within === 0) lo = pteLo(value) | 0;
    else hi = pteLo(value) | 0;
    const ok = d.rules.modL1Entry(mfn, idx, lo, hi);
    d.chargeWork();
    if (!ok) throw d.refuse('ptwr_emulated_update', mfn);
  }
}
