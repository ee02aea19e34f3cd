/**
 * `pvmmu inject`: the allocation sweep on small workloads (fixtures/) on both
 * backends under PAE, and the mmu_update refusal sweep under Xen: every
 * injection point is tried, each run copes (-ENOMEM, NULL, OOM kill, a clean
 * stop on the refusal), nothing leaks, nothing crashes. And the check can
 * fail: a kernel made to skip one free, or to go on after a refusal, is
 * reported. Through the CLI: the --json shape of cli.md and the exit codes.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Kernel } from '../../guest-kernel/kernel.js';
import { XenBackend } from '../../hypervisor/xen/index.js';
import { injectJson } from '../../tools/inject/summary.js';
import { injectSweep, pickPoints, type InjectReport } from '../../tools/inject/sweep.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig, type RunConfig } from '../../tools/workload/config.js';
import { parseScript } from '../../tools/workload/parser.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIX = 'tests/tools/fixtures/';
const CLI = ROOT + 'dist/tools/cli.js';

function load(name: string, over: Partial<RunConfig>): { script: ReturnType<typeof parseScript>; cfg: RunConfig } {
  const file = FIX + name;
  const script = parseScript(file, readFileSync(ROOT + file, 'utf8'));
  const cfg = resolveConfig(file, script.machine, over);
  checkScript(script, cfg);
  return { script, cfg };
}

function outcomes(r: InjectReport): Set<string> {
  return new Set(r.results.map((x) => x.outcome));
}

function assertClean(r: InjectReport, what: string): void {
  const bad = r.results.filter((x) => x.crash !== null || x.leaked === null || Object.values(x.leaked).some((v) => typeof v === 'number' && v !== 0));
  assert.is(bad.length, 0, `${what}: ${JSON.stringify(bad.slice(0, 3))}`);
  assert.is(r.leaks, 0, `${what}: leaks`);
  assert.is(r.crashes, 0, `${what}: crashes`);
  assert.is(r.clean.failure, null, `${what}: the clean run completes`);
  assert.equal(r.clean.invariants, [], `${what}: clean run invariants`);
  assert.is(r.clean.teardown, null, `${what}: clean run teardown`);
}

const s = suite('inject: allocation sweep');

for (const backend of ['native', 'xen'] as const) {
  s(`${backend} PAE: fork/COW/exec workload: every allocation fails cleanly`, () => {
    const { script, cfg } = load('inject-fork.pvw', { backend, pae: true });
    const r = injectSweep(script, cfg);
    assert.ok(r.clean.points >= 40, `${r.clean.points} allocations`);
    assert.is(r.runs, r.clean.points, 'one run per allocation');
    assert.equal(r.results.map((x) => x.failAt), pickPoints(r.clean.points, undefined));
    assertClean(r, `${backend} fork`);
    const o = outcomes(r);
    for (const want of ['process -ENOMEM', 'fork -ENOMEM', 'exec -ENOMEM', 'mmap -ENOMEM', 'touch: killed by the OOM path']) {
      assert.ok(o.has(want), `${want} among ${[...o].join(', ')}`);
    }
    const sites = r.results.map((x) => x.site).join('\n');
    for (const want of ['pgd_alloc', 'pte_alloc_one', 'dup_mmap', 'do_wp_page', 'mm_alloc']) assert.match(sites, want);
    if (backend === 'xen') assert.match(sites, 'pmd_cache_alloc');
    // The failure is reported at the statement that met it: process init is line 3.
    assert.is(r.results[0]!.line, 3);
    assert.is(r.results[0]!.outcome, 'process -ENOMEM');
  });

  s(`${backend} PAE: vmalloc churn with processes alive: every allocation fails cleanly`, () => {
    const { script, cfg } = load('inject-vmalloc.pvw', { backend, pae: true });
    const r = injectSweep(script, cfg);
    assert.ok(r.runs >= 60, `${r.runs} runs`);
    assertClean(r, `${backend} vmalloc`);
    assert.ok(outcomes(r).has('vmalloc NULL'));
    assert.match(r.results.map((x) => x.site).join('\n'), '__vmalloc_area');
  });
}

s('xen 2-level and native 2-level: change_page_attr workload, sampled with --max-runs', () => {
  for (const backend of ['native', 'xen'] as const) {
    const { script, cfg } = load('inject-cpa.pvw', { backend, pae: false });
    const r = injectSweep(script, cfg, { maxRuns: 8 });
    assert.is(r.runs, Math.min(8, r.clean.points));
    assert.is(r.results[0]!.failAt, 1);
    assert.is(r.results.at(-1)!.failAt, r.clean.points, 'first and last points included');
    assertClean(r, `${backend} cpa`);
  }
});

s('pickPoints spreads evenly and never repeats', () => {
  assert.equal(pickPoints(5, undefined), [1, 2, 3, 4, 5]);
  assert.equal(pickPoints(5, 10), [1, 2, 3, 4, 5]);
  assert.equal(pickPoints(100, 3), [1, 50, 100]);
  assert.equal(pickPoints(100, 1), [1]);
  assert.equal(new Set(pickPoints(7, 6)).size, 6);
});

// ---- the check can fail ----

const leak = suite('inject: a leaking kernel is reported');

/** After the injected failure, the page allocator drops the next free of one frame on the floor. */
function leakOneFrame(kernel: Kernel): void {
  const pages = kernel.k.pages;
  const real = pages.__free_pages.bind(pages);
  let dropped = false;
  pages.__free_pages = (pfn: number, order: number) => {
    if (!dropped && kernel.injected !== null && order === 0 && pages._count[pfn] === 1) {
      dropped = true;
      pages._count[pfn] = 0; // forgotten, never put back on a free list
      return;
    }
    real(pfn, order);
  };
}

