/**
 * The task list (kernel/pid.c's pid allocation, the scheduler's `current`,
 * the tasks the workload names): who exists, who runs, and the event sink
 * tools attach for traces. Linux keeps these as globals (init_task's list,
 * per-CPU `current`); here one object the task paths (fork.ts, exec.ts,
 * exit.ts, sched.ts) and the fault path (traps.ts) share.
 */
import type { Task } from '../kstate.js';

/** What the kernel reports to an attached event sink (traces): cheap when none is attached. */
export type KernelEvent =
  | {
      type: 'fault';
      /** How do_page_fault resolved it. */
      kind: 'user' | 'cow' | 'vmalloc' | 'spurious' | 'segv' | 'oom';
      va: number;
      errorCode: number;
      user: boolean;
      /** The faulting process, 0 for a kernel access on init_mm. */
      pid: number;
    }
  | { type: 'switch'; fromPid: number; toPid: number }
  | { type: 'process'; op: 'create' | 'fork' | 'exec' | 'exit'; name: string; pid: number };

export type KernelEventSink = (e: KernelEvent) => void;

export class TaskList {
  private readonly byName = new Map<string, Task>();
  /** The running task (`current`), null when the idle task runs on init_mm. */
  current: Task | null = null;
  private nextPid = 1;
  sink: KernelEventSink | null = null;

  /** alloc_pid: 1, 2, ... in creation order (0 is the idle task). */
  allocPid(): number {
    return this.nextPid++;
  }

  add(t: Task): void {
    this.byName.set(t.name, t);
  }

  remove(t: Task): void {
    this.byName.delete(t.name);
  }

  get(name: string): Task {
    const t = this.byName.get(name);
    if (t === undefined) throw new RangeError(`no process named ${name}`);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  checkNewName(name: string): void {
    if (this.byName.has(name)) throw new RangeError(`a process named ${name} already exists`);
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  get all(): Task[] {
    return [...this.byName.values()];
  }

  /** The pid whose mm is loaded (0 when idle). */
  get currentPid(): number {
    return this.current === null ? 0 : this.current.pid;
  }

  emit(e: KernelEvent): void {
    if (this.sink !== null) this.sink(e);
  }
}
