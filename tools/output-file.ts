/**
 * Output files (--out, -o, --trace): never an input of the same command, and
 * never half-written. A regular file is written to a temporary name in the
 * same directory and renamed into place only when complete; a device or a
 * pipe (/dev/stdout, /dev/null, a FIFO) is written directly. Any failure is
 * bad input naming the flag and the path (exit 2), and the temporary file is
 * removed.
 */
import { closeSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from './input-error.js';

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Refuse an output path that names one of the inputs (the same file, by inode or by path). */
export function refuseOutputOverInput(flag: string, out: string, inputs: string[]): void {
  const o = statOf(out);
  for (const input of inputs) {
    const i = statOf(input);
    const same = o && i ? o.isFile() && o.dev === i.dev && o.ino === i.ino : canonical(out) === canonical(input);
    if (same) throw new InputError(`${flag}: ${out} is an input of this command (${input}); refusing to overwrite it`);
  }
}

/** Outputs being written: removed if the process exits before they are committed (a second Ctrl-C, process.exit). */
const pending = new Set<OutputFile>();
let hooked = false;

function removePendingAtExit(): void {
  for (const f of pending) f.abandon();
}

/** An output being written: `write` pieces, then `commit` (rename into place) or `abandon` (remove). */
export class OutputFile {
  private fd: number;
  /** Where the bytes go until commit (the path itself for a device or a pipe). */
  readonly tmp: string;
  private done = false;

  constructor(
    readonly flag: string,
    readonly path: string,
  ) {
    if (path.trim() === '') throw new InputError(`${flag}: empty file name`);
    const st = statOf(path);
    if (st?.isDirectory()) throw new InputError(`${flag}: cannot write ${path} (EISDIR)`);
    this.tmp = st && !st.isFile() ? path : join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
    try {
      this.fd = openSync(this.tmp, 'w');
    } catch (e) {
      throw new InputError(`${flag}: cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    pending.add(this);
    if (!hooked) {
      hooked = true;
      process.on('exit', removePendingAtExit);
    }
  }

  get direct(): boolean {
    return this.tmp === this.path;
  }

  /** Write; a failure (ENOSPC, EIO, ...) abandons the file and is thrown as bad input. */
  write(text: string): void {
    try {
      writeSync(this.fd, text);
    } catch (e) {
      this.abandon();
      throw new InputError(`${this.flag}: cannot write ${this.path} (${(e as NodeJS.ErrnoException).code ?? String(e)}); nothing was written there`);
    }
  }

  commit(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this);
    try {
      closeSync(this.fd);
      if (!this.direct) renameSync(this.tmp, this.path);
    } catch (e) {
      this.removeTmp();
      throw new InputError(`${this.flag}: cannot write ${this.path} (${(e as NodeJS.ErrnoException).code ?? String(e)}); nothing was written there`);
    }
  }

  /** Give up: close and remove what was written (a device is left alone). */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this);
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.removeTmp();
  }

  private removeTmp(): void {
    if (this.direct) return;
    try {
      unlinkSync(this.tmp);
    } catch {
      /* gone already */
    }
  }
}

/** Write a whole output file at once (results, an HTML report). */
export function writeOutputFile(flag: string, path: string, text: string): void {
  const f = new OutputFile(flag, path);
  f.write(text);
  f.commit();
}
