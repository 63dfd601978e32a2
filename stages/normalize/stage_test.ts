// The normalize stage end to end on the embedded backends: real sharp, a real SQLite manifest, a
// real file object store, real staging leases.
import assert from "node:assert/strict";
import sharp, { type SharpOptions } from "sharp";
import { openManifest, type VariantRow } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { SharpResizer } from "../../common/images/sharp_resizer.ts";
import { listNvidiaGpus } from "../../common/images/gpu_resizer.ts";
import type { SharpInput } from "../../common/images/_sharp_render.ts";
import {
  boxFromVariant,
  boxToVariant,
  type VariantTransform,
} from "../../common/images/variant_transform.ts";
import type { VariantSpecInput } from "../../common/images/variant_spec.ts";
import { findPromtool, promtoolCheck } from "../../common/metrics/mod.ts";
import {
  boxError,
  captureLogger,
  countingStore,
  decodeImage,
  drawImage,
  encodeImage,
  measureRedBox,
  pixelAt,
  pngBombHeader,
  seedIngested,
  sha256Hex,
  tempDir,
  testConfig,
  totalWrites,
} from "./_test_fixtures.ts";
import { keyOfRecorded } from "../../common/objectstore/recorded_key.ts";
import { createNormalizeStage, runNormalizeOnce } from "./stage.ts";
import type { BBox } from "../../common/manifest/mod.ts";

const PNG = { format: "png" } as const;

/** Opens the manifest and store of a test config (the test closes them). */
async function openBackends(config: Awaited<ReturnType<typeof testConfig>>) {
  const manifest = await openManifest(config.manifest.url);
  const store = await openObjectStore(config.objectStore.url);
  return {
    manifest,
    store,
    async [Symbol.asyncDispose]() {
      await store.close();
      await manifest.close();
    },
  };
}

function byName(rows: VariantRow[], name: string): VariantRow {
  const r = rows.find((v) => v.name === name);
  assert.ok(r, `expected a variant row named ${name}, found ${rows.map((v) => v.name)}`);
  return r;
}

function intersect(a: BBox, b: BBox): BBox {
  const x0 = Math.max(a[0], b[0]), y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]), y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  return [x0, y0, x1 - x0, y1 - y0];
}

function keyOf(store: { uriFor(k: string): string }, uri: string): string {
  const key = keyOfRecorded(store, uri);
  assert.ok(key !== null, `expected a key of the store, found ${uri}`);
  return key;
}

