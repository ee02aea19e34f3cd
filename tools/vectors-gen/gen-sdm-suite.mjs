#!/usr/bin/env node
// Hand-written x86 paging conformance vectors, expected results derived by hand
// from the Intel SDM vol. 3 ch. 4 (32-bit paging, PAE paging; MAXPHYADDR = 36).
//
//   node tools/vectors-gen/gen-sdm-suite.mjs
//
// writes tests/vectors/sdm-suite.json          (x86-mmu-vectors/1)
//    and tests/vectors/sdm-suite.expected.json (x86-mmu-results/1, no `cycles`)
//
// Every case below states its input AND its expected outcome; nothing here is
// computed by a page walker. (check-suite.mjs cross-checks these hand answers
// against the independent reference walker in ref-walker.mjs, and checks that
// each case is portable: no dependence on TLB contents, no reliance on the
// accessed flag of a non-leaf entry after a fault.)
//
// Reading a case:
//   m32(pa, w...) / m64(pa, w...)  a memory region of 32/64-bit words. A word is
//                                  a value that must come back unchanged, or
//                                  E(value, bitsTheCpuSets) (e.g. E(pte, A|D)),
//                                  or X(before, after) when a poke changes it.
//   R/W/F(va, exp)                 supervisor read / write / fetch at va,
//   UR/UW/UF(va, exp)              the same at CPL 3. exp is the physical
//                                  address, or pf(errorCode) (CR2 = va).
//   cr3/cr0/cr4(v[, GP])           MOV to CRn, expected OK unless GP is given.
//   poke32/poke64(pa, v), invlpg(va)
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeSuite } from './json-out.mjs';
import { hex } from './ref-walker.mjs';

const B = (x) => BigInt(x);
const bit = (n) => 1n << B(n);

// ---- architectural bits (SDM 2.5, 4.3, 4.4, 4.7) ----
const P = 1n, RW = 2n, US = 4n, PWT = 8n, PCD = 0x10n, A = 0x20n, D = 0x40n, PS = 0x80n;
const PAT4K = 0x80n; // PAT bit of a 4 KiB PTE (bit 7)
const PAT_L = 0x1000n; // PAT bit of a 4 MiB / 2 MiB PDE (bit 12)
const G = 0x100n, AVL = 0xe00n, XD = bit(63);
const CR0_PE = 1n, CR0_WP = bit(16), CR0_PG = bit(31);
const CR4_PSE = bit(4), CR4_PAE = bit(5), CR4_PGE = bit(7);
const EFER_NXE = bit(11);
// #PF error code
const EP = 1, EW = 2, EU = 4, ERSVD = 8, EID = 0x10;

// ---- case building ----
const cases = [];
const names = new Set();

function cpu({ pg = true, pe = true, wp = false, pse = false, pae = false, pge = false, nxe = false } = {}) {
  return {
    efer: nxe ? EFER_NXE : 0n,
    cr4: (pse ? CR4_PSE : 0n) | (pae ? CR4_PAE : 0n) | (pge ? CR4_PGE : 0n),
    cr0: (pe ? CR0_PE : 0n) | (wp ? CR0_WP : 0n) | (pg ? CR0_PG : 0n),
  };
}

/** A word whose expected final value is `v | set`. */
const E = (v, set = 0n) => ({ in: B(v), out: B(v) | B(set) });
/** A word changed by a poke (or otherwise) from `before` to `after`. */
const X = (before, after) => ({ in: B(before), out: B(after) });
const word = (w) => (typeof w === 'object' ? w : E(w));
const m32 = (pa, ...ws) => ({ pa: B(pa), width: 4, words: ws.map(word) });
const m64 = (pa, ...ws) => ({ pa: B(pa), width: 8, words: ws.map(word) });

const OK = { ok: true };
const GP = { fault: 'GP' };
const ctl = (op) => (v, res = OK) => ({ step: { op, value: hex(v) }, result: res });
const cr3 = ctl('cr3'), cr0 = ctl('cr0'), cr4 = ctl('cr4');
const pf = (code) => ({ pf: code });
const acc = (kind, user) => (va, exp) => ({
  step: { op: 'access', va: hex(va), kind, user },
  result: typeof exp === 'object' && exp.pf !== undefined
    ? { fault: 'PF', errorCode: exp.pf, cr2: hex(va) }
    : { pa: hex(exp) },
});
const R = acc('read', false), W = acc('write', false), F = acc('fetch', false);
const UR = acc('read', true), UW = acc('write', true), UF = acc('fetch', true);
const ACCESS = { read: R, write: W, fetch: F, uread: UR, uwrite: UW, ufetch: UF };
const poke32 = (pa, v) => ({ step: { op: 'poke', pa: hex(pa), u32: hex(v) }, result: OK });
const poke64 = (pa, v) => ({ step: { op: 'poke', pa: hex(pa), u64: hex(v) }, result: OK });
const invlpg = (va) => ({ step: { op: 'invlpg', va: hex(va) }, result: OK });

function kase(name, cpuRegs, regions, steps) {
  if (names.has(name)) throw new Error(`duplicate case name ${name}`);
  names.add(name);
  cases.push({ name, cpu: cpuRegs, regions, steps });
}

// ---- entry addresses (mechanical index arithmetic, SDM 4.3 / 4.4.2) ----
const pde32 = (pd, va) => B(pd) + 4n * (B(va) >> 22n);
const pte32 = (pt, va) => B(pt) + 4n * ((B(va) >> 12n) & 0x3ffn);
const pdpte = (pdpt, va) => B(pdpt) + 8n * (B(va) >> 30n);
const pde64 = (pd, va) => B(pd) + 8n * ((B(va) >> 21n) & 0x1ffn);
const pte64 = (pt, va) => B(pt) + 8n * ((B(va) >> 12n) & 0x1ffn);

// =====================================================================
// 1. Paging off, enabling paging, CR0 checks
// =====================================================================
function pagingOff() {
  kase('nopg-identity-read', cpu({ pg: false }), [], [R(0x12345678, 0x12345678)]);
  kase('nopg-identity-user-write-fetch', cpu({ pg: false }), [], [
    UW(0xfffff000, 0xfffff000), UF(0xabcdef01, 0xabcdef01), F(0, 0), W(0xffffffff, 0xffffffff),
  ]);
  kase('nopg-real-mode-identity', cpu({ pg: false, pe: false }), [], [R(0x000b8000, 0x000b8000)]);
  // A PD that would map va elsewhere exists, but paging is off: nothing is
  // translated and nothing gets an accessed bit.
  kase('nopg-2l-cr3-load-does-not-translate', cpu({ pg: false }), [
    m32(0x1004, 0x2003), m32(0x2000 + 4 * 3, 0x55003),
  ], [cr3(0x1000), R(0x00403abc, 0x00403abc), W(0x00403abc, 0x00403abc)]);
  // PAE on but paging off: MOV CR3 does not load PDPTEs, so reserved bits in
  // the PDPT cannot #GP there; enabling paging then loads them and #GPs.
  kase('nopg-pae-cr3-no-pdpte-check-then-cr0-pg-gp', cpu({ pg: false, pae: true }), [
    m64(0x1000, 0x2007, 0, 0, 0), // PDPTE0 has bits 1,2 set (reserved)
  ], [
    cr3(0x1000), R(0x00001234, 0x00001234),
    cr0(CR0_PE | CR0_PG, GP), // PDPTE load fails: CR0 unchanged, paging stays off
    R(0x00001234, 0x00001234), UW(0x40001234, 0x40001234),
  ]);
  kase('nopg-pae-cr0-pg-loads-pdptes', cpu({ pg: false, pae: true }), [
    m64(0x1000, 0x2001, 0, 0, 0),
    m64(0x2000, E(0x3003, A)),
    m64(0x3000 + 8 * 1, E(0x5003, A)),
  ], [cr3(0x1000), R(0x00001234, 0x00001234), cr0(CR0_PE | CR0_PG), R(0x00001234, 0x5234)]);
  kase('2l-cr0-pg-enables-translation', cpu({ pg: false }), [
    m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A)),
  ], [cr3(0x1000), R(0x00403abc, 0x00403abc), cr0(CR0_PE | CR0_PG), R(0x00403abc, 0x55abc)]);
  // SDM MOV CR0: setting PG with PE = 0 is #GP(0); CR0 is unchanged.
  kase('cr0-pg-without-pe-gp', cpu({ pg: false, pe: false }), [
    m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A)),
  ], [
    cr3(0x1000), cr0(CR0_PG, GP), R(0x00403abc, 0x00403abc),
    cr0(CR0_PG | CR0_PE), R(0x00403abc, 0x55abc),
  ]);
  kase('cr0-pg-without-pe-gp-pae', cpu({ pg: false, pe: false, pae: true }), [
    m64(0x1000, 0x2001, 0, 0, 0), m64(0x2000, E(0x3003, A)), m64(0x3008, E(0x5003, A)),
  ], [
    cr3(0x1000), cr0(CR0_PG, GP), R(0x00001234, 0x00001234),
    cr0(CR0_PG | CR0_PE), R(0x00001234, 0x5234),
  ]);
  kase('2l-cr0-clear-pe-keep-pg-gp', cpu(), [
    m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A)),
  ], [cr3(0x1000), R(0x00403abc, 0x55abc), cr0(CR0_PG, GP), R(0x00403abc, 0x55abc)]);
  kase('2l-cr0-clear-pg-identity', cpu(), [
    m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A)),
  ], [cr3(0x1000), R(0x00403abc, 0x55abc), cr0(CR0_PE), R(0x00403abc, 0x00403abc), UW(0x00403abc, 0x00403abc)]);
  kase('pae-cr0-clear-pg-identity', cpu({ pae: true }), [
    m64(0x1000, 0x2001), m64(0x2000, E(0x3003, A)), m64(0x3008, E(0x5003, A)),
  ], [cr3(0x1000), R(0x00001234, 0x5234), cr0(CR0_PE), R(0x00001234, 0x00001234)]);
}

