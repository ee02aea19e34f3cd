/**
 * Lexer and parser of workload scripts (`.pvw`, docs/workloads.md).
 * Line oriented: one statement per line, `#` comments, `repeat N {` and
 * `measure LABEL {` blocks closed by `}` on a line of its own. Every syntax
 * error is an InputError "FILE:LINE:COL: message" raised before anything runs;
 * checks that depend on the configuration in force are in check.ts.
 */
import { InputError } from '../input-error.js';
import { HOOK_POINTS } from '../../guest-kernel/kernel.js';
import { BACKEND_KINDS, isBackendKind, type BackendKind } from '../../hypervisor/backend.js';
import type { Attr, MachineLine, NameRef, Pos, Prot, Script, Stmt } from './ast.js';

interface Tok {
  text: string;
  col: number;
}

/** Bounds that keep a hostile script finite in parse time and memory. */
export const MAX_SCRIPT_BYTES = 4 << 20;
export const MAX_NESTING = 32;
export const MAX_REPEAT = 1_000_000_000;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*#?$/;
const LABEL_RE = /^[A-Za-z][A-Za-z0-9_+.\-]*$/;
/** A number: decimal or 0x hex, with an optional K/M/G (or k/m/g, as --mem takes them) power-of-1024 suffix. */
const NUM_RE = /^(0x[0-9a-fA-F]+|[0-9]+)([KMGkmg])?$/;

export function parseScript(file: string, text: string): Script {
  const p = new Parser(file, text);
  return p.parse();
}

class Parser {
  private lineNo = 0;
  private readonly machine: MachineLine = { where: {} };
  private sawStatement = false;
  private sawMachine = false;

  constructor(
    private readonly file: string,
    private readonly text: string,
  ) {}

  private fail(pos: Pos, msg: string): never {
    throw new InputError(`${this.file}:${pos.line}:${pos.col}: ${msg}`);
  }

