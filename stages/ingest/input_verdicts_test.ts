// Issue 12 item 8: a JPEG that decodes with libjpeg's "Corrupt JPEG data" warnings is ingested
// with the warning on its image row and counted; an object with a suffix ingest does not accept
// (an SVG, a text file) gets a manifest row with its verdict, without being downloaded.
import assert from "node:assert/strict";
import sharp from "sharp";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { runIngestOnce } from "./run_once.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

/** A noisy JPEG with a bogus marker in its scan: libjpeg warns, then decodes to the end. */
async function warnedJpeg(): Promise<Uint8Array> {
  const raw = new Uint8Array(256 * 256 * 3).map((_, i) => (i * 7919) % 251);
  const jpg = new Uint8Array(
    await sharp(raw, { raw: { width: 256, height: 256, channels: 3 } }).jpeg({ quality: 90 })
      .toBuffer(),
  );
  const mid = Math.floor(jpg.length * 0.6);
  jpg.set([0xff, 0xd5], mid);
  // The premise: strict decoding refuses it, the default (`error`) decodes it.
  await assert.rejects(
    sharp(jpg, { failOn: "warning" }).raw().toBuffer(),
    /Corrupt JPEG data/,
  );
  await sharp(jpg, { failOn: "error" }).raw().toBuffer();
  return jpg;
}

Deno.test({
  name: "ingest: a JPEG decoded with warnings records them; unaccepted suffixes get a row",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const env = await openTestEnv(server);
    try {
      await env.put("good.jpg", await makeImage({ rgb: [200, 10, 10] }));
      await env.put("warned.jpg", await warnedJpeg());
      await env.put(
        "drawing.svg",
        new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'),
      );
      await env.put("notes.txt", new TextEncoder().encode("hello"));

      const summary = await runIngestOnce(env.config, { ...env, progress: false });
      assert.equal(summary.worker.done, 2);

      const byKey = new Map(
        (await env.manifest.listImages({ limit: 100 })).map((i) => [i.sourceKey, i]),
      );
      const warned = byKey.get("warned.jpg");
      assert.equal(warned?.status, "ingested");
      // libvips' message, or sharp's generic one when concurrent decodes lose libvips' text.
      assert.match(warned?.decodeWarning ?? "", /Corrupt JPEG data|Warning treated as error/);
      assert.equal(byKey.get("good.jpg")?.decodeWarning, null);

      for (const key of ["drawing.svg", "notes.txt"]) {
        const row = byKey.get(key);
        assert.ok(row, `expected a manifest row for ${key}, found none`);
        assert.equal(row.status, "failed", key);
        assert.equal(row.error?.split(":")[0], "unsupported_suffix", key);
      }
      // Recorded as refused: nothing queued for them, nothing fetched.
      const work = await env.manifest.listWork("ingest", "failed");
      assert.deepEqual(work.filter((w) => /svg|txt/.test(w.itemId)), []);
      assert.equal(summary.images.failed, 2);

      const text = await env.metrics.metrics();
      assert.match(text, /sluice_ingest_decode_warnings_total 1\n/);
      assert.match(text, /sluice_ingest_failures_total\{reason="unsupported_suffix"\} 2/);
    } finally {
      await env.close();
      await server.stop();
    }
  },
});
