/**
 * Human output helpers: aligned tables, thousands separators, sizes,
 * and a progress line on stderr (only when stderr is a TTY and not --json).
 */

export function num(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "1 difference", "3 differences". */
export function plural(n: number, word: string): string {
  return `${num(n)} ${word}${n === 1 ? '' : 's'}`;
}

export function size(bytes: number): string {
  if (bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}G`;
  if (bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}M`;
  if (bytes % 1024 === 0) return `${bytes / 1024}K`;
  return `${bytes}`;
}

/** Render rows as an aligned table; columns listed in `right` are right-aligned. */
export function table(header: string[], rows: string[][], right: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export class Progress {
  private readonly on: boolean;
  private last = 0;
  private readonly start = Date.now();
  constructor(json: boolean) {
    this.on = !json && process.stderr.isTTY === true;
  }
  /** Show "what (i/n)" once the work has taken more than a second. */
  update(what: string, i: number, n: number): void {
    if (!this.on) return;
    const now = Date.now();
    if (now - this.start < 1000 || now - this.last < 100) return;
    this.last = now;
    process.stderr.write(`\r\x1b[K${what} ${n > 0 ? Math.floor((100 * i) / n) : 0}% (${num(i)}/${num(n)})`);
  }
  done(): void {
    if (this.on && Date.now() - this.start >= 1000) process.stderr.write('\r\x1b[K');
  }
}
