/**
 * `pvmmu compare --backends a,b,…` and `--backend KIND`: any set of
 * registered backends, one column per backend with ratios to the first, one
 * JSON entry per backend; a backend that cannot run the configuration, an
 * unknown or repeated backend are input errors (exit 2) naming why.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = ROOT + 'dist/tools/cli.js';
const W = 'tests/tools/fixtures/inject-fork.pvw';
/** A workload with measures (the breakdown table needs one). */
const WM = 'tools/workloads/cow.pvw';

function pvmmu(...args: string[]): { status: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const s = suite('compare --backends');

s('four backends, 2-level: one column per backend with ratios to the first, equivalent', () => {
  const r = pvmmu('compare', WM, '--backends', 'native,xen,vmi,lguest', '--no-pae');
  assert.is(r.status, 0, r.err);
  assert.match(r.out, /measure\s+runs\s+native cycles\/run\s+xen cycles\/run\s+xen\/native\s+vmi cycles\/run\s+vmi\/native\s+lguest cycles\/run\s+lguest\/native/);
  assert.match(r.out, /cycles\/run by component\s+native\s+xen\s+vmi\s+lguest/);
  for (const b of ['native', 'xen', 'vmi', 'lguest']) assert.match(r.out, new RegExp(`\\n${b}: +walks \\d`));
  assert.match(r.out, /equivalent: the guest observed the same \d+ results on all 4 backends; invariants clean/);
});

s('the order given is the order shown; ratios are to the first', () => {
  const r = pvmmu('compare', W, '--backends', 'vmi,native', '--pae');
  assert.is(r.status, 0, r.err);
  assert.match(r.out, /measure\s+runs\s+vmi cycles\/run\s+native cycles\/run\s+native\/vmi/);
});

s('--json: the backends in order and one document per backend', () => {
  const r = pvmmu('compare', W, '--backends', 'native,vmi,lguest', '--no-pae', '--json');
  assert.is(r.status, 0, r.err);
  const doc = JSON.parse(r.out) as { workloads: Record<string, unknown>[] };
  const w = doc.workloads[0]!;
  assert.equal(w['backends'], ['native', 'vmi', 'lguest']);
  for (const b of ['native', 'vmi', 'lguest']) assert.is((w[b] as { config: { backend: string } }).config.backend, b);
  assert.is(w['equivalent'], true);
});

s('lguest with PAE is an input error naming the reason; so are unknown and repeated backends', () => {
  const a = pvmmu('compare', W, '--backends', 'native,lguest', '--pae');
  assert.is(a.status, 2);
  assert.match(a.err, /--pae \(compare runs it on lguest\): lguest \(Linux 2\.6\.23\) runs 2-level paging only/);
  assert.is(a.out, '');
  const b = pvmmu('compare', W, '--backends', 'native,kvm');
  assert.is(b.status, 2);
  assert.match(b.err, /--backends: unknown backend 'kvm' \(known: native, xen, vmi, lguest\)/);
  const c = pvmmu('compare', W, '--backends', 'xen,xen');
  assert.is(c.status, 2);
  assert.match(c.err, /--backends: backend 'xen' given twice/);
  const d = pvmmu('boot', W, '--backend', 'lguest');
  assert.is(d.status, 2);
  assert.match(d.err, /backend=lguest from --backend: lguest \(Linux 2\.6\.23\) runs 2-level paging only/);
  assert.not.match(a.err + b.err + c.err + d.err, /\n\s+at /, 'no stack trace');
});

s('boot --backend vmi and --backend lguest run', () => {
  for (const b of ['vmi', 'lguest']) {
    const r = pvmmu('boot', W, '--backend', b, '--no-pae');
    assert.is(r.status, 0, r.err);
    assert.match(r.out, new RegExp(`backend ${b}, 2-level`));
    assert.match(r.out, /ok: run completed, invariants clean/);
  }
});

s.run();
