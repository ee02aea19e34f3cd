/**
 * Runs `x86-mmu-vectors/1` cases on the emulated MMU and produces
 * `x86-mmu-results/1` (docs/vectors.md). One Mmu is reset to
 * power-on state between cases, which is what "a fresh machine" means.
 */
import { Mmu } from '../../emulator/mmu.js';
import { PhysMem } from '../../emulator/phys-mem.js';
import { InputError } from '../input-error.js';
import { RESULTS_FORMAT, type CaseResult, type ResultsFile, type StepResult, type VectorCase } from './format.js';
import { hex } from '../../emulator/hex.js';


export function runVectors(file: string, cases: VectorCase[], cpu: string): ResultsFile {
  const mmu = new Mmu({ cpu });
  // Validate what only running can tell (the cpu block's own #GP) for every
  // case before reporting anything, so a bad file is refused as a whole.
  const out: CaseResult[] = [];
  for (let i = 0; i < cases.length; i++) out.push(runCase(file, i, cases[i]!, mmu));
  return { format: RESULTS_FORMAT, cases: out };
}

function runCase(file: string, index: number, c: VectorCase, mmu: Mmu): CaseResult {
  mmu.reset();
  const r = runCaseOn(mmu, c);
  if (r.cpuFault) {
    throw new InputError(`${file}: case ${index} (${c.name}): field '${r.cpuFault}': raises #GP when applied before the first step`);
  }
  return r.result;
}

/**
 * Run one case on `mmu` as it is (the caller gives a fresh or reset machine):
 * memory regions, then EFER, CR4, CR0, then the steps. `cpuFault` names the
 * cpu field whose write raised #GP (the case is then not run).
 */
export function runCaseOn(mmu: Mmu, c: VectorCase): { result: CaseResult; cpuFault?: 'cpu.cr4' | 'cpu.cr0' } {
  const mem: PhysMem = mmu.mem;
  for (const r of c.memory) writeWords(mem, r.pa, r.width, r.words);
  mmu.writeEfer(c.cpu.efer);
  const empty = { name: c.name, steps: [], memory: [] };
  if (mmu.writeCr4(c.cpu.cr4) !== 'ok') return { result: empty, cpuFault: 'cpu.cr4' };
  if (mmu.writeCr0(c.cpu.cr0) !== 'ok') return { result: empty, cpuFault: 'cpu.cr0' };
  const steps: StepResult[] = [];
  for (const s of c.steps) {
    switch (s.op) {
      case 'cr0':
        steps.push(mmu.writeCr0(s.value) === 'ok' ? { ok: true } : { fault: 'GP' });
        break;
      case 'cr3':
        steps.push(mmu.writeCr3(s.value) === 'ok' ? { ok: true } : { fault: 'GP' });
        break;
      case 'cr4':
        steps.push(mmu.writeCr4(s.value) === 'ok' ? { ok: true } : { fault: 'GP' });
        break;
      case 'access': {
        const r = mmu.access(s.va, s.kind, s.user);
        steps.push(r >= 0 ? { pa: hex(r) } : { fault: 'PF', errorCode: -1 - r, cr2: hex(mmu.cpu.cr2) });
        break;
      }
      case 'poke':
        writeWords(mem, s.pa, s.width, [s.value]);
        steps.push({ ok: true });
        break;
      case 'invlpg':
        mmu.invlpg(s.va);
        steps.push({ ok: true });
        break;
    }
  }
  const memory = c.memory.map((r) => {
    const words = readWords(mem, r.pa, r.width, r.words.length).map(hex);
    return r.width === 64 ? { pa: hex(r.pa), u64: words } : { pa: hex(r.pa), u32: words };
  });
  return { result: { name: c.name, steps, memory, cycles: mmu.cycles } };
}

function writeWords(mem: PhysMem, pa: number, width: 32 | 64, words: bigint[]): void {
  for (let i = 0; i < words.length; i++) {
    if (width === 64) mem.write64(pa + 8 * i, words[i]!);
    else mem.write32(pa + 4 * i, Number(words[i]!));
  }
}

function readWords(mem: PhysMem, pa: number, width: 32 | 64, n: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(width === 64 ? mem.read64(pa + 8 * i) : BigInt(mem.read32(pa + 4 * i)));
  return out;
}

/**
 * Compare results with expected results case by case and step by step;
 * `cycles` is not compared (it is the model's, not the architecture's).
 * Returns human-readable differences, empty when they agree.
 */
export function compareResults(actual: ResultsFile, expected: unknown): string[] {
  const diffs: string[] = [];
  const exp = expected as ResultsFile;
  if (!exp || !Array.isArray(exp.cases)) return ['expected file has no "cases" array'];
  const byName = new Map(exp.cases.map((c) => [c.name, c]));
  for (const a of actual.cases) {
    const e = byName.get(a.name);
    if (!e) {
      diffs.push(`${a.name}: no expected result`);
      continue;
    }
    for (let i = 0; i < Math.max(a.steps.length, e.steps?.length ?? 0); i++) {
      const as = JSON.stringify(a.steps[i] ?? null);
      const es = JSON.stringify(normaliseStep(e.steps?.[i]));
      if (as !== es) diffs.push(`${a.name}: step ${i}: got ${as}, expected ${es}`);
    }
    const am = JSON.stringify(a.memory.map(normaliseRegion));
    const em = JSON.stringify((e.memory ?? []).map(normaliseRegion));
    if (am !== em) diffs.push(`${a.name}: memory: got ${am}, expected ${em}`);
  }
  // An expected case the vector file does not have is a difference too, not a silent pass.
  const ran = new Set(actual.cases.map((c) => c.name));
  for (const e of exp.cases) if (!ran.has(e.name)) diffs.push(`${e.name}: expected, but the vector file has no such case`);
  return diffs;
}

function normaliseStep(s: unknown): unknown {
  if (!s || typeof s !== 'object') return s ?? null;
  const o = s as Record<string, unknown>;
  if ('pa' in o) return { pa: hex(BigInt(o['pa'] as string)) };
  if (o['fault'] === 'PF') return { fault: 'PF', errorCode: o['errorCode'], cr2: hex(BigInt(o['cr2'] as string)) };
  if (o['fault'] === 'GP') return { fault: 'GP' };
  return { ok: true };
}

function normaliseRegion(r: { pa: string; u64?: string[]; u32?: string[] }): unknown {
  const norm = (l: string[]) => l.map((w) => hex(BigInt(w)));
  return r.u64 ? { pa: hex(BigInt(r.pa)), u64: norm(r.u64) } : { pa: hex(BigInt(r.pa)), u32: norm(r.u32 ?? []) };
}
