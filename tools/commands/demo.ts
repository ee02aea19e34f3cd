/**
 * `pvmmu demo`: a small built-in MMU demonstration (what `npm start` shows
 * until the guest kernel and workloads exist): build PAE page tables, run
 * accesses, show translations, faults, TLB behaviour and cycles per preset.
 */
import type { Command } from 'commander';
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { pad, runDemo } from '../demo/mmu-demo.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('a built-in demonstration of the emulated MMU (PAE walk, faults, TLB, cycles per CPU preset)')
    .option('--json', 'print one JSON document')
    .addHelpText(
      'after',
      `
No input: the page tables are built in, PAE with user pages above 4 GiB.

Examples:
  pvmmu demo
  pvmmu demo --json`,
    )
    .action((opts: { json?: boolean }) => {
      const rows = PRESET_NAMES.map((cpu) => runDemo(cpu));
      if (opts.json) {
        process.stdout.write(JSON.stringify({ demo: rows }, null, 2) + '\n');
        return;
      }
      const first = rows[0]!;
      console.log('PAE page tables: PDPT 0x1000, PD 0x2000, PT 0x3000; 64 user pages at 0x40000000 -> 0x100000000 (above 4 GiB)');
      for (const l of first.log) console.log('  ' + l);
      console.log('');
      console.log('Same work on each CPU preset (64 pages read twice, one write, one fault):');
      console.log(pad('preset', 10) + pad('cycles', 10, true) + pad('TLB hits', 10, true) + pad('misses', 8, true) + pad('walks', 7, true) + pad('faults', 8, true));
      for (const r of rows) {
        console.log(pad(r.cpu, 10) + pad(String(r.cycles), 10, true) + pad(String(r.hits), 10, true) + pad(String(r.misses), 8, true) + pad(String(r.walks), 7, true) + pad(String(r.faults), 8, true));
      }
    });
}
