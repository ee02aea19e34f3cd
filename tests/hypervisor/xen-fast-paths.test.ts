/**
 * The host-side shortcuts the fork/exit pte loops use (ParavirtOps
 * pte_val_pfn / set_pte_at_words, GuestMemory.read32s, Xen's zeroPrefix)
 * give exactly what the plain operations give: same values, same memory,
 * same modelled cycles.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createNativeBackend } from '../../hypervisor/native.js';
import type { MachineConfig, MmHandle, ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { pteFromWords, type GuestPhys } from '../../hypervisor/types.js';
import { createXenBackend } from '../../hypervisor/xen/index.js';
import { zeroPrefix } from '../../hypervisor/xen/zero-scan.js';

const cfg = (pae: boolean): MachineConfig => ({ pae, memBytes: 8 << 20, cpu: 'core2', pageOffset: 0xc0000000, seed: 7 });
const MM = { pgd: 0 } as unknown as MmHandle;

const zs = suite('zeroPrefix');
zs('an all-zero range, a set word inside or outside the range', () => {
  const f = new Int32Array(1024);
  assert.ok(zeroPrefix(f, 1024));
  assert.ok(zeroPrefix(f, 0));
  f[700] = 0x80000000 | 0;
  assert.not.ok(zeroPrefix(f, 1024));
  assert.not.ok(zeroPrefix(f, 701));
  assert.ok(zeroPrefix(f, 700));
  f[700] = 0;
  f[0] = 1;
  assert.not.ok(zeroPrefix(f, 1));
  f[0] = 0;
  f[511] = 4;
  assert.not.ok(zeroPrefix(f, 512));
  assert.ok(zeroPrefix(f, 511));
});
zs.run();

const pv = suite('pte_val_pfn');
pv('Xen: the frame of pte_val of the entry, for present, absent, foreign and high-bit entries', () => {
  for (const pae of [true, false]) {
    const b = createXenBackend(cfg(pae));
    const p2m = b.domain.p2m;
    const words: [number, number][] = [
      [0, 0],
      [0x1000, 0], // not present: the frame as is
      [0xfffff000 | 0, 0],
    ];
    for (const pfn of [0, 1, 5, 100, p2m.nrPages - 1]) {
      const m = p2m.pfnToMfn(pfn);
      words.push([(m << 12) | 0x67, 0], [(m << 12) | 0x65, pae ? 0x80000000 | 0 : 0]);
    }
    words.push([0x7ff00067, 0], [0x00001067, pae ? 0xf : 0]); // frames the guest does not own
    for (const [lo, hi] of words) {
      const v = pteFromWords(lo, hi);
      const want = Number((b.pte_val(v) >> 12n) & 0xffffffn);
      assert.is(b.pte_val_pfn(lo, hi), want, `pae ${pae}: ${hi.toString(16)}:${lo.toString(16)}`);
    }
  }
});
pv.run();

const rs = suite('read32s');
function fillPage(ops: ParavirtOps, pfn: number): void {
  for (let i = 0; i < 1024; i++) ops.mem.write32(pfn * 4096 + 4 * i, (Math.imul(i + 1, 0x9e3779b1) ^ pfn) >>> 0);
}
rs('Xen and native: the same words as read32, within a page and across one', () => {
  for (const ops of [createXenBackend(cfg(true)), createNativeBackend(cfg(true)), createXenBackend(cfg(false))]) {
    fillPage(ops, 40);
    fillPage(ops, 41);
    const out = new Uint32Array(1024);
    for (const [addr, words] of [
      [40 * 4096, 1024],
      [40 * 4096 + 8 * 72, 512],
      [40 * 4096 + 4000, 50], // crosses into pfn 41
      [50 * 4096, 16], // never written
    ] as const) {
      out.fill(0xdead);
      ops.mem.read32s!(addr, out, words);
      for (let i = 0; i < words; i++) assert.is(out[i], ops.mem.read32(addr + 4 * i), `${ops.name} 0x${addr.toString(16)} word ${i}`);
      assert.is(out[words] ?? 0xdead, 0xdead, 'nothing written past `words`');
    }
  }
});
rs.run();

const sw = suite('set_pte_at_words');
sw('Xen: the same entry and the same cycles as set_pte_at into a frame that is not a page table', () => {
  for (const pae of [true, false]) {
    const a = createXenBackend(cfg(pae));
    const b = createXenBackend(cfg(pae));
    const es = pae ? 8 : 4;
    const c0a = a.stats.cycles;
    const c0b = b.stats.cycles;
    for (const [i, lo, hi] of [
      [0, 0x00042065, 0],
      [3, 0xfffff067 | 0, pae ? 0x80000001 | 0 : 0],
      [7, 0, 0],
    ] as const) {
      const p = (60 * 4096 + i * es) as GuestPhys;
      a.set_pte_at(MM, 0, p, pteFromWords(lo, hi));
      b.set_pte_at_words(MM, 0, p, lo, hi);
      assert.is(b.mem.read32(p), a.mem.read32(p));
      if (pae) assert.is(b.mem.read32(p + 4), a.mem.read32(p + 4));
      assert.is(b.mem.read32(p), lo >>> 0);
    }
    assert.is(b.stats.cycles - c0b, a.stats.cycles - c0a);
  }
});
sw.run();
