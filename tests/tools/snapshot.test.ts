/**
 * Machine snapshots (issue 12): every workload of tools/workloads, on every
 * backend its configuration allows (lguest: under 2-level paging), run straight and run with a snapshot
 * taken at statement boundaries, restored and continued, gives the same
 * result document (stats, breakdown, cycles, measures, observations) and the
 * same final physical memory. A snapshot can be restored many times, is not
 * touched by what the original does afterwards, and shares the memory's
 * frames copy-on-write instead of copying them. The copier refuses a closure
 * it cannot rebind.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BufferPool, GraphCopier, partial, rebindable, SnapshotError } from '../../emulator/snapshot.js';
import { PhysMem } from '../../emulator/phys-mem.js';
import { BACKEND_KINDS } from '../../hypervisor/backend.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig, type RunConfig } from '../../tools/workload/config.js';
import { Interpreter, type RunResult } from '../../tools/workload/interpreter.js';
import { parseScript } from '../../tools/workload/parser.js';
import type { Script } from '../../tools/workload/ast.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIR = 'tools/workloads/';

function memDigest(it: Interpreter): string {
  const m = it.mmu.mem;
  const h = createHash('sha256');
  for (const pfn of m.touchedPfns()) {
    h.update(`${pfn}:`);
    h.update(new Uint8Array(m.frame(pfn).buffer));
  }
  return h.digest('hex');
}

function outcome(it: Interpreter, r: RunResult): string {
  return JSON.stringify(r) + '\n' + memDigest(it);
}

function boot(script: Script, cfg: RunConfig): Interpreter | null {
  try {
    return new Interpreter(script, cfg, { seed: 1 });
  } catch {
    return null; // a configuration that does not boot (prepatch on Xen): nothing to snapshot
  }
}

const cases: { file: string; script: Script; cfg: RunConfig }[] = [];
for (const name of readdirSync(ROOT + DIR).filter((f) => f.endsWith('.pvw')).sort()) {
  const file = DIR + name;
  const script = parseScript(file, readFileSync(ROOT + file, 'utf8'));
  for (const backend of BACKEND_KINDS) {
    let cfg: RunConfig;
    try {
      // lguest is 2-level only: its runs are the workload under --no-pae.
      cfg = resolveConfig(file, script.machine, backend === 'lguest' ? { backend, pae: false } : { backend });
      checkScript(script, cfg);
    } catch {
      continue; // lguest with PAE, memory beyond a backend's limit
    }
    cases.push({ file, script, cfg });
  }
}

test('the workloads cover every backend', () => {
  assert.equal(new Set(cases.map((c) => c.cfg.backend)), new Set(BACKEND_KINDS));
  assert.ok(cases.length >= 30, `${cases.length} cases`);
});

for (const { file, script, cfg } of cases) {
  test(`${file} on ${cfg.backend}: snapshot, restore, continue = straight run`, () => {
    const straight = boot(script, cfg);
    if (straight === null) return;
    const want = outcome(straight, straight.run());
    const n = straight.statementsRun;
    // Snapshots at boot, at a third and two thirds of the statements, and at the end (Xen, whose
    // copies cost most while its frame table is one object per frame: at a third and two thirds).
    const thirds = [Math.floor(n / 3), Math.floor((2 * n) / 3)];
    const at = [...new Set(cfg.backend === 'xen' ? thirds : [0, ...thirds, n])];
    const it = boot(script, cfg)!;
    for (const k of at) {
      while (it.statementsRun < k && it.advance());
      const snap = it.snapshot({ strict: true });
      const r = snap.restore();
      assert.is(outcome(r, r.run()), want, `restored at statement ${k}`);
    }
    assert.is(outcome(it, it.run()), want, 'the snapshotted machine itself');
  });
}

test('one snapshot restores many times; what the original does after it does not reach it', () => {
  const c = cases.find((x) => x.file.endsWith('/fork-exit.pvw') && x.cfg.backend === 'xen')!;
  const straight = new Interpreter(c.script, c.cfg, { seed: 1 });
  const want = outcome(straight, straight.run());
  const it = new Interpreter(c.script, c.cfg, { seed: 1 });
  for (let i = 0; i < 4; i++) it.advance();
  const snap = it.snapshot();
  const before = snap.memory;
  // The original runs on (writing frames the snapshot shares) ...
  assert.is(outcome(it, it.run()), want);
  assert.ok(it.mmu.mem.framesCopied > 0, 'the original copied the frames it wrote');
  // ... and the snapshot still holds the machine of statement 4, twice over.
  const a = snap.restore();
  const b = snap.restore();
  assert.is(outcome(a, a.run()), want);
  assert.is(outcome(b, b.run()), want);
  assert.equal(snap.memory, before);
});

test('copy-on-write: a snapshot shares every frame; a write copies one frame on one side', () => {
  const c = cases.find((x) => x.file.endsWith('/default.pvw') && x.cfg.backend === 'native')!;
  const it = new Interpreter(c.script, c.cfg, { seed: 1 });
  for (let i = 0; i < 5; i++) it.advance();
  const mem = it.mmu.mem;
  const touched = mem.framesTouched;
  assert.ok(touched > 0);
  const snap = it.snapshot();
  assert.equal(snap.memory, { framesTouched: touched, framesShared: touched }, 'the snapshot owns no frame of its own');
  assert.is(mem.framesShared, touched, 'nor does the original any more');
  const r = snap.restore();
  const pfn = mem.touchedPfns()[0]!;
  assert.ok(r.mmu.mem.sharesFrame(mem, pfn), 'a restored machine starts on the same buffers');
  const copied = mem.framesCopied;
  mem.setWord(pfn, 0, mem.word(pfn, 0) ^ 1);
  assert.is(mem.framesCopied, copied + 1);
  assert.is(mem.framesShared, touched - 1);
  assert.not.ok(r.mmu.mem.sharesFrame(mem, pfn));
  assert.is(r.mmu.mem.word(pfn, 0), mem.word(pfn, 0) ^ 1, 'the restored machine does not see the write');
  mem.setWord(pfn, 0, mem.word(pfn, 0) ^ 1);
  assert.is(mem.framesCopied, copied + 1, 'a frame is copied once');
});

test('PhysMem copy: sparse, zero frames stay untouched, both sides independent', () => {
  const m = new PhysMem();
  m.write32(0x5000, 0xdeadbeef);
  m.write32(0x123456000, 7);
  const c = new GraphCopier().copy(m);
  assert.is(c.framesTouched, 2);
  assert.is(c.read32(0x5000), 0xdeadbeef);
  assert.is(c.read32(0x123456000), 7);
  c.write32(0x5000, 1);
  assert.is(m.read32(0x5000), 0xdeadbeef);
  m.write32(0x123456000, 8);
  assert.is(c.read32(0x123456000), 7);
  assert.not.ok(c.isTouched(0x6));
});

test('PhysMem copy shares the frame directory\'s leaves: a new frame, a discard or a write on one side stays there', () => {
  const m = new PhysMem();
  m.write32(0x5000, 1);
  m.write32(0x7000, 2);
  const c = new GraphCopier().copy(m);
  const d = new GraphCopier().copy(c);
  // A frame never written, in a leaf all three share: created on one side only.
  c.write32(0x6000, 3);
  assert.ok(c.isTouched(6) && !m.isTouched(6) && !d.isTouched(6));
  m.write32(0x8000, 4);
  assert.ok(m.isTouched(8) && !c.isTouched(8) && !d.isTouched(8));
  // A discard on one side only.
  d.discard(7);
  assert.is(d.read32(0x7000), 0);
  assert.is(m.read32(0x7000), 2);
  assert.is(c.read32(0x7000), 2);
  assert.equal([m.framesTouched, c.framesTouched, d.framesTouched], [3, 3, 1]);
  // Frames still shared where nobody wrote them.
  assert.ok(m.sharesFrame(c, 5) && c.sharesFrame(d, 5));
  assert.equal([m.framesShared, c.framesShared, d.framesShared], [2, 2, 1]);
  m.write32(0x5000, 9);
  assert.is(c.read32(0x5000), 1);
  assert.is(d.read32(0x5000), 1);
  assert.is(m.framesCopied, 1);
});

class Counter {
  n = 0;
  bump(by: number): void {
    this.n += by;
  }
}

test('the copier: prototypes, cycles, shared references, Maps, Sets, typed arrays on one buffer, bigint', () => {
  const shared = { v: 1 };
  const buf = new ArrayBuffer(16);
  const g = {
    c: new Counter(),
    a: [shared, shared],
    m: new Map<string, unknown>([['x', shared]]),
    s: new Set([shared]),
    u8: new Uint8Array(buf, 0, 8),
    u32: new Uint32Array(buf, 8, 2),
    big: 1n << 70n,
    self: null as unknown,
  };
  g.self = g;
  const c = new GraphCopier({ strict: true }).copy(g);
  assert.ok(c.c instanceof Counter);
  assert.is(c.self, c);
  assert.is(c.a[0], c.a[1]);
  assert.is(c.m.get('x'), c.a[0]);
  assert.ok(c.s.has(c.a[0]));
  assert.is.not(c.a[0], shared);
  assert.is(c.u8.buffer, c.u32.buffer);
  assert.is.not(c.u8.buffer, buf);
  c.u32[0] = 0x01020304;
  assert.is(c.u8[0], 0, 'the u8 view covers bytes 0..7, u32 bytes 8..15');
  assert.is(new Uint8Array(c.u8.buffer)[8], 4);
  assert.is(g.u32[0], 0);
  assert.is(c.big, 1n << 70n);
});

test('the copier fills the buffers of a BufferPool (one each, by exact size) and lists every buffer it made', () => {
  const src = { a: new Int32Array([1, 2, 3]), b: new Float64Array([0.5]), c: new Uint8Array([9, 8, 7, 6]) };
  const first = new GraphCopier();
  const c1 = first.copy(src);
  assert.is(first.buffersMade.length, 3);
  // Garbage in the old copy's buffers: the new copy overwrites them whole.
  c1.a.fill(-1);
  c1.b.fill(-1);
  c1.c.fill(0xff);
  const pool = new BufferPool([...first.buffersMade, new ArrayBuffer(12)]);
  const second = new GraphCopier({ reuse: pool });
  const c2 = second.copy({ ...src, d: new Int32Array([4, 5, 6]) });
  assert.equal([...c2.a], [1, 2, 3]);
  assert.equal([...c2.b], [0.5]);
  assert.equal([...c2.c], [9, 8, 7, 6]);
  assert.equal([...c2.d], [4, 5, 6]);
  assert.ok(c2.b.buffer === c1.b.buffer && c2.c.buffer === c1.c.buffer, 'buffers of the same size reused');
  assert.ok(c2.a.buffer !== c2.d.buffer && [c2.a.buffer, c2.d.buffer].includes(c1.a.buffer), 'two 12-byte buffers, one each');
  assert.is(pool.take(12), undefined, 'each buffer given out once');
  assert.is(second.buffersMade.length, 4);
});

/** Every ArrayBuffer reachable from `root` (own properties, array elements, Map and Set members). */
function buffersIn(root: unknown): Set<ArrayBuffer> {
  const out = new Set<ArrayBuffer>();
  const seen = new Set<unknown>();
  const todo: unknown[] = [root];
  while (todo.length > 0) {
    const x = todo.pop();
    if (x === null || typeof x !== 'object' || seen.has(x)) continue;
    seen.add(x);
    if (ArrayBuffer.isView(x)) out.add(x.buffer as ArrayBuffer);
    else if (x instanceof ArrayBuffer) out.add(x);
    else if (x instanceof Map) for (const [k, v] of x) todo.push(k, v);
    else if (x instanceof Set) for (const v of x) todo.push(v);
    else todo.push(...Object.values(x));
  }
  return out;
}

