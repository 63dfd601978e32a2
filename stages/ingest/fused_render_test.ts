// Issue 15: the fused ingest (`ingest.renderVariants`). Real images through sharp, the embedded
// SQLite manifest, file object stores; ingest and normalize run as the stages they are.
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { loadConfig } from "../../common/config/mod.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { openStaging } from "../../common/staging/mod.ts";
import { NormalizeSettingsSchema } from "../normalize/config.ts";
import { runNormalizeOnce } from "../normalize/stage.ts";
import { captureLogger, countingStore, tempDir } from "../normalize/_test_fixtures.ts";
import { IngestSettingsSchema } from "./config.ts";
import { createIngestMetrics } from "./metrics.ts";
import { createItemProcessor, sha256Hex } from "./process_item.ts";
import { runIngestOnce } from "./run_once.ts";
import { quietLog } from "./_test_env.ts";
import { loadFusedRenderSettings } from "./fused_render_settings.ts";
import { FusedRender } from "./fused_render.ts";

const VARIANTS = [
  { name: "fit", width: 96, height: 96, mode: "fit" },
  { name: "cover", width: 64, height: 48, mode: "cover" },
];

/** A noisy photo-like image (real sharp encode); `orientation` sets the EXIF tag. */
async function photo(
  seed: number,
  o: { format?: "jpeg" | "png"; orientation?: number; exif?: boolean } = {},
): Promise<Uint8Array> {
  const w = 240 + seed * 8, h = 160 + seed * 4;
  const px = new Uint8Array(w * h * 3);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < px.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    px[i] = ((i % (w * 3)) + (x >>> 24)) & 0xff;
  }
  let img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  if (o.orientation) img = img.withMetadata({ orientation: o.orientation });
  if (o.exif) img = img.withExif({ IFD0: { Copyright: "someone", Artist: "someone" } });
  const out = o.format === "png" ? await img.png().toBuffer() : await img.jpeg().toBuffer();
  return new Uint8Array(out);
}

/**
 * The corpus: four upright images (fused from the verifying decode; one with EXIF that ingest
 * strips) and one rotated by EXIF (fused from the upright bytes ingest publishes).
 */
async function corpus(): Promise<Map<string, Uint8Array>> {
  return new Map([
    ["a.jpg", await photo(1)],
    ["exif.jpg", await photo(6, { exif: true })],
    ["b.jpg", await photo(2)],
    ["c.png", await photo(3, { format: "png" })],
    ["rotated.jpg", await photo(4, { orientation: 6 })],
  ]);
}

function envFor(dir: string, renderVariants: boolean, variants = VARIANTS) {
  return {
    SLUICE_MANIFEST_URL: `sqlite://${join(dir, "manifest.db")}`,
    SLUICE_SOURCE_URL: join(dir, "raw"),
    SLUICE_OBJECT_STORE_URL: join(dir, "objects"),
    SLUICE_STAGING_ROOT: join(dir, "staging"),
    SLUICE_STAGING_MIN_FREE_MB: "0",
    SLUICE_HTTP_PORT: "0",
    SLUICE_WORKER_IDLE_POLL_MS: "20",
    SLUICE_INGEST_RENDER_VARIANTS: String(renderVariants),
    SLUICE_NORMALIZE_VARIANTS: JSON.stringify(variants),
    SLUICE_NORMALIZE_RESIZER: "cpu",
  };
}

/** Ingest once, then normalize once, over `images`; returns both summaries and the variants. */
async function pipeline(dir: string, images: Map<string, Uint8Array>, renderVariants: boolean) {
  const env = envFor(dir, renderVariants);
  await Deno.mkdir(join(dir, "raw"), { recursive: true });
  for (const [k, b] of images) await Deno.writeFile(join(dir, "raw", k), b);
  const ingestConfig = await loadConfig({
    stage: "ingest",
    stageSchema: IngestSettingsSchema,
    env,
    cwd: dir,
  });
  const metrics = createStageMetrics("ingest", { processMetrics: false });
  const normalize = await loadFusedRenderSettings({ env, cwd: dir });
  const ingested = await runIngestOnce(ingestConfig, {
    metrics,
    log: quietLog(),
    progress: false,
    normalize,
  });
  const fused = await createIngestMetrics(metrics).fusedRenders.get();
  const normalized = await normalizeOnce(dir, env);
  return { ingested, fusedRenders: fused.values[0]?.value ?? 0, normalized };
}

async function normalizeOnce(dir: string, env: Record<string, string>) {
  const config = await loadConfig({
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
    env,
    cwd: dir,
  });
  return await runNormalizeOnce(config, { log: captureLogger().log });
}

