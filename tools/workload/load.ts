/**
 * Reading, parsing and checking a workload under a configuration: every
 * input error is raised here, before anything runs (used by boot, compare,
 * inject, the regression matrix and the benchmarks).
 */
import type { Script } from './ast.js';
import { checkScript } from './check.js';
import { resolveConfig, type Backend, type ConfigOverrides, type RunConfig } from './config.js';
import { MAX_SCRIPT_BYTES, parseScript } from './parser.js';
import { readInputFile } from '../read-input.js';

export function loadWorkload(
  file: string,
  overrides: ConfigOverrides = {},
  opts: { backends?: Backend[]; above4g?: boolean } = {},
): { script: Script; cfg: RunConfig; bytes: number } {
  const text = readInputFile(file, MAX_SCRIPT_BYTES, 'a workload script');
  const script = parseScript(file, text);
  const cfg = resolveConfig(file, script.machine, overrides, opts);
  checkScript(script, cfg);
  return { script, cfg, bytes: text.length };
}
