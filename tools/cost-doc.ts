/**
 * The generated parts of docs/cost-model.md: every figure the model charges
 * in one table (its value in each preset, its source or GUESS/DERIVED/
 * CALIBRATED tag, what charges it), the Xen figures derived from them, the
 * guest kernel's per-path table, and the worked example of one fork on each
 * backend. tests/tools/cost-doc.test.ts checks the document holds exactly
 * what this produces, so it cannot go stale.
 *
 *   node dist/tools/cost-doc.js            rewrite the generated sections of docs/cost-model.md
 *   node dist/tools/cost-doc.js --check    exit 1 if they are stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COST_COMPONENTS, LMBENCH_P6, PRESET_NAMES, PRESETS, type CycleFigures } from '../emulator/cost-model.js';
import { KERNEL_PATHS } from '../guest-kernel/kernel/work.js';
import { xenCostTable } from '../hypervisor/xen/costs.js';
import { LMBENCH_DIR, LMBENCH_ROWS, runLmbench } from './lmbench/lmbench.js';
import { num } from './table.js';
import { runWorkload } from './workload/interpreter.js';
import { loadWorkload } from './workload/load.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const COST_DOC = join(ROOT, 'docs', 'cost-model.md');

/** What charges each preset figure (component, and where in the code). */
export const CHARGED_BY: Record<keyof CycleFigures, string> = {
  tlbHit: '`tlb`: every first-level TLB hit (emulator/mmu.ts)',
  l2TlbHit: '`tlb`: a first-level miss that hits the second-level TLB',
  walkEntryCached: '`tlb`: a paging-entry read that hits the walk cache (emulator/walker.ts)',
  walkEntryMemory: '`tlb`: a paging-entry read that misses it; the base of several Xen figures',
  adUpdate: '`tlb`: setting A or D in an entry; `kernel`: native `set_pte_atomic` under PAE, ptep_set_wrprotect\'s clear_bit (copy_page_range); the base of Xen\'s locked figures',
  cr3Write: '`flush`: MOV to CR3 (native `write_cr3`, `flush_tlb_user`; Xen NEW_BASEPTR, TLB_FLUSH_LOCAL)',
  fullFlush: '`flush`: a CR0/CR4 write that flushes (native `flush_tlb_kernel`)',
  invlpg: '`flush`: INVLPG (native `flush_tlb_single`, Xen INVLPG_LOCAL)',
  pageFault: '`exception`: every #PF delivered (emulator/mmu.ts); the base of Xen\'s hypercall and trap figures',
  pdpteLoad: '`flush`: loading the PDPTE registers (PAE, a CR3 write)',
  pteStore: '`kernel`: a native page-table store; a Xen guest\'s store into a frame that is not a page table',
  syscall: '`kernel`: `ParavirtOps.syscall` (guest-kernel/kernel/entry.ts system_call: fork, execve, exit, mmap, munmap, getppid, sigreturn)',
  clearPage: '`page_copy`: every zeroed page (page allocator `__GFP_ZERO`, bootmem, pmd_ctor) and pro rata for partial memsets (pgd_alloc)',
  copyPage: '`page_copy`: COW copies (do_wp_page), the per-process kernel pmd copy of unshared PAE, pgd clones pro rata',
  pteCopy: '`kernel`: copy_page_range, per present pte copied',
  pteZap: '`kernel`: zap_page_range, per present pte zapped',
  forkFixed: '`kernel`: do_fork (guest-kernel/kernel/fork.ts)',
  execFixed: '`kernel`: do_execve (kernel/exec.ts)',
  exitFixed: '`kernel`: do_exit (kernel/exit.ts)',
  scheduleFixed: '`kernel`: context_switch, switch_to_idle, ensure_current (kernel/sched.ts)',
  mmapFixed: '`kernel`: do_mmap (mm/mmap.ts)',
  munmapFixed: '`kernel`: do_munmap with a vma in the range (mm/mmap.ts)',
  signalFixed: '`kernel`: a SIGSEGV delivered for a fault (kernel/traps.ts)',
  faultFixed: '`kernel`: every fault handle_mm_fault resolves (kernel/traps.ts)',
};

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The preset figures: one row per figure, a column per preset, the sources. */
export function figureTable(): string {
  const names = Object.keys(PRESETS['core2']!.cycles) as (keyof CycleFigures)[];
  const out: string[] = [];
  out.push(`| figure | ${PRESET_NAMES.join(' | ')} | charged by | source (${PRESET_NAMES.join(' / ')}) |`);
  out.push(`|---|${PRESET_NAMES.map(() => '---:').join('|')}|---|---|`);
  out.push(`| clock (MHz) | ${PRESET_NAMES.map((p) => String(PRESETS[p]!.clockMhz)).join(' | ')} | µs in \`pvmmu lmbench\` | ${PRESET_NAMES.map((p) => cell(PRESETS[p]!.sources['clockMhz'] ?? '')).join(' / ')} |`);
  for (const n of names) {
    const srcs = PRESET_NAMES.map((p) => PRESETS[p]!.sources[n] ?? '');
    const same = srcs.every((s) => s === srcs[0]);
    const src = same ? srcs[0]! : PRESET_NAMES.map((p, i) => `${p}: ${srcs[i]}`).join(' — ');
    out.push(`| \`${n}\` | ${PRESET_NAMES.map((p) => num(PRESETS[p]!.cycles[n])).join(' | ')} | ${cell(CHARGED_BY[n])} | ${cell(src)} |`);
  }
  return out.join('\n');
}

