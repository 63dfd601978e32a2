// Issue 12: the bad-input corpus, generated here. One ingest batch mixes good images with every
// kind of bad object (corrupt, truncated, 0-byte, pixel bombs (over the limit, and a PNG header
// claiming 10^10 pixels), non-image named .jpg, SVG, keys with "../", absolute, a NUL byte (via
// an S3 event) and percent-encoded dot segments, a broken annotation file) and must end
// with every object recorded with a named verdict, no crash, and the good items done; invalid
// configuration values are refused at load time, each named. Prints the counts.
import { objectCreatedEvent } from "./support/s3_event.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { loadConfig } from "../common/config/mod.ts";
import { ConfigError } from "../common/config/errors.ts";
import { IngestSettingsSchema } from "../stages/ingest/config.ts";
import { runIngestOnce } from "../stages/ingest/run_once.ts";
import { createIngestStage } from "../stages/ingest/stage.ts";
import { makeImage, openTestEnv } from "../stages/ingest/_test_env.ts";
import { pngBombHeader } from "../stages/normalize/_test_fixtures.ts";
import { s3Availability, startS3Server } from "./harness/s3.ts";

const s3 = await s3Availability();

async function noisy(format: "png" | "jpeg", width: number, height: number): Promise<Uint8Array> {
  const img = sharp({
    create: {
      width,
      height,
      channels: 3,
      background: "#000000",
      noise: { type: "gaussian", mean: 128, sigma: 30 },
    },
  });
  return new Uint8Array(await (format === "png" ? img.png() : img.jpeg()).toBuffer());
}

/** Key → the verdict it must get: a status, and for failures the reason code. */
type Expected = { status: "ingested" | "duplicate" } | { status: "failed"; reason: string };

