/**
 * The one hexadecimal formatter of the project: `0x` and lower-case digits.
 * A negative 32-bit number is printed as its unsigned bit pattern (an
 * address or an entry word kept in a signed int); larger numbers and bigints
 * as they are. It sits in emulator/, the lowest layer, so that every layer
 * (and the tools) prints addresses the same way.
 */
export function hex(n: number | bigint): string {
  if (typeof n === 'number' && n < 0 && n >= -0x80000000) return '0x' + (n >>> 0).toString(16);
  return '0x' + n.toString(16);
}
