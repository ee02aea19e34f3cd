/**
 * `pvmmu merge`: shard outputs (`--shard I/N --json` of inject, fuzz --seeds
 * or matrix) back into the single run's output. The shards are checked
 * first: every file a shard of the same kind, the same N and the same number
 * of items; every shard 1..N present once with the items shard.ts gives it;
 * the fields that describe the run (workload, configuration, mode, clean run,
 * seeds...) the same in every file. Any mismatch is an InputError naming the
 * file and the field. The merged document is exactly the single run's --json
 * (or its text): results in item order, totals recounted.
 */
import { InputError, parseJsonFile } from '../input-error.js';
import { shardRange, type ShardInfo } from './shard.js';
import { assembleInject, type InjectReport, type InjectResult } from '../inject/sweep.js';
import { failed, injectJson, injectText } from '../inject/summary.js';
import { emptyReport, reportText, type FuzzReport } from '../fuzz/campaign.js';
import { addReport } from '../fuzz/sweep.js';
import { assembleMatrix, matrixFailed, matrixText, type MatrixRow } from '../regression/matrix-sweep.js';

export interface ShardFile {
  file: string;
  text: string;
}

export interface Merged {
  kind: string;
  /** The single run's --json document. */
  json: unknown;
  /** The single run's text output. */
  text: string;
  /** The single run's exit status would be 1. */
  failed: boolean;
}

type Doc = Record<string, unknown> & { shard: ShardInfo };

