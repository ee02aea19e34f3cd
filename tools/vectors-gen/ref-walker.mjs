// Reference model of 32-bit (2-level) and PAE paging, written straight from
// Intel SDM vol. 3 ch. 4, used as the oracle for the vector suites.
//
// It runs one `x86-mmu-vectors/1` case and returns its `x86-mmu-results/1`
// result (without `cycles`). Two modes:
//
//   { tlb: false }  no caching at all: every access is a fresh walk. This is
//                   the "reference" answer.
//   { tlb: true }   an *aggressive* but still SDM-conforming cache: a TLB that
//                   keeps every translation it may keep (including global ones
//                   across MOV CR3, large-page entries across a CR4.PSE change)
//                   and a PDE cache (SDM 4.10.3), flushed only where the SDM says
//                   a flush is guaranteed (SDM 4.10.4.1): INVLPG, MOV CR3
//                   (non-global), MOV CR4 changing PGE (all) or PAE (non-global
//                   here, being aggressive), MOV CR0 clearing PG (all), and a #PF
//                   (entries for the faulting address).
//
// A vector is portable only if both modes give the same result: the checker
// (check-suite.mjs) runs both and rejects cases that differ.
//
// The model also records "not architectural" notes: after a page fault, the
// accessed flag of a non-leaf entry on the faulting walk is implementation-
// defined, so every such entry must already have A=1 in memory.
//
// No dependencies; BigInt everywhere (entries are 64-bit).

// ---- control-register bits (SDM 2.5) ----
export const CR0_PE = 1n;
export const CR0_WP = 1n << 16n;
export const CR0_NW = 1n << 29n;
export const CR0_CD = 1n << 30n;
export const CR0_PG = 1n << 31n;
export const CR4_PSE = 1n << 4n;
export const CR4_PAE = 1n << 5n;
export const CR4_PGE = 1n << 7n;
export const CR4_SMEP = 1n << 20n;
export const EFER_NXE = 1n << 11n;

// ---- paging-structure entry bits (SDM 4.3, 4.4) ----
export const P = 1n, RW = 2n, US = 4n, PWT = 8n, PCD = 0x10n, A = 0x20n, D = 0x40n;
export const PS = 0x80n, PAT = 0x80n, G = 0x100n, XD = 1n << 63n;

const BITS = (hi, lo) => ((1n << BigInt(hi + 1)) - 1n) ^ ((1n << BigInt(lo)) - 1n);
/** PAE PDPTE: bits 2:1, 8:5 and 63:36 (MAXPHYADDR = 36) reserved (SDM Table 4-8). */
export const PDPTE_RSVD = BITS(2, 1) | BITS(8, 5) | BITS(63, 36);
/** PAE PDE/PTE: bits 62:36 reserved; bit 63 too when EFER.NXE = 0 (Tables 4-9..4-11). */
export const PAE_RSVD_HI = BITS(62, 36);
/** PAE 2 MiB PDE: bits 20:13 reserved (Table 4-9). */
export const PDE2M_RSVD = BITS(20, 13);
/** 32-bit paging 4 MiB PDE: bits 21:17 reserved for M = 36 (Table 4-4: 21:(M-19)). */
export const PDE4M_RSVD = BITS(21, 17);
/** Page-fault error code bits (SDM 4.7). */
export const PF_P = 1, PF_W = 2, PF_U = 4, PF_RSVD = 8, PF_ID = 0x10;

const M32 = 0xffffffffn;

// The generators' hex (the reference walker imports nothing from the emulator on
// purpose; the TypeScript tree uses emulator/hex.ts).
export const hex = (v) => '0x' + BigInt(v).toString(16);

