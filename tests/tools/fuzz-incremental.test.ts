/**
 * The differential fuzzer's incremental guest check (tools/fuzz/differential.ts
 * incrementalCheck, guest-kernel/invariants.ts IncrementalInvariantChecker,
 * tools/fuzz/dirty-frames.ts): after every statement of generated workloads,
 * on every backend, with the patched kernel and with the seed and prepatch
 * variants (which break invariants), its findings equal the full check's,
 * statement by statement; and it does reuse censuses (it is incremental).
 * Plus the written-frame tracking of DirtyFrameMem on its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Mmu } from '../../emulator/mmu.js';
import { MAX_PFN } from '../../emulator/phys-mem.js';
import { backendKind } from '../../hypervisor/backend.js';
import { IncrementalInvariantChecker } from '../../guest-kernel/invariants.js';
import { DirtyFrameMem } from '../../tools/fuzz/dirty-frames.js';
import { incrementalCheck, loadText } from '../../tools/fuzz/differential.js';
import { generateWorkload } from '../../tools/fuzz/workload-gen.js';
import type { Variant } from '../../tools/workload/config.js';
import { Interpreter } from '../../tools/workload/interpreter.js';

const s = suite('fuzz: incremental guest check');

interface Tally {
  checks: number;
  broken: number;
  reused: number;
  rechecked: number;
  pagesReused: number;
  kernelMappingsReused: number;
  mismatches: string[];
}

/** Run `text` under `kernel` on every backend, comparing the incremental and the full check after every statement. */
function compareChecks(seed: number, text: string, kernel: Variant | null, t: Tally, file = `seed-${seed}.pvw`): void {
  const { script, cfg: base } = loadText(file, text);
  const cfg = { ...base, kernel: kernel ?? base.kernel };
  const backends = (['native', 'xen', 'vmi', 'lguest'] as const).filter((b) => backendKind(b).unsupported({ pae: cfg.pae, memBytes: cfg.mem }) === null);
  for (const backend of backends) {
    const checker = new IncrementalInvariantChecker();
    let it: Interpreter | undefined;
    let n = 0;
    try {
      it = new Interpreter(script, { ...cfg, backend }, {
        seed,
        xenP2m: 'shuffled',
        checkEachStatement: true,
        newMmu: (o) => new Mmu({ ...o, mem: new DirtyFrameMem() }),
        statementCheck: () => {
          const full = it!.kernel.checkInvariants();
          const inc = incrementalCheck(it!, checker);
          n++;
          t.checks++;
          if (full.length > 0) t.broken++;
          if (JSON.stringify(inc) !== JSON.stringify(full)) {
            t.mismatches.push(`${file} ${cfg.kernel} ${backend} check ${n}:\n  full ${JSON.stringify(full)}\n  incr ${JSON.stringify(inc)}`);
          }
          return full;
        },
      });
    } catch {
      continue; // does not boot (e.g. a variant the backend refuses): nothing to compare
    }
    try {
      it.run();
    } catch {
      // A crash ends the run; the checks made so far were compared.
    }
    t.reused += checker.reused;
    t.rechecked += checker.rechecked;
    t.pagesReused += checker.pagesReused;
    t.kernelMappingsReused += checker.kernelMappingsReused;
  }
}

