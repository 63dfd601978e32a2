/**
 * Key validation: every adapter checks a key with {@link validateKey} before touching storage.
 *
 * @example
 * ```ts
 * validateKey("images/ab/x.jpg"); // "images/ab/x.jpg"
 * ```
 * @module
 */
import { InvalidKeyError } from "./errors.ts";

/** Longest key accepted, in UTF-8 bytes (S3's own limit). */
export const MAX_KEY_BYTES = 1024;

/**
 * Checks that a key is a safe relative path and returns it unchanged.
 * Refused: empty, longer than 1024 UTF-8 bytes, NUL or other control characters, a leading `/`
 * or `\`, a Windows drive letter, any `.` or `..` segment, empty segments (`a//b`), backslashes.
 *
 * @example
 * ```ts
 * validateKey("images/ab/x.jpg"); // "images/ab/x.jpg"
 * validateKey("../etc/passwd");   // throws InvalidKeyError
 * ```
 */
export function validateKey(key: string): string {
  if (typeof key !== "string" || key.length === 0) {
    throw new InvalidKeyError(String(key), "expected a non-empty key, found an empty one");
  }
  if (new TextEncoder().encode(key).length > MAX_KEY_BYTES) {
    throw new InvalidKeyError(key, `expected at most ${MAX_KEY_BYTES} UTF-8 bytes`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(key)) {
    throw new InvalidKeyError(key, "expected no NUL or control characters");
  }
  if (key.includes("\\")) throw new InvalidKeyError(key, "expected no backslashes");
  if (key.startsWith("/")) {
    throw new InvalidKeyError(key, "expected a relative key, found an absolute path");
  }
  if (/^[A-Za-z]:/.test(key)) {
    throw new InvalidKeyError(key, "expected a relative key, found a drive letter");
  }
  for (const seg of key.split("/")) {
    if (seg === "..") throw new InvalidKeyError(key, 'expected no ".." segment');
    if (seg === ".") throw new InvalidKeyError(key, 'expected no "." segment');
  }
  if (/\/\//.test(key)) throw new InvalidKeyError(key, "expected no empty path segment");
  return key;
}
