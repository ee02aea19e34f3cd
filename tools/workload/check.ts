/**
 * Checks of a parsed workload that depend on the configuration in force and
 * on the script's own names, all made before anything runs: processes and
 * areas used before they exist or created twice (following `repeat` and
 * NAME# templates exactly as the run will), unaligned or out-of-user-space
 * mmap/munmap for the chosen split, kernel accesses outside their area,
 * cpa beyond guest memory, and scripts that would run absurdly long.
 */
import { InputError } from '../input-error.js';
import type { NameRef, Pos, Script, Stmt } from './ast.js';
import type { RunConfig } from './config.js';
import { taskSize } from './config.js';

/** A script may run at most this many statements (repeat counts multiplied out). */
export const MAX_STATEMENTS = 20_000_000;
/** ... and at most this much work (countWork: statements plus the pages of touch, munmap, vmalloc, cpa). */
export const MAX_WORK = 50_000_000;

const PAGE = 4096;

export function checkScript(script: Script, cfg: RunConfig): void {
  new Checker(script.file, cfg).run(script.body);
}

/** The name a NameRef stands for at loop index `iter` (innermost repeat). */
export function resolveName(n: NameRef, iter: number | undefined): string {
  return n.template ? `${n.text}${iter}` : n.text;
}

class Checker {
  private readonly procs = new Set<string>();
  private readonly areas = new Map<string, number>();
  private readonly openMeasures = new Map<string, Pos>();
  private readonly tasksize: number;

  constructor(
    private readonly file: string,
    private readonly cfg: RunConfig,
  ) {
    this.tasksize = taskSize(cfg.split);
  }

  private fail(pos: Pos, msg: string): never {
    throw new InputError(`${this.file}:${pos.line}:${pos.col}: ${msg}`);
  }

  run(body: Stmt[]): void {
    const total = countStatements(body);
    if (total > MAX_STATEMENTS) {
      const big = findBigRepeat(body) ?? body[0]!;
      this.fail(big, `the script would run ${total} statements (limit ${MAX_STATEMENTS}); lower the repeat count`);
    }
    this.block(body, undefined);
    if (this.work > MAX_WORK) {
      const big = findBigRepeat(body) ?? body[0]!;
      this.fail(
        big,
        `the script would walk about ${Math.round(this.work)} pages in all (touch, munmap, vmalloc, cpa, and the mappings fork, exec and exit copy or tear down; limit ${MAX_WORK}, a few minutes of emulation); lower the repeat count or the lengths`,
      );
    }
  }

  /** Work so far (see workOf), with fork/exec/exit charged the pages their process may have mapped. */
  private work = 0;
  /** Pages each process may have mapped (an upper bound: mmap lengths, inherited by fork). */
  private readonly mapped = new Map<string, number>();

  private mappedOf(name: string): number {
    return this.mapped.get(name) ?? 0;
  }

  private name(n: NameRef, iter: number | undefined): string {
    if (n.template && iter === undefined) this.fail(n, `'${n.text}#' outside a repeat block (NAME# needs a loop index)`);
    return resolveName(n, iter);
  }

  private proc(n: NameRef, iter: number | undefined): string {
    const s = this.name(n, iter);
    if (!this.procs.has(s)) this.fail(n, `unknown process '${s}'`);
    return s;
  }

  private area(n: NameRef, iter: number | undefined): number {
    const s = this.name(n, iter);
    const len = this.areas.get(s);
    if (len === undefined) this.fail(n, `unknown area '${s}'`);
    return len;
  }

  private block(body: Stmt[], iter: number | undefined): void {
    for (const s of body) this.stmt(s, iter);
  }

  private userRange(s: Pos, addr: number, len: number, what: string): void {
    if (addr % PAGE !== 0) this.fail(s, `${what} ADDR 0x${addr.toString(16)} is not page-aligned`);
    if (len === 0 || len % PAGE !== 0) this.fail(s, `${what} LEN 0x${len.toString(16)} is not a positive multiple of the page size`);
    if (addr + len > this.tasksize) {
      this.fail(s, `${what} 0x${addr.toString(16)}+0x${len.toString(16)} is outside user space (TASK_SIZE 0x${this.tasksize.toString(16)} with split=${this.cfg.split})`);
    }
  }

