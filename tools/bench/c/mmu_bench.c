/*
 * mmu_bench.c: the C baseline for the pvmmu translation benchmarks.
 *
 * This program does the same modelled work per translation as the
 * TypeScript emulator's hot path, written in plain C99, so the benchmark
 * harness can report "emulator ops/sec vs. the same work in C -O2" measured
 * in the same run. It is meant to be an honest baseline. It is not tuned and
 * not handicapped: the data layout (sparse two-level frame directory of
 * 4 KiB uint32 frames, typed-array style structure-of-arrays TLBs, a
 * direct-mapped host lookup cache) and the per-translation steps follow the
 * emulator's design, not what would be fastest in C.
 *
 * Build: gcc -O2 -std=c99 -o mmu_bench mmu_bench.c
 * Run:   ./mmu_bench [-t SECONDS] [-v]
 *   -t  wall time per benchmark (default 0.5)
 *   -v  print counters and checks to stderr
 * Output: one JSON line on stdout, e.g.
 *   {"translateHit":{"opsPerSec":N},"translateWalkPae":{"opsPerSec":N},
 *    "translateHit2Level":{"opsPerSec":N},"translateWalk2Level":{"opsPerSec":N}}
 * Exit status is non-zero if any translation returns the wrong physical
 * address, if the semantic self-test fails, or if a benchmark does not do
 * the work it claims (e.g. a "walk" benchmark that hits the TLB).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- architectural constants (emulator/paging-bits.ts) ---- */
#define CR0_WP (1u << 16)
#define CR4_PSE (1u << 4)
#define CR4_PAE (1u << 5)
#define CR4_PGE (1u << 7)
#define EFER_NXE (1u << 11)

#define PTE_P (1u << 0)
#define PTE_RW (1u << 1)
#define PTE_US (1u << 2)
#define PTE_A (1u << 5)
#define PTE_D (1u << 6)
#define PTE_PS (1u << 7)
#define PTE_G (1u << 8)
#define PTE_NX_HI (1u << 31)
#define PAE_HI_ADDR_MASK 0x0000000fu

#define PDE4M_RSVD_LO 0x003e0000u
#define PDPTE_RSVD_LO 0x000001e6u
#define PDPTE_RSVD_HI 0xfffffff0u
#define PAE_RSVD_HI 0x7ffffff0u      /* bits 62:36 */
#define PAE_RSVD_HI_NONX 0xfffffff0u /* bits 63:36 when EFER.NXE = 0 */
#define PDE2M_RSVD_LO 0x001fe000u

#define PFEC_P (1u << 0)
#define PFEC_W (1u << 1)
#define PFEC_U (1u << 2)
#define PFEC_RSVD (1u << 3)
#define PFEC_ID (1u << 4)

#define ACCESS_READ 0
#define ACCESS_WRITE 1
#define ACCESS_FETCH 2

/* Combined flags kept in a TLB slot. NX is kept at bit 3 (a free bit). */
#define TF_RW PTE_RW
#define TF_US PTE_US
#define TF_NX (1u << 3)
#define TF_D PTE_D
#define TF_G PTE_G

/* allow bits: class = access * 2 + user (0..5) */
#define AL_READ_S (1u << 0)
#define AL_READ_U (1u << 1)
#define AL_WRITE_S (1u << 2)
#define AL_WRITE_U (1u << 3)
#define AL_FETCH_S (1u << 4)
#define AL_FETCH_U (1u << 5)

#define FAULT UINT64_MAX

/* ---- cycle figures: the core2 preset (emulator/cost-model.ts) ---- */
#define CYC_L2TLB_HIT 2
#define CYC_WALK_CACHED 3
#define CYC_WALK_MEMORY 14
#define CYC_AD_UPDATE 20
#define CYC_CR3_WRITE 96
#define CYC_PAGE_FAULT 710
#define CYC_PDPTE_LOAD 56

/* ---- sparse physical memory (emulator/phys-mem.ts) ---- */
#define DIR_SHIFT 12
#define DIR_SIZE (1u << DIR_SHIFT)
#define LEAF_MASK (DIR_SIZE - 1)
#define MAX_PFN (1u << 24)

typedef struct {
  uint32_t **dir[DIR_SIZE]; /* pfn 23:12 -> leaf of 4096 frame pointers */
  uint32_t touched;
} PhysMem;

static uint32_t ZERO_FRAME[1024];

static PhysMem *physNew(void) {
  PhysMem *pm = calloc(1, sizeof *pm);
  if (!pm) abort();
  return pm;
}

static void physFree(PhysMem *pm) {
  for (uint32_t d = 0; d < DIR_SIZE; d++) {
    if (!pm->dir[d]) continue;
    for (uint32_t l = 0; l < DIR_SIZE; l++) free(pm->dir[d][l]);
    free(pm->dir[d]);
  }
  free(pm);
}

/* The frame for reading; the shared zero frame if never written. */
static inline const uint32_t *frameR(const PhysMem *pm, uint32_t pfn) {
  uint32_t **leaf = pm->dir[pfn >> DIR_SHIFT];
  if (leaf == NULL) return ZERO_FRAME;
  const uint32_t *f = leaf[pfn & LEAF_MASK];
  return f == NULL ? ZERO_FRAME : f;
}

