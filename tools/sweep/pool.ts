/**
 * The worker pool behind `--jobs N` (inject, fuzz, matrix): a sweep is a
 * list of numbered work items; the pool runs items from..to-1 of a task in
 * N threads (this one and N-1 node:worker_threads) and returns their results
 * in item order, so the output does not depend on N or on which thread ran
 * what.
 *
 * A task is a module exporting a SweepTask under a name: setup(init) builds
 * what its items need (each worker builds its own, deterministically, from
 * `init`, which is structured-cloned: plain data only), run(ctx, i) runs item
 * i. With jobs 1 the same task runs in this thread only, so --jobs 1 and
 * --jobs N run exactly the same code.
 *
 * An exception in an item stops the sweep and is rethrown here as it was
 * thrown (an InputError stays an InputError: one line, exit 2; anything else
 * keeps the worker's message and stack), after every worker is terminated:
 * no hang, no orphan thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InputError } from '../input-error.js';

export interface SweepTask<I, C, R> {
  setup(init: I): C;
  run(ctx: C, index: number): R;
}

/** Where a task lives: its module's URL (import.meta.url) and export name. */
export interface TaskRef {
  module: string;
  name: string;
}

export interface PoolOptions<I, C> {
  task: TaskRef;
  init: I;
  /** Items from..to-1 (to may be Infinity with `more`). */
  from: number;
  to: number;
  jobs: number;
  /** Asked before each item is started: false starts no more (time budgets). Items started always finish. */
  more?: () => boolean;
  /** Called after each finished item, with the number finished so far. */
  onDone?: (done: number) => void;
  /** An already built context for this thread's items (saves the setup the caller has just done). */
  local?: C;
}

/** The default of --jobs: the number of cores this process may use. */
export function defaultJobs(): number {
  return availableParallelism();
}

/** --jobs N: a positive integer (at most 1024), else an InputError naming the flag. */
export function parseJobs(flag: string, v: string | undefined): number {
  if (v === undefined) return defaultJobs();
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 1024) throw new InputError(`${flag}: expected a number of worker threads 1..1024, got '${v}'`);
  return Number(v);
}

interface WireError {
  name: string;
  message: string;
  stack?: string;
}

