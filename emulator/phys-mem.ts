/**
 * Sparse physical memory with a 36-bit physical address space (MAXPHYADDR 36,
 * 64 GiB). Frames are 4 KiB Int32Arrays created on first write; a frame never
 * written reads as zero. Host memory therefore grows with the frames touched,
 * not with the address space.
 *
 * The frame directory is two-level (pfn bits 23:12, then 11:0) so finding a
 * frame is two array loads, which keeps the page walker fast.
 *
 * Snapshots (snapshot.ts) share frames copy-on-write: a copy shares every
 * frame buffer with the original, and both give up ownership of them; a
 * write (frameW) to a frame not owned copies it first. Reads never check.
 */
import { PAGE_SHIFT, PHYS_ADDR_LIMIT } from './paging-bits.js';
import { SNAPSHOT_COPY, type GraphCopier } from './snapshot.js';

const DIR_SHIFT = 12;
const DIR_SIZE = 1 << DIR_SHIFT;
const LEAF_MASK = DIR_SIZE - 1;
/** Number of 4 KiB frames in the 36-bit physical address space. */
export const MAX_PFN = 1 << 24;

export type Frame = Int32Array;

const ZERO_FRAME: Frame = new Int32Array(1024);

export class PhysMem {
  private dir: (Frame | undefined)[][] = new Array(DIR_SIZE);
  /**
   * Per leaf of `dir`: 1 where this memory owns the frame buffer (may write
   * it in place), 0 where it may be shared. No array (undefined) for a leaf
   * this memory does not own: the leaf itself is shared with a snapshot and
   * is copied (its frames still shared) before its first change.
   */
  private own: (Uint8Array | undefined)[] = new Array(DIR_SIZE);
  private touched = 0;
  private copied = 0;

  /** Forget all contents: every frame reads as zero again. */
  clear(): void {
    this.dir = new Array(DIR_SIZE);
    this.own = new Array(DIR_SIZE);
    this.touched = 0;
  }

  /**
   * The copy for a machine snapshot: shares every leaf of the frame
   * directory and every frame buffer, and neither side owns them any more
   * (each copies a leaf on its first change to it, and a frame on its first
   * write to it). Costs the directory's top level, not its leaves or frames
   * (a restored machine of an inject sweep writes a few leaves).
   */
  [SNAPSHOT_COPY](_c: GraphCopier): PhysMem {
    const c = Object.create(PhysMem.prototype) as PhysMem;
    c.dir = this.dir.slice();
    c.own = new Array(DIR_SIZE);
    this.own = new Array(DIR_SIZE);
    c.touched = this.touched;
    c.copied = 0;
    return c;
  }

  /** Leaf `hi` of the directory for a change, and what this memory owns of it: a shared leaf is copied first (its frames stay shared). */
  private ownLeaf(hi: number): Uint8Array {
    let o = this.own[hi];
    if (o === undefined) {
      const leaf = this.dir[hi];
      this.dir[hi] = leaf === undefined ? new Array(DIR_SIZE) : leaf.slice();
      o = this.own[hi] = new Uint8Array(DIR_SIZE);
    }
    return o;
  }

  /** Frames copied on a write because a snapshot shared them (since this memory was made). */
  get framesCopied(): number {
    return this.copied;
  }

  /** Touched frames whose buffer this memory does not own (possibly shared with a snapshot). */
  get framesShared(): number {
    let n = 0;
    for (let i = 0; i < DIR_SIZE; i++) {
      const leaf = this.dir[i];
      if (leaf === undefined) continue;
      const own = this.own[i];
      for (let j = 0; j < DIR_SIZE; j++) if (leaf[j] !== undefined && (own === undefined || own[j] === 0)) n++;
    }
    return n;
  }

  /** Every touched frame, in pfn order (digests of the whole memory in tests). */
  touchedPfns(): number[] {
    const out: number[] = [];
    for (let i = 0; i < DIR_SIZE; i++) {
      const leaf = this.dir[i];
      if (leaf === undefined) continue;
      for (let j = 0; j < DIR_SIZE; j++) if (leaf[j] !== undefined) out.push(i * DIR_SIZE + j);
    }
    return out;
  }

  /** True if this memory and `other` hold the very same buffer for frame `pfn` (tests of copy-on-write). */
  sharesFrame(other: PhysMem, pfn: number): boolean {
    const a = this.dir[pfn >>> DIR_SHIFT]?.[pfn & LEAF_MASK];
    return a !== undefined && a === other.dir[pfn >>> DIR_SHIFT]?.[pfn & LEAF_MASK];
  }

  /** Frames that have been written at least once (host memory in use). */
  get framesTouched(): number {
    return this.touched;
  }

  /** The frame for reading; a shared all-zero frame if never written. Do not write to it. */
  frame(pfn: number): Frame {
    const leaf = this.dir[pfn >>> DIR_SHIFT];
    if (leaf === undefined) return ZERO_FRAME;
    const f = leaf[pfn & LEAF_MASK];
    return f === undefined ? ZERO_FRAME : f;
  }

