/**
 * The `x86-mmu-vectors/1` input format and `x86-mmu-results/1` output format
 * (docs/vectors.md), with a validator that refuses a malformed
 * file as a whole, naming the case and the field, before anything runs.
 */
import { InputError } from '../input-error.js';

export const VECTORS_FORMAT = 'x86-mmu-vectors/1';
export const RESULTS_FORMAT = 'x86-mmu-results/1';

export interface MemoryRegion {
  pa: number;
  width: 32 | 64;
  words: bigint[];
}

export type Step =
  | { op: 'cr0' | 'cr3' | 'cr4'; value: number }
  | { op: 'access'; va: number; kind: 0 | 1 | 2; user: boolean }
  | { op: 'poke'; pa: number; width: 32 | 64; value: bigint }
  | { op: 'invlpg'; va: number };

export interface VectorCase {
  name: string;
  cpu: { cr0: number; cr4: number; efer: number };
  memory: MemoryRegion[];
  steps: Step[];
}

export type StepResult =
  | { ok: true }
  | { pa: string }
  | { fault: 'PF'; errorCode: number; cr2: string }
  | { fault: 'GP' };

export interface CaseResult {
  name: string;
  steps: StepResult[];
  memory: ({ pa: string; u64: string[] } | { pa: string; u32: string[] })[];
  cycles?: number;
}

export interface ResultsFile {
  format: typeof RESULTS_FORMAT;
  cases: CaseResult[];
}

/** Limits that keep a hostile file bounded in time and memory. */
/** A vector or results file is read up to this size (the random suite is 7.5 MB). */
export const MAX_VECTOR_FILE_BYTES = 64 << 20;
export const MAX_CASES = 1_000_000;
export const MAX_STEPS = 100_000;
export const MAX_WORDS = 1 << 20;
/** Distinct pages one case may write (memory regions and pokes): 64 MiB of emulated memory. */
export const MAX_CASE_PAGES = 16384;

const HEX = /^0x[0-9a-fA-F]+$/;
const KINDS = { read: 0, write: 1, fetch: 2 } as const;

class Ctx {
  constructor(
    readonly file: string,
    readonly where: string,
  ) {}
  fail(field: string, msg: string): never {
    throw new InputError(`${this.file}: ${this.where}: field '${field}': ${msg}`);
  }
}

function obj(ctx: Ctx, field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) ctx.fail(field, 'expected an object');
  return v as Record<string, unknown>;
}

function arr(ctx: Ctx, field: string, v: unknown, max: number): unknown[] {
  if (!Array.isArray(v)) ctx.fail(field, 'expected an array');
  if (v.length > max) ctx.fail(field, `too many elements (${v.length} > ${max})`);
  return v;
}

/** A hex string ("0x…") below 2^bits. */
function hexField(ctx: Ctx, field: string, v: unknown, bits: number): bigint {
  if (typeof v !== 'string' || !HEX.test(v)) ctx.fail(field, `expected a hex string like "0x1f", got ${show(v)}`);
  if (v.length > 2 + 64) ctx.fail(field, `${v.slice(0, 24)}… is too long for ${bits} bits`);
  const n = BigInt(v);
  if (n >> BigInt(bits) !== 0n) ctx.fail(field, `${v} does not fit in ${bits} bits`);
  return n;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? s.slice(0, 40) + '…' : s;
}

function noExtra(ctx: Ctx, field: string, o: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) ctx.fail(field ? `${field}.${k}` : k, 'unknown field');
}

function parseRegion(ctx: Ctx, field: string, v: unknown): MemoryRegion {
  const o = obj(ctx, field, v);
  noExtra(ctx, field, o, ['pa', 'u64', 'u32']);
  const pa = Number(hexField(ctx, `${field}.pa`, o['pa'], 36));
  const has64 = 'u64' in o;
  const has32 = 'u32' in o;
  if (has64 === has32) ctx.fail(field, 'needs exactly one of "u64" or "u32"');
  const width = has64 ? 64 : 32;
  const key = has64 ? 'u64' : 'u32';
  const list = arr(ctx, `${field}.${key}`, o[key], MAX_WORDS);
  if (list.length === 0) ctx.fail(`${field}.${key}`, 'empty region');
  const words = list.map((w, i) => hexField(ctx, `${field}.${key}[${i}]`, w, width));
  if (pa + list.length * (width / 8) > 2 ** 36) ctx.fail(field, 'region extends beyond the 36-bit physical address space');
  return { pa, width, words };
}

