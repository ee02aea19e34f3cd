/**
 * Streams a Chrome trace-event JSON file (`{ "otherData": {…}, "traceEvents":
 * [ … ] }`, opened by Perfetto and chrome://tracing) as events arrive, so a
 * long run never holds its trace in memory. Timestamps and durations are
 * emulated cycles (the trace's clock is the cost model's cycle counter, shown
 * as µs). `otherData` carries the run's configuration (docs/traces.md).
 *
 * Shapes (docs/traces.md): one complete event ("ph": "X") per page walk with
 * args { va, access, user, cr3, entries[], pa | fault+errorCode }; one per
 * workload statement on the track of the process it acts on; one per run of
 * a measure block on the "measure blocks" track; instant events ("ph": "i")
 * for TLB flushes, hypercalls, faults, context switches, refusals and where
 * a run stopped.
 *
 * Never half-written (tools/output-file.ts): the file is renamed into place
 * by close(); a write error (a full disk, /dev/full) stops the writing and is
 * kept in `error`, the partial file removed; abandon() removes it too.
 */
import type { MmuEvent } from '../../emulator/trace.js';
import { ACCESS_NAMES } from '../../emulator/paging-bits.js';
import { hex } from '../../emulator/hex.js';
import { InputError } from '../input-error.js';
import { OutputFile } from '../output-file.js';

const FLUSH_AT = 1 << 16;

export interface TraceProcess {
  pid: number;
  name: string;
}

export class TraceWriter {
  private readonly out: OutputFile;
  private buf: string[] = [];
  private bytes = 0;
  private first = true;
  private closed = false;
  /** The write error that stopped the trace (the run goes on; the caller reports it). */
  error: InputError | null = null;
  /** 'written' after close(), 'removed' after an error or abandon(). */
  state: 'open' | 'written' | 'removed' = 'open';
  events = 0;
  /** The process the events belong to (set on every context switch). */
  pid = 0;
  private readonly named = new Set<number>();

  constructor(
    readonly path: string,
    metadata: Record<string, unknown> = {},
    readonly flag = '--trace',
  ) {
    this.out = new OutputFile(flag, path);
    this.raw(`{"otherData":${JSON.stringify({ generator: 'pvmmu', clock: 'emulated cycles (shown as µs)', ...metadata })},\n"traceEvents":[\n`);
    // Write the header now: a path that cannot take bytes (/dev/full) is refused before anything runs.
    this.flush();
    if (this.error) throw this.error;
  }

  private raw(s: string): void {
    if (this.error) return;
    this.buf.push(s);
    this.bytes += s.length;
    if (this.bytes >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (this.error) return;
    try {
      if (this.buf.length) this.out.write(this.buf.join(''));
    } catch (e) {
      this.error = e instanceof InputError ? e : new InputError(String(e));
      this.state = 'removed';
    }
    this.buf = [];
    this.bytes = 0;
  }

  private emit(e: Record<string, unknown>): void {
    if (this.error) return;
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

  /** Write the closing `]}` and put the file in place (or, after a write error, leave it removed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw('\n]}\n');
    this.flush();
    if (this.error) return;
    try {
      this.out.commit();
      this.state = 'written';
    } catch (e) {
      this.error = e as InputError;
      this.state = 'removed';
    }
  }

  /** Give up on the trace (an internal error mid-run): remove what was written. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.abandon();
    this.state = 'removed';
  }
}

/** Open a trace file for --trace; a path that cannot be written is bad input. */
export function openTrace(path: string, metadata: Record<string, unknown> = {}): TraceWriter {
  return new TraceWriter(path, metadata);
}