/** The Xen figures derived from the presets (PAE and 2-level where they differ). */
export function xenTable(): string {
  const out: string[] = [];
  const cols = PRESET_NAMES.flatMap((p) => [`${p} PAE`, `${p} 2-level`]);
  out.push(`| Xen figure | ${cols.join(' | ')} | derivation (PAE) |`);
  out.push(`|---|${cols.map(() => '---:').join('|')}|---|`);
  const rows = PRESET_NAMES.flatMap((p) => [xenCostTable(PRESETS[p]!.cycles, true), xenCostTable(PRESETS[p]!.cycles, false)]);
  for (let i = 0; i < rows[0]!.length; i++) {
    const r = rows[0]![i]!;
    out.push(`| \`${r.name}\` | ${rows.map((t) => num(t[i]!.cycles)).join(' | ')} | ${cell(r.derivation)} |`);
  }
  return out.join('\n');
}

/** The guest kernel's per-path table (guest-kernel/kernel/work.ts). */
export function pathTable(): string {
  const out = ['| path | fixed figure | text pages | data pages | Linux 2.6.22 |', '|---|---|---:|---:|---|'];
  for (const [p, s] of Object.entries(KERNEL_PATHS)) out.push(`| \`${p}\` | ${s.figure ? `\`${s.figure}\`` : '(the backend\'s `syscall`)'} | ${s.text} | ${s.data} | ${cell(s.linux)} |`);
  return out.join('\n');
}

/** One fork+exit of lmbench/fork-exit.pvw on core2, PAE and 2-level: cycles per run by component, native and Xen. */
export function forkExample(): string {
  const out: string[] = [];
  for (const pae of [true, false]) {
    const { script, cfg } = loadWorkload(join(LMBENCH_DIR, 'fork-exit.pvw'), { cpu: 'core2', pae });
    const n = runWorkload(script, { ...cfg, backend: 'native' }).measures['fork-exit']!;
    const x = runWorkload(script, { ...cfg, backend: 'xen' }).measures['fork-exit']!;
    const nb = n.breakdown as Record<string, number>;
    const xb = x.breakdown as Record<string, number>;
    out.push(`core2, ${pae ? 'PAE' : '2-level'}, one fork+exit of tools/workloads/lmbench/fork-exit.pvw (cycles per run, mean of ${n.runs}):`);
    out.push('');
    out.push('| component | native | Xen | Xen − native |');
    out.push('|---|---:|---:|---:|');
    for (const c of COST_COMPONENTS) {
      const a = (nb[c] ?? 0) / n.runs;
      const b = (xb[c] ?? 0) / x.runs;
      if (a === 0 && b === 0) continue;
      out.push(`| ${c} | ${num(a, 1)} | ${num(b, 1)} | ${num(b - a, 1)} |`);
    }
    out.push(`| **total** | **${num(n.perRun, 1)}** | **${num(x.perRun, 1)}** | **${num(x.perRun - n.perRun, 1)}** |`);
    const hc = Object.entries(x.events).filter(([k]) => k.startsWith('hypercalls.') && !k.includes(':'));
    out.push('');
    out.push(`Xen events per run: ${hc.map(([k, v]) => `${k.slice(11)} ${num(v / x.runs, 1)}`).join(', ')}; traps ${Object.entries(x.events).filter(([k]) => k.startsWith('traps.')).map(([k, v]) => `${k.slice(6)} ${num(v / x.runs, 1)}`).join(', ') || 'none'}.`);
    out.push('');
  }
  return out.join('\n').trimEnd();
}

/**
 * Barham et al., "Xen and the Art of Virtualization", SOSP 2003, Tables 3-5:
 * lmbench on a Dell 2650 (dual 2.4 GHz Xeon), Linux 2.4.21 native
 * uniprocessor (L-UP) and XenoLinux 2.4.21 on Xen 1.0, in µs as printed.
 * A check only: no figure of the model is taken from it.
 */
export const BARHAM_2003: readonly { row: string; lup: number; xen: number; paper: string }[] = [
  { row: 'null syscall', lup: 0.45, xen: 0.46, paper: 'null call' },
  { row: 'fork+exit', lup: 110, xen: 198, paper: 'fork proc' },
  { row: 'fork+exec', lup: 530, xen: 768, paper: 'exec proc' },
  { row: 'ctxsw 2p/0K', lup: 0.77, xen: 1.97, paper: '2p/0K ctxsw' },
  { row: 'ctxsw 2p/16K', lup: 0.91, xen: 2.22, paper: '2p/16K ctxsw' },
  { row: 'mmap+munmap 4M', lup: 68.0, xen: 139, paper: 'mmap lat' },
  { row: 'prot fault', lup: 1.06, xen: 1.4, paper: 'prot fault' },
  { row: 'page fault', lup: 1.42, xen: 2.73, paper: 'page fault' },
];

/** The published ratios beside the model's (`pvmmu lmbench --backend both` on three configurations). */
export function comparisonTable(): string {
  const runs = [
    { label: 'model core2 PAE', r: runLmbench({ backends: ['native', 'xen'], cpu: 'core2', pae: true }) },
    { label: 'model core2 2-level', r: runLmbench({ backends: ['native', 'xen'], cpu: 'core2', pae: false }) },
    { label: 'model p6 2-level', r: runLmbench({ backends: ['native', 'xen'], cpu: 'p6', pae: false }) },
  ];
  const out = [
    `| lmbench row (paper's name) | Barham L-UP µs | Barham Xen µs | published Xen/native | ${runs.map((x) => x.label).join(' | ')} |`,
    `|---|---:|---:|---:|${runs.map(() => '---:').join('|')}|`,
  ];
  for (const spec of LMBENCH_ROWS) {
    const b = BARHAM_2003.find((x) => x.row === spec.label)!;
    const model = runs.map((x) => `${x.r.rows.find((y) => y.label === spec.label)!.ratio!.toFixed(2)}`);
    out.push(`| ${spec.label} (${b.paper}) | ${b.lup} | ${b.xen} | ${(b.xen / b.lup).toFixed(2)} | ${model.join(' | ')} |`);
  }
  return out.join('\n');
}

