/**
 * A deep copier for object graphs, the engine of machine snapshots (issue 12):
 * copies class instances (same prototype, own properties), arrays, Maps,
 * Sets, typed arrays (views sharing an ArrayBuffer still share the copied
 * buffer), Dates and boxed primitives, keeping shared references and cycles
 * as they are (a memo maps every original to its copy). Primitives (bigint
 * included) are values and need nothing.
 *
 * Functions are the hard part: a closure that captured `this` would, copied
 * by reference, keep acting on the old graph. So the copier refuses a
 * function it meets anywhere (an own property, an array element, a Map
 * value) unless it was made by `rebindable` (a method call on an object of
 * the graph with arguments from it: the copy calls the copied object's
 * method) or `partial` (a module-level function applied to objects of the
 * graph), or declared shared (`share`: an option callback owned outside the
 * machine).
 *
 * An object can copy itself: a method under the `SNAPSHOT_COPY` symbol is
 * called instead of the generic copy (PhysMem shares its frames
 * copy-on-write that way).
 */

/** Method key an object implements to copy itself: `[SNAPSHOT_COPY](c: GraphCopier): this`. */
export const SNAPSHOT_COPY: unique symbol = Symbol('snapshot copy');

export interface SelfCopying {
  [SNAPSHOT_COPY](c: GraphCopier): unknown;
}

/**
 * What a rebindable function is (kept on the function under this key, a
 * registered symbol, so layers that may not import this file, the guest
 * kernel, can make such functions too): `fn.apply(thisArg, [...args, ...callArgs])`.
 */
export const REBIND: unique symbol = Symbol.for('pvmmu.snapshot.rebind') as never;

/** An object marked (own property, registered symbol) as never changing: copies share it. */
export const IMMUTABLE: unique symbol = Symbol.for('pvmmu.snapshot.immutable') as never;

interface Recipe {
  fn: Function;
  thisArg: unknown;
  args: unknown[];
}

function bindRecipe(r: Recipe): Function {
  const { fn, thisArg, args } = r;
  const f =
    args.length === 0
      ? (...a: unknown[]): unknown => fn.apply(thisArg, a)
      : (...a: unknown[]): unknown => fn.apply(thisArg, [...args, ...a]);
  (f as unknown as Record<symbol, Recipe>)[REBIND] = r;
  return f;
}

/**
 * `(...a) => self[method](...bound, ...a)`, as a function the copier can
 * follow: in a copy it becomes the same call on the copies of `self` and
 * `bound`. For callbacks an object of the machine hands to another (the
 * processor's flush report, a frame table's flush clock, an armed interrupt).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function rebindable<F extends (...a: any[]) => any = (...a: any[]) => any>(self: object, method: string, ...bound: unknown[]): F {
  const m = (self as Record<string, unknown>)[method];
  if (typeof m !== 'function') throw new TypeError(`rebindable: ${self.constructor.name} has no method ${method}`);
  return bindRecipe({ fn: m, thisArg: self, args: bound }) as F;
}

/**
 * `(...a) => fn(...bound, ...a)` for a module-level `fn` (which must capture
 * nothing that changes), as a function the copier can follow.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function partial<A extends unknown[], B extends unknown[], R>(fn: (...a: [...A, ...B]) => R, ...bound: A): (...b: B) => R {
  return bindRecipe({ fn, thisArg: undefined, args: bound }) as (...b: B) => R;
}

/** Thrown when a graph holds something the copier cannot copy faithfully (names the path). */
export class SnapshotError extends Error {}

interface Job {
  src: object;
  dst: object;
  /** Where the object was met, for error messages: the job of the object holding it and the key. */
  parent: Job | null;
  key: Key;
}

/** A property name, an array index, or a description (`<key>`, `.get(…)`) as is. */
type Key = string | number;

function keyText(k: Key): string {
  if (typeof k === 'number') return `[${k}]`;
  return /^[<.$]/.test(k) ? k : `.${k}`;
}

