// Waiting on the database without a bound: a silent network drop (no FIN, no RST) leaves a
// query waiting for the kernel's TCP timeouts, many minutes. The worker loop races its calls
// with the shutdown signal and bounds the calls it makes while shutting down, so SIGTERM stops
// it in bounded time; a call cut short goes on in the background and its result is dropped
// (a claim it still gets is given back if it can be, or its lease expires).

/** What `untilAborted` returns when the signal won the race. */
export const ABORTED: unique symbol = Symbol("aborted");

/** `p`'s value, or `ABORTED` as soon as `signal` aborts (at once if it already has). */
export function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T | typeof ABORTED> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.resolve(ABORTED);
  }
  return new Promise<T | typeof ABORTED>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => {});
      resolve(ABORTED);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** What `within` returns when the time ran out. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** `p`'s value, or `TIMED_OUT` after `ms` (its timer cleared either way). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (!Number.isFinite(ms)) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  p.catch(() => {});
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
