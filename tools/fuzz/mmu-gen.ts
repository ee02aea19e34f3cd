/**
 * The MMU-alone fuzzer: a seeded generator of random page-table images and
 * access sequences (2-level and PAE; PSE, NXE, WP, PGE; random rights,
 * accessed/dirty, global and ignored bits, reserved bits now and then;
 * user and supervisor reads, writes and fetches; pokes to entries followed
 * by INVLPG, CR3 reloads, CR0.WP and CR4.PGE changes), in the
 * `x86-mmu-vectors/1` format, checked against the independent reference
 * walker tools/vectors-gen/ref-walker.mjs (written from the SDM, no TLB).
 *
 * A case is compared only when it is portable (spec mmu-vectors.md): the
 * reference gives the same answer with no TLB and with an aggressive but
 * SDM-conforming TLB (so no result depends on a stale entry), and no
 * implementation-defined A bit of a non-leaf entry on a faulting walk is
 * observed (the generator sets those, as gen-random-suite.mjs does). Cases
 * that stay non-portable are counted, not compared. The emulator runs the
 * case with its TLB on, so a portable case checks the TLB-backed result
 * against the no-TLB reference at every access.
 *
 * A failing case is already a vector: it can be appended to
 * tests/vectors/fuzz-found.json with the reference results in
 * fuzz-found.expected.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Mmu } from '../../emulator/mmu.js';
import { parseVectors, RESULTS_FORMAT, VECTORS_FORMAT, type CaseResult, type StepResult, type VectorCase } from '../vectors/format.js';
import { compareResults, runCaseOn } from '../vectors/run-vectors.js';
import { Prng } from './prng.js';
import { hex } from '../../emulator/hex.js';

/** What this fuzzer uses of the reference walker (an untyped .mjs module). */
interface RefResult {
  name: string;
  steps: StepResult[];
  memory: CaseResult['memory'];
  notes: string[];
  nonLeafA0: bigint[];
}
interface RefWalker {
  runCase(c: RawCase, opts?: { tlb?: boolean }): RefResult;
  sameResult(a: RefResult, b: RefResult): boolean;
}

// dist/tools/fuzz/mmu-gen.js -> tools/vectors-gen/ref-walker.mjs (the source tree; not compiled).
const REF_URL = new URL('../../../tools/vectors-gen/ref-walker.mjs', import.meta.url);
const ref = (await import(REF_URL.href)) as RefWalker;

/** A case in its JSON form (hex strings), as written to a vector file. */
export interface RawCase {
  name: string;
  cpu: { cr0?: string; cr4?: string; efer?: string };
  memory: ({ pa: string; u64: string[] } | { pa: string; u32: string[] })[];
  steps: Record<string, unknown>[];
}

export interface MmuSeedOutcome {
  seed: number;
  raw: RawCase;
  portable: boolean;
  accesses: number;
  steps: number;
  diffs: string[];
  /** The reference's result, when portable (the expected result of a vector). */
  expected: CaseResult | null;
}

// ---- bits (SDM 4.3, 4.4) ----
const P = 1n, RW = 2n, US = 4n, PWT = 8n, PCD = 0x10n, A = 0x20n, D = 0x40n, PS = 0x80n, G = 0x100n, XD = 1n << 63n;
const CR0_PE = 1n, CR0_WP = 1n << 16n, CR0_PG = 1n << 31n;
const CR4_PSE = 1n << 4n, CR4_PAE = 1n << 5n, CR4_PGE = 1n << 7n;
const EFER_NXE = 1n << 11n;
const KINDS = ['read', 'write', 'fetch'] as const;
const bit = (n: number): bigint => 1n << BigInt(n);

interface CpuFlags {
  pae: boolean;
  wp: boolean;
  pse: boolean;
  pge: boolean;
  nxe: boolean;
}

/** One mapped path: the va, its PDE and PTE addresses, the page-table page. */
interface Path {
  va: bigint;
  pdeAddr: bigint;
  pteAddr: bigint;
  ptPage: bigint;
}

class CaseGen {
  private readonly used = new Set<bigint>();
  readonly memory = new Map<bigint, bigint>(); // entry address -> value (one word each)
  readonly steps: Record<string, unknown>[] = [];
  readonly touched: bigint[] = [];

  constructor(
    private readonly r: Prng,
    readonly cpu: CpuFlags,
  ) {}

  get width(): number {
    return this.cpu.pae ? 8 : 4;
  }