Deno.test("variants have the configured sizes, modes and exact stored transforms", async (t) => {
  await using dir = await tempDir();
  const variants: VariantSpecInput[] = [
    { name: "fit", width: 200, height: 200, mode: "fit", ...PNG },
    { name: "box", width: 160, height: 160, mode: "letterbox", ...PNG },
    { name: "cover", width: 120, height: 120, mode: "cover", ...PNG },
    { name: "stretch", width: 100, height: 50, mode: "stretch", ...PNG },
    { name: "jpg", width: 320, height: 320, mode: "letterbox" },
    // Enlarged (2×): the renderer must not shift enlarged pixels off the stored transform.
    { name: "up", width: 800, height: 800, mode: "letterbox", ...PNG },
  ];
  const config = await testConfig(dir.path, variants);
  await using b = await openBackends(config);
  const box: BBox = [150, 100, 80, 60];
  const landscape = await seedIngested(b.manifest, b.store, {
    name: "land.jpg",
    bytes: await encodeImage(drawImage(400, 300, [box])),
  });
  // Stored 300 wide × 200 high with EXIF orientation 6: upright it is 200 × 300.
  const storedBox: BBox = [40, 30, 60, 40];
  const rotated = await seedIngested(b.manifest, b.store, {
    name: "rot.jpg",
    bytes: await encodeImage(drawImage(300, 200, [storedBox]), "jpeg", 6),
  });

  const summary = await runNormalizeOnce(config, { manifest: b.manifest, store: b.store });
  assert.equal(summary.done, 2);
  assert.equal(summary.failed, 0);
  assert.equal(summary.variantsWritten, 12);

  const rows = await b.manifest.listVariants({ imageIds: [landscape.id] });
  assert.equal(rows.length, 6);

  await t.step("sizes and transforms match the hand-computed geometry", () => {
    const expect: Record<string, Partial<VariantTransform>> = {
      // 400×300 → fit 200: scale 0.5.
      fit: { width: 200, height: 150, scaleX: 0.5, scaleY: 0.5, padX: 0, padY: 0 },
      // letterbox 160: scale 0.4, content 160×120, 20 px bars top and bottom.
      box: { width: 160, height: 160, scaleX: 0.4, scaleY: 0.4, padX: 0, padY: 20 },
      // cover 120: scale 0.4, content 160×120, 20 content px cut each side = 50 source px.
      cover: { width: 120, height: 120, scaleX: 0.4, scaleY: 0.4, cropX: 50, cropY: 0 },
      stretch: { width: 100, height: 50, scaleX: 0.25, scaleY: 50 / 300 },
      jpg: { width: 320, height: 320, scaleX: 0.8, scaleY: 0.8, padX: 0, padY: 40 },
      up: { width: 800, height: 800, scaleX: 2, scaleY: 2, padX: 0, padY: 100 },
    };
    for (const [name, want] of Object.entries(expect)) {
      const row = byName(rows, name);
      assert.equal(row.width, want.width, name);
      assert.equal(row.height, want.height, name);
      assert.equal(row.transform.srcWidth, 400);
      assert.equal(row.transform.srcHeight, 300);
      for (const [k, v] of Object.entries(want)) {
        assert.ok(
          Math.abs(row.transform[k as keyof VariantTransform] - (v as number)) < 1e-9,
          `${name}.${k}: expected ${v}, found ${row.transform[k as keyof VariantTransform]}`,
        );
      }
      assert.equal(row.version, 1);
      assert.equal(row.format, name === "jpg" ? "jpeg" : "png");
    }
  });

  await t.step("objects decode at the recorded size, with matching bytes and sha256", async () => {
    for (const row of rows) {
      const bytes = await b.store.getBytes(keyOf(b.store, row.uri));
      assert.equal(bytes.byteLength, row.bytes);
      const img = await decodeImage(bytes);
      assert.deepEqual([img.width, img.height], [row.width, row.height], row.name);
      const meta = await sharp(bytes).metadata();
      assert.equal(meta.format, row.format);
      assert.equal(sha256Hex(bytes), row.sha256);
    }
  });

  await t.step("letterbox bars are the pad grey; the cover crop is centred", async () => {
    const lb = await decodeImage(await b.store.getBytes(keyOf(b.store, byName(rows, "box").uri)));
    for (const y of [0, 10, 19, 140, 150, 159]) {
      for (const x of [0, 80, 159]) {
        const [r, g, bl] = pixelAt(lb, x, y);
        assert.ok(
          Math.abs(r - 114) <= 1 && Math.abs(g - 114) <= 1 && Math.abs(bl - 114) <= 1,
          `letterbox bar pixel (${x}, ${y}): expected #727272, found ${[r, g, bl]}`,
        );
      }
    }
    // Inside the content the gradient shows (not the pad colour everywhere).
    assert.notDeepEqual(pixelAt(lb, 5, 25), [114, 114, 114]);
    // Cover: the box [150..230] × [100..160] lands at x (150 − 50) × 0.4 = 40, y 100 × 0.4 = 40.
    const cv = await decodeImage(await b.store.getBytes(keyOf(b.store, byName(rows, "cover").uri)));
    const found = measureRedBox(cv);
    assert.ok(found);
    assert.ok(boxError(found, [40, 40, 32, 24]) <= 1, `cover box: found ${found}`);
  });

  await t.step("boxes map into each variant and back through the stored transform", async () => {
    const fresh = await b.manifest.listVariants({ imageIds: [landscape.id, rotated.id] });
    const upright: Record<string, BBox> = {
      [landscape.id]: box,
      // Orientation 6 turns stored (x, y) of a 300×200 image into (200 − y, x).
      [rotated.id]: [200 - (storedBox[1] + storedBox[3]), storedBox[0], storedBox[3], storedBox[2]],
    };
    for (const row of fresh) {
      const src = upright[row.imageId];
      const mapped = boxToVariant(row.transform, src);
      assert.ok(mapped, `${row.name}: box should be visible`);
      const back = boxFromVariant(row.transform, mapped);
      assert.ok(back);
      // A cover crop cuts boxes at its edges: what comes back is the part that was visible.
      const shown = boxFromVariant(row.transform, [0, 0, row.width, row.height])!;
      const visible = intersect(src, shown);
      assert.ok(boxError(back, visible) <= 0.5, `${row.name}: round trip ${src} → ${back}`);
      if (row.format !== "png") continue;
      // Where the box really is in the rendered pixels agrees with the stored mapping.
      const img = await decodeImage(await b.store.getBytes(keyOf(b.store, row.uri)));
      const found = measureRedBox(img);
      assert.ok(found, `${row.name}: red box not found`);
      // Measured ≤ 0.15 px, shrinking and enlarging alike (a half-pixel shift fails this).
      assert.ok(
        boxError(found, mapped) <= 0.25,
        `${row.name}: expected ${mapped}, found ${found}`,
      );
    }
    const rot = fresh.filter((r) => r.imageId === rotated.id);
    // The upright rotated image is 200×300: cover 120 keeps the middle 200 rows (y 50..250), so
    // its box (y 40..100) is cut at the top.
    assert.ok(Math.abs(byName(rot, "cover").transform.cropY - 50) < 1e-9);
    assert.deepEqual(
      boxToVariant(byName(rot, "cover").transform, upright[rotated.id])!.map((v) => +v.toFixed(6)),
      [78, 0, 24, 30],
    );
    assert.equal(byName(rot, "fit").transform.srcWidth, 200);
    assert.equal(byName(rot, "fit").transform.srcHeight, 300);
    assert.deepEqual([byName(rot, "fit").width, byName(rot, "fit").height], [133, 200]);
  });
});

