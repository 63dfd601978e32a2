/**
 * Contains the npm:postgres failures that escape every caller when the server goes away
 * (restart, failover): the driver starts promises nobody awaits (the array-type fetch after
 * connecting, the startup of a reconnect that meets "the database system is starting up"), and
 * their rejection is unhandled, which ends a Deno process. Each such rejection is a connection
 * loss the awaited queries have already seen and reported (and the worker loop retries), so
 * it is logged and dropped. Any other unhandled rejection is left alone.
 *
 * The other half of the fix, a write thrown from a timer after the socket closed
 * (porsager/postgres#1154), is patched in `vendor/postgres` (see its `sluice patch` notes).
 *
 * @example
 * ```ts
 * containConnectionLoss();
 * const sql = postgres(url);
 * ```
 * @module
 */
import postgres from "postgres";

/** SQLSTATE classes of a lost or refused connection: 08 connection exception, 57 operator. */
const LOST_SQLSTATE = /^(08|57P0)/;
/** The driver's own codes and socket errors for the same. */
const LOST_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);

/** Whether `err` is the driver reporting a lost, refused or not-yet-ready connection. */
export function isConnectionLoss(err: unknown): boolean {
  if (err instanceof postgres.PostgresError) return LOST_SQLSTATE.test(err.code);
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && LOST_CODES.has(code);
}

let installed = false;
let contained = 0;

/** How many unhandled connection-loss rejections were contained in this process. */
export function containedConnectionLosses(): number {
  return contained;
}

/** Installs the process-wide guard once; later calls do nothing. */
export function containConnectionLoss(): void {
  if (installed) return;
  installed = true;
  globalThis.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
    if (!isConnectionLoss(e.reason)) return;
    e.preventDefault();
    contained++;
    const reason = e.reason as Error & { code?: string };
    console.error(JSON.stringify({
      ts: new Date().toISOString(),
      level: "warn",
      msg: "manifest database connection lost (unawaited driver promise contained)",
      code: reason.code,
      error: reason.message,
      contained,
    }));
  });
}
