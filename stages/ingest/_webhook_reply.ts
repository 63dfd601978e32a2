/**
 * What the ingest webhooks (S3 events, Label Studio) share: a JSON answer and a constant-time
 * token comparison.
 *
 * @example
 * ```ts
 * if (!sameToken(given, expected)) return jsonReply(401, { error: "bad token" });
 * ```
 * @module
 */
import { timingSafeEqual } from "node:crypto";

/** A JSON response with one trailing newline. */
export function jsonReply(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

const encoder = new TextEncoder();

/** Constant-time comparison, so response timing does not reveal how much of a token matched. */
export function sameToken(given: string, expected: string): boolean {
  const a = encoder.encode(given);
  const b = encoder.encode(expected);
  if (a.length !== b.length) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}