/* The frame for writing, created zero-filled on first use. */
static uint32_t *frameW(PhysMem *pm, uint32_t pfn) {
  if (pfn >= MAX_PFN) {
    fprintf(stderr, "pfn 0x%x beyond MAXPHYADDR\n", pfn);
    exit(2);
  }
  uint32_t **leaf = pm->dir[pfn >> DIR_SHIFT];
  if (leaf == NULL) {
    leaf = pm->dir[pfn >> DIR_SHIFT] = calloc(DIR_SIZE, sizeof *leaf);
    if (!leaf) abort();
  }
  uint32_t *f = leaf[pfn & LEAF_MASK];
  if (f == NULL) {
    f = leaf[pfn & LEAF_MASK] = calloc(1024, sizeof *f);
    if (!f) abort();
    pm->touched++;
  }
  return f;
}

static inline uint32_t physWord(const PhysMem *pm, uint32_t pfn, uint32_t word) {
  return frameR(pm, pfn)[word];
}

static inline void physSetWord(PhysMem *pm, uint32_t pfn, uint32_t word, uint32_t v) {
  frameW(pm, pfn)[word] = v;
}

/* ---- modelled TLB geometry (core2: DTLB0 16 x 4-way, DTLB1 256 x 4-way) ---- */
#define T0_ENTRIES 16
#define T0_WAYS 4
#define T0_SETS (T0_ENTRIES / T0_WAYS)
#define T1_ENTRIES 256
#define T1_WAYS 4
#define T1_SETS (T1_ENTRIES / T1_WAYS)
#define HC_SIZE 4096
#define HC_MASK (HC_SIZE - 1)
#define WC_LINES 64
#define TAG_INVALID 0xffffffffu

typedef struct {
  uint64_t tlbHits, l2TlbHits, tlbMisses;
  uint64_t walksByDepth[4];
  uint64_t walkCycles, walkCacheHits, walkCacheMisses, adUpdates;
  uint64_t pageFaults, gpFaults, flushesFull, flushesNonGlobal, invlpgs, cr3Writes;
  uint64_t otherCycles;
} Counters;

typedef struct {
  PhysMem *mem;
  uint32_t cr0, cr3, cr4, efer;
  uint32_t pdpteLo[4], pdpteHi[4];
  uint32_t cr2, lastPfec;

  /* DTLB0 and DTLB1 as parallel arrays (slot = set * ways + way) */
  uint32_t t0Tag[T0_ENTRIES], t0Pfn[T0_ENTRIES], t0Flags[T0_ENTRIES], t0Allow[T0_ENTRIES];
  uint64_t t0Stamp[T0_ENTRIES];
  uint32_t t1Tag[T1_ENTRIES], t1Pfn[T1_ENTRIES], t1Flags[T1_ENTRIES], t1Allow[T1_ENTRIES];
  uint64_t t1Stamp[T1_ENTRIES];
  uint64_t clock; /* LRU timestamp source */

  /* host-side direct-mapped lookup cache in front of DTLB0 */
  uint32_t hcVpn[HC_SIZE], hcSlot[HC_SIZE], hcGen[HC_SIZE], hcPfn[HC_SIZE];
  uint32_t gen;

  /* walk-entry cache: tags of 64-byte lines, direct-mapped */
  uint32_t wcTag[WC_LINES];

  Counters c;
} Mmu;

static void tlbFlush(Mmu *m, int keepGlobal) {
  for (int i = 0; i < T0_ENTRIES; i++)
    if (!keepGlobal || !(m->t0Flags[i] & TF_G)) m->t0Tag[i] = TAG_INVALID;
  for (int i = 0; i < T1_ENTRIES; i++)
    if (!keepGlobal || !(m->t1Flags[i] & TF_G)) m->t1Tag[i] = TAG_INVALID;
  m->gen++; /* every host-cache entry is now stale */
  if (keepGlobal) m->c.flushesNonGlobal++;
  else m->c.flushesFull++;
}

static void invalidatePage(Mmu *m, uint32_t vpn) {
  uint32_t b0 = (vpn & (T0_SETS - 1)) * T0_WAYS, b1 = (vpn & (T1_SETS - 1)) * T1_WAYS;
  for (int w = 0; w < T0_WAYS; w++)
    if (m->t0Tag[b0 + w] == vpn) m->t0Tag[b0 + w] = TAG_INVALID;
  for (int w = 0; w < T1_WAYS; w++)
    if (m->t1Tag[b1 + w] == vpn) m->t1Tag[b1 + w] = TAG_INVALID;
  if (m->hcVpn[vpn & HC_MASK] == vpn) m->hcVpn[vpn & HC_MASK] = TAG_INVALID;
}

static Mmu *mmuNew(PhysMem *mem) {
  Mmu *m = calloc(1, sizeof *m);
  if (!m) abort();
  m->mem = mem;
  m->gen = 1;
  for (int i = 0; i < T0_ENTRIES; i++) m->t0Tag[i] = TAG_INVALID;
  for (int i = 0; i < T1_ENTRIES; i++) m->t1Tag[i] = TAG_INVALID;
  for (int i = 0; i < HC_SIZE; i++) m->hcVpn[i] = TAG_INVALID;
  for (int i = 0; i < WC_LINES; i++) m->wcTag[i] = TAG_INVALID;
  return m;
}

