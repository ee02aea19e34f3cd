/**
 * A seeded generator of random, valid workload scripts (.pvw) for the
 * differential fuzzer: process trees (process, fork, exec, exit, switch),
 * anonymous mappings with random protections (mmap/munmap, MAP_FIXED
 * overlaps included), user accesses (touch, write, read) including
 * copy-on-write after fork and reads of the zero page, vmalloc churn with
 * kernel accesses from whichever process is current, change_page_attr on
 * direct-map pages, occasional `repeat` / `measure` blocks, and waves of
 * up to 40 processes forked and then exited together.
 *
 * The generator keeps a model of what every process and vmalloc area holds,
 * so every `read` carries `expect VALUE` (anonymous memory reads as zero
 * until written; a child sees its parent's values at the fork) and every
 * access the kernel must refuse carries `expect segv`; `kread` only reads
 * words it wrote (a vmalloc page is not zeroed). A generated script is valid
 * for its configuration: it parses and passes checkScript (the tests assert
 * it for many seeds) and, on a correct emulator, kernel and backend, runs to
 * the end with every expectation met.
 *
 * cpa: only patterns that are valid on 2.6.21's change_page_attr. A page is
 * changed and later restored at most as many times as it was changed:
 * restoring a never-changed page that a large page maps at the default is a
 * kernel BUG (pageattr.ts), as it is in Linux. What counts as a restore is
 * any protection equal to PAGE_KERNEL: `rw`, and `nx` too (PAGE_KERNEL
 * already has NX under PAE, and NX is 0 without it), and `x` without PAE
 * (PAGE_KERNEL_EXEC == PAGE_KERNEL when there is no NX bit). A change is
 * `ro`, or `x` under PAE. The pages are picked at random, not owned by the
 * script, so a `cpa` can hit a page the kernel uses: under Xen that stops the
 * run, as it does in Linux 2.6.23 on Xen 3.1.0; the differential checker
 * reports it as an expected outcome (expected-outcomes.ts), not a failure.
 */
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { pageOffset, taskSize, type RunConfig, type Split } from '../workload/config.js';
import { Prng } from './prng.js';
import { hex } from '../../emulator/hex.js';

const PAGE = 4096;
/** The low user window: 8 MiB from 0x08000000 (crosses 2 MiB and 4 MiB table boundaries). */
const LOW_BASE = 0x08000000;
const LOW_PAGES = 2048;
/** The top user window: the last 1 MiB below TASK_SIZE. */
const TOP_PAGES = 256;

export interface GenOptions {
  /** Top-level statements to aim for (blocks count as one). Default 40..120. */
  statements?: number;
  /** Force parts of the configuration. */
  config?: Partial<RunConfig>;
}

export interface GeneratedWorkload {
  seed: number;
  config: RunConfig;
  /** The script, `machine` line first. */
  text: string;
}

type Prot = 'r' | 'rw' | 'rx' | 'rwx';

interface ProcModel {
  /** Mapped pages (page number) -> prot. */
  pages: Map<number, Prot>;
  /** Known words (4-aligned address) -> value; an unlisted word of a mapped page reads 0. */
  vals: Map<number, number>;
}

interface AreaModel {
  len: number;
  vals: Map<number, number>;
}

const writable = (p: Prot): boolean => p === 'rw' || p === 'rwx';

function cloneProc(p: ProcModel): ProcModel {
  return { pages: new Map(p.pages), vals: new Map(p.vals) };
}

/** Generate the configuration for a seed: PAE or not, split, memory, cpu; kernel patched. */
export function configForSeed(rng: Prng, force: Partial<RunConfig> = {}): RunConfig {
  const cfg: RunConfig = {
    backend: 'native',
    pae: rng.chance(0.5),
    split: rng.pick(['3G', '2G', '1G'] as const),
    mem: rng.pick([32, 64, 128]) << 20,
    cpu: rng.pick(PRESET_NAMES),
    kernel: 'patched',
  };
  return { ...cfg, ...force };
}

export function generateWorkload(seed: number, opts: GenOptions = {}): GeneratedWorkload {
  const rng = new Prng(seed);
  const cfg = configForSeed(rng, opts.config);
  const g = new Gen(rng, cfg);
  const target = opts.statements ?? rng.range(40, 120);
  g.emit(`# pvmmu fuzz workload, seed ${seed}`);
  g.emit(`machine pae=${cfg.pae ? 'on' : 'off'} split=${cfg.split} mem=${cfg.mem >> 20}M cpu=${cfg.cpu} kernel=${cfg.kernel}`);
  g.top('process', ['p0']);
  while (g.count < target) g.step();
  return { seed, config: cfg, text: g.lines.join('\n') + '\n' };
}