// =====================================================================
// 2. 32-bit paging: basic walks and not-present faults
// =====================================================================
// Layout: PD 0x1000, PT 0x2000. va 0x00403abc -> PDE[1] @0x1004, PTE[3] @0x200c.
function twoLevelBasics() {
  const va = 0x00403abc;
  const pdeA = 0x1004, pteA = 0x200c;
  const C = cpu();
  kase('2l-4k-read', C, [m32(pdeA, E(0x2000n | P | RW | US, A)), m32(pteA, E(0x55000n | P | RW | US, A))],
    [cr3(0x1000), R(va, 0x55abc)]);
  kase('2l-4k-write', C, [m32(pdeA, E(0x2000n | P | RW | US, A)), m32(pteA, E(0x55000n | P | RW | US, A | D))],
    [cr3(0x1000), W(va, 0x55abc)]);
  kase('2l-4k-fetch', C, [m32(pdeA, E(0x2000n | P | RW | US, A)), m32(pteA, E(0x55000n | P | RW | US, A))],
    [cr3(0x1000), F(va, 0x55abc)]);
  kase('2l-4k-user-read-write-fetch', C, [m32(pdeA, E(0x2000n | P | RW | US, A)), m32(pteA, E(0x55000n | P | RW | US, A | D))],
    [cr3(0x1000), UR(va, 0x55abc), UF(va + 1, 0x55abd), UW(va + 2, 0x55abe)]);

  // PDE not present: nothing in memory changes. Error code P=0.
  const npPde = [m32(pdeA, 0x2000n | RW | US), m32(pteA, 0x55000n | P | RW | US)];
  kase('2l-pde-not-present-read', C, npPde, [cr3(0x1000), R(va, pf(0))]);
  kase('2l-pde-not-present-write', C, npPde, [cr3(0x1000), W(va, pf(EW))]);
  kase('2l-pde-not-present-fetch', C, npPde, [cr3(0x1000), F(va, pf(0))]);
  kase('2l-pde-not-present-user-read', C, npPde, [cr3(0x1000), UR(va, pf(EU))]);
  kase('2l-pde-not-present-user-write', C, npPde, [cr3(0x1000), UW(va, pf(EU | EW))]);
  kase('2l-pde-not-present-user-fetch', C, npPde, [cr3(0x1000), UF(va, pf(EU))]);
  // 32-bit paging never reports I/D, even with EFER.NXE = 1 (SDM 4.7).
  kase('2l-pde-not-present-fetch-nxe1-no-id', cpu({ nxe: true }), npPde, [cr3(0x1000), F(va, pf(0)), UF(va, pf(EU))]);
  kase('2l-pde-zero-read', C, [], [cr3(0x1000), R(va, pf(0))]);
  // PTE not present. The PDE is a non-leaf entry whose A after a fault is
  // implementation-defined: it starts with A = 1.
  const npPte = [m32(pdeA, 0x2000n | P | RW | US | A), m32(pteA, 0x55000n | RW | US)];
  kase('2l-pte-not-present-read', C, npPte, [cr3(0x1000), R(va, pf(0))]);
  kase('2l-pte-not-present-write', C, npPte, [cr3(0x1000), W(va, pf(EW))]);
  kase('2l-pte-not-present-fetch', C, npPte, [cr3(0x1000), F(va, pf(0))]);
  kase('2l-pte-not-present-user-read', C, npPte, [cr3(0x1000), UR(va, pf(EU))]);
  kase('2l-pte-not-present-user-write', C, npPte, [cr3(0x1000), UW(va, pf(EU | EW))]);
  kase('2l-pte-not-present-user-fetch-nxe1-no-id', cpu({ nxe: true }), npPte, [cr3(0x1000), UF(va, pf(EU))]);
  // A not-present entry's other bits are ignored (no RSVD, P = 0).
  kase('2l-pte-not-present-other-bits-all-set', C, [m32(pdeA, 0x2000n | P | RW | US | A), m32(pteA, 0xfffffffe)],
    [cr3(0x1000), UW(va, pf(EU | EW))]);
  kase('2l-pde-not-present-other-bits-all-set-pse', cpu({ pse: true }), [m32(pdeA, 0xfffffffe)],
    [cr3(0x1000), R(va, pf(0))]);
  // CR3 = 0 after reset: the PD is at pa 0 (no cr3 step).
  kase('2l-cr3-reset-value-pd-at-pa-0', C, [m32(0x0, E(0x3003, A)), m32(0x3004, E(0x7003, A))], [R(0x00001234, 0x7234)]);
  kase('2l-cr3-reset-value-empty-memory-faults', C, [], [R(0x00001234, pf(0)), UF(0xfffff000, pf(EU))]);
  // Extremes of the linear address space.
  kase('2l-va-top', C, [m32(0x1ffc, E(0x3003, A)), m32(0x3ffc, E(0xfffff003, A | D))],
    [cr3(0x1000), W(0xffffffff, 0xffffffff)]);
  kase('2l-va-zero', C, [m32(0x1000, E(0x3003, A)), m32(0x3000, E(0x9003, A))], [cr3(0x1000), R(0, 0x9000)]);
  kase('2l-cr2-is-faulting-address', C, [m32(0x1000, 0x3003 | 0x20), m32(0x3000, 0x9002)],
    [cr3(0x1000), R(0xdeadbeef, pf(0)), UW(0x00000ffc, pf(EU | EW)), F(0x7ffff001, pf(0))]);
  // Page table at the top of the 4 GiB space.
  kase('2l-pt-at-top-of-4g', C, [m32(pdeA, E(0xfffff003, A)), m32(0xfffff00c, E(0x12345003, A))],
    [cr3(0x1000), R(va, 0x12345abc)]);
  // CR3 (32-bit paging): bits 31:12 PD base; PWT(3), PCD(4) and bits 2:0, 11:5
  // do not affect the walk.
  kase('2l-cr3-pwt-pcd', C, [m32(pdeA, E(0x2003, A)), m32(pteA, E(0x55003, A))], [cr3(0x1018), R(va, 0x55abc)]);
  kase('2l-cr3-low-12-bits-ignored', C, [m32(pdeA, E(0x2003, A)), m32(pteA, E(0x55003, A))], [cr3(0x1fff), R(va, 0x55abc)]);
  // Cache-control, global (without PGE), PAT and available bits don't change
  // the translation or the rights.
  kase('2l-attribute-bits-ignored', C, [
    m32(pdeA, E(0x2000n | P | RW | US | PWT | PCD | G | AVL, A)),
    m32(pteA, E(0x55000n | P | RW | US | PWT | PCD | PAT4K | G | AVL, A | D)),
  ], [cr3(0x1000), UW(va, 0x55abc)]);
  // CR4.PSE = 0: PS in a PDE is ignored, the PDE references a page table; its
  // D bit is not set on a write (it is not the leaf).
  kase('2l-pse-off-ps-ignored', C, [m32(pdeA, E(0x2000n | P | RW | PS, A)), m32(pteA, E(0x55003, A | D))],
    [cr3(0x1000), W(va, 0x55abc)]);
  // ... and bits 21:13 are page-table address bits, not reserved / PSE-36 bits.
  kase('2l-pse-off-ps-ignored-bits-21-13-are-pt-address', C, [
    m32(pdeA, E(0x003fe000n | P | RW | PS, A)), m32(0x003fe000 + 0xc, E(0x55003, A)),
  ], [cr3(0x1000), R(va, 0x55abc)]);
  kase('2l-pse-on-ps-clear-uses-pt', cpu({ pse: true }), [m32(pdeA, E(0x2003, A)), m32(pteA, E(0x55003, A))],
    [cr3(0x1000), R(va, 0x55abc)]);
  // Two pages through the same PT.
  kase('2l-two-pages-same-pt', C, [
    m32(pdeA, E(0x2003, A)), m32(pteA, E(0x55003, A)), m32(0x2010, E(0x66003, A | D)),
  ], [cr3(0x1000), R(va, 0x55abc), W(0x00404010, 0x66010)]);
  // Two page tables.
  kase('2l-two-page-tables', C, [
    m32(0x1004, E(0x2003, A)), m32(0x1ff8, E(0x3007, A)),
    m32(0x200c, E(0x55003, A)), m32(0x3004, E(0x77007, A | D)),
  ], [cr3(0x1000), R(va, 0x55abc), UW(0xff801008, 0x77008)]);
  // Self-map: PDE[0x300] points at the PD itself, so at va 0xc0300000 the same
  // entry is both the PDE and the PTE, and the page is the PD.
  kase('2l-self-map-same-entry-write', C, [m32(0x1c00, E(0x1003, A | D))],
    [cr3(0x1000), W(0xc0300ffc, 0x1ffc)]);
  // va 0xc0001000: PDE[0x300] is the PDE, PD[1] (a PDE pointing at 0x2000)
  // is read as the PTE -> the page is the PT at 0x2000.
  kase('2l-self-map-pd-entry-as-pte', C, [m32(0x1004, E(0x2003, A)), m32(0x1c00, E(0x1003, A))],
    [cr3(0x1000), R(0xc000100c, 0x200c)]);
}

// =====================================================================
// 3. Permission tables (U/S and R/W combined across levels, CR0.WP)
// =====================================================================
// Columns: supervisor read, write with WP=0, write with WP=1, fetch; user
// read, write with WP=0, write with WP=1, fetch. '.' = translation succeeds,
// a number = #PF error code. Derivation (SDM 4.6): user access needs U/S = 1 at
// every level; user write needs R/W = 1 at every level (whatever WP);
// supervisor write needs R/W = 1 at every level only if WP = 1; supervisor
// read and fetch are always allowed (no SMEP/SMAP, no XD here).
const COLS = [
  ['sup-read', 'read', false], ['sup-write-wp0', 'write', false], ['sup-write-wp1', 'write', true],
  ['sup-fetch', 'fetch', false], ['user-read', 'uread', false], ['user-write-wp0', 'uwrite', false],
  ['user-write-wp1', 'uwrite', true], ['user-fetch', 'ufetch', false],
];
const FL = { 'ro-sup': 0n, 'rw-sup': RW, 'ro-user': US, 'rw-user': RW | US };

function permCase(prefix, cpuOpts, col, exp, build) {
  const [colName, kind, wp] = COLS[col];
  const ok = exp === '.';
  const write = kind.endsWith('write');
  const { regions, pre, va, pa } = build(ok, write);
  kase(`${prefix}-${colName}`, cpu({ ...cpuOpts, wp }), regions, [...pre, ACCESS[kind](va, ok ? pa : pf(exp))]);
}