/* MOV to CR3. Under PAE, loads the four PDPTE registers (SDM 4.4.1); a bad
 * PDPTE is a #GP and leaves CR3 unchanged. Returns 0 on success. */
static int writeCr3(Mmu *m, uint32_t cr3) {
  m->c.cr3Writes++;
  if (m->cr4 & CR4_PAE) {
    uint32_t base = cr3 & 0xffffffe0u, lo[4], hi[4];
    for (int i = 0; i < 4; i++) {
      uint32_t pa = base + (uint32_t)i * 8;
      lo[i] = physWord(m->mem, pa >> 12, (pa & 4095) >> 2);
      hi[i] = physWord(m->mem, pa >> 12, ((pa & 4095) >> 2) + 1);
      if ((lo[i] & PTE_P) && ((lo[i] & PDPTE_RSVD_LO) || (hi[i] & PDPTE_RSVD_HI))) {
        m->c.gpFaults++;
        return -1;
      }
    }
    memcpy(m->pdpteLo, lo, sizeof lo);
    memcpy(m->pdpteHi, hi, sizeof hi);
    m->c.otherCycles += CYC_PDPTE_LOAD;
  }
  m->cr3 = cr3;
  tlbFlush(m, (m->cr4 & CR4_PGE) != 0);
  m->c.otherCycles += CYC_CR3_WRITE;
  return 0;
}

/* Charge one paging-structure entry read through the walk-entry cache. */
static inline uint32_t walkEntryCost(Mmu *m, uint64_t pa) {
  uint32_t line = (uint32_t)(pa >> 6);
  uint32_t i = line & (WC_LINES - 1);
  if (m->wcTag[i] == line) {
    m->c.walkCacheHits++;
    return CYC_WALK_CACHED;
  }
  m->wcTag[i] = line;
  m->c.walkCacheMisses++;
  return CYC_WALK_MEMORY;
}

/* Allowed access classes for combined flags, before the dirty-bit rule. */
static inline uint32_t permMask(uint32_t flags, uint32_t cr0) {
  uint32_t rw = flags & TF_RW, us = flags & TF_US, nx = flags & TF_NX;
  uint32_t a = AL_READ_S;
  if (us) a |= AL_READ_U;
  if (rw || !(cr0 & CR0_WP)) a |= AL_WRITE_S;
  if (us && rw) a |= AL_WRITE_U;
  if (!nx) a |= AL_FETCH_S | (us ? AL_FETCH_U : 0);
  return a;
}

/* Fill the host cache entry for vpn, pointing at DTLB0 slot `slot`. */
static inline void hcFill(Mmu *m, uint32_t vpn, uint32_t slot, uint32_t pfn) {
  uint32_t h = vpn & HC_MASK;
  m->hcVpn[h] = vpn;
  m->hcSlot[h] = slot;
  m->hcGen[h] = m->gen;
  m->hcPfn[h] = pfn;
}

/* Insert into DTLB0 (same tag reused, else an invalid way, else LRU). */
static uint32_t t0Fill(Mmu *m, uint32_t vpn, uint32_t pfn, uint32_t flags, uint32_t allow) {
  uint32_t base = (vpn & (T0_SETS - 1)) * T0_WAYS, victim = base;
  uint64_t oldest = UINT64_MAX;
  for (uint32_t s = base; s < base + T0_WAYS; s++) {
    uint32_t t = m->t0Tag[s];
    if (t == vpn) { victim = s; break; }
    if (t == TAG_INVALID) { if (oldest != 0) { victim = s; oldest = 0; } continue; }
    if (m->t0Stamp[s] < oldest) { oldest = m->t0Stamp[s]; victim = s; }
  }
  uint32_t old = m->t0Tag[victim];
  /* a host-cache entry must never outlive the DTLB0 slot it points at */
  if (old != TAG_INVALID && old != vpn && m->hcVpn[old & HC_MASK] == old) m->hcVpn[old & HC_MASK] = TAG_INVALID;
  m->t0Tag[victim] = vpn;
  m->t0Pfn[victim] = pfn;
  m->t0Flags[victim] = flags;
  m->t0Allow[victim] = allow;
  m->t0Stamp[victim] = ++m->clock;
  return victim;
}

static void t1Fill(Mmu *m, uint32_t vpn, uint32_t pfn, uint32_t flags, uint32_t allow) {
  uint32_t base = (vpn & (T1_SETS - 1)) * T1_WAYS, victim = base;
  uint64_t oldest = UINT64_MAX;
  for (uint32_t s = base; s < base + T1_WAYS; s++) {
    uint32_t t = m->t1Tag[s];
    if (t == vpn) { victim = s; break; }
    if (t == TAG_INVALID) { if (oldest != 0) { victim = s; oldest = 0; } continue; }
    if (m->t1Stamp[s] < oldest) { oldest = m->t1Stamp[s]; victim = s; }
  }
  m->t1Tag[victim] = vpn;
  m->t1Pfn[victim] = pfn;
  m->t1Flags[victim] = flags;
  m->t1Allow[victim] = allow;
  m->t1Stamp[victim] = ++m->clock;
}

static uint64_t pageFault(Mmu *m, uint32_t va, uint32_t pfec) {
  m->cr2 = va;
  m->lastPfec = pfec;
  m->c.pageFaults++;
  m->c.otherCycles += CYC_PAGE_FAULT;
  invalidatePage(m, va >> 12); /* a #PF invalidates the faulting page's entries */
  return FAULT;
}