class Gen {
  readonly lines: string[] = [];
  count = 0;
  private readonly procs = new Map<string, ProcModel>();
  private readonly areas = new Map<string, AreaModel>();
  /** Direct-map pfn -> times changed and not yet restored. */
  private readonly cpaCount = new Map<number, number>();
  private nextProc = 1;
  private nextArea = 0;
  private nextBlock = 0;
  private current: string | null = null;
  private indent = '';
  private readonly tasksize: number;
  private readonly kernelBase: number;

  constructor(
    private readonly rng: Prng,
    private readonly cfg: RunConfig,
  ) {
    this.tasksize = taskSize(cfg.split);
    this.kernelBase = pageOffset(cfg.split);
  }

  emit(line: string): void {
    this.lines.push(this.indent + line);
  }

  /** A top-level or block statement, counted. */
  top(op: string, args: (string | number)[]): void {
    this.emit([op, ...args.map((a) => (typeof a === 'number' ? hex(a) : a))].join(' '));
    this.count++;
    if (op === 'process') this.procs.set(args[0] as string, { pages: new Map(), vals: new Map() });
    if (op === 'process' || op === 'exec') this.current = args[0] as string;
  }

  private anyProc(): string | null {
    const names = [...this.procs.keys()];
    return names.length ? this.rng.pick(names) : null;
  }

  step(): void {
    const r = this.rng;
    if (this.procs.size === 0) {
      this.top('process', [`p${this.nextProc++}`]);
      return;
    }
    const op = r.weighted<string>([
      [3, 'process'],
      [8, 'fork'],
      [3, 'exec'],
      [3, 'exit'],
      [5, 'switch'],
      [14, 'mmap'],
      [4, 'munmap'],
      [10, 'touch'],
      [14, 'write'],
      [16, 'read'],
      [4, 'segv'],
      [4, 'vmalloc'],
      [2, 'vfree'],
      [6, 'kwrite'],
      [6, 'kread'],
      [4, 'cpa'],
      [3, 'repeat'],
      [2, 'measure'],
      [1, 'wave'],
    ]);
    this.one(op);
  }

