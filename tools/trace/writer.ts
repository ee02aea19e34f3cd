/**
 * Streams a Chrome trace-event JSON file (`{ "traceEvents": [ … ] }`, opened
 * by Perfetto and chrome://tracing) as events arrive, so a long run never
 * holds its trace in memory. Timestamps and durations are emulated cycles
 * (the trace's clock is the cost model's cycle counter, shown as µs).
 *
 * Shapes (../shared/spec/cli.md, "Page-walk traces"): one complete event
 * ("ph": "X") per page walk with args { va, access, user, cr3, entries[],
 * pa | fault+errorCode }; instant events ("ph": "i") for TLB flushes,
 * hypercalls, faults and context switches.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { MmuEvent } from '../../emulator/trace.js';
import { ACCESS_NAMES } from '../../emulator/paging-bits.js';
import { hex } from '../../emulator/hex.js';
import { InputError } from '../input-error.js';

const FLUSH_AT = 1 << 16;

export interface TraceProcess {
  pid: number;
  name: string;
}

export class TraceWriter {
  private fd: number;
  private buf: string[] = [];
  private bytes = 0;
  private first = true;
  private closed = false;
  events = 0;
  /** The process the events belong to (set on every context switch). */
  pid = 0;
  private readonly named = new Set<number>();

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
    this.raw('{"traceEvents":[\n');
  }

  private raw(s: string): void {
    this.buf.push(s);
    this.bytes += s.length;
    if (this.bytes >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (this.buf.length) writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.bytes = 0;
  }

  private emit(e: Record<string, unknown>): void {
    this.raw((this.first ? '' : ',\n') + JSON.stringify(e));
    this.first = false;
    this.events++;
  }

  /** Name a process track once (metadata event). */
  processName(pid: number, name: string): void {
    if (this.named.has(pid)) return;
    this.named.add(pid);
    this.emit({ name: 'process_name', ph: 'M', pid, tid: pid, args: { name } });
  }

  mmuEvent(e: MmuEvent): void {
    if (e.type === 'walk') {
      const args: Record<string, unknown> = {
        va: hex(e.va),
        access: ACCESS_NAMES[e.access],
        user: e.user,
        cr3: hex(e.cr3),
        entries: e.entries.map((x) => ({ level: x.level, pa: hex(x.pa), value: hex(x.value) })),
      };
      if (e.pa !== undefined) args['pa'] = hex(e.pa);
      else {
        args['fault'] = 'PF';
        args['errorCode'] = e.errorCode;
      }
      this.emit({ name: e.pa !== undefined ? 'walk' : 'walk #PF', cat: 'mmu', ph: 'X', ts: e.at, dur: e.cycles, pid: this.pid, tid: this.pid, args });
      if (e.pa === undefined) this.instant('#PF', 'fault', e.at + e.cycles, { va: args['va'], errorCode: e.errorCode });
    } else {
      this.instant(`flush ${e.kind}`, 'tlb', e.at, e.va !== undefined ? { va: hex(e.va), cycles: e.cycles } : { cycles: e.cycles });
    }
  }

  /** An instant event (flush, hypercall, fault, context switch, ...). */
  instant(name: string, cat: string, ts: number, args: Record<string, unknown> = {}): void {
    this.emit({ name, cat, ph: 'i', s: 't', ts, pid: this.pid, tid: this.pid, args });
  }

  /** A complete event spanning [ts, ts+dur) (e.g. a kernel path, a hypercall with its cost). */
  complete(name: string, cat: string, ts: number, dur: number, args: Record<string, unknown> = {}): void {
    this.emit({ name, cat, ph: 'X', ts, dur, pid: this.pid, tid: this.pid, args });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw('\n]}\n');
    this.flush();
    closeSync(this.fd);
  }
}

/** Open a trace file for --trace; a path that cannot be written is bad input. */
export function openTrace(path: string): TraceWriter {
  try {
    return new TraceWriter(path);
  } catch (e) {
    throw new InputError(`--trace: cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}