/** (source key, variant name) → sha256 of the variant object as stored. */
async function variantHashes(dir: string): Promise<Map<string, string>> {
  const manifest = await openManifest(`sqlite://${join(dir, "manifest.db")}`);
  const store = await openObjectStore(join(dir, "objects"));
  try {
    const images = await manifest.listImages({ limit: 100 });
    const out = new Map<string, string>();
    for (const v of await manifest.listVariants({ imageIds: images.map((i) => i.id) })) {
      const img = images.find((i) => i.id === v.imageId);
      const bytes = await store.getBytes(v.uri);
      assert.equal(sha256Hex(bytes), v.sha256, `${v.uri}: object matches its row`);
      out.set(`${img?.sourceKey} ${v.name} v${v.version}`, v.sha256);
    }
    return out;
  } finally {
    await manifest.close();
    await store.close();
  }
}

Deno.test("fused ingest: variants recorded by ingest (EXIF-rotated too), byte-identical to normalize's, normalize renders none of them; a new spec is still backfilled", async () => {
  await using fusedDir = await tempDir("sluice-fused-");
  await using plainDir = await tempDir("sluice-plain-");
  const images = await corpus();

  const fused = await pipeline(fusedDir.path, images, true);
  assert.equal(fused.ingested.images.ingested, 5);
  // The four upright images from the verifying decode; the EXIF-rotated one from the upright
  // bytes ingest publishes (normalize's own render of them).
  assert.equal(fused.fusedRenders, 5, "every image is rendered by ingest");
  // Normalize: every variant present, nothing rendered.
  assert.equal(fused.normalized.done, 5);
  assert.equal(fused.normalized.variantsPresent, 5 * VARIANTS.length);
  assert.equal(fused.normalized.variantsWritten, 0);

  const plain = await pipeline(plainDir.path, images, false);
  assert.equal(plain.fusedRenders, 0);
  assert.equal(plain.normalized.variantsWritten, 5 * VARIANTS.length);
  assert.equal(plain.normalized.variantsPresent, 0);

  const a = await variantHashes(fusedDir.path), b = await variantHashes(plainDir.path);
  assert.equal(a.size, 5 * VARIANTS.length);
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());

  // A new spec later: normalize backfills it for every image (fused ones included), and only it.
  const more = [...VARIANTS, { name: "wide", width: 120, height: 40, mode: "letterbox" }];
  const later = await normalizeOnce(fusedDir.path, envFor(fusedDir.path, true, more));
  assert.equal(later.backfill?.enqueued, 5);
  assert.equal(later.variantsWritten, 5);
  assert.equal(later.variantsPresent, 5 * VARIANTS.length);
  assert.equal((await variantHashes(fusedDir.path)).size, 5 * more.length);
});

Deno.test("fused ingest: a retried item (killed before it was recorded) puts no variant twice", async () => {
  await using dir = await tempDir("sluice-fused-retry-");
  const env = envFor(dir.path, true);
  await Deno.mkdir(join(dir.path, "raw"), { recursive: true });
  await Deno.writeFile(join(dir.path, "raw", "a.jpg"), await photo(5));
  const config = await loadConfig({
    stage: "ingest",
    stageSchema: IngestSettingsSchema,
    env,
    cwd: dir.path,
  });
  const manifest = await openManifest(config.manifest.url);
  const source = await openObjectStore(config.source.url);
  const inner = await openObjectStore(config.objectStore.url);
  const { store: objectStore, writes } = countingStore(inner);
  const staging = await openStaging({
    root: config.staging.root,
    minFreeMb: 0,
    stage: "ingest",
    workerId: "w",
    log: quietLog(),
  });
  const fused = new FusedRender(manifest, await loadFusedRenderSettings({ env, cwd: dir.path }));
  try {
    const up = await manifest.upsertSourceObject({
      sourceUri: source.uriFor("a.jpg"),
      sourceKey: "a.jpg",
      etag: "e1",
    });
    const process = createItemProcessor({
      manifest,
      source,
      objectStore,
      staging,
      settings: config.stage,
      fused,
    });
    const ctx = { signal: new AbortController().signal, log: quietLog(), attempt: 1 };
    const [first] = await manifest.claim("ingest", { max: 1, leaseMs: 1, owner: "killed" });
    assert.equal(first.itemId, up.image.id);
    const e1 = await process(first, ctx); // uploads, then "dies": never recorded
    assert.equal(e1.variants?.length, VARIANTS.length);
    const variantPuts = () => writes.keys.filter((k) => k.startsWith("variants/")).length;
    assert.equal(variantPuts(), VARIANTS.length);

    await new Promise((r) => setTimeout(r, 5)); // the lease runs out
    const [retry] = await manifest.claim("ingest", { max: 1, leaseMs: 60_000, owner: "retry" });
    assert.equal(retry.itemId, up.image.id);
    const e2 = await process(retry, { ...ctx, attempt: 2 });
    assert.equal(variantPuts(), VARIANTS.length, "no variant put again");
    assert.deepEqual(e2.variants, e1.variants);
    await manifest.complete(retry, e2);
    const rows = await manifest.listVariants({ imageIds: [up.image.id] });
    assert.equal(rows.length, VARIANTS.length);
  } finally {
    await fused.close();
    await source.close();
    await inner.close();
    await manifest.close();
  }
});

