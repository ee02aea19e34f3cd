/**
 * The backend handle and registry: every registered kind is created through
 * createBackend, runs the shared backend suite through its handle's ops, and
 * answers the handle's questions (machine, machine address, invariants,
 * held accounts); a kind that cannot run a configuration says why.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_READ } from '../../emulator/paging-bits.js';
import { BACKEND_KINDS, backendKind, createBackend, isBackendKind, isKind } from '../../hypervisor/backend.js';
import type { MachineConfig } from '../../hypervisor/paravirt-ops.js';

const cfg = (pae: boolean): MachineConfig => ({ pae, memBytes: 32 << 20, cpu: 'core2', pageOffset: 0xc0000000, seed: 3 });

const s = suite('backend registry');

s('the registered kinds', () => {
  assert.equal([...BACKEND_KINDS], ['native', 'xen', 'vmi', 'lguest']);
  assert.ok(isBackendKind('vmi'));
  assert.not.ok(isBackendKind('kvm'));
  for (const k of BACKEND_KINDS) assert.is(backendKind(k).kind, k);
});

s('lguest refuses PAE, naming the reason; the others run both modes', () => {
  assert.match(backendKind('lguest').unsupported({ pae: true, memBytes: 32 << 20 }) ?? '', /2-level paging only/);
  assert.throws(() => createBackend('lguest', cfg(true)), /2-level paging only/);
  for (const k of ['native', 'xen', 'vmi'] as const) assert.is(backendKind(k).unsupported({ pae: true, memBytes: 32 << 20 }), null);
});

for (const kind of BACKEND_KINDS) {
  for (const pae of kind === 'lguest' ? [false] : [true, false]) {
    s(`${kind} ${pae ? 'PAE' : '2-level'}: the handle`, () => {
      const b = createBackend(kind, cfg(pae));
      assert.is(b.kind, kind);
      assert.is(b.ops.config.pae, pae);
      assert.is(b.stats, b.ops.stats);
      assert.equal(b.checkInvariants(), []);
      assert.equal(b.held(new Set()), { pins: 0, pageTables: 0, typeRefs: 0 });
      // Guest frame 5's machine address: identity except under Xen's p2m.
      const ma = b.machineAddress(5 * 4096 + 12);
      if (kind === 'xen') assert.ok(ma >= 0 && ma % 4096 === 12);
      else assert.is(ma, 5 * 4096 + 12);
      // The machine is the processor the ops drive: before paging, an access is physical.
      const cycles = b.machine.cycles;
      b.ops.access(0x1000, ACCESS_READ, false);
      assert.ok(b.machine.cycles >= cycles);
    });
  }
}

s('a shuffled Xen p2m moves machine addresses', () => {
  const b = createBackend('xen', cfg(true), { xenP2m: 'shuffled' });
  let moved = 0;
  for (let pfn = 0; pfn < 64; pfn++) if (b.machineAddress(pfn * 4096) !== pfn * 4096) moved++;
  assert.ok(moved > 0);
});

s('isKind narrows to the typed extension', () => {
  const b = createBackend('vmi', cfg(true));
  assert.ok(isKind(b, 'vmi'));
  if (isKind(b, 'vmi')) assert.is(b.ext.backend.monitor.unbalancedReleases.length, 0);
  assert.not.ok(isKind(b, 'xen'));
});

s('VMI holds its announced page tables until released', () => {
  const b = createBackend('vmi', cfg(false));
  b.ops.alloc_pt(9);
  b.ops.alloc_pd(10);
  assert.is(b.held(new Set()).pageTables, 2);
  assert.is(b.held(new Set()).typeRefs, 2);
  assert.is(b.held(new Set([9])).pageTables, 1);
  b.ops.release_pt(9);
  assert.is(b.held(new Set()).pageTables, 1);
});

s.run();
