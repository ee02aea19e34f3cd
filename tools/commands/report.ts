/**
 * `pvmmu report TRACE.json [TRACE2.json] [-o REPORT.html]`: one
 * self-contained HTML page with SVG charts; with two traces (e.g. the
 * native and Xen traces of `compare --trace`), side by side with ratios.
 */
import type { Command } from 'commander';
import { InputError } from '../input-error.js';
import { refuseOutputOverInput, writeOutputFile } from '../output-file.js';
import { renderReport, reportLabels, summarise } from '../trace/report.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .argument('<traces...>', 'one or two trace files written by --trace')
    .description('turn page-walk traces into a self-contained HTML report with charts')
    .option('-o, --out <file>', 'HTML file to write', 'report.html')
    .addHelpText(
      'after',
      `
Examples:
  pvmmu boot tools/workloads/fork-exit.pvw --backend xen --trace /tmp/xen.json
  pvmmu report /tmp/xen.json -o /tmp/xen.html
  pvmmu compare tools/workloads/fork-exit.pvw --trace /tmp/fork.json
  pvmmu report /tmp/fork.native.json /tmp/fork.xen.json -o /tmp/fork.html

Any Chrome trace-event file is accepted (JSON object or array format, any
layout); what Chrome's format does not allow is refused naming the place.`,
    )
    .action(async (traces: string[], opts: { out: string }) => {
      if (traces.length > 2) throw new InputError(`report: at most two traces (got ${traces.length})`);
      refuseOutputOverInput('-o', opts.out, traces);
      const sums = [];
      for (const t of traces) sums.push(await summarise(t));
      const labels = reportLabels(traces, sums);
      const html = renderReport(sums, labels);
      writeOutputFile('-o', opts.out, html);
      process.stderr.write(`wrote ${opts.out} (${Buffer.byteLength(html)} bytes) from ${sums.map((s) => `${s.events} events`).join(' and ')}\n`);
    });
}
