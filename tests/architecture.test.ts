/**
 * The layering rules of docs/architecture.md, checked on the sources:
 * emulator/ imports nothing above it; hypervisor/ only the emulator and
 * itself; guest-kernel/ only itself, the paravirt interface (paravirt-ops,
 * types, stats), the architectural constants of emulator/paging-bits and
 * the one hex formatter, emulator/hex. Outside hypervisor/, a backend is
 * used only through its typed handle (hypervisor/backend.ts): no instanceof
 * of a backend class, no cast into a backend's internals, no overwriting of
 * a processor's or the interpreter's methods.
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

/** Backend classes (every `export class …Backend` of hypervisor/). */
function backendClasses(): string[] {
  return sources('hypervisor').flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/export class (\w+Backend)\b/g)].map((m) => m[1]!));
}

/** Names of a backend's internals a cast would reach for. */
const INTERNALS = /\b(domain|mmu|monitor|engine|hv|p2m|frames|vcpu)\??\s*:/;

/** Lines outside hypervisor/ (tools, guest kernel, tests other than tests/hypervisor) that break the handle rule. */
function handleViolations(files: string[]): string[] {
  const classes = backendClasses();
  const inst = new RegExp(`\\binstanceof\\s+(${classes.join('|')})\\b`);
  const out: string[] = [];
  for (const f of files) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const at = `${f}:${i + 1}`;
        if (inst.test(line)) out.push(`${at}: instanceof a backend class: ${line.trim()}`);
        const cast = /\bas unknown as\s*\{(.*)/.exec(line);
        if (cast && INTERNALS.test(cast[1]!)) out.push(`${at}: cast into a backend's internals: ${line.trim()}`);
        if (/\bas \{\s*(translate|exec)\s*:/.test(line) || /\.(exec|translate)\s*=\s*function\b/.test(line)) out.push(`${at}: overwrites a method: ${line.trim()}`);
      });
  }
  return out;
}

test('outside hypervisor/ backends are used through their handle: no instanceof, no casts into internals, no patched methods', () => {
  assert.ok(backendClasses().length >= 4, `backend classes found: ${backendClasses().join(', ')}`);
  const files = [...sources('tools'), ...sources('guest-kernel')];
  assert.equal(handleViolations(files), []);
});

test('the handle rule can fail', () => {
  const v = handleViolations(['tests/architecture-fixtures/bad-handle.ts.txt']);
  assert.is(v.length, 3, v.join('\n'));
});

// Issue 14, gap 7: a hook that throws inside uvu's own suite is dropped
// silently; test files with hooks use tests/harness.ts, whose hooks run
// inside each test (a throwing hook is a named failure).
test('test files with hooks use the harness suite, not uvu\'s', () => {
  const hooked = sources('tests').filter((f) => /\.(after|before)(\.each)?\(/.test(readFileSync(f, 'utf8')));
  assert.ok(hooked.length > 0, 'the check sees hooks (it can fail)');
  const raw = hooked.filter((f) => /import\s*\{[^}]*\b(suite|test)\b[^}]*\}\s*from\s*'uvu'/.test(readFileSync(f, 'utf8')));
  assert.equal(raw, []);
});

test.run();