function permTables() {
  // 32-bit paging, 4 KiB page. PD 0x1000, PT 0x2000, va 0x00c03a5c
  // (PDE[3] @0x100c, PTE[3] @0x200c), frame 0xabc000.
  const T2L = [
    //  PDE        PTE        s-rd s-w0 s-w1 s-x  u-rd u-w0 u-w1 u-x
    ['ro-sup', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 5],
    ['ro-sup', 'rw-sup', '.', '.', 3, '.', 5, 7, 7, 5],
    ['ro-sup', 'ro-user', '.', '.', 3, '.', 5, 7, 7, 5],
    ['ro-sup', 'rw-user', '.', '.', 3, '.', 5, 7, 7, 5],
    ['rw-sup', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 5],
    ['rw-sup', 'rw-sup', '.', '.', '.', '.', 5, 7, 7, 5],
    ['rw-sup', 'ro-user', '.', '.', 3, '.', 5, 7, 7, 5],
    ['rw-sup', 'rw-user', '.', '.', '.', '.', 5, 7, 7, 5],
    ['ro-user', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 5],
    ['ro-user', 'rw-sup', '.', '.', 3, '.', 5, 7, 7, 5],
    ['ro-user', 'ro-user', '.', '.', 3, '.', '.', 7, 7, '.'],
    ['ro-user', 'rw-user', '.', '.', 3, '.', '.', 7, 7, '.'],
    ['rw-user', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 5],
    ['rw-user', 'rw-sup', '.', '.', '.', '.', 5, 7, 7, 5],
    ['rw-user', 'ro-user', '.', '.', 3, '.', '.', 7, 7, '.'],
    ['rw-user', 'rw-user', '.', '.', '.', '.', '.', '.', '.', '.'],
  ];
  for (const [pdeF, pteF, ...exps] of T2L) {
    exps.forEach((exp, col) => permCase(`2l-perm-pde-${pdeF}-pte-${pteF}`, {}, col, exp, (ok, write) => {
      const pde = 0x2000n | P | FL[pdeF];
      const pte = 0xabc000n | P | FL[pteF];
      return {
        // success: A on PDE; A (+D for a write) on the PTE. fault: the PDE
        // starts accessed (non-leaf A is implementation-defined after a
        // fault) and the PTE is untouched.
        regions: [
          m32(0x100c, ok ? E(pde, A) : E(pde | A)),
          m32(0x200c, ok ? E(pte, write ? A | D : A) : E(pte)),
        ],
        pre: [cr3(0x1000)],
        va: 0x00c03a5c, pa: 0xabca5c,
      };
    }));
  }

  // PAE paging, 4 KiB page, EFER.NXE = 1 (so user-fetch faults carry I/D).
  // PDPT 0x1000 (PDPTE1 -> PD 0x2000), PT 0x3000; va 0x40603a5c:
  // PDPTE[1] @0x1008, PDE[3] @0x2018, PTE[3] @0x3018.
  const TPAE = [
    //  PDE        PTE        s-rd s-w0 s-w1 s-x  u-rd u-w0 u-w1 u-x
    ['ro-sup', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['ro-sup', 'rw-sup', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['ro-sup', 'ro-user', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['ro-sup', 'rw-user', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['rw-sup', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['rw-sup', 'rw-sup', '.', '.', '.', '.', 5, 7, 7, 0x15],
    ['rw-sup', 'ro-user', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['rw-sup', 'rw-user', '.', '.', '.', '.', 5, 7, 7, 0x15],
    ['ro-user', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['ro-user', 'rw-sup', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['ro-user', 'ro-user', '.', '.', 3, '.', '.', 7, 7, '.'],
    ['ro-user', 'rw-user', '.', '.', 3, '.', '.', 7, 7, '.'],
    ['rw-user', 'ro-sup', '.', '.', 3, '.', 5, 7, 7, 0x15],
    ['rw-user', 'rw-sup', '.', '.', '.', '.', 5, 7, 7, 0x15],
    ['rw-user', 'ro-user', '.', '.', 3, '.', '.', 7, 7, '.'],
    ['rw-user', 'rw-user', '.', '.', '.', '.', '.', '.', '.', '.'],
  ];
  for (const [pdeF, pteF, ...exps] of TPAE) {
    exps.forEach((exp, col) => permCase(`pae-perm-pde-${pdeF}-pte-${pteF}`, { pae: true, nxe: true }, col, exp, (ok, write) => {
      const pde = 0x3000n | P | FL[pdeF];
      const pte = 0xabc000n | P | FL[pteF];
      return {
        regions: [
          m64(0x1000, 0, 0x2001, 0, 0), // PDPTEs: never get A/D
          m64(0x2018, ok ? E(pde, A) : E(pde | A)),
          m64(0x3018, ok ? E(pte, write ? A | D : A) : E(pte)),
        ],
        pre: [cr3(0x1000)],
        va: 0x40603a5c, pa: 0xabca5c,
      };
    }));
  }

  // Large pages: the PDE is the leaf and alone decides the rights.
  const TL = [
    //  PDE        s-rd s-w0 s-w1 s-x  u-rd u-w0 u-w1 u-x(2l) u-x(pae,nxe)
    ['ro-sup', '.', '.', 3, '.', 5, 7, 7, 5, 0x15],
    ['rw-sup', '.', '.', '.', '.', 5, 7, 7, 5, 0x15],
    ['ro-user', '.', '.', 3, '.', '.', 7, 7, '.', '.'],
    ['rw-user', '.', '.', '.', '.', '.', '.', '.', '.', '.'],
  ];
  for (const [pdeF, ...row] of TL) {
    // 4 MiB page (CR4.PSE = 1): PDE[3] @0x100c maps 0x01400000; va 0x00c03a5c.
    row.slice(0, 8).forEach((exp, col) => permCase(`2l-perm-4m-pde-${pdeF}`, { pse: true }, col, exp, (ok, write) => {
      const pde = 0x01400000n | P | PS | FL[pdeF];
      return {
        regions: [m32(0x100c, ok ? E(pde, write ? A | D : A) : E(pde))],
        pre: [cr3(0x1000)],
        va: 0x00c03a5c, pa: 0x01403a5c,
      };
    }));
    // 2 MiB page (PAE, NXE = 1): PDE[3] @0x2018 maps 0x00a00000; va 0x40603a5c.
    [...row.slice(0, 7), row[8]].forEach((exp, col) => permCase(`pae-perm-2m-pde-${pdeF}`, { pae: true, nxe: true }, col, exp, (ok, write) => {
      const pde = 0x00a00000n | P | PS | FL[pdeF];
      return {
        regions: [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, ok ? E(pde, write ? A | D : A) : E(pde))],
        pre: [cr3(0x1000)],
        va: 0x40603a5c, pa: 0x00a03a5c,
      };
    }));
  }
}

// =====================================================================
// 4. 32-bit paging with 4 MiB pages (CR4.PSE), PSE-36, reserved bits
// =====================================================================
// PD 0x1000; va 0x00c03a5c -> PDE[3] @0x100c, offset in 4 MiB page 0x3a5c.
function fourMeg() {
  const va = 0x00c03a5c;
  const C = cpu({ pse: true });
  const base = 0x01400000n | P | RW | PS;
  kase('2l-4m-read', C, [m32(0x100c, E(base, A))], [cr3(0x1000), R(va, 0x01403a5c)]);
  kase('2l-4m-write', C, [m32(0x100c, E(base, A | D))], [cr3(0x1000), W(va, 0x01403a5c)]);
  kase('2l-4m-fetch-user', C, [m32(0x100c, E(base | US, A))], [cr3(0x1000), UF(va, 0x01403a5c)]);
  kase('2l-4m-offset-max', C, [m32(0x100c, E(base, A))], [cr3(0x1000), R(0x00ffffff, 0x017fffff)]);
  kase('2l-4m-and-4k-side-by-side', C, [
    m32(0x100c, E(base, A)), m32(0x1010, E(0x2003, A)), m32(0x2004, E(0x99003, A | D)),
  ], [cr3(0x1000), R(va, 0x01403a5c), W(0x01001008, 0x99008)]);
  // Bits 21:17 of a 4 MiB PDE are reserved (M = 36): RSVD fault, P = 1.
  for (const b of [17, 18, 19, 20, 21]) {
    kase(`2l-4m-rsvd-bit${b}`, C, [m32(0x100c, base | bit(b))], [cr3(0x1000), R(va, pf(EP | ERSVD))]);
  }
  kase('2l-4m-rsvd-bit21-user-write', C, [m32(0x100c, base | US | bit(21))], [cr3(0x1000), UW(va, pf(EP | EW | EU | ERSVD))]);
  kase('2l-4m-rsvd-bit17-sup-write', C, [m32(0x100c, base | bit(17))], [cr3(0x1000), W(va, pf(EP | EW | ERSVD))]);
  // No I/D in 32-bit paging even with EFER.NXE = 1.
  kase('2l-4m-rsvd-bit19-fetch-nxe1-no-id', cpu({ pse: true, nxe: true }), [m32(0x100c, base | US | bit(19))],
    [cr3(0x1000), F(va, pf(EP | ERSVD)), UF(va, pf(EP | EU | ERSVD))]);
  // Reserved bits are checked only in a present entry.
  kase('2l-4m-not-present-with-rsvd-bits', C, [m32(0x100c, 0x01400000n | RW | PS | 0x3e0000n)],
    [cr3(0x1000), R(va, pf(0)), UW(va, pf(EU | EW))]);
  // Reserved bits beat a permission violation (the walk fails first).
  kase('2l-4m-rsvd-beats-user-violation', C, [m32(0x100c, base | bit(20))], [cr3(0x1000), UR(va, pf(EP | EU | ERSVD))]);
  // Bit 12 is PAT, not an address bit.
  kase('2l-4m-pat-bit12', C, [m32(0x100c, E(base | PAT_L, A))], [cr3(0x1000), R(va, 0x01403a5c)]);
  kase('2l-4m-attribute-bits-ignored', C, [m32(0x100c, E(base | US | PWT | PCD | G | AVL | PAT_L, A | D))],
    [cr3(0x1000), UW(va, 0x01403a5c)]);
  // PSE-36: bits 16:13 are physical address bits 35:32.
  kase('2l-4m-pse36-bit13-is-pa32', C, [m32(0x100c, E(base | bit(13), A))], [cr3(0x1000), R(va, 0x101403a5cn)]);
  kase('2l-4m-pse36-bit14-is-pa33', C, [m32(0x100c, E(base | bit(14), A))], [cr3(0x1000), R(va, 0x201403a5cn)]);
  kase('2l-4m-pse36-bit15-is-pa34', C, [m32(0x100c, E(base | bit(15), A))], [cr3(0x1000), R(va, 0x401403a5cn)]);
  kase('2l-4m-pse36-bit16-is-pa35', C, [m32(0x100c, E(base | bit(16), A | D))], [cr3(0x1000), W(va, 0x801403a5cn)]);
  kase('2l-4m-pse36-max-pa', C, [m32(0x1ffc, E(0xffc00000n | P | PS | 0x1e000n, A))],
    [cr3(0x1000), R(0xffffffff, 0xfffffffffn)]);
  kase('2l-4m-pse36-with-pat', C, [m32(0x100c, E(base | PAT_L | 0xa000n, A))], [cr3(0x1000), R(va, 0x501403a5cn)]);
  // With CR4.PSE = 0 the same bits are page-table address bits.
  kase('2l-pse-off-bits-21-17-are-pt-address', cpu(), [
    m32(0x100c, E(0x003e0000n | P | RW | PS, A)), m32(0x003e000c, E(0x44003, A)),
  ], [cr3(0x1000), R(va, 0x44a5c)]);
  // Self-map with a 4 MiB page over low memory: the PD maps itself.
  kase('2l-4m-maps-its-own-pd', C, [m32(0x1000, E(0x00000000n | P | RW | PS, A | D))],
    [cr3(0x1000), W(0x00001000, 0x1000)]);
}

// =====================================================================
// 5. PAE paging: basic walks and not-present faults
// =====================================================================
// PDPT 0x1000, PD 0x2000, PT 0x3000; va 0x40603a5c -> PDPTE[1] @0x1008,
// PDE[3] @0x2018, PTE[3] @0x3018.
function paeBasics() {
  const va = 0x40603a5c;
  const C = cpu({ pae: true });
  const CN = cpu({ pae: true, nxe: true });
  const pdpt = (e1 = 0x2001) => m64(0x1000, 0, e1, 0, 0);
  const pde = 0x3000n | P | RW | US, pte = 0xabc000n | P | RW | US;
  kase('pae-4k-read', C, [pdpt(), m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A))], [cr3(0x1000), R(va, 0xabca5c)]);
  kase('pae-4k-write', C, [pdpt(), m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A | D))], [cr3(0x1000), W(va, 0xabca5c)]);
  kase('pae-4k-fetch', C, [pdpt(), m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A))], [cr3(0x1000), F(va, 0xabca5c)]);
  kase('pae-4k-user-all-kinds-nxe1', CN, [pdpt(), m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A | D))],
    [cr3(0x1000), UR(va, 0xabca5c), UF(va + 4, 0xabca60), UW(va + 8, 0xabca64)]);
  // PDPTE not present (register P = 0): P = 0 fault; I/D only with NXE = 1.
  kase('pae-pdpte-not-present-read', C, [pdpt(0x2000)], [cr3(0x1000), R(va, pf(0))]);
  kase('pae-pdpte-not-present-user-write', C, [pdpt(0x2000)], [cr3(0x1000), UW(va, pf(EU | EW))]);
  kase('pae-pdpte-not-present-fetch-nxe0', C, [pdpt(0x2000)], [cr3(0x1000), F(va, pf(0))]);
  kase('pae-pdpte-not-present-fetch-nxe1', CN, [pdpt(0x2000)], [cr3(0x1000), F(va, pf(EID)), UF(va, pf(EID | EU))]);
  kase('pae-pdpte-zero-other-slots', C, [pdpt()], [cr3(0x1000), R(0x00000000, pf(0)), W(0x80000000, pf(EW)), UR(0xc0000000, pf(EU))]);
  // PDE not present.
  const npPde = [pdpt(), m64(0x2018, pde & ~P), m64(0x3018, pte)];
  kase('pae-pde-not-present-read', C, npPde, [cr3(0x1000), R(va, pf(0))]);
  kase('pae-pde-not-present-user-write', C, npPde, [cr3(0x1000), UW(va, pf(EU | EW))]);
  kase('pae-pde-not-present-fetch-nxe1', CN, npPde, [cr3(0x1000), F(va, pf(EID))]);
  kase('pae-pde-not-present-user-fetch-nxe1', CN, npPde, [cr3(0x1000), UF(va, pf(EID | EU))]);
  kase('pae-pde-not-present-user-fetch-nxe0', C, npPde, [cr3(0x1000), UF(va, pf(EU))]);
  // PTE not present (PDE starts accessed: non-leaf A is impl.-defined after a fault).
  const npPte = [pdpt(), m64(0x2018, pde | A), m64(0x3018, pte & ~P)];
  kase('pae-pte-not-present-read', C, npPte, [cr3(0x1000), R(va, pf(0))]);
  kase('pae-pte-not-present-write', C, npPte, [cr3(0x1000), W(va, pf(EW))]);
  kase('pae-pte-not-present-user-read', C, npPte, [cr3(0x1000), UR(va, pf(EU))]);
  kase('pae-pte-not-present-fetch-nxe1', CN, npPte, [cr3(0x1000), F(va, pf(EID))]);
  kase('pae-pte-not-present-user-fetch-nxe1', CN, npPte, [cr3(0x1000), UF(va, pf(EID | EU))]);
  kase('pae-pte-not-present-read-nxe1-no-id', CN, npPte, [cr3(0x1000), R(va, pf(0)), UW(va, pf(EU | EW))]);
  // Reserved bits of a not-present entry are ignored: P = 0 fault, no RSVD.
  kase('pae-pte-not-present-all-other-bits-set', C, [pdpt(), m64(0x2018, pde | A), m64(0x3018, 0xfffffffffffffffen)],
    [cr3(0x1000), R(va, pf(0))]);
  kase('pae-pde-not-present-rsvd-bits', C, [pdpt(), m64(0x2018, 0x3000n | RW | US | bit(40) | bit(62))],
    [cr3(0x1000), R(va, pf(0))]);
  kase('pae-pde-not-present-bit63-nxe0', C, [pdpt(), m64(0x2018, 0x3000n | RW | XD)], [cr3(0x1000), UR(va, pf(EU))]);
  kase('pae-2m-not-present-rsvd-bits-20-13', C, [pdpt(), m64(0x2018, 0x00a00000n | RW | PS | 0x1fe000n)],
    [cr3(0x1000), W(va, pf(EW))]);
  // Access before any cr3 step: the cpu block turned PAE paging on at CR3 = 0,
  // loading PDPTEs from zero memory: all not present.
  kase('pae-access-before-cr3-pdptes-from-zero-memory', C, [], [R(0x00001000, pf(0)), UF(0xc0000000, pf(EU))]);
  kase('pae-access-before-cr3-pdptes-from-zero-memory-nxe1', CN, [], [F(0x00001000, pf(EID))]);
  // Extremes.
  kase('pae-va-top', C, [m64(0x1000, 0, 0, 0, 0x2001), m64(0x2ff8, E(0x3003, A)), m64(0x3ff8, E(0xfffff003n, A | D))],
    [cr3(0x1000), W(0xffffffff, 0xffffffff)]);
  kase('pae-va-zero', C, [m64(0x1000, 0x2001, 0, 0, 0), m64(0x2000, E(0x3003, A)), m64(0x3000, E(0x9003, A))],
    [cr3(0x1000), R(0, 0x9000)]);
  // All four PDPTEs, four PDs.
  kase('pae-all-four-pdptes', C, [
    m64(0x1000, 0x2001, 0x4001, 0x6001, 0x8001),
    m64(0x2000, E(0x3003, A)), m64(0x3000, E(0x10003, A)),
    m64(0x4000, E(0x5003, A)), m64(0x5000, E(0x11003, A)),
    m64(0x6000, E(0x7003, A)), m64(0x7000, E(0x12003, A)),
    m64(0x8000, E(0x9003, A)), m64(0x9000, E(0x13003, A)),
  ], [cr3(0x1000), R(0x00000001, 0x10001), R(0x40000002, 0x11002), R(0x80000003, 0x12003), R(0xc0000004, 0x13004)]);
  // Cache-control, G (no PGE), PAT (bit 7 of a PTE, bit 12 of a 2 MiB PDE) and
  // available bits are not reserved and don't change the translation.
  kase('pae-attribute-bits-ignored', C, [
    pdpt(0x2001n | PWT | PCD | AVL),
    m64(0x2018, E(pde | PWT | PCD | G | AVL, A)),
    m64(0x3018, E(pte | PWT | PCD | PAT4K | G | AVL, A | D)),
  ], [cr3(0x1000), UW(va, 0xabca5c)]);
  kase('pae-2m-pat-bit12', C, [pdpt(), m64(0x2018, E(0x00a00000n | P | RW | PS | PAT_L, A))], [cr3(0x1000), R(va, 0xa03a5c)]);
  // Bits 20:13 of a PDE that references a page table are address bits.
  kase('pae-pde-ps0-bits-20-13-are-pt-address', C, [pdpt(), m64(0x2018, E(0x001fe000n | P | RW, A)), m64(0x001fe018, E(0xabc003n, A))],
    [cr3(0x1000), R(va, 0xabca5c)]);
  // PAE always honours PS (2 MiB pages), whatever CR4.PSE.
  kase('pae-2m-without-cr4-pse', C, [pdpt(), m64(0x2018, E(0x00a00000n | P | RW | PS, A | D))], [cr3(0x1000), W(va, 0xa03a5c)]);
  kase('pae-2m-with-cr4-pse', cpu({ pae: true, pse: true }), [pdpt(), m64(0x2018, E(0x00a00000n | P | RW | PS, A))], [cr3(0x1000), R(va, 0xa03a5c)]);
  kase('pae-2m-offset-max', C, [pdpt(), m64(0x2018, E(0x00a00000n | P | RW | PS, A))], [cr3(0x1000), R(0x407fffff, 0xbfffff)]);
  kase('pae-2m-and-4k-same-pd', C, [
    pdpt(), m64(0x2018, E(0x00a00000n | P | RW | PS, A)), m64(0x2020, E(0x3003n, A)), m64(0x3008, E(0x77003n, A | D)),
  ], [cr3(0x1000), R(va, 0xa03a5c), W(0x40801010, 0x77010)]);
  // Entries given as pairs of 32-bit words (as in the format's example).
  kase('pae-entries-as-u32-words', C, [
    m32(0x1000, 0, 0, 0x2001, 0), m32(0x2018, E(0x3007, A), 0), m32(0x3018, E(0x7005, A), 0),
  ], [cr3(0x1000), UR(va, 0x7a5c), UW(va, pf(EP | EW | EU))]);
  // Self-map: PDE[3] of the PD at 0x2000 points at the PD itself; at
  // va 0x40603xxx the same entry is PDE and PTE and the page is the PD.
  kase('pae-self-map-same-entry-write', C, [pdpt(), m64(0x2018, E(0x2003n, A | D))], [cr3(0x1000), W(0x40603ff8, 0x2ff8)]);
}

