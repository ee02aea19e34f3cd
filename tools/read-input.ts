/**
 * Reading a user-supplied input file (a workload, a vector file, expected
 * results): at most `limit` + 1 bytes are ever read, so /dev/zero, an endless
 * pipe or a huge file is refused at the limit instead of filling memory; a
 * file that cannot be read is bad input naming the file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InputError } from './input-error.js';

const CHUNK = 1 << 20;

export function readInputFile(file: string, limit: number, what: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new InputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new InputError(`${file}: cannot read (EISDIR)`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, limit + 1 - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') continue;
        throw new InputError(`${file}: cannot read (${code ?? String(e)})`);
      }
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      if (total > limit) throw new InputError(`${file}: larger than ${limit} bytes, the limit for ${what} (reading stopped there)`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
