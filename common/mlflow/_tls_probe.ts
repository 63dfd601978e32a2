/**
 * A TLS handshake check for `https://` tracking URIs. A plain-HTTP server that receives a TLS
 * ClientHello often waits for the rest of a "request line" that never comes (gunicorn does), so
 * the client sees nothing until its request timeout, once per retry: minutes before the real
 * problem shows. One handshake with a short deadline tells the two apart at once.
 *
 * @example
 * ```ts
 * const { problem } = await probeTls("https://127.0.0.1:5000", 5_000);
 * if (problem) throw new Error(problem); // "no TLS answer within 5 s: is it a plain-HTTP server?"
 * ```
 * @module
 */
import { classifyNetworkError, describeNetworkError } from "./_network_error.ts";

/**
 * Performs one TLS handshake with the host of `baseUrl`. `problem` describes a protocol
 * problem (no TLS answer within `timeoutMs`, a corrupt or refused handshake, a bad certificate),
 * or is null when the handshake succeeded or failed for another reason (refused, reset: the ordinary
 * retry path handles those).
 */
export async function probeTls(
  baseUrl: string,
  timeoutMs: number,
): Promise<{ problem: string | null; handshook: boolean }> {
  const url = new URL(baseUrl);
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 443);
  let conn: Deno.TlsConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    conn = await Deno.connectTls({ hostname, port });
    const c = conn;
    await Promise.race([
      c.handshake(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error("timeout"));
        }, timeoutMs);
      }),
    ]);
    return { problem: null, handshook: true };
  } catch (err) {
    if (timedOut) {
      return {
        problem: `no TLS answer from ${url.host} within ${timeoutMs / 1000} s (is it a ` +
          `plain-HTTP server? then use http://)`,
        handshook: false,
      };
    }
    // Refused, reset, unreachable: not a protocol problem; the retry path deals with those.
    if (classifyNetworkError(err) !== "protocol") return { problem: null, handshook: false };
    return {
      problem: `TLS handshake with ${url.host} failed: ${describeNetworkError(err)}`,
      handshook: false,
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* already closed */ }
  }
}