  /** One statement of kind `op` at the current nesting (falls back to a read when not possible). */
  private one(op: string): void {
    const r = this.rng;
    const p = this.anyProc()!;
    switch (op) {
      case 'process':
        if (this.procs.size >= 8) return this.one('read');
        this.top('process', [`p${this.nextProc++}`]);
        return;
      case 'fork': {
        if (this.procs.size >= 8) return this.one('exit');
        const c = `p${this.nextProc++}`;
        this.top('fork', [p, c]);
        this.procs.set(c, cloneProc(this.procs.get(p)!));
        return;
      }
      case 'exec':
        this.top('exec', [p]);
        this.procs.set(p, { pages: new Map(), vals: new Map() });
        return;
      case 'exit':
        if (this.procs.size <= 1) return this.one('fork');
        this.top('exit', [p]);
        this.procs.delete(p);
        if (this.current === p) this.current = null;
        return;
      case 'switch':
        this.top('switch', [p]);
        this.current = p;
        return;
      case 'mmap': {
        const [addr, len] = this.range();
        const prot = r.pick(['r', 'rw', 'rw', 'rx', 'rwx'] as const);
        this.top('mmap', [p, addr, len, prot]);
        this.unmapModel(p, addr, len);
        const m = this.procs.get(p)!;
        for (let a = addr; a < addr + len; a += PAGE) m.pages.set(a / PAGE, prot);
        return;
      }
      case 'munmap': {
        const ex = this.mappedRun(p);
        const [addr, len] = ex && r.chance(0.8) ? ex : this.range();
        this.top('munmap', [p, addr, len]);
        this.unmapModel(p, addr, len);
        return;
      }
      case 'touch': {
        const ex = this.mappedRun(p);
        if (!ex) return this.one('mmap');
        const [addr, len] = ex;
        const w = r.chance(0.5) && this.allWritable(p, addr, len);
        this.top('touch', [p, addr, len, w ? 'write' : 'read']);
        this.current = p;
        return;
      }
      case 'write': {
        const a = this.mappedWord(p, true);
        if (a === null) return this.one('mmap');
        const v = this.value();
        this.top('write', [p, a, v]);
        this.procs.get(p)!.vals.set(a, v);
        this.current = p;
        return;
      }
      case 'read': {
        const a = this.mappedWord(p, false);
        if (a === null) return this.one('mmap');
        this.top('read', [p, a, 'expect', this.procs.get(p)!.vals.get(a) ?? 0]);
        this.current = p;
        return;
      }
      case 'segv': {
        // An access the kernel must refuse: unmapped, read-only, or a kernel address.
        const m = this.procs.get(p)!;
        const kind = r.int(3);
        let addr: number | null = null;
        let write = r.chance(0.5);
        if (kind === 0) {
          addr = this.kernelBase + r.int((2 ** 32 - this.kernelBase) / PAGE - 1) * PAGE + 4 * r.int(1024);
        } else if (kind === 1) {
          const ro = [...m.pages].filter(([, pr]) => !writable(pr));
          if (ro.length) {
            addr = r.pick(ro)[0] * PAGE + 4 * r.int(1024);
            write = true;
          }
        }
        if (addr === null) {
          for (let i = 0; i < 8 && addr === null; i++) {
            const [a] = this.range(1);
            if (!m.pages.has(a / PAGE)) addr = a + 4 * r.int(1024);
          }
        }
        if (addr === null) return this.one('read');
        if (write) this.top('write', [p, addr, this.value(), 'expect', 'segv']);
        else this.top('read', [p, addr, 'expect', 'segv']);
        this.current = p;
        return;
      }
      case 'vmalloc': {
        if (this.areas.size >= 6) return this.one('vfree');
        const name = `v${this.nextArea++}`;
        const len = r.chance(0.7) ? r.range(1, 16) * PAGE : r.range(4, 70000);
        this.top('vmalloc', [name, len]);
        this.areas.set(name, { len, vals: new Map() });
        return;
      }
      case 'vfree': {
        const a = this.anyArea();
        if (!a) return this.one('vmalloc');
        this.top('vfree', [a]);
        this.areas.delete(a);
        return;
      }
      case 'kwrite': {
        const a = this.anyArea();
        if (!a) return this.one('vmalloc');
        const m = this.areas.get(a)!;
        const off = 4 * r.int(Math.floor(m.len / 4));
        const v = this.value();
        this.top('kwrite', [a, off, v]);
        m.vals.set(off, v);
        return;
      }
      case 'kread': {
        const a = this.anyArea();
        const m = a ? this.areas.get(a)! : undefined;
        if (!a || !m || m.vals.size === 0) return this.one('kwrite');
        const off = r.pick([...m.vals.keys()]);
        this.top('kread', [a, off, 'expect', m.vals.get(off)!]);
        return;
      }
      case 'cpa':
        return this.cpa();
      case 'repeat':
        if (this.indent.length > 0) return this.one('write');
        return this.repeat();
      case 'measure':
        if (this.indent.length > 0) return this.one('read');
        return this.measure();
      case 'wave':
        if (this.indent.length > 0) return this.one('fork');
        return this.wave();
    }
  }

  private cpa(): void {
    const r = this.rng;
    // Restore a changed page now and then (valid: it was changed before).
    const changed = [...this.cpaCount].filter(([, n]) => n > 0).map(([pfn]) => pfn);
    if (changed.length && r.chance(0.45)) {
      const pfn = r.pick(changed);
      let n = 1;
      while (n < 4 && (this.cpaCount.get(pfn + n) ?? 0) > 0) n++;
      n = r.range(1, n);
      this.top('cpa', [(pfn * PAGE) >>> 0, n, r.pick(this.restoreAttrs())]);
      for (let i = 0; i < n; i++) this.cpaCount.set(pfn + i, this.cpaCount.get(pfn + i)! - 1);
      return;
    }
    // Change 1..4 pages of the direct map above 16 MiB (the kernel image and low memory stay).
    const lo = (16 << 20) / PAGE;
    const hi = this.cfg.mem / PAGE - 4;
    const nearBoundary = r.chance(0.3);
    let pfn = lo + r.int(hi - lo);
    if (nearBoundary) pfn = Math.max(lo, pfn - (pfn % 512) - r.int(3)); // straddle a 2/4 MiB boundary
    const n = r.range(1, 4);
    this.top('cpa', [pfn * PAGE, n, r.pick(this.changeAttrs())]);
    for (let i = 0; i < n; i++) this.cpaCount.set(pfn + i, (this.cpaCount.get(pfn + i) ?? 0) + 1);
  }

