/**
 * Discovery from S3 Inventory reports (CSV and Parquet, laid out as AWS writes them by
 * `tests/support/s3_inventory.ts`) over real file-backed object stores and a real SQLite
 * manifest: the report yields the same images as a LIST of the same source, skips delete markers
 * and old versions, checkpoints per data file, and refuses what it cannot read.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ManifestStore } from "../../common/manifest/mod.ts";
import { openSqliteManifest } from "../../common/manifest/sqlite.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { type InventoryRow, writeInventoryReport } from "../../tests/support/s3_inventory.ts";
import { discoverSource } from "./discover.ts";
import {
  discoverInventory,
  inventoryCheckpointName,
  latestInventoryReport,
  parseCsvLine,
} from "./inventory.ts";
import { sourceLocation } from "./source_location.ts";

interface Env {
  dir: string;
  source: ObjectStore;
  inventory: ObjectStore;
  open(name: string): Promise<ManifestStore>;
}

async function withEnv(fn: (env: Env) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-inventory-"));
  const stores: { close(): Promise<void> }[] = [];
  try {
    const source = await openObjectStore(`file://${join(dir, "raw")}`);
    const inventory = await openObjectStore(`file://${join(dir, "inv")}`);
    stores.push(source, inventory);
    await fn({
      dir,
      source,
      inventory,
      open: async (name) => {
        const m = await openSqliteManifest(`sqlite://${join(dir, `${name}.db`)}`);
        stores.push(m);
        await m.migrate();
        return m;
      },
    });
  } finally {
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const location = (source: ObjectStore) =>
  sourceLocation({
    sourceUrl: source.url,
    prefix: "cams/",
    suffixes: [".jpg"],
    eventBucket: "raw",
  });

const KEYS = [
  "cams/a.jpg",
  "cams/with space+plus.jpg",
  "cams/ünï/cödé.jpg",
  "cams/notes.txt",
  "other/x.jpg",
];

/** Puts the objects in the source and returns their rows as an inventory would list them. */
async function seed(source: ObjectStore): Promise<InventoryRow[]> {
  for (const [i, k] of KEYS.entries()) {
    await source.put(k, new TextEncoder().encode(`object ${i}`));
  }
  const rows: InventoryRow[] = [];
  for await (const o of source.list()) rows.push({ key: o.key, size: o.size, etag: o.etag });
  assert.equal(rows.length, KEYS.length);
  return rows;
}

async function images(m: ManifestStore) {
  return (await m.listImages({ limit: 1000 })).map((i) => [i.sourceUri, i.sourceEtag, i.size])
    .sort();
}

for (const format of ["CSV", "Parquet"] as const) {
  Deno.test(`inventory (${format}): same images as a LIST; markers and old versions skipped`, async () => {
    await withEnv(async ({ source, inventory, open }) => {
      const rows = await seed(source);
      const extra: InventoryRow[] = [
        { key: "cams/deleted.jpg", size: 0, etag: "x", isDeleteMarker: true, versionId: "v2" },
        { key: "cams/old.jpg", size: 9, etag: "y", isLatest: false, versionId: "v1" },
      ];
      const report = await writeInventoryReport(inventory, {
        prefix: "inv",
        sourceBucket: "raw",
        config: "daily",
        format,
        rows: [...rows, ...extra],
        files: 3,
      });
      const byInventory = await open("inv");
      const s = await discoverInventory({
        manifest: byInventory,
        source,
        location: location(source),
        inventoryStore: inventory,
        report,
      });
      assert.deepEqual(
        { listed: s.listed, seen: s.seen, skipped: s.skipped, created: s.created },
        { listed: 7, seen: 3, skipped: 4, created: 3 },
      );
      assert.equal(s.filesApplied, 3);
      assert.equal(s.complete, true);

      const byList = await open("list");
      const l = await discoverSource({
        manifest: byList,
        source,
        location: location(source),
        pageSize: 100,
      });
      assert.equal(l.created, 3);
      assert.deepEqual(await images(byInventory), await images(byList));
      const recorded = await byInventory.listImages({ limit: 1000 });
      // The text file has a row with its verdict (issue 12 item 8); nothing was queued for it.
      const refused = recorded.filter((i) => i.status === "failed").map((i) => i.sourceKey);
      assert.deepEqual(refused, ["cams/notes.txt"]);
      const keys = recorded.filter((i) => i.status !== "failed").map((i) => i.sourceKey);
      assert.deepEqual(keys.sort(), [
        "cams/a.jpg",
        "cams/with space+plus.jpg",
        "cams/ünï/cödé.jpg",
      ]);

      // Applying the same report again reads nothing.
      const again = await discoverInventory({
        manifest: byInventory,
        source,
        location: location(source),
        inventoryStore: inventory,
        report,
      });
      assert.deepEqual([again.listed, again.filesAlreadyApplied, again.complete], [0, 3, true]);
    });
  });
}

