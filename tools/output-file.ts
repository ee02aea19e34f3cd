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

/** 1 or 2 when `path` names this process's stdout or stderr, else -1. */
function standardFd(path: string): number {
  const p = resolve(path);
  if (p === '/dev/stdout' || p === '/dev/fd/1' || p === '/proc/self/fd/1') return 1;
  if (p === '/dev/stderr' || p === '/dev/fd/2' || p === '/proc/self/fd/2') return 2;
  return -1;
}

/** A path in /dev or /proc, as given or once links are followed: never replaced, written in place. */
function isSpecialPath(path: string): boolean {
  const special = (p: string): boolean => /^\/(dev|proc)(\/|$)/.test(p);
  return special(resolve(path)) || special(resolve(dirname(path)));
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
    // A device, a pipe, or anything under /dev or /proc (/dev/stdout is a link to
    // /proc/self/fd/1, which may lead to a regular file when stdout is redirected)
    // is written directly: a temporary file beside it would be renamed over the link.
    this.tmp = (st && !st.isFile()) || isSpecialPath(path) ? path : join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
    try {
      // The process's own stdout/stderr are written through fd 1/2, so the bytes
      // share the offset of everything else the process prints there.
      const std = standardFd(path);
      this.fd = std >= 0 ? std : openSync(this.tmp, 'w');
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
      if (this.fd > 2) closeSync(this.fd);
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
      if (this.fd > 2) closeSync(this.fd);
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
