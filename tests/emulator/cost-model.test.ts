import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_PRESET, getPreset, MmuCounters, PRESET_NAMES, PRESETS, SOURCE_TAGS, type TlbArray } from '../../emulator/cost-model.js';
import { Mmu } from '../../emulator/mmu.js';
import { Tlbs } from '../../emulator/tlb.js';

const ARRAYS = ['itlb4k', 'itlbLarge', 'dtlb4k', 'dtlbLarge', 'l2tlb4k', 'l2tlbLarge'] as const;

test('at least three presets, each under its own name, the default among them', () => {
  assert.ok(PRESET_NAMES.length >= 3);
  for (const name of ['p6', 'core2', 'nehalem']) assert.ok(PRESET_NAMES.includes(name), name);
  for (const name of PRESET_NAMES) assert.is(PRESETS[name]!.name, name);
  assert.ok(PRESET_NAMES.includes(DEFAULT_PRESET));
  assert.is(new Mmu().preset.name, DEFAULT_PRESET);
});

test('every cycle figure has a non-empty source, and is a finite non-negative number', () => {
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name]!;
    const figures = Object.entries(p.cycles);
    assert.ok(figures.length >= 10, `${name}: all figures present`);
    for (const [k, v] of figures) {
      assert.ok(Number.isFinite(v) && v >= 0, `${name}.${k} = ${v}`);
      const src = p.sources[k];
      assert.type(src, 'string', `${name}: no source for ${k}`);
      assert.ok(src!.trim().length > 10, `${name}: source of ${k} is empty`);
    }
  }
});

test('every TLB array and the walk cache have a source', () => {
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name]!;
    assert.ok((p.sources['tlb'] ?? '').trim().length > 10, `${name}: TLB geometry source`);
    assert.ok((p.sources['walkCache'] ?? '').trim().length > 10, `${name}: walk cache source`);
    for (const a of ARRAYS) {
      const arr: TlbArray = p[a];
      // an array with entries must be covered by the geometry source (it names the sizes)
      if (arr.entries > 0) assert.ok(p.sources['tlb']!.includes(String(arr.entries)) || /CPUID/.test(p.sources['tlb']!), `${name}.${a}`);
    }
  }
});

test('TLB geometry divides into sets and builds', () => {
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name]!;
    for (const a of ARRAYS) {
      const { entries, ways } = p[a];
      assert.ok(Number.isInteger(entries) && entries >= 0, `${name}.${a}.entries`);
      if (entries > 0) {
        assert.ok(ways >= 1 && ways <= entries, `${name}.${a}.ways`);
        assert.is(entries % ways, 0, `${name}.${a}: ${entries} entries in ${ways}-way sets`);
      }
    }
    assert.ok(p.dtlb4k.entries > 0 && p.itlb4k.entries > 0, `${name}: first-level TLBs exist`);
    assert.ok(p.walkCacheLines > 0);
    const t = new Tlbs(p, p.l2Unified);
    assert.is(t.dtlb.size, p.dtlb4k.entries + p.dtlbLarge.entries);
    assert.is(t.l2.size, p.l2tlb4k.entries + p.l2tlbLarge.entries);
  }
});

test('every preset figure carries a source tag: a citation, or GUESS/DERIVED/CALIBRATED/MODELLING CHOICE', () => {
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name]!;
    for (const k of [...Object.keys(p.cycles), 'tlb', 'walkCache', 'clockMhz']) {
      const src = (p.sources[k] ?? '').trim();
      const tagged = SOURCE_TAGS.some((t) => src.startsWith(t));
      // A citation names where the figure comes from: a manual, a measurement, a kernel file, a paper.
      const cited = /Manual|manual|reviews citing Intel|lmbench|Linux|CPUID|Agner|linux-kernel|Riccardi|measurement|P6|no second-level/.test(src);
      assert.ok(tagged || cited, `${name}.${k}: "${src}" is neither tagged nor cited`);
      if (/guess/i.test(src) && !src.startsWith('GUESS')) assert.ok(/GUESS/.test(src), `${name}.${k}: a guess says GUESS`);
    }
  }
});

test('each preset names its clock, and the era #PF figure is not the Haswell 710', () => {
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name]!;
    assert.ok(p.clockMhz >= 100 && p.clockMhz <= 5000, `${name}: clock ${p.clockMhz} MHz`);
    assert.is.not(p.cycles.pageFault, 710, name);
    assert.is(p.cycles.pageFault, p.cycles.syscall, `${name}: #PF round trip derived from the int $0x80 round trip`);
  }
});

test('getPreset refuses an unknown name and lists the known ones', () => {
  assert.is(getPreset('nehalem'), PRESETS['nehalem']);
  assert.throws(() => getPreset('pentium5'), (e: Error) => e.message.includes('pentium5') && e.message.includes('core2'));
});

test('MmuCounters.walks sums walks of every depth', () => {
  const c = new MmuCounters();
  c.walksByDepth[1] = 2;
  c.walksByDepth[2] = 5;
  c.walksByDepth[3] = 1;
  assert.is(c.walks, 8);
});

test.run();