export function toWire(e: unknown): WireError {
  if (e instanceof Error) return { name: e instanceof InputError ? 'InputError' : e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

export function fromWire(w: WireError): Error {
  if (w.name === 'InputError') return new InputError(w.message);
  const e = w.name === 'RangeError' ? new RangeError(w.message) : w.name === 'TypeError' ? new TypeError(w.message) : new Error(w.message);
  if (e.name !== w.name) e.name = w.name;
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}

/** Load a task by reference (in this thread or a worker). */
export async function loadTask<I, C, R>(ref: TaskRef): Promise<SweepTask<I, C, R>> {
  const m = (await import(ref.module)) as Record<string, unknown>;
  const t = m[ref.name] as SweepTask<I, C, R> | undefined;
  if (!t || typeof t.setup !== 'function' || typeof t.run !== 'function') throw new Error(`sweep pool: ${ref.module} has no task '${ref.name}'`);
  return t;
}

/** Items a worker is given ahead (one running, the next waiting). */
const WORKER_QUEUE = 2;

type WorkerMessage<R> = { type: 'ready' } | { type: 'result'; index: number; result: R } | { type: 'error'; error: WireError };

/** What a started pool is told when it runs: the items, and how. */
export type PoolRun<C> = Omit<PoolOptions<unknown, C>, 'task' | 'init' | 'jobs'>;

/**
 * A pool whose N-1 worker threads start building their contexts at once
 * (startPool), before the caller builds its own (for inject: the clean runs
 * and checkpoints), so the two are built side by side; `run` then gives out
 * the items. Every started pool must be run or closed (its threads keep the
 * process alive).
 */
export class SweepPool<I, C, R> {
  private readonly workers: Worker[] = [];
  private readonly ready = new Set<Worker>();
  /** A worker's failure before `run` (reported by `run`). */
  private early: Error | null = null;
  private onMessage: ((w: Worker, m: WorkerMessage<R>) => void) | null = null;
  private onFail: ((e: Error) => void) | null = null;
  private closed = false;

  constructor(
    private readonly task: TaskRef,
    private readonly init: I,
    readonly jobs: number,
  ) {
    for (let j = 0; j < jobs - 1; j++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { task, init } });
      this.workers.push(w);
      w.on('message', (m: WorkerMessage<R>) => {
        if (this.onMessage !== null) this.onMessage(w, m);
        else if (m.type === 'ready') this.ready.add(w);
        else if (m.type === 'error') this.fail(fromWire(m.error));
      });
      w.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`sweep pool: a worker exited (code ${code}) before the sweep finished`));
      });
    }
  }

  private fail(e: Error): void {
    if (this.onFail !== null) this.onFail(e);
    else this.early ??= e;
  }

  /** Stop every worker (after a run, or instead of one). */
  close(): void {
    this.closed = true;
    for (const w of this.workers) void w.terminate();
  }

  /** Run items from..to-1 in this thread and the workers; their results in item order. The pool is closed after. */
  async run(o: PoolRun<C>): Promise<R[]> {
    const more = o.more ?? (() => true);
    const task = await loadTask<I, C, R>(this.task);
    if (this.workers.length === 0 || o.to - o.from <= 1) {
      this.close();
      if (this.early !== null) throw this.early;
      const ctx = o.local ?? task.setup(this.init);
      const out: R[] = [];
      for (let i = o.from; i < o.to && more(); i++) {
        out.push(task.run(ctx, i));
        o.onDone?.(out.length);
        // Let signal handlers run between items (an interrupted sweep stops
        // at the next item, as it does with workers).
        if (i + 1 < o.to) await new Promise<void>((r) => setImmediate(r));
      }
      return out;
    }
    // This thread is one of the n: it runs items itself (with the context the
    // caller built, or one it builds while the workers start) between handling
    // the workers' messages, so --jobs N keeps N threads busy. Each worker
    // holds up to WORKER_QUEUE items, so it never waits for this thread to
    // finish an item before it gets its next.
    const results = new Map<number, R>();
    let next = o.from;
    let started = 0;
    let finished = 0;
    let stopped = false;
    const queued = new Map<Worker, number>();
    return new Promise<R[]>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        this.close();
        reject(e);
      };
      const finishIfDone = (): void => {
        if (settled || finished < started || !(stopped || next >= o.to)) return;
        settled = true;
        this.close();
        const out: R[] = [];
        for (let i = o.from; i < o.from + finished; i++) out.push(results.get(i)!);
        resolve(out);
      };
      /** The next item to start, or -1 (and the sweep is stopping). */
      const take = (): number => {
        if (settled) return -1;
        if (stopped || next >= o.to || !more()) {
          stopped = true;
          return -1;
        }
        started++;
        return next++;
      };
      const done = (index: number, result: R): void => {
        results.set(index, result);
        finished++;
        o.onDone?.(finished);
      };
      const feed = (w: Worker): void => {
        while ((queued.get(w) ?? 0) < WORKER_QUEUE) {
          const i = take();
          if (i < 0) break;
          queued.set(w, (queued.get(w) ?? 0) + 1);
          w.postMessage({ type: 'run', index: i });
        }
        finishIfDone();
      };
      if (this.early !== null) {
        fail(this.early);
        return;
      }
      this.onFail = fail;
      this.onMessage = (w, m) => {
        if (m.type === 'ready') feed(w);
        else if (m.type === 'result') {
          queued.set(w, (queued.get(w) ?? 1) - 1);
          done(m.index, m.result);
          feed(w);
        } else fail(fromWire(m.error));
      };
      for (const w of this.ready) feed(w);
      // This thread's share: an item, then a turn of the event loop (worker
      // messages, signal handlers), until no item is left to start.
      const runHere = async (): Promise<void> => {
        await new Promise<void>((r) => setImmediate(r));
        const ctx = o.local ?? task.setup(this.init);
        for (;;) {
          const i = take();
          if (i < 0) break;
          done(i, task.run(ctx, i));
          await new Promise<void>((r) => setImmediate(r));
        }
        finishIfDone();
      };
      runHere().catch((e: unknown) => fail(e instanceof Error ? e : new Error(String(e))));
    });
  }
}

/** Start a pool of `jobs` threads for `task` (its N-1 workers begin their setup now); run it or close it. */
export function startPool<I, C, R>(task: TaskRef, init: I, jobs: number): SweepPool<I, C, R> {
  return new SweepPool<I, C, R>(task, init, jobs);
}

/** Run items from..to-1 and return their results in item order. */
export async function runPool<I, C, R>(o: PoolOptions<I, C>): Promise<R[]> {
  const { task, init, jobs, ...run } = o;
  // Workers are started only when there is more than one item to share.
  return startPool<I, C, R>(task, init, o.to - o.from <= 1 ? 1 : jobs).run(run);
}