class PhysMem {
  constructor() {
    this.bytes = new Map(); // byte address (Number, < 2^36) -> byte
  }
  read(pa, width) {
    let v = 0n;
    const base = Number(pa);
    for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.bytes.get(base + i) ?? 0);
    return v;
  }
  write(pa, width, value) {
    const base = Number(pa);
    let v = BigInt.asUintN(width * 8, BigInt(value));
    for (let i = 0; i < width; i++) {
      this.bytes.set(base + i, Number(v & 0xffn));
      v >>= 8n;
    }
  }
  orBits(pa, width, bits) {
    const v = this.read(pa, width);
    if ((v | bits) !== v) this.write(pa, width, v | bits);
  }
}

class Machine {
  constructor(mem, aggressive) {
    this.mem = mem;
    this.agg = aggressive;
    this.cr0 = 0n;
    this.cr3 = 0n;
    this.cr4 = 0n;
    this.efer = 0n;
    this.pdpte = [0n, 0n, 0n, 0n];
    this.tlb = new Map(); // key -> entry
    this.pdeCache = new Map(); // key -> { ptBase, u, w, xd }
    this.notes = []; // portability problems found while running
    this.nonLeafA0 = []; // addresses of non-leaf entries with A = 0 on a faulting walk
  }
  get paging() { return (this.cr0 & CR0_PG) !== 0n; }
  get pae() { return (this.cr4 & CR4_PAE) !== 0n; }
  get nxe() { return (this.efer & EFER_NXE) !== 0n; }

  /** SDM 4.4.1: load PDPTE0-3 from the 32-byte aligned PDPT; null = #GP. */
  loadPdptes(cr3) {
    const base = cr3 & 0xffffffe0n;
    const e = [0, 1, 2, 3].map((i) => this.mem.read(base + 8n * BigInt(i), 8));
    for (const x of e) if ((x & P) && (x & PDPTE_RSVD)) return null;
    return e;
  }

  flushAll() { this.tlb.clear(); this.pdeCache.clear(); }
  flushNonGlobal() {
    for (const [k, e] of this.tlb) if (!e.global) this.tlb.delete(k);
    this.pdeCache.clear();
  }
  invalidateVa(va, allPdeCache) {
    this.tlb.delete('4k:' + (va >> 12n));
    this.tlb.delete('2m:' + (va >> 21n));
    this.tlb.delete('4m:' + (va >> 22n));
    if (allPdeCache) this.pdeCache.clear();
    else { this.pdeCache.delete('2l:' + (va >> 22n)); this.pdeCache.delete('pae:' + (va >> 21n)); }
  }

  movCr3(v) {
    v &= M32;
    if (this.paging && this.pae) {
      const p = this.loadPdptes(v);
      if (!p) return { fault: 'GP' };
      this.pdpte = p;
    }
    this.cr3 = v;
    this.flushNonGlobal();
    return { ok: true };
  }

  movCr0(v) {
    v &= M32;
    if ((v & CR0_PG) && !(v & CR0_PE)) return { fault: 'GP' };
    // SDM 4.4.1: PDPTEs reload if PAE paging is in use afterwards and the
    // instruction modifies CR0.CD, CR0.NW or CR0.PG.
    if ((v & CR0_PG) && this.pae && ((v ^ this.cr0) & (CR0_PG | CR0_CD | CR0_NW))) {
      const p = this.loadPdptes(this.cr3);
      if (!p) return { fault: 'GP' };
      this.pdpte = p;
    }
    const clearingPg = (this.cr0 & CR0_PG) && !(v & CR0_PG);
    this.cr0 = v;
    if (clearingPg) this.flushAll();
    return { ok: true };
  }

  movCr4(v) {
    v &= M32;
    const changed = v ^ this.cr4;
    // SDM 4.4.1: reload if PAE paging is in use afterwards and the instruction
    // modifies CR4.PAE, PGE, PSE or SMEP.
    if (this.paging && (v & CR4_PAE) && (changed & (CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP))) {
      const p = this.loadPdptes(this.cr3);
      if (!p) return { fault: 'GP' };
      this.pdpte = p;
    }
    this.cr4 = v;
    if (changed & CR4_PGE) this.flushAll();
    else if (changed & CR4_PAE) this.flushNonGlobal();
    return { ok: true };
  }