function pathOf(parent: Job | null, key: Key): string {
  const parts: string[] = [keyText(key)];
  for (let j = parent; j !== null; j = j.parent) parts.push(keyText(j.key));
  return parts.reverse().join('');
}

function isRef(v: unknown): boolean {
  return v !== null && (typeof v === 'object' || typeof v === 'function');
}

export interface CopierOptions {
  /**
   * Check every object's own properties for accessors and non-enumerable or
   * symbol keys, which the fast path (enumerable keys, assignment) would
   * copy wrongly or drop; slower (tests run snapshots this way).
   */
  strict?: boolean;
  /** ArrayBuffers to fill instead of allocating new ones (those of a copy nobody uses any more). */
  reuse?: BufferPool;
}

/**
 * ArrayBuffers a copy may fill instead of allocating, by byte length: the
 * buffers an earlier copy made (GraphCopier.buffersMade), once nothing uses
 * that copy any more. A machine's copy is a few megabytes of typed arrays
 * (frame tables, struct page arrays); allocating them anew for every copy
 * costs more than copying into them (fresh pages from the system, and the
 * collections that external memory brings on). A reused buffer is
 * overwritten whole, so the copy is the same as with a new one.
 */
export class BufferPool {
  private readonly bySize = new Map<number, ArrayBuffer[]>();

  constructor(buffers: Iterable<ArrayBuffer>) {
    for (const b of buffers) {
      const l = this.bySize.get(b.byteLength);
      if (l === undefined) this.bySize.set(b.byteLength, [b]);
      else l.push(b);
    }
  }

  /** A buffer of exactly `byteLength` bytes (its contents arbitrary), or undefined; each is given out once. */
  take(byteLength: number): ArrayBuffer | undefined {
    return this.bySize.get(byteLength)?.pop();
  }
}

/** Per prototype: the names of accessors on its chain (an assignment there would run a setter). */
const protoAccessors = new WeakMap<object, Set<string>>();

function accessorsOf(proto: object | null): Set<string> {
  if (proto === null) return new Set();
  let s = protoAccessors.get(proto);
  if (s !== undefined) return s;
  s = new Set();
  for (let p: object | null = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) if (d.get !== undefined || d.set !== undefined) s.add(k);
  }
  protoAccessors.set(proto, s);
  return s;
}

export class GraphCopier {
  private readonly memo = new Map<unknown, unknown>();
  /** Copies made but not filled yet (the copier works through a stack, not recursion: graphs hold long chains). */
  private readonly jobs: Job[] = [];
  private readonly strict: boolean;
  private readonly reuse: BufferPool | undefined;
  /** The ArrayBuffers of the copies made (new or reused). */
  private readonly made: ArrayBuffer[] = [];

  constructor(opts: CopierOptions = {}) {
    this.strict = opts.strict ?? false;
    this.reuse = opts.reuse;
  }

  /**
   * The ArrayBuffers this copier made for its copies: nothing outside the
   * copy holds them, so once the copy is dropped they can fill another
   * (BufferPool).
   */
  get buffersMade(): readonly ArrayBuffer[] {
    return this.made;
  }

  /** Keep `x` (and everything under it) as is in copies: shared, not copied. */
  share(...xs: unknown[]): this {
    for (const x of xs) if (x !== null && (typeof x === 'object' || typeof x === 'function')) this.memo.set(x, x);
    return this;
  }

  /** Make `copy` stand for `original` in every copy (an object the caller rebuilt itself). */
  preset<T>(original: T, copy: T): this {
    this.memo.set(original, copy);
    return this;
  }

  /** The copy of `x` (the same copy each time it is met), complete. */
  copy<T>(x: T, path = '$'): T {
    const c = this.ref(x, null, path);
    this.drain();
    return c;
  }

  /** The generic copy of `x`, ignoring its own SNAPSHOT_COPY (for that method to use), complete. */
  copyGeneric<T>(x: T, path = '$'): T {
    const c = this.shell(x as unknown as object, null, path);
    this.drain();
    return c as T;
  }

  private drain(): void {
    const jobs = this.jobs;
    while (jobs.length > 0) this.fill(jobs.pop()!);
  }