s('generated workloads (patched/seed/prepatch kernels), the seed/prepatch workloads and the fuzz findings, every backend: the same findings after every statement', () => {
  const t: Tally = { checks: 0, broken: 0, reused: 0, rechecked: 0, pagesReused: 0, kernelMappingsReused: 0, mismatches: [] };
  for (let seed = 1; seed <= 6; seed++) {
    const w = generateWorkload(seed, { statements: 30 });
    for (const kernel of ['patched', 'seed', 'prepatch'] as const) compareChecks(seed, w.text, kernel, t);
  }
  // The workloads written to break the seed and prepatch kernels, and the open fuzz findings.
  const files = [
    ...readdirSync('tools/workloads').filter((f) => /^(seed|prepatch)-.*\.pvw$/.test(f)).map((f) => join('tools/workloads', f)),
    ...readdirSync('tests/regression/fuzz-expected').filter((f) => f.endsWith('.pvw')).map((f) => join('tests/regression/fuzz-expected', f)),
  ];
  assert.ok(files.length >= 5, files.join(' '));
  for (const f of files) compareChecks(1, readFileSync(f, 'utf8'), null, t, f);
  assert.equal(t.mismatches.slice(0, 3), [], `${t.mismatches.length} checks differ`);
  assert.ok(t.checks > 500, `${t.checks} checks compared`);
  assert.ok(t.broken > 0, 'some checks found broken invariants (the seed/prepatch variants)');
  assert.ok(t.reused > t.rechecked, `incremental: ${t.reused} censuses reused, ${t.rechecked} redone`);
  assert.ok(t.pagesReused > 0, `pte page censuses reused in redone censuses: ${t.pagesReused}`);
  assert.ok(t.kernelMappingsReused > t.checks, `kernel-mapping comparisons reused: ${t.kernelMappingsReused}`);
});

s('a write behind the kernel’s back into a user pte page is seen by the next incremental check', () => {
  const w = generateWorkload(3, { statements: 30 });
  const { script, cfg } = loadText('seed-3.pvw', w.text);
  const checker = new IncrementalInvariantChecker();
  let it: Interpreter | undefined;
  let corrupted = false;
  const found: string[][] = [];
  it = new Interpreter(script, { ...cfg, backend: 'native' }, {
    seed: 3,
    checkEachStatement: true,
    newMmu: (o) => new Mmu({ ...o, mem: new DirtyFrameMem() }),
    statementCheck: () => {
      const k = it!.kernel.k;
      // After a clean check, point a present user pte at a kernel frame (a rogue physical store).
      if (!corrupted && checker.reused > 0) {
        for (const mm of k.mms) {
          const first = findPresentUserPte(it!, mm.pgd);
          if (first < 0) continue;
          const mem = it!.mmu.mem;
          const lo = mem.read32(first);
          mem.write32(first, (lo & 0xfff) | (k.swapper_pg_dir & ~0xfff));
          corrupted = true;
          break;
        }
      }
      const full = it!.kernel.checkInvariants();
      const inc = incrementalCheck(it!, checker);
      found.push(inc);
      assert.equal(inc, full);
      return [];
    },
  });
  try {
    it.run();
  } catch {
    // the corrupted run may crash later: what matters is the check after the store
  }
  assert.ok(corrupted, 'a pte was corrupted');
  assert.ok(
    found.some((v) => v.some((x) => /which is not a user page/.test(x))),
    'the incremental check reports the pte mapping a non-user frame',
  );
});

s('a write behind the kernel’s back into the kernel part of a pgd (2-level) is seen by the next incremental check', () => {
  const w = generateWorkload(1, { statements: 30 });
  const { script, cfg } = loadText('seed-1.pvw', w.text);
  assert.is(cfg.pae, false, 'seed 1 runs in 2-level paging');
  const checker = new IncrementalInvariantChecker();
  let it: Interpreter | undefined;
  let corrupted = false;
  const found: string[][] = [];
  it = new Interpreter(script, { ...cfg, backend: 'native' }, {
    seed: 1,
    checkEachStatement: true,
    newMmu: (o) => new Mmu({ ...o, mem: new DirtyFrameMem() }),
    statementCheck: () => {
      const k = it!.kernel.k;
      // After a check that reused the comparisons, change a kernel pde of a process's pgd (native: guest-physical = machine).
      if (!corrupted && checker.kernelMappingsReused > 0) {
        for (const mm of k.mms) {
          if (mm.pgd === k.swapper_pg_dir) continue;
          const slot = k.L.USER_PTRS_PER_PGD + 1;
          const mem = it!.mmu.mem;
          mem.write32(mm.pgd + slot * 4, mem.read32(mm.pgd + slot * 4) ^ 0x1000);
          corrupted = true;
          break;
        }
      }
      const full = it!.kernel.checkInvariants();
      const inc = incrementalCheck(it!, checker);
      found.push(inc);
      assert.equal(inc, full);
      return [];
    },
  });
  try {
    it.run();
  } catch {
    // the corrupted run may crash later: what matters is the check after the store
  }
  assert.ok(corrupted, 'a kernel pde was corrupted');
  assert.ok(
    found.some((v) => v.some((x) => /kernel entry for .* init_mm has/.test(x))),
    'the incremental check reports the kernel entry that differs from init_mm',
  );
});

