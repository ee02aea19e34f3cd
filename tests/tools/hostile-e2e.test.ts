/**
 * Hostile guests, end to end (issue 6): the guest kernel made to misbehave
 * under the Xen backend while it runs a workload. Each misbehaviour must be
 * refused with Xen's reason, the run must stop cleanly at the statement
 * (a RunFailure of kind 'refusal' whose message names FILE:LINE:COL; through
 * the CLI, `pvmmu boot` exit 1 with that message), and the hypervisor's state
 * must be uncorrupted: checkXenInvariants clean afterwards, and the refused
 * operation changed nothing (frame table and machine memory identical
 * before and after it).
 *
 * What the workload language can express runs through the CLI: the
 * pre-patch kernel (32-byte PAE pgds sharing the kernel pmd: the pgd is not
 * at offset 0 of a frame) and the seed's release_pd of a pgd never
 * announced. The rest is a thin wrapper of the backend (below) that corrupts
 * one op of an otherwise correct kernel: a user pte mapping its own page
 * table writable, a pgd sharing swapper's kernel pmd, a pgd loaded off its
 * page boundary, a kernel pmd written into the hypervisor hole, a PDPTE with
 * reserved bits, a release_pt of a frame never announced.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { checkXenInvariants, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE, XenBackend } from '../../hypervisor/xen/index.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig } from '../../tools/workload/config.js';
import { Interpreter, type RunResult } from '../../tools/workload/interpreter.js';
import { parseScript } from '../../tools/workload/parser.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = ROOT + 'dist/tools/cli.js';
const FILE = 'hostile.pvw';

/** The workload every programmatic case runs (line numbers matter: the failure must name them). */
const SCRIPT = (pae: boolean): string =>
  [
    `machine backend=xen pae=${pae ? 'on' : 'off'} mem=16M`, // 1
    'process p', // 2
    'mmap p 0x08048000 64K rw', // 3
    'touch p 0x08048000 8K write', // 4
    'fork p q', // 5
    'switch q', // 6
    'vmalloc buf 16K', // 7
    'kwrite buf 0 1', // 8
    'exit q', // 9
    'exit p', // 10
    '',
  ].join('\n');

/** Frame table and machine memory, as a string: equal strings = nothing changed. */
function hvState(x: XenBackend): string {
  const d = x.domain;
  const frames = [...d.frames.snapshot()]
    .sort((a, b) => a[0] - b[0])
    .map(([m, f]) => `${m}:${f.type}:${f.count}:${f.pinned ? 'P' : ''}:${f.xenL2 ? 'X' : ''}`)
    .join(',');
  const mem = d.mmu.mem;
  let h = 0;
  const mfns = [...Array.from({ length: x.mem.nrPages }, (_, p) => d.p2m.pfnToMfn(p)), ...d.xenFrames];
  for (const m of mfns) {
    if (!mem.isTouched(m)) continue;
    const f = mem.frame(m);
    for (let i = 0; i < 1024; i++) h = (Math.imul(h, 31) + f[i]! + m) | 0;
  }
  return `${frames}|${h}|base ${d.baseMfn}|cr3 ${d.mmu.cpu.cr3}`;
}

interface Hostile {
  /** The real backend under the wrapper. */
  xen: XenBackend | null;
  /** The hypervisor state just before the corrupted op and just after it was refused. */
  before: string | null;
  after: string | null;
  /** How many ops were corrupted. */
  corrupted: number;
}

type Corrupt = (real: XenBackend, h: Hostile, call: (name: string, ...args: unknown[]) => unknown) => Partial<Record<keyof ParavirtOps, unknown>>;

/**
 * A view of the Xen backend with some ops replaced (the guest kernel calls
 * them); `corruptOnce` wraps the corrupted call: state recorded before, and
 * after the refusal it provokes.
 */