  /** A fresh page, never page 0, biased low, anywhere below 2^limit. */
  page(limitBits: number): bigint {
    for (;;) {
      const pfn = this.r.chance(0.6) ? 1n + this.r.bits(12) : this.r.bits(limitBits - 12);
      if (pfn === 0n || this.used.has(pfn)) continue;
      this.used.add(pfn);
      return pfn << 12n;
    }
  }

  private noise(): bigint {
    const r = this.r;
    return (r.chance(0.3) ? PWT : 0n) | (r.chance(0.3) ? PCD : 0n) | (r.chance(0.3) ? BigInt(r.int(8)) << 9n : 0n);
  }
  private ad(): bigint {
    return (this.r.chance(0.4) ? A : 0n) | (this.r.chance(0.3) ? D : 0n);
  }
  private rights(): bigint {
    return (this.r.chance(0.7) ? RW : 0n) | (this.r.chance(0.7) ? US : 0n);
  }
  private present(p: number): bigint {
    return this.r.chance(p) ? P : 0n;
  }
  private hiRsvd(): bigint {
    return bit(36 + this.r.int(27));
  }

  pde(ptPage: bigint): bigint {
    const r = this.r;
    const c = this.cpu;
    if (!c.pae) {
      const ps = r.chance(c.pse ? 0.35 : 0.1);
      let v = this.present(0.94) | this.rights() | this.ad() | this.noise() | (r.chance(0.2) ? G : 0n) | (ps ? PS : 0n);
      if (ps && c.pse) {
        v |= r.bits(10) << 22n;
        if (r.chance(0.3)) v |= r.bits(4) << 13n; // PSE-36
        if (r.chance(0.3)) v |= bit(12); // PAT
        if (r.chance(0.06)) v |= bit(17 + r.int(5)); // reserved 21:17
      } else v |= ptPage;
      return v;
    }
    const ps = r.chance(0.3);
    let v = this.present(0.94) | this.rights() | this.ad() | this.noise() | (r.chance(0.2) ? G : 0n) | (r.chance(0.25) ? XD : 0n) | (ps ? PS : 0n);
    if (ps) {
      v |= r.bits(15) << 21n;
      if (r.chance(0.3)) v |= bit(12);
      if (r.chance(0.05)) v |= bit(13 + r.int(8));
    } else v |= ptPage;
    if (r.chance(0.04)) v |= this.hiRsvd();
    return v;
  }

  pte(): bigint {
    const r = this.r;
    let v = this.present(0.9) | this.rights() | this.ad() | this.noise() | (r.chance(0.2) ? G : 0n) | (r.chance(0.15) ? 0x80n : 0n);
    if (!this.cpu.pae) return v | (r.bits(20) << 12n);
    if (r.chance(0.25)) v |= XD;
    v |= (r.chance(0.5) ? r.bits(20) : r.bits(24)) << 12n;
    if (r.chance(0.04)) v |= this.hiRsvd();
    return v;
  }

  pdpte(pd: bigint): bigint {
    let v = this.present(0.97) | this.noise() | pd;
    if (this.r.chance(0.02)) v |= this.r.pick([bit(1), bit(2), bit(5), bit(7), this.hiRsvd(), XD]);
    return v;
  }

  access(va: bigint): void {
    this.steps.push({ op: 'access', va: hex(va), kind: this.r.pick(KINDS), user: this.r.chance(0.5) });
    this.touched.push(va);
  }

  poke(addr: bigint, v: bigint): void {
    this.steps.push({ op: 'poke', pa: hex(addr), [this.cpu.pae ? 'u64' : 'u32']: hex(v) });
  }
}

