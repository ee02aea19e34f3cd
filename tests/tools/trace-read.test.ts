/**
 * The streaming trace reader (tools/trace/read.ts) against JSON.parse: any
 * layout of a valid trace (pretty, one line, random whitespace) cut into
 * chunks anywhere (inside strings, escapes, multi-byte characters, numbers)
 * gives the same events; invalid ones are refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../tools/input-error.js';
import { TraceParser, type TraceEvent } from '../../tools/trace/read.js';

let seed = 12345;
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
};

function parseChunked(text: string, maxChunk: number): { events: TraceEvent[]; other: Record<string, unknown> } {
  const events: TraceEvent[] = [];
  const p = new TraceParser('t.json', (e) => events.push(e));
  const buf = Buffer.from(text, 'utf8');
  for (let i = 0; i < buf.length; ) {
    const n = 1 + Math.floor(rnd() * maxChunk);
    p.feed(buf.subarray(i, i + n));
    i += n;
  }
  return { events, other: p.end().other };
}

function randomTrace(): { traceEvents: unknown[]; otherData: unknown } {
  const names = ['walk', 'walk #PF', 'fork', 'µs "quoted" \\ back', 'ünïcödé ✓ 𝄞', '{[,]}'];
  const events = Array.from({ length: 1 + Math.floor(rnd() * 30) }, (_, i) => ({
    name: names[Math.floor(rnd() * names.length)],
    ph: rnd() < 0.5 ? 'X' : 'i',
    ts: Math.floor(rnd() * 1e9),
    dur: rnd() < 0.5 ? Math.floor(rnd() * 1000) : 0.5,
    pid: i % 3,
    args: { va: '0x' + Math.floor(rnd() * 2 ** 32).toString(16), list: [1, 2, { x: -1.5e3 }], nested: { s: 'a,b]c}' } },
  }));
  return { otherData: { backend: 'xen', n: 1e-7, t: true, z: null }, traceEvents: events };
}

function reflow(doc: unknown): string {
  const compact = JSON.stringify(doc);
  const pick = rnd();
  if (pick < 0.3) return compact;
  if (pick < 0.6) return JSON.stringify(doc, null, Math.floor(rnd() * 4) + 1);
  // Random whitespace between tokens (outside strings).
  let out = '';
  let inStr = false;
  let esc = false;
  for (const ch of compact) {
    out += ch;
    if (inStr) {
      if (esc) esc = false;
      else if (ch === '\\') esc = true;
      else if (ch === '"') inStr = false;
    } else if (ch === '"') inStr = true;
    else if ('{}[],:'.includes(ch) && rnd() < 0.5) out += [' ', '\n', '\t', '\r\n'][Math.floor(rnd() * 4)];
  }
  return out;
}

test('any layout, cut anywhere, reads as JSON.parse reads it', () => {
  for (let k = 0; k < 300; k++) {
    const doc = randomTrace();
    const text = reflow(doc);
    const want = JSON.parse(text) as { traceEvents: unknown[]; otherData: unknown };
    const got = parseChunked(text, 1 + Math.floor(rnd() * 40));
    assert.equal(got.events, want.traceEvents, `case ${k}`);
    assert.equal(got.other['otherData'], want.otherData);
  }
});

test('the array form, with or without its closing ]', () => {
  const events = randomTrace().traceEvents;
  const text = JSON.stringify(events);
  assert.equal(parseChunked(text, 7).events, events);
  assert.equal(parseChunked(text.slice(0, -1), 7).events, events);
});

test('what the format does not allow is refused, however it is cut', () => {
  const bad = [
    '{"traceEvents":[{"ph":"X","ts":1,"dur":1},]}',
    '{"traceEvents":[{"ph":"X","ts":1,"dur":1,}]}',
    '{"traceEvents":[{"ph":"X","ts":"1"}]}',
    '{"traceEvents":[{"ph":"X","ts":1,"dur":-1}]}',
    '{"traceEvents":[{"ph":"X","ts":1,"dur":1e308}]}',
    '{"traceEvents":[{"ph":"X","ts":1}]',
    '{"traceEvents":[{"ph":"X","ts":1}]}x',
    '{"traceEvents":[1]}',
    '{"traceEvents":{}}',
    '{"a":1,}',
    '{"otherData":{}}',
    '',
  ];
  for (const b of bad) {
    for (const chunk of [1, 3, 1000]) {
      assert.throws(() => parseChunked(b, chunk), (e: unknown) => e instanceof InputError, `${b} (chunks of ${chunk})`);
    }
  }
});

test.run();