Deno.test("inventory: a run cut short resumes at the next data file", async () => {
  await withEnv(async ({ source, inventory, open }) => {
    const rows = await seed(source);
    const report = await writeInventoryReport(inventory, {
      prefix: "inv",
      sourceBucket: "raw",
      config: "daily",
      format: "CSV",
      rows,
      files: 5,
    });
    const m = await open("m");
    const opts = {
      manifest: m,
      source,
      location: location(source),
      inventoryStore: inventory,
      report,
    };
    const first = await discoverInventory({ ...opts, maxFiles: 2 });
    assert.deepEqual([first.filesApplied, first.listed, first.complete], [2, 2, false]);
    const cp = JSON.parse((await m.getCheckpoint(inventoryCheckpointName(inventory.url, report)))!);
    assert.equal(cp.files.length, 2);
    const rest = await discoverInventory(opts);
    assert.deepEqual(
      [rest.filesApplied, rest.filesAlreadyApplied, rest.listed, rest.complete],
      [3, 2, 3, true],
    );
    assert.equal(first.created + rest.created, 3);
  });
});

Deno.test("inventory: the newest report is found; ORC and other buckets are refused", async () => {
  await withEnv(async ({ source, inventory, open }) => {
    const rows = await seed(source);
    const base = { prefix: "inv", sourceBucket: "raw", config: "daily", rows };
    const older = await writeInventoryReport(inventory, {
      ...base,
      format: "CSV",
      at: new Date(Date.UTC(2026, 11, 5)),
    });
    const newer = await writeInventoryReport(inventory, { ...base, format: "Parquet" });
    assert.ok(older < newer);
    assert.equal(await latestInventoryReport(inventory, "inv/raw/daily/"), newer);
    assert.equal(await latestInventoryReport(inventory, "inv/none/"), null);

    const m = await open("m");
    const manifest = JSON.parse(new TextDecoder().decode(await inventory.getBytes(newer)));
    await inventory.put(
      "orc/manifest.json",
      new TextEncoder().encode(JSON.stringify({ ...manifest, fileFormat: "ORC" })),
    );
    await assert.rejects(
      discoverInventory({
        manifest: m,
        source,
        location: location(source),
        inventoryStore: inventory,
        report: "orc/manifest.json",
      }),
      /fileFormat ORC: expected CSV or Parquet/,
    );
    const other = await writeInventoryReport(inventory, {
      ...base,
      sourceBucket: "elsewhere",
      format: "CSV",
    });
    await assert.rejects(
      discoverInventory({
        manifest: m,
        source,
        location: location(source),
        inventoryStore: inventory,
        report: other,
      }),
      /expected a report of bucket raw, found one of elsewhere/,
    );
  });
});

Deno.test("inventory CSV lines: quoted fields, doubled quotes, empty fields", () => {
  assert.deepEqual(parseCsvLine('"raw","a%2Cb.jpg","","true","12"'), [
    "raw",
    "a%2Cb.jpg",
    "",
    "true",
    "12",
  ]);
  assert.deepEqual(parseCsvLine('"say ""hi""",,"x"'), ['say "hi"', "", "x"]);
});