// =====================================================================
// 6. PAE PDPTE registers: #GP on load, reload rules
// =====================================================================
function pdptes() {
  const C = cpu({ pae: true });
  // Good PDPT at 0x1000 (PDPTE0 -> PD 0x2000 -> PT 0x3000); a second PDPT at
  // 0x4000 whose slot `slot` has a reserved bit. The load #GPs; CR3 and the
  // PDPTE registers keep their old values, so a later access to another page
  // still goes through the old PD, and a later reload triggered by a CR4.PGE
  // change reads the OLD CR3 and succeeds.
  const gpCase = (name, badBits, slot, cpuRegs = C) => {
    const bad = [0x7001n, 0n, 0n, 0n];
    bad[slot] = (slot === 0 ? 0x7001n : 0x8001n) | badBits;
    kase(name, cpuRegs, [
      m64(0x1000, 0x2001, 0, 0, 0),
      m64(0x2000, E(0x3003, A)),
      m64(0x3008, E(0x5003, A), E(0x6003, A)),
      m64(0x4000, ...bad),
    ], [
      cr3(0x1000), R(0x00001010, 0x5010),
      cr3(0x4000, GP),
      R(0x00002020, 0x6020),
      cr4((cpuRegs.cr4 | CR4_PGE)), // reloads PDPTEs from CR3, still 0x1000
      R(0x00001030, 0x5030), R(0x00002040, 0x6040),
    ]);
  };
  const reserved = [1, 2, 5, 6, 7, 8, 36, 37, 40, 47, 51, 52, 58, 62, 63];
  reserved.forEach((b, i) => gpCase(`pae-pdpte-rsvd-bit${b}-gp`, bit(b), i % 4));
  gpCase('pae-pdpte-rsvd-bit63-gp-even-with-nxe1', XD, 2, cpu({ pae: true, nxe: true }));
  gpCase('pae-pdpte-rsvd-rw-us-bits-gp', RW | US, 0);
  gpCase('pae-pdpte-rsvd-accessed-dirty-bits-gp', A | D, 3);
  // A not-present PDPTE is not checked for reserved bits: no #GP.
  kase('pae-pdpte-not-present-rsvd-bits-no-gp', C, [
    m64(0x1000, 0x7000n | 0x1e6n | XD | bit(40), 0, 0, 0x8000n | RW),
  ], [cr3(0x1000), R(0x00001000, pf(0)), UW(0xc0000000, pf(EU | EW))]);
  // PWT, PCD (3, 4) and the available bits 11:9 are not reserved.
  kase('pae-pdpte-pwt-pcd-avail-ok', C, [
    m64(0x1000, 0x2001n | PWT | PCD | AVL, 0, 0, 0), m64(0x2000, E(0x3003, A)), m64(0x3008, E(0x5003, A)),
  ], [cr3(0x1000), R(0x00001010, 0x5010)]);
  // PDPTE address bits 35:12 include bits 35:32.
  kase('pae-pdpte-pd-above-4g', C, [
    m64(0x1000, 0xf00002001n, 0, 0, 0), m64(0xf00002000n, E(0x3003, A)), m64(0x3008, E(0x5003, A)),
  ], [cr3(0x1000), R(0x00001010, 0x5010)]);
  // PDPTEs are never written by the processor (no A bit): a PDPT region whose
  // words could be mistaken for a PD stays unchanged after a write.
  kase('pae-pdpte-never-gets-accessed-or-dirty', C, [
    m64(0x1000, 0x2001, 0x2001, 0x2001, 0x2001), m64(0x2000, E(0x3003, A)), m64(0x3000, E(0x9003, A | D)),
  ], [cr3(0x1000), W(0x00000000, 0x9000), W(0x40000008, 0x9008), W(0xc0000010, 0x9010)]);

  // ---- PDPTE registers are loaded only by MOV CR3 (and by MOV CR0/CR4 that
  // change PG / PAE, PGE, PSE while PAE paging is on), not re-read on walks.
  // PD A at 0x2000 and PD B at 0x7000 map 2 MiB pages:
  //   va 0x00000000.. : A -> 0x00200000, B -> 0x00800000
  //   va 0x00200000.. : A -> 0x00400000, B -> 0x00a00000
  // Each access after the poke is to a 2 MiB page never touched before, so no
  // cached translation can be involved.
  const AB = (pdpt0In, pdpt0Out, aUsed, bUsed) => [
    m64(0x1000, X(pdpt0In, pdpt0Out), 0, 0, 0),
    m64(0x2000, E(0x00200083, aUsed[0] ? A : 0n), E(0x00400083, aUsed[1] ? A : 0n), E(0x00600083, aUsed[2] ? A : 0n)),
    m64(0x7000, E(0x00800083, bUsed[0] ? A : 0n), E(0x00a00083, bUsed[1] ? A : 0n), E(0x00c00083, bUsed[2] ? A : 0n)),
  ];
  kase('pae-pdpte-poke-not-used-until-cr3', C, AB(0x2001, 0x7001, [1, 1, 0], [1, 1, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001),
    R(0x00200020, 0x400020), // still PD A: the PDPTE register was not reloaded
    cr3(0x1000),
    R(0x00000030, 0x800030), R(0x00200040, 0xa00040),
  ]);
  kase('pae-pdpte-poke-not-present-still-used-until-cr3', C, AB(0x2001, 0x0, [1, 1, 0], [0, 0, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0),
    R(0x00200020, 0x400020),
    cr3(0x1000),
    R(0x00000030, pf(0)), R(0x00400000, pf(0)),
  ]);
  kase('pae-pdpte-poke-present-not-seen-until-cr3', C, AB(0x0, 0x7001, [0, 0, 0], [1, 0, 0]), [
    cr3(0x1000), R(0x00000010, pf(0)),
    poke64(0x1000, 0x7001),
    R(0x00000010, pf(0)), // the register still says not present; a #PF does not reload it
    cr3(0x1000),
    R(0x00000010, 0x800010),
  ]);
  kase('pae-pdpte-invlpg-does-not-reload', C, AB(0x2001, 0x7001, [1, 1, 0], [0, 0, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001), invlpg(0x00200020),
    R(0x00200020, 0x400020),
  ]);
  kase('pae-pdpte-cr4-pge-set-reloads', C, AB(0x2001, 0x7001, [1, 0, 0], [0, 1, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001), cr4(CR4_PAE | CR4_PGE),
    R(0x00200020, 0xa00020),
  ]);
  kase('pae-pdpte-cr4-pge-clear-reloads', cpu({ pae: true, pge: true }), AB(0x2001, 0x7001, [1, 0, 0], [0, 1, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001), cr4(CR4_PAE),
    R(0x00200020, 0xa00020),
  ]);
  kase('pae-pdpte-cr4-pse-toggle-reloads', C, AB(0x2001, 0x2001, [1, 0, 1], [0, 1, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001), cr4(CR4_PAE | CR4_PSE),
    R(0x00200020, 0xa00020),
    poke64(0x1000, 0x2001), cr4(CR4_PAE),
    R(0x00400030, 0x600030), // PD A again after the second reload
  ]);
  kase('pae-pdpte-cr0-pg-cycle-reloads', C, AB(0x2001, 0x7001, [1, 0, 0], [0, 1, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001),
    cr0(CR0_PE), R(0x00200020, 0x00200020),
    cr0(CR0_PE | CR0_PG), R(0x00200020, 0xa00020),
  ]);
  // A MOV CR0 / CR4 that does not modify PG / PAE, PGE, PSE does not reload.
  kase('pae-pdpte-cr0-wp-toggle-does-not-reload', C, AB(0x2001, 0x7001, [1, 1, 0], [0, 0, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001), cr0(CR0_PE | CR0_PG | CR0_WP),
    R(0x00200020, 0x400020),
  ]);
  kase('pae-pdpte-cr4-same-value-does-not-reload', C, AB(0x2001, 0x7001, [1, 1, 0], [0, 0, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7001), cr4(CR4_PAE),
    R(0x00200020, 0x400020),
  ]);
  // A reload triggered by MOV CR4 that finds a reserved bit #GPs and changes
  // nothing (the PDPTE registers keep PD A); MOV CR3 then #GPs as well.
  kase('pae-pdpte-cr4-reload-gp-keeps-old', C, AB(0x2001, 0x7003, [1, 1, 1], [0, 0, 0]), [
    cr3(0x1000), R(0x00000010, 0x200010),
    poke64(0x1000, 0x7003), // R/W is reserved in a PDPTE
    cr4(CR4_PAE | CR4_PGE, GP),
    R(0x00200020, 0x400020),
    cr3(0x1000, GP),
    R(0x00400030, 0x600030),
  ]);
  // Two PDPTs 32 bytes apart in one page; MOV CR3 switches between them.
  kase('pae-two-pdpts-in-one-page', C, [
    m64(0x1000, 0x2001, 0, 0, 0, 0x7001, 0, 0, 0),
    m64(0x2000, E(0x00200083, A)), m64(0x7000, E(0x00800083, A)),
  ], [cr3(0x1000), R(0x10, 0x200010), cr3(0x1020), R(0x20, 0x800020), cr3(0x1000), R(0x30, 0x200030)]);
}

