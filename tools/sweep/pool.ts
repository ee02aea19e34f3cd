/**
 * The worker pool behind `--jobs N` (inject, fuzz, matrix): a sweep is a
 * list of numbered work items; the pool runs items from..to-1 of a task in
 * N worker threads (node:worker_threads) and returns their results in item
 * order, so the output does not depend on N or on which worker ran what.
 *
 * A task is a module exporting a SweepTask under a name: setup(init) builds
 * what its items need (each worker builds its own, deterministically, from
 * `init`, which is structured-cloned: plain data only), run(ctx, i) runs item
 * i. With jobs 1 the same task runs in this thread (no worker), so --jobs 1
 * and --jobs N run exactly the same code.
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
  /** With jobs 1: an already built context (saves the setup the caller has just done). */
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

/** Run items from..to-1 and return their results in item order. */
export async function runPool<I, C, R>(o: PoolOptions<I, C>): Promise<R[]> {
  const more = o.more ?? (() => true);
  if (o.jobs <= 1 || o.to - o.from <= 1) {
    const task = await loadTask<I, C, R>(o.task);
    const ctx = o.local ?? task.setup(o.init);
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
  const n = Math.min(o.jobs, o.to - o.from);
  const results = new Map<number, R>();
  let next = o.from;
  let started = 0;
  let finished = 0;
  let stopped = false;
  const workers: Worker[] = [];
  return new Promise<R[]>((resolve, reject) => {
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      for (const w of workers) void w.terminate();
      reject(e);
    };
    const finishIfDone = (): void => {
      if (settled || finished < started || !(stopped || next >= o.to)) return;
      settled = true;
      for (const w of workers) void w.terminate();
      const out: R[] = [];
      for (let i = o.from; i < o.from + finished; i++) out.push(results.get(i)!);
      resolve(out);
    };
    const feed = (w: Worker): void => {
      if (settled) return;
      if (stopped || next >= o.to || !more()) {
        stopped = true;
        finishIfDone();
        return;
      }
      started++;
      w.postMessage({ type: 'run', index: next++ });
    };
    for (let j = 0; j < n; j++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { task: o.task, init: o.init } });
      workers.push(w);
      w.on('message', (m: { type: 'ready' } | { type: 'result'; index: number; result: R } | { type: 'error'; error: WireError }) => {
        if (m.type === 'ready') feed(w);
        else if (m.type === 'result') {
          results.set(m.index, m.result);
          finished++;
          o.onDone?.(finished);
          feed(w);
        } else fail(fromWire(m.error));
      });
      w.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => {
        if (!settled) fail(new Error(`sweep pool: a worker exited (code ${code}) before the sweep finished`));
      });
    }
  });
}
