import assert from "node:assert/strict";
import sharp from "sharp";
import { decodeQuietly, warningsDelivered } from "./decoder_warnings.ts";

sharp.cache(false);

async function jpeg(): Promise<Uint8Array> {
  return new Uint8Array(
    await sharp({
      create: {
        width: 320,
        height: 240,
        channels: 3,
        background: "#000",
        noise: { type: "gaussian", mean: 128, sigma: 40 },
      },
    }).jpeg().toBuffer(),
  );
}

/** A lenient decode: a truncated JPEG decodes with warnings and no error. */
const decode = (b: Uint8Array) => sharp(b, { failOn: "none" }).raw().toBuffer();

Deno.test("decodeQuietly: a clean decode alone is quiet; a warning delivered to ANY pipeline meanwhile is not", async () => {
  const whole = await jpeg();
  const cut = whole.subarray(0, Math.floor(whole.length * 0.6));

  assert.equal((await decodeQuietly(() => decode(whole))).quiet, true);

  const before = warningsDelivered();
  const own = await decodeQuietly(() => decode(cut));
  assert.equal(own.quiet, false, "a decode that warns is not quiet");
  assert.ok(own.value.length > 0, "the lenient decode still returns pixels");
  assert.ok(warningsDelivered() > before, "the warning was counted");

  // The clean decode hears nothing itself, yet a neighbour's warning arrived while it ran: its
  // window is not quiet (the warning could as well have been its own, delivered elsewhere).
  const heardByClean: string[] = [];
  const mixed = await decodeQuietly(async () => {
    const img = sharp(whole, { failOn: "none" }).on("warning", (w: string) => heardByClean.push(w));
    const [px] = await Promise.all([img.raw().toBuffer(), decode(cut)]);
    return px;
  });
  assert.equal(mixed.quiet, false);

  await assert.rejects(decodeQuietly(() => sharp(cut, { failOn: "error" }).raw().toBuffer()));
});
