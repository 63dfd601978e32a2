import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";
import { s3Availability, type S3TestServer, startS3Server } from "../../tests/harness/s3.ts";
import { renderAugmentation } from "../../common/images/augment.ts";
import { readImportRecord } from "./annotations_import.ts";
import { sha256Hex } from "./process_item.ts";
import { runIngestOnce } from "./run_once.ts";
import { makeImage, openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();
const pg = postgresAvailability();

/** Every file under `dir`, relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) =>
    join(e.parentPath, e.name).slice(dir.length + 1)
  );
}

async function noisy(format: "png" | "jpeg", width = 90, height = 60): Promise<Uint8Array> {
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

/** One batch mixing good images with every kind of bad input; returns nothing, asserts all. */
async function badInputBatch(server: S3TestServer, manifestUrl?: string): Promise<void> {
  const env = await openTestEnv(server, {
    settings: { maxPixels: 20_000, maxBytes: 30_000, annotations: ["labels/broken.json"] },
    ...(manifestUrl ? { manifestUrl } : {}),
  });
  try {
    const good1 = await makeImage({ rgb: [250, 10, 10] });
    await env.put("good1.jpg", good1);
    await env.put("good2.png", await makeImage({ rgb: [10, 250, 10], format: "png" }));
    await env.put("good3.webp", await makeImage({ rgb: [10, 10, 250], format: "webp" }));
    await env.put("sub/dup-of-good1.jpg", good1);
    await env.put("rotated.jpg", await makeImage({ rgb: [120, 60, 200], orientation: 6 }));
    const garbage = new Uint8Array(2048).map((_, i) => (i * 7919) & 0xff);
    garbage.set([0xff, 0xd8, 0xff, 0xe0]);
    await env.put("corrupt.jpg", garbage);
    const png = await noisy("png");
    await env.put("truncated.png", png.slice(0, Math.floor(png.length * 0.6)));
    await env.put("empty.jpg", new Uint8Array(0));
    await env.put("not-an-image.jpg", new TextEncoder().encode("<html>surprise</html>"));
    await env.put("bomb.png", await makeImage({ width: 200, height: 200, format: "png" }));
    const huge = await noisy("jpeg", 400, 400);
    assert.ok(
      huge.byteLength > 30_000,
      `expected a large test JPEG, found ${huge.byteLength} bytes`,
    );
    await env.put("huge.jpg", huge);
    // Keys S3 accepts but no file system path may be built from.
    await env.put("../escape.jpg", await makeImage({ rgb: [1, 2, 3] }));
    await env.put("/abs.jpg", await makeImage({ rgb: [4, 5, 6] }));
    await env.put("labels/broken.json", new TextEncoder().encode('[{"data": {"image": "x.jpg"'));

    const summary = await runIngestOnce(env.config, { ...env, progress: false });

    assert.equal(summary.discovered.seen, 13);
    assert.equal(summary.worker.done, 5, "good1-3, the duplicate and the rotated image");
    assert.equal(summary.worker.failed, 8);
    // The eight bad images, and the annotation file as an object ingest does not take.
    assert.deepEqual(summary.images, { ingested: 4, duplicate: 1, failed: 9 });

    const byKey = new Map(
      (await env.manifest.listImages({ limit: 100 })).map((i) => [i.sourceKey, i]),
    );
    const reason = (key: string) => byKey.get(key)?.error?.split(":")[0];
    assert.equal(reason("corrupt.jpg"), "corrupt_image");
    assert.equal(reason("truncated.png"), "corrupt_image");
    assert.equal(reason("empty.jpg"), "empty_object");
    assert.equal(reason("not-an-image.jpg"), "unsupported_format");
    assert.equal(reason("bomb.png"), "too_many_pixels");
    assert.equal(reason("huge.jpg"), "too_large");
    assert.equal(reason("../escape.jpg"), "invalid_key");
    assert.equal(reason("/abs.jpg"), "invalid_key");
    assert.equal(reason("labels/broken.json"), "unsupported_suffix");
    for (const k of ["corrupt.jpg", "empty.jpg", "../escape.jpg", "bomb.png"]) {
      assert.equal(byKey.get(k)!.status, "failed", k);
    }
    // Permanent failures are not retried.
    const failedWork = await env.manifest.listWork("ingest", "failed");
    assert.ok(failedWork.every((w) => w.attempts === 1), "expected one attempt per bad item");

    // Whichever of the two identical objects is processed first is the ingested one.
    const pair = [byKey.get("good1.jpg")!, byKey.get("sub/dup-of-good1.jpg")!];
    const g1 = pair.find((i) => i.status === "ingested")!;
    const dup = pair.find((i) => i.status === "duplicate")!;
    assert.ok(
      g1 && dup,
      `expected one ingested and one duplicate, found ${pair.map((i) => i.status)}`,
    );
    assert.equal(g1.format, "jpeg");
    assert.equal(g1.sha256, sha256Hex(good1));
    const datasetKey = `images/${g1.sha256!.slice(0, 2)}/${g1.sha256}.jpg`;
    // Recorded relative to the dataset store (issue 12 item 9).
    assert.equal(g1.datasetUri, datasetKey);
    assert.equal(sha256Hex(await env.objectStore.getBytes(datasetKey)), g1.sha256);
    assert.equal(byKey.get("good2.png")!.datasetUri?.endsWith(".png"), true);
    assert.equal(byKey.get("good3.webp")!.format, "webp");

    assert.equal(dup.duplicateOf, g1.id);
    assert.equal(dup.datasetUri, g1.datasetUri);

    const rot = byKey.get("rotated.jpg")!;
    assert.deepEqual([rot.width, rot.height], [48, 64], "EXIF orientation 6 swaps the sides");
    const published = await env.objectStore.getBytes(
      `images/${rot.sha256!.slice(0, 2)}/${rot.sha256}.jpg`,
    );
    const meta = await sharp(published).metadata();
    assert.deepEqual([meta.width, meta.height, meta.orientation ?? 1], [48, 64, 1]);

    const normalize = (await env.manifest.workCounts("normalize")).normalize;
    assert.equal(normalize.pending, 4, "only ingested, non-duplicate images go on to normalize");

    const [ann] = summary.annotations;
    assert.equal(ann.status, "failed");
    assert.equal(ann.reason, "bad_annotation_file");
    const recorded = await readImportRecord(env.manifest, env.source.uriFor("labels/broken.json"));
    assert.equal(recorded?.status, "failed");

    const text = await env.metrics.metrics();
    assert.match(text, /sluice_ingest_failures_total\{reason="invalid_key"\} 2/);
    assert.match(text, /sluice_ingest_failures_total\{reason="corrupt_image"\} 2/);
    assert.match(text, /sluice_ingest_duplicates_total 1/);
    assert.match(text, /sluice_ingest_objects_ingested_total 4/);
    // Source bytes of the ingested images and the duplicate (the rotated one as uploaded).
    const uploaded = await Promise.all(
      ["good1.jpg", "good2.png", "good3.webp", "sub/dup-of-good1.jpg", "rotated.jpg"].map(
        async (k) => (await env.source.head(k))!.size,
      ),
    );
    assert.match(
      text,
      new RegExp(`sluice_ingest_bytes_total ${uploaded.reduce((a, b) => a + b, 0)}\\n`),
    );

    // Nothing was written outside the staging root, and every lease was cleaned up.
    const files = await listFiles(env.dir);
    const stray = files.filter((f) =>
      !f.startsWith("manifest.db") && f !== "config.json" && !f.startsWith("nvme/")
    );
    assert.deepEqual(stray, []);
    assert.deepEqual(files.filter((f) => f.startsWith("nvme/")), []);
    assert.deepEqual(files.filter((f) => /escape|abs/.test(f)), []);
  } finally {
    await env.close();
  }
}

Deno.test({
  name: "once: bad inputs fail with their reasons while the good items are ingested (SQLite)",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    try {
      await badInputBatch(server);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "once: the same batch against a PostgreSQL manifest",
  ignore: !s3.ok || !pg.ok,
  fn: async () => {
    const server = await startS3Server();
    const db = await startPostgres();
    try {
      await badInputBatch(server, db.url);
    } finally {
      await db.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name: "augmentation: two runs over the same source write identical augmented objects",
  ignore: !s3.ok,
  fn: async () => {
    const server = await startS3Server();
    const settings = {
      augmentCopies: 2,
      augmentRecipe: {
        name: "flipcrop",
        ops: [
          { op: "hflip", p: 0.5 },
          { op: "random_resized_crop", p: 1, scale: [0.6, 1], size: [48, 48] },
          { op: "color", p: 1 },
        ],
      },
      annotations: ["labels/tasks.json"],
    };
    const first = await openTestEnv(server, { settings });
    const second = await openTestEnv(server, { settings, rawBucket: first.rawBucket });
    try {
      await first.put("a.jpg", await makeImage({ width: 96, height: 64, rgb: [30, 160, 90] }));
      const tasks = [{
        id: 1,
        data: { image: "/data/upload/1/9f3a2b1c-a.jpg" },
        annotations: [{
          id: 11,
          result: [{
            id: "r1",
            type: "rectanglelabels",
            from_name: "label",
            to_name: "image",
            original_width: 96,
            original_height: 64,
            value: { x: 25, y: 25, width: 50, height: 50, rectanglelabels: ["thing"] },
          }],
        }],
      }];
      await first.put("labels/tasks.json", new TextEncoder().encode(JSON.stringify(tasks)));

      const runs = [];
      for (const env of [first, second]) {
        const s = await runIngestOnce(env.config, { ...env, progress: false });
        assert.equal(s.worker.done, 1);
        assert.equal(s.annotations[0].matched, 1);
        const [img] = await env.manifest.listImages({ status: "ingested" });
        const augs = await env.manifest.listAugmentations([img.id]);
        runs.push({ env, img, augs });
      }
      const [a, b] = runs;
      assert.equal(a.img.id, b.img.id, "same source URI, same image id");
      assert.equal(a.augs.length, 2);
      assert.deepEqual(
        a.augs.map((x) => [x.index, x.seed, x.sha256, x.uri.split("/sluice/")[1]]),
        b.augs.map((x) => [x.index, x.seed, x.sha256, x.uri.split("/sluice/")[1]]),
      );
      for (const { env, augs } of runs) {
        for (const aug of augs) {
          const key = `augmented/${aug.parentImageId}/flipcrop/${aug.index}-${aug.seed}.jpg`;
          assert.equal(aug.uri, key);
          assert.equal(sha256Hex(await env.objectStore.getBytes(key)), aug.sha256);
          assert.deepEqual([aug.width, aug.height], [48, 48]);
          assert.equal(aug.annotations.length, 1, "the box survives a crop of >= 60 %");
        }
      }
      assert.deepEqual(a.augs.map((x) => x.annotations), b.augs.map((x) => x.annotations));

      // Regenerated from what the manifest recorded (parent bytes, its annotations, params).
      const { env, img, augs } = a;
      const parent = await env.objectStore.getBytes(
        `images/${img.sha256!.slice(0, 2)}/${img.sha256}.jpg`,
      );
      const anns = (await env.manifest.listAnnotations([img.id])).map((r) => ({
        label: r.label,
        bbox: r.bbox,
        ...(r.sourceRef ? { sourceRef: r.sourceRef } : {}),
      }));
      assert.equal(anns.length, 1);
      for (const aug of augs) {
        assert.equal(aug.recipe, "flipcrop");
        const again = await renderAugmentation(parent, anns, aug.params);
        assert.equal(sha256Hex(again.bytes), aug.sha256, `copy ${aug.index} regenerated`);
        assert.deepEqual(again.annotations, aug.annotations);
        assert.equal(again.seed, aug.seed);
      }
    } finally {
      await second.close();
      await first.close();
      await server.stop();
    }
  },
});