  /** The copy of `x`, possibly not filled yet. */
  private ref<T>(x: T, parent: Job | null, key: Key): T {
    if (x === null || (typeof x !== 'object' && typeof x !== 'function')) return x;
    const seen = this.memo.get(x);
    if (seen !== undefined) return seen as T;
    if (typeof x === 'function') return this.copyFunction(x, parent, key) as T;
    const o = x as unknown as object;
    if (typeof (o as Partial<SelfCopying>)[SNAPSHOT_COPY] === 'function') {
      const c = (o as SelfCopying)[SNAPSHOT_COPY](this);
      this.memo.set(x, c);
      return c as T;
    }
    if (Object.prototype.hasOwnProperty.call(o, IMMUTABLE)) {
      this.memo.set(x, x);
      return x;
    }
    return this.shell(o, parent, key) as T;
  }

  /** An empty copy of `o` of the same kind, in the memo, with a job to fill it. */
  private shell(o: object, parent: Job | null, key: Key): unknown {
    if (ArrayBuffer.isView(o)) return this.copyView(o, parent, key);
    if (o instanceof ArrayBuffer) {
      const r = this.reuse?.take(o.byteLength);
      let c: ArrayBuffer;
      if (r !== undefined) {
        new Uint8Array(r).set(new Uint8Array(o));
        c = r;
      } else c = o.slice(0);
      this.made.push(c);
      this.memo.set(o, c);
      return c;
    }
    let c: object;
    if (Array.isArray(o)) c = new Array(o.length);
    else if (o instanceof Map) c = new Map();
    else if (o instanceof Set) c = new Set();
    else if (o instanceof Date) c = new Date(o.getTime());
    else if (o instanceof Promise || o instanceof WeakMap || o instanceof WeakSet || o instanceof WeakRef) {
      throw new SnapshotError(`${pathOf(parent, key)}: a ${o.constructor.name} cannot be copied`);
    } else {
      const proto = Object.getPrototypeOf(o) as object | null;
      if (proto !== null && proto !== Object.prototype && isGenerator(o)) {
        throw new SnapshotError(`${pathOf(parent, key)}: a generator cannot be copied (its position is not data)`);
      }
      c = fastShell(o, proto);
    }
    this.memo.set(o, c);
    this.jobs.push({ src: o, dst: c, parent, key });
    return c;
  }