static inline uint32_t faultCode(int access, int user) {
  return (access == ACCESS_WRITE ? PFEC_W : 0) | (user ? PFEC_U : 0) |
         (access == ACCESS_FETCH ? PFEC_ID : 0);
}

/* Finish a successful walk: permission check, A/D updates, TLB and host-cache fill.
 * Entry locations are (pfn, word index) of the low word of each entry; the
 * leaf is the PTE, or the PDE for a large page (then pdeW < 0 means none). */
static uint64_t walkDone(Mmu *m, uint32_t va, int access, int user, uint32_t cyc, int depth,
                         uint32_t pdePfn, int pdeW, uint32_t pde, uint32_t leafPfn, int leafW,
                         uint32_t leaf, uint32_t flags, uint32_t pfn) {
  int cls = access * 2 + user;
  uint32_t perm = permMask(flags, m->cr0);
  if (!((perm >> cls) & 1)) {
    m->c.walkCycles += cyc;
    m->c.otherCycles += cyc;
    return pageFault(m, va, PFEC_P | faultCode(access, user));
  }
  if (pdeW >= 0 && !(pde & PTE_A)) {
    physSetWord(m->mem, pdePfn, (uint32_t)pdeW, pde | PTE_A);
    m->c.adUpdates++;
    cyc += CYC_AD_UPDATE;
  }
  uint32_t nl = leaf | PTE_A | (access == ACCESS_WRITE ? PTE_D : 0);
  if (nl != leaf) {
    physSetWord(m->mem, leafPfn, (uint32_t)leafW, nl);
    m->c.adUpdates++;
    cyc += CYC_AD_UPDATE;
  }
  flags |= (nl & PTE_D) | ((m->cr4 & CR4_PGE) ? (leaf & PTE_G) : 0);
  /* a write with D clear in the TLB entry must come back to set D */
  uint32_t allow = (flags & TF_D) ? perm : perm & ~(AL_WRITE_S | AL_WRITE_U);

  m->c.walksByDepth[depth]++;
  m->c.walkCycles += cyc;
  m->c.otherCycles += cyc;
  uint32_t vpn = va >> 12;
  uint32_t slot = t0Fill(m, vpn, pfn, flags, allow);
  t1Fill(m, vpn, pfn, flags, allow);
  hcFill(m, vpn, slot, pfn);
  return (uint64_t)pfn * 4096 + (va & 4095);
}

/* PAE walk: PDPTE register, PDE (8 bytes), PTE (8 bytes). */
static uint64_t walkPae(Mmu *m, uint32_t va, int access, int user) {
  const PhysMem *mem = m->mem;
  uint32_t fc = faultCode(access, user);
  uint32_t rsvdHi = (m->efer & EFER_NXE) ? PAE_RSVD_HI : PAE_RSVD_HI_NONX;
  uint32_t nxOn = (m->efer & EFER_NXE) ? PTE_NX_HI : 0;
  uint32_t cyc = 0;

  uint32_t pdpLo = m->pdpteLo[va >> 30], pdpHi = m->pdpteHi[va >> 30];
  if (!(pdpLo & PTE_P)) return pageFault(m, va, fc);
  uint32_t pdPfn = (pdpLo >> 12) | ((pdpHi & PAE_HI_ADDR_MASK) << 20);

  uint32_t pdeW = ((va >> 21) & 511) * 2;
  cyc += walkEntryCost(m, (uint64_t)pdPfn * 4096 + pdeW * 4);
  const uint32_t *f = frameR(mem, pdPfn);
  uint32_t pdeLo = f[pdeW], pdeHi = f[pdeW + 1];
  if (!(pdeLo & PTE_P)) goto fault_np;
  if (pdeHi & rsvdHi) goto fault_rsvd;

  if (pdeLo & PTE_PS) { /* 2 MiB page: the PDE is the leaf; held as 4 KiB pieces */
    if (pdeLo & PDE2M_RSVD_LO) goto fault_rsvd;
    uint32_t flags = (pdeLo & (PTE_RW | PTE_US)) | ((pdeHi & nxOn) ? TF_NX : 0);
    uint32_t pfn = (((pdeLo >> 21) << 9) | ((pdeHi & PAE_HI_ADDR_MASK) << 20)) + ((va >> 12) & 511);
    return walkDone(m, va, access, user, cyc, 1, 0, -1, 0, pdPfn, (int)pdeW, pdeLo, flags, pfn);
  }

  uint32_t ptPfn = (pdeLo >> 12) | ((pdeHi & PAE_HI_ADDR_MASK) << 20);
  uint32_t pteW = ((va >> 12) & 511) * 2;
  cyc += walkEntryCost(m, (uint64_t)ptPfn * 4096 + pteW * 4);
  f = frameR(mem, ptPfn);
  uint32_t pteLo = f[pteW], pteHi = f[pteW + 1];
  if (!(pteLo & PTE_P)) goto fault_np;
  if (pteHi & rsvdHi) goto fault_rsvd;

  {
    uint32_t flags = (pdeLo & pteLo & (PTE_RW | PTE_US)) | (((pdeHi | pteHi) & nxOn) ? TF_NX : 0);
    uint32_t pfn = (pteLo >> 12) | ((pteHi & PAE_HI_ADDR_MASK) << 20);
    return walkDone(m, va, access, user, cyc, 2, pdPfn, (int)pdeW, pdeLo, ptPfn, (int)pteW, pteLo, flags, pfn);
  }

fault_np:
  m->c.walkCycles += cyc;
  m->c.otherCycles += cyc;
  return pageFault(m, va, fc);
fault_rsvd:
  m->c.walkCycles += cyc;
  m->c.otherCycles += cyc;
  return pageFault(m, va, PFEC_P | PFEC_RSVD | fc);
}