/** After the injected failure, the next kmem_cache_free of a pgd is skipped. */
function leakOnePgd(kernel: Kernel): void {
  const slab = kernel.k.slab;
  const real = slab.kmem_cache_free.bind(slab);
  let dropped = false;
  slab.kmem_cache_free = ((c: { name: string }, obj: number) => {
    if (!dropped && kernel.injected !== null && c.name === 'pgd') {
      dropped = true;
      return;
    }
    real(c as never, obj);
  }) as typeof slab.kmem_cache_free;
}

for (const backend of ['native', 'xen'] as const) {
  leak(`${backend}: a frame not freed after the failure shows as leaked frames`, () => {
    const { script, cfg } = load('inject-fork.pvw', { backend, pae: true });
    const r = injectSweep(script, cfg, { maxRuns: 6, patchKernel: leakOneFrame });
    assert.is(r.runs, 6);
    assert.ok(r.leaks >= 5, `${r.leaks} leaking runs`);
    const leaked = r.results.filter((x) => x.leaked !== null && x.leaked.frames === 1);
    assert.ok(leaked.length >= 5, JSON.stringify(r.results.map((x) => x.leaked)));
    // The guest's own census notices the orphan frame too: an invariant breach, counted as a crash.
    assert.ok(r.crashes >= 5);
    assert.match(r.results.find((x) => x.crash !== null)!.crash!, /leaked/);
  });

  leak(`${backend}: a pgd not freed after the failure shows as a leaked slab object and pgd_list entry`, () => {
    const { script, cfg } = load('inject-fork.pvw', { backend, pae: true });
    const r = injectSweep(script, cfg, { only: [1, 20, 40], patchKernel: leakOnePgd });
    assert.is(r.runs, 3);
    assert.ok(r.leaks >= 2, `${r.leaks} leaking runs: ${JSON.stringify(r.results)}`);
    const l = r.results.find((x) => x.leaked !== null && x.leaked.slabObjects > 0)!.leaked!;
    assert.is(l.slabObjects, 1);
    assert.equal(l.caches, { pgd: 1 });
  });
}

