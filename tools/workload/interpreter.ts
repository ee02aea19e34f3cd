/**
 * Runs a checked workload on the guest kernel, statement by statement: boots
 * the backend and the kernel for the configuration, drives the kernel API,
 * keeps `measure` accounts (runs, cycles, events per run), honours `expect`,
 * records what the guest observes (for `compare`), and stops at the first
 * runtime failure naming its line: a failed expect, a hypervisor refusal, a
 * kernel BUG, an out-of-memory the script did not ask for, an invariant
 * breach.
 */
import { breakdownDelta, COST_COMPONENTS, type CostBreakdown } from '../../emulator/cost-model.js';
import type { Mmu } from '../../emulator/mmu.js';
import { bootKernel, InvariantViolation, KernelBug, type HookPoint, type Kernel, type VmallocArea } from '../../guest-kernel/kernel.js';
import { createBackend as createBackendOf, type Backend as BackendHandle } from '../../hypervisor/backend.js';
import type { MachineConfig, ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { HypervisorRefusal } from '../../hypervisor/types.js';
import { XenRefusal } from '../../hypervisor/xen/index.js';
import type { NameRef, Pos, Script, Stmt } from './ast.js';
import { resolveName, workOf } from './check.js';
import { pageOffset, type RunConfig } from './config.js';
import type { TraceWriter } from '../trace/writer.js';
import { hex } from '../../emulator/hex.js';
import { rebindable, SnapshotError, type CopierOptions } from '../../emulator/snapshot.js';
import { copyMachine, MachineSnapshot } from './machine-snapshot.js';

export type FailureKind = 'expect' | 'segv' | 'refusal' | 'bug' | 'oom' | 'invariant' | 'interrupted';

/** The full reason of a hypervisor refusal (Xen's wording, the Xen function, the frame). */
export interface RefusalDetail {
  /** The Xen function or hypercall that refused (e.g. "mmuext_op PIN_L3_TABLE"). */
  op: string;
  /** Xen's reason, as its MEM_LOG prints it. */
  reason: string;
  /** Xen's rule (the reason with its numbers elided: the key of `refusals`), when Xen refused. */
  rule?: string;
  /** The Xen 3.1.0 function that refused (e.g. "alloc_l3_table"), when Xen refused. */
  fn?: string;
  /** The page-table level concerned (1..3), when the rule names one. */
  level?: number;
  /** The frame type concerned ("l1", "l2|pae_xen_l2", "writable" …), when Xen's log names one. */
  type?: string;
  /** The machine frame concerned, in hex, when there is one. */
  mfn: string | null;
  /** Every MEM_LOG line of the refused operation. */
  log: string[];
  /** The statement that met it, as written (`exit p3`), and its place. */
  statement: string;
  line: number;
  col: number;
}

export interface RunFailure {
  kind: FailureKind;
  line: number;
  col: number;
  /** "FILE:LINE:COL: message" */
  message: string;
  /** The statement the run stopped at (`exit p3`, names resolved). */
  statement?: string;
  /** For kind 'refusal': the full reason. */
  refusal?: RefusalDetail;
}

export interface MeasureAccount {
  runs: number;
  cycles: number;
  perRun: number;
  /** Events summed over the runs (faults, hypercalls, TLB misses, ...). */
  events: Record<string, number>;
  /** `cycles` by cost component (COST_COMPONENTS order, all present); sums exactly to `cycles`. */
  breakdown: CostBreakdown;
}

/** The `boot --json` document (docs/cli.md), plus more fields. */
export interface RunResult {
  workload: string;
  config: RunConfig;
  /** All cycles, boot included. */
  cycles: number;
  /** Cycles spent booting (paging_init, caches) before the first statement. */
  bootCycles: number;
  /** `cycles` by cost component; sums exactly to `cycles`. */
  breakdown: CostBreakdown;
  /** `bootCycles` by cost component; sums exactly to `bootCycles`. */
  bootBreakdown: CostBreakdown;
  tlb: { hits: number; misses: number; flushes: number; l2Hits: number; invlpg: number };
  walks: { count: number; cycles: number; byDepth: Record<string, number> };
  pageFaults: { user: number; cow: number; vmalloc: number; segv: number; spurious: number; oomKills: number };
  hypercalls: Record<string, number>;
  refusals: Record<string, number>;
  traps: Record<string, number>;
  measures: Record<string, MeasureAccount>;
  guest: { pgdsAlive: number; framesUsed: number; framesTotal: number; pgdList: number; statements: number };
  /** What the guest observed, in order (compared across backends). */
  observations: string[];
  invariants: string[];
  failure: RunFailure | null;
}

export interface RunOptions {
  trace?: TraceWriter;
  /** Run the guest invariant checker after every statement. */
  checkEachStatement?: boolean;
  /** Fail the k-th allocation (fault injection). */
  failAt?: number | null;
  seed?: number;
  /** Wrap the backend before the kernel boots on it (test doubles: a hostile guest's corrupted op). */
  wrapBackend?: (ops: ParavirtOps) => ParavirtOps;
  /** Machine layout of the Xen backend's p2m (default identity; 'shuffled' permutes it by `seed`). */
  xenP2m?: 'identity' | 'shuffled';
  /** Xen, PAE: put half of the guest's machine frames above 4 GiB. */
  xenAbove4g?: boolean;
  /** Builds the processor the backend runs on (the differential fuzzer's checking MMU); default a plain Mmu. */
  newMmu?: MachineConfig['newMmu'];
  /** With checkEachStatement: the check to run after each statement instead of the kernel's full one (the fuzzer's incremental check; same findings). */
  statementCheck?: () => string[];
  /** Called before each statement runs (the differential fuzzer names the statement a check failed in). */
  onStatement?: (s: Stmt) => void;
  /** Called after every statement with the work done so far (pages touched and statements; see check.ts countWork). */
  onProgress?: (work: number, line: number) => void;
}

/** The machine a configuration describes. */
export function machineConfigOf(cfg: RunConfig, seed = 1): MachineConfig {
  return { pae: cfg.pae, memBytes: cfg.mem, cpu: cfg.cpu, pageOffset: pageOffset(cfg.split), seed };
}

/** The backend a configuration names, as its typed handle (hypervisor/backend.ts). */
export function createBackend(cfg: RunConfig, seed = 1, xenP2m?: 'identity' | 'shuffled', xenAbove4g = false, newMmu?: MachineConfig['newMmu']): BackendHandle {
  const mc = machineConfigOf(cfg, seed);
  if (newMmu !== undefined) mc.newMmu = newMmu;
  return createBackendOf(cfg.backend, mc, { ...(xenP2m ? { xenP2m } : {}), ...(xenAbove4g ? { above4g: true } : {}) });
}

/** The full reason of a refusal: Xen's rule and every line of its log when Xen refused, the reason otherwise. */
function refusalDetail(e: HypervisorRefusal, statement: string, pos: Pos): RefusalDetail {
  const xen = e instanceof XenRefusal ? e : null;
  return {
    op: e.op,
    reason: e.reason,
    ...(xen ? { rule: xen.rule, fn: xen.fn, ...(xen.level !== undefined ? { level: xen.level } : {}), ...(xen.type !== undefined ? { type: xen.type } : {}) } : {}),
    mfn: e.mfn !== undefined ? hex(e.mfn) : null,
    log: xen ? [...xen.log] : [e.reason],
    statement,
    line: pos.line,
    col: pos.col,
  };
}

/** A measure block being run: the counters at its start. */
interface MeasureStart {
  label: string;
  line: number;
  before: Record<string, number>;
  bBefore: CostBreakdown;
  t0: number;
}

/**
 * Where the run is: one frame per block being run (the script's body, a
 * repeat's body with its iteration, a measure's body with its counters at
 * the start). Plain data, so a machine snapshot copies the position with the
 * rest of the machine.
 */
interface BlockFrame {
  body: Stmt[];
  /** The next statement of `body` to run. */
  i: number;
  iter: number | undefined;
  repeat?: { count: number; n: number };
  measure?: MeasureStart;
}

/** The pid of the trace track for the measure spans (not a guest process). */
export const MEASURE_TRACK = 999_999;

class StopRun extends Error {
  constructor(readonly failure: RunFailure) {
    super(failure.message);
  }
}


export class Interpreter {
  readonly ops: ParavirtOps;
  /** The backend's handle (ops may be a test double wrapping handle.ops). */
  readonly handle: BackendHandle;
  /** The backend's own ops. */
  readonly backend: ParavirtOps;
  readonly kernel: Kernel;
  readonly mmu: Mmu;
  private readonly areas = new Map<string, VmallocArea>();
  private readonly measures = new Map<string, MeasureAccount>();
  readonly observations: string[] = [];
  private statements = 0;
  private readonly pids = new Map<string, number>();
  readonly bootCycles: number;
  readonly bootBreakdown: CostBreakdown;
  /** The position in the script (see BlockFrame); empty when the script is over. */
  private stack: BlockFrame[];
  /** The failure the run stopped at (advance()), if it stopped. */
  private stopped: RunFailure | null = null;

  constructor(
    /** The script being run (resumeWith() may change it at a top-level boundary). */
    private _script: Script,
    readonly cfg: RunConfig,
    private readonly opts: RunOptions = {},
  ) {
    this.handle = createBackend(cfg, opts.seed, opts.xenP2m, opts.xenAbove4g, opts.newMmu);
    const backend = this.handle.ops;
    this.backend = backend;
    this.ops = opts.wrapBackend ? opts.wrapBackend(backend) : backend;
    this.mmu = this.handle.machine;
    const trace = opts.trace;
    if (trace) {
      this.mmu.setTraceSink(trace);
      // Refusals are instants; hypercalls and traps are slices with their cycles and arguments.
      this.ops.stats.listener = (e) =>
        e.cycles === undefined ? trace.instant(`${e.kind} ${e.name}`, e.kind, e.at) : trace.complete(`${e.kind} ${e.name}`, e.kind, e.at, e.cycles, { cycles: e.cycles, ...e.args });
      trace.processName(0, 'kernel (boot, idle)');
      trace.processName(MEASURE_TRACK, 'measure blocks');
    }
    this.kernel = bootKernel({ ops: this.ops, variant: cfg.kernel });
    if (opts.failAt !== undefined && opts.failAt !== null) this.kernel.failAt(opts.failAt);
    this.bootCycles = this.ops.stats.cycles;
    if (trace) {
      // Where user space, the direct map and vmalloc lie, for labelling pages in reports.
      const L = this.kernel.L;
      trace.instant('kernel layout', 'layout', this.bootCycles, {
        PAGE_OFFSET: hex(L.PAGE_OFFSET),
        high_memory: hex(L.high_memory),
        VMALLOC_START: hex(L.VMALLOC_START),
        VMALLOC_END: hex(L.VMALLOC_END),
      });
    }
    this.bootBreakdown = this.ops.stats.breakdown;
    this.stack = [{ body: _script.body, i: 0, iter: undefined }];
  }

  get script(): Script {
    return this._script;
  }

  /**
   * Where the run is, if at a boundary between top-level statements: how
   * many top-level statements have run (blocks that have run to their end
   * count as done); -1 inside a block (a repeat with iterations to go, a
   * block with statements to go) or once the run has stopped.
   */
  topLevelDone(): number {
    if (this.stopped !== null) return -1;
    const st = this.stack;
    if (st.length === 0) return this._script.body.length;
    for (let j = st.length - 1; j >= 1; j--) {
      const f = st[j]!;
      if (f.i < f.body.length || (f.repeat !== undefined && f.repeat.n + 1 < f.repeat.count)) return -1;
    }
    return st[0]!.i;
  }

  /**
   * Continue with another script from here (the differential fuzzer's
   * shrinking: a candidate script resumes from a checkpoint of a run that
   * shared its first statements). The machine must be at the boundary after
   * `at` top-level statements (topLevelDone()), and `script`'s first `at`
   * top-level statements must be the same, as written and at the same
   * places, as those run: the machine is then exactly where `script`'s own
   * run would be. The blocks that have run to their end are closed first
   * (a measure's account), as the next step would.
   */
  resumeWith(script: Script, at: number): void {
    const done = this.topLevelDone();
    if (done !== at) throw new RangeError(`resumeWith: the run is at ${done < 0 ? 'no top-level boundary' : `top-level statement ${done}`}, not ${at}`);
    if (at > script.body.length) throw new RangeError(`resumeWith: the script has ${script.body.length} top-level statements, fewer than ${at}`);
    while (this.stack.length > 1) {
      const f = this.stack.pop()!;
      if (f.measure !== undefined) this.endMeasure(f.measure);
    }
    this._script = script;
    this.stack = [{ body: script.body, i: at, iter: undefined }];
  }

  /** Run the script (the rest of it, after advance() or a restore); a runtime failure is returned, not thrown. */
  run(): RunResult {
    return this.finish(() => {
      if (this.stopped !== null) throw new StopRun(this.stopped);
      while (this.step(this.stack));
    });
  }

  /**
   * Run the next statement (the statements of a lazy or interrupt block run
   * as one). False when there is none: the script is over, or the run
   * stopped at a failure; run() then returns the result.
   */
  advance(): boolean {
    if (this.stopped !== null) return false;
    try {
      return this.step(this.stack);
    } catch (e) {
      if (!(e instanceof StopRun)) throw e;
      this.stopped = e.failure;
      return false;
    }
  }

  /** Statements run so far (the `statements` of the result). */
  get statementsRun(): number {
    return this.statements;
  }

  /**
   * A snapshot of the whole machine at this statement boundary: physical
   * memory (frames shared copy-on-write), the processor and its TLBs, the
   * backend and hypervisor, the guest kernel, and this run's position and
   * accounts. Restore it (as many times as wanted) to continue from here.
   */
  snapshot(opts: CopierOptions = {}): MachineSnapshot {
    if (this.opts.trace !== undefined) throw new SnapshotError('a traced run cannot be snapshotted (the trace file is not part of the machine)');
    const shared = [this._script, this.cfg, this.opts];
    return new MachineSnapshot(copyMachine(this, shared, opts), shared, opts);
  }

  /** The statements of a lazy or interrupt block, run to their end (no pause inside a kernel path). */
  runBlock(body: Stmt[], iter: number | undefined): void {
    const stack: BlockFrame[] = [{ body, i: 0, iter }];
    while (this.step(stack));
  }

  /** Run until one statement has run (true), or to the end of the frames on `stack` (false). */
  private step(stack: BlockFrame[]): boolean {
    for (;;) {
      const f = stack[stack.length - 1];
      if (f === undefined) return false;
      if (f.i >= f.body.length) {
        if (f.repeat !== undefined && ++f.repeat.n < f.repeat.count) {
          f.i = 0;
          f.iter = f.repeat.n;
          continue;
        }
        stack.pop();
        if (f.measure !== undefined) this.endMeasure(f.measure);
        continue;
      }
      const s = f.body[f.i++]!;
      const iter = f.iter;
      switch (s.op) {
        case 'repeat':
          if (s.count > 0) stack.push({ body: s.body, i: 0, iter: 0, repeat: { count: s.count, n: 0 } });
          continue;
        case 'measure':
          stack.push({
            body: s.body,
            i: 0,
            iter,
            measure: { label: s.label, line: s.line, before: this.counters(), bBefore: this.ops.stats.breakdown, t0: this.ops.stats.cycles },
          });
          continue;
        case 'lazy':
          this.kernel.lazyMmu(() => this.runBlock(s.body, iter));
          continue;
        case 'interrupt':
          // The block runs inside whichever kernel path reaches the point next.
          this.kernel.setHook(s.point as HookPoint, rebindable(this, 'runBlock', s.body, iter));
          this.observe(s, `interrupt armed at ${s.point}`);
          continue;
        default:
          this.stmt(s, iter);
          return true;
      }
    }
  }

  private endMeasure(m: MeasureStart): void {
    const { before, bBefore, t0 } = m;
    const after = this.counters();
    const bDelta = breakdownDelta(this.ops.stats.breakdown, bBefore);
    let acc = this.measures.get(m.label);
    if (!acc) this.measures.set(m.label, (acc = { runs: 0, cycles: 0, perRun: 0, events: {}, breakdown: breakdownDelta(bBefore, bBefore) }));
    acc.runs++;
    acc.cycles += after['cycles']! - before['cycles']!;
    for (const c of COST_COMPONENTS) acc.breakdown[c] += bDelta[c];
    acc.perRun = acc.cycles / acc.runs;
    for (const k of Object.keys(after)) {
      if (k === 'cycles') continue;
      const d = after[k]! - (before[k] ?? 0);
      if (d !== 0 || k in acc.events) acc.events[k] = (acc.events[k] ?? 0) + d;
    }
    const t = this.opts.trace;
    if (t) {
      // The measure block as a span on its own track, with this run's cost by component.
      const pid = t.pid;
      t.pid = MEASURE_TRACK;
      const breakdown: Record<string, number> = {};
      for (const c of COST_COMPONENTS) if (bDelta[c] !== 0) breakdown[c] = bDelta[c];
      t.complete(m.label, 'measure', t0, this.ops.stats.cycles - t0, { label: m.label, run: acc.runs, line: m.line, cycles: this.ops.stats.cycles - t0, breakdown });
      t.pid = pid;
    }
  }

  /**
   * The same run, pausing every ~50 ms of host time to let the event loop
   * breathe (a Ctrl-C handler runs there); when `stop()` turns true the run
   * ends at the next statement with a failure of kind 'interrupted'.
   */
  async runAsync(stop: () => boolean): Promise<RunResult> {
    let failure: RunFailure | null = this.stopped;
    let last = Date.now();
    try {
      while (failure === null && this.step(this.stack)) {
        const now = Date.now();
        if (now - last < 50) continue;
        last = now;
        await new Promise((res) => setImmediate(res));
        if (stop()) {
          const pos = this.current ?? { line: 1, col: 1 };
          failure = {
            kind: 'interrupted',
            line: pos.line,
            col: pos.col,
            message: `${this.script.file}:${pos.line}:${pos.col}: interrupted (Ctrl-C or a signal) after this statement`,
            statement: this.currentText,
          };
          break;
        }
      }
    } catch (e) {
      if (!(e instanceof StopRun)) {
        this.opts.trace?.abandon();
        throw e;
      }
      failure = e.failure;
    }
    return this.finish(() => {
      if (failure) throw new StopRun(failure);
    });
  }

  private current: Pos | undefined;
  private currentText = '';

  private finish(body: () => void): RunResult {
    let failure: RunFailure | null = null;
    try {
      body();
    } catch (e) {
      if (e instanceof StopRun) failure = e.failure;
      else {
        // An internal error: the trace is incomplete; remove it (the caller says so).
        this.opts.trace?.abandon();
        throw e;
      }
    }
    const t = this.opts.trace;
    if (t) {
      if (failure) {
        t.pid = MEASURE_TRACK;
        t.instant(failure.kind === 'interrupted' ? 'run interrupted' : `run stopped: ${failure.kind}`, 'stop', this.ops.stats.cycles, {
          kind: failure.kind,
          message: failure.message,
          statement: failure.statement ?? '',
          line: failure.line,
          ...(failure.refusal ? { refusal: failure.refusal } : {}),
        });
      }
      t.close();
    }
    // The guest's checker (its state is meaningless after a BUG or a refusal
    // stopped a kernel path half-way) and the hypervisor's, which must hold
    // whatever the guest did.
    const invariants = failure?.kind === 'refusal' || failure?.kind === 'bug' ? [] : this.kernel.checkInvariants();
    for (const v of this.handle.checkInvariants()) invariants.push(`${this.handle.kind}: ${v}`);
    return this.result(failure, invariants);
  }

  private fail(pos: Pos, kind: FailureKind, msg: string, refusal?: RefusalDetail): never {
    throw new StopRun({
      kind,
      line: pos.line,
      col: pos.col,
      message: `${this.script.file}:${pos.line}:${pos.col}: ${msg}`,
      statement: this.currentText,
      ...(refusal ? { refusal } : {}),
    });
  }

  /** Work done so far (statements + pages, as check.ts countWork estimates it), for progress. */
  private work = 0;

  /** Every guest-kernel failure a statement can meet becomes a RunFailure naming it. */
  private stmt(s: Stmt, iter: number | undefined): void {
    this.statements++;
    const t0 = this.opts.trace ? this.ops.stats.cycles : 0;
    const subject = this.subjectOf(s, iter);
    this.current = s;
    this.currentText = subject.text;
    try {
      this.exec(s, iter);
      if (this.opts.trace) {
        const t = this.opts.trace;
        const t1 = this.ops.stats.cycles;
        // The slice goes on the track of the process the statement acts on
        // (`exit child` on child's, `kread` on the current process's).
        const pid = t.pid;
        if (subject.process !== null) t.pid = this.pidOf(subject.process);
        t.complete(s.op, 'kernel path', t0, t1 - t0, { line: s.line, statement: subject.text });
        t.pid = pid;
      }
      if (this.opts.checkEachStatement) {
        const v = this.opts.statementCheck !== undefined ? this.opts.statementCheck() : this.kernel.checkInvariants();
        if (v.length) this.fail(s, 'invariant', `invariant broken after '${s.op}': ${v.slice(0, 3).join('; ')}`);
      }
    } catch (e) {
      if (e instanceof StopRun) throw e;
      if (e instanceof HypervisorRefusal) {
        const detail = refusalDetail(e, subject.text, s);
        if (this.opts.trace) {
          this.opts.trace.instant('hypervisor refusal', 'refusal', this.ops.stats.cycles, { ...detail });
        }
        this.fail(s, 'refusal', `${s.op}: hypervisor refused: ${e.message}`, detail);
      }
      if (e instanceof KernelBug) this.fail(s, 'bug', `${s.op}: ${e.message}`);
      if (e instanceof InvariantViolation) this.fail(s, 'invariant', `${s.op}: ${e.message}`);
      throw e;
    }
    this.work += workOf(s);
    this.opts.onProgress?.(this.work, s.line);
  }

  private name(n: NameRef, iter: number | undefined): string {
    return resolveName(n, iter);
  }

  /** The statement as written with its names resolved, and the process it acts on (null: the current one). */
  private subjectOf(s: Stmt, iter: number | undefined): { text: string; process: string | null } {
    const n = (r: NameRef): string => this.name(r, iter);
    switch (s.op) {
      case 'process':
      case 'exec':
      case 'exit':
      case 'switch':
        return { text: `${s.op} ${n(s.name)}`, process: n(s.name) };
      case 'fork':
        return { text: `fork ${n(s.parent)} ${n(s.child)}`, process: n(s.parent) };
      case 'mmap':
        return { text: `mmap ${n(s.name)} ${hex(s.addr)} ${hex(s.len)} ${s.prot}`, process: n(s.name) };
      case 'munmap':
        return { text: `munmap ${n(s.name)} ${hex(s.addr)} ${hex(s.len)}`, process: n(s.name) };
      case 'touch':
        return { text: `touch ${n(s.name)} ${hex(s.addr)} ${hex(s.len)} ${s.access}`, process: n(s.name) };
      case 'write':
        return { text: `write ${n(s.name)} ${hex(s.addr)} ${hex(s.value)}`, process: n(s.name) };
      case 'read':
        return { text: `read ${n(s.name)} ${hex(s.addr)}`, process: n(s.name) };
      case 'vmalloc':
        return { text: `vmalloc ${n(s.area)} ${hex(s.len)}`, process: null };
      case 'vfree':
        return { text: `vfree ${n(s.area)}`, process: null };
      case 'kwrite':
        return { text: `kwrite ${n(s.area)} ${hex(s.offset)} ${hex(s.value)}`, process: null };
      case 'kread':
        return { text: `kread ${n(s.area)} ${hex(s.offset)}`, process: null };
      case 'cpa':
        return { text: `cpa ${hex(s.phys)} ${s.pages} ${s.attr}`, process: null };
      default:
        return { text: s.op, process: null };
    }
  }

  private pidOf(name: string): number {
    let pid = this.pids.get(name);
    if (pid === undefined) this.pids.set(name, (pid = this.pids.size + 1));
    this.opts.trace?.processName(pid, name);
    return pid;
  }

  private ensureCurrent(name: string): void {
    if (this.kernel.currentProcess !== name) this.switchTo(name);
  }

  private switchTo(name: string): void {
    this.kernel.switchTo(name);
    this.tracePid(name);
    if (this.opts.trace) this.opts.trace.instant('context switch', 'sched', this.mmu.cycles, { to: name });
  }

  private tracePid(name: string): void {
    const t = this.opts.trace;
    if (!t) return;
    t.pid = this.pidOf(name);
  }

  private observe(s: Stmt, what: string): void {
    this.observations.push(`${s.line}: ${what}`);
  }

  private exec(s: Stmt, iter: number | undefined): void {
    this.opts.onStatement?.(s);
    const k = this.kernel;
    switch (s.op) {
      case 'process': {
        const n = this.name(s.name, iter);
        const r = k.createProcess(n);
        if (r !== 0) this.fail(s, 'oom', `process ${n}: out of memory (${r})`);
        this.tracePid(n);
        return;
      }
      case 'fork': {
        const p = this.name(s.parent, iter);
        const c = this.name(s.child, iter);
        const r = k.fork(p, c);
        if (r !== 0) this.fail(s, 'oom', `fork ${p} ${c}: out of memory (${r})`);
        return;
      }
      case 'exec': {
        const n = this.name(s.name, iter);
        const r = k.exec(n);
        if (r !== 0) this.fail(s, 'oom', `exec ${n}: out of memory (${r})`);
        this.tracePid(n);
        return;
      }
      case 'exit':
        k.exit(this.name(s.name, iter));
        return;
      case 'switch':
        this.switchTo(this.name(s.name, iter));
        return;
      case 'syscall': {
        const n = this.name(s.name, iter);
        if (this.kernel.currentProcess !== n) this.tracePid(n);
        this.kernel.syscall(n);
        return;
      }
      case 'mmap': {
        const n = this.name(s.name, iter);
        const r = k.mmap(n, s.addr, s.len, s.prot);
        if (r < 0) this.fail(s, r === -12 ? 'oom' : 'expect', `mmap ${n} ${hex(s.addr)}: failed (${r})`);
        return;
      }
      case 'munmap': {
        const n = this.name(s.name, iter);
        const r = k.munmap(n, s.addr, s.len);
        if (r < 0) this.fail(s, r === -12 ? 'oom' : 'expect', `munmap ${n} ${hex(s.addr)}: failed (${r})`);
        return;
      }
      case 'touch': {
        const n = this.name(s.name, iter);
        this.ensureCurrent(n);
        const r = k.touch(n, s.addr, s.len, s.access);
        this.observe(s, `touch ${n} ${hex(s.addr)} ${s.access} -> ${r}`);
        if (r === 'segv') this.fail(s, 'segv', `touch ${n} ${hex(s.addr)}: SIGSEGV`);
        if (r === 'oom') this.fail(s, 'oom', `touch ${n} ${hex(s.addr)}: process killed by the OOM path`);
        return;
      }
      case 'write': {
        const n = this.name(s.name, iter);
        this.ensureCurrent(n);
        const r = k.userWrite32(n, s.addr, s.value);
        this.observe(s, `write ${n} ${hex(s.addr)} -> ${r}`);
        if (r === 'oom') this.fail(s, 'oom', `write ${n} ${hex(s.addr)}: process killed by the OOM path`);
        if (s.expectSegv && r !== 'segv') this.fail(s, 'expect', `write ${n} ${hex(s.addr)}: expected SIGSEGV, the store succeeded`);
        if (!s.expectSegv && r === 'segv') this.fail(s, 'segv', `write ${n} ${hex(s.addr)}: SIGSEGV`);
        return;
      }
      case 'read': {
        const n = this.name(s.name, iter);
        this.ensureCurrent(n);
        const r = k.userRead32(n, s.addr);
        this.observe(s, `read ${n} ${hex(s.addr)} -> ${typeof r === 'number' ? hex(r) : r}`);
        if (r === 'oom') this.fail(s, 'oom', `read ${n} ${hex(s.addr)}: process killed by the OOM path`);
        if (s.expect === 'segv') {
          if (r !== 'segv') this.fail(s, 'expect', `read ${n} ${hex(s.addr)}: expected SIGSEGV, read ${hex(r as number)}`);
        } else if (r === 'segv') {
          this.fail(s, 'segv', `read ${n} ${hex(s.addr)}: SIGSEGV`);
        } else if (s.expect !== null && r !== s.expect.value >>> 0) {
          this.fail(s, 'expect', `read ${n} ${hex(s.addr)}: expected ${hex(s.expect.value)}, read ${hex(r)}`);
        }
        return;
      }
      case 'vmalloc': {
        const a = this.name(s.area, iter);
        const area = k.vmalloc(s.len);
        if (area === null) this.fail(s, 'oom', `vmalloc ${a} ${s.len}: out of memory or vmalloc space`);
        this.areas.set(a, area);
        this.observe(s, `vmalloc ${a} ok`);
        return;
      }
      case 'vfree': {
        const a = this.name(s.area, iter);
        k.vfree(this.areas.get(a)!);
        this.areas.delete(a);
        return;
      }
      case 'kwrite': {
        const a = this.name(s.area, iter);
        k.kernelWrite32(this.areas.get(a)!, s.offset, s.value);
        return;
      }
      case 'kread': {
        const a = this.name(s.area, iter);
        const v = k.kernelRead32(this.areas.get(a)!, s.offset);
        this.observe(s, `kread ${a} ${hex(s.offset)} -> ${hex(v)}`);
        if (s.expect !== null && v !== s.expect >>> 0) {
          this.fail(s, 'expect', `kread ${a} ${hex(s.offset)}: expected ${hex(s.expect)}, read ${hex(v)}`);
        }
        return;
      }
      case 'idle':
        k.switchToIdle();
        if (this.opts.trace) {
          this.opts.trace.pid = 0;
          this.opts.trace.instant('context switch', 'sched', this.mmu.cycles, { to: 'idle' });
        }
        return;
      case 'vmalloc_sync_all':
        k.vmallocSyncAll();
        return;
      case 'cpa': {
        const r = k.changePageAttr(s.phys, s.pages, s.attr);
        this.observe(s, `cpa ${hex(s.phys)} ${s.pages} ${s.attr} -> ${r}`);
        if (r < 0) this.fail(s, r === -12 ? 'oom' : 'expect', `cpa ${hex(s.phys)} ${s.pages} ${s.attr}: failed (${r})`);
        return;
      }
    }
  }

  /** Flat counters for measure deltas. */
  private counters(): Record<string, number> {
    const st = this.ops.stats;
    const m = st.mmu;
    const ks = this.kernel.stats;
    const out: Record<string, number> = {
      cycles: st.cycles,
      tlbMisses: m.tlbMisses,
      walks: m.walks,
      pageFaults: m.pageFaults,
      'faults.user': ks.faultsUser,
      'faults.cow': ks.faultsCow,
      'faults.vmalloc': ks.faultsVmalloc,
      'faults.segv': ks.faultsSegv,
      flushes: m.flushesFull + m.flushesNonGlobal + m.invlpgs,
    };
    for (const [h, n] of Object.entries(st.hypercalls)) out[`hypercalls.${h}`] = n;
    for (const [h, n] of Object.entries(st.traps)) out[`traps.${h}`] = n;
    return out;
  }

  private result(failure: RunFailure | null, invariants: string[]): RunResult {
    const st = this.ops.stats;
    const m = st.mmu;
    const ks = this.kernel.stats;
    const measures: Record<string, MeasureAccount> = {};
    for (const [k, v] of this.measures) measures[k] = { ...v, perRun: Math.round(v.perRun * 100) / 100, breakdown: { ...v.breakdown } };
    return {
      workload: this.script.file,
      config: this.cfg,
      cycles: st.cycles,
      bootCycles: this.bootCycles,
      breakdown: st.breakdown,
      bootBreakdown: this.bootBreakdown,
      tlb: {
        hits: m.tlbHits + m.l2TlbHits,
        misses: m.tlbMisses,
        flushes: m.flushesFull + m.flushesNonGlobal,
        l2Hits: m.l2TlbHits,
        invlpg: m.invlpgs,
      },
      walks: { count: m.walks, cycles: m.walkCycles, byDepth: { '1': m.walksByDepth[1]!, '2': m.walksByDepth[2]! } },
      pageFaults: {
        user: ks.faultsUser,
        cow: ks.faultsCow,
        vmalloc: ks.faultsVmalloc,
        segv: ks.faultsSegv,
        spurious: ks.faultsSpurious,
        oomKills: ks.oomKills,
      },
      // cli.md's boot JSON always names Xen's three hypercalls for native and Xen; VMI and lguest have their own calls.
      hypercalls: this.cfg.backend === 'native' || this.cfg.backend === 'xen' ? { mmu_update: 0, mmuext_op: 0, multicall: 0, ...st.hypercalls } : { ...st.hypercalls },
      refusals: { ...st.refusals },
      traps: { ...st.traps },
      measures,
      guest: {
        pgdsAlive: this.kernel.pgdsAlive,
        framesUsed: this.kernel.framesUsed,
        framesTotal: this.kernel.framesTotal,
        pgdList: this.kernel.pgdListLength,
        statements: this.statements,
      },
      observations: this.observations,
      invariants,
      failure,
    };
  }
}

/** runWorkload, pausing now and then so that `stop()` (a Ctrl-C) can end it at a statement boundary. */
export async function runWorkloadAsync(script: Script, cfg: RunConfig, opts: RunOptions, stop: () => boolean): Promise<RunResult> {
  const it = boot(script, cfg, opts);
  return it instanceof Interpreter ? it.runAsync(stop) : it;
}

function boot(script: Script, cfg: RunConfig, opts: RunOptions): Interpreter | RunResult {
  try {
    return new Interpreter(script, cfg, opts);
  } catch (e) {
    const pos = script.machine.where['backend'] ?? { line: 1, col: 1 };
    if (e instanceof HypervisorRefusal || e instanceof KernelBug) {
      opts.trace?.close();
      const kind: FailureKind = e instanceof HypervisorRefusal ? 'refusal' : 'bug';
      const failure: RunFailure = {
        kind,
        line: pos.line,
        col: pos.col,
        message: `${script.file}:${pos.line}:${pos.col}: boot: ${kind === 'refusal' ? 'hypervisor refused: ' : ''}${e.message}`,
        statement: 'boot',
      };
      if (e instanceof HypervisorRefusal) failure.refusal = refusalDetail(e, 'boot', pos);
      return emptyResult(script, cfg, failure);
    }
    opts.trace?.abandon();
    throw e;
  }
}

/** Boot and run a checked script; boot failures (e.g. Xen refusing the kernel) become a failure at the machine line or line 1. */
export function runWorkload(script: Script, cfg: RunConfig, opts: RunOptions = {}): RunResult {
  const it = boot(script, cfg, opts);
  return it instanceof Interpreter ? it.run() : it;
}

function zeroBreakdown(): CostBreakdown {
  const b = {} as CostBreakdown;
  for (const c of COST_COMPONENTS) b[c] = 0;
  return b;
}

function emptyResult(script: Script, cfg: RunConfig, failure: RunFailure): RunResult {
  return {
    workload: script.file,
    config: cfg,
    cycles: 0,
    bootCycles: 0,
    breakdown: zeroBreakdown(),
    bootBreakdown: zeroBreakdown(),
    tlb: { hits: 0, misses: 0, flushes: 0, l2Hits: 0, invlpg: 0 },
    walks: { count: 0, cycles: 0, byDepth: {} },
    pageFaults: { user: 0, cow: 0, vmalloc: 0, segv: 0, spurious: 0, oomKills: 0 },
    hypercalls: { mmu_update: 0, mmuext_op: 0, multicall: 0 },
    refusals: {},
    traps: {},
    measures: {},
    guest: { pgdsAlive: 0, framesUsed: 0, framesTotal: 0, pgdList: 0, statements: 0 },
    observations: [],
    invariants: [],
    failure,
  };
}