  pf(va, code) {
    if (this.agg) this.invalidateVa(va, false); // SDM 4.10.4.1: #PF invalidates
    return { fault: 'PF', errorCode: code, cr2: hex(va) };
  }

  access(va, kind, user) {
    va &= M32;
    if (!this.paging) return { pa: hex(va) };
    const write = kind === 'write';
    const fetch = kind === 'fetch';
    const wp = (this.cr0 & CR0_WP) !== 0n;
    const code = (write ? PF_W : 0) | (user ? PF_U : 0) | (fetch && this.pae && this.nxe ? PF_ID : 0);
    const permits = (u, w, xd) =>
      !((user && !u) || (write && !w && (user || wp)) || (fetch && xd));

    if (this.agg) {
      const e = this.tlb.get('4k:' + (va >> 12n)) ?? this.tlb.get('2m:' + (va >> 21n)) ?? this.tlb.get('4m:' + (va >> 22n));
      if (e) {
        if (!permits(e.u, e.w, e.xd)) return this.pf(va, code | PF_P);
        // A write through an entry cached with D=0 must set D in memory: this
        // model re-walks (one allowed implementation).
        if (!write || e.dirty) return { pa: hex(e.frame | (va & e.mask)) };
      }
    }

    // ---- the walk ----
    const nonLeaf = []; // non-leaf entries read from memory on this walk: {addr, width}
    let leaf; // {addr, width, value}
    let u, w, xd = false, frame, mask, size, pdeKey, pdeFromCache = false, ptBase;
    const faultNp = () => { this.checkNonLeafA(nonLeaf, va); return this.pf(va, code); };
    const faultRsvd = () => { this.checkNonLeafA(nonLeaf, va); return this.pf(va, code | PF_P | PF_RSVD); };

    if (!this.pae) {
      // 32-bit paging (SDM 4.3)
      pdeKey = '2l:' + (va >> 22n);
      const pc = this.agg ? this.pdeCache.get(pdeKey) : undefined;
      if (pc) {
        ({ ptBase, u, w } = pc);
        pdeFromCache = true;
      } else {
        const pdeAddr = (this.cr3 & 0xfffff000n) + 4n * (va >> 22n);
        const pde = this.mem.read(pdeAddr, 4);
        if (!(pde & P)) return faultNp();
        u = (pde & US) !== 0n;
        w = (pde & RW) !== 0n;
        if ((this.cr4 & CR4_PSE) && (pde & PS)) {
          if (pde & PDE4M_RSVD) return faultRsvd();
          leaf = { addr: pdeAddr, width: 4, value: pde };
          frame = (((pde >> 13n) & 0xfn) << 32n) | (pde & 0xffc00000n);
          mask = 0x3fffffn;
          size = '4m';
        } else {
          nonLeaf.push({ addr: pdeAddr, width: 4 });
          ptBase = pde & 0xfffff000n;
        }
      }
      if (!leaf) {
        const pteAddr = ptBase + 4n * ((va >> 12n) & 0x3ffn);
        const pte = this.mem.read(pteAddr, 4);
        if (!(pte & P)) return faultNp();
        leaf = { addr: pteAddr, width: 4, value: pte };
        u = u && (pte & US) !== 0n;
        w = w && (pte & RW) !== 0n;
        frame = pte & 0xfffff000n;
        mask = 0xfffn;
        size = '4k';
      }
    } else {
      // PAE paging (SDM 4.4)
      const hiRsvd = PAE_RSVD_HI | (this.nxe ? 0n : XD);
      const pdpte = this.pdpte[Number(va >> 30n)];
      if (!(pdpte & P)) return faultNp();
      pdeKey = 'pae:' + (va >> 21n);
      const pc = this.agg ? this.pdeCache.get(pdeKey) : undefined;
      if (pc) {
        ({ ptBase, u, w, xd } = pc);
        pdeFromCache = true;
      } else {
        const pdeAddr = (pdpte & 0xffffff000n) + 8n * ((va >> 21n) & 0x1ffn);
        const pde = this.mem.read(pdeAddr, 8);
        if (!(pde & P)) return faultNp();
        u = (pde & US) !== 0n;
        w = (pde & RW) !== 0n;
        xd = this.nxe && (pde & XD) !== 0n;
        if (pde & PS) {
          if (pde & (hiRsvd | PDE2M_RSVD)) return faultRsvd();
          leaf = { addr: pdeAddr, width: 8, value: pde };
          frame = pde & 0xfffe00000n;
          mask = 0x1fffffn;
          size = '2m';
        } else {
          nonLeaf.push({ addr: pdeAddr, width: 8 });
          if (pde & hiRsvd) return faultRsvd();
          ptBase = pde & 0xffffff000n;
        }
      }
      if (!leaf) {
        const pteAddr = ptBase + 8n * ((va >> 12n) & 0x1ffn);
        const pte = this.mem.read(pteAddr, 8);
        if (!(pte & P)) return faultNp();
        if (pte & hiRsvd) return faultRsvd();
        leaf = { addr: pteAddr, width: 8, value: pte };
        u = u && (pte & US) !== 0n;
        w = w && (pte & RW) !== 0n;
        xd = xd || (this.nxe && (pte & XD) !== 0n);
        frame = pte & 0xffffff000n;
        mask = 0xfffn;
        size = '4k';
      }
    }

    if (!permits(u, w, xd)) {
      this.checkNonLeafA(nonLeaf, va);
      return this.pf(va, code | PF_P);
    }
    // SDM 4.8: A on every entry used, D on the leaf for a write.
    for (const e of nonLeaf) this.mem.orBits(e.addr, e.width, A);
    this.mem.orBits(leaf.addr, leaf.width, write ? A | D : A);

    if (this.agg) {
      const global = (leaf.value & G) !== 0n && (this.cr4 & CR4_PGE) !== 0n;
      const key = size === '4k' ? '4k:' + (va >> 12n) : size === '2m' ? '2m:' + (va >> 21n) : '4m:' + (va >> 22n);
      const dirty = write || (leaf.value & D) !== 0n;
      this.tlb.set(key, { frame, mask, u, w, xd, dirty, global });
      if (size === '4k' && !pdeFromCache) {
        // u/w/xd of the PDE alone are what a PDE-cache entry holds; recompute
        const pdeOnly = this.pdeOnlyRights(va);
        if (pdeOnly) this.pdeCache.set(pdeKey, { ptBase, ...pdeOnly });
      }
    }
    return { pa: hex(frame | (va & mask)) };
  }