Deno.test("each source image is decoded once for all its variants", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path); // default variants 320/640/1280
  await using b = await openBackends(config);
  for (let i = 0; i < 3; i++) {
    await seedIngested(b.manifest, b.store, {
      name: `p${i}.jpg`,
      bytes: await encodeImage(drawImage(900 + i * 10, 700, [[100, 100, 50, 50]])),
    });
  }
  let opens = 0;
  const resizer = new SharpResizer({
    sharpFactory: (input: SharpInput, options?: SharpOptions) => {
      // Raw inputs are the one decoded buffer being resized; anything else opens the source.
      if (!options?.raw) opens++;
      return sharp(input, options);
    },
  });
  const summary = await runNormalizeOnce(config, {
    manifest: b.manifest,
    store: b.store,
    resizer: { resizer, kind: "cpu", reason: "test" },
  });
  await resizer.close();
  assert.equal(summary.done, 3);
  assert.equal(summary.variantsWritten, 9);
  assert.equal(opens, 3, `expected one source decode per image, found ${opens} for 3 images`);
});

Deno.test("a second run with the same configuration writes nothing and changes no row", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path);
  await using b = await openBackends(config);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await seedIngested(b.manifest, b.store, {
      name: `i${i}.jpg`,
      bytes: await encodeImage(drawImage(640, 480 - i * 40, [[60, 60, 40, 40]])),
    });
    ids.push(s.id);
  }
  const first = await runNormalizeOnce(config, { manifest: b.manifest, store: b.store });
  assert.equal(first.done, 3);
  assert.equal(first.variantsWritten, 9);
  const rowsBefore = await b.manifest.listVariants({ imageIds: ids });
  const specsBefore = await b.manifest.listVariantSpecs();
  const workBefore = await b.manifest.listWork("normalize");
  assert.equal(rowsBefore.length, 9);

  const counted = countingStore(b.store);
  const again = await runNormalizeOnce(config, { manifest: b.manifest, store: counted.store });
  assert.equal(totalWrites(counted.writes), 0, `writes: ${counted.writes.keys}`);
  assert.equal(again.done, 0);
  assert.equal(again.variantsWritten, 0);
  assert.equal(again.backfill, null);
  assert.deepEqual(await b.manifest.listVariants({ imageIds: ids }), rowsBefore);
  assert.deepEqual(await b.manifest.listVariantSpecs(), specsBefore);
  assert.deepEqual(await b.manifest.listWork("normalize"), workBefore);

  // Even when the items are handed out again (a reset queue, a duplicate event), nothing is
  // rendered or written: the recorded variants are found present.
  await b.manifest.enqueue("normalize", ids, { reset: true });
  const redo = await runNormalizeOnce(config, { manifest: b.manifest, store: counted.store });
  assert.equal(redo.done, 3);
  assert.equal(redo.variantsWritten, 0);
  assert.equal(redo.variantsPresent, 9);
  assert.equal(totalWrites(counted.writes), 0, `writes: ${counted.writes.keys}`);
  assert.deepEqual(await b.manifest.listVariants({ imageIds: ids }), rowsBefore);
});

