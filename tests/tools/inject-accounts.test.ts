/**
 * The inject leak verdict, account by account (issue 14, gap 5): for each
 * account the sweep compares — frames, slab objects, pgd_list entries, and
 * under Xen pinned frames and page-table type references — a test kernel
 * that, after the injected failure, leaks that account alone (others stay
 * as a clean boot's), and the sweep must count the run as a leak, name the
 * account in the leaked record and in its text, and see nothing else. And the
 * verdict itself on accounts that differ in one field only.
 *
 * Planted bugs these tests were verified against (tools/inject/accounts.ts):
 * isLeak ignoring the pgd_list (or frames, slab, pins, type refs) difference;
 * leakedOf not computing the pgd_list (or pins) difference.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Kernel } from '../../guest-kernel/kernel.js';
import { PG_reserved } from '../../guest-kernel/mm/page-alloc.js';
import { pgd_list_add } from '../../guest-kernel/mm/pgtable-common.js';
import { PGT_L1 } from '../../hypervisor/xen/frame-table.js';
import { MMUEXT_PIN_L1_TABLE, XenBackend } from '../../hypervisor/xen/index.js';
import { isLeak, leakedOf, leakText, type Accounts, type Leaked } from '../../tools/inject/accounts.js';
import { injectSweep } from '../../tools/inject/sweep.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig, type RunConfig } from '../../tools/workload/config.js';
import { parseScript } from '../../tools/workload/parser.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FILE = 'tests/tools/fixtures/inject-fork.pvw';

function load(over: Partial<RunConfig>): { script: ReturnType<typeof parseScript>; cfg: RunConfig } {
  const script = parseScript(FILE, readFileSync(ROOT + FILE, 'utf8'));
  const cfg = resolveConfig(FILE, script.machine, over);
  checkScript(script, cfg);
  return { script, cfg };
}

type Account = 'frames' | 'slabObjects' | 'pgdList' | 'pins' | 'typeRefs';
const TEXT: Record<Account, RegExp> = {
  frames: /^frames \+1$/,
  slabObjects: /^frames \+1, slab \+1 \(size-32 \+1\)$/,
  pgdList: /^pgd_list \+1$/,
  pins: /^pins \+1, type refs \+1$/,
  typeRefs: /^type refs \+1$/,
};

/** A reserved boot frame the kernel never frees (a boot pte page of swapper_pg_dir under Xen: typed L1). */
function bootPtePage(kernel: Kernel): number {
  const xen = kernel.ops as XenBackend;
  const k = kernel.k;
  for (let pfn = 0; pfn < k.pages.nrPages; pfn++) {
    if ((k.pages.flags[pfn]! & PG_reserved) === 0) continue;
    if (xen.domain.frames.typeOf(xen.domain.p2m.pfnToMfn(pfn)) === PGT_L1) return pfn;
  }
  throw new Error('no boot pte page');
}

/**
 * Leaks ACCOUNT alone once the injected failure happened: at the end of the
 * teardown (kmem_cache_shrink is its last step) the kernel keeps one more of it.
 */
function leaker(account: Account): (kernel: Kernel) => void {
  return (kernel) => {
    const real = kernel.shrinkCaches.bind(kernel);
    let done = false;
    kernel.shrinkCaches = () => {
      const n = real();
      if (done || kernel.injected === null) return n;
      done = true;
      const k = kernel.k;
      switch (account) {
        case 'frames':
          k.pages.alloc_pages(0, 0, 'leaked by the test kernel');
          break;
        case 'slabObjects':
          // A kmalloc-32 object. No cache has a live object after a clean
          // teardown, so the object holds its slab page: frames +1 as well
          // (slab alone is covered by the verdict tests below).
          k.slab.kmalloc(32, 'leaked by the test kernel');
          break;
        case 'pgdList':
          // A frame already held (swapper_pg_dir's) put on pgd_list and never taken off.
          pgd_list_add(k, k.swapper_pg_dir);
          break;
        case 'pins': {
          const xen = kernel.ops as XenBackend;
          const r = xen.hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: xen.domain.p2m.pfnToMfn(bootPtePage(kernel)) }]);
          if (r.rc !== 0) throw new Error(`pin: ${r.refusal?.reason}`);
          break;
        }
        case 'typeRefs': {
          const xen = kernel.ops as XenBackend;
          if (!xen.domain.frames.getPageType(xen.domain.p2m.pfnToMfn(bootPtePage(kernel)), PGT_L1)) throw new Error('get_page_type');
          break;
        }
      }
      return n;
    };
  };
}

