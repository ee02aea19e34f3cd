/**
 * The guest kernel's side of machine snapshots (emulator/snapshot.ts copies
 * the whole machine, the kernel's state included). The guest kernel does
 * not import the emulator, so it marks what the copier must treat
 * specially with the copier's registered symbols:
 *  - `partial(fn, k)` is `(...a) => fn(k, ...a)` for a module-level `fn`
 *    (a slab cache's constructor and destructor, the page allocator's
 *    clear_page): a copy calls fn on the copied kernel state;
 *  - `immutable(o)` freezes a table of functions (the pgtable variants) that
 *    a copy shares rather than copies.
 */
const REBIND = Symbol.for('pvmmu.snapshot.rebind');
const IMMUTABLE = Symbol.for('pvmmu.snapshot.immutable');

export function partial<A extends unknown[], B extends unknown[], R>(fn: (...a: [...A, ...B]) => R, ...bound: A): (...b: B) => R {
  const r = { fn, thisArg: undefined, args: bound };
  const f = (...a: B): R => fn(...bound, ...a);
  (f as unknown as Record<symbol, unknown>)[REBIND] = r;
  return f;
}

export function immutable<T extends object>(o: T): T {
  Object.defineProperty(o, IMMUTABLE, { value: true });
  return Object.freeze(o);
}