const KINDS: Record<string, { same: string[]; list: string | null }> = {
  inject: { same: ['workload', 'config', 'mode', 'clean'], list: 'results' },
  fuzz: { same: ['seconds', 'start', 'seeds', 'kernel'], list: null },
  matrix: { same: [], list: 'rows' },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The shape of what a shard carries, field by field: a merged document is
 * printed (text tables, --json), so an entry of the wrong type would crash
 * the printer or pass into the output. 'int', 'str', 'int?'/'str?' (or
 * null), 'strs' (an array of strings), 'obj?' (an object or null), 'obj',
 * 'objs' (an array of objects), or a nested shape.
 */
type Shape = { [field: string]: 'int' | 'str' | 'int?' | 'str?' | 'strs' | 'obj' | 'obj?' | 'objs' | Shape | [Shape] };

const LEAKED: Shape = { frames: 'int', slabObjects: 'int', pgdList: 'int', pins: 'int', typeRefs: 'int' };
const ENTRY: Record<string, Shape> = {
  inject: { failAt: 'int', site: 'str', outcome: 'str', line: 'int?', crash: 'str?', leaked: 'obj?' },
  matrix: { workload: 'str', config: 'str', outcomes: 'obj', divergences: 'strs', changes: 'objs' },
};
const FUZZ_REPORT: Shape = {
  workload: {
    seeds: 'int',
    statements: 'int',
    accesses: 'int',
    globalStale: 'int',
    failures: [{ seed: 'int', signature: 'str', failures: 'strs', statements: 'int', shrunkStatements: 'int', shrunk: 'str', saved: 'str?' }],
    expected: [{ seed: 'int', why: 'str' }],
  },
  mmu: { seeds: 'int', portable: 'int', accesses: 'int', failures: [{ seed: 'int', name: 'str', diffs: 'strs', saved: 'str?' }] },
};

/** Check `v` against `shape`; an InputError names the file and the field's path. */
function checkShape(file: string, path: string, v: unknown, shape: Shape): void {
  if (!isObject(v)) throw new InputError(`${file}: field ${path}: expected an object, got ${JSON.stringify(v)?.slice(0, 60)}`);
  for (const [k, t] of Object.entries(shape)) {
    const at = path === '' ? k : `${path}.${k}`;
    const x = v[k];
    const bad = (want: string): never => {
      throw new InputError(`${file}: field ${at}: expected ${want}, got ${JSON.stringify(x)?.slice(0, 60) ?? 'nothing'}`);
    };
    if (Array.isArray(t)) {
      if (!Array.isArray(x)) bad('an array');
      (x as unknown[]).forEach((e, i) => checkShape(file, `${at}[${i}]`, e, t[0]));
    } else if (typeof t === 'object') checkShape(file, at, x, t);
    else if (t === 'int' && !Number.isInteger(x)) bad('an integer');
    else if (t === 'int?' && x !== null && !Number.isInteger(x)) bad('an integer or null');
    else if (t === 'str' && typeof x !== 'string') bad('a string');
    else if (t === 'str?' && x !== null && typeof x !== 'string') bad('a string or null');
    else if (t === 'strs' && !(Array.isArray(x) && x.every((e) => typeof e === 'string'))) bad('an array of strings');
    else if (t === 'obj' && !isObject(x)) bad('an object');
    else if (t === 'obj?' && x !== null && !isObject(x)) bad('an object or null');
    else if (t === 'objs' && !(Array.isArray(x) && x.every(isObject))) bad('an array of objects');
  }
}

function readShard(f: ShardFile): Doc {
  const d = parseJsonFile(f.file, f.text);
  if (!isObject(d) || !isObject(d.shard)) throw new InputError(`${f.file}: not a shard output (no "shard" object; shards are written by --shard I/N --json)`);
  const s = d.shard;
  if (typeof s.kind !== 'string' || !(s.kind in KINDS)) throw new InputError(`${f.file}: field shard.kind: expected one of ${Object.keys(KINDS).join(', ')}, got ${JSON.stringify(s.kind)}`);
  for (const k of ['index', 'count', 'from', 'to', 'total'] as const) {
    if (!Number.isInteger(s[k]) || (s[k] as number) < 0) throw new InputError(`${f.file}: field shard.${k}: expected a non-negative integer, got ${JSON.stringify(s[k])}`);
  }
  const spec = { index: s.index as number, count: s.count as number };
  if (spec.index < 1 || spec.index > spec.count) throw new InputError(`${f.file}: field shard.index: ${spec.index} is not a shard of ${spec.count}`);
  const r = shardRange(spec, s.total as number);
  if (s.from !== r.from || s.to !== r.to) throw new InputError(`${f.file}: fields shard.from/shard.to: shard ${spec.index}/${spec.count} of ${s.total} items is ${r.from}..${r.to}, the file says ${s.from}..${s.to}`);
  const list = KINDS[s.kind]!.list;
  const n = (s.to as number) - (s.from as number);
  if (list !== null) {
    const l = d[list];
    if (!Array.isArray(l) || !l.every(isObject)) throw new InputError(`${f.file}: field ${list}: expected an array of objects`);
    if (l.length !== n) throw new InputError(`${f.file}: field ${list}: ${l.length} entries, but shard ${spec.index}/${spec.count} has ${n} items (an incomplete shard?)`);
    l.forEach((e, i) => {
      checkShape(f.file, `${list}[${i}]`, e, ENTRY[s.kind as string]!);
      if (s.kind === 'inject' && e.leaked !== null) checkShape(f.file, `${list}[${i}].leaked`, e.leaked, LEAKED);
    });
  } else {
    checkShape(f.file, '', d, FUZZ_REPORT);
    const w = d.workload;
    const m = d.mmu;
    if (!isObject(w) || !isObject(m) || w.seeds !== n || m.seeds !== n) throw new InputError(`${f.file}: fields workload.seeds/mmu.seeds: expected ${n} seeds each for shard ${spec.index}/${spec.count} (an incomplete shard?)`);
  }
  return d as Doc;
}

/** Merge the shard files (any order) into the single run's output. */
export function mergeShards(files: ShardFile[]): Merged {
  if (files.length === 0) throw new InputError('merge: no shard files given');
  const docs = files.map(readShard);
  const first = docs[0]!.shard;
  const f0 = files[0]!.file;
  const byIndex = new Map<number, number>();
  docs.forEach((d, i) => {
    const s = d.shard;
    const file = files[i]!.file;
    if (s.kind !== first.kind) throw new InputError(`${file}: field shard.kind is '${s.kind}', but ${f0} is '${first.kind}'`);
    if (s.count !== first.count) throw new InputError(`${file}: field shard.count is ${s.count}, but ${f0} says ${first.count}`);
    if (s.total !== first.total) throw new InputError(`${file}: field shard.total is ${s.total}, but ${f0} says ${first.total} (shards of different runs?)`);
    for (const k of KINDS[s.kind]!.same) {
      if (JSON.stringify(d[k]) !== JSON.stringify(docs[0]![k])) throw new InputError(`${file}: field ${k} differs from ${f0} (shards of different runs?)`);
    }
    const other = byIndex.get(s.index);
    if (other !== undefined) throw new InputError(`${file}: shard ${s.index}/${s.count} given twice (also ${files[other]!.file})`);
    byIndex.set(s.index, i);
  });
  const missing = Array.from({ length: first.count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0) throw new InputError(`merge: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${first.count}`).join(', ')} missing (every shard 1..${first.count} is needed)`);
  const ordered = Array.from({ length: first.count }, (_, i) => docs[byIndex.get(i + 1)!]!);

  if (first.kind === 'inject') {
    const d = ordered[0]!;
    const head = { workload: d.workload, config: d.config, mode: d.mode, clean: d.clean, runs: 0, leaks: 0, crashes: 0, results: [] } as unknown as InjectReport;
    const rep = assembleInject(head, ordered.flatMap((x) => x.results as InjectResult[]));
    return { kind: 'inject', json: injectJson(rep), text: injectText(rep), failed: failed(rep) };
  }
  if (first.kind === 'fuzz') {
    const rep = emptyReport();
    for (const x of ordered) addReport(rep, { workload: x.workload, mmu: x.mmu } as FuzzReport);
    const count = { start: ordered[0]!.start as number, seeds: ordered[0]!.seeds as number };
    return { kind: 'fuzz', json: { seconds: null, ...count, kernel: ordered[0]!.kernel, ...rep }, text: reportText(rep, null, count), failed: rep.workload.failures.length + rep.mmu.failures.length > 0 };
  }
  const rep = assembleMatrix(ordered.flatMap((x) => x.rows as MatrixRow[]));
  return { kind: 'matrix', json: rep, text: matrixText(rep), failed: matrixFailed(rep) };
}