  parse(): Script {
    if (this.text.length > MAX_SCRIPT_BYTES) this.fail({ line: 1, col: 1 }, `script larger than ${MAX_SCRIPT_BYTES} bytes`);
    // A byte-order mark (some editors write one) is not part of the first line.
    const lines = this.text.replace(/^\uFEFF/, '').split(/\r?\n/);
    // Binary garbage: NUL or other control characters are not part of the language.
    const root: Stmt[] = [];
    const stack: { body: Stmt[]; open: Pos; interrupt?: boolean }[] = [{ body: root, open: { line: 1, col: 1 } }];
    for (let i = 0; i < lines.length; i++) {
      this.lineNo = i + 1;
      const raw = lines[i]!;
      const bad = /[\x00-\x08\x0b-\x1f\x7f]/.exec(raw);
      if (bad) this.fail({ line: this.lineNo, col: bad.index + 1 }, `invalid character 0x${raw.charCodeAt(bad.index).toString(16).padStart(2, '0')}`);
      const toks = tokenize(raw);
      if (toks.length === 0) continue;
      const first = toks[0]!;
      const pos = { line: this.lineNo, col: first.col };
      if (first.text === '}') {
        if (toks.length > 1) this.fail(this.at(toks[1]!), `unexpected '${toks[1]!.text}' after '}' (a closing brace stands on its own line)`);
        if (stack.length === 1) this.fail(pos, "unbalanced '}': no block is open");
        stack.pop();
        continue;
      }
      const top = stack[stack.length - 1]!;
      if (first.text === 'machine') {
        if (this.sawMachine) this.fail(pos, "'machine' may appear only once");
        if (this.sawStatement || stack.length > 1) this.fail(pos, "'machine' must be the first statement");
        this.sawMachine = true;
        this.parseMachine(toks.slice(1));
        continue;
      }
      this.sawStatement = true;
      if (first.text === 'lazy' || first.text === 'interrupt') {
        const last = toks[toks.length - 1]!;
        const usage = first.text === 'lazy' ? 'lazy {' : 'interrupt POINT {';
        if (last.text !== '{') this.fail(this.at(last, last.text.length), `expected '{' at the end of '${first.text}'`);
        if (toks.length !== (first.text === 'lazy' ? 2 : 3)) this.fail(pos, `expected '${usage}'`);
        if (stack.length > MAX_NESTING) this.fail(pos, `blocks nested deeper than ${MAX_NESTING}`);
        const body: Stmt[] = [];
        if (first.text === 'lazy') top.body.push({ ...pos, op: 'lazy', body });
        else {
          const pt = toks[1]!;
          if (!(HOOK_POINTS as readonly string[]).includes(pt.text)) {
            this.fail(this.at(pt), `unknown interrupt point '${pt.text}' (known: ${HOOK_POINTS.join(', ')})`);
          }
          if (stack.some((b) => b.interrupt)) this.fail(pos, 'an interrupt block cannot contain another');
          top.body.push({ ...pos, op: 'interrupt', point: pt.text, body });
        }
        stack.push({ body, open: pos, interrupt: first.text === 'interrupt' });
        continue;
      }
      if (first.text === 'repeat' || first.text === 'measure') {
        const last = toks[toks.length - 1]!;
        if (last.text !== '{') this.fail(this.at(last, last.text.length), `expected '{' at the end of '${first.text}'`);
        if (toks.length !== 3) this.fail(pos, `expected '${first.text} ${first.text === 'repeat' ? 'N' : 'LABEL'} {'`);
        if (stack.length > MAX_NESTING) this.fail(pos, `blocks nested deeper than ${MAX_NESTING}`);
        const body: Stmt[] = [];
        if (first.text === 'repeat') {
          const n = this.num(toks[1]!, 'repeat count');
          if (n > MAX_REPEAT) this.fail(this.at(toks[1]!), `repeat count ${n} is larger than ${MAX_REPEAT}`);
          top.body.push({ ...pos, op: 'repeat', count: n, body });
        } else {
          const label = toks[1]!;
          if (!LABEL_RE.test(label.text)) this.fail(this.at(label), `bad label '${label.text}' (letters, digits, _ - + . starting with a letter)`);
          top.body.push({ ...pos, op: 'measure', label: label.text, body });
        }
        stack.push({ body, open: pos });
        continue;
      }
      const st = this.statement(pos, first.text, toks);
      if (stack.some((b) => b.interrupt) && st.op !== 'cpa' && st.op !== 'vmalloc_sync_all') {
        this.fail(pos, `'${st.op}' cannot run in an interrupt (only cpa and vmalloc_sync_all can)`);
      }
      top.body.push(st);
    }
    if (stack.length > 1) {
      const open = stack[stack.length - 1]!.open;
      this.fail(open, "unbalanced '{': block not closed before the end of the file");
    }
    return { file: this.file, machine: this.machine, body: root };
  }

  private at(t: Tok, extra = 0): Pos {
    return { line: this.lineNo, col: t.col + extra };
  }

  private num(t: Tok, what: string, max = 2 ** 32 - 1): number {
    const m = NUM_RE.exec(t.text);
    if (!m) this.fail(this.at(t), `bad number '${t.text}' for ${what} (decimal or 0x hex, optional K/M/G)`);
    const base = BigInt(m[1]!);
    const u = m[2]?.toUpperCase();
    const mult = u === 'K' ? 1024n : u === 'M' ? 1024n ** 2n : u === 'G' ? 1024n ** 3n : 1n;
    const v = base * mult;
    if (v > BigInt(max)) this.fail(this.at(t), `${what} ${t.text} is too large (at most 0x${max.toString(16)})`);
    return Number(v);
  }

  private name(t: Tok | undefined, what: string, end: Pos): NameRef {
    if (!t) this.fail(end, `missing ${what}`);
    if (!NAME_RE.test(t.text)) this.fail(this.at(t), `bad ${what} '${t.text}' (letters, digits, _ and -, starting with a letter)`);
    const template = t.text.endsWith('#');
    return { line: this.lineNo, col: t.col, text: template ? t.text.slice(0, -1) : t.text, template };
  }

  private need(toks: Tok[], i: number, what: string): Tok {
    const t = toks[i];
    if (!t) {
      const last = toks[toks.length - 1]!;
      this.fail(this.at(last, last.text.length), `missing ${what}`);
    }
    return t;
  }

  private noMore(toks: Tok[], n: number, usage: string): void {
    if (toks.length > n) this.fail(this.at(toks[n]!), `unexpected '${toks[n]!.text}' (usage: ${usage})`);
  }

