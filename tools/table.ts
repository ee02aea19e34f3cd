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

/** A duration for a progress line: "45s", "3m05s", "2h07m" (rounded up to whole seconds). */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * The ETA of a progress line: the time left if the remaining items go at the
 * rate of those done so far ("ETA 3m05s"); "ETA ?" before the first is done,
 * "" once all are.
 */
export function etaText(elapsedMs: number, done: number, total: number): string {
  if (total <= 0 || done >= total) return '';
  if (done <= 0) return 'ETA ?';
  return `ETA ${durationText((elapsedMs * (total - done)) / done)}`;
}

/** The progress line: "what 42% (420/1,000) ETA 1m10s". */
export function progressText(what: string, i: number, n: number, elapsedMs: number): string {
  const eta = etaText(elapsedMs, i, n);
  return `${what} ${n > 0 ? Math.floor((100 * i) / n) : 0}% (${num(i)}/${num(n)})${eta ? ` ${eta}` : ''}`;
}

/** A progress line with an ETA on stderr, only when stderr is a TTY and the output is not --json. */
export class Progress {
  private readonly on: boolean;
  private last = 0;
  private readonly start = Date.now();
  constructor(json: boolean) {
    this.on = !json && process.stderr.isTTY === true;
  }
  /** Show "what 42% (i/n) ETA 1m10s" once the work has taken more than a second (i items done of n). */
  update(what: string, i: number, n: number): void {
    if (!this.on) return;
    const now = Date.now();
    if (now - this.start < 1000 || now - this.last < 100) return;
    this.last = now;
    process.stderr.write(`\r\x1b[K${progressText(what, i, n, now - this.start)}`);
  }
  done(): void {
    if (this.on && Date.now() - this.start >= 1000) process.stderr.write('\r\x1b[K');
  }
}