Deno.test("a recorded variant whose object vanished is rendered again to the same key", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path);
  await using b = await openBackends(config);
  const s = await seedIngested(b.manifest, b.store, {
    name: "v.jpg",
    bytes: await encodeImage(drawImage(500, 400)),
  });
  await runNormalizeOnce(config, { manifest: b.manifest, store: b.store });
  const rows = await b.manifest.listVariants({ imageIds: [s.id] });
  const lost = byName(rows, "640");
  const lostKey = keyOf(b.store, lost.uri);
  const original = await b.store.getBytes(lostKey);
  await b.store.delete(lostKey);

  await b.manifest.enqueue("normalize", [s.id], { reset: true });
  const counted = countingStore(b.store);
  const redo = await runNormalizeOnce(config, { manifest: b.manifest, store: counted.store });
  assert.equal(redo.variantsWritten, 1);
  assert.equal(redo.variantsPresent, 2);
  assert.deepEqual(counted.writes.keys, [lostKey]);
  assert.deepEqual(
    await b.store.getBytes(lostKey),
    original,
    "re-rendering writes identical bytes",
  );
});

Deno.test("a changed spec creates a new version beside the old one", async () => {
  await using dir = await tempDir();
  const v1: VariantSpecInput[] = [
    { name: "small", width: 160, height: 160, mode: "letterbox" },
    { name: "big", width: 400, height: 400, mode: "fit" },
  ];
  const config1 = await testConfig(dir.path, v1);
  await using b = await openBackends(config1);
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await seedIngested(b.manifest, b.store, {
      name: `c${i}.jpg`,
      bytes: await encodeImage(drawImage(600, 450 + i * 30, [[200, 150, 60, 40]])),
    });
    ids.push(s.id);
  }
  await runNormalizeOnce(config1, { manifest: b.manifest, store: b.store });
  const oldRows = await b.manifest.listVariants({ imageIds: ids });
  const oldBytes = new Map<string, Uint8Array>();
  for (const r of oldRows) oldBytes.set(r.uri, await b.store.getBytes(keyOf(b.store, r.uri)));

  const v2 = [v1[0], { ...v1[1], quality: 60 }];
  const config2 = await testConfig(dir.path, v2);
  const counted = countingStore(b.store);
  const summary = await runNormalizeOnce(config2, { manifest: b.manifest, store: counted.store });
  assert.deepEqual(summary.backfill, { scanned: 2, missing: 2, enqueued: 2 });
  assert.equal(summary.done, 2);
  assert.equal(summary.variantsWritten, 2, "only the changed variant is rendered");
  assert.equal(summary.variantsPresent, 2);
  assert.equal(counted.writes.put, 2);
  assert.equal(counted.writes.delete + counted.writes.putFile + counted.writes.copy, 0);

  const specs = await b.manifest.listVariantSpecs("big");
  assert.deepEqual(specs.map((s) => s.version), [1, 2]);
  const rows = await b.manifest.listVariants({ imageIds: ids, name: "big" });
  assert.equal(rows.length, 4, "both versions' rows exist");
  for (const id of ids) {
    const mine = rows.filter((r) => r.imageId === id).sort((a, b) => a.version - b.version);
    assert.deepEqual(mine.map((r) => r.version), [1, 2]);
    assert.notEqual(mine[0].uri, mine[1].uri, "a new version never reuses the old key");
    assert.notEqual(mine[0].sha256, mine[1].sha256);
    assert.ok(mine[1].bytes < mine[0].bytes, "quality 60 is smaller than quality 85");
  }
  // Old rows unchanged, old objects untouched.
  for (const r of oldRows) {
    const now = (await b.manifest.listVariants({ imageIds: [r.imageId], specHash: r.specHash }))
      .find((x) => x.name === r.name);
    assert.deepEqual(now, r);
    assert.deepEqual(await b.store.getBytes(keyOf(b.store, r.uri)), oldBytes.get(r.uri));
  }
  // Going back to the first configuration finds everything present.
  const back = await runNormalizeOnce(config1, { manifest: b.manifest, store: counted.store });
  assert.equal(back.backfill, null);
  assert.equal(back.done, 0);
  assert.equal(counted.writes.put, 2);
});

