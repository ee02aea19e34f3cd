/**
 * Is a prefix of a frame all zero? One native memcmp against a zero page.
 *
 * Why: Xen's whole-table loops (validating and releasing an L2/L1, the guest
 * port's pgd_walk) read every entry, and most of a process's user pmds are
 * empty. Such a loop over all-zero entries finds nothing present and takes
 * or drops no reference, so skipping it gives the same result; the model's
 * per-entry read charge is counted arithmetically by the callers, so the
 * modelled cost is unchanged. Host time only.
 */
import { Buffer } from 'node:buffer';

const ZERO = Buffer.alloc(4096);

/** True if the first `words` 32-bit words of `f` (a frame, `words` <= its length) are all zero. */
export function zeroPrefix(f: Int32Array, words: number): boolean {
  if (words === 0) return true;
  // A cheap probe first: a table whose first or last word is set is not
  // empty (the kernel pmds, most pte pages), and needs no buffer view.
  if (f[0] !== 0 || f[words - 1] !== 0) return false;
  const bytes = words * 4;
  return Buffer.from(f.buffer, f.byteOffset, bytes).compare(ZERO, 0, bytes) === 0;
}
