/**
 * The sessions quoted in README.md and docs/*.md are generated, not typed:
 * every fenced block whose lines start with `$ pvmmu …`, `$ npx pvmmu …` or
 * `$ npm start` is a command followed by its output; `$ echo $?` is followed
 * by the previous command's exit code; a line `...` stands for any number of
 * lines. `checkDocFigures()` reruns every command and lists where the text
 * differs (tests/tools/doc-figures.test.ts); `npm run docs:update` rewrites
 * the blocks with the current output (keeping `...` elisions as they are).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = process.cwd();
const CLI = join(ROOT, 'dist/tools/cli.js');

export const DOC_FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

interface Run {
  out: string[];
  status: number;
}

function run(cmd: string): Run | null {
  let args: string[];
  if (cmd === 'npm start') args = ['compare', 'tools/workloads/default.pvw'];
  else {
    const m = /^(?:npx )?pvmmu (.*)$/.exec(cmd);
    if (!m) return null;
    args = m[1]!.split(/\s+/);
  }
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  // What a terminal shows: the output, then the messages on stderr.
  const out = (r.stdout + r.stderr).replace(/\n$/, '');
  return { out: out === '' ? [] : out.split('\n'), status: r.status ?? -1 };
}

/** Does `actual` match `expected`, where a line "..." matches any run of lines? */
function matches(expected: string[], actual: string[]): boolean {
  const go = (i: number, j: number): boolean => {
    if (i === expected.length) return j === actual.length;
    if (expected[i] === '...') {
      for (let k = j; k <= actual.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < actual.length && expected[i] === actual[j] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

/** Regenerate a block's output, keeping a leading/trailing "..." elision where the old text had one. */
function regenerate(expected: string[], actual: string[]): string[] {
  if (expected.length > 0 && expected[0] === '...') {
    const tail = expected.length - 1;
    return ['...', ...actual.slice(Math.max(0, actual.length - tail))];
  }
  if (expected.length > 0 && expected[expected.length - 1] === '...') {
    return [...actual.slice(0, expected.length - 1), '...'];
  }
  return actual;
}

export interface DocDiff {
  file: string;
  line: number;
  command: string;
  expected: string[];
  actual: string[];
}

/** Check (or, with update, rewrite) every quoted session; returns the differences found. */
export function checkDocFigures(update = false): DocDiff[] {
  const diffs: DocDiff[] = [];
  for (const file of DOC_FILES) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    const out: string[] = [];
    let changed = false;
    let i = 0;
    while (i < lines.length) {
      out.push(lines[i]!);
      if (!/^```\s*$/.test(lines[i]!) || !(lines[i + 1] ?? '').startsWith('$ ')) {
        i++;
        continue;
      }
      // A session block: commands and outputs until the closing fence.
      i++;
      let last: Run | null = null;
      while (i < lines.length && !/^```\s*$/.test(lines[i]!)) {
        const cmdLine = lines[i]!;
        const at = i + 1;
        out.push(cmdLine);
        i++;
        const expected: string[] = [];
        while (i < lines.length && !/^```\s*$/.test(lines[i]!) && !lines[i]!.startsWith('$ ')) expected.push(lines[i++]!);
        const cmd = cmdLine.slice(2).trim();
        let actual: string[] | null;
        if (cmd === 'echo $?') actual = last ? [String(last.status)] : null;
        else {
          last = run(cmd);
          actual = last ? last.out : null;
        }
        if (actual === null || (expected.length === 0 && cmd !== 'echo $?')) {
          out.push(...expected);
          continue;
        }
        if (matches(expected, actual)) out.push(...expected);
        else {
          diffs.push({ file, line: at, command: cmd, expected, actual });
          const next = regenerate(expected, actual);
          out.push(...(update ? next : expected));
          changed ||= update;
        }
      }
      if (i < lines.length) out.push(lines[i]!);
      i++;
    }
    if (changed) writeFileSync(join(ROOT, file), out.join('\n'));
  }
  return diffs;
}

if (process.argv[1] && process.argv[1].endsWith('doc-figures.js')) {
  const update = process.argv.includes('--update');
  const d = checkDocFigures(update);
  for (const x of d) process.stderr.write(`${x.file}:${x.line}: \`${x.command}\` ${update ? 'updated' : 'differs'}\n`);
  process.stderr.write(`${d.length} quoted session${d.length === 1 ? '' : 's'} ${update ? 'regenerated' : 'differ'}\n`);
  if (!update && d.length > 0) process.exitCode = 1;
}