// =====================================================================
// 7. PAE reserved bits in PDEs and PTEs
// =====================================================================
function paeReserved() {
  const va = 0x40603a5c;
  const C = cpu({ pae: true });
  const CN = cpu({ pae: true, nxe: true });
  const pdpt = m64(0x1000, 0, 0x2001, 0, 0);
  const pde = 0x3000n | P | RW | US, pte = 0xabc000n | P | RW | US, big = 0x00a00000n | P | RW | US | PS;
  const RS = EP | ERSVD;
  // PDE referencing a PT, bits 62:36 reserved. The PDE is where the walk stops;
  // it is not a leaf, so it starts accessed (A after a fault is impl.-defined).
  for (const b of [36, 39, 40, 47, 51, 52, 58, 62]) {
    kase(`pae-pde-rsvd-bit${b}`, C, [pdpt, m64(0x2018, pde | A | bit(b)), m64(0x3018, pte)], [cr3(0x1000), R(va, pf(RS))]);
  }
  kase('pae-pde-bit63-rsvd-when-nxe0', C, [pdpt, m64(0x2018, pde | A | XD), m64(0x3018, pte)], [cr3(0x1000), R(va, pf(RS))]);
  kase('pae-pde-bit63-is-xd-when-nxe1-read-ok', CN, [pdpt, m64(0x2018, E(pde | XD, A)), m64(0x3018, E(pte, A))], [cr3(0x1000), R(va, 0xabca5c)]);
  // PTE bits 62:36 reserved; the leaf stays untouched.
  for (const b of [36, 38, 44, 48, 52, 55, 61, 62]) {
    kase(`pae-pte-rsvd-bit${b}`, C, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | bit(b))], [cr3(0x1000), R(va, pf(RS))]);
  }
  kase('pae-pte-bit63-rsvd-when-nxe0-read', C, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), R(va, pf(RS))]);
  kase('pae-pte-bit63-rsvd-when-nxe0-write', C, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), W(va, pf(RS | EW))]);
  kase('pae-pte-bit63-rsvd-when-nxe0-user-write', C, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), UW(va, pf(RS | EW | EU))]);
  // Fetch from an "NX" page with NXE = 0: reserved-bit fault, and no I/D.
  kase('pae-pte-bit63-rsvd-when-nxe0-fetch', C, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), F(va, pf(RS))]);
  kase('pae-pte-bit63-rsvd-when-nxe0-user-fetch', C, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), UF(va, pf(RS | EU))]);
  kase('pae-pde-bit63-rsvd-when-nxe0-fetch', C, [pdpt, m64(0x2018, pde | A | XD), m64(0x3018, pte)], [cr3(0x1000), F(va, pf(RS))]);
  kase('pae-pte-bit63-is-xd-when-nxe1-write-ok', CN, [pdpt, m64(0x2018, E(pde, A)), m64(0x3018, E(pte | XD, A | D))], [cr3(0x1000), UW(va, 0xabca5c)]);
  // 2 MiB PDE: bits 20:13 and 62:36 reserved (63 with NXE = 0).
  for (const b of [13, 14, 15, 16, 17, 18, 19, 20, 36, 45, 62]) {
    kase(`pae-2m-rsvd-bit${b}`, C, [pdpt, m64(0x2018, big | bit(b))], [cr3(0x1000), R(va, pf(RS))]);
  }
  kase('pae-2m-bit63-rsvd-when-nxe0', C, [pdpt, m64(0x2018, big | XD)], [cr3(0x1000), W(va, pf(RS | EW))]);
  kase('pae-2m-rsvd-fetch-nxe1-has-id', CN, [pdpt, m64(0x2018, big | bit(16))], [cr3(0x1000), F(va, pf(RS | EID)), UF(va, pf(RS | EID | EU))]);
  kase('pae-2m-rsvd-with-cr4-pse', cpu({ pae: true, pse: true }), [pdpt, m64(0x2018, big | bit(20))], [cr3(0x1000), R(va, pf(RS))]);
  kase('pae-pte-rsvd-fetch-nxe1-has-id', CN, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | bit(50))], [cr3(0x1000), F(va, pf(RS | EID)), UF(va, pf(RS | EID | EU))]);
  // Reserved bits are found during the walk, before rights are checked.
  kase('pae-pte-rsvd-beats-pde-supervisor', C, [pdpt, m64(0x2018, (pde & ~US) | A), m64(0x3018, pte | bit(40))],
    [cr3(0x1000), UR(va, pf(RS | EU))]);
  kase('pae-pte-rsvd-beats-read-only-wp1', cpu({ pae: true, wp: true }), [pdpt, m64(0x2018, (pde & ~RW) | A), m64(0x3018, pte | bit(40))],
    [cr3(0x1000), W(va, pf(RS | EW))]);
  kase('pae-pte-rsvd-beats-xd-nxe1', CN, [pdpt, m64(0x2018, pde | A | XD), m64(0x3018, pte | bit(37))],
    [cr3(0x1000), F(va, pf(RS | EID))]);
  kase('pae-pde-rsvd-beats-pte-not-present', C, [pdpt, m64(0x2018, pde | A | bit(44)), m64(0x3018, 0)], [cr3(0x1000), R(va, pf(RS))]);
  kase('pae-pde-rsvd-beats-pde-supervisor-user-write', C, [pdpt, m64(0x2018, (pde & ~US & ~RW) | A | bit(36))],
    [cr3(0x1000), UW(va, pf(RS | EW | EU))]);
  // Address bits 35:32 are fine in a PTE.
  kase('pae-pte-bits-35-32-not-reserved', C, [pdpt, m64(0x2018, E(pde, A)), m64(0x3018, E(0xf00abc000n | P | RW, A))],
    [cr3(0x1000), R(va, 0xf00abca5cn)]);
}