test('restore(dropped): the new machine fills the dropped machine\'s buffers and runs the same', () => {
  const c = cases.find((x) => x.file.endsWith('/fork-exit.pvw') && x.cfg.backend === 'xen')!;
  const straight = new Interpreter(c.script, c.cfg, { seed: 1 });
  const want = outcome(straight, straight.run());
  const it = new Interpreter(c.script, c.cfg, { seed: 1 });
  for (let i = 0; i < 3; i++) it.advance();
  const snap = it.snapshot();
  const a = snap.restore();
  const aBuffers = buffersIn(a);
  assert.is(outcome(a, a.run()), want);
  const b = snap.restore(a);
  assert.ok(aBuffers.has(b.kernel.k.pages.flags.buffer as ArrayBuffer), 'the dropped machine\'s buffers were reused');
  assert.is(outcome(b, b.run()), want, 'a machine on reused buffers runs as a new one');
  const d = snap.restore(a);
  assert.not.ok(aBuffers.has(d.kernel.k.pages.flags.buffer as ArrayBuffer), 'a dropped machine gives its buffers once');
  assert.is(outcome(d, d.run()), want);
  assert.is(outcome(it, it.run()), want, 'the snapshotted machine itself');
});

test('the copier follows rebindable and partial callbacks onto the copy, and refuses a plain closure', () => {
  const k = new Counter();
  const g = { k, m: rebindable<(by: number) => void>(k, 'bump'), p: partial((x: Counter, by: number) => x.bump(by), k) };
  const c = new GraphCopier().copy(g);
  c.m(2);
  c.p(3);
  assert.is(c.k.n, 5);
  assert.is(k.n, 0);
  const bad = { k, f: () => k.bump(1) };
  assert.throws(() => new GraphCopier().copy(bad), (e: unknown) => e instanceof SnapshotError && /\$\.f: a function/.test((e as Error).message));
  const acc = { get x() { return 1; } };
  assert.throws(() => new GraphCopier({ strict: true }).copy(acc), (e: unknown) => e instanceof SnapshotError && /accessor/.test((e as Error).message));
});