  private statement(pos: Pos, op: string, toks: Tok[]): Stmt {
    const end = (): Pos => {
      const last = toks[toks.length - 1]!;
      return this.at(last, last.text.length);
    };
    switch (op) {
      case 'process':
      case 'exec':
      case 'exit':
      case 'switch':
      case 'syscall': {
        const name = this.name(toks[1], 'process name', end());
        this.noMore(toks, 2, `${op} NAME`);
        return { ...pos, op, name };
      }
      case 'fork': {
        const parent = this.name(toks[1], 'parent process name', end());
        const child = this.name(toks[2], 'child process name', end());
        this.noMore(toks, 3, 'fork PARENT CHILD');
        return { ...pos, op, parent, child };
      }
      case 'mmap': {
        const name = this.name(toks[1], 'process name', end());
        const addr = this.num(this.need(toks, 2, 'ADDR'), 'ADDR');
        const len = this.num(this.need(toks, 3, 'LEN'), 'LEN');
        const pt = this.need(toks, 4, 'PROT (r, rw, rx or rwx)');
        if (!['r', 'rw', 'rx', 'rwx'].includes(pt.text)) this.fail(this.at(pt), `bad PROT '${pt.text}' (r, rw, rx or rwx)`);
        this.noMore(toks, 5, 'mmap NAME ADDR LEN PROT');
        return { ...pos, op, name, addr, len, prot: pt.text as Prot };
      }
      case 'munmap': {
        const name = this.name(toks[1], 'process name', end());
        const addr = this.num(this.need(toks, 2, 'ADDR'), 'ADDR');
        const len = this.num(this.need(toks, 3, 'LEN'), 'LEN');
        this.noMore(toks, 4, 'munmap NAME ADDR LEN');
        return { ...pos, op, name, addr, len };
      }
      case 'touch': {
        const name = this.name(toks[1], 'process name', end());
        const addr = this.num(this.need(toks, 2, 'ADDR'), 'ADDR');
        const len = this.num(this.need(toks, 3, 'LEN'), 'LEN');
        const a = this.need(toks, 4, "'read' or 'write'");
        if (a.text !== 'read' && a.text !== 'write') this.fail(this.at(a), `expected 'read' or 'write', got '${a.text}'`);
        this.noMore(toks, 5, 'touch NAME ADDR LEN read|write');
        return { ...pos, op, name, addr, len, access: a.text };
      }
      case 'write': {
        const name = this.name(toks[1], 'process name', end());
        const addr = this.num(this.need(toks, 2, 'ADDR'), 'ADDR');
        const value = this.num(this.need(toks, 3, 'VALUE'), 'VALUE');
        let expectSegv = false;
        if (toks.length > 4) {
          if (toks[4]!.text !== 'expect') this.fail(this.at(toks[4]!), `unexpected '${toks[4]!.text}' (usage: write NAME ADDR VALUE [expect segv])`);
          const e = this.need(toks, 5, "'segv'");
          if (e.text !== 'segv') this.fail(this.at(e), `a write can only expect 'segv', got '${e.text}'`);
          expectSegv = true;
          this.noMore(toks, 6, 'write NAME ADDR VALUE [expect segv]');
        }
        return { ...pos, op, name, addr, value, expectSegv };
      }
      case 'read': {
        const name = this.name(toks[1], 'process name', end());
        const addr = this.num(this.need(toks, 2, 'ADDR'), 'ADDR');
        let expect: { value: number } | 'segv' | null = null;
        if (toks.length > 3) {
          if (toks[3]!.text !== 'expect') this.fail(this.at(toks[3]!), `unexpected '${toks[3]!.text}' (usage: read NAME ADDR [expect VALUE|segv])`);
          const e = this.need(toks, 4, 'VALUE or segv');
          expect = e.text === 'segv' ? 'segv' : { value: this.num(e, 'expected VALUE') };
          this.noMore(toks, 5, 'read NAME ADDR [expect VALUE|segv]');
        }
        return { ...pos, op, name, addr, expect };
      }
      case 'vmalloc': {
        const area = this.name(toks[1], 'area name', end());
        const len = this.num(this.need(toks, 2, 'LEN'), 'LEN');
        this.noMore(toks, 3, 'vmalloc AREA LEN');
        return { ...pos, op, area, len };
      }
      case 'vfree': {
        const area = this.name(toks[1], 'area name', end());
        this.noMore(toks, 2, 'vfree AREA');
        return { ...pos, op, area };
      }
      case 'kwrite': {
        const area = this.name(toks[1], 'area name', end());
        const offset = this.num(this.need(toks, 2, 'OFFSET'), 'OFFSET');
        const value = this.num(this.need(toks, 3, 'VALUE'), 'VALUE');
        this.noMore(toks, 4, 'kwrite AREA OFFSET VALUE');
        return { ...pos, op, area, offset, value };
      }
      case 'kread': {
        const area = this.name(toks[1], 'area name', end());
        const offset = this.num(this.need(toks, 2, 'OFFSET'), 'OFFSET');
        let expect: number | null = null;
        if (toks.length > 3) {
          if (toks[3]!.text !== 'expect') this.fail(this.at(toks[3]!), `unexpected '${toks[3]!.text}' (usage: kread AREA OFFSET [expect VALUE])`);
          expect = this.num(this.need(toks, 4, 'VALUE'), 'expected VALUE');
          this.noMore(toks, 5, 'kread AREA OFFSET [expect VALUE]');
        }
        return { ...pos, op, area, offset, expect };
      }
      case 'idle':
      case 'vmalloc_sync_all':
        this.noMore(toks, 1, op);
        return { ...pos, op };
      case 'cpa': {
        const phys = this.num(this.need(toks, 1, 'PHYS'), 'PHYS', 2 ** 36 - 1);
        const pages = this.num(this.need(toks, 2, 'PAGES'), 'PAGES', 1 << 24);
        const a = this.need(toks, 3, 'ro, rw, nx or x');
        if (!['ro', 'rw', 'nx', 'x'].includes(a.text)) this.fail(this.at(a), `bad attribute '${a.text}' (ro, rw, nx or x)`);
        this.noMore(toks, 4, 'cpa PHYS PAGES ro|rw|nx|x');
        return { ...pos, op, phys, pages, attr: a.text as Attr };
      }
      default:
        return this.fail(pos, `unknown statement '${op}'`);
    }
  }

