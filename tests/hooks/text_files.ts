/**
 * Line-ending rules for committed text: LF only and a final newline. Binary files (a NUL byte in
 * the first 8 KiB, or a known binary extension) are skipped.
 *
 * @example
 * ```ts
 * textFileProblems("a.ts", new TextEncoder().encode("x\r\n")); // ["a.ts: CRLF line ending on line 1"]
 * ```
 * @module
 */

const BINARY_EXT =
  /\.(png|jpe?g|webp|gif|tiff?|avif|onnx|pt|pth|db|sqlite|gz|zip|tar|ico|pdf|woff2?)$/i;

/** Returns the problems found in one file's bytes (empty when it follows the rules). */
export function textFileProblems(path: string, bytes: Uint8Array): string[] {
  if (BINARY_EXT.test(path) || bytes.subarray(0, 8192).includes(0)) return [];
  if (bytes.length === 0) return [];
  const problems: string[] = [];
  let line = 1;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0d) {
      problems.push(
        bytes[i + 1] === 0x0a
          ? `${path}: CRLF line ending on line ${line}, expected LF`
          : `${path}: bare CR on line ${line}, expected LF`,
      );
      if (problems.length >= 3) break;
    }
    if (bytes[i] === 0x0a) line++;
  }
  if (bytes[bytes.length - 1] !== 0x0a) {
    problems.push(`${path}: no newline at end of file`);
  }
  return problems;
}