/* 2-level walk: PDE (4 bytes), PTE (4 bytes); 4 MiB pages with CR4.PSE. */
static uint64_t walk2(Mmu *m, uint32_t va, int access, int user) {
  const PhysMem *mem = m->mem;
  uint32_t fc = faultCode(access, user);
  uint32_t cyc = 0;

  uint32_t pdPfn = m->cr3 >> 12;
  uint32_t pdeW = va >> 22;
  cyc += walkEntryCost(m, (uint64_t)pdPfn * 4096 + pdeW * 4);
  uint32_t pde = frameR(mem, pdPfn)[pdeW];
  if (!(pde & PTE_P)) goto fault_np;

  if ((pde & PTE_PS) && (m->cr4 & CR4_PSE)) { /* 4 MiB page (PSE-36) */
    if (pde & PDE4M_RSVD_LO) {
      m->c.walkCycles += cyc;
      m->c.otherCycles += cyc;
      return pageFault(m, va, PFEC_P | PFEC_RSVD | fc);
    }
    uint32_t pfn = ((pde >> 22) << 10) | (((pde >> 13) & 0xf) << 20) | ((va >> 12) & 1023);
    return walkDone(m, va, access, user, cyc, 1, 0, -1, 0, pdPfn, (int)pdeW, pde,
                    pde & (PTE_RW | PTE_US), pfn);
  }

  uint32_t ptPfn = pde >> 12;
  uint32_t pteW = (va >> 12) & 1023;
  cyc += walkEntryCost(m, (uint64_t)ptPfn * 4096 + pteW * 4);
  uint32_t pte = frameR(mem, ptPfn)[pteW];
  if (!(pte & PTE_P)) goto fault_np;
  return walkDone(m, va, access, user, cyc, 2, pdPfn, (int)pdeW, pde, ptPfn, (int)pteW, pte,
                  pde & pte & (PTE_RW | PTE_US), pte >> 12);

fault_np:
  m->c.walkCycles += cyc;
  m->c.otherCycles += cyc;
  return pageFault(m, va, fc);
}

/* Everything after a host-cache miss: DTLB0 set, DTLB1 set, then a walk. */
static uint64_t translateSlow(Mmu *m, uint32_t va, int access, int user) {
  uint32_t vpn = va >> 12;
  int cls = access * 2 + user;

  uint32_t b0 = (vpn & (T0_SETS - 1)) * T0_WAYS;
  for (uint32_t s = b0; s < b0 + T0_WAYS; s++) {
    if (m->t0Tag[s] != vpn) continue;
    if ((m->t0Allow[s] >> cls) & 1) {
      m->t0Stamp[s] = ++m->clock;
      m->c.tlbHits++;
      hcFill(m, vpn, s, m->t0Pfn[s]);
      return (uint64_t)m->t0Pfn[s] * 4096 + (va & 4095);
    }
    goto walk; /* present but not allowed (permission or D clear): re-walk */
  }

  {
    uint32_t b1 = (vpn & (T1_SETS - 1)) * T1_WAYS;
    for (uint32_t s = b1; s < b1 + T1_WAYS; s++) {
      if (m->t1Tag[s] != vpn) continue;
      if ((m->t1Allow[s] >> cls) & 1) {
        m->t1Stamp[s] = ++m->clock;
        m->c.l2TlbHits++;
        m->c.otherCycles += CYC_L2TLB_HIT;
        uint32_t slot = t0Fill(m, vpn, m->t1Pfn[s], m->t1Flags[s], m->t1Allow[s]);
        hcFill(m, vpn, slot, m->t1Pfn[s]);
        return (uint64_t)m->t1Pfn[s] * 4096 + (va & 4095);
      }
      break;
    }
  }

walk:
  m->c.tlbMisses++;
  return (m->cr4 & CR4_PAE) ? walkPae(m, va, access, user) : walk2(m, va, access, user);
}

/* The hot path: host-cache compare, generation check, allow-bit check,
 * LRU stamp, hit counter, physical address. */
static inline uint64_t translate(Mmu *m, uint32_t va, int access, int user) {
  uint32_t vpn = va >> 12;
  uint32_t h = vpn & HC_MASK;
  if (m->hcVpn[h] == vpn && m->hcGen[h] == m->gen) {
    uint32_t slot = m->hcSlot[h];
    if ((m->t0Allow[slot] >> (access * 2 + user)) & 1) {
      m->t0Stamp[slot] = ++m->clock;
      m->c.tlbHits++;
      return (uint64_t)m->hcPfn[h] * 4096 + (va & 4095);
    }
  }
  return translateSlow(m, va, access, user);
}