Deno.test("fused ingest: normalize's section is read from ingest's --config file and SLUICE_NORMALIZE_* env", async () => {
  await using dir = await tempDir("sluice-fused-config-");
  const file = join(dir.path, "sluice.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({ ingest: { renderVariants: true }, normalize: { variants: VARIANTS } }),
  );
  const fromFile = await loadFusedRenderSettings({
    argv: ["once", "--config", file],
    env: {},
    cwd: dir.path,
  });
  assert.deepEqual(fromFile.variants.map((v) => v.name), ["fit", "cover"]);
  const fromEq = await loadFusedRenderSettings({ argv: [`--config=${file}`], env: {} });
  assert.deepEqual(fromEq.variants.map((v) => v.name), ["fit", "cover"]);
  const fromEnv = await loadFusedRenderSettings({
    argv: ["once"],
    env: { SLUICE_CONFIG: file, SLUICE_NORMALIZE_PREFIX: "v2" },
  });
  assert.equal(fromEnv.prefix, "v2");
  assert.equal(fromEnv.variants.length, 2);
  const none = await loadFusedRenderSettings({ argv: [], env: {} });
  assert.deepEqual(none.variants.map((v) => v.name), ["320", "640", "1280"]);
});

// sharp delivers libvips's decoder warnings to whichever pipeline finishes next, so a clean image
// rendered beside damaged ones could hear their warnings and lose its variants (to normalize):
// CI saw bad_inputs_test's fused run record none for one good image. Now such a render is not
// taken as clean on its own; inspectImage decides, and a clean image keeps its variants.
Deno.test("fused ingest: clean images keep their variants when damaged ones decode beside them", async () => {
  await using dir = await tempDir("sluice-fused-noisy-");
  const manifest = await openManifest(`sqlite://${join(dir.path, "manifest.db")}`);
  const fused = new FusedRender(
    manifest,
    await loadFusedRenderSettings({ env: envFor(dir.path, true), cwd: dir.path }),
  );
  const limits = { maxBytes: 64 << 20, maxPixels: 100_000_000 };
  const verdict = (bytes: Uint8Array, name: string) =>
    fused.verifyAndRender(bytes, { name, limits, failOn: "error", keepMetadata: false }).then(
      (r) => `${r.info.decodeWarning === null ? "clean" : "warned"}, ${r.rendered?.length ?? 0}`,
      (e: Error) => `refused: ${e.message.split(":")[1]?.trim()}`,
    );
  try {
    const clean = await Promise.all([1, 2, 3, 4, 5, 6].map((s) => photo(s)));
    const damaged = clean.map((b, i) => b.subarray(0, Math.floor(b.length * (0.5 + i * 0.08))));
    // Interleaved: clean 0, cut 0, clean 1, cut 1, …
    const all = clean.flatMap((b, i): [string, Uint8Array][] => [
      [`clean ${i}`, b],
      [`cut ${i}`, damaged[i]],
    ]);
    const alone = new Map<string, string>();
    for (const [name, b] of all) alone.set(name, await verdict(b, name));
    for (let i = 0; i < clean.length; i++) {
      assert.equal(alone.get(`clean ${i}`), `clean, ${VARIANTS.length}`);
      assert.match(alone.get(`cut ${i}`) ?? "", /^refused|^warned, 0$/);
    }
    const mismatches: string[] = [];
    for (let round = 0; round < 5; round++) {
      const together = await Promise.all(all.map(async ([n, b]) => [n, await verdict(b, n)]));
      for (const [n, v] of together) {
        if (v !== alone.get(n)) {
          mismatches.push(`round ${round}, ${n}: alone ${alone.get(n)}, together ${v}`);
        }
      }
    }
    assert.deepEqual(mismatches, [], "expected the same verdicts and variants all at once");
  } finally {
    await fused.close();
    await manifest.close();
  }
});