// =====================================================================
// 8. Execute-disable (PAE, EFER.NXE = 1)
// =====================================================================
function nx() {
  const va = 0x40603a5c;
  const CN = cpu({ pae: true, nxe: true });
  const pdpt = m64(0x1000, 0, 0x2001, 0, 0);
  const pde = 0x3000n | P | RW | US, pte = 0xabc000n | P | RW | US, big = 0x00a00000n | P | RW | US | PS;
  // Fetch from an XD page faults with P = 1 and I/D = 1; data accesses don't care.
  kase('pae-nx-pte-xd-sup-fetch', CN, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), F(va, pf(EP | EID))]);
  kase('pae-nx-pte-xd-user-fetch', CN, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte | XD)], [cr3(0x1000), UF(va, pf(EP | EID | EU))]);
  kase('pae-nx-pde-xd-sup-fetch', CN, [pdpt, m64(0x2018, pde | A | XD), m64(0x3018, pte)], [cr3(0x1000), F(va, pf(EP | EID))]);
  kase('pae-nx-pde-xd-user-fetch', CN, [pdpt, m64(0x2018, pde | A | XD), m64(0x3018, pte)], [cr3(0x1000), UF(va, pf(EP | EID | EU))]);
  kase('pae-nx-pde-and-pte-xd-fetch', CN, [pdpt, m64(0x2018, pde | A | XD), m64(0x3018, pte | XD)], [cr3(0x1000), F(va, pf(EP | EID))]);
  kase('pae-nx-2m-xd-sup-fetch', CN, [pdpt, m64(0x2018, big | XD)], [cr3(0x1000), F(va, pf(EP | EID))]);
  kase('pae-nx-2m-xd-user-fetch', CN, [pdpt, m64(0x2018, big | XD)], [cr3(0x1000), UF(va, pf(EP | EID | EU))]);
  kase('pae-nx-pte-xd-data-ok', CN, [pdpt, m64(0x2018, E(pde, A)), m64(0x3018, E(pte | XD, A | D))],
    [cr3(0x1000), R(va, 0xabca5c), UR(va, 0xabca5c), W(va, 0xabca5c), UW(va, 0xabca5c)]);
  kase('pae-nx-pde-xd-data-ok', CN, [pdpt, m64(0x2018, E(pde | XD, A)), m64(0x3018, E(pte, A | D))],
    [cr3(0x1000), UR(va, 0xabca5c), W(va, 0xabca5c)]);
  kase('pae-nx-2m-xd-data-ok', CN, [pdpt, m64(0x2018, E(big | XD, A | D))], [cr3(0x1000), UW(va, 0xa03a5c)]);
  kase('pae-nx-clear-fetch-ok', CN, [pdpt, m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A))], [cr3(0x1000), F(va, 0xabca5c), UF(va, 0xabca5c)]);
  kase('pae-nx-2m-clear-fetch-ok', CN, [pdpt, m64(0x2018, E(big, A))], [cr3(0x1000), UF(va, 0xa03a5c)]);
  // XD in a neighbouring PTE does not matter.
  kase('pae-nx-neighbour-pte-xd', CN, [pdpt, m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A), pte | XD)],
    [cr3(0x1000), F(va, 0xabca5c), F(va + 0x1000, pf(EP | EID))]);
  // User fetch from a supervisor page (no XD) under NXE = 1: P, U, I/D.
  kase('pae-nx-user-fetch-supervisor-page', CN, [pdpt, m64(0x2018, pde | A), m64(0x3018, pte & ~US)], [cr3(0x1000), UF(va, pf(EP | EID | EU))]);
  kase('pae-nx-user-fetch-supervisor-pde-and-xd', CN, [pdpt, m64(0x2018, (pde & ~US) | A | XD), m64(0x3018, pte)], [cr3(0x1000), UF(va, pf(EP | EID | EU))]);
  // Supervisor fetch from a user page: allowed (no SMEP).
  kase('pae-nx-sup-fetch-user-page-ok', CN, [pdpt, m64(0x2018, E(pde, A)), m64(0x3018, E(pte, A))], [cr3(0x1000), F(va, 0xabca5c)]);
  // Write to read-only XD page: a write fault (W set, no I/D: it is not a fetch).
  kase('pae-nx-user-write-ro-xd-page', CN, [pdpt, m64(0x2018, pde | A), m64(0x3018, (pte & ~RW) | XD)], [cr3(0x1000), UW(va, pf(EP | EW | EU))]);
  // User fetch from a supervisor page with NXE = 0: no I/D.
  kase('pae-nxe0-user-fetch-supervisor-page', cpu({ pae: true }), [pdpt, m64(0x2018, pde | A), m64(0x3018, pte & ~US)],
    [cr3(0x1000), UF(va, pf(EP | EU))]);
  // 32-bit paging has no XD and never reports I/D, even with EFER.NXE = 1;
  // bit 31 of a 32-bit PTE is an address bit.
  kase('2l-nxe1-fetch-ok-bit31-is-address', cpu({ nxe: true }), [m32(0x1004, E(0x2007, A)), m32(0x200c, E(0x80055007n, A))],
    [cr3(0x1000), F(0x00403abc, 0x80055abc), UF(0x00403abc, 0x80055abc)]);
  kase('2l-nxe1-user-fetch-supervisor-page-no-id', cpu({ nxe: true }), [m32(0x1004, 0x2027), m32(0x200c, 0x55003)],
    [cr3(0x1000), UF(0x00403abc, pf(EP | EU))]);
}

// =====================================================================
// 9. Accessed and dirty flags
// =====================================================================
function accessedDirty() {
  const C2 = cpu(), C2W = cpu({ wp: true }), C4 = cpu({ pse: true }), CP = cpu({ pae: true });
  const va2 = 0x00403abc; // PDE @0x1004, PTE @0x200c
  const va4 = 0x00c03a5c; // PDE @0x100c (4 MiB)
  const vap = 0x40603a5c; // PDPTE1, PDE @0x2018, PTE @0x3018
  const pdpt = m64(0x1000, 0, 0x2001, 0, 0);
  kase('ad-2l-already-accessed-dirty-unchanged', C2, [m32(0x1004, 0x2063), m32(0x200c, 0x55063)], [cr3(0x1000), W(va2, 0x55abc)]);
  kase('ad-2l-accessed-clean-write-sets-d', C2, [m32(0x1004, 0x2023), m32(0x200c, E(0x55023, D))], [cr3(0x1000), W(va2, 0x55abc)]);
  kase('ad-2l-dirty-not-accessed-read-sets-a', C2, [m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55043, A))], [cr3(0x1000), R(va2, 0x55abc)]);
  kase('ad-2l-read-then-read-no-dirty', C2, [m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A))],
    [cr3(0x1000), R(va2, 0x55abc), R(va2 + 4, 0x55ac0)]);
  // Dirty after read: the read may leave a TLB entry with D = 0; the write
  // must still set D in memory (SDM 4.8).
  kase('ad-2l-dirty-after-read', C2, [m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A | D))],
    [cr3(0x1000), R(va2, 0x55abc), W(va2, 0x55abc)]);
  kase('ad-2l-dirty-after-fetch-other-offset', C2, [m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A | D))],
    [cr3(0x1000), F(va2, 0x55abc), UR(va2, pf(EP | EU)), W(va2 - 0xabc, 0x55000)]);
  kase('ad-2l-dirty-after-read-4m', C4, [m32(0x100c, E(0x01400083, A | D))], [cr3(0x1000), R(va4, 0x01403a5c), W(va4 + 0x100000, 0x01503a5c)]);
  kase('ad-pae-dirty-after-read', CP, [pdpt, m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xabc003, A | D))],
    [cr3(0x1000), R(vap, 0xabca5c), W(vap, 0xabca5c)]);
  kase('ad-pae-dirty-after-read-2m', CP, [pdpt, m64(0x2018, E(0x00a00083, A | D))],
    [cr3(0x1000), R(vap, 0xa03a5c), W(vap + 0x1000, 0xa04a5c)]);
  // WP = 0: a supervisor write to a read-only page succeeds and sets D.
  kase('ad-2l-wp0-sup-write-ro-sets-dirty', C2, [m32(0x1004, E(0x2001, A)), m32(0x200c, E(0x55001, A | D))], [cr3(0x1000), W(va2, 0x55abc)]);
  kase('ad-pae-wp0-sup-write-ro-user-page-sets-dirty', CP, [pdpt, m64(0x2018, E(0x3005, A)), m64(0x3018, E(0xabc005, A | D))],
    [cr3(0x1000), W(vap, 0xabca5c)]);
  // A faulting access does not touch the leaf.
  kase('ad-2l-fault-leaves-pte-clean', C2, [m32(0x1004, 0x2027), m32(0x200c, 0x55005)],
    [cr3(0x1000), UW(va2, pf(EP | EW | EU))]);
  kase('ad-2l-wp1-fault-leaves-pte-clean', C2W, [m32(0x1004, 0x2023), m32(0x200c, 0x55001)],
    [cr3(0x1000), W(va2, pf(EP | EW))]);
  kase('ad-2l-user-fault-leaves-pte-clean', C2, [m32(0x1004, 0x2023), m32(0x200c, 0x55003)], [cr3(0x1000), UR(va2, pf(EP | EU))]);
  kase('ad-2l-4m-fault-leaves-pde-clean', C4, [m32(0x100c, 0x01400081)], [cr3(0x1000), UR(va4, pf(EP | EU))]);
  kase('ad-pae-fault-leaves-pte-clean', CP, [pdpt, m64(0x2018, 0x3027), m64(0x3018, 0xabc005)], [cr3(0x1000), UW(vap, pf(EP | EW | EU))]);
  kase('ad-pae-2m-fault-leaves-pde-clean', CP, [pdpt, m64(0x2018, 0x00a00083)], [cr3(0x1000), UR(vap, pf(EP | EU))]);
  kase('ad-pae-xd-fetch-fault-leaves-pte-clean', cpu({ pae: true, nxe: true }), [pdpt, m64(0x2018, 0x3023), m64(0x3018, 0xabc003n | XD)],
    [cr3(0x1000), F(vap, pf(EP | EID))]);
  kase('ad-pae-rsvd-fault-leaves-pte-clean', CP, [pdpt, m64(0x2018, 0x3023), m64(0x3018, 0xabc003n | bit(45))],
    [cr3(0x1000), W(vap, pf(EP | EW | ERSVD))]);
  kase('ad-pae-2m-rsvd-fault-leaves-pde-clean', CP, [pdpt, m64(0x2018, 0x00a00083n | bit(14))], [cr3(0x1000), W(vap, pf(EP | EW | ERSVD))]);
  kase('ad-2l-4m-rsvd-fault-leaves-pde-clean', C4, [m32(0x100c, 0x01400083n | bit(18))], [cr3(0x1000), W(va4, pf(EP | EW | ERSVD))]);
  // A fault then a permitted access: only the permitted one sets A/D.
  kase('ad-2l-fault-then-read-sets-a-only', C2, [m32(0x1004, 0x2023), m32(0x200c, E(0x55001, A))],
    [cr3(0x1000), UR(va2, pf(EP | EU)), R(va2, 0x55abc)]);
  kase('ad-pae-fault-then-read-sets-a-only', cpu({ pae: true, wp: true }), [pdpt, m64(0x2018, 0x3023), m64(0x3018, E(0xabc001, A))],
    [cr3(0x1000), W(vap, pf(EP | EW)), R(vap, 0xabca5c)]);
  // A non-leaf PDE never gets D (bit 6 is ignored there).
  kase('ad-pae-pde-ps0-no-dirty-on-write', CP, [pdpt, m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xabc003, A | D))], [cr3(0x1000), W(vap, 0xabca5c)]);
  // Many pages under one PT: each leaf gets exactly what its access earned.
  kase('ad-2l-three-pages-read-write-fetch', C2, [
    m32(0x1004, E(0x2003, A)), m32(0x2000, E(0x50003, A), E(0x51003, A | D), E(0x52003, A), 0x53003),
  ], [cr3(0x1000), R(0x00400000, 0x50000), W(0x00401000, 0x51000), F(0x00402000, 0x52000)]);
  kase('ad-pae-three-pages-read-write-fetch', CP, [
    pdpt, m64(0x2018, E(0x3003, A)), m64(0x3000, E(0x50003, A), E(0x51003, A | D), E(0x52003, A), 0x53003),
  ], [cr3(0x1000), R(0x40600000, 0x50000), W(0x40601000, 0x51000), F(0x40602000, 0x52000)]);
}