function parseStep(ctx: Ctx, field: string, v: unknown): Step {
  const o = obj(ctx, field, v);
  const op = o['op'];
  switch (op) {
    case 'cr0':
    case 'cr3':
    case 'cr4':
      noExtra(ctx, field, o, ['op', 'value']);
      return { op, value: Number(hexField(ctx, `${field}.value`, o['value'], 32)) };
    case 'access': {
      noExtra(ctx, field, o, ['op', 'va', 'kind', 'user']);
      const va = Number(hexField(ctx, `${field}.va`, o['va'], 32));
      const kind = o['kind'];
      if (typeof kind !== 'string' || !(kind in KINDS)) ctx.fail(`${field}.kind`, `expected "read", "write" or "fetch", got ${show(kind)}`);
      const user = o['user'] ?? false;
      if (typeof user !== 'boolean') ctx.fail(`${field}.user`, `expected true or false, got ${show(user)}`);
      return { op, va, kind: KINDS[kind as keyof typeof KINDS], user };
    }
    case 'poke': {
      noExtra(ctx, field, o, ['op', 'pa', 'u64', 'u32']);
      const has64 = 'u64' in o;
      if (has64 === 'u32' in o) ctx.fail(field, 'poke needs exactly one of "u64" or "u32"');
      const width = has64 ? 64 : 32;
      const pa = Number(hexField(ctx, `${field}.pa`, o['pa'], 36));
      if (pa + width / 8 > 2 ** 36) ctx.fail(`${field}.pa`, 'beyond the 36-bit physical address space');
      return { op, pa, width, value: hexField(ctx, `${field}.${has64 ? 'u64' : 'u32'}`, o[has64 ? 'u64' : 'u32'], width) };
    }
    case 'invlpg':
      noExtra(ctx, field, o, ['op', 'va']);
      return { op, va: Number(hexField(ctx, `${field}.va`, o['va'], 32)) };
    default:
      return ctx.fail(`${field}.op`, `unknown op ${show(op)} (expected cr0, cr3, cr4, access, poke or invlpg)`);
  }
}

/** Validate a parsed vector file. Throws InputError naming case and field. */
export function parseVectors(file: string, doc: unknown): VectorCase[] {
  const top: Ctx = new Ctx(file, 'top level');
  const o = obj(top, '(document)', doc);
  if (o['format'] !== VECTORS_FORMAT) top.fail('format', `expected "${VECTORS_FORMAT}", got ${show(o['format'])}`);
  const cases = arr(top, 'cases', o['cases'], MAX_CASES);
  const names = new Set<string>();
  return cases.map((c, i) => {
    const raw = typeof c === 'object' && c !== null ? (c as Record<string, unknown>)['name'] : undefined;
    const ctx: Ctx = new Ctx(file, `case ${i}${typeof raw === 'string' ? ` (${raw})` : ''}`);
    const co = obj(ctx, `cases[${i}]`, c);
    noExtra(ctx, '', co, ['name', 'cpu', 'memory', 'steps']);
    const name = co['name'];
    if (typeof name !== 'string' || name.length === 0) ctx.fail('name', 'expected a non-empty string');
    if (names.has(name)) ctx.fail('name', `duplicate case name "${name}"`);
    names.add(name);
    const cpuRaw = obj(ctx, 'cpu', co['cpu'] ?? {});
    noExtra(ctx, 'cpu', cpuRaw, ['cr0', 'cr4', 'efer']);
    const cpu = {
      cr0: cpuRaw['cr0'] === undefined ? 0 : Number(hexField(ctx, 'cpu.cr0', cpuRaw['cr0'], 32)),
      cr4: cpuRaw['cr4'] === undefined ? 0 : Number(hexField(ctx, 'cpu.cr4', cpuRaw['cr4'], 32)),
      efer: cpuRaw['efer'] === undefined ? 0 : Number(hexField(ctx, 'cpu.efer', cpuRaw['efer'], 64) & 0xffffffffn),
    };
    const memory = arr(ctx, 'memory', co['memory'] ?? [], MAX_WORDS).map((r, j) => parseRegion(ctx, `memory[${j}]`, r));
    const steps = arr(ctx, 'steps', co['steps'], MAX_STEPS).map((s, j) => parseStep(ctx, `steps[${j}]`, s));
    // Bounded memory per case: every distinct page written (memory regions, pokes) is a frame of the emulator.
    const pages = new Set<number>();
    const addPages = (field: string, pa: number, bytes: number): void => {
      for (let p = Math.floor(pa / 4096); p <= Math.floor((pa + bytes - 1) / 4096); p++) {
        pages.add(p);
        if (pages.size > MAX_CASE_PAGES) ctx.fail(field, `the case writes more than ${MAX_CASE_PAGES} distinct pages (${MAX_CASE_PAGES * 4} KiB of memory), the limit per case`);
      }
    };
    memory.forEach((r, j) => addPages(`memory[${j}]`, r.pa, r.words.length * (r.width / 8)));
    steps.forEach((st, j) => {
      if (st.op === 'poke') addPages(`steps[${j}]`, st.pa, st.width / 8);
    });
    return { name, cpu, memory, steps };
  });
}