leak("a kernel variant known to be wrong: the seed's pgd_dtor is caught at teardown by the guest's own debug check, on both backends [item 1]", () => {
  const { script, cfg } = load('inject-fork.pvw', { backend: 'xen', pae: true, kernel: 'seed' });
  // Seed bug 2: releasing the pgd cache's slab page runs pgd_dtor, whose
  // release_pd was never announced. Xen's paravirt_ops make the hook a nop
  // (2.6.23): the guest kernel's debug check reports it.
  const r = injectSweep(script, cfg, { maxRuns: 4 });
  assert.ok(r.crashes >= 3, `${r.crashes} crashes`);
  assert.match(r.results.find((x) => x.crash !== null)!.crash!, /^invariants broken after teardown: unbalanced paravirt_release_pd of pfn/);
  assert.match(r.clean.teardown ?? '', /unbalanced paravirt_release_pd/);
  // Natively the kernel pmd is shared, and the seed's pgd_dtor takes the balanced path: the same sweep is clean.
  const n = injectSweep(script, { ...cfg, backend: 'native' }, { maxRuns: 4 });
  assertClean(n, 'native seed');
});

// ---- hypervisor refusals ----

const ref = suite('inject: mmu_update refused part-way (Xen)');

for (const pae of [true, false]) {
  ref(`${pae ? 'PAE' : '2-level'}: mmu_update refused in turn: a clean stop naming it, Xen's state consistent`, () => {
    const { script, cfg } = load('inject-fork.pvw', { backend: 'xen', pae });
    // Every call under PAE; a spread of 20 under 2-level (time).
    const r = injectSweep(script, cfg, { mode: 'mmu_update', maxRuns: pae ? undefined : 20 });
    // 2.6.23: set_pmd/set_pud are mmu_updates; set_pte_at of the current mm is an update_va_mapping.
    assert.ok(r.clean.points >= (pae ? 20 : 8), `${r.clean.points} mmu_update calls`);
    assert.is(r.runs, pae ? r.clean.points : Math.min(20, r.clean.points));
    assert.is(r.crashes, 0, JSON.stringify(r.results.filter((x) => x.crash).slice(0, 3)));
    assert.ok(r.results.every((x) => /: stopped, mmu_update refused$/.test(x.outcome) && x.line !== null), [...outcomes(r)].join(', '));
    assert.ok(r.results.some((x) => x.site.includes('in a multicall')), 'some refusals hit a multicall (partial completion of the batch)');
    assert.ok(new Set(r.results.map((x) => x.line)).size >= 5, 'refusals hit many statements');
  });
}

ref('a guest that goes on after a refusal, or a hypervisor left inconsistent, is a crash', () => {
  const { script, cfg } = load('inject-fork.pvw', { backend: 'xen', pae: true });
  // The port ignores the refusal (as if it did not check the hypercall's result).
  const ignore = injectSweep(script, cfg, {
    mode: 'mmu_update',
    only: [3],
    patchKernel: (k) => {
      const hv = (k.ops as XenBackend).hv;
      const real = hv.mmu_update.bind(hv);
      hv.mmu_update = (reqs, batched) => {
        const r = real(reqs, batched);
        return { rc: 0, done: reqs.length };
      };
    },
  });
  assert.is(ignore.crashes, 1);
  assert.match(ignore.results[0]!.crash!, /went on after a failed mmu_update/);
  // The refusal leaves a type count wrong.
  const corrupt = injectSweep(script, cfg, {
    mode: 'mmu_update',
    only: [3],
    patchKernel: (k) => {
      const x = k.ops as XenBackend;
      const hv = x.hv;
      const real = hv.mmu_update.bind(hv);
      hv.mmu_update = (reqs, batched) => {
        const r = real(reqs, batched);
        if (r.refusal) x.domain.frames.debugSetCount(x.domain.baseMfn, x.domain.frames.countOf(x.domain.baseMfn) + 1);
        return r;
      };
    },
  });
  assert.is(corrupt.crashes, 1);
  assert.match(corrupt.results[0]!.crash!, /hypervisor state corrupted: .*type count/);
});

// ---- through the CLI ----

const cli = suite('inject: the command');

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'inject', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