// =====================================================================
// 10. TLB invalidation, global pages (only architecturally guaranteed outcomes)
// =====================================================================
function invalidation() {
  const va = 0x00403abc; // 2l: PDE @0x1004, PTE @0x200c
  const vap = 0x40603a5c; // pae: PDE @0x2018, PTE @0x3018
  const pdpt = m64(0x1000, 0, 0x2001, 0, 0);
  // INVLPG makes a changed PTE visible.
  kase('inv-2l-invlpg-new-frame', cpu(), [m32(0x1004, E(0x2003, A)), m32(0x200c, X(0x55003, 0x66023))],
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x66003), invlpg(va), R(va, 0x66abc)]);
  kase('inv-2l-invlpg-now-read-only', cpu(), [m32(0x1004, E(0x2007, A)), m32(0x200c, X(0x55007, 0x55005))],
    [cr3(0x1000), UR(va, 0x55abc), poke32(0x200c, 0x55005), invlpg(va), UW(va, pf(EP | EW | EU))]);
  kase('inv-2l-invlpg-now-not-present', cpu(), [m32(0x1004, E(0x2003, A)), m32(0x200c, X(0x55003, 0x55002))],
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x55002), invlpg(va), R(va, pf(0))]);
  kase('inv-2l-invlpg-now-supervisor', cpu(), [m32(0x1004, E(0x2007, A)), m32(0x200c, X(0x55007, 0x55003))],
    [cr3(0x1000), UR(va, 0x55abc), poke32(0x200c, 0x55003), invlpg(va), UR(va, pf(EP | EU))]);
  // INVLPG also flushes paging-structure caches: a changed PDE is seen.
  kase('inv-2l-invlpg-after-pde-change', cpu(), [
    m32(0x1004, X(0x2003, 0x3023)), m32(0x200c, E(0x55003, A)), m32(0x300c, E(0x77003, A)),
  ], [cr3(0x1000), R(va, 0x55abc), poke32(0x1004, 0x3003), invlpg(va), R(va, 0x77abc)]);
  kase('inv-2l-cr3-after-pde-change', cpu(), [
    m32(0x1004, X(0x2003, 0x3023)), m32(0x200c, E(0x55003, A)), m32(0x300c, E(0x77003, A)),
  ], [cr3(0x1000), R(va, 0x55abc), poke32(0x1004, 0x3003), cr3(0x1000), R(va, 0x77abc)]);
  kase('inv-2l-cr3-new-pd', cpu(), [
    m32(0x1004, E(0x2003, A)), m32(0x200c, E(0x55003, A)), m32(0x8004, E(0x9003, A)), m32(0x900c, E(0x77003, A)),
  ], [cr3(0x1000), R(va, 0x55abc), cr3(0x8000), R(va, 0x77abc), cr3(0x1000), R(va, 0x55abc)]);
  kase('inv-pae-invlpg-new-frame', cpu({ pae: true }), [pdpt, m64(0x2018, E(0x3003, A)), m64(0x3018, X(0xabc003, 0xf00def023n))],
    [cr3(0x1000), R(vap, 0xabca5c), poke64(0x3018, 0xf00def003n), invlpg(vap), R(vap, 0xf00defa5cn)]);
  kase('inv-pae-invlpg-after-pde-change', cpu({ pae: true }), [
    pdpt, m64(0x2018, X(0x3003, 0x4023)), m64(0x3018, E(0xabc003, A)), m64(0x4018, E(0xdef003, A)),
  ], [cr3(0x1000), R(vap, 0xabca5c), poke64(0x2018, 0x4003), invlpg(vap), R(vap, 0xdefa5c)]);
  kase('inv-pae-invlpg-2m-to-4k', cpu({ pae: true }), [
    pdpt, m64(0x2018, X(0x00a00083, 0x4023)), m64(0x4018, E(0xdef003, A)),
  ], [cr3(0x1000), R(vap, 0xa03a5c), poke64(0x2018, 0x4003), invlpg(vap), R(vap, 0xdefa5c)]);
  // INVLPG of any address inside a large page invalidates that page's entries.
  kase('inv-2l-invlpg-4m-other-address-in-page', cpu({ pse: true }), [m32(0x100c, X(0x01400083, 0x02c000a3))],
    [cr3(0x1000), R(0x00c03a5c, 0x01403a5c), poke32(0x100c, 0x02c00083), invlpg(0x00f00000), R(0x00c03a5c, 0x02c03a5c)]);
  kase('inv-pae-invlpg-2m-other-address-in-page', cpu({ pae: true }), [pdpt, m64(0x2018, X(0x00a00083, 0x00e000a3))],
    [cr3(0x1000), R(vap, 0xa03a5c), poke64(0x2018, 0x00e00083), invlpg(0x40700000), R(vap, 0xe03a5c)]);
  // CR4.PSE change + INVLPG: the PS bit is re-interpreted.
  kase('inv-2l-pse-set-then-invlpg', cpu(), [m32(0x1004, E(0x00800083, A)), m32(0x0080000c, E(0x55003, A))],
    [cr3(0x1000), R(va, 0x55abc), cr4(CR4_PSE), invlpg(va), R(va, 0x803abc)]);
  kase('inv-2l-pse-clear-then-invlpg', cpu({ pse: true }), [m32(0x1004, E(0x00800083, A)), m32(0x0080000c, E(0x55003, A))],
    [cr3(0x1000), R(va, 0x803abc), cr4(0), invlpg(va), R(va, 0x55abc)]);
  // A not-present entry is never cached: making it present needs no invalidation.
  kase('inv-2l-pte-made-present-no-invlpg', cpu(), [m32(0x1004, 0x2023), m32(0x200c, X(0x55002, 0x55023))],
    [cr3(0x1000), R(va, pf(0)), poke32(0x200c, 0x55003), R(va, 0x55abc)]);
  kase('inv-2l-pde-made-present-no-invlpg', cpu(), [m32(0x1004, X(0x2002, 0x2023)), m32(0x200c, E(0x55003, A))],
    [cr3(0x1000), W(va, pf(EW)), poke32(0x1004, 0x2003), R(va, 0x55abc)]);
  kase('inv-pae-pte-made-present-no-invlpg', cpu({ pae: true }), [pdpt, m64(0x2018, 0x3023), m64(0x3018, X(0xabc000, 0xabc063))],
    [cr3(0x1000), W(vap, pf(EW)), poke64(0x3018, 0xabc003), W(vap, 0xabca5c)]);
  kase('inv-pae-pde-made-present-no-invlpg', cpu({ pae: true }), [pdpt, m64(0x2018, X(0, 0x00a000a3))],
    [cr3(0x1000), R(vap, pf(0)), poke64(0x2018, 0x00a00083), R(vap, 0xa03a5c)]);
  // A page fault invalidates the TLB entries for the faulting address
  // (SDM 4.10.4.1), so a retry after fixing the PTE sees the fix.
  kase('inv-2l-pf-invalidates-retry-after-fix', cpu(), [m32(0x1004, 0x2027), m32(0x200c, X(0x55005, 0x55067))],
    [cr3(0x1000), UW(va, pf(EP | EW | EU)), poke32(0x200c, 0x55007), UW(va, 0x55abc)]);
  kase('inv-pae-pf-invalidates-retry-after-fix', cpu({ pae: true, nxe: true }), [pdpt, m64(0x2018, 0x3027), m64(0x3018, X(0xabc007n | XD, 0xabc027n))],
    [cr3(0x1000), UF(vap, pf(EP | EID | EU)), poke64(0x3018, 0xabc007), UF(vap, 0xabca5c)]);

  // ---- global pages. Whether a global entry survives MOV CR3 is not
  // observable portably (a processor may always drop it). What IS guaranteed:
  // INVLPG drops it, a change of CR4.PGE drops everything, G is ignored when
  // CR4.PGE = 0, and non-global entries always go on MOV CR3.
  const gl = (pte) => [m32(0x1004, E(0x2003, A)), m32(0x200c, X(pte, 0x66123))];
  kase('glob-2l-global-invlpg-sees-new-pte', cpu({ pge: true }), gl(0x55103),
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x66103), invlpg(va), R(va, 0x66abc)]);
  kase('glob-2l-global-cr4-pge-clear-flushes', cpu({ pge: true }), gl(0x55103),
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x66103), cr4(0), R(va, 0x66abc)]);
  kase('glob-2l-global-cr4-pge-set-flushes', cpu(), gl(0x55103),
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x66103), cr4(CR4_PGE), R(va, 0x66abc)]);
  kase('glob-2l-global-cr4-pge-clear-then-cr3', cpu({ pge: true }), gl(0x55103),
    [cr3(0x1000), R(va, 0x55abc), cr4(0), poke32(0x200c, 0x66103), cr3(0x1000), R(va, 0x66abc)]);
  kase('glob-2l-g-ignored-without-pge-cr3-flushes', cpu(), gl(0x55103),
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x66103), cr3(0x1000), R(va, 0x66abc)]);
  kase('glob-2l-non-global-with-pge-cr3-flushes', cpu({ pge: true }), [m32(0x1004, E(0x2003, A)), m32(0x200c, X(0x55003, 0x66023))],
    [cr3(0x1000), R(va, 0x55abc), poke32(0x200c, 0x66003), cr3(0x1000), R(va, 0x66abc)]);
  kase('glob-2l-global-4m-invlpg', cpu({ pse: true, pge: true }), [m32(0x100c, X(0x01400183, 0x02c001a3))],
    [cr3(0x1000), R(0x00c03a5c, 0x01403a5c), poke32(0x100c, 0x02c00183), invlpg(0x00c00000), R(0x00c03a5c, 0x02c03a5c)]);
  kase('glob-2l-global-4m-cr4-pge-clear', cpu({ pse: true, pge: true }), [m32(0x100c, X(0x01400183, 0x02c001a3))],
    [cr3(0x1000), R(0x00c03a5c, 0x01403a5c), poke32(0x100c, 0x02c00183), cr4(CR4_PSE), R(0x00c03a5c, 0x02c03a5c)]);
  // A global page mapped identically in two address spaces: the result is the
  // same whether the entry survives MOV CR3 or not (all A/D bits pre-set so the
  // memory echo does not depend on it either).
  kase('glob-2l-global-same-mapping-two-address-spaces', cpu({ pge: true }), [
    m32(0x1004, 0x2023), m32(0x200c, 0x55163), m32(0x8004, 0x9023), m32(0x900c, 0x55163),
  ], [cr3(0x1000), W(va, 0x55abc), cr3(0x8000), W(va, 0x55abc), R(va, 0x55abc)]);
  const glp = (pte, out) => [pdpt, m64(0x2018, E(0x3003, A)), m64(0x3018, X(pte, out))];
  kase('glob-pae-global-invlpg-sees-new-pte', cpu({ pae: true, pge: true }), glp(0xabc103, 0xdef123),
    [cr3(0x1000), R(vap, 0xabca5c), poke64(0x3018, 0xdef103), invlpg(vap), R(vap, 0xdefa5c)]);
  kase('glob-pae-global-cr4-pge-clear-flushes', cpu({ pae: true, pge: true }), glp(0xabc103, 0xdef123),
    [cr3(0x1000), R(vap, 0xabca5c), poke64(0x3018, 0xdef103), cr4(CR4_PAE), R(vap, 0xdefa5c)]);
  kase('glob-pae-global-cr4-pge-set-flushes', cpu({ pae: true }), glp(0xabc103, 0xdef123),
    [cr3(0x1000), R(vap, 0xabca5c), poke64(0x3018, 0xdef103), cr4(CR4_PAE | CR4_PGE), R(vap, 0xdefa5c)]);
  kase('glob-pae-g-ignored-without-pge-cr3-flushes', cpu({ pae: true }), glp(0xabc103, 0xdef123),
    [cr3(0x1000), R(vap, 0xabca5c), poke64(0x3018, 0xdef103), cr3(0x1000), R(vap, 0xdefa5c)]);
  kase('glob-pae-non-global-with-pge-cr3-flushes', cpu({ pae: true, pge: true }), glp(0xabc003, 0xdef023),
    [cr3(0x1000), R(vap, 0xabca5c), poke64(0x3018, 0xdef003), cr3(0x1000), R(vap, 0xdefa5c)]);
  kase('glob-pae-global-2m-invlpg', cpu({ pae: true, pge: true }), [pdpt, m64(0x2018, X(0x00a00183, 0x00e001a3))],
    [cr3(0x1000), R(vap, 0xa03a5c), poke64(0x2018, 0x00e00183), invlpg(vap), R(vap, 0xe03a5c)]);
  kase('glob-pae-global-2m-cr4-pge-clear', cpu({ pae: true, pge: true }), [pdpt, m64(0x2018, X(0x00a00183, 0x00e001a3))],
    [cr3(0x1000), R(vap, 0xa03a5c), poke64(0x2018, 0x00e00183), cr4(CR4_PAE), R(vap, 0xe03a5c)]);
  kase('glob-pae-global-same-mapping-two-address-spaces', cpu({ pae: true, pge: true }), [
    pdpt, m64(0x2018, 0x3023), m64(0x3018, 0xabc163),
    m64(0x8000, 0, 0x9001, 0, 0), m64(0x9018, 0xa023), m64(0xa018, 0xabc163),
  ], [cr3(0x1000), W(vap, 0xabca5c), cr3(0x8000), W(vap, 0xabca5c), F(vap, 0xabca5c)]);
}

