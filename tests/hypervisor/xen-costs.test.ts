/**
 * The Xen cost table: every figure comes from the preset's documented
 * figures with its derivation, the hypercall round trip is the #PF round
 * trip, the bounce is Xen's own work (guest walk + bounce frame), scans are
 * charged per cache line streamed, and no Xen measurement is charged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PRESETS } from '../../emulator/cost-model.js';
import { xenCostTable, xenCosts } from '../../hypervisor/xen/index.js';
import { BOUNCE_FRAME_GUESS } from '../../hypervisor/xen/costs.js';

for (const [name, preset] of Object.entries(PRESETS)) {
  for (const pae of [true, false]) test(`${name} ${pae ? 'PAE' : '2-level'}: every figure derived from the preset, with its derivation`, () => {
    const c = preset.cycles;
    const rows = xenCostTable(c, pae);
    const x = xenCosts(c, pae);
    assert.is(rows.length, Object.keys(x).length);
    for (const r of rows) {
      assert.ok(r.derivation.length > 20, `${r.name} has a derivation`);
      assert.ok(Number.isInteger(r.cycles) && r.cycles >= 0, `${r.name} cycles`);
    }
    assert.is(x.hypercall, c.pageFault);
    assert.match(rows.find((r) => r.name === 'hypercall')!.derivation, /^DERIVED: .*#PF round trip/);
    const levels = pae ? 3 : 2;
    assert.is(x.bounceExtra, levels * c.walkEntryMemory + BOUNCE_FRAME_GUESS);
    assert.is(x.bouncedFault, c.pageFault + x.bounceExtra);
    for (const r of rows) assert.not.match(r.derivation, /0\.87|0\.33/, `${r.name}: no Xen measurement charged`);
    assert.is(x.scanLine, c.walkEntryMemory);
    assert.is(x.entryCheck, c.walkEntryCached);
    assert.ok(x.ptwrDecode >= 150 + levels * c.walkEntryMemory, 'decode: hundreds of cycles');
    assert.is(x.entryRead, c.walkEntryMemory);
    assert.is(x.typeRef, c.adUpdate);
    assert.is(x.entryWrite, c.adUpdate);
    assert.is(x.ptwrTrap, c.pageFault);
    assert.match(rows.find((r) => r.name === 'ptwrDecode')!.derivation, /^GUESS/);
  });
}

test.run();
