import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PhysMem } from '../../emulator/phys-mem.js';

test('unwritten memory reads as zero and costs no frame', () => {
  const m = new PhysMem();
  assert.is(m.read32(0x12345678), 0);
  assert.is(m.read64(0xf_ffff_fff8), 0n);
  assert.is(m.framesTouched, 0);
});

test('little-endian byte, 32-bit and 64-bit access agree', () => {
  const m = new PhysMem();
  m.write32(0x1000, 0x11223344);
  assert.is(m.read8(0x1000), 0x44);
  assert.is(m.read8(0x1003), 0x11);
  m.write64(0x2000, 0x8000000f_deadbeefn);
  assert.is(m.read32(0x2000), 0xdeadbeef);
  assert.is(m.read32(0x2004), 0x8000000f);
  assert.is(m.read64(0x2000), 0x8000000f_deadbeefn);
  m.write32(0x3002, 0xaabbccdd); // unaligned, crosses nothing
  assert.is(m.read32(0x3002), 0xaabbccdd);
  assert.is(m.read8(0x3002), 0xdd);
});

test('addresses above 4 GiB up to the 36-bit limit are distinct frames', () => {
  const m = new PhysMem();
  m.write32(0x1000, 1);
  m.write32(0x1_0000_1000, 2);
  m.write32(0xf_ffff_f000, 3);
  assert.is(m.read32(0x1000), 1);
  assert.is(m.read32(0x1_0000_1000), 2);
  assert.is(m.read32(0xf_ffff_f000), 3);
  assert.is(m.framesTouched, 3);
});

test('writes beyond MAXPHYADDR are refused', () => {
  const m = new PhysMem();
  assert.throws(() => m.write32(2 ** 36, 1), /36-bit/);
  assert.throws(() => m.write64(2 ** 36 - 4, 1n), /36-bit/);
});

test('discard returns a frame to zero and host memory', () => {
  const m = new PhysMem();
  m.write32(0x5000, 7);
  m.discard(5);
  assert.is(m.read32(0x5000), 0);
  assert.is(m.framesTouched, 0);
});

test.run();