cli('--json: the cli.md shape, exit 0 when nothing leaks', () => {
  const r = run([FIX + 'inject-cpa.pvw', '--backend', 'xen', '--json', '--max-runs', '5']);
  assert.is(r.code, 0, r.err);
  assert.is(r.err, '', 'nothing on stderr (no progress under --json)');
  const j = JSON.parse(r.out) as Record<string, unknown> & { results: Record<string, unknown>[]; config: Record<string, unknown> };
  assert.is(j['workload'], FIX + 'inject-cpa.pvw');
  assert.is(j.config['backend'], 'xen');
  assert.is(j.config['pae'], true);
  assert.is(j['runs'], 5);
  assert.is(j['leaks'], 0);
  assert.is(j['crashes'], 0);
  assert.is(j.results.length, 5);
  const first = j.results[0]!;
  assert.is(first['failAt'], 1);
  assert.type(first['site'], 'string');
  assert.is(first['outcome'], 'process -ENOMEM');
  assert.equal(first['leaked'], { frames: 0, slabObjects: 0, pgdList: 0, pins: 0, typeRefs: 0 });
  // Deterministic: the same sweep gives the same document.
  const { script, cfg } = load('inject-cpa.pvw', { backend: 'xen' });
  const again = injectJson(injectSweep(script, cfg, { maxRuns: 5 }));
  assert.is(JSON.stringify(again, null, 2) + '\n', r.out);
});

cli('human output: an aligned table and a summary line', () => {
  const r = run([FIX + 'inject-cpa.pvw', '--max-runs', '4']);
  assert.is(r.code, 0, r.err);
  const lines = r.out.split('\n');
  const h = lines.findIndex((l) => /^\s*k\s+site\s+outcome\s+line\s+leaked$/.test(l));
  assert.ok(h > 0, r.out);
  assert.match(lines[h + 1]!, /^-+\s+-+\s+-+\s+-+\s+-+$/);
  const col = lines[h]!.indexOf('outcome');
  for (let i = h + 2; i < h + 6; i++) assert.is(lines[i]!.slice(col - 2, col), '  ', `row ${i} aligned: ${lines[i]}`);
  assert.match(r.out, /\nok: 4 runs, 0 leaks, 0 crashes \(/);
  const x = run([FIX + 'inject-fork.pvw', '--backend', 'xen', '--refuse-hypercall', '7']);
  assert.is(x.code, 0, x.err);
  assert.match(x.out, /mmu_update calls after boot/);
  assert.match(x.out, /stopped, mmu_update refused/);
});

cli('bad input: exit 2 with a message, no stack trace', () => {
  for (const [args, msg] of [
    [[FIX + 'inject-cpa.pvw', '--max-runs', 'lots'], /--max-runs: expected a positive integer/],
    [[FIX + 'inject-cpa.pvw', '--refuse-hypercall', '2'], /--refuse-hypercall: mmu_update is a Xen hypercall/],
    [[FIX + 'inject-cpa.pvw', '--backend', 'xen', '--refuse-hypercall', '0'], /positive integer/],
    [[FIX + 'inject-cpa.pvw', '--backend', 'xen', '--refuse-hypercall', '100000'], /makes only \d+ mmu_update calls/],
    [[FIX + 'no-such-file.pvw'], /no-such-file\.pvw/],
  ] as [string[], RegExp][]) {
    const r = run(args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, msg);
    assert.not.match(r.err, /\n\s+at /, 'no stack trace');
  }
});

cli('a workload that fails without injection: exit 1, nothing swept', () => {
  const r = run([FIX + 'inject-fork.pvw', '--backend', 'xen', '--kernel', 'prepatch', '--json']);
  assert.is(r.code, 1);
  const j = JSON.parse(r.out) as { runs: number; clean: { failure: string } };
  assert.is(j.runs, 0);
  // The pre-patch kernel's 32-byte PAE pgds cannot be expressed to Xen.
  assert.match(j.clean.failure, /:3:1: process: hypervisor refused: .*pgd not at offset 0 of its own frame/);
  assert.match(r.err, /fails without injection/);
});

s.run();
leak.run();
ref.run();
cli.run();