s('a write behind the kernel’s back into low page 0 is seen by the next incremental check', () => {
  const w = generateWorkload(2, { statements: 30 });
  const { script, cfg } = loadText('seed-2.pvw', w.text);
  const checker = new IncrementalInvariantChecker();
  let it: Interpreter | undefined;
  let checks = 0;
  let corrupted = false;
  const found: string[][] = [];
  it = new Interpreter(script, { ...cfg, backend: 'native' }, {
    seed: 2,
    checkEachStatement: true,
    newMmu: (o) => new Mmu({ ...o, mem: new DirtyFrameMem() }),
    statementCheck: () => {
      // After a few clean checks, a rogue store into page 0 (native: guest-physical = machine).
      if (!corrupted && ++checks === 5) {
        it!.mmu.mem.write32(0x10, 1);
        corrupted = true;
      }
      const full = it!.kernel.checkInvariants();
      const inc = incrementalCheck(it!, checker);
      found.push(inc);
      assert.equal(inc, full);
      return [];
    },
  });
  it.run();
  assert.ok(corrupted, 'page 0 was written');
  assert.equal(found.slice(0, 4), [[], [], [], []], 'clean before the store');
  assert.ok(found[4]!.some((x) => /low page 0 was written at offset 0x10/.test(x)), 'the incremental check reports the store');
});

/** The physical address of a present user pte of the pgd at `pgd` (native: guest-physical = machine), or -1. */
function findPresentUserPte(it: Interpreter, pgd: number): number {
  const k = it.kernel.k;
  const L = k.L;
  const mem = it.mmu.mem;
  for (let i = 0; i < L.USER_PTRS_PER_PGD; i++) {
    let pmdBase = pgd + i * 4;
    let n = 1;
    if (L.pae) {
      const e = mem.read32(pgd + i * 8);
      if ((e & 1) === 0) continue;
      pmdBase = e & ~0xfff;
      n = 512;
    }
    for (let j = 0; j < n; j++) {
      const pmd = mem.read32(pmdBase + j * L.ENTRY_SIZE);
      if ((pmd & 1) === 0 || (pmd & 0x80) !== 0) continue;
      const pt = (pmd & ~0xfff) >>> 0;
      for (let x = 0; x < L.PTRS_PER_PTE; x++) {
        const a = pt + x * L.ENTRY_SIZE;
        if ((mem.read32(a) & 1) !== 0) return a;
      }
    }
  }
  return -1;
}

s('DirtyFrameMem: every frame counts as written until forget(), then exactly the frames written', () => {
  const m = new DirtyFrameMem();
  assert.ok(m.written(5), 'before the first forget(): all');
  m.forget();
  assert.not.ok(m.written(5));
  m.write32(5 * 4096 + 8, 1);
  m.setWord(9, 3, 7);
  assert.ok(m.written(5));
  assert.ok(m.written(9));
  assert.not.ok(m.written(6));
  m.forget();
  assert.not.ok(m.written(5));
  m.discard(9);
  assert.ok(m.written(9), 'discarding changes the contents');
  m.forget();
  // Beyond the initial bitmap (grown), and at the top of the address space.
  m.write32(0x123456 * 4096, 1);
  m.write32((MAX_PFN - 1) * 4096, 1);
  assert.ok(m.written(0x123456));
  assert.ok(m.written(MAX_PFN - 1));
  assert.not.ok(m.written(0x123455));
  assert.ok(m.written(-1), 'not a frame: unsure, so written');
  assert.ok(m.written(1.5));
  assert.throws(() => m.frameW(MAX_PFN), /beyond MAXPHYADDR/);
  m.forget();
  m.copyFrame(20, 0x123456);
  assert.ok(m.written(20));
  m.clear();
  assert.ok(m.written(77), 'after clear(): all');
  assert.is(m.read32(0x123456 * 4096), 0);
});

