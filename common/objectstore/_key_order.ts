/**
 * Key order as S3 lists it.
 * @module
 */

/**
 * Orders keys as S3 does, by UTF-8 bytes (which is code point order, not UTF-16 order:
 * a character beyond U+FFFF sorts after U+E000–U+FFFF).
 *
 * @example
 * ```ts
 * ["b", "a/x", "a-y"].sort(compareKeys); // ["a-y", "a/x", "b"]
 * ```
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