/**
 * The calibration arithmetic: each fixed figure = the P6 measurement in
 * cycles minus the model's charges without it (which the calibration test
 * checks still hold: model with it = measurement).
 */
export function calibrationTable(): string {
  const c = PRESETS['p6']!.cycles;
  const at = (us: number): number => Math.round(us * LMBENCH_P6.mhz);
  const rows: [string, string, number, number, string][] = [
    ['`faultFixed`', `page fault ${LMBENCH_P6.pageFaultUs} µs (per fault, lmbench/page-fault.pvw)`, at(LMBENCH_P6.pageFaultUs), c.faultFixed, ''],
    ['`scheduleFixed`', `2p/0K ctxsw ${LMBENCH_P6.ctxsw2p0kUs} µs (lmbench/ctxsw-0k.pvw)`, at(LMBENCH_P6.ctxsw2p0kUs), c.scheduleFixed, ''],
    ['`forkFixed` + `exitFixed`', `fork+exit ${LMBENCH_P6.forkUs} µs (lmbench/fork-exit.pvw)`, at(LMBENCH_P6.forkUs), c.forkFixed + c.exitFixed, `, split half and half (GUESS): ${num(c.forkFixed)} + ${num(c.exitFixed)}`],
    ['`execFixed`', `fork+execve ${LMBENCH_P6.execUs} µs (lmbench/fork-exec.pvw)`, at(LMBENCH_P6.execUs), c.execFixed, ''],
  ];
  const out = ['| figure | measurement | cycles at 997 MHz | model without it | fixed figure |', '|---|---|---:|---:|---:|'];
  out.push(`| \`syscall\` | null call ${LMBENCH_P6.nullCallUs} µs | ${num(at(LMBENCH_P6.nullCallUs))} | — | ${num(c.syscall)} |`);
  for (const [f, m, cyc, fixed, note] of rows) out.push(`| ${f} | ${m} | ${num(cyc)} | ${num(cyc - fixed)} | ${num(fixed)}${note} |`);
  out.push(`| \`signalFixed\` | prot fault ${LMBENCH_P6.protFaultUs} µs (lmbench/prot-fault.pvw) | ${num(at(LMBENCH_P6.protFaultUs))} | ${num(at(LMBENCH_P6.protFaultUs) - c.signalFixed)} or more | ${num(c.signalFixed)} (the residual is negative: the model charges 684) |`);
  return out.join('\n');
}