  /** The frame for writing, created zero-filled on first use. */
  frameW(pfn: number): Frame {
    if (pfn >>> 0 >= MAX_PFN) throw new RangeError(`pfn 0x${pfn.toString(16)} beyond MAXPHYADDR`);
    const hi = pfn >>> DIR_SHIFT;
    const lo = pfn & LEAF_MASK;
    const own = this.ownLeaf(hi);
    const leaf = this.dir[hi]!;
    let f = leaf[lo];
    if (f === undefined) {
      f = leaf[lo] = new Int32Array(1024);
      own[lo] = 1;
      this.touched++;
    } else if (own[lo] === 0) {
      // Shared with a snapshot: copy on this first write.
      f = leaf[lo] = f.slice();
      own[lo] = 1;
      this.copied++;
    }
    return f;
  }

  /**
   * True if frame `pfn` was written and this memory does not own its buffer:
   * the buffer is shared with a snapshot, and whoever writes the frame
   * copies it first, so the buffer `frame(pfn)` returns now never changes
   * (a checker may keep what it derived from it, keyed by the buffer).
   */
  isFrozen(pfn: number): boolean {
    const hi = pfn >>> DIR_SHIFT;
    const lo = pfn & LEAF_MASK;
    if (this.dir[hi]?.[lo] === undefined) return false;
    const own = this.own[hi];
    return own === undefined || own[lo] === 0;
  }

  /** True if the frame was ever written (and not discarded). */
  isTouched(pfn: number): boolean {
    const leaf = this.dir[pfn >>> DIR_SHIFT];
    return leaf !== undefined && leaf[pfn & LEAF_MASK] !== undefined;
  }

  /** Forget a frame's contents (it reads as zero again, host memory is returned). */
  discard(pfn: number): void {
    const hi = pfn >>> DIR_SHIFT;
    if (this.dir[hi]?.[pfn & LEAF_MASK] !== undefined) {
      this.ownLeaf(hi);
      this.dir[hi]![pfn & LEAF_MASK] = undefined;
      this.touched--;
    }
  }

  zeroFrame(pfn: number): void {
    if (this.isTouched(pfn)) this.frameW(pfn).fill(0);
  }

  copyFrame(dstPfn: number, srcPfn: number): void {
    if (!this.isTouched(srcPfn)) {
      this.zeroFrame(dstPfn);
      return;
    }
    this.frameW(dstPfn).set(this.frame(srcPfn));
  }

  // ---- word access within a frame (the walker's path) ----

  /** 32-bit word `word` (0..1023) of frame `pfn`, as uint32. */
  word(pfn: number, word: number): number {
    return this.frame(pfn)[word]! >>> 0;
  }

  setWord(pfn: number, word: number, value: number): void {
    this.frameW(pfn)[word] = value | 0;
  }

  // ---- byte-addressed access (pa is a number below 2^36) ----

  read8(pa: number): number {
    const pfn = Math.floor(pa / 4096);
    const off = pa - pfn * 4096;
    return (this.frame(pfn)[off >>> 2]! >>> ((off & 3) * 8)) & 0xff;
  }

  write8(pa: number, value: number): void {
    checkPa(pa, 1);
    const pfn = Math.floor(pa / 4096);
    const off = pa - pfn * 4096;
    const f = this.frameW(pfn);
    const sh = (off & 3) * 8;
    f[off >>> 2] = (f[off >>> 2]! & ~(0xff << sh)) | ((value & 0xff) << sh);
  }

  /** Little-endian 32-bit load, as uint32. Unaligned accesses are composed bytewise. */
  read32(pa: number): number {
    if ((pa & 3) === 0) {
      const pfn = Math.floor(pa / 4096);
      return this.frame(pfn)[(pa - pfn * 4096) >>> 2]! >>> 0;
    }
    return (
      (this.read8(pa) | (this.read8(pa + 1) << 8) | (this.read8(pa + 2) << 16) | (this.read8(pa + 3) << 24)) >>> 0
    );
  }

  write32(pa: number, value: number): void {
    checkPa(pa, 4);
    if ((pa & 3) === 0) {
      const pfn = Math.floor(pa / 4096);
      this.frameW(pfn)[(pa - pfn * 4096) >>> 2] = value | 0;
      return;
    }
    for (let i = 0; i < 4; i++) this.write8(pa + i, value >>> (i * 8));
  }

  read64(pa: number): bigint {
    return (BigInt(this.read32(pa + 4)) << 32n) | BigInt(this.read32(pa));
  }

  write64(pa: number, value: bigint): void {
    checkPa(pa, 8);
    this.write32(pa, Number(value & 0xffffffffn));
    this.write32(pa + 4, Number((value >> 32n) & 0xffffffffn));
  }
}

function checkPa(pa: number, len: number): void {
  if (!(pa >= 0 && pa + len <= PHYS_ADDR_LIMIT) || !Number.isInteger(pa)) {
    throw new RangeError(`physical address 0x${pa.toString(16)} outside the 36-bit physical address space`);
  }
}

export const FRAME_SHIFT = PAGE_SHIFT;
