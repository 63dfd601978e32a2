/**
 * One closing policy for what a stage opened: close everything in reverse order of opening, log
 * each failure, and then throw one {@link CloseError} that names every closer that failed.
 *
 * @example
 * ```ts
 * const closers = new Closers(log);
 * const manifest = closers.own("manifest", await openManifest(url));
 * try {
 *   // ...
 * } finally {
 *   await closers.close(); // throws CloseError("manifest: …") if manifest.close() failed
 * }
 * ```
 * @module
 */
import { messageOf } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";

/** Anything with a `close()`. */
export interface Closable {
  close(): Promise<void> | void;
}

/** Thrown by {@link Closers.close} when one or more closers failed; `errors` holds each cause. */
export class CloseError extends AggregateError {
  /** Reason code, as `SluiceError.code` elsewhere. */
  readonly code = "close_failed";
  /** The names of the closers that failed, in the order they ran. */
  readonly failed: readonly string[];
  constructor(failed: { name: string; error: unknown }[]) {
    super(
      failed.map((f) => f.error),
      `closing: expected every resource to close, found ${failed.length} failed: ${
        failed.map((f) => `${f.name}: ${messageOf(f.error)}`).join("; ")
      }`,
    );
    this.name = "CloseError";
    this.failed = failed.map((f) => f.name);
  }
}

/**
 * The closers of what one stage opened (not what it was given).
 *
 * @example
 * ```ts
 * const closers = new Closers(log);
 * closers.add("sqs client", () => sqs.destroy());
 * await closers.close();
 * ```
 */
export class Closers {
  readonly #log: Logger;
  readonly #items: { name: string; close: () => Promise<void> | void }[] = [];

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Registers `close` under `name`; closers run in reverse order of registration. */
  add(name: string, close: () => Promise<void> | void): void {
    this.#items.push({ name, close });
  }

  /** Registers `resource.close()` under `name` and returns `resource`. */
  own<T extends Closable>(name: string, resource: T): T {
    this.add(name, () => resource.close());
    return resource;
  }

  /** How many closers are registered and not yet run. */
  get size(): number {
    return this.#items.length;
  }

  /**
   * Runs every closer once (later ones first), logs each failure, and throws a
   * {@link CloseError} naming all that failed. Calling it again does nothing.
   */
  async close(): Promise<void> {
    const failed: { name: string; error: unknown }[] = [];
    for (const item of this.#items.splice(0).reverse()) {
      try {
        await item.close();
      } catch (error) {
        this.#log.warn("close failed", { resource: item.name, error: messageOf(error) });
        failed.push({ name: item.name, error });
      }
    }
    if (failed.length > 0) throw new CloseError(failed);
  }

  /**
   * Closes everything and keeps going whatever fails (each failure is still logged): for the
   * path where opening failed and the opening error is the one to report.
   */
  async closeAfterFailure(): Promise<void> {
    await this.close().catch(() => undefined);
  }
}
