#!/usr/bin/env node
// Seeded random x86 paging vectors with expected results from the reference
// walker in ref-walker.mjs (written from the SDM, independent of the emulator).
//
//   node tools/vectors-gen/gen-random-suite.mjs [--count N] [--seed S]
//
// writes tests/vectors/random-suite.json and random-suite.expected.json.
// Deterministic: the same seed and count always give byte-identical files.
//
// Every case is small (one PD/PT path, a few single-word regions, 2-5 steps)
// and is kept only if it is portable:
//   - the walker gives the same answer with no TLB and with an aggressive TLB
//     (so no result depends on cached translations: a page is touched again
//     only with unchanged memory, or after poke + INVLPG);
//   - after a fault, every non-leaf entry on the faulting walk already has
//     A = 1 in memory (the generator sets it when needed), because that bit is
//     implementation-defined after a fault.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeSuite } from './json-out.mjs';
import {
  runCase, sameResult, hex,
  CR0_PE, CR0_WP, CR0_PG, CR4_PSE, CR4_PAE, CR4_PGE, EFER_NXE,
  P, RW, US, PWT, PCD, A, D, PS, G, XD,
} from './ref-walker.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const COUNT = opt('--count', 20000);
const SEED = opt('--seed', 0x5d3a11ce);

// ---- mulberry32 PRNG ----
function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(SEED);
const chance = (p) => rnd() < p;
const int = (n) => Math.floor(rnd() * n); // 0..n-1
const pick = (arr) => arr[int(arr.length)];
const bits = (n) => { // uniform n-bit BigInt
  let v = 0n;
  for (let i = 0; i < n; i += 16) v = (v << 16n) | BigInt(int(0x10000));
  return v & ((1n << BigInt(n)) - 1n);
};
const bit = (n) => 1n << BigInt(n);
const KINDS = ['read', 'write', 'fetch'];

// ---- page allocator: distinct table pages per case, never page 0 ----
function allocator() {
  const used = new Set();
  return (limitBits) => {
    for (;;) {
      // bias towards low memory but reach the whole range
      const pfn = chance(0.6) ? 1n + bits(12) : bits(limitBits - 12);
      if (pfn === 0n || used.has(pfn)) continue;
      used.add(pfn);
      return pfn << 12n;
    }
  };
}

// Random attribute bits that never matter for translation or rights.
const noise = () => (chance(0.3) ? PWT : 0n) | (chance(0.3) ? PCD : 0n) | (chance(0.3) ? BigInt(int(8)) << 9n : 0n);
const adBits = () => (chance(0.3) ? A : 0n) | (chance(0.3) ? D : 0n);
const rights = () => (chance(0.65) ? RW : 0n) | (chance(0.65) ? US : 0n);
const present = (p) => (chance(p) ? P : 0n);

// ---- 32-bit paging entries ----
function pde32(cpu, ptPage) {
  const ps = chance(cpu.pse ? 0.4 : 0.15);
  let v = present(0.93) | rights() | adBits() | noise() | (chance(0.2) ? G : 0n) | (ps ? PS : 0n);
  if (ps && cpu.pse) {
    v |= bits(10) << 22n; // 4 MiB frame, address bits 31:22
    if (chance(0.3)) v |= bits(4) << 13n; // PSE-36 address bits 35:32
    if (chance(0.3)) v |= bit(12); // PAT
    if (chance(0.1)) v |= bit(17 + int(5)); // reserved 21:17
    if (chance(0.03)) v |= bits(5) << 17n;
  } else {
    v |= ptPage; // PS ignored when CR4.PSE = 0
  }
  return v;
}
function pte32() {
  return present(0.9) | rights() | adBits() | noise() | (chance(0.2) ? G : 0n) | (chance(0.2) ? 0x80n : 0n) | (bits(20) << 12n);
}

// ---- PAE entries ----
const hiRsvd = () => bit(36 + int(27)); // one of bits 62:36
function pdpteE(pdPage) {
  let v = present(0.96) | noise() | pdPage;
  if (chance(0.03)) v |= pick([bit(1), bit(2), bit(5), bit(6), bit(7), bit(8), hiRsvd(), XD]);
  return v;
}
function otherPdpte() {
  const r = rnd();
  if (r < 0.65) return 0n;
  if (r < 0.85) return P | noise() | (bits(24) << 12n); // present, valid, unused
  if (r < 0.985) return (bits(64) & ~P); // not present: anything goes
  return P | (bits(24) << 12n) | pick([bit(1), bit(5), bit(8), hiRsvd(), XD]); // present + reserved: #GP
}
function pde64(cpu, ptPage) {
  const ps = chance(0.35);
  let v = present(0.93) | rights() | adBits() | noise() | (chance(0.2) ? G : 0n) | (chance(0.25) ? XD : 0n) | (ps ? PS : 0n);
  if (ps) {
    v |= bits(15) << 21n; // 2 MiB frame, address bits 35:21
    if (chance(0.3)) v |= bit(12); // PAT
    if (chance(0.08)) v |= bit(13 + int(8)); // reserved 20:13
  } else {
    v |= ptPage;
  }
  if (chance(0.06)) v |= hiRsvd();
  return v;
}
function pte64() {
  let v = present(0.9) | rights() | adBits() | noise() | (chance(0.2) ? G : 0n) | (chance(0.2) ? 0x80n : 0n) | (chance(0.25) ? XD : 0n);
  v |= (chance(0.5) ? bits(20) : bits(24)) << 12n;
  if (chance(0.06)) v |= hiRsvd();
  return v;
}