  private stmt(s: Stmt, iter: number | undefined): void {
    if (s.op !== 'repeat' && s.op !== 'measure' && s.op !== 'lazy' && s.op !== 'interrupt') this.work += workOf(s);
    switch (s.op) {
      case 'process': {
        const n = this.name(s.name, iter);
        if (this.procs.has(n)) this.fail(s.name, `process '${n}' already exists`);
        this.procs.add(n);
        return;
      }
      case 'fork': {
        const p = this.proc(s.parent, iter);
        const c = this.name(s.child, iter);
        if (this.procs.has(c)) this.fail(s.child, `process '${c}' already exists`);
        this.procs.add(c);
        // dup_mm copies every page table of the parent's mappings.
        this.work += this.mappedOf(p);
        this.mapped.set(c, this.mappedOf(p));
        return;
      }
      case 'switch':
      case 'syscall':
        this.proc(s.name, iter);
        return;
      case 'exec':
      case 'exit': {
        // The old mm is torn down: every mapping's page tables walked.
        const n = this.proc(s.name, iter);
        this.work += this.mappedOf(n);
        this.mapped.delete(n);
        if (s.op === 'exit') this.procs.delete(n);
        return;
      }
      case 'mmap': {
        const n = this.proc(s.name, iter);
        this.userRange(s, s.addr, s.len, 'mmap');
        this.mapped.set(n, Math.min(this.tasksize / PAGE, this.mappedOf(n) + s.len / PAGE));
        return;
      }
      case 'munmap': {
        const n = this.proc(s.name, iter);
        this.userRange(s, s.addr, s.len, 'munmap');
        this.mapped.set(n, Math.max(0, this.mappedOf(n) - s.len / PAGE));
        return;
      }
      case 'touch':
        this.proc(s.name, iter);
        if (s.len === 0) this.fail(s, 'touch LEN must be positive');
        if (s.addr + s.len > 2 ** 32) this.fail(s, 'touch range wraps past the top of the 4 GiB address space');
        return;
      case 'write':
      case 'read':
        this.proc(s.name, iter);
        if (s.addr > 2 ** 32 - 4) this.fail(s, `${s.op} ADDR 0x${s.addr.toString(16)}: a 32-bit access there wraps the address space`);
        return;
      case 'vmalloc': {
        const n = this.name(s.area, iter);
        if (this.areas.has(n)) this.fail(s.area, `area '${n}' already exists`);
        if (s.len === 0) this.fail(s, 'vmalloc LEN must be positive');
        if (s.len > 512 << 20) this.fail(s, `vmalloc LEN 0x${s.len.toString(16)} is larger than any vmalloc area`);
        this.areas.set(n, s.len);
        return;
      }
      case 'vfree':
        this.area(s.area, iter);
        this.areas.delete(this.name(s.area, iter));
        return;
      case 'kwrite':
      case 'kread': {
        const len = this.area(s.area, iter);
        const name = this.name(s.area, iter);
        if (s.offset >= len) this.fail(s, `${s.op} OFFSET 0x${s.offset.toString(16)} is outside area '${name}' (0x${len.toString(16)} bytes)`);
        if (s.offset + 4 > len) {
          this.fail(s, `${s.op} OFFSET 0x${s.offset.toString(16)}: the 4-byte access 0x${s.offset.toString(16)}..0x${(s.offset + 3).toString(16)} runs past the end of area '${name}' (0x${len.toString(16)} bytes; the last whole word is at 0x${(len - 4).toString(16)})`);
        }
        return;
      }
      case 'cpa':
        if (s.phys % PAGE !== 0) this.fail(s, `cpa PHYS 0x${s.phys.toString(16)} is not page-aligned`);
        if (s.pages === 0) this.fail(s, 'cpa PAGES must be positive');
        if (s.phys + s.pages * PAGE > this.cfg.mem) this.fail(s, `cpa range is beyond guest memory (mem=0x${this.cfg.mem.toString(16)})`);
        return;
      case 'measure': {
        const outer = this.openMeasures.get(s.label);
        if (outer !== undefined) {
          this.fail(s, `measure '${s.label}' inside a measure '${s.label}' block (line ${outer.line}): its cycles would be counted twice; use another label`);
        }
        this.openMeasures.set(s.label, s);
        try {
          this.block(s.body, iter);
        } finally {
          this.openMeasures.delete(s.label);
        }
        return;
      }
      case 'lazy':
      case 'interrupt':
        this.block(s.body, iter);
        return;
      case 'idle':
      case 'vmalloc_sync_all':
        return;
      case 'repeat':
        this.repeat(s.count, s.body);
        return;
    }
  }

