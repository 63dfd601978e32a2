/**
 * An AbortSignal that fires on SIGTERM or SIGINT, for `runWorker({ signal })`: Kubernetes and
 * systemd send SIGTERM, then SIGKILL after their grace period. A second signal while shutting
 * down exits at once (a person pressing Ctrl-C twice means it).
 *
 * @example
 * ```ts
 * const shutdown = shutdownSignal();
 * try {
 *   await runWorker({ ...opts, signal: shutdown.signal });
 * } finally {
 *   shutdown.dispose();
 * }
 * ```
 * @module
 */

export interface ShutdownSignal {
  readonly signal: AbortSignal;
  /** Removes the signal listeners. */
  dispose(): void;
}

const EXIT_CODES: Partial<Record<Deno.Signal, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Listens for `signals` (default SIGTERM and SIGINT). The first aborts `signal` with a reason
 * naming it; a second one exits the process with 128 + the signal number, unless
 * `exitOnSecond` is false.
 *
 * @example
 * ```ts
 * const { signal, dispose } = shutdownSignal(["SIGTERM"]);
 * ```
 */
export function shutdownSignal(
  signals: Deno.Signal[] = ["SIGTERM", "SIGINT"],
  opts: { exitOnSecond?: boolean } = {},
): ShutdownSignal {
  const ac = new AbortController();
  const handlers = signals.map((sig) => {
    const handler = () => {
      if (ac.signal.aborted) {
        if (opts.exitOnSecond ?? true) Deno.exit(EXIT_CODES[sig] ?? 1);
        return;
      }
      ac.abort(new Error(`received ${sig}`));
    };
    Deno.addSignalListener(sig, handler);
    return [sig, handler] as const;
  });
  return {
    signal: ac.signal,
    dispose() {
      for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
    },
  };
}