  private fill(j: Job): void {
    const { src: o, dst: c } = j;
    if (Array.isArray(o)) {
      const a = c as unknown[];
      if (this.strict) this.checkOwn(o, j, true);
      // A sparse array stays sparse (the frame directory's leaves are).
      const n = o.length;
      for (let i = 0; i < n; i++) {
        const v = o[i];
        if (isRef(v)) a[i] = this.ref(v, j, i);
        else if (v !== undefined || i in o) a[i] = v;
      }
      return;
    }
    if (o instanceof Map) {
      if (this.strict) this.checkOwn(o, j, false);
      const m = c as Map<unknown, unknown>;
      for (const [k, v] of o) m.set(isRef(k) ? this.ref(k, j, '<key>') : k, isRef(v) ? this.ref(v, j, isRef(k) ? '.get(…)' : `.get(${String(k)})`) : v);
      return;
    }
    if (o instanceof Set) {
      if (this.strict) this.checkOwn(o, j, false);
      const s = c as Set<unknown>;
      for (const v of o) s.add(this.ref(v, j, '<member>'));
      return;
    }
    if (o instanceof Date) return;
    if (this.strict) this.checkOwn(o, j, true);
    const acc = accessorsOf(Object.getPrototypeOf(o) as object | null);
    const src = o as Record<string, unknown>;
    const dst = c as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = src[k];
      const v = isRef(x) ? this.ref(x, j, k) : x;
      if (acc.has(k)) Object.defineProperty(dst, k, { value: v, writable: true, enumerable: true, configurable: true });
      else dst[k] = v;
    }
    if (!Object.isExtensible(o)) {
      if (Object.isFrozen(o)) Object.freeze(c);
      else if (Object.isSealed(o)) Object.seal(c);
      else Object.preventExtensions(c);
    }
  }

  /** Strict mode: every own property is an enumerable, writable-or-not data property with a string key (array: an index, or length). */
  private checkOwn(o: object, j: Job, indexed: boolean): void {
    if (Array.isArray(o)) {
      // Indices (any number of them) and length, nothing else.
      const names = Object.getOwnPropertyNames(o);
      let indices = 0;
      for (let i = 0; i < o.length; i++) if (i in o) indices++;
      if (names.length === indices + 1 && Object.getOwnPropertySymbols(o).length === 0) return;
    }
    for (const key of Reflect.ownKeys(o)) {
      if (Array.isArray(o) && (key === 'length' || (typeof key === 'string' && String(Number(key)) === key))) continue;
      const where = (): string => pathOf(j.parent, j.key) + `.${String(key)}`;
      if (!indexed || Array.isArray(o)) throw new SnapshotError(`${where()}: a named property on an array, Map or Set`);
      const d = Object.getOwnPropertyDescriptor(o, key)!;
      if (d.get !== undefined || d.set !== undefined) throw new SnapshotError(`${where()}: an own accessor property cannot be copied`);
      if (typeof key === 'symbol' || !d.enumerable) throw new SnapshotError(`${where()}: a symbol-keyed or non-enumerable property would be lost`);
    }
  }

  private copyView(v: ArrayBufferView, parent: Job | null, key: Key): ArrayBufferView {
    const buf = this.ref(v.buffer, parent, `${keyText(key)}.buffer`) as ArrayBuffer;
    let c: ArrayBufferView;
    if (v instanceof DataView) c = new DataView(buf, v.byteOffset, v.byteLength);
    else {
      const Ctor = v.constructor as new (b: ArrayBuffer, off: number, len: number) => ArrayBufferView;
      c = new Ctor(buf, v.byteOffset, (v as unknown as { length: number }).length);
    }
    this.memo.set(v, c);
    return c;
  }

  private copyFunction(fn: Function, parent: Job | null, key: Key): Function {
    const r = (fn as unknown as Record<symbol, Recipe | undefined>)[REBIND];
    if (r === undefined) {
      throw new SnapshotError(
        `${pathOf(parent, key)}: a function (${fn.name || 'anonymous'}) is part of the machine; a closure cannot be copied (make it rebindable() or partial(), or share() it)`,
      );
    }
    const thisArg = this.ref(r.thisArg, parent, `${keyText(key)}<this>`);
    const args = r.args.map((a, i) => this.ref(a, parent, `${keyText(key)}<arg ${i}>`));
    const c = bindRecipe({ fn: r.fn, thisArg, args });
    this.memo.set(fn, c);
    return c;
  }
}

const GeneratorProto = Object.getPrototypeOf(function* () {}).prototype as object;

function isGenerator(o: object): boolean {
  return Object.prototype.isPrototypeOf.call(GeneratorProto, o);
}

/**
 * The empty copy of object `o` (prototype `proto`), filled later by fill().
 * Made as an object literal spread from `o` and then given its prototype,
 * not by Object.create(proto) and a store per field: V8 turns an object
 * that receives more than a dozen or so fields by computed-key stores into
 * a dictionary-mode ("slow") object, and a restored machine's processor,
 * TLBs, kernel state and page allocator (20–35 fields each) then ran every
 * field load as a hash lookup: an injected run from a checkpoint took
 * about twice as long as the same statements on the booted machine. A
 * spread copy has fast properties in `o`'s order, and copies of objects of
 * one class share one hidden class. The values it holds until fill()
 * replaces them are `o`'s own: fill() writes every one of them. An object
 * with symbol-keyed own properties (which fill() does not copy) is made
 * the old way.
 */
function fastShell(o: object, proto: object | null): object {
  if (Object.getOwnPropertySymbols(o).length > 0) return Object.create(proto) as object;
  const c = { ...o };
  if (proto !== Object.prototype) Object.setPrototypeOf(c, proto);
  return c;
}
