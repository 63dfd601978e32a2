/**
 * Gathers the worker loop's completions into groups and records each group with one
 * `completeMany` call (one transaction), instead of one transaction per item. A group is flushed
 * when it reaches `maxItems` or `maxDelayMs` after its first item, whichever comes first. Each
 * caller's promise settles with its own item's outcome: resolved when recorded, rejected with
 * the error `complete` would have thrown (a `LeaseLostError` for a lost lease), so one lost lease
 * never fails the rest of its group.
 *
 * @example
 * ```ts
 * const batcher = new CompletionBatcher((r) => manifest.completeMany(r), {
 *   maxItems: 64,
 *   maxDelayMs: 5,
 * });
 * await batcher.complete(claim, effects); // throws LeaseLostError if the lease is gone
 * await batcher.flush();
 * ```
 * @module
 */
import { z } from "zod";
import type {
  Claim,
  CompletionOutcome,
  CompletionRequest,
  Effects,
  ManifestStore,
} from "../manifest/mod.ts";

/** Group bounds: count and time. */
export const completionBatchSchema = z.object({
  /** Flush once this many completions wait (default 64). */
  maxItems: z.number().int().positive().max(10_000).default(64),
  /** ...or this long after the first one arrived (default 5 ms). */
  maxDelayMs: z.number().int().nonnegative().max(10_000).default(5),
});

export type CompletionBatchOptions = z.input<typeof completionBatchSchema>;

interface Waiting {
  request: CompletionRequest;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** See the module docs. */
export class CompletionBatcher {
  readonly #completeMany: (requests: CompletionRequest[]) => Promise<CompletionOutcome[]>;
  readonly #maxItems: number;
  readonly #maxDelayMs: number;
  #waiting: Waiting[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #flushing = new Set<Promise<void>>();

  constructor(
    completeMany: (requests: CompletionRequest[]) => Promise<CompletionOutcome[]>,
    options: CompletionBatchOptions = {},
  ) {
    const o = completionBatchSchema.parse(options);
    this.#completeMany = completeMany;
    this.#maxItems = o.maxItems;
    this.#maxDelayMs = o.maxDelayMs;
  }

  /** Completions waiting for their group to be flushed. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Queues one completion; settles when its group has been recorded. */
  complete(claim: Claim, effects: Effects = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ request: { claim, effects }, resolve, reject });
      if (this.#waiting.length >= this.#maxItems) this.#startFlush();
      else if (this.#timer === undefined) {
        this.#timer = setTimeout(() => this.#startFlush(), this.#maxDelayMs);
      }
    });
  }

  /** Flushes what waits now and resolves once every flush started so far has finished. */
  async flush(): Promise<void> {
    this.#startFlush();
    while (this.#flushing.size > 0) await Promise.all([...this.#flushing]);
  }

  #startFlush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const group = this.#waiting.splice(0);
    if (group.length === 0) return;
    const p = this.#record(group).finally(() => this.#flushing.delete(p));
    this.#flushing.add(p);
  }

  async #record(group: Waiting[]): Promise<void> {
    let outcomes: CompletionOutcome[];
    try {
      outcomes = await this.#completeMany(group.map((w) => w.request));
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => {
      const o = outcomes[i];
      if (o?.ok) w.resolve();
      else w.reject(o ? o.error : new Error(`completeMany returned no outcome for item ${i}`));
    });
  }
}

/**
 * The completion function the worker loop uses: grouped through a {@link CompletionBatcher}
 * when `options` are given and the queue has `completeMany`, else the queue's own `complete`.
 *
 * @example
 * ```ts
 * const { complete, flush } = completionPath(manifest, { maxItems: 32, maxDelayMs: 5 });
 * await complete(claim, effects);
 * await flush();
 * ```
 */
export function completionPath(
  queue: Pick<ManifestStore, "complete"> & Partial<Pick<ManifestStore, "completeMany">>,
  options: CompletionBatchOptions | undefined,
): { complete: (claim: Claim, effects: Effects) => Promise<void>; flush: () => Promise<void> } {
  const many = queue.completeMany?.bind(queue);
  if (!options || !many) {
    return { complete: (c, fx) => queue.complete(c, fx), flush: () => Promise.resolve() };
  }
  const batcher = new CompletionBatcher(many, options);
  return { complete: (c, fx) => batcher.complete(c, fx), flush: () => batcher.flush() };
}