/* ---- address spaces used by the benchmarks ---- */
#define NPAGES 8192
#define HOT_PAGES 16
#define VA_BASE 0x40000000u
#define PT_BASE_PFN 0x10u

/* PAE data frames sit above 4 GiB so the 36-bit path is exercised. */
static uint32_t paePfnOf(uint32_t page) { return 0x123000u + page * 5; }
static uint32_t twoPfnOf(uint32_t page) { return 0x20000u + page * 3; }

/* CR3 0x1000 -> PDPT; four PDPTEs -> PDs at pfn 2..5; VA_BASE is PDPTE 1.
 * 16 page tables of 512 PTEs at pfn 0x10.., user read/write, NX. */
static Mmu *setupPae(void) {
  PhysMem *pm = physNew();
  for (uint32_t i = 0; i < 4; i++) physSetWord(pm, 1, i * 2, ((2 + i) << 12) | PTE_P);
  uint32_t pdPfn = 2 + (VA_BASE >> 30);
  for (uint32_t k = 0; k < NPAGES / 512; k++) {
    uint32_t pdeIdx = ((VA_BASE >> 21) & 511) + k;
    physSetWord(pm, pdPfn, pdeIdx * 2, ((PT_BASE_PFN + k) << 12) | PTE_P | PTE_RW | PTE_US);
    for (uint32_t j = 0; j < 512; j++) {
      uint32_t pfn = paePfnOf(k * 512 + j);
      physSetWord(pm, PT_BASE_PFN + k, j * 2, (pfn << 12) | PTE_P | PTE_RW | PTE_US);
      physSetWord(pm, PT_BASE_PFN + k, j * 2 + 1, (pfn >> 20) | PTE_NX_HI);
    }
  }
  Mmu *m = mmuNew(pm);
  m->cr0 = CR0_WP | 0x80000001u;
  m->cr4 = CR4_PAE | CR4_PGE;
  m->efer = EFER_NXE;
  if (writeCr3(m, 0x1000) != 0) { fprintf(stderr, "PAE setup: CR3 load #GP\n"); exit(1); }
  return m;
}

/* CR3 0x1000 -> PD; VA_BASE is PDE 256; 8 page tables of 1024 PTEs at pfn 0x10.. */
static Mmu *setup2(void) {
  PhysMem *pm = physNew();
  for (uint32_t k = 0; k < NPAGES / 1024; k++) {
    physSetWord(pm, 1, (VA_BASE >> 22) + k, ((PT_BASE_PFN + k) << 12) | PTE_P | PTE_RW | PTE_US);
    for (uint32_t j = 0; j < 1024; j++)
      physSetWord(pm, PT_BASE_PFN + k, j, (twoPfnOf(k * 1024 + j) << 12) | PTE_P | PTE_RW | PTE_US);
  }
  Mmu *m = mmuNew(pm);
  m->cr0 = CR0_WP | 0x80000001u;
  m->cr4 = CR4_PSE | CR4_PGE;
  if (writeCr3(m, 0x1000) != 0) { fprintf(stderr, "2-level setup: CR3 load #GP\n"); exit(1); }
  return m;
}

static void mmuFree(Mmu *m) {
  physFree(m->mem);
  free(m);
}

/* ---- benchmark loops ---- */
static volatile uint64_t sink;
static int verbose;
static double runSeconds = 0.5;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define BATCH 16384u
/* op i touches page order(i), at offset (i >> 2) & 0xffc: user reads */
#define HOT_PAGE(i) ((i) & (HOT_PAGES - 1))
#define WALK_PAGE(perm, i) ((perm)[(i) & (NPAGES - 1)])
#define OFF(i) (((i) >> 2) & 0xffcu)

static void die(const char *bench, const char *what, uint64_t got, uint64_t want) {
  fprintf(stderr, "%s: %s: got 0x%llx, expected 0x%llx\n", bench, what, (unsigned long long)got,
          (unsigned long long)want);
  exit(1);
}

typedef uint32_t (*PfnOf)(uint32_t);

/* Warm-up pass: every translation checked against the mapping. */
static void warmup(Mmu *m, const char *name, const uint32_t *perm, uint32_t n, PfnOf pfnOf) {
  for (uint32_t i = 0; i < n; i++) {
    uint32_t page = perm ? WALK_PAGE(perm, i) : HOT_PAGE(i);
    uint64_t pa = translate(m, VA_BASE + (page << 12) + OFF(i), ACCESS_READ, 1);
    uint64_t want = (uint64_t)pfnOf(page) * 4096 + OFF(i);
    if (pa != want) die(name, "warm-up translation", pa, want);
  }
}

