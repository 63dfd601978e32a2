/**
 * What a failed `fetch` says and what it means for a retry. Deno's `fetch` throws
 * `TypeError: fetch failed` whose `cause` holds the real reason (`tcp connect error: Connection
 * refused (os error 111)`, `received corrupt message of type InvalidContentType`); this module
 * walks the cause chain so the reason reaches the error message, and sorts failures into:
 *
 * - `refused`: the connection was never made (refused, reset before connecting, no route, DNS):
 *   the server did not see the request, so even a non-idempotent call may be sent again;
 * - `protocol`: TLS or HTTP protocol mismatch (`https://` against a plain-HTTP server, a bad
 *   certificate): retrying cannot help, fail at once;
 * - `timeout`: no answer within the request's timeout: the server may have acted on it;
 * - `unknown`: the connection broke after the request went out: the server may have acted on it.
 *
 * @example
 * ```ts
 * try { await fetch(url); } catch (err) {
 *   describeNetworkError(err); // "fetch failed: … tcp connect error: Connection refused (os error 111)"
 *   classifyNetworkError(err); // "refused"
 * }
 * ```
 * @module
 */

/** How a network failure bears on retrying; see the module docs. */
export type NetworkFailure = "refused" | "protocol" | "timeout" | "unknown";

function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  const seen = new Set<unknown>();
  for (let e = err; e !== undefined && e !== null && !seen.has(e) && out.length < 8;) {
    seen.add(e);
    out.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/**
 * The messages of `err` and of its causes, joined with ": " (repeats left out), so that
 * `fetch failed` carries `Connection refused` with it.
 *
 * @example
 * ```ts
 * describeNetworkError(new TypeError("fetch failed", { cause: new Error("Connection refused") }));
 * // "fetch failed: Connection refused"
 * ```
 */
export function describeNetworkError(err: unknown): string {
  const parts: string[] = [];
  for (const e of chain(err)) {
    const m = messageOf(e).trim();
    if (m && !parts.some((p) => p.includes(m))) parts.push(m);
  }
  return parts.join(": ") || "unknown network error";
}

const PROTOCOL =
  /InvalidContentType|corrupt message|certificate|\bTLS\b|\bSSL\b|handshake|wrong version number|invalid HTTP version|invalid peer|UnknownIssuer|NotValidForName|http2 error|unsupported protocol|InvalidMessage|record overflow/i;
const REFUSED =
  /Connection refused|ECONNREFUSED|os error 111|No route to host|EHOSTUNREACH|Network is unreachable|ENETUNREACH|dns error|failed to lookup address|Name or service not known|ENOTFOUND/i;

/**
 * Sorts a `fetch` failure into {@link NetworkFailure}.
 *
 * @example
 * ```ts
 * classifyNetworkError(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
 * // "timeout"
 * ```
 */
export function classifyNetworkError(err: unknown): NetworkFailure {
  const all = chain(err);
  if (all.some((e) => (e as { name?: unknown })?.name === "TimeoutError")) return "timeout";
  const text = describeNetworkError(err);
  if (PROTOCOL.test(text)) return "protocol";
  if (REFUSED.test(text)) return "refused";
  return "unknown";
}
