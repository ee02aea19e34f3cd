// Writes vector / result files in a diff-friendly layout: one line per memory
// region and per step (`layout: 'lines'`), or one line per case
// (`layout: 'compact'`, for the large generated suites).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const j = (v) => JSON.stringify(v);

function caseLines(c) {
  const keys = Object.keys(c);
  const parts = keys.map((k) => {
    const v = c[k];
    if (Array.isArray(v) && v.length > 0 && typeof v[0] === 'object') {
      return `      ${j(k)}: [\n${v.map((x) => `        ${j(x)}`).join(',\n')}\n      ]`;
    }
    return `      ${j(k)}: ${j(v)}`;
  });
  return `    {\n${parts.join(',\n')}\n    }`;
}

export function writeSuite(path, format, cases, layout = 'lines') {
  mkdirSync(dirname(path), { recursive: true });
  const body = layout === 'compact'
    ? cases.map((c) => `    ${j(c)}`).join(',\n')
    : cases.map(caseLines).join(',\n');
  const text = `{\n  "format": ${j(format)},\n  "cases": [\n${body}\n  ]\n}\n`;
  writeFileSync(path, text);
  return text.length;
}