const SECTIONS: Record<string, () => string> = {
  figures: figureTable,
  calibration: calibrationTable,
  comparison: comparisonTable,
  xen: xenTable,
  paths: pathTable,
  fork: forkExample,
};

/** The document with every generated section replaced. */
export function regenerate(doc: string): string {
  let s = doc;
  for (const [name, fn] of Object.entries(SECTIONS)) {
    const begin = `<!-- generated:${name} (node dist/tools/cost-doc.js) -->`;
    const end = `<!-- end:${name} -->`;
    const i = s.indexOf(begin);
    const j = s.indexOf(end);
    if (i < 0 || j < i) throw new Error(`docs/cost-model.md: section markers for '${name}' missing`);
    s = s.slice(0, i + begin.length) + '\n' + fn() + '\n' + s.slice(j);
  }
  return s;
}

function main(argv: string[]): number {
  const doc = readFileSync(COST_DOC, 'utf8');
  const now = regenerate(doc);
  if (argv.includes('--check')) {
    if (now !== doc) {
      process.stdout.write('docs/cost-model.md is stale: run node dist/tools/cost-doc.js\n');
      return 1;
    }
    return 0;
  }
  if (now !== doc) writeFileSync(COST_DOC, now);
  process.stdout.write(now !== doc ? 'rewrote docs/cost-model.md\n' : 'docs/cost-model.md up to date\n');
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