  private parseMachine(toks: Tok[]): void {
    const m = this.machine;
    for (const t of toks) {
      const eq = t.text.indexOf('=');
      const pos = this.at(t);
      if (eq <= 0) this.fail(pos, `expected KEY=VALUE, got '${t.text}'`);
      const key = t.text.slice(0, eq);
      const val = t.text.slice(eq + 1);
      const vpos = this.at(t, eq + 1);
      if (key in m.where) this.fail(pos, `'${key}' given twice`);
      switch (key) {
        case 'pae':
          if (val !== 'on' && val !== 'off') this.fail(vpos, `pae must be 'on' or 'off', got '${val}'`);
          m.pae = val === 'on';
          break;
        case 'split':
          if (val !== '3G' && val !== '2G' && val !== '1G') this.fail(vpos, `split must be 3G, 2G or 1G, got '${val}'`);
          m.split = val;
          break;
        case 'mem':
          m.mem = this.num({ text: val, col: t.col + eq + 1 }, 'mem', 2 ** 36);
          break;
        case 'cpu':
          if (!/^[a-z0-9_-]+$/.test(val)) this.fail(vpos, `bad cpu preset '${val}'`);
          m.cpu = val;
          break;
        case 'backend':
          if (!isBackendKind(val)) this.fail(vpos, `backend must be one of ${BACKEND_KINDS.join(', ')}, got '${val}'`);
          m.backend = val;
          break;
        case 'kernel':
          if (val !== 'patched' && val !== 'seed' && val !== 'prepatch') this.fail(vpos, `kernel must be patched, seed or prepatch, got '${val}'`);
          m.kernel = val;
          break;
        default:
          this.fail(pos, `unknown machine key '${key}' (pae, split, mem, cpu, backend, kernel)`);
      }
      m.where[key] = vpos;
    }
  }
}

/** Split a line into tokens with 1-based columns, dropping a `#` comment. */
function tokenize(line: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    // '#' starts a comment only at the start of a token (NAME# templates keep theirs).
    if (c === '#') break;
    const start = i;
    if (c === '{' || c === '}') {
      toks.push({ text: c, col: start + 1 });
      i++;
      continue;
    }
    while (i < n && line[i] !== ' ' && line[i] !== '\t' && line[i] !== '{' && line[i] !== '}') i++;
    toks.push({ text: line.slice(start, i), col: start + 1 });
  }
  return toks;
}