  // Rights of the PDE alone (for a PDE-cache fill right after a walk: the PDE
  // in memory has not changed since, except for its A bit).
  pdeOnlyRights(va) {
    if (!this.pae) {
      const pde = this.mem.read((this.cr3 & 0xfffff000n) + 4n * (va >> 22n), 4);
      return { ptBase: pde & 0xfffff000n, u: (pde & US) !== 0n, w: (pde & RW) !== 0n, xd: false };
    }
    const pdpte = this.pdpte[Number(va >> 30n)];
    const pde = this.mem.read((pdpte & 0xffffff000n) + 8n * ((va >> 21n) & 0x1ffn), 8);
    return { ptBase: pde & 0xffffff000n, u: (pde & US) !== 0n, w: (pde & RW) !== 0n, xd: this.nxe && (pde & XD) !== 0n };
  }

  checkNonLeafA(nonLeaf, va) {
    for (const e of nonLeaf) {
      if (!(this.mem.read(e.addr, e.width) & A)) {
        this.notes.push(`fault at ${hex(va)}: non-leaf entry at ${hex(e.addr)} has A=0 (its A after a fault is implementation-defined)`);
        this.nonLeafA0.push(e.addr);
      }
    }
  }

  invlpg(va) {
    va &= M32;
    if (this.agg) this.invalidateVa(va, true); // SDM: INVLPG also flushes all paging-structure caches
    return { ok: true };
  }
}

