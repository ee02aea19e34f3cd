import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createNativeBackend } from '../../../hypervisor/native.js';
import { GFP_KERNEL, GFP_HIGHUSER, PageAllocator } from '../../../guest-kernel/mm/page-alloc.js';
import { SlabAllocator } from '../../../guest-kernel/mm/slab.js';

const s = suite('guest-kernel page allocator and slab');

function mk(pages = 4096, low = 3072): PageAllocator {
  const ops = createNativeBackend({ pae: true, memBytes: pages * 4096, cpu: 'core2', pageOffset: 0xc0000000 });
  const a = new PageAllocator(ops.mem, pages, low);
  a.freeBootmem(0, pages, (pfn) => pfn < 16);
  return a;
}

s('buddy: split, merge back to the starting free lists; accounting', () => {
  const a = mk();
  assert.is(a.free + a.used, 4096);
  assert.is(a.reserved, 16);
  const free0 = a.free;
  const x = a.alloc_pages(GFP_KERNEL, 0, 't');
  const y = a.alloc_pages(GFP_KERNEL, 3, 't');
  const z = a.alloc_pages(GFP_HIGHUSER, 0, 't');
  assert.ok(x >= 16 && x < 3072 && y % 8 === 0 && z >= 3072, `${x} ${y} ${z}`);
  assert.is(a.free, free0 - 10);
  assert.is(a.audit(), null);
  a.free_page(x);
  a.__free_pages(y, 3);
  a.free_page(z);
  assert.is(a.free, free0);
  assert.is(a.audit(), null);
  // Everything merged: an order-10 block is available again in lowmem.
  assert.ok(a.alloc_pages(GFP_KERNEL, 10, 't') >= 0);
});

s('failAt(k) fails exactly the k-th allocation and counts', () => {
  const a = mk();
  a.failAt(3);
  assert.ok(a.alloc_pages(GFP_KERNEL, 0, 'one') >= 0);
  assert.ok(a.alloc_pages(GFP_KERNEL, 0, 'two') >= 0);
  assert.is(a.alloc_pages(GFP_KERNEL, 0, 'three'), -1);
  assert.equal(a.lastInjected, { k: 3, site: 'three' });
  assert.ok(a.alloc_pages(GFP_KERNEL, 0, 'four') >= 0);
  assert.is(a.allocations, 4);
});

s('reference counts: a page shared by two users is freed by the last put', () => {
  const a = mk();
  const p = a.alloc_pages(GFP_KERNEL, 0, 't');
  a.get_page(p);
  a.put_page(p);
  assert.is(a.isFree(p), false);
  a.put_page(p);
  assert.is(a.isFree(p), true);
});

s('slab: constructor once per object at slab creation, destructor at slab destruction', () => {
  const a = mk();
  const ops = createNativeBackend({ pae: true, memBytes: 4096 * 4096, cpu: 'core2', pageOffset: 0xc0000000 });
  const sl = new SlabAllocator(a, ops.mem);
  const made: number[] = [];
  const gone: number[] = [];
  const c = sl.kmem_cache_create('t', 4096, 4096, (o) => made.push(o), (o) => gone.push(o));
  const o1 = c.alloc(GFP_KERNEL, 't');
  assert.equal(made, [o1]);
  assert.is(o1 % 4096, 0, 'page-sized objects are page aligned');
  c.free(o1);
  const o2 = c.alloc(GFP_KERNEL, 't');
  assert.is(o2, o1, 'the constructed object comes back');
  assert.is(made.length, 1, 'no constructor on reuse');
  c.free(o2);
  assert.is(gone.length, 0, 'free objects stay constructed');
  assert.is(c.shrink(), 1);
  assert.equal(gone, [o1]);
  // Small objects share a page with the slab management: not at offset 0.
  const small = sl.kmem_cache_create('pgd32', 32, 32, null, null);
  const p = small.alloc(GFP_KERNEL, 't');
  assert.ok(p % 4096 !== 0 && p % 32 === 0);
  assert.ok(small.num > 100);
  // A slab allocation fails when its page allocation is injected to fail.
  a.failAt(2);
  const big = sl.kmem_cache_create('big', 2048, 32, null, null);
  assert.is(big.alloc(GFP_KERNEL, 't'), 0);
  assert.match(a.lastInjected!.site, /cache_grow\(big\)/);
  assert.is(big.liveObjects, 0);
});

s('the incremental audit (per-chunk recount of the chunks written since) equals the full one after every operation, and finds a miscount', () => {
  const a = mk();
  let x = 12345;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  const held: { pfn: number; order: number }[] = [];
  assert.is(a.audit({ incremental: true }), a.audit());
  for (let i = 0; i < 400; i++) {
    if (held.length > 0 && rnd(3) === 0) {
      const { pfn, order } = held.splice(rnd(held.length), 1)[0]!;
      a.__free_pages(pfn, order);
    } else {
      const order = rnd(4);
      const pfn = a.alloc_pages(rnd(2) === 0 ? GFP_KERNEL : GFP_HIGHUSER, order, 't');
      if (pfn >= 0) held.push({ pfn, order });
    }
    if (i % 7 === 0) a.alloc_bootmem_low_pages();
    assert.is(a.audit({ incremental: true }), a.audit(), `operation ${i}`);
  }
  assert.is(a.audit({ incremental: true }), null);
  // A counter that disagrees with the block map: both recounts see it.
  (a as unknown as { allocated: number }).allocated++;
  assert.match(a.audit({ incremental: true }) ?? '', /allocated blocks cover/);
  assert.is(a.audit({ incremental: true }), a.audit());
});

s.run();
