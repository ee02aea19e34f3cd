/**
 * Reading a user-supplied input file (a workload, a vector file, a trace):
 * a file that cannot be read is bad input naming the file.
 */
import { readFileSync } from 'node:fs';
import { InputError } from './input-error.js';

export function readInputFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`${file}: cannot read (${code ?? String(e)})`);
  }
}
