/**
 * Named errors shared by every module. Each carries a stable `code` so that
 * failures recorded in the manifest can be grouped and counted by reason.
 *
 * @example
 * ```ts
 * throw new SluiceError("invalid_key", `object key "${key}": expected a relative path, found ".."`);
 * ```
 * @module
 */

import { redactText } from "../redaction/redact_text.ts";

/**
 * Base class: `code` is a short snake_case reason used in metrics labels and manifest rows. The
 * message is redacted when the error is made (credentials never reach a log, status or row).
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(redactText(message), options);
    this.name = "SluiceError";
    this.code = code;
  }
}

/** Returns a short reason code for any thrown value (`SluiceError.code`, else "internal"). */
export function reasonOf(err: unknown): string {
  if (err instanceof SluiceError) return err.code;
  return "internal";
}

/** Returns a one-line message for any thrown value, with credentials redacted. */
export function messageOf(err: unknown): string {
  return redactText(err instanceof Error ? err.message : String(err));
}
