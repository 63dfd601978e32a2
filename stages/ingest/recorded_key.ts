/**
 * The form in which a source key is recorded in the manifest. Control characters (NUL above
 * all: SQLite keeps a string with a NUL whole but reads it back cut there, so `a.jpg\0x` came
 * back as `a.jpg` and the wrong object was ingested) are written as `\xNN` escapes. The
 * recorded key then still names the refused key for the operator, and the object store's key
 * check refuses it (no backslashes), so the item fails as `invalid_key` without any read.
 *
 * @example
 * ```ts
 * recordedKey("a.jpg\u0000x"); // "a.jpg\\x00x"
 * recordedKey("a.jpg");        // "a.jpg"
 * ```
 * @module
 */

/** `key` with each control character replaced by `\xNN`. */
export function recordedKey(key: string): string {
  // deno-lint-ignore no-control-regex
  const control = /[\x00-\x1f\x7f]/g;
  return key.replace(control, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
