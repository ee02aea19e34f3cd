/**
 * Where is a JSON text first wrong? Node 20's JSON.parse does not always say
 * (e.g. "Unexpected token ','"), so after a failed parse this small scanner
 * walks the text by the JSON grammar (RFC 8259) and returns the offset of the
 * first character that cannot continue a valid document.
 */
export function firstJsonErrorOffset(text: string): number {
  let i = 0;
  const n = text.length;
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  class Stop extends Error {}
  const stop = (): never => {
    throw new Stop();
  };
  const lit = (word: string): void => {
    for (let k = 0; k < word.length; k++, i++) if (text[i] !== word[k]) stop();
  };
  const str = (): void => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 0x20) stop();
      if (c === 92) {
        i++;
        const e = text[i];
        if (e === 'u') {
          i++;
          for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) stop();
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) stop();
      }
      i++;
    }
    stop();
  };
  const num = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0].length === 0) stop();
    i += m![0].length;
  };
  let depth = 0;
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      if (++depth > 10_000) stop();
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        depth--;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') stop();
        str();
        ws();
        if (text[i] !== ':') stop();
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          depth--;
          return;
        }
        stop();
      }
    } else if (c === '[') {
      if (++depth > 10_000) stop();
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        depth--;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          depth--;
          return;
        }
        stop();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) num();
    else stop();
  };
  try {
    value();
    ws();
    return i < n ? i : n;
  } catch (e) {
    if (e instanceof Stop) return Math.min(i, n);
    throw e;
  }
}
