// Test fixtures for the ingest stage's tests: a real S3 server (fauxqs over HTTP, from
// tests/harness/s3.ts), a real SQLite (or PostgreSQL) manifest, a real staging root in a temp
// directory, and images made with real sharp. Nothing here stands in for a component.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import sharp from "sharp";
import { loadConfig } from "../../common/config/mod.ts";
import { createLogger, type Logger } from "../../common/log/mod.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { createStageMetrics, type StageMetrics } from "../../common/metrics/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { openStaging, type Staging } from "../../common/staging/mod.ts";
import type { S3TestServer } from "../../tests/harness/s3.ts";
import { type IngestConfig, IngestSettingsSchema } from "./config.ts";

export interface TestEnv {
  dir: string;
  config: IngestConfig;
  manifest: ManifestStore;
  source: ObjectStore;
  objectStore: ObjectStore;
  staging: Staging;
  metrics: StageMetrics;
  log: Logger;
  /** Log lines (JSON) written through `log`. */
  lines: string[];
  /** A raw S3 client, for writing keys the ObjectStore refuses (`../x.jpg`). */
  client: S3Client;
  rawBucket: string;
  dataBucket: string;
  /** Writes an object into the raw bucket by its exact key. */
  put(key: string, body: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;

/** Opens a test environment on a running S3 server; `settings` is the `ingest` section. */
export async function openTestEnv(
  s3: S3TestServer,
  opts: {
    settings?: Record<string, unknown>;
    manifestUrl?: string;
    sourcePrefix?: string;
    worker?: Record<string, unknown>;
    /** Share an existing raw bucket (two runs over the same source). */
    rawBucket?: string;
  } = {},
): Promise<TestEnv> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-ingest-test-"));
  const n = `${Date.now().toString(36)}-${counter++}`;
  const rawBucket = opts.rawBucket ?? `raw-${n}`;
  const dataBucket = `data-${n}`;
  await s3.createBucket(rawBucket);
  await s3.createBucket(dataBucket);
  const file = join(dir, "config.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      source: { url: `s3://${rawBucket}${opts.sourcePrefix ? "/" + opts.sourcePrefix : ""}` },
      objectStore: { url: `s3://${dataBucket}/sluice` },
      manifest: { url: opts.manifestUrl ?? `sqlite://${join(dir, "manifest.db")}` },
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        maxAttempts: 2,
      },
      staging: {
        root: join(dir, "nvme"),
        fallbackRoot: join(dir, "fallback"),
        minFreeMb: 0,
      },
      worker: {
        id: "test-worker",
        concurrency: 2,
        idlePollMs: 50,
        leaseMs: 30_000,
        maxAttempts: 3,
        ...opts.worker,
      },
      http: { port: 0 },
      log: { level: "debug", format: "json" },
      ingest: opts.settings ?? {},
    }),
  );
  const config = await loadConfig({
    stage: "ingest",
    stageSchema: IngestSettingsSchema,
    argv: ["--config", file],
    env: {},
    cwd: dir,
  });
  const lines: string[] = [];
  const log = createLogger({
    stage: "ingest",
    level: "debug",
    json: true,
    sink: (l) => lines.push(l),
  });
  const metrics = createStageMetrics("ingest", { processMetrics: false });
  const manifest = await openManifest(config.manifest.url);
  const source = await openObjectStore(config.source.url, { s3: config.s3 });
  const objectStore = await openObjectStore(config.objectStore.url, { s3: config.s3 });
  const staging = await openStaging({
    root: config.staging.root,
    fallbackRoot: config.staging.fallbackRoot,
    minFreeMb: 0,
    stage: "ingest",
    workerId: config.worker.id,
    log,
  });
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const prefix = opts.sourcePrefix ? opts.sourcePrefix.replace(/\/?$/, "/") : "";
  return {
    dir,
    config,
    manifest,
    source,
    objectStore,
    staging,
    metrics,
    log,
    lines,
    client,
    rawBucket,
    dataBucket,
    async put(key, body) {
      await client.send(new PutObjectCommand({ Bucket: rawBucket, Key: prefix + key, Body: body }));
    },
    async close() {
      client.destroy();
      await source.close();
      await objectStore.close();
      await manifest.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A small image of one colour with a contrasting square, so different colours differ in content. */
export async function makeImage(
  opts: {
    width?: number;
    height?: number;
    rgb?: [number, number, number];
    format?: "jpeg" | "png" | "webp";
    orientation?: number;
  } = {},
): Promise<Uint8Array> {
  const width = opts.width ?? 64;
  const height = opts.height ?? 48;
  const [r, g, b] = opts.rgb ?? [200, 40, 40];
  const square = await sharp({
    create: {
      width: 8,
      height: 8,
      channels: 3,
      background: { r: 255 - r, g: 255 - g, b: 255 - b },
    },
  }).png().toBuffer();
  let img = sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .composite([{ input: square, left: 4, top: 4 }]);
  const format = opts.format ?? "jpeg";
  img = format === "jpeg" ? img.jpeg({ quality: 90 }) : format === "png" ? img.png() : img.webp();
  let buf = await img.toBuffer();
  if (opts.orientation) {
    buf = await sharp(buf).withMetadata({ orientation: opts.orientation }).toBuffer();
  }
  return new Uint8Array(buf);
}

/** A quiet logger for tests that do not look at log lines. */
export function quietLog(): Logger {
  return createLogger({ stage: "ingest", json: true, sink: () => {} });
}