/** Generate one random case for a seed. */
export function generateMmuCase(seed: number): RawCase {
  const r = new Prng(seed ^ 0x4d4d5531);
  const pae = r.chance(0.5);
  const cpu: CpuFlags = { pae, wp: r.chance(0.5), pse: r.chance(pae ? 0.3 : 0.6), pge: r.chance(0.4), nxe: r.chance(pae ? 0.6 : 0.15) };
  const g = new CaseGen(r, cpu);
  const W = BigInt(g.width);
  const limit = pae ? 36 : 32;
  // The top-level table: the PD (2-level) or a PDPT (PAE; 32-byte aligned, below 4 GiB).
  let cr3: bigint;
  const pds: bigint[] = [];
  if (pae) {
    cr3 = g.page(32) + BigInt(r.int(128)) * 32n;
    for (let i = 0; i < 4; i++) {
      const pd = g.page(limit);
      pds.push(pd);
      g.memory.set(cr3 + 8n * BigInt(i), r.chance(0.85) ? g.pdpte(pd) : r.chance(0.7) ? 0n : r.bits(64) & ~P);
    }
  } else {
    cr3 = g.page(32);
    pds.push(cr3);
  }
  const pdOf = (va: bigint): bigint => (pae ? pds[Number(va >> 30n)]! : cr3);
  const pdeIndex = (va: bigint): bigint => (pae ? (va >> 21n) & 0x1ffn : va >> 22n);
  const pteIndex = (va: bigint): bigint => (pae ? (va >> 12n) & 0x1ffn : (va >> 12n) & 0x3ffn);
  const ptOfPde = new Map<bigint, bigint>(); // pde address -> pt page
  const paths: Path[] = [];
  const mapVa = (va: bigint): Path => {
    const pdeAddr = pdOf(va) + W * pdeIndex(va);
    let pt = ptOfPde.get(pdeAddr);
    if (pt === undefined) {
      pt = g.page(limit);
      ptOfPde.set(pdeAddr, pt);
      g.memory.set(pdeAddr, g.pde(pt));
    }
    const pteAddr = pt + W * pteIndex(va);
    if (!g.memory.has(pteAddr)) g.memory.set(pteAddr, g.pte());
    const p = { va, pdeAddr, pteAddr, ptPage: pt };
    paths.push(p);
    return p;
  };
  // 1..6 mapped pages: some neighbours under one PDE, some far apart.
  const n = r.range(1, 6);
  const base = r.bits(32) & ~0xfffn;
  for (let i = 0; i < n; i++) {
    let va: bigint;
    if (i > 0 && r.chance(0.5)) va = (paths[r.int(paths.length)]!.va & ~(pae ? 0x1fffffn : 0x3fffffn)) | (r.bits(pae ? 21 : 22) & ~0xfffn);
    else if (i > 0 && r.chance(0.3)) va = (base + BigInt(i) * 0x1000n) & 0xfffff000n;
    else va = r.bits(32) & ~0xfffn;
    mapVa(va);
  }
  const low = r.chance(0.3) ? BigInt(r.int(pae ? 0x20 : 0x1000)) & (pae ? 0x18n : 0xfffn) : 0n;
  g.steps.push({ op: 'cr3', value: hex(cr3 | low) });
  const nsteps = r.range(3, 16);
  let cr0 = CR0_PE | CR0_PG | (cpu.wp ? CR0_WP : 0n);
  let cr4 = (cpu.pse ? CR4_PSE : 0n) | (pae ? CR4_PAE : 0n) | (cpu.pge ? CR4_PGE : 0n);
  for (let i = 0; i < nsteps; i++) {
    const op = r.weighted<string>([
      [10, 'access'],
      [2, 'access-offpage'],
      [3, 'poke-pte'],
      [1, 'poke-pde'],
      [1, 'cr3'],
      [1, 'cr0-wp'],
      [1, 'cr4-pge'],
    ]);
    const p = r.pick(paths);
    const offset = (va: bigint): bigint => va | r.bits(12);
    switch (op) {
      case 'access':
        g.access(offset(p.va));
        break;
      case 'access-offpage':
        g.access(r.bits(32));
        break;
      case 'poke-pte':
      case 'poke-pde': {
        const pde = op === 'poke-pde';
        const addr = pde ? p.pdeAddr : p.pteAddr;
        g.poke(addr, pde ? g.pde(p.ptPage) : g.pte());
        // INVLPG every page that may hold a translation through this entry.
        // (A poke without it is not portable even when the reference's two
        // modes agree: its aggressive TLB is unified, while a processor, and
        // this emulator, may keep a stale ITLB entry after a data access
        // refilled the DTLB; 27 false alarms in the first campaign.)
        const under = pde ? g.touched.filter((v) => pdOf(v) + W * pdeIndex(v) === p.pdeAddr) : g.touched.filter((v) => v >> 12n === p.va >> 12n);
        const vas = new Set([p.va, ...under.map((v) => v & ~0xfffn)]);
        for (const v of vas) g.steps.push({ op: 'invlpg', va: hex(v | (r.chance(0.3) ? r.bits(12) : 0n)) });
        if (r.chance(0.7)) g.access(offset(p.va));
        break;
      }
      case 'cr3':
        g.steps.push({ op: 'cr3', value: hex(cr3 | low) });
        break;
      case 'cr0-wp':
        cr0 ^= CR0_WP;
        g.steps.push({ op: 'cr0', value: hex(cr0) });
        break;
      case 'cr4-pge':
        cr4 ^= CR4_PGE;
        g.steps.push({ op: 'cr4', value: hex(cr4) });
        break;
    }
  }
  const flags = [pae ? 'pae' : '2l', cpu.pse && 'pse', cpu.nxe && 'nxe', cpu.wp && 'wp', cpu.pge && 'pge'].filter(Boolean).join('-');
  const cpuBlock: RawCase['cpu'] = { cr0: hex(CR0_PE | CR0_PG | (cpu.wp ? CR0_WP : 0n)) };
  if (cpu.nxe) cpuBlock.efer = hex(EFER_NXE);
  const cr4Init = (cpu.pse ? CR4_PSE : 0n) | (pae ? CR4_PAE : 0n) | (cpu.pge ? CR4_PGE : 0n);
  if (cr4Init) cpuBlock.cr4 = hex(cr4Init);
  const memory = [...g.memory].map(([pa, v]) => (pae ? { pa: hex(pa), u64: [hex(v)] } : { pa: hex(pa), u32: [hex(v)] }));
  return { name: `fuzz-${seed}-${flags}`, cpu: cpuBlock, memory, steps: g.steps };
}

