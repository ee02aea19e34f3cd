/**
 * `--shard I/N` (1-based, as in Playwright and Jest): a deterministic split
 * of a sweep's items into N contiguous ranges of sizes differing by at most
 * one; shard I runs only its range. Shard outputs (--json) carry a `shard`
 * object (shardInfo) that `pvmmu merge` (merge.ts) checks and reassembles.
 */
import { InputError } from '../input-error.js';

export interface ShardSpec {
  index: number;
  count: number;
}

/** What a shard's --json output says about itself. */
export interface ShardInfo {
  /** What was sharded: "inject", "fuzz" or "matrix". */
  kind: string;
  index: number;
  count: number;
  /** Its items: from..to-1 of `total`. */
  from: number;
  to: number;
  total: number;
}

export function parseShard(flag: string, v: string | undefined): ShardSpec | null {
  if (v === undefined) return null;
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(v);
  if (!m) throw new InputError(`${flag}: expected I/N (shard I of N, 1-based, e.g. 2/4; N at most 999999), got '${v}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new InputError(`${flag}: shard ${index} of ${count} does not exist; I must be 1..N and N at least 1, got '${v}'`);
  return { index, count };
}

/** The items of shard `s` among `total`: from..to-1 (the whole range without a shard). */
export function shardRange(s: ShardSpec | null, total: number): { from: number; to: number } {
  if (s === null) return { from: 0, to: total };
  return { from: Math.floor(((s.index - 1) * total) / s.count), to: Math.floor((s.index * total) / s.count) };
}

export function shardInfo(kind: string, s: ShardSpec, total: number): ShardInfo {
  return { kind, index: s.index, count: s.count, ...shardRange(s, total), total };
}
