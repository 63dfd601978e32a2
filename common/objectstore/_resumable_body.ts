/**
 * A download body that survives a dropped connection: when reading the current response fails,
 * the transfer is reopened from the first byte not yet delivered (a ranged GET fenced by the
 * object's ETag) instead of failing the whole item. When the tries run out the stream errors
 * with `download_interrupted`, naming the object, the bytes received and the cause.
 * Cancelling the stream cancels the response underneath, so its connection is given back.
 *
 * @example
 * ```ts
 * const body = resumableBody({
 *   first: out.Body.transformToWebStream(), total: out.ContentLength, name: "s3://b/k",
 *   reopen: (offset) => getRange(key, offset, etag), policy,
 * });
 * ```
 * @module
 */
import { messageOf, SluiceError } from "../errors/mod.ts";
import { backoffDelayMs, type RetryPolicy } from "./_retry.ts";

export interface ResumableBodyOptions {
  /** The body of the first response. */
  first: ReadableStream<Uint8Array>;
  /** Opens the rest of the object from byte `offset` (a ranged request). */
  reopen: (offset: number) => Promise<ReadableStream<Uint8Array>>;
  /** Object size when known: a body that ends short of it is resumed too. */
  total?: number;
  /** How the object is named in errors (its URI). */
  name: string;
  /** Tries per interruption-free stretch: reset after each chunk received. */
  policy: RetryPolicy;
  /** Called before each resume (for logs and tests). */
  onResume?: (info: { offset: number; attempt: number; error: unknown }) => void;
}

/** The transfer of an object was cut and could not be resumed. */
export class DownloadInterruptedError extends SluiceError {
  constructor(name: string, received: number, total: number | undefined, cause: unknown) {
    super(
      "download_interrupted",
      `download of ${name} interrupted after ${received}${
        total === undefined ? "" : ` of ${total}`
      } bytes: ${messageOf(cause)}`,
      { cause },
    );
  }
}

/** Wraps `first` so that read failures resume with `reopen` (see module doc). */
export function resumableBody(opts: ResumableBodyOptions): ReadableStream<Uint8Array> {
  let reader = opts.first.getReader();
  let offset = 0;
  let failures = 0;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await reader.read();
          if (step.done && opts.total !== undefined && offset < opts.total) {
            throw new Error(`body ended early at byte ${offset}`);
          }
        } catch (err) {
          reader.cancel(err).catch(() => {});
          failures++;
          if (failures >= opts.policy.maxAttempts) {
            ctrl.error(new DownloadInterruptedError(opts.name, offset, opts.total, err));
            return;
          }
          opts.onResume?.({ offset, attempt: failures, error: err });
          await new Promise((r) => setTimeout(r, backoffDelayMs(failures, opts.policy)));
          try {
            reader = (await opts.reopen(offset)).getReader();
          } catch (reopenErr) {
            ctrl.error(new DownloadInterruptedError(opts.name, offset, opts.total, reopenErr));
            return;
          }
          continue;
        }
        if (step.done) {
          ctrl.close();
          return;
        }
        if (step.value.byteLength === 0) continue;
        offset += step.value.byteLength;
        failures = 0;
        ctrl.enqueue(step.value);
        return;
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  });
}
