/**
 * The workload language's syntax tree (docs/workloads.md).
 * Every node keeps its line and column so runtime failures can name them.
 */

export interface Pos {
  line: number;
  col: number;
}

/** A NAME as written; `template` when it ends in `#` (replaced by the loop index). */
export interface NameRef extends Pos {
  text: string;
  template: boolean;
}

export type Prot = 'r' | 'rw' | 'rx' | 'rwx';
export type Attr = 'ro' | 'rw' | 'nx' | 'x';

export type Stmt = Pos &
  (
    | { op: 'process'; name: NameRef }
    | { op: 'fork'; parent: NameRef; child: NameRef }
    | { op: 'exec'; name: NameRef }
    | { op: 'exit'; name: NameRef }
    | { op: 'switch'; name: NameRef }
    | { op: 'mmap'; name: NameRef; addr: number; len: number; prot: Prot }
    | { op: 'munmap'; name: NameRef; addr: number; len: number }
    | { op: 'touch'; name: NameRef; addr: number; len: number; access: 'read' | 'write' }
    | { op: 'write'; name: NameRef; addr: number; value: number; expectSegv: boolean }
    | { op: 'read'; name: NameRef; addr: number; expect: { value: number } | 'segv' | null }
    | { op: 'vmalloc'; area: NameRef; len: number }
    | { op: 'vfree'; area: NameRef }
    | { op: 'kwrite'; area: NameRef; offset: number; value: number }
    | { op: 'kread'; area: NameRef; offset: number; expect: number | null }
    | { op: 'cpa'; phys: number; pages: number; attr: Attr }
    | { op: 'repeat'; count: number; body: Stmt[] }
    | { op: 'measure'; label: string; body: Stmt[] }
    // ---- additions to the spec's core (docs/workloads.md, "Additions") ----
    /** Context switch to the idle task: init_mm, swapper_pg_dir. */
    | { op: 'idle' }
    /** The kernel's vmalloc_sync_all(). */
    | { op: 'vmalloc_sync_all' }
    /** Run the block in lazy MMU mode (arch_enter/leave_lazy_mmu_mode). */
    | { op: 'lazy'; body: Stmt[] }
    /** A null system call (getppid) by a process: int $0x80 in and out (lmbench lat_syscall null). */
    | { op: 'syscall'; name: NameRef }
    /** Arm a one-shot interrupt: the block runs when the kernel reaches POINT. */
    | { op: 'interrupt'; point: string; body: Stmt[] }
  );

/** The `machine` line's keys (all optional; defaults come from the spec). */
export interface MachineLine {
  pae?: boolean;
  split?: '3G' | '2G' | '1G';
  mem?: number;
  cpu?: string;
  backend?: 'native' | 'xen';
  kernel?: 'patched' | 'seed' | 'prepatch';
  /** Where each key was written, for errors that depend on it. */
  where: Partial<Record<string, Pos>>;
}

export interface Script {
  file: string;
  machine: MachineLine;
  body: Stmt[];
}