// Run plain and with the fused ingest (`renderVariants`): the same verdicts either way.
for (const renderVariants of [false, true]) {
  Deno.test({
    name: "bad-input corpus: every object recorded with a named verdict, the good ones done" +
      (renderVariants ? " (fused ingest: renderVariants)" : ""),
    ignore: !s3.ok && Deno.env.get("CI") !== "true",
    fn: async () => {
      const server = await startS3Server();
      const env = await openTestEnv(server, {
        settings: {
          maxPixels: 20_000,
          maxBytes: 40_000,
          annotations: ["labels/broken.json"],
          // The NUL key arrives as an S3 event (listings cannot carry it), on loopback.
          insecureWebhook: true,
          renderVariants,
        },
      });
      try {
        const enc = (s: string) => new TextEncoder().encode(s);
        const expected = new Map<string, Expected>();
        const put = async (key: string, body: Uint8Array, verdict: Expected) => {
          await env.put(key, body);
          expected.set(key, verdict);
        };
        for (let i = 0; i < 5; i++) {
          await put(`good/${i}.jpg`, await makeImage({ rgb: [40 * i, 200, 10] }), {
            status: "ingested",
          });
        }
        const png = await noisy("png", 90, 60);
        const jpg = await noisy("jpeg", 90, 60);
        const garbage = new Uint8Array(2048).map((_, i) => (i * 7919) & 0xff);
        garbage.set([0xff, 0xd8, 0xff, 0xe0]);
        const failed = (reason: string): Expected => ({ status: "failed", reason });
        await put("bad/corrupt.jpg", garbage, failed("corrupt_image"));
        await put(
          "bad/truncated.png",
          png.slice(0, Math.floor(png.length * 0.6)),
          failed(
            "corrupt_image",
          ),
        );
        await put(
          "bad/truncated.jpg",
          jpg.slice(0, Math.floor(jpg.length * 0.5)),
          failed(
            "corrupt_image",
          ),
        );
        await put("bad/empty.jpg", new Uint8Array(0), failed("empty_object"));
        await put(
          "bad/bomb.png",
          await makeImage({ width: 200, height: 200, format: "png" }),
          failed(
            "too_many_pixels",
          ),
        );
        await put(
          "bad/header-bomb.png",
          pngBombHeader(100_000, 100_000),
          failed("too_many_pixels"),
        );
        await put("bad/huge.jpg", await noisy("jpeg", 500, 500), failed("too_large"));
        await put("bad/html.jpg", enc("<html>surprise</html>"), failed("unsupported_format"));
        await put("bad/pdf.png", enc("%PDF-1.4\n%âãÏÓ\n"), failed("unsupported_format"));
        await put(
          "bad/drawing.svg",
          enc('<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>'),
          failed("unsupported_suffix"),
        );
        await put(
          "bad/svg-named.jpg",
          enc('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'),
          failed("unsupported_format"),
        );
        await put("../escape.jpg", await makeImage({ rgb: [1, 2, 3] }), failed("invalid_key"));
        await put("a/../../up.jpg", await makeImage({ rgb: [7, 8, 9] }), failed("invalid_key"));
        await put("/abs.jpg", await makeImage({ rgb: [4, 5, 6] }), failed("invalid_key"));
        // Literal percent signs: not a traversal, an ordinary (odd) key, ingested as named.
        await put("%2e%2e/pct.jpg", await makeImage({ rgb: [90, 91, 92] }), { status: "ingested" });
        await put(
          "labels/broken.json",
          enc('[{"data": {"image": "x.jpg"'),
          failed(
            "unsupported_suffix",
          ),
        );

        // A key with a NUL byte, named by an S3 event; the object before the NUL exists.
        await put("nul/x.jpg", await makeImage({ rgb: [33, 66, 99] }), { status: "ingested" });
        const nulKey = "nul/x.jpg\u0000evil.jpg";
        const stage = createIngestStage(env.config, { ...env });
        try {
          const event = objectCreatedEvent(env.rawBucket, nulKey);
          const res = await stage.handler.fetch(
            new Request("http://x/events", { method: "POST", body: JSON.stringify(event) }),
          );
          assert.equal(res.status, 200, await res.text());
        } finally {
          await stage.close();
        }

        const summary = await runIngestOnce(env.config, { ...env, progress: false });

        const rows = await env.manifest.listImages({ limit: 1000 });
        const byKey = new Map(rows.map((r) => [r.sourceKey, r]));
        const counts: Record<string, number> = {};
        for (const [key, want] of expected) {
          const row = byKey.get(key);
          assert.ok(row, `${key}: expected a manifest row, found none`);
          const verdict = row.status === "failed"
            ? `failed:${row.error?.split(":")[0]}`
            : row.status;
          counts[verdict] = (counts[verdict] ?? 0) + 1;
          assert.equal(row.status, want.status, `${key}: ${row.error}`);
          if (want.status === "failed") {
            assert.equal(row.error?.split(":")[0], want.reason, `${key}: ${row.error}`);
          }
        }
        // The NUL key: its own row (not cut at the NUL), refused, nothing read.
        const extra = rows.filter((r) => !expected.has(r.sourceKey));
        assert.equal(extra.length, 1, `expected one row for the NUL key, found ${extra.length}`);
        assert.match(extra[0].sourceKey, /^nul\/x\.jpg.+evil\.jpg$/);
        assert.equal(extra[0].status, "failed");
        assert.match(extra[0].error ?? "", /^invalid_key/);
        assert.equal(extra[0].sha256, null, "expected no object read for the NUL key");
        counts["failed:invalid_key"]++;
        assert.equal(rows.length, expected.size + 1, "one row per object, no more");
        // Nothing left half-done: no item pending or leased on the ingest queue.
        const ingest = (await env.manifest.workCounts("ingest")).ingest;
        assert.equal((ingest.pending ?? 0) + (ingest.leased ?? 0), 0);
        // Fused: every ingested image has its variants recorded, nothing else has any.
        const variants = await env.manifest.listVariants({ imageIds: rows.map((r) => r.id) });
        for (const r of rows) {
          const mine = variants.filter((v) => v.imageId === r.id).length;
          const want = renderVariants && r.status === "ingested" ? 3 : 0;
          assert.equal(mine, want, `${r.sourceKey} (${r.status}): variants recorded`);
        }
        const [ann] = summary.annotations;
        assert.equal(ann.status, "failed");
        assert.equal(ann.reason, "bad_annotation_file");
        console.log(
          `bad-input corpus: ${expected.size + 1} objects, ${
            Object.values(counts).reduce((a, b) => a + b, 0)
          } recorded (100%), 0 crashes; verdicts ${JSON.stringify(counts)}; ` +
            `annotation file: ${ann.reason}`,
        );
      } finally {
        await env.close();
        await server.stop();
      }
    },
  });
}

Deno.test("bad-input corpus: invalid configuration values are refused, each named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-bad-config-" });
  try {
    const cases: [string, Record<string, unknown>, string][] = [
      ["negative pixel limit", { maxPixels: -1 }, "ingest.maxPixels"],
      ["zero byte limit", { maxBytes: 0 }, "ingest.maxBytes"],
      ["unknown failOn", { failOn: "sometimes" }, "ingest.failOn"],
      ["traversing prefix", { prefix: "../up" }, "ingest.prefix"],
      ["absolute prefix", { prefix: "/etc" }, "ingest.prefix"],
      ["page size over 1000", { pageSize: 5000 }, "ingest.pageSize"],
      ["unknown key", { maxPixel: 5 }, "ingest"],
      ["string for a number", { augmentCopies: "two" }, "ingest.augmentCopies"],
    ];
    for (const [what, settings, path] of cases) {
      const file = join(dir, "config.json");
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          source: { url: `file://${dir}/src` },
          objectStore: { url: `file://${dir}/objects` },
          manifest: { url: `sqlite://${dir}/m.db` },
          ingest: settings,
        }),
      );
      const err = await loadConfig({
        stage: "ingest",
        stageSchema: IngestSettingsSchema,
        argv: ["--config", file],
        env: {},
        cwd: dir,
      }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, `${what}: expected a ConfigError, found ${err}`);
      assert.equal(err.code, "invalid_config");
      assert.ok(
        err.issues.some((i) => i.path.startsWith(path)),
        `${what}: expected an issue at ${path}, found ${err.issues.map((i) => i.path)}`,
      );
    }
    console.log(`bad-input corpus: ${cases.length} invalid config values refused, each named`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