function hostile(corrupt: Corrupt): { h: Hostile; wrap: (ops: ParavirtOps) => ParavirtOps } {
  const h: Hostile = { xen: null, before: null, after: null, corrupted: 0 };
  const wrap = (ops: ParavirtOps): ParavirtOps => {
    const real = ops as XenBackend;
    h.xen = real;
    const call = (name: string, ...args: unknown[]): unknown => {
      h.corrupted++;
      h.before = hvState(real);
      try {
        return (real as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!.apply(real, args);
      } catch (e) {
        h.after = hvState(real);
        throw e;
      }
    };
    const fields = corrupt(real, h, call);
    return new Proxy(real, {
      get(target, prop) {
        if (Object.prototype.hasOwnProperty.call(fields, prop)) return (fields as Record<string | symbol, unknown>)[prop];
        const v = (target as unknown as Record<string | symbol, unknown>)[prop];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return { h, wrap };
}

function runHostile(pae: boolean, corrupt: Corrupt): { r: RunResult; h: Hostile } {
  const script = parseScript(FILE, SCRIPT(pae));
  const cfg = resolveConfig(FILE, script.machine, {});
  checkScript(script, cfg);
  const { h, wrap } = hostile(corrupt);
  const it = new Interpreter(script, cfg, { wrapBackend: wrap });
  return { r: it.run(), h };
}

/** The refusal stopped the run at LINE, named, with Xen's reason; nothing changed; invariants clean. */
function assertRefused(r: RunResult, h: Hostile, line: number, op: string, reason: RegExp, opts: { unbalanced?: boolean; partial?: boolean } = {}): void {
  assert.ok(r.failure, 'the run stopped');
  assert.is(r.failure!.kind, 'refusal', r.failure!.message);
  assert.is(r.failure!.line, line, r.failure!.message);
  assert.ok(r.failure!.message.startsWith(`${FILE}:${line}:1: ${op}: hypervisor refused: `), r.failure!.message);
  assert.match(r.failure!.message, reason);
  assert.is(h.corrupted, 1, 'one op was corrupted');
  assert.ok(h.before !== null && h.after !== null, 'the corrupted op was refused');
  if (!opts.partial) assert.is(h.after, h.before, 'the refused op changed nothing in the hypervisor or memory');
  const x = h.xen!;
  assert.equal(checkXenInvariants(x.domain), [], "hypervisor state: type counts, pins, hole, CR3");
  const guestSide = checkXenInvariants(x);
  if (opts.unbalanced) assert.is(guestSide.length, 1, guestSide.join('; '));
  else assert.equal(guestSide, []);
  assert.ok(Object.values(r.refusals).reduce((a, b) => a + b, 0) >= 1, 'the refusal was counted');
}

const s = suite('hostile guest, end to end (Xen)');

const pgdOf = (gpa: number): number => Math.floor(gpa / 4096) * 4096;

for (const pae of [true, false]) {
  const L = pae ? 'PAE' : '2-level';

  s(`${L}: a user pte mapping its own page table writable is refused at the touch`, () => {
    const { r, h } = runHostile(pae, (real, hs, call) => ({
      set_pte_at: (mm: unknown, va: number, ptep: number, pte: bigint) => {
        if (hs.corrupted === 0 && va === 0x08048000) {
          // The entry maps the page table it lives in, read-write.
          const self = real.make_pte((BigInt(Math.floor(ptep / 4096)) << 12n) | (real.pte_val(pte) & 0xfffn));
          return call('set_pte_at', mm, va, ptep, self);
        }
        return real.set_pte_at(mm as never, va, ptep, pte);
      },
    }));
    // 2.6.23's xen_set_pte_at: the refused update_va_mapping falls back to
    // xen_set_pte, whose PAE high-word store is accepted (the half entry is
    // not present) before the low word's store is refused: a partial change.
    assertRefused(r, h, 4, 'touch', /Bad type \(saw l1 != exp writable\)/, { partial: pae });
  });

  s(`${L}: a pgd loaded off its page boundary is refused (a base pointer is an mfn)`, () => {
    let swapper = -1;
    const { r, h } = runHostile(pae, (real, _hs, call) => ({
      pagetable_setup_done: (base: number) => {
        swapper = base;
        real.pagetable_setup_done(base);
      },
      write_cr3: (pgd: number) => (pgd !== swapper ? call('write_cr3', pgd + 32) : real.write_cr3(pgd)),
    }));
    assertRefused(r, h, 2, 'process', /pgd not at offset 0 of its own frame: 0x[0-9a-f]+020/);
  });

  s(`${L}: a kernel pmd written into the hypervisor hole is refused at the vmalloc`, () => {
    let swapper = -1;
    let kernelL2 = -1;
    let armed = false;
    const { r, h } = runHostile(pae, (real, hs, call) => ({
      pagetable_setup_done: (base: number) => {
        swapper = base;
        real.pagetable_setup_done(base);
        // The L2 holding the kernel's vmalloc pmds: swapper's slot-3 pmd (PAE), swapper itself (2-level).
        kernelL2 = pae ? pgdOf(Number(real.pgd_val(real.mem.read64(swapper + 24)) & 0xffffff000n)) : swapper;
      },
      activate_mm: (prev: never, next: never) => {
        armed = true; // boot is over
        real.activate_mm(prev, next);
      },
      set_pmd: (pmdp: number, v: bigint) => {
        if (armed && hs.corrupted === 0 && pgdOf(pmdp) === kernelL2) {
          const slot = real.domain.hole.firstSlot + 1;
          return call('set_pmd', kernelL2 + slot * (pae ? 8 : 4), v);
        }
        return real.set_pmd(pmdp, v);
      },
    }));
    assertRefused(r, h, 7, 'vmalloc', /Illegal L2 update attempt in Xen-private area/);
  });

  s(`${L}: release_pt of a frame never pinned does nothing on Xen (2.6.23's xen_release_pt acts on PG_pinned pages only)`, () => {
    const { r, h } = runHostile(pae, (real, hs, call) => ({
      // The first pte page released is swapped for a kernel-image frame (pfn 0x100), never a page table.
      release_pt: (pfn: number) => (hs.corrupted === 0 ? call('release_pt', 0x100) : real.release_pt(pfn)),
    }));
    assert.is(h.corrupted, 1);
    assert.is(r.failure, null, r.failure?.message);
    assert.equal(r.refusals, {}, 'nothing for Xen to refuse: the hook did nothing');
    assert.equal(checkXenInvariants(h.xen!.domain), []);
  });
}

s('PAE: a pgd sharing swapper_pg_dir\'s kernel pmd is refused, "PAE L3 3rd slot is shared"', () => {
  let swapper = -1;
  const { r, h } = runHostile(true, (real, hs, call) => ({
    pagetable_setup_done: (base: number) => {
      swapper = base;
      real.pagetable_setup_done(base);
    },
    // pgd_prepopulate_pmd installs the pgd's own kernel pmd: install swapper's instead (what the pre-patch kernel did).
    set_pud: (pudp: number, v: bigint) => {
      if (swapper >= 0 && pgdOf(pudp) !== swapper && pudp % 4096 === 24) real.set_pud(pudp, real.mem.read64(swapper + 24));
      else real.set_pud(pudp, v);
    },
    activate_mm: (prev: never, next: { pgd: number }) => (hs.corrupted === 0 ? call('activate_mm', prev, next) : real.activate_mm(prev, next as never)),
  }));
  assertRefused(r, h, 2, 'process', /PAE L3 3rd slot is shared/);
  assert.match(r.failure!.message, /Error while pinning mfn/, 'the whole MEM_LOG chain is given');
});

s('PAE: a PDPTE with reserved bits (RW) is refused when the pgd is pinned, "Bad L3 flags 2"', () => {
  let swapper = -1;
  const { r, h } = runHostile(true, (real, hs, call) => ({
    pagetable_setup_done: (base: number) => {
      swapper = base;
      real.pagetable_setup_done(base);
    },
    set_pud: (pudp: number, v: bigint) => real.set_pud(pudp, swapper >= 0 && pgdOf(pudp) !== swapper && pudp % 4096 === 0 ? v | 2n : v),
    activate_mm: (prev: never, next: never) => (hs.corrupted === 0 ? call('activate_mm', prev, next) : real.activate_mm(prev, next)),
  }));
  assertRefused(r, h, 2, 'process', /Bad L3 flags 2/);
  assert.match(r.failure!.message, /Failure in alloc_l3_table: entry 0/);
});

s('a refused op leaves the hypervisor usable: pin, unpin and release go through afterwards', () => {
  // The refusal at the touch (own page table writable); then Xen serves the next honest requests.
  let off = false;
  const { r, h } = runHostile(true, (real, hs, call) => ({
    set_pte_at: (mm: unknown, va: number, ptep: number, pte: bigint) => {
      if (!off && hs.corrupted === 0 && va === 0x08048000) {
        off = true;
        return call('set_pte_at', mm, va, ptep, real.make_pte((BigInt(Math.floor(ptep / 4096)) << 12n) | 0x67n));
      }
      return real.set_pte_at(mm as never, va, ptep, pte);
    },
  }));
  assert.is(r.failure?.kind, 'refusal');
  const x = h.xen!;
  // Xen itself still works: pin and unpin a fresh L1 through the hypercalls.
  const pinned = x.stats.pinned;
  const pfn = 0x200;
  x.mem.zeroPage(pfn);
  x.alloc_pt(pfn);
  const mfn = x.domain.p2m.pfnToMfn(pfn);
  assert.is(x.hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn }]).rc, 0, 'PIN_L1_TABLE');
  assert.is(x.stats.pinned, pinned + 1);
  assert.is(x.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn }]).rc, 0, 'UNPIN_TABLE');
  x.release_pt(pfn);
  assert.equal(checkXenInvariants(x), []);
});