  /** `repeat N { ... }`: a body whose effect is the same every iteration. */
  private repeat(): void {
    const r = this.rng;
    const k = this.nextBlock++;
    const n = r.range(2, 5);
    this.emit(`repeat ${n} {`);
    this.count++;
    const saved = this.indent;
    this.indent += '  ';
    const forms = r.range(1, 3);
    for (let i = 0; i < forms; i++) this.repeatForm(k, i);
    this.indent = saved;
    this.emit('}');
  }

  private repeatForm(k: number, i: number): void {
    const r = this.rng;
    const p = this.anyProc()!;
    const form = r.int(6);
    if (form === 0) {
      // fork a child, work in it (copy-on-write), exit it: the parent is unchanged.
      const c = `r${k}c${i}#`;
      this.emit(`fork ${p} ${c}`);
      const child = cloneProc(this.procs.get(p)!);
      const ops = r.range(1, 3);
      for (let j = 0; j < ops; j++) {
        const w = this.wordIn(child, true);
        if (w !== null && r.chance(0.6)) {
          const v = this.value();
          this.emit(`write ${c} ${hex(w)} ${hex(v)}`);
          child.vals.set(w, v);
        } else {
          const rd = this.wordIn(child, false);
          if (rd !== null) this.emit(`read ${c} ${hex(rd)} expect ${hex(child.vals.get(rd) ?? 0)}`);
        }
      }
      this.emit(`exit ${c}`);
      this.current = null;
    } else if (form === 1) {
      const a = this.mappedWord(p, true);
      if (a === null) return;
      const v = this.value();
      this.emit(`write ${p} ${hex(a)} ${hex(v)}`);
      this.emit(`read ${p} ${hex(a)} expect ${hex(v)}`);
      this.procs.get(p)!.vals.set(a, v);
      this.current = p;
    } else if (form === 2) {
      const a = `r${k}v${i}#`;
      const len = r.range(1, 8) * PAGE;
      const off = 4 * r.int(len / 4);
      const v = this.value();
      this.emit(`vmalloc ${a} ${hex(len)}`);
      this.emit(`kwrite ${a} ${hex(off)} ${hex(v)}`);
      if (this.procs.size > 1 && r.chance(0.5)) {
        const q = this.anyProc()!;
        this.emit(`switch ${q}`);
        this.current = q;
      }
      this.emit(`kread ${a} ${hex(off)} expect ${hex(v)}`);
      this.emit(`vfree ${a}`);
    } else if (form === 3) {
      const [addr, len] = this.range();
      // Only over pages p does not map: munmap would otherwise take part of
      // an older mapping away, and the next iteration would differ from the
      // first (campaign of 2026-12-02, seeds 101508 and 102055: a read in a
      // later iteration of a child forked after the munmap took SIGSEGV on
      // every backend).
      const m = this.procs.get(p)!;
      for (let a = addr; a < addr + len; a += PAGE) if (m.pages.has(a / PAGE)) return;
      const prot = r.pick(['rw', 'rwx', 'r'] as const);
      this.emit(`mmap ${p} ${hex(addr)} ${hex(len)} ${prot}`);
      this.emit(`touch ${p} ${hex(addr)} ${hex(len)} ${writable(prot) && r.chance(0.7) ? 'write' : 'read'}`);
      this.emit(`munmap ${p} ${hex(addr)} ${hex(len)}`);
      this.unmapModel(p, addr, len);
      this.current = p;
    } else if (form === 4) {
      const a = this.anyArea();
      if (!a || this.areas.get(a)!.vals.size === 0) return;
      const m = this.areas.get(a)!;
      const off = r.pick([...m.vals.keys()]);
      const q = this.anyProc()!;
      this.emit(`switch ${q}`);
      this.emit(`kread ${a} ${hex(off)} expect ${hex(m.vals.get(off)!)}`);
      this.current = q;
    } else {
      // change and restore a page: always valid, whatever its previous state.
      const lo = (16 << 20) / PAGE;
      const pfn = lo + r.int(this.cfg.mem / PAGE - 4 - lo);
      this.emit(`cpa ${hex(pfn * PAGE)} 1 ${r.pick(this.changeAttrs())}`);
      this.emit(`cpa ${hex(pfn * PAGE)} 1 ${r.pick(this.restoreAttrs())}`);
    }
  }