  /**
   * Follow every iteration, except that a body with no NAME# template whose
   * name state comes back unchanged after one iteration (a fixed point) needs
   * no more checking: the remaining iterations see the same state.
   */
  private repeat(count: number, body: Stmt[]): void {
    const templated = hasTemplate(body);
    for (let i = 0; i < count; i++) {
      const before = templated ? '' : this.snapshot();
      const w0 = this.work;
      this.block(body, i);
      if (!templated && this.snapshot() === before) {
        // The remaining iterations see the same names and do the same work.
        this.work += (this.work - w0) * (count - i - 1);
        return;
      }
    }
  }

  private snapshot(): string {
    return [...this.procs].sort().join(',') + '|' + [...this.areas.keys()].sort().join(',');
  }
}

function hasTemplate(body: Stmt[]): boolean {
  for (const s of body) {
    if (s.op === 'repeat') continue; // inner loops bind their own index
    if (s.op === 'measure' || s.op === 'lazy' || s.op === 'interrupt') {
      if (hasTemplate(s.body)) return true;
      continue;
    }
    for (const v of Object.values(s)) if (v && typeof v === 'object' && 'template' in v && (v as NameRef).template) return true;
  }
  return false;
}

/**
 * The work one statement stands for, in pages: a statement is 1, and a
 * statement that walks a range (touch, munmap, vmalloc, cpa) 1 + its pages.
 * Bounding this, not the statement count, bounds the run time.
 */
export function workOf(s: Stmt): number {
  switch (s.op) {
    case 'touch':
    case 'munmap':
    case 'vmalloc':
      return 1 + Math.ceil(s.len / PAGE);
    case 'cpa':
      return 1 + s.pages;
    default:
      return 1;
  }
}

/** The work (workOf) the script will do, repeat counts multiplied out (saturating). */
export function countWork(body: Stmt[]): number {
  let n = 0;
  for (const s of body) {
    if (s.op === 'repeat') n += s.count * countWork(s.body);
    else if (s.op === 'measure' || s.op === 'lazy' || s.op === 'interrupt') n += countWork(s.body);
    else n += workOf(s);
    if (n > Number.MAX_SAFE_INTEGER / 4) return Number.MAX_SAFE_INTEGER;
  }
  return n;
}

/** Statements the script will run, repeat counts multiplied out (saturating). */
export function countStatements(body: Stmt[]): number {
  let n = 0;
  for (const s of body) {
    if (s.op === 'repeat') n += s.count * countStatements(s.body);
    else if (s.op === 'measure' || s.op === 'lazy' || s.op === 'interrupt') n += 1 + countStatements(s.body);
    else n += 1;
    if (n > Number.MAX_SAFE_INTEGER / 4) return Number.MAX_SAFE_INTEGER;
  }
  return n;
}

function findBigRepeat(body: Stmt[]): Stmt | undefined {
  let best: Stmt | undefined;
  let bestN = 0;
  for (const s of body) {
    if (s.op === 'repeat' || s.op === 'measure' || s.op === 'lazy') {
      const n = countStatements([s]);
      if (n > bestN) {
        bestN = n;
        best = s.op === 'repeat' && s.count * 1 > 0 ? s : (findBigRepeat(s.body) ?? s);
      }
    }
  }
  return best;
}
