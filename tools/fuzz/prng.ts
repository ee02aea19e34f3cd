/**
 * The fuzzers' seeded PRNG (mulberry32): the same seed gives the same
 * stream on every run and host, so a failing seed can be replayed exactly.
 * Math.random is never used.
 */
export class Prng {
  private a: number;

  constructor(seed: number) {
    // Mix the seed so that neighbouring seeds start far apart.
    this.a = (Math.imul(seed >>> 0, 0x9e3779b1) ^ 0x5bd1e995) | 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let a = (this.a = (this.a + 0x6d2b79f5) | 0);
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** A uniform 32-bit unsigned value. */
  u32(): number {
    return (this.int(0x10000) * 0x10000 + this.int(0x10000)) >>> 0;
  }

  /** A uniform n-bit BigInt (n <= 64). */
  bits(n: number): bigint {
    let v = 0n;
    for (let i = 0; i < n; i += 16) v = (v << 16n) | BigInt(this.int(0x10000));
    return v & ((1n << BigInt(n)) - 1n);
  }

  /** Pick by weight: [[weight, value], ...]. */
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of table) total += w;
    let r = this.next() * total;
    for (const [w, v] of table) {
      if (r < w) return v;
      r -= w;
    }
    return table[table.length - 1]![1];
  }
}