// ---- through the CLI ----

const cli = suite('hostile guest through pvmmu boot');

function boot(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'boot', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function runFile(file: string, over: Record<string, unknown> = {}): { r: RunResult; x: XenBackend } {
  const text = spawnSync('cat', [ROOT + file], { encoding: 'utf8' }).stdout;
  const script = parseScript(file, text);
  const cfg = resolveConfig(file, script.machine, over);
  checkScript(script, cfg);
  const it = new Interpreter(script, cfg);
  return { r: it.run(), x: it.ops as XenBackend };
}

cli('pre-patch kernel on Xen PAE: its 32-byte pgd is refused at `process init`; exit 1 naming the line', () => {
  const f = 'tests/tools/fixtures/hostile-prepatch.pvw';
  const b = boot([f]);
  assert.is(b.code, 1, b.err);
  assert.match(b.err, new RegExp(`^pvmmu: ${f.replace(/\./g, '\\.')}:4:1: process: hypervisor refused: paravirt activate_mm: pgd not at offset 0 of its own frame`, 'm'));
  assert.not.match(b.err, /\n\s+at /, 'no stack trace');
  const { r, x } = runFile(f);
  assert.is(r.failure?.line, 4);
  assert.equal(checkXenInvariants(x), []);
  // The same workload under 2-level paging: a 2-level pgd is a whole page; Xen accepts it.
  const two = boot([f, '--no-pae']);
  assert.is(two.code, 0, two.err);
});

cli("seed kernel on Xen PAE: pgd_dtor's unbalanced release_pd is a nop for Xen (2.6.23) and caught by the guest's own debug check [item 1]", () => {
  const f = 'tests/tools/fixtures/hostile-seed-release-pd.pvw';
  const b = boot([f, '--json']);
  assert.is(b.code, 1, b.err);
  assert.match(b.err, /invariant violations:\n\s+unbalanced paravirt_release_pd of pfn 0x[0-9a-f]+: never announced with alloc_pd/);
  const j = JSON.parse(b.out) as { failure: unknown; refusals: Record<string, number>; invariants: string[] };
  assert.is(j.failure, null);
  assert.equal(j.refusals, {}, 'Xen refuses nothing');
  assert.ok(j.invariants.length >= 1);
  const { r, x } = runFile(f);
  assert.is(r.failure, null);
  assert.equal(checkXenInvariants(x.domain), [], 'hypervisor state intact');
  // The patched kernel runs the same workload to the end.
  assert.is(boot([f, '--kernel', 'patched']).code, 0);
});

s.run();
cli.run();
