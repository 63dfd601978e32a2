/**
 * Which failures are worth retrying. A corrupt JPEG stays corrupt however often it is claimed;
 * a network blip or a full staging disk does not.
 *
 * @example
 * ```ts
 * const retry = !isPermanentFailure(err);
 * await manifest.fail(claim, reasonOf(err), messageOf(err), { retry });
 * ```
 * @module
 */
import { reasonOf } from "../errors/mod.ts";

/** Reason codes that mean "this item will never succeed as it is". */
export const PERMANENT_CODES: ReadonlySet<string> = new Set([
  "invalid_key",
  "not_an_image",
  "corrupt_image",
  "too_large",
  "unsupported_format",
]);

/**
 * True when `err` says it is not retryable (`retryable === false`) or its reason code
 * (`reasonOf`) is in {@link PERMANENT_CODES} or `extraCodes`.
 *
 * @example
 * ```ts
 * isPermanentFailure(new SluiceError("corrupt_image", "truncated JPEG")); // true
 * isPermanentFailure(new Error("ECONNRESET"));                           // false
 * isPermanentFailure(new SluiceError("quota", "x"), ["quota"]);          // true
 * ```
 */
export function isPermanentFailure(err: unknown, extraCodes: Iterable<string> = []): boolean {
  if (typeof err === "object" && err !== null && "retryable" in err) {
    if ((err as { retryable: unknown }).retryable === false) return true;
  }
  const code = reasonOf(err);
  if (PERMANENT_CODES.has(code)) return true;
  for (const c of extraCodes) if (c === code) return true;
  return false;
}
