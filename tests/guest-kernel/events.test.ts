import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { KernelEvent } from '../../guest-kernel/kernel.js';
import { BACKENDS, boot, runs } from './helpers.js';

const s = suite('guest-kernel events');

for (const b of BACKENDS) {
  s(`${b.label}: faults, switches and process events reach the sink with their pid`, () => {
    const k = boot(b, { pae: runs(b, true), split: '3G' });
    const ev: KernelEvent[] = [];
    k.setEventSink((e) => ev.push(e));
    k.createProcess('a');
    k.mmap('a', 0x1000000, 8192, 'rw');
    k.userRead32('a', 0x1000000);
    k.userWrite32('a', 0x1000000, 1);
    k.fork('a', 'b');
    k.userWrite32('b', 0x1000000, 2);
    k.userRead32('b', 0x40000000);
    k.exit('b');
    const summary = ev.map((e) =>
      e.type === 'fault' ? `fault:${e.kind}:${e.pid}` : e.type === 'switch' ? `switch:${e.fromPid}->${e.toPid}` : `${e.op}:${e.name}:${e.pid}`,
    );
    assert.equal(summary, [
      'create:a:1',
      'switch:0->1',
      'fault:user:1',
      'fault:cow:1',
      'fork:b:2',
      'switch:1->2',
      'fault:cow:2',
      'fault:segv:2',
      'exit:b:2',
      'switch:2->0',
    ]);
    k.setEventSink(null);
    k.createProcess('c');
    assert.is(ev.length, summary.length, 'detached');
  });
}

s.run();
