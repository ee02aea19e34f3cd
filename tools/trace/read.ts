/**
 * Reads a Chrome trace-event file as a stream, one event at a time, in
 * bounded memory whatever the file's size or layout (one line or one event
 * per line; `jq .` output; no newline at all).
 *
 * Accepted, as Chrome's Trace Event Format allows:
 *  - the JSON Object Format: `{"traceEvents": [ … ], …}` with other keys in
 *    any order (`otherData`, `displayTimeUnit`, `metadata`, …);
 *  - the JSON Array Format: `[ … ]`, whose closing `]` may be missing.
 * Refused, naming FILE:LINE:COL: anything that is not JSON (a trailing comma,
 * a truncated object), an event that is not an object, a `ph` that is not a
 * string, a `ts` or `dur` that is not a finite number (a string, 1e308), a
 * negative `dur`, an event larger than MAX_EVENT_BYTES.
 */
import { createReadStream } from 'node:fs';
import { InputError } from '../input-error.js';

/** One event's JSON text may be at most this long (pvmmu's largest are ~1 KB). */
export const MAX_EVENT_BYTES = 1 << 20;
/** Times beyond 2^53 are not exact in JSON numbers (and no run is that long). */
const MAX_TIME = 2 ** 53;

export interface TraceEvent {
  name?: string;
  cat?: string;
  ph: string;
  ts?: number;
  dur?: number;
  pid?: number | string;
  tid?: number | string;
  args?: Record<string, unknown>;
}

