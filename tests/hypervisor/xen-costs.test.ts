/**
 * The Xen cost table: every figure comes from the preset's documented
 * figures with its derivation, the hypercall round trip is the #PF round
 * trip, and the bounce applies the published 0.87/0.33 ratio.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PRESETS } from '../../emulator/cost-model.js';
import { xenCostTable, xenCosts } from '../../hypervisor/xen/index.js';

for (const [name, preset] of Object.entries(PRESETS)) {
  test(`${name}: every figure derived from the preset, with its derivation`, () => {
    const c = preset.cycles;
    const rows = xenCostTable(c);
    const x = xenCosts(c);
    assert.is(rows.length, Object.keys(x).length);
    for (const r of rows) {
      assert.ok(r.derivation.length > 20, `${r.name} has a derivation`);
      assert.ok(Number.isInteger(r.cycles) && r.cycles >= 0, `${r.name} cycles`);
    }
    assert.is(x.hypercall, c.pageFault);
    assert.match(rows.find((r) => r.name === 'hypercall')!.derivation, /^DERIVED: .*#PF round trip/);
    assert.is(x.bouncedFault, Math.round((c.pageFault * 0.87) / 0.33));
    assert.is(x.bounceExtra, x.bouncedFault - c.pageFault);
    assert.match(rows.find((r) => r.name === 'bouncedFault')!.derivation, /faster int 0x80 handling/);
    assert.is(x.entryRead, c.walkEntryMemory);
    assert.is(x.typeRef, c.adUpdate);
    assert.is(x.entryWrite, c.adUpdate);
    assert.is(x.ptwrTrap, c.pageFault);
    assert.match(rows.find((r) => r.name === 'ptwrDecode')!.derivation, /^GUESS/);
  });
}

test.run();
