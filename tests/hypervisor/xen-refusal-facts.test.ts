/**
 * Every refusal names the Xen 3.1.0 function that refused and, where the rule
 * concerns one, the page-table level and frame type (issue 11: a refusal
 * carries its full reason everywhere). Guards against a rule added to
 * reasons.ts without its place in Xen.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { R, XenRefusal, type LogLine } from '../../hypervisor/xen/reasons.js';

test('every rule of reasons.ts names its Xen function', () => {
  const builders = R as unknown as Record<string, (...a: unknown[]) => LogLine>;
  const lines: LogLine[] = [];
  for (const [name, b] of Object.entries(builders)) {
    if (name === 'allocFailure') for (const lv of [1, 2, 3]) lines.push(b(lv, 4));
    else lines.push(b(1, 2, 'l1', 4));
  }
  assert.ok(lines.length >= 30, `${lines.length} rules`);
  const unknown = lines.map((l) => new XenRefusal([l], 'test')).filter((r) => r.fn === 'unknown').map((r) => r.rule);
  assert.equal(unknown, []);
});

test('a refusal chain gives the level and the frame type', () => {
  const r = new XenRefusal([R.l3SlotShared(), R.allocFailure(3, 4), R.errorValidating(0x326, 0x326, 'l3'), R.errorPinning(0x326)], 'mmuext_op PIN_L3_TABLE', 0x326);
  assert.is(r.fn, 'create_pae_xen_mappings');
  assert.is(r.level, 3);
  assert.is(r.type, 'l3');
  const t = new XenRefusal([R.badType('l1', 'l2', 5, 5)], 'mmu_update');
  assert.is(t.fn, 'get_page_type');
  assert.is(t.type, 'l2');
  assert.is(t.level, 2);
});

test.run();