Deno.test("bad inputs are recorded as failed with a reason and the batch goes on", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path, [{ name: "t", width: 64, height: 64, mode: "fit" }], {
    SLUICE_NORMALIZE_MAX_BYTES: "100000",
  });
  await using b = await openBackends(config);
  const good1 = await seedIngested(b.manifest, b.store, {
    name: "good1.jpg",
    bytes: await encodeImage(drawImage(300, 200)),
  });
  const whole = await encodeImage(drawImage(400, 300, [[20, 20, 40, 40]]));
  const corrupt = await seedIngested(b.manifest, b.store, {
    name: "corrupt.jpg",
    bytes: whole.slice(0, whole.length >> 1),
  });
  const bomb = await seedIngested(b.manifest, b.store, {
    name: "bomb.png",
    bytes: pngBombHeader(30_000, 30_000),
    ext: "png",
  });
  const missing = await seedIngested(b.manifest, b.store, {
    name: "missing.jpg",
    bytes: await encodeImage(drawImage(100, 100)),
    writeObject: false,
  });
  const notImage = await seedIngested(b.manifest, b.store, {
    name: "text.jpg",
    bytes: new TextEncoder().encode("this is not an image"),
  });
  const tampered = await seedIngested(b.manifest, b.store, {
    name: "tampered.jpg",
    bytes: await encodeImage(drawImage(120, 90)),
  });
  await b.store.put(tampered.key, await encodeImage(drawImage(121, 90)));
  // 300×300 of noise as PNG: about 270 kB, over the 100 kB limit.
  const noise = new Uint8Array(300 * 300 * 3).map(() => Math.floor(Math.random() * 256));
  const huge = await seedIngested(b.manifest, b.store, {
    name: "huge.png",
    bytes: await encodeImage({ data: noise, width: 300, height: 300 }, "png"),
    ext: "png",
  });
  const good2 = await seedIngested(b.manifest, b.store, {
    name: "good2.jpg",
    bytes: await encodeImage(drawImage(200, 300)),
  });

  const { log, lines } = captureLogger();
  const summary = await runNormalizeOnce(config, { manifest: b.manifest, store: b.store, log });
  assert.equal(summary.done, 2);
  assert.equal(summary.failed, 6);
  assert.equal(summary.retried, 0, "bad input is permanent: no retries");
  const reasons = Object.fromEntries(summary.failures.map((f) => [f.itemId, f.reason]));
  assert.deepEqual(reasons, {
    [corrupt.id]: "decode_failed",
    [bomb.id]: "too_many_pixels",
    [missing.id]: "source_missing",
    [notImage.id]: "unsupported_format",
    [tampered.id]: "checksum_mismatch",
    [huge.id]: "too_large",
  });
  const failed = await b.manifest.listWork("normalize", "failed");
  assert.deepEqual(failed.map((w) => w.itemId).sort(), Object.keys(reasons).sort());
  for (const w of failed) {
    assert.ok(w.lastError?.startsWith(`${reasons[w.itemId]}: `), `last error: ${w.lastError}`);
  }
  assert.match(failed.find((w) => w.itemId === bomb.id)!.lastError!, /30000×30000/);
  assert.match(
    failed.find((w) => w.itemId === huge.id)!.lastError!,
    new RegExp(
      `^too_large: image ${huge.id} \\(.+\\.png\\): \\d{6} bytes exceeds the limit of 100000`,
    ),
  );
  const done = await b.manifest.listVariants({});
  assert.deepEqual(done.map((v) => v.imageId).sort(), [good1.id, good2.id].sort());
  // Images stay ingested: a normalize failure is the work item's, not the image's.
  assert.equal((await b.manifest.getImage(corrupt.id))?.status, "ingested");
  assert.ok(lines.some((l) => l.msg === "item failed" && l.reason === "decode_failed"));
  // Nothing is left in staging for failed and done items alike (sources are read into memory).
  let left: Deno.DirEntry[] = [];
  try {
    left = [...Deno.readDirSync(`${dir.path}/staging/normalize/test-1`)];
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  assert.deepEqual(left, []);
});

