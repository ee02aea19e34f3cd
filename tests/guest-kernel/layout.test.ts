import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { computeLayout } from '../../guest-kernel/layout.js';

const s = suite('guest-kernel layout');

s('3G split, 2-level, 256 MiB, no reserved top: the classic numbers', () => {
  const L = computeLayout({ pae: false, split: '3G', memBytes: 256 << 20, reservedTop: 0 });
  assert.is(L.PAGE_OFFSET, 0xc0000000);
  assert.is(L.MAXMEM, 896 << 20);
  assert.is(L.USER_PTRS_PER_PGD, 768);
  assert.is(L.KERNEL_PGD_PTRS, 256);
  assert.is(L.high_memory, 0xd0000000);
  assert.is(L.VMALLOC_START, 0xd0800000);
  assert.is(L.FIXADDR_TOP, 0xfffff000);
  assert.is(L.PKMAP_BASE, 0xff800000);
  assert.is(L.VMALLOC_END, 0xff7fe000);
});

s('PAE: 4 pgd entries, 2 MiB pmds, pkmap aligned to PMD_SIZE', () => {
  const L = computeLayout({ pae: true, split: '3G', memBytes: 256 << 20, reservedTop: 0 });
  assert.is(L.PTRS_PER_PGD, 4);
  assert.is(L.PTRS_PER_PMD, 512);
  assert.is(L.USER_PTRS_PER_PGD, 3);
  assert.is(L.PKMAP_BASE, 0xffc00000);
  assert.is(L.VMALLOC_END, 0xffbfe000);
});

s('2G / 1G splits give 2 / 3 kernel pmds under PAE', () => {
  assert.is(computeLayout({ pae: true, split: '2G', memBytes: 64 << 20, reservedTop: 0 }).KERNEL_PGD_PTRS, 2);
  assert.is(computeLayout({ pae: true, split: '1G', memBytes: 64 << 20, reservedTop: 0 }).KERNEL_PGD_PTRS, 3);
});

s('reserve_top_address lowers FIXADDR_TOP and grows the vmalloc reserve (lowmem shrinks)', () => {
  const reserve = 0x0a800000 + 8192; // Xen PAE hole plus two pages
  const L = computeLayout({ pae: true, split: '3G', memBytes: 1 << 30, reservedTop: reserve });
  assert.is(L.FIXADDR_TOP, 0x1_0000_0000 - reserve - 4096);
  assert.is(L.MAXMEM, (1 << 30) - (128 << 20) - reserve);
  assert.ok(L.max_low_pfn < L.max_pfn, 'highmem exists');
  assert.ok(L.VMALLOC_END < L.HYPERVISOR_START);
});

s.run();
