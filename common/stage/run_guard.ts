/**
 * One run at a time per stage, and none after close: the guard a stage's `run()` goes through.
 *
 * @example
 * ```ts
 * const guard = new RunGuard("normalize");
 * const summary = await guard.run(() => runQueue(ctx, { queue: "normalize", process }));
 * guard.close(); // later runs throw stage_closed
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

/**
 * Refuses a second concurrent run (`already_running`) and runs after {@link close}
 * (`stage_closed`).
 */
export class RunGuard {
  readonly #stage: string;
  #running = false;
  #closed = false;

  constructor(stage: string) {
    this.#stage = stage;
  }

  /** Whether a run is in progress. */
  get running(): boolean {
    return this.#running;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the stage closed; returns false when it already was. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Runs `fn` as the stage's only run. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new SluiceError(
        "stage_closed",
        `${this.#stage}: expected an open stage, found it closed`,
      );
    }
    if (this.#running) {
      throw new SluiceError(
        "already_running",
        `${this.#stage}: expected one run at a time, found one running`,
      );
    }
    this.#running = true;
    try {
      return await fn();
    } finally {
      this.#running = false;
    }
  }
}