Deno.test("backfill enqueues exactly the ingested images lacking a current variant", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path, [{ name: "t", width: 64, height: 64 }], {
    SLUICE_NORMALIZE_BACKFILL_NEW_SPECS: "false",
  });
  await using b = await openBackends(config);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const s = await seedIngested(b.manifest, b.store, {
      name: `b${i}.jpg`,
      bytes: await encodeImage(drawImage(100 + i, 80)),
      enqueue: false,
    });
    ids.push(s.id);
  }
  const stage = await createNormalizeStage(config, { manifest: b.manifest, store: b.store });
  try {
    assert.equal((await stage.run({ once: true, progress: false })).done, 0, "nothing queued yet");
    assert.deepEqual(await stage.backfill(), { scanned: 4, missing: 4, enqueued: 4 });
    assert.equal((await stage.run({ once: true, progress: false })).done, 4);
    assert.deepEqual(await stage.backfill(), { scanned: 4, missing: 0, enqueued: 0 });
  } finally {
    await stage.close();
  }
});

Deno.test("the resizer seam picks the CPU here, says why, and exposes it", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path, [{ name: "t", width: 64, height: 64 }], {
    SLUICE_NORMALIZE_RESIZER: "auto",
  });
  await using b = await openBackends(config);
  await seedIngested(b.manifest, b.store, {
    name: "a.jpg",
    bytes: await encodeImage(drawImage(90, 60)),
  });
  const gpus = await listNvidiaGpus();
  const { log, lines } = captureLogger();
  const stage = await createNormalizeStage(config, { manifest: b.manifest, store: b.store, log });
  try {
    const selected = lines.find((l) => l.msg === "resizer selected");
    assert.ok(selected, "the selection is logged at start-up");
    if (!gpus.available) {
      assert.equal(stage.resizer.kind, "cpu");
      assert.equal(stage.resizer.name, "sharp");
      assert.equal(stage.resizer.reason, `resizer=auto: ${gpus.reason}, using sharp CPU`);
    }
    assert.equal(selected.reason, stage.resizer.reason);

    const metrics = await (await stage.handler.fetch(new Request("http://x/metrics"))).text();
    const labels = `name="${stage.resizer.name}",kind="${stage.resizer.kind}",reason="${
      stage.resizer.reason.replaceAll("\\", "\\\\").replaceAll('"', '\\"')
    }"`;
    assert.ok(
      metrics.includes(`sluice_normalize_resizer_info{${labels}} 1`),
      `resizer_info not found in:\n${metrics}`,
    );
    const status = await (await stage.handler.fetch(new Request("http://x/status"))).json();
    assert.deepEqual(status.resizer, stage.resizer);
    assert.equal((await stage.handler.fetch(new Request("http://x/readyz"))).status, 200);

    const summary = await stage.run({ once: true, progress: false });
    assert.equal(summary.done, 1);
    assert.deepEqual(summary.resizer, stage.resizer);
    const after = await (await stage.handler.fetch(new Request("http://x/metrics"))).text();
    assert.match(after, /sluice_normalize_variants_written_total\{variant="t"\} 1/);
    assert.match(after, /sluice_normalize_items_total\{result="done"\} 1/);
    assert.match(after, /sluice_normalize_queue_depth\{state="done"\} 1/);
    assert.match(after, /sluice_normalize_render_seconds_count 1\n/);
    const promtool = await findPromtool();
    if (promtool) {
      const lint = await promtoolCheck(after, promtool);
      assert.ok(lint.ok, lint.output);
    }
  } finally {
    await stage.close();
  }
  assert.equal((await stage.handler.fetch(new Request("http://x/readyz"))).status, 503);
});

Deno.test("resizer=gpu without a usable GPU refuses to start and names what is missing", async () => {
  const gpus = await listNvidiaGpus();
  if (gpus.available) return; // a GPU machine: resizer=gpu is expected to work there
  await using dir = await tempDir();
  const config = await testConfig(dir.path, undefined, { SLUICE_NORMALIZE_RESIZER: "gpu" });
  await using b = await openBackends(config);
  await assert.rejects(
    createNormalizeStage(config, {
      manifest: b.manifest,
      store: b.store,
      log: captureLogger().log,
    }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, "resizer_unavailable");
      assert.ok(err.message.includes(gpus.reason), err.message);
      return true;
    },
  );
});