/**
 * Validate an expected-results file (`--expect`, format x86-mmu-results/1)
 * as a whole before comparing: a vector file, `{}` or a trace given by
 * mistake is refused naming the field, not compared into nonsense.
 */
export function parseResults(file: string, doc: unknown): ResultsFile {
  const top: Ctx = new Ctx(file, 'top level');
  const o = obj(top, '(document)', doc);
  if (o['format'] !== RESULTS_FORMAT) {
    const hint = o['format'] === VECTORS_FORMAT ? ' (this is a vector file; --expect takes the results of a run)' : '';
    top.fail('format', `expected "${RESULTS_FORMAT}", got ${show(o['format'])}${hint}`);
  }
  noExtra(top, '', o, ['format', 'cases', 'cpu', 'source']);
  const cases = arr(top, 'cases', o['cases'], MAX_CASES);
  const names = new Set<string>();
  const out: CaseResult[] = cases.map((c, i) => {
    const raw = typeof c === 'object' && c !== null ? (c as Record<string, unknown>)['name'] : undefined;
    const ctx: Ctx = new Ctx(file, `case ${i}${typeof raw === 'string' ? ` (${raw})` : ''}`);
    const co = obj(ctx, `cases[${i}]`, c);
    noExtra(ctx, '', co, ['name', 'steps', 'memory', 'cycles']);
    const name = co['name'];
    if (typeof name !== 'string' || name.length === 0) ctx.fail('name', 'expected a non-empty string');
    if (names.has(name)) ctx.fail('name', `duplicate case name "${name}"`);
    names.add(name);
    if (co['cycles'] !== undefined && (typeof co['cycles'] !== 'number' || !Number.isFinite(co['cycles']) || co['cycles'] < 0)) {
      ctx.fail('cycles', `expected a non-negative number, got ${show(co['cycles'])}`);
    }
    const steps = arr(ctx, 'steps', co['steps'], MAX_STEPS).map((v, j): StepResult => {
      const f = `steps[${j}]`;
      const st = obj(ctx, f, v);
      if ('pa' in st) {
        noExtra(ctx, f, st, ['pa']);
        hexField(ctx, `${f}.pa`, st['pa'], 36);
        return { pa: st['pa'] as string };
      }
      if (st['fault'] === 'PF') {
        noExtra(ctx, f, st, ['fault', 'errorCode', 'cr2']);
        const ec = st['errorCode'];
        if (typeof ec !== 'number' || !Number.isInteger(ec) || ec < 0 || ec > 0xffff) ctx.fail(`${f}.errorCode`, `expected an integer 0..0xffff, got ${show(ec)}`);
        hexField(ctx, `${f}.cr2`, st['cr2'], 32);
        return { fault: 'PF', errorCode: ec, cr2: st['cr2'] as string };
      }
      if (st['fault'] === 'GP') {
        noExtra(ctx, f, st, ['fault']);
        return { fault: 'GP' };
      }
      if (st['ok'] === true) {
        noExtra(ctx, f, st, ['ok']);
        return { ok: true };
      }
      return ctx.fail(f, `expected {"pa"}, {"fault":"PF",…}, {"fault":"GP"} or {"ok":true}, got ${show(v)}`);
    });
    const memory = arr(ctx, 'memory', co['memory'] ?? [], MAX_WORDS).map((r, j) => {
      const reg = parseRegion(ctx, `memory[${j}]`, r);
      const ro = r as Record<string, unknown>;
      return reg.width === 64 ? { pa: ro['pa'] as string, u64: ro['u64'] as string[] } : { pa: ro['pa'] as string, u32: ro['u32'] as string[] };
    });
    return { name, steps, memory };
  });
  return { format: RESULTS_FORMAT, cases: out };
}