static double finish(Mmu *m, const char *name, const uint32_t *perm, PfnOf pfnOf, uint64_t ops,
                     double secs, uint64_t sum, const Counters *before, int expectWalks) {
  uint64_t want = 0;
  for (uint64_t i = 0; i < ops; i++) {
    uint32_t ii = (uint32_t)i;
    uint32_t page = perm ? WALK_PAGE(perm, ii) : HOT_PAGE(ii);
    want += (uint64_t)pfnOf(page) * 4096 + OFF(ii);
  }
  if (sum != want) die(name, "checksum of timed translations", sum, want);
  uint64_t hits = m->c.tlbHits - before->tlbHits;
  uint64_t l2 = m->c.l2TlbHits - before->l2TlbHits;
  uint64_t walks = m->c.walksByDepth[2] - before->walksByDepth[2];
  uint64_t faults = m->c.pageFaults - before->pageFaults;
  uint64_t ad = m->c.adUpdates - before->adUpdates;
  if (faults) die(name, "page faults in timed loop", faults, 0);
  if (expectWalks ? (walks != ops) : (hits != ops))
    die(name, expectWalks ? "walks != ops" : "TLB hits != ops", expectWalks ? walks : hits, ops);
  if (verbose)
    fprintf(stderr,
            "%-20s ops=%llu secs=%.3f ops/s=%.0f | hits=%llu l2hits=%llu walks=%llu adUpdates=%llu "
            "walkCacheHits=%llu walkCacheMisses=%llu walkCycles=%llu\n",
            name, (unsigned long long)ops, secs, (double)ops / secs, (unsigned long long)hits,
            (unsigned long long)l2, (unsigned long long)walks, (unsigned long long)ad,
            (unsigned long long)(m->c.walkCacheHits - before->walkCacheHits),
            (unsigned long long)(m->c.walkCacheMisses - before->walkCacheMisses),
            (unsigned long long)(m->c.walkCycles - before->walkCycles));
  return (double)ops / secs;
}

/* All TLB hits: 16 consecutive pages fill DTLB0 (4 per set) and the host cache. */
static double benchHit(Mmu *m, const char *name, PfnOf pfnOf) {
  warmup(m, name, NULL, 4 * HOT_PAGES, pfnOf);
  Counters before = m->c;
  uint64_t sum = 0;
  uint32_t i = 0;
  double t0 = now(), t;
  do {
    for (uint32_t j = 0; j < BATCH; j++, i++)
      sum += translate(m, VA_BASE + (HOT_PAGE(i) << 12) + OFF(i), ACCESS_READ, 1);
    t = now();
  } while (t - t0 < runSeconds && i < 0xffffffffu - BATCH);
  sink = sum;
  return finish(m, name, NULL, pfnOf, i, t - t0, sum, &before, 0);
}

/* All walks: a fixed pseudo-random permutation of 8192 pages, repeated, so a
 * page comes back only after all 8191 others (a miss in both TLB levels). The
 * warm-up pass sets the accessed bits; the timed loop checks them on every walk. */
static double benchWalk(Mmu *m, const char *name, const uint32_t *perm, PfnOf pfnOf) {
  warmup(m, name, perm, NPAGES, pfnOf);
  Counters before = m->c;
  uint64_t sum = 0;
  uint32_t i = 0;
  double t0 = now(), t;
  do {
    for (uint32_t j = 0; j < BATCH; j++, i++)
      sum += translate(m, VA_BASE + (WALK_PAGE(perm, i) << 12) + OFF(i), ACCESS_READ, 1);
    t = now();
  } while (t - t0 < runSeconds && i < 0xffffffffu - BATCH);
  sink = sum;
  return finish(m, name, perm, pfnOf, i, t - t0, sum, &before, 1);
}

/* ---- semantic self-test (not timed) ---- */
static int failures;
#define CHECK(cond, msg)                                      \
  do {                                                        \
    if (!(cond)) {                                            \
      fprintf(stderr, "self-test failed: %s\n", msg);         \
      failures++;                                             \
    }                                                         \
  } while (0)