export interface TraceFile {
  /** Top-level keys other than traceEvents (object format). */
  other: Record<string, unknown>;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Call `onEvent` for every event of the file, in order; returns the other
 * top-level keys. Throws InputError on anything Chrome's format does not allow.
 */
export async function readTrace(file: string, onEvent: (e: TraceEvent) => void): Promise<TraceFile> {
  let stream;
  try {
    stream = createReadStream(file, { highWaterMark: 1 << 16 });
    await new Promise<void>((res, rej) => {
      stream!.once('open', () => res());
      stream!.once('error', rej);
    });
  } catch (e) {
    throw new InputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const p = new TraceParser(file, onEvent);
  try {
    for await (const chunk of stream) p.feed(chunk as Buffer);
  } catch (e) {
    stream.destroy();
    if (e instanceof InputError) throw e;
    throw new InputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return p.end();
}

type State =
  | 'start' // before the top-level value
  | 'obj-key' // in the top object, expecting a key or }
  | 'obj-colon'
  | 'obj-value'
  | 'obj-comma' // after a value: , or }
  | 'arr-first' // after [ : an element or ]
  | 'arr-elem' // after , : an element (a ] here is a trailing comma)
  | 'arr-comma' // after an element: , or ]
  | 'done';

/** Scanner results: go on, the value ended with this byte, the value ended before this byte. */
const MORE = 0;
const ENDS_WITH = 1;
const ENDS_BEFORE = 2;

export class TraceParser {
  private state: State = 'start';
  private line = 1;
  private col = 0;
  private objectFormat = false;
  private sawEvents = false;
  private afterComma = false;
  private key = '';
  // The value being collected (an event, a key, another top-level value).
  private collecting: 'event' | 'key' | 'value' | null = null;
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escape = false;
  private scalar = false;
  private startLine = 1;
  private startCol = 1;
  private readonly other: Record<string, unknown> = {};
  events = 0;

  constructor(
    private readonly file: string,
    private readonly onEvent: (e: TraceEvent) => void,
  ) {}

  private fail(msg: string, line = this.line, col = this.col): never {
    throw new InputError(`${this.file}:${line}:${Math.max(1, col)}: ${msg}`);
  }

  feed(chunk: Buffer): void {
    // A value left open by the previous chunk goes on from this chunk's first byte.
    let seg = this.collecting !== null ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x0a) {
        this.line++;
        this.col = 0;
      } else if ((c & 0xc0) !== 0x80) this.col++;
      if (this.collecting !== null) {
        const r = this.scan(c);
        if (r === MORE) {
          if (this.size + (i - seg + 1) > MAX_EVENT_BYTES) {
            this.fail(`${this.collecting === 'event' ? 'event' : 'value'} larger than ${MAX_EVENT_BYTES} bytes`, this.startLine, this.startCol);
          }
          continue;
        }
        this.parts.push(chunk.subarray(seg, r === ENDS_WITH ? i + 1 : i));
        seg = -1;
        this.finishValue();
        if (r === ENDS_WITH) continue;
      }
      if (WS.has(c)) continue;
      this.token(c);
      if (this.collecting !== null) seg = i;
    }
    if (this.collecting !== null && seg >= 0) {
      const rest = Buffer.from(chunk.subarray(seg));
      this.parts.push(rest);
      this.size += rest.length;
    }
  }

  private begin(kind: 'event' | 'key' | 'value', c: number): void {
    this.collecting = kind;
    this.parts = [];
    this.size = 0;
    this.escape = false;
    this.startLine = this.line;
    this.startCol = this.col;
    this.inString = c === 0x22;
    this.depth = c === 0x7b || c === 0x5b ? 1 : 0;
    this.scalar = !this.inString && this.depth === 0;
  }

  private scan(c: number): number {
    if (this.scalar) return c === 0x2c || c === 0x5d || c === 0x7d || WS.has(c) ? ENDS_BEFORE : MORE;
    if (this.inString) {
      if (this.escape) this.escape = false;
      else if (c === 0x5c) this.escape = true;
      else if (c === 0x22) {
        this.inString = false;
        if (this.depth === 0) return ENDS_WITH;
      }
      return MORE;
    }
    if (c === 0x22) this.inString = true;
    else if (c === 0x7b || c === 0x5b) this.depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--this.depth === 0) return ENDS_WITH;
    }
    return MORE;
  }

  private finishValue(): void {
    const kind = this.collecting!;
    this.collecting = null;
    const text = Buffer.concat(this.parts).toString('utf8');
    this.parts = [];
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      this.fail(`invalid JSON in this ${kind === 'event' ? 'event' : 'value'} (a trailing comma, a missing quote, …)`, this.startLine, this.startCol);
    }
    if (kind === 'event') {
      this.event(v);
      this.state = 'arr-comma';
    } else if (kind === 'key') {
      this.key = v as string;
      this.state = 'obj-colon';
    } else {
      if (Object.keys(this.other).length < 64) this.other[this.key] = v;
      this.state = 'obj-comma';
    }
  }

  private event(v: unknown): void {
    const at = (msg: string): never => this.fail(msg, this.startLine, this.startCol);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) at('a trace event must be an object');
    const e = v as Record<string, unknown>;
    if (typeof e['ph'] !== 'string') at(`event without a "ph" string (got ${JSON.stringify(e['ph']) ?? 'nothing'})`);
    if (e['name'] !== undefined && typeof e['name'] !== 'string') at('"name" must be a string');
    for (const k of ['ts', 'dur'] as const) {
      const t = e[k];
      if (t === undefined) continue;
      if (typeof t !== 'number' || !Number.isFinite(t)) return at(`"${k}" must be a number, got ${JSON.stringify(t)}`);
      if (Math.abs(t) > MAX_TIME) at(`"${k}" ${t} is beyond 2^53 (not an exact time)`);
    }
    if (typeof e['dur'] === 'number' && e['dur'] < 0) at(`"dur" must not be negative (got ${e['dur']})`);
    if (e['ph'] !== 'M' && e['ts'] === undefined) at(`a "${e['ph']}" event needs "ts"`);
    if (e['args'] !== undefined && (typeof e['args'] !== 'object' || e['args'] === null || Array.isArray(e['args']))) at('"args" must be an object');
    this.events++;
    this.onEvent(e as unknown as TraceEvent);
  }

  /** A structural byte outside any collected value. */
  private token(c: number): void {
    const ch = JSON.stringify(String.fromCharCode(c));
    switch (this.state) {
      case 'start':
        if (c === 0x7b) {
          this.objectFormat = true;
          this.state = 'obj-key';
        } else if (c === 0x5b) {
          this.sawEvents = true;
          this.state = 'arr-first';
        } else this.fail(`not a trace: expected { or [ at the start, got ${ch}`);
        return;
      case 'obj-key':
        if (c === 0x7d) {
          if (this.afterComma) this.fail('trailing comma before }');
          this.state = 'done';
          return;
        }
        if (c !== 0x22) this.fail(`expected a key, got ${ch}`);
        this.afterComma = false;
        this.begin('key', c);
        return;
      case 'obj-colon':
        if (c !== 0x3a) this.fail(`expected : after "${this.key}"`);
        this.state = 'obj-value';
        return;
      case 'obj-value':
        if (this.key === 'traceEvents') {
          if (c !== 0x5b) this.fail('"traceEvents" must be an array');
          if (this.sawEvents) this.fail('"traceEvents" appears twice');
          this.sawEvents = true;
          this.state = 'arr-first';
          return;
        }
        this.begin('value', c);
        return;
      case 'obj-comma':
        if (c === 0x2c) {
          this.state = 'obj-key';
          this.afterComma = true;
        } else if (c === 0x7d) this.state = 'done';
        else this.fail(`expected , or } after the value of "${this.key}", got ${ch}`);
        return;
      case 'arr-first':
      case 'arr-elem':
        if (c === 0x5d) {
          if (this.state === 'arr-elem') this.fail('trailing comma before ]');
          this.closeArray();
          return;
        }
        this.begin('event', c);
        return;
      case 'arr-comma':
        if (c === 0x2c) this.state = 'arr-elem';
        else if (c === 0x5d) this.closeArray();
        else this.fail(`expected , or ] between events, got ${ch}`);
        return;
      case 'done':
        this.fail(`text after the end of the trace: ${ch}`);
    }
  }

  private closeArray(): void {
    this.state = this.objectFormat ? 'obj-comma' : 'done';
    this.key = 'traceEvents';
  }

  end(): TraceFile {
    if (this.collecting !== null) {
      this.fail(`truncated trace: the ${this.collecting === 'event' ? 'event' : 'value'} starting at ${this.startLine}:${this.startCol} never ends`);
    }
    if (this.state === 'start') this.fail('empty file, not a trace', 1, 1);
    // Chrome's JSON Array Format may end without its ]; the object format may not.
    if (!this.objectFormat && (this.state === 'arr-comma' || this.state === 'arr-first')) return { other: this.other };
    if (this.state !== 'done') this.fail('truncated trace: the file ends before the closing ] and }');
    if (!this.sawEvents) this.fail('no "traceEvents" array: not a trace', 1, 1);
    return { other: this.other };
  }
}