s('a leaked frame (allocated, owned by nothing) is reported the same by the incremental check (leak scan over the chunks holding a block head) as by the full one', () => {
  const w = generateWorkload(5, { statements: 20 });
  const { script, cfg } = loadText('seed-5.pvw', w.text);
  const checker = new IncrementalInvariantChecker();
  let it: Interpreter | undefined;
  let n = 0;
  let leakedAt = -1;
  const found: string[][] = [];
  it = new Interpreter(script, { ...cfg, backend: 'native' }, {
    seed: 5,
    checkEachStatement: true,
    newMmu: (o) => new Mmu({ ...o, mem: new DirtyFrameMem() }),
    statementCheck: () => {
      n++;
      // After a few checks, a frame is allocated and never owned (a leak), once, in high memory first.
      if (n === 4) leakedAt = it!.kernel.k.pages.alloc_pages(0x02, 2, 'test leak');
      const full = it!.kernel.checkInvariants();
      const inc = incrementalCheck(it!, checker);
      assert.equal(inc, full, `check ${n}`);
      found.push(inc);
      return [];
    },
  });
  it.run();
  assert.ok(leakedAt >= 0);
  assert.ok(found.slice(3).every((v) => v.some((x) => x.includes(`frame 0x${leakedAt.toString(16)} is allocated (by test leak) but nothing owns it: leaked`))), 'every check after the leak reports it');
  assert.ok(found.slice(0, 3).every((v) => v.length === 0), 'clean before');
});

s('a reference taken behind the tables\' back on a writably mapped page (no table written) is seen by the next incremental check', () => {
  let caught = false;
  const diffs: string[] = [];
  for (let seed = 1; seed <= 6 && !caught; seed++) {
    const w = generateWorkload(seed, { statements: 30 });
    const { script, cfg } = loadText(`seed-${seed}.pvw`, w.text);
    const checker = new IncrementalInvariantChecker();
    let it: Interpreter | undefined;
    let bumped = -1;
    it = new Interpreter(script, { ...cfg, backend: 'native' }, {
      seed,
      checkEachStatement: true,
      newMmu: (o) => new Mmu({ ...o, mem: new DirtyFrameMem() }),
      statementCheck: () => {
        const k = it!.kernel.k;
        // After clean checks, one more reference to a page some pte maps writable: the tables are
        // untouched (an incremental check first, so that no frame counts as written since).
        if (bumped < 0 && checker.reused > 0) {
          incrementalCheck(it!, checker);
          for (const mm of k.mms) {
            const a = findPresentUserPte(it!, mm.pgd);
            if (a < 0) continue;
            const lo = it!.mmu.mem.read32(a);
            if ((lo & 2) === 0) continue;
            bumped = lo >>> 12;
            k.pages.get_page(bumped);
            break;
          }
        }
        const full = it!.kernel.checkInvariants();
        const inc = incrementalCheck(it!, checker);
        if (JSON.stringify(inc) !== JSON.stringify(full)) diffs.push(`seed ${seed}: full ${JSON.stringify(full)}, incremental ${JSON.stringify(inc)}`);
        if (bumped >= 0 && inc.some((x) => x.includes(`frame 0x${bumped.toString(16)} shared 2 ways`))) caught = true;
        return [];
      },
    });
    try {
      it.run();
    } catch {
      // what matters is the checks after the change
    }
  }
  assert.equal(diffs.slice(0, 2), []);
  assert.ok(caught, 'the incremental check reported the writable pte to a page with two references');
});

s.run();