test('a copied object keeps its prototype, its fields in order and its accessors, and has fast properties (V8 dictionary mode made restored machines run at half speed)', () => {
  // A planted defect this guards against: shells made with Object.create(proto) and one computed-key store per field (V8 then makes objects of 20+ fields dictionary-mode).
  class Many {
    f: Record<string, unknown> = {};
    constructor() {
      for (let i = 0; i < 40; i++) (this as unknown as Record<string, unknown>)[`x${i}`] = i;
    }
    get twice(): number {
      return 2 * ((this as unknown as Record<string, number>)['x1'] ?? 0);
    }
  }
  const o = new Many();
  const c = new GraphCopier().copy(o);
  assert.is(Object.getPrototypeOf(c), Many.prototype);
  assert.equal(Object.keys(c), Object.keys(o));
  assert.is(c.twice, 2);
  assert.ok(c.f !== o.f, 'nested objects are copied, not shared');
  const sym = Symbol('s');
  const withSymbol = { a: { n: 1 }, [sym]: 1 };
  const cs = new GraphCopier().copy(withSymbol);
  assert.equal(cs.a, { n: 1 });
  assert.ok(cs.a !== withSymbol.a);
  // Fast properties, asked of V8 itself in a child process (natives syntax).
  const mod = new URL('../../emulator/snapshot.js', import.meta.url).href;
  const src = `
    const { GraphCopier } = await import(${JSON.stringify(mod)});
    class K { constructor() { for (let i = 0; i < 35; i++) this['k' + i] = { i }; this.a = new Int32Array(4); } }
    class N { constructor() { this.a = 1; this.b = 2; this.c = 3; this.d = 4; this.e = 5; this.f = 6; this.g = 7; this.h = 8; this.i = 9; this.j = 10;
      this.k = 11; this.l = 12; this.m = 13; this.n = 14; this.o = 15; this.p = 16; this.q = 17; this.r = 18; this.s = 19; this.t = 20; this.u = 21; this.v = 22; } }
    const n = new N();
    const c1 = new GraphCopier().copy(n), c2 = new GraphCopier().copy(n);
    console.log(JSON.stringify({ orig: %HasFastProperties(n), copy: %HasFastProperties(c1), shared: %HaveSameMap(c1, c2), big: %HasFastProperties(new GraphCopier().copy(new K())) }));`;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', src], { encoding: 'utf8' });
  assert.equal(JSON.parse(out), { orig: true, copy: true, shared: true, big: true });
});

test.run();