function words(region) {
  if (region.u64) return { width: 8, list: region.u64 };
  return { width: 4, list: region.u32 };
}

/**
 * Run one case. Returns { name, steps, memory, notes, nonLeafA0 }.
 * `notes` lists portability problems (non-architectural expectations);
 * `nonLeafA0` the addresses (BigInt) of non-leaf entries that had A = 0 on a
 * faulting walk.
 */
export function runCase(c, { tlb = false } = {}) {
  const mem = new PhysMem();
  const m = new Machine(mem, tlb);
  const notes = m.notes;
  const cpu = c.cpu ?? {};
  const cr0 = BigInt(cpu.cr0 ?? 0), cr4 = BigInt(cpu.cr4 ?? 0), efer = BigInt(cpu.efer ?? 0);
  // The cpu block is applied at CR3 = 0 before the first step. If it turns PAE
  // paging on, the PDPTEs come from pa 0..0x1f, whose contents depend on
  // whether memory regions are written before or after the cpu block: a
  // portable case keeps that range out of its regions.
  if ((cr0 & CR0_PG) && (cr4 & CR4_PAE)) {
    for (const r of c.memory ?? []) {
      const { width, list } = words(r);
      if (BigInt(r.pa) < 0x20n && BigInt(r.pa) + BigInt(width * list.length) > 0n) {
        notes.push('cpu enables PAE paging at CR3=0 while a region covers pa 0..0x1f');
      }
    }
  }
  if ((cr0 & CR0_PG) && !(cr0 & CR0_PE)) notes.push('cpu.cr0 has PG without PE');
  m.efer = efer;
  m.cr4 = cr4;
  m.cr0 = cr0;
  if (m.paging && m.pae) m.pdpte = m.loadPdptes(0n) ?? [0n, 0n, 0n, 0n]; // zero memory here
  for (const r of c.memory ?? []) {
    const { width, list } = words(r);
    list.forEach((v, i) => mem.write(BigInt(r.pa) + BigInt(i * width), width, BigInt(v)));
  }
  const steps = [];
  for (const s of c.steps) {
    switch (s.op) {
      case 'cr3': steps.push(m.movCr3(BigInt(s.value))); break;
      case 'cr0': steps.push(m.movCr0(BigInt(s.value))); break;
      case 'cr4': steps.push(m.movCr4(BigInt(s.value))); break;
      case 'access': steps.push(m.access(BigInt(s.va), s.kind, !!s.user)); break;
      case 'poke':
        if (s.u64 !== undefined) mem.write(BigInt(s.pa), 8, BigInt(s.u64));
        else mem.write(BigInt(s.pa), 4, BigInt(s.u32));
        steps.push({ ok: true });
        break;
      case 'invlpg': steps.push(m.invlpg(BigInt(s.va))); break;
      default: throw new Error(`${c.name}: unknown op ${s.op}`);
    }
  }
  const memory = (c.memory ?? []).map((r) => {
    const { width, list } = words(r);
    const out = list.map((_, i) => hex(mem.read(BigInt(r.pa) + BigInt(i * width), width)));
    return width === 8 ? { pa: r.pa, u64: out } : { pa: r.pa, u32: out };
  });
  return { name: c.name, steps, memory, notes, nonLeafA0: m.nonLeafA0 };
}

/** Results of both models must agree for a portable case. */
export function sameResult(a, b) {
  return JSON.stringify({ s: a.steps, m: a.memory }) === JSON.stringify({ s: b.steps, m: b.memory });
}
