/**
 * Whether a decode ran without any decoder warning, told reliably while other sharp pipelines
 * run at the same time.
 *
 * libvips reports decoder warnings (libjpeg's "Corrupt JPEG data: …", "error in tile …") through
 * ONE process-wide queue, and sharp drains that queue in the completion callback of whichever
 * pipeline finishes next, emitting each message as a `warning` event of THAT pipeline (sharp 0.35,
 * `src/common.cc` `VipsWarningPop`, called from pipeline, metadata and stats). With several decodes
 * in flight, a pipeline's own `warning` events can therefore carry a neighbour's warning (measured:
 * 33 of 160 clean JPEGs decoded beside truncated ones heard a warning) and miss its own, which a
 * neighbour took. Errors are per pipeline and unaffected.
 *
 * So this module counts every `warning` event delivered to ANY sharp pipeline of this isolate, and
 * {@link decodeQuietly} calls a decode quiet only when none was delivered, to anyone, while it ran:
 * its own warnings are pushed while it runs and drained, at the latest, by its own completion, so
 * one of its warnings cannot go unheard in that window. A noisy window is no verdict, only "not
 * known to be clean": callers then decide by decoding again, by errors alone.
 *
 * Sharp used from another isolate (a Deno `Worker`) drains the same queue but is counted in that
 * isolate; Sluice decodes untrusted images on the main isolate only.
 *
 * @example
 * ```ts
 * const { value, quiet } = await decodeQuietly(() => sharp(bytes, { failOn: "warning" }).raw().toBuffer());
 * if (quiet) acceptWithoutAnotherDecode(value);
 * ```
 * @module
 */
import sharp from "sharp";

const TAPPED = Symbol.for("sluice.decoderWarningsTap");

interface Tappable {
  emit(event: string | symbol, ...args: unknown[]): boolean;
  [TAPPED]?: { heard: number };
}

/** The counter on sharp's prototype (one per loaded copy of sharp; installed once). */
function tap(): { heard: number } {
  const proto = sharp.prototype as unknown as Tappable;
  const existing = proto[TAPPED];
  if (existing) return existing;
  const counter = { heard: 0 };
  const emit = proto.emit;
  // Every warning of every pipeline goes through emit("warning", message): sharp's debuglog
  // callback is the only caller. Counting there needs no listener on each instance.
  proto.emit = function (this: Tappable, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "warning") counter.heard++;
    return emit.call(this, event, ...args);
  };
  proto[TAPPED] = counter;
  return counter;
}

const counter = tap();

/** How many decoder warnings sharp has delivered in this isolate, to any pipeline, so far. */
export function warningsDelivered(): number {
  return counter.heard;
}

/**
 * Runs `decode` and says whether it was quiet: no sharp pipeline in this isolate was told of a
 * decoder warning between its start and its end. A rejection passes through unchanged.
 */
export async function decodeQuietly<T>(decode: () => Promise<T>): Promise<{
  value: T;
  quiet: boolean;
}> {
  const before = counter.heard;
  const value = await decode();
  return { value, quiet: counter.heard === before };
}