  /**
   * A wave of processes: `repeat N { fork P wK# }` then `repeat N { exit wK# }`
   * (N up to 40), so many pgds are alive at once and then freed together
   * (more than the pgd cache keeps: its slab pages are released).
   */
  private wave(): void {
    const r = this.rng;
    const k = this.nextBlock++;
    const p = this.anyProc()!;
    const n = r.range(2, 40);
    this.emit(`repeat ${n} {`);
    this.emit(`  fork ${p} w${k}c#`);
    if (r.chance(0.5)) {
      const w = this.mappedWord(p, false);
      if (w !== null) this.emit(`  read w${k}c# ${hex(w)} expect ${hex(this.procs.get(p)!.vals.get(w) ?? 0)}`);
    }
    this.emit('}');
    this.emit(`repeat ${n} {`);
    this.emit(`  exit w${k}c#`);
    this.emit('}');
    this.count += 2;
    this.current = null;
  }

  private measure(): void {
    const r = this.rng;
    const label = r.pick(['fork', 'touch', 'mixed', 'kernel', 'cow']);
    this.emit(`measure ${label} {`);
    this.count++;
    const saved = this.indent;
    this.indent += '  ';
    const n = r.range(1, 4);
    for (let i = 0; i < n; i++) {
      if (this.procs.size === 0) this.top('process', [`p${this.nextProc++}`]);
      else this.one(r.pick(['fork', 'touch', 'write', 'read', 'kwrite', 'kread', 'mmap', 'switch', 'segv']));
    }
    this.indent = saved;
    this.emit('}');
  }

  // ---- helpers ----

  /** cpa attributes that differ from PAGE_KERNEL for this configuration. */
  private changeAttrs(): string[] {
    return this.cfg.pae ? ['ro', 'x'] : ['ro'];
  }

  /** cpa attributes equal to PAGE_KERNEL (a restore). */
  private restoreAttrs(): string[] {
    return this.cfg.pae ? ['rw', 'nx'] : ['rw', 'nx', 'x'];
  }

  private value(): number {
    return this.rng.chance(0.1) ? this.rng.pick([0, 0xffffffff, 1]) : this.rng.u32();
  }

  private anyArea(): string | null {
    const names = [...this.areas.keys()];
    return names.length ? this.rng.pick(names) : null;
  }

  /** A random page-aligned range in one of the user windows. */
  private range(maxPages = 0): [number, number] {
    const r = this.rng;
    const pages = maxPages || (r.chance(0.8) ? r.range(1, 8) : r.range(9, 64));
    if (r.chance(0.8)) {
      const first = r.int(LOW_PAGES - pages);
      return [LOW_BASE + first * PAGE, pages * PAGE];
    }
    const first = r.int(TOP_PAGES - pages);
    return [this.tasksize - TOP_PAGES * PAGE + first * PAGE, pages * PAGE];
  }

  private unmapModel(p: string, addr: number, len: number): void {
    const m = this.procs.get(p)!;
    for (let a = addr; a < addr + len; a += PAGE) m.pages.delete(a / PAGE);
    for (const w of [...m.vals.keys()]) if (w >= addr && w < addr + len) m.vals.delete(w);
  }

  /** A run of consecutive mapped pages of p (up to 16), or null. */
  private mappedRun(p: string): [number, number] | null {
    const m = this.procs.get(p)!;
    if (m.pages.size === 0) return null;
    const start = this.rng.pick([...m.pages.keys()]);
    let n = 1;
    const want = this.rng.range(1, 16);
    while (n < want && m.pages.has(start + n)) n++;
    return [start * PAGE, n * PAGE];
  }

  private allWritable(p: string, addr: number, len: number): boolean {
    const m = this.procs.get(p)!;
    for (let a = addr; a < addr + len; a += PAGE) if (!writable(m.pages.get(a / PAGE)!)) return false;
    return true;
  }

  private mappedWord(p: string, write: boolean): number | null {
    return this.wordIn(this.procs.get(p)!, write);
  }

  /** A 4-aligned word in a mapped page (writable for a write); often one written before. */
  private wordIn(m: ProcModel, write: boolean): number | null {
    const r = this.rng;
    if (!write && m.vals.size && r.chance(0.6)) return r.pick([...m.vals.keys()]);
    const pages = [...m.pages].filter(([, pr]) => !write || writable(pr)).map(([pg]) => pg);
    if (!pages.length) return null;
    return (r.pick(pages) * PAGE + 4 * r.int(1024)) >>> 0;
  }
}

/** The splits a generated workload may use (for the tests). */
export const SPLITS: readonly Split[] = ['3G', '2G', '1G'];
