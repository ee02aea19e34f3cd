import { firstJsonErrorOffset } from './json-position.js';

/**
 * Bad input (a script, a vector file, a flag): reported as one clear line
 * naming the place, exit code 2, no stack trace. Everything that reads user
 * input throws this; the CLI's top level turns it into the message and code.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** Line and column (1-based) of a character offset in a text. */
export function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, col: offset - last };
}

/**
 * JSON.parse with syntax errors reported as FILE:LINE:COL (the position
 * found by firstJsonErrorOffset; a truncated file is reported at its end).
 */
export function parseJsonFile(file: string, text: string): unknown {
  // A byte-order mark (some editors write one) is not part of the document, as for scripts.
  if (text.charCodeAt(0) === 0xfeff) return parseJsonFile(file, ' ' + text.slice(1));
  try {
    return JSON.parse(text);
  } catch {
    const pos = firstJsonErrorOffset(text);
    const { line, col } = lineCol(text, pos);
    const what =
      pos >= text.length
        ? 'unexpected end of file'
        : `unexpected ${JSON.stringify(text.slice(pos, pos + 12))}${text.length > pos + 12 ? '…' : ''}`;
    throw new InputError(`${file}:${line}:${col}: invalid JSON: ${what}`);
  }
}
