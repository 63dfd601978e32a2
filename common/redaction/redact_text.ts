/**
 * The one place where credentials are taken out of text before it leaves the process: error
 * messages, log lines, status and readiness payloads, manifest rows. It hides
 *
 * - the password of any `scheme://user:password@host` inside the text (any scheme, any case, an
 *   `@` inside the password included; `scheme://token@host` keeps its user name);
 * - values of credential-like query parameters (`?password=`, `&token=`, `secret`, `api_key`,
 *   `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, ...);
 * - `Basic …` / `Bearer …` authorization values;
 * - every literal secret registered with {@link rememberSecret} (the configuration loader
 *   registers each value of a field marked secret: S3 keys, tokens, passwords).
 *
 * @example
 * ```ts
 * redactText("GET http://ann:p@ss@mlflow:5000/x?token=abc failed");
 * // "GET http://ann:***redacted***@mlflow:5000/x?token=***redacted*** failed"
 * ```
 * @module
 */

/** What a secret is replaced with. */
export const REDACTED = "***redacted***";

// scheme://userinfo@ — userinfo runs to the LAST "@" before the path, query, fragment or a space,
// so an unencoded "@" inside a password is hidden too.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@"'<>]*(?:@[^\s/?#@"'<>]*)*)@/gi;
const QUERY_SECRET =
  /([?&;](?:[\w.-]*?(?:password|passwd|pwd|token|secret|signature|credential|api[_-]?key|apikey|auth)[\w.-]*?)=)([^&#\s"'<>]*)/gi;
const AUTH_HEADER = /\b(Basic|Bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}/g;

const known = new Set<string>();

/**
 * Registers a secret value so that {@link redactText} hides it wherever it appears (values
 * shorter than 4 characters are ignored: hiding them would mangle ordinary text).
 *
 * @example
 * ```ts
 * rememberSecret(config.s3.secretAccessKey);
 * ```
 */
export function rememberSecret(value: string | undefined): void {
  if (typeof value !== "string" || value.length < 4) return;
  known.add(value);
  // The forms in which the value commonly shows up again: percent-encoded in a URL.
  const encoded = encodeURIComponent(value);
  if (encoded !== value) known.add(encoded);
}

function hideUserinfo(_m: string, scheme: string, userinfo: string): string {
  const colon = userinfo.indexOf(":");
  if (colon < 0) return `${scheme}${userinfo}@`;
  return `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@`;
}

/**
 * Returns `text` with every credential it recognises replaced by {@link REDACTED}.
 *
 * @example
 * ```ts
 * redactText("postgres://app:pw@db/sluice"); // "postgres://app:***redacted***@db/sluice"
 * ```
 */
export function redactText(text: string): string {
  let out = text;
  if (out.includes("://")) out = out.replace(URL_USERINFO, hideUserinfo);
  if (/[?&;]/.test(out)) {
    out = out.replace(QUERY_SECRET, (_m, head: string) => `${head}${REDACTED}`);
  }
  out = out.replace(AUTH_HEADER, (_m, kind: string, space: string) => `${kind}${space}${REDACTED}`);
  for (const value of known) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  return out;
}

/**
 * A deep copy of `value` in which every string went through {@link redactText} (errors become
 * their redacted messages). For payloads: status documents, log fields.
 *
 * @example
 * ```ts
 * redactDeep({ lastLoadError: "no answer from http://u:pw@h" });
 * ```
 */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (depth > 32 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return redactText(value.message);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1);
  return out;
}