const s = suite('inject: each account leaked alone is reported');

const ALL: Account[] = ['frames', 'slabObjects', 'pgdList', 'pins', 'typeRefs'];
for (const account of ALL) {
  const backends = account === 'pins' || account === 'typeRefs' ? (['xen'] as const) : (['native', 'xen'] as const);
  for (const backend of backends) {
    // Guards: isLeak / leakedOf ignoring this account.
    s(`${backend} PAE: a kernel that leaks only ${account} after the failure: a leak, named, nothing else`, () => {
      const { script, cfg } = load({ backend, pae: true });
      const r = injectSweep(script, cfg, { only: [1, 10], patchKernel: leaker(account) });
      assert.is(r.runs, 2);
      assert.is(r.leaks, 2, JSON.stringify(r.results.map((x) => [x.leaked, x.crash])));
      for (const x of r.results) {
        assert.ok(x.leaked !== null, `run ${x.failAt} torn down`);
        // A pin holds a type reference; a slab object holds its slab page.
        const also: Account | null = account === 'pins' ? 'typeRefs' : account === 'slabObjects' ? 'frames' : null;
        for (const a of ALL) assert.is(x.leaked![a], a === account || a === also ? 1 : 0, `${a} of run ${x.failAt}`);
        assert.match(leakText(x.leaked), TEXT[account]);
      }
      // The clean run (no failure injected) leaks nothing: the double acts only after a failure.
      assert.equal(r.clean.leaked, { frames: 0, slabObjects: 0, pgdList: 0, pins: 0, typeRefs: 0 });
    });
  }
}

// ---- the verdict on accounts that differ in one field ----

const v = suite('inject: the leak verdict, one account at a time');

const BASE: Accounts = {
  frames: 100,
  kernelPtePages: 2,
  slabObjects: 40,
  slabByCache: { pgd: 3, 'size-32': 7 },
  pgdList: 3,
  mms: 1,
  vmAreas: 0,
  pins: 4,
  typedFrames: 9,
  typeRefs: 12,
};

v('identical accounts: no leak, "none"', () => {
  const l = leakedOf({ ...BASE, slabByCache: { ...BASE.slabByCache } }, BASE);
  assert.is(isLeak(l), false);
  assert.is(leakText(l), 'none');
  assert.is(l.caches, undefined);
});

for (const [field, text] of [
  ['frames', 'frames +1'],
  ['pgdList', 'pgd_list +1'],
  ['pins', 'pins +1'],
  ['typeRefs', 'type refs +1'],
] as const) {
  // Guards: isLeak or leakedOf ignoring FIELD.
  v(`${field} alone differs: a leak, reported as "${text}"`, () => {
    const l = leakedOf({ ...BASE, [field]: BASE[field] + 1 }, BASE);
    assert.is(l[field as keyof Leaked], 1);
    assert.is(isLeak(l), true);
    assert.is(leakText(l), text);
    // And a negative difference (something freed twice) is one too.
    assert.is(isLeak(leakedOf({ ...BASE, [field]: BASE[field] - 1 }, BASE)), true);
  });
}

v('slab objects alone differ: a leak, with the cache named', () => {
  const l = leakedOf({ ...BASE, slabObjects: 41, slabByCache: { pgd: 4, 'size-32': 7 } }, BASE);
  assert.is(isLeak(l), true);
  assert.equal(l.caches, { pgd: 1 });
  assert.is(leakText(l), 'slab +1 (pgd +1)');
});

v('accounts outside the verdict (mms, vmAreas, typedFrames, kernel pte pages) do not make a leak', () => {
  const l = leakedOf({ ...BASE, mms: 2, vmAreas: 1, typedFrames: 10, kernelPtePages: 3 }, BASE);
  assert.is(isLeak(l), false);
});

s.run();
v.run();
