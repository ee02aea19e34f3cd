/**
 * Planted defects for the fuzzer's tests (fuzz.test.ts and
 * fuzz-shrink-checkpoints.test.ts): each must make the checks fail.
 */
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import type { Mutation } from '../../tools/fuzz/differential.js';

/** A translation that gives the wrong frame for user accesses to the low user window. */
export const wrongPa: Mutation = {
  translate: (va, acc, r) => (r >= 0 && (acc & 1) !== 0 && va >>> 22 === 0x08000000 >>> 22 ? r ^ 0x1000 : r),
};

/** A native backend that loses the write-protect fork puts on the parent's ptes (ptep_set_wrprotect). */
export const lostWrprotect: Mutation = {
  ops: (ops: ParavirtOps, backend) => {
    if (backend !== 'native') return;
    // ptep_set_wrprotect is a clear_bit on pte_low followed by pte_update
    // (2.6.22 pgtable.h): this broken backend's pte_update puts RW back.
    ops.pte_update = (_mm, _va, ptep) => {
      const lo = ops.mem.read32(ptep);
      if ((lo & 1) !== 0) ops.mem.write32(ptep, lo | 2);
    };
  },
};