/** Set A in every region word and poke at `addr` (a non-leaf entry), as gen-random-suite.mjs does. */
function setAccessed(c: RawCase, addr: bigint): void {
  for (const reg of c.memory) {
    const w = 'u64' in reg ? 8n : 4n;
    const list = 'u64' in reg ? reg.u64 : reg.u32;
    list.forEach((v, j) => {
      if (BigInt(reg.pa) + w * BigInt(j) === addr) list[j] = hex(BigInt(v) | A);
    });
  }
  for (const s of c.steps) {
    if (s['op'] === 'poke' && BigInt(s['pa'] as string) === addr) {
      if (s['u64'] !== undefined) s['u64'] = hex(BigInt(s['u64'] as string) | A);
      else s['u32'] = hex(BigInt(s['u32'] as string) | A);
    }
  }
}

/** Run one parsed case on a fresh emulated MMU (the vector runner's code), `mutate` applied to it first. */
export function runOnMmu(c: VectorCase, cpu = 'core2', mutate?: (mmu: Mmu) => void): CaseResult {
  const mmu = new Mmu({ cpu });
  mutate?.(mmu);
  return runCaseOn(mmu, c).result;
}

/** Generate and check one seed against the reference walker. */
export function checkMmuSeed(seed: number, mutate?: (mmu: Mmu) => void): MmuSeedOutcome {
  const raw = generateMmuCase(seed);
  let refRes = ref.runCase(raw);
  for (let k = 0; k < 4 && refRes.nonLeafA0.length; k++) {
    for (const a of refRes.nonLeafA0) setAccessed(raw, a);
    refRes = ref.runCase(raw);
  }
  const agg = ref.runCase(raw, { tlb: true });
  const accesses = raw.steps.filter((s) => s['op'] === 'access').length;
  const portable = refRes.notes.length === 0 && ref.sameResult(refRes, agg);
  if (!portable) return { seed, raw, portable, accesses, steps: raw.steps.length, diffs: [], expected: null };
  const parsed = parseVectors(`fuzz-${seed}`, { format: VECTORS_FORMAT, cases: [raw] })[0]!;
  const got = runOnMmu(parsed, 'core2', mutate);
  const expected: CaseResult = { name: raw.name, steps: refRes.steps, memory: refRes.memory };
  const diffs = compareResults({ format: RESULTS_FORMAT, cases: [got] }, { format: RESULTS_FORMAT, cases: [expected] });
  return { seed, raw, portable, accesses, steps: raw.steps.length, diffs, expected };
}

/**
 * Append failing cases to a vector file and its expected-results file
 * (tests/vectors/fuzz-found.json / fuzz-found.expected.json), replacing a
 * case of the same name.
 */
export function saveVectors(vectorsPath: string, expectedPath: string, found: MmuSeedOutcome[]): void {
  const load = (p: string, format: string): { format: string; cases: { name: string }[] } =>
    existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : { format, cases: [] };
  const v = load(vectorsPath, VECTORS_FORMAT);
  const e = load(expectedPath, RESULTS_FORMAT);
  for (const f of found) {
    if (!f.expected) continue;
    v.cases = v.cases.filter((c) => c.name !== f.raw.name).concat([f.raw]);
    e.cases = e.cases.filter((c) => c.name !== f.raw.name).concat([f.expected]);
  }
  mkdirSync(dirname(vectorsPath), { recursive: true });
  const write = (p: string, doc: { format: string; cases: unknown[] }): void =>
    writeFileSync(p, `{\n  "format": "${doc.format}",\n  "cases": [\n${doc.cases.map((c) => '    ' + JSON.stringify(c)).join(',\n')}\n  ]\n}\n`);
  write(vectorsPath, v);
  write(expectedPath, e);
}