// ---- case generation ----
const vaRand = () => bits(32);
const access = (va, kind, user) => ({ op: 'access', va: hex(va), kind, user });
const region = (pa, width, v) => (width === 8 ? { pa: hex(pa), u64: [hex(v)] } : { pa: hex(pa), u32: [hex(v)] });

function cpuBlock(c) {
  const o = {};
  const efer = c.nxe ? EFER_NXE : 0n;
  const cr4 = (c.pse ? CR4_PSE : 0n) | (c.pae ? CR4_PAE : 0n) | (c.pge ? CR4_PGE : 0n);
  const cr0 = (c.pe ? CR0_PE : 0n) | (c.wp ? CR0_WP : 0n) | (c.pg ? CR0_PG : 0n);
  if (efer) o.efer = hex(efer);
  if (cr4) o.cr4 = hex(cr4);
  o.cr0 = hex(cr0);
  return o;
}

/** One path (PDE [+ PT]) for `va`; pushes regions, returns entry addresses. */
function buildPath(mode, cpu, alloc, pdBase, va, regions, width) {
  const ptPage = alloc();
  let pdeAddr, pteAddr, pde, pte;
  if (mode === '2l') {
    pdeAddr = pdBase + 4n * (va >> 22n);
    pteAddr = ptPage + 4n * ((va >> 12n) & 0x3ffn);
    pde = pde32(cpu, ptPage);
    pte = pte32();
  } else {
    pdeAddr = pdBase + 8n * ((va >> 21n) & 0x1ffn);
    pteAddr = ptPage + 8n * ((va >> 12n) & 0x1ffn);
    pde = pde64(cpu, ptPage);
    pte = pte64();
  }
  regions.push(region(pdeAddr, width, pde), region(pteAddr, width, pte));
  return { pdeAddr, pteAddr, ptPage };
}

function genPaging(i, mode) {
  const pae = mode === 'pae';
  const cpu = {
    pg: true, pe: true, pae,
    wp: chance(0.5), pse: chance(pae ? 0.3 : 0.55), pge: chance(0.25), nxe: chance(pae ? 0.55 : 0.15),
  };
  const width = pae ? 8 : 4;
  const limit = pae ? 36 : 32;
  const allocPages = allocator();
  const alloc = () => allocPages(limit);
  const regions = [];
  const steps = [];
  const va = vaRand();
  let cr3, pdBase;
  if (pae) {
    // PDPT: 32-byte aligned, below 4 GiB (CR3 is 32 bits); PD anywhere.
    cr3 = allocPages(32) + BigInt(int(128)) * 32n;
    pdBase = alloc();
    const slot = Number(va >> 30n);
    regions.push({ pa: hex(cr3), u64: [0, 1, 2, 3].map((k) => hex(k === slot ? pdpteE(pdBase) : otherPdpte())) });
  } else {
    pdBase = alloc();
    cr3 = pdBase;
  }
  const path = buildPath(mode, cpu, alloc, pdBase, va, regions, width);
  // CR3 bits below the base (PWT, PCD, ignored bits) never matter.
  const low = chance(0.3) ? BigInt(int(pae ? 0x20 : 0x1000)) : 0n;
  steps.push({ op: 'cr3', value: hex(cr3 | low) });
  const k1 = pick(KINDS), u1 = chance(0.5);
  steps.push(access(va, k1, u1));

  const pattern = rnd();
  let tag;
  if (pattern < 0.42) {
    tag = 'one';
  } else if (pattern < 0.6) {
    // same page again with another kind (e.g. dirty after read), memory unchanged
    tag = 'again';
    steps.push(access((va & ~0xfffn) | bits(12), pick(KINDS), chance(0.5)));
  } else if (pattern < 0.72) {
    // a neighbouring page through the same PDE
    tag = 'neighbour';
    const idxBits = pae ? 9n : 10n;
    const idx = (va >> 12n) & ((1n << idxBits) - 1n);
    const nidx = (idx + 1n + BigInt(int(Number((1n << idxBits) - 1n)))) & ((1n << idxBits) - 1n);
    const va2 = (va & ~(((1n << idxBits) - 1n) << 12n) & ~0xfffn) | (nidx << 12n) | bits(12);
    regions.push(region(path.ptPage + BigInt(width) * nidx, width, pae ? pte64() : pte32()));
    steps.push(access(va2, pick(KINDS), chance(0.5)));
  } else if (pattern < 0.8) {
    // another page under another PDE (same PDPTE under PAE)
    tag = 'other-pde';
    let va2;
    do {
      va2 = pae ? (va & 0xc0000000n) | bits(30) : vaRand();
    } while ((pae ? (va2 >> 21n) : (va2 >> 22n)) === (pae ? (va >> 21n) : (va >> 22n)));
    buildPath(mode, cpu, alloc, pdBase, va2, regions, width);
    steps.push(access(va2, pick(KINDS), chance(0.5)));
  } else if (pattern < 0.92) {
    // change the leaf-level PTE, INVLPG, access again
    tag = 'poke-pte';
    steps.push({ op: 'poke', pa: hex(path.pteAddr), [pae ? 'u64' : 'u32']: hex(pae ? pte64() : pte32()) });
    steps.push({ op: 'invlpg', va: hex(chance(0.5) ? va : (va & ~0xfffn) | bits(12)) });
    steps.push(access(va, pick(KINDS), chance(0.5)));
  } else {
    // change the PDE (may switch between large page and page table), INVLPG
    tag = 'poke-pde';
    steps.push({ op: 'poke', pa: hex(path.pdeAddr), [pae ? 'u64' : 'u32']: hex(pae ? pde64(cpu, path.ptPage) : pde32(cpu, path.ptPage)) });
    steps.push({ op: 'invlpg', va: hex(va) });
    steps.push(access(va, pick(KINDS), chance(0.5)));
  }
  const flags = [cpu.pse && 'pse', cpu.nxe && 'nxe', cpu.wp && 'wp', cpu.pge && 'pge'].filter(Boolean).join('-');
  return {
    name: `r${String(i).padStart(5, '0')}-${mode}${flags ? '-' + flags : ''}-${tag}`,
    cpu: cpuBlock(cpu),
    memory: regions,
    steps,
  };
}

