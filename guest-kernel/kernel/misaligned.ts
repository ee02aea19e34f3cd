/**
 * 32-bit loads and stores at any address, as an i386 processor performs
 * them (Intel SDM Vol. 1, 4.1.1: words and doublewords need not be aligned;
 * alignment checking is off, CR0.AM/EFLAGS.AC clear, as under Linux).
 *
 * An access inside one page is one translation. An access that crosses a
 * page boundary is translated for each page it touches, in address order,
 * and either translation can fault; the #PF (CR2 = the first byte of the
 * page that faulted) is taken and handled before any byte is stored, and the
 * instruction is restarted, so a store split across a present and an
 * unmapped page writes nothing and delivers SIGSEGV. Guest memory is
 * word-addressed, so bytes are assembled from and merged into the aligned
 * words that hold them.
 */
import { ACCESS_READ, ACCESS_WRITE } from '../../emulator/paging-bits.js';
import type { GuestMemory } from '../../hypervisor/paravirt-ops.js';
import type { GuestPhys } from '../../hypervisor/types.js';
import type { KState, Task } from '../kstate.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import type { TaskList } from './tasks.js';
import { kernel_access, user_access } from './traps.js';

const PAGE = 4096;

/** The guest-physical address of each of the 4 bytes at va (1 or 2 translations), or the fault outcome. */
type Translate = (va: number) => number | 'segv' | 'oom';

function translate4(va: number, tr: Translate): number[] | 'segv' | 'oom' {
  const first = PAGE - (va % PAGE);
  const a = tr(va);
  if (typeof a !== 'number') return a;
  if (first >= 4) return [a, a + 1, a + 2, a + 3];
  // Page-straddling: translate the second page too (it may fault) before any byte moves.
  const b = tr(va + first);
  if (typeof b !== 'number') return b;
  // Handling the second page's fault may not have kept the first translation: take it again (a TLB hit).
  const a2 = tr(va);
  if (typeof a2 !== 'number') return a2;
  const out: number[] = [];
  for (let i = 0; i < 4; i++) out.push(i < first ? a2 + i : b + (i - first));
  return out;
}

function load(mem: GuestMemory, gpas: number[]): number {
  if (gpas[0]! % 4 === 0 && gpas[3] === gpas[0]! + 3) return mem.read32(gpas[0] as GuestPhys) >>> 0;
  let v = 0;
  for (let i = 3; i >= 0; i--) {
    const g = gpas[i]!;
    const byte = (mem.read32((g - (g % 4)) as GuestPhys) >>> (8 * (g % 4))) & 0xff;
    v = v * 256 + byte;
  }
  return v >>> 0;
}

function store(mem: GuestMemory, gpas: number[], value: number): void {
  if (gpas[0]! % 4 === 0 && gpas[3] === gpas[0]! + 3) {
    mem.write32(gpas[0] as GuestPhys, value >>> 0);
    return;
  }
  // Merge the bytes into each aligned word they fall in (in ascending order, one store per word).
  const words = new Map<number, number>();
  for (let i = 0; i < 4; i++) {
    const g = gpas[i]!;
    const w = g - (g % 4);
    const old = words.has(w) ? words.get(w)! : mem.read32(w as GuestPhys) >>> 0;
    const shift = 8 * (g % 4);
    const byte = (value >>> (8 * i)) & 0xff;
    words.set(w, ((old & ~(0xff << shift)) | (byte << shift)) >>> 0);
  }
  for (const [w, v] of [...words].sort((x, y) => x[0] - y[0])) mem.write32(w as GuestPhys, v);
}

/** A 32-bit user load at any address: the value, 'segv' or 'oom'. */
export function user_load32(k: KState, impl: PgtableImpl, tasks: TaskList, t: Task, va: number): number | 'segv' | 'oom' {
  const g = translate4(va, (x) => user_access(k, impl, tasks, t, x, ACCESS_READ, 1));
  return typeof g === 'string' ? g : load(k.ops.mem, g);
}

/** A 32-bit user store at any address: 'ok', or 'segv'/'oom' with nothing stored. */
export function user_store32(k: KState, impl: PgtableImpl, tasks: TaskList, t: Task, va: number, value: number): 'ok' | 'segv' | 'oom' {
  const g = translate4(va, (x) => user_access(k, impl, tasks, t, x, ACCESS_WRITE, 1));
  if (typeof g === 'string') return g;
  store(k.ops.mem, g, value);
  return 'ok';
}

/** A 32-bit kernel load at any address in the current context (a fault that cannot be fixed is a BUG). */
export function kernel_load32(k: KState, tasks: TaskList, va: number): number {
  const g = translate4(va, (x) => kernel_access(k, tasks, x, ACCESS_READ)) as number[];
  return load(k.ops.mem, g);
}

export function kernel_store32(k: KState, tasks: TaskList, va: number, value: number): void {
  const g = translate4(va, (x) => kernel_access(k, tasks, x, ACCESS_WRITE)) as number[];
  store(k.ops.mem, g, value);
}
