/**
 * The layering rules of docs/architecture.md, checked on the sources:
 * emulator/ imports nothing above it; hypervisor/ only the emulator and
 * itself; guest-kernel/ only itself, the paravirt interface (paravirt-ops,
 * types, stats), the architectural constants of emulator/paging-bits and
 * the one hex formatter, emulator/hex.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!).filter((s) => s.startsWith('.'));
}

function violations(layer: string, allowed: (target: string) => boolean): string[] {
  const out: string[] = [];
  for (const f of sources(layer)) {
    for (const spec of imports(f)) {
      const target = normalize(join(dirname(f), spec));
      if (!allowed(target)) out.push(`${f} imports ${spec}`);
    }
  }
  return out;
}

test('emulator/ imports nothing above it', () => {
  assert.equal(violations('emulator', (t) => t.startsWith('emulator/')), []);
});

test('hypervisor/ imports only the emulator and itself', () => {
  assert.equal(violations('hypervisor', (t) => t.startsWith('emulator/') || t.startsWith('hypervisor/')), []);
});

test('guest-kernel/ reaches hardware only through the paravirt interface', () => {
  const ok = (t: string) =>
    t.startsWith('guest-kernel/') ||
    ['hypervisor/paravirt-ops.js', 'hypervisor/types.js', 'hypervisor/stats.js', 'emulator/paging-bits.js', 'emulator/hex.js'].includes(t);
  assert.equal(violations('guest-kernel', ok), []);
});

/** The guest port of hypervisor/xen (Linux 2.6.23 arch/i386/xen) and what it may import of the hypervisor. */
const GUEST_PORT = ['mmu.ts', 'multicalls.ts', 'direct-map.ts'].map((f) => `hypervisor/xen/${f}`);
const PORT_MAY_IMPORT = ['abi', 'domain', 'hypercalls', 'multicalls', 'p2m', 'reasons', 'stats', 'direct-map', 'mmu'].map(
  (f) => `hypervisor/xen/${f}.js`,
);

test('the Xen guest port reaches the hypervisor only through hypercalls, the p2m and the read-only view (issue 10)', () => {
  const out: string[] = [];
  for (const f of GUEST_PORT) {
    for (const spec of imports(f)) {
      const t = normalize(join(dirname(f), spec));
      if (t.startsWith('hypervisor/xen/') && !PORT_MAY_IMPORT.includes(t)) out.push(`${f} imports ${spec}`);
    }
    const src = readFileSync(f, 'utf8');
    // The domain is imported for its MachineView type only: no frame table, no machine memory, no MMU.
    for (const bad of ['.frames', '.mmu.', 'frameW(', 'setWord(', '.rules.']) if (src.includes(bad)) out.push(`${f} uses ${bad}`);
  }
  assert.equal(out, []);
});

test("the hypervisor's invariant checker does not import the guest port", () => {
  const port = ['enlighten', 'mmu', 'multicalls', 'direct-map', 'xen-backend'].map((f) => `hypervisor/xen/${f}.js`);
  const bad = imports('hypervisor/xen/invariants.ts').filter((s) => port.includes(normalize(join('hypervisor/xen', s))));
  assert.equal(bad, []);
});

test('the check sees imports (it can fail)', () => {
  assert.ok(imports('guest-kernel/kernel.ts').some((s) => s.includes('paravirt-ops')));
  assert.ok(violations('tools', (t) => t.startsWith('tools/')).length > 0, 'tools import the layers below');
});

test.run();