function genNoPaging(i) {
  const cpu = { pg: false, pe: chance(0.8), pae: chance(0.4), pse: chance(0.3), nxe: chance(0.3), wp: chance(0.3) };
  const steps = [];
  if (chance(0.5)) steps.push({ op: 'cr3', value: hex(bits(20) << 12n) });
  for (let k = 0; k < 1 + int(3); k++) steps.push(access(vaRand(), pick(KINDS), chance(0.5)));
  if (!cpu.pe && chance(0.5)) {
    // MOV CR0 with PG = 1 and PE = 0: #GP, paging stays off
    steps.push({ op: 'cr0', value: hex(CR0_PG | (chance(0.5) ? CR0_WP : 0n)) });
    steps.push(access(vaRand(), pick(KINDS), chance(0.5)));
  }
  return { name: `r${String(i).padStart(5, '0')}-nopg`, cpu: cpuBlock(cpu), memory: [], steps };
}

/** Set A in the region word / poke values at `addr` (a non-leaf entry). */
function setAccessed(c, addr) {
  for (const r of c.memory) {
    const w = r.u64 ? 8n : 4n;
    const list = r.u64 ?? r.u32;
    list.forEach((v, j) => {
      if (BigInt(r.pa) + w * BigInt(j) === addr) list[j] = hex(BigInt(v) | A);
    });
  }
  for (const s of c.steps) {
    if (s.op === 'poke' && BigInt(s.pa) === addr) {
      if (s.u64) s.u64 = hex(BigInt(s.u64) | A);
      else s.u32 = hex(BigInt(s.u32) | A);
    }
  }
}

function generate() {
  const cases = [];
  const results = [];
  let rejected = 0;
  for (let i = 0; cases.length < COUNT; i++) {
    const r = rnd();
    const c = r < 0.03 ? genNoPaging(cases.length) : genPaging(cases.length, r < 0.5 ? '2l' : 'pae');
    let ref = runCase(c);
    for (let k = 0; k < 4 && ref.nonLeafA0.length; k++) {
      for (const a of ref.nonLeafA0) setAccessed(c, a);
      ref = runCase(c);
    }
    const agg = runCase(c, { tlb: true });
    if (ref.notes.length || !sameResult(ref, agg)) {
      rejected++;
      continue;
    }
    cases.push(c);
    results.push({ name: c.name, steps: ref.steps, memory: ref.memory });
  }
  return { cases, results, rejected };
}

const { cases, results, rejected } = generate();

// ---- stats ----
const stat = {};
const inc = (k) => (stat[k] = (stat[k] ?? 0) + 1);
for (const r of results) {
  for (const s of r.steps) {
    if (s.pa) inc('access ok');
    else if (s.fault === 'PF') inc(`#PF ec=0x${s.errorCode.toString(16)}`);
    else if (s.fault === 'GP') inc('#GP');
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const inPath = join(root, 'tests', 'vectors', 'random-suite.json');
const outPath = join(root, 'tests', 'vectors', 'random-suite.expected.json');
const n1 = writeSuite(inPath, 'x86-mmu-vectors/1', cases, 'compact');
const n2 = writeSuite(outPath, 'x86-mmu-results/1', results, 'compact');
console.log(`random-suite: seed ${SEED}, ${cases.length} cases (${rejected} non-portable drafts discarded)`);
console.log(`  ${inPath} (${n1} bytes)\n  ${outPath} (${n2} bytes)`);
console.log('  outcomes: ' + Object.entries(stat).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', '));