static void selfTest(void) {
  /* PAE */
  Mmu *m = setupPae();
  PhysMem *pm = m->mem;
  uint32_t va = VA_BASE + 5 * 4096 + 0x10;
  uint32_t ptPfn = PT_BASE_PFN, pdPfn = 2 + (VA_BASE >> 30), pdeW = ((VA_BASE >> 21) & 511) * 2;
  CHECK(translate(m, va, ACCESS_READ, 1) == (uint64_t)paePfnOf(5) * 4096 + 0x10, "PAE read");
  CHECK(physWord(pm, ptPfn, 10) & PTE_A, "PAE PTE accessed bit");
  CHECK(physWord(pm, pdPfn, pdeW) & PTE_A, "PAE PDE accessed bit");
  CHECK(!(physWord(pm, ptPfn, 10) & PTE_D), "PAE no dirty on read");
  uint64_t walks = m->c.tlbMisses;
  CHECK(translate(m, va, ACCESS_WRITE, 1) != FAULT, "PAE write");
  CHECK(m->c.tlbMisses == walks + 1, "write to clean TLB entry re-walks");
  CHECK(physWord(pm, ptPfn, 10) & PTE_D, "PAE dirty bit");
  CHECK(translate(m, va, ACCESS_WRITE, 1) != FAULT && m->c.tlbMisses == walks + 1, "second write hits");
  CHECK(translate(m, va, ACCESS_FETCH, 1) == FAULT && m->lastPfec == (PFEC_P | PFEC_U | PFEC_ID), "NX fetch");
  physSetWord(pm, ptPfn, 12, physWord(pm, ptPfn, 12) & ~PTE_RW);
  CHECK(translate(m, VA_BASE + 6 * 4096, ACCESS_WRITE, 1) == FAULT &&
            m->lastPfec == (PFEC_P | PFEC_W | PFEC_U), "user write to read-only");
  CHECK(translate(m, VA_BASE + 6 * 4096, ACCESS_WRITE, 0) == FAULT, "supervisor write, WP=1");
  m->cr0 &= ~CR0_WP;
  CHECK(translate(m, VA_BASE + 6 * 4096, ACCESS_WRITE, 0) != FAULT, "supervisor write, WP=0");
  physSetWord(pm, ptPfn, 15, physWord(pm, ptPfn, 15) | (1u << 8)); /* bit 40 */
  CHECK(translate(m, VA_BASE + 7 * 4096, ACCESS_READ, 0) == FAULT && (m->lastPfec & PFEC_RSVD), "PAE rsvd bit 40");
  m->efer = 0;
  CHECK(translate(m, VA_BASE + 8 * 4096, ACCESS_READ, 0) == FAULT && (m->lastPfec & PFEC_RSVD), "bit 63 rsvd w/o NXE");
  m->efer = EFER_NXE;
  physSetWord(pm, ptPfn, 18, physWord(pm, ptPfn, 18) & ~PTE_P);
  CHECK(translate(m, VA_BASE + 9 * 4096, ACCESS_READ, 1) == FAULT && m->lastPfec == PFEC_U, "not present");
  /* 2 MiB page at VA 0x40400000 (PDE 2) -> 0x8_0060_0000 */
  physSetWord(pm, pdPfn, pdeW + 4, 0x00600000u | PTE_P | PTE_RW | PTE_PS);
  physSetWord(pm, pdPfn, pdeW + 5, 0x8);
  CHECK(translate(m, 0x40412345u, ACCESS_READ, 0) == 0x800612345ull, "PAE 2 MiB page");
  CHECK(translate(m, 0x40412345u, ACCESS_READ, 1) == FAULT, "2 MiB supervisor page, user read");
  physSetWord(pm, pdPfn, pdeW + 4, 0x00602000u | PTE_P | PTE_PS);
  CHECK(translate(m, 0x40412345u, ACCESS_READ, 0) == FAULT && (m->lastPfec & PFEC_RSVD), "2 MiB rsvd 20:13");
  /* PDPTE with reserved bits: CR3 load #GP */
  physSetWord(pm, 1, 2, physWord(pm, 1, 2) | 0x2);
  CHECK(writeCr3(m, 0x1000) != 0, "PDPTE rsvd -> #GP");
  mmuFree(m);

  /* 2-level */
  m = setup2();
  pm = m->mem;
  CHECK(translate(m, VA_BASE + 1030 * 4096 + 4, ACCESS_READ, 1) == (uint64_t)twoPfnOf(1030) * 4096 + 4, "2-level read");
  CHECK(physWord(pm, PT_BASE_PFN + 1, 6) & PTE_A, "2-level PTE accessed");
  CHECK(physWord(pm, 1, (VA_BASE >> 22) + 1) & PTE_A, "2-level PDE accessed");
  /* 4 MiB page at VA 0x80000000 -> 0x3_0040_0000 (PSE-36 bits 16:13 = 3) */
  physSetWord(pm, 1, 512, 0x00400000u | (3u << 13) | PTE_P | PTE_RW | PTE_US | PTE_PS);
  CHECK(translate(m, 0x80123456u, ACCESS_WRITE, 1) == 0x300523456ull, "PSE-36 4 MiB page");
  CHECK((physWord(pm, 1, 512) & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "4 MiB A/D");
  physSetWord(pm, 1, 513, 0x00400000u | (1u << 17) | PTE_P | PTE_PS);
  CHECK(translate(m, 0x80523456u, ACCESS_READ, 0) == FAULT && (m->lastPfec & PFEC_RSVD), "4 MiB rsvd 21:17");
  CHECK(translate(m, 0x7fc00000u, ACCESS_READ, 0) == FAULT && m->lastPfec == 0, "2-level not present");
  mmuFree(m);

  if (failures) exit(1);
}

int main(int argc, char **argv) {
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "-v")) verbose = 1;
    else if (!strcmp(argv[a], "-t") && a + 1 < argc) runSeconds = atof(argv[++a]);
    else {
      fprintf(stderr, "usage: %s [-t SECONDS] [-v]\n", argv[0]);
      return 2;
    }
  }
  selfTest();

  /* fixed pseudo-random visiting order: Fisher-Yates driven by xorshift32 */
  static uint32_t perm[NPAGES];
  uint32_t x = 0x9e3779b9u;
  for (uint32_t i = 0; i < NPAGES; i++) perm[i] = i;
  for (uint32_t i = NPAGES - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    uint32_t j = x % (i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }

  Mmu *m;
  m = setupPae();
  double hit = benchHit(m, "translateHit", paePfnOf);
  mmuFree(m);
  m = setupPae();
  double walkPae = benchWalk(m, "translateWalkPae", perm, paePfnOf);
  mmuFree(m);
  m = setup2();
  double hit2 = benchHit(m, "translateHit2Level", twoPfnOf);
  mmuFree(m);
  m = setup2();
  double walk2l = benchWalk(m, "translateWalk2Level", perm, twoPfnOf);
  mmuFree(m);

  printf("{\"translateHit\":{\"opsPerSec\":%.0f},\"translateWalkPae\":{\"opsPerSec\":%.0f},"
         "\"translateHit2Level\":{\"opsPerSec\":%.0f},\"translateWalk2Level\":{\"opsPerSec\":%.0f}}\n",
         hit, walkPae, hit2, walk2l);
  return 0;
}