// =====================================================================
// 11. Physical addresses above 4 GiB (PAE, MAXPHYADDR = 36)
// =====================================================================
function highPa() {
  const C = cpu({ pae: true });
  const va = 0x40603a5c;
  kase('hipa-pae-frame-above-4g', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, E(0x3003, A)), m64(0x3018, E(0x987654003n, A))],
    [cr3(0x1000), R(va, 0x987654a5cn)]);
  kase('hipa-pae-pt-above-4g', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, E(0x800003003n, A)), m64(0x800003018n, E(0xabc003, A | D))],
    [cr3(0x1000), W(va, 0xabca5c)]);
  kase('hipa-pae-pd-above-4g', C, [m64(0x1000, 0, 0xf00002001n, 0, 0), m64(0xf00002018n, E(0x3003, A)), m64(0x3018, E(0xabc003, A))],
    [cr3(0x1000), R(va, 0xabca5c)]);
  kase('hipa-pae-all-tables-above-4g', C, [
    m64(0x1000, 0, 0x100002001n, 0, 0), m64(0x100002018n, E(0x200003007n, A)), m64(0x200003018n, E(0x300abc007n, A | D)),
  ], [cr3(0x1000), UW(va, 0x300abca5cn)]);
  kase('hipa-pae-2m-above-4g-max', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, E(0xfffe00083n, A))],
    [cr3(0x1000), R(0x407fffff, 0xfffffffffn)]);
  kase('hipa-pae-4k-max-pa', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xfffff003n, A), E(0xffffff003n, A))],
    [cr3(0x1000), R(0x40603fff, 0xffffffff), R(0x40604fff, 0xfffffffffn)]);
  kase('hipa-pae-bit35-only', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, E(0x3003, A)), m64(0x3018, E(0x800000003n, A))],
    [cr3(0x1000), R(va, 0x800000a5cn)]);
  kase('hipa-pae-2m-bit32', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, E(0x100000083n, A | D))],
    [cr3(0x1000), W(va, 0x100003a5cn)]);
  kase('hipa-pae-fault-on-high-pt', C, [m64(0x1000, 0, 0x2001, 0, 0), m64(0x2018, 0x900003027n), m64(0x900003018n, 0x12345005n)],
    [cr3(0x1000), UW(va, pf(EP | EW | EU))]);
}

// =====================================================================
// 12. CR3 base and PDPT alignment
// =====================================================================
function cr3Base() {
  const C = cpu({ pae: true });
  // PAE CR3: bits 31:5 are the PDPT base (32-byte aligned), bits 4:0 ignored.
  // The 32 bytes at 0x1000 would #GP if loaded; the PDPT is at 0x1020.
  const tables = [
    m64(0x1000, 0x1e7, 0x1e7, 0x1e7, 0x1e7),
    m64(0x1020, 0, 0x2001, 0, 0),
    m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xabc003, A)),
  ];
  kase('cr3-pae-pdpt-at-0x1020', C, tables, [cr3(0x1020), R(0x40603a5c, 0xabca5c)]);
  kase('cr3-pae-pwt-pcd-ignored-for-base', C, tables, [cr3(0x1038), R(0x40603a5c, 0xabca5c)]);
  kase('cr3-pae-bits-2-0-ignored', C, tables, [cr3(0x1027), R(0x40603a5c, 0xabca5c)]);
  kase('cr3-pae-bits-4-0-all-set', C, tables, [cr3(0x103f), R(0x40603a5c, 0xabca5c)]);
  kase('cr3-pae-pdpt-at-0x1000-would-gp', C, tables, [cr3(0x101f, GP), cr3(0x1020), R(0x40603a5c, 0xabca5c)]);
  kase('cr3-pae-pdpt-at-end-of-page', C, [m64(0xfe0, 0, 0x2001, 0, 0), m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xabc003, A))],
    [cr3(0xfe0), R(0x40603a5c, 0xabca5c)]);
  kase('cr3-pae-pdpt-top-of-4g', C, [m64(0xffffffe0, 0, 0x2001, 0, 0), m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xabc003, A))],
    [cr3(0xffffffe0), R(0x40603a5c, 0xabca5c)]);
  // PDPT at physical 0: paging is enabled by a step (not by the cpu block), so
  // the load sees the region.
  kase('cr3-pae-pdpt-at-pa-0', cpu({ pg: false, pae: true }), [m64(0x0, 0, 0x2001, 0, 0), m64(0x2018, E(0x3003, A)), m64(0x3018, E(0xabc003, A))],
    [cr3(0), cr0(CR0_PE | CR0_PG), R(0x40603a5c, 0xabca5c)]);
}

// =====================================================================
// 13. Switching between 32-bit and PAE paging with MOV CR4 (CR0.PG = 1)
// =====================================================================
function modeSwitch() {
  // 32-bit -> PAE. CR3 = 0x1000 is the 2-level PD; after setting CR4.PAE the
  // first 32 bytes of that page are the PDPTEs: PDPTE0 = 0x3001 (PDE[0] in
  // 2-level terms, unused there) -> PD 0x3000. Changing CR4.PAE flushes the TLB.
  kase('mode-2l-to-pae-via-cr4', cpu(), [
    m32(0x1000, 0x3001), m32(0x1020, E(0x4003, A)), m32(0x4000, E(0x5003, A)),
    m64(0x3080, E(0x6003, A)), m64(0x6000, E(0x7003, A)),
  ], [cr3(0x1000), R(0x02000123, 0x5123), cr4(CR4_PAE), R(0x02000123, 0x7123)]);
  // The same switch with a 2-level PDE that is an invalid PDPTE (R/W set): #GP,
  // CR4 unchanged, still 32-bit paging.
  kase('mode-2l-to-pae-bad-pdpte-gp', cpu(), [m32(0x1000, E(0x2003, A)), m32(0x2004, E(0x9003, A))],
    [cr3(0x1000), cr4(CR4_PAE, GP), R(0x00001234, 0x9234)]);
  // PAE -> 32-bit: the PDPT page becomes the PD (PDE[0] = low half of PDPTE0),
  // the old PAE PD becomes a page table.
  kase('mode-pae-to-2l-via-cr4', cpu({ pae: true }), [
    m64(0x1000, E(0x2001, A)), m64(0x2000, E(0x3003, A)), m64(0x3000, E(0x5003, A)), m32(0x2040, E(0x6001, A)),
  ], [cr3(0x1000), R(0x00000abc, 0x5abc), cr4(0), R(0x00010abc, 0x6abc), R(0x00000abc, 0x3abc)]);
}

pagingOff();
twoLevelBasics();
permTables();
fourMeg();
paeBasics();
pdptes();
paeReserved();
nx();
accessedDirty();
invalidation();
highPa();
cr3Base();
modeSwitch();

// ---- output ----
const cpuJson = (c) => {
  const o = {};
  if (c.efer) o.efer = hex(c.efer);
  if (c.cr4) o.cr4 = hex(c.cr4);
  o.cr0 = hex(c.cr0);
  return o;
};
const regionJson = (r, which) => ({ pa: hex(r.pa), [r.width === 8 ? 'u64' : 'u32']: r.words.map((w) => hex(w[which])) });

const inputCases = cases.map((c) => ({
  name: c.name,
  cpu: cpuJson(c.cpu),
  memory: c.regions.map((r) => regionJson(r, 'in')),
  steps: c.steps.map((s) => s.step),
}));
const expectedCases = cases.map((c) => ({
  name: c.name,
  steps: c.steps.map((s) => s.result),
  memory: c.regions.map((r) => regionJson(r, 'out')),
}));

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const inPath = join(root, 'tests', 'vectors', 'sdm-suite.json');
const outPath = join(root, 'tests', 'vectors', 'sdm-suite.expected.json');
const n1 = writeSuite(inPath, 'x86-mmu-vectors/1', inputCases);
const n2 = writeSuite(outPath, 'x86-mmu-results/1', expectedCases);
console.log(`sdm-suite: ${cases.length} cases, ${cases.reduce((n, c) => n + c.steps.length, 0)} steps`);
console.log(`  ${inPath} (${n1} bytes)\n  ${outPath} (${n2} bytes)`);
