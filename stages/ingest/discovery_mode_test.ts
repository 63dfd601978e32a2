/**
 * The ingest stage's configured discovery (`ingest.discovery`) through `stage.discover()`, on the
 * S3 emulator and a real SQLite manifest: `prefixes` lists the hex fan-out in parallel (one
 * checkpoint per prefix) and finds what `list` finds; `inventory` applies the newest report under
 * `inventoryUri`; bad settings are refused by the config's zod schema or with the field named.
 */
import assert from "node:assert/strict";
import { SluiceError } from "../../common/errors/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { type InventoryRow, writeInventoryReport } from "../../tests/support/s3_inventory.ts";
import { listCheckpointName } from "./discover.ts";
import { createIngestStage } from "./stage.ts";
import { openTestEnv } from "./_test_env.ts";

const s3 = await s3Availability();

const KEYS = ["0a1.jpg", "3bc.jpg", "3bd.jpg", "9ff.jpg", "c00.jpg", "f12.jpg", "f13.txt"];

Deno.test({
  name: "ingest.discovery: prefixes and inventory find what a LIST finds",
  ignore: !s3.ok,
  fn: async (t) => {
    const server = await startS3Server();
    const bytes = new TextEncoder().encode("not decoded by discovery");
    try {
      await t.step("list (the default)", async () => {
        const env = await openTestEnv(server);
        try {
          for (const k of KEYS) await env.put(k, bytes);
          assert.equal(env.config.stage.discovery, "list");
          const r = await createIngestStage(env.config, { ...env }).discover();
          assert.deepEqual([r.listed, r.created, r.skipped, r.complete], [7, 6, 1, true]);
        } finally {
          await env.close();
        }
      });

      await t.step("prefixes: 16 hex prefixes, each checkpointed, same images", async () => {
        const env = await openTestEnv(server, {
          settings: { discovery: "prefixes", discoveryConcurrency: 4 },
        });
        try {
          for (const k of KEYS) await env.put(k, bytes);
          const stage = createIngestStage(env.config, { ...env });
          const r = await stage.discover();
          assert.deepEqual([r.listed, r.created, r.skipped, r.complete], [7, 6, 1, true]);
          for (const p of ["0", "3", "f", "7"]) {
            const cp = await env.manifest.getCheckpoint(listCheckpointName(env.source.url, p));
            assert.ok(cp !== null, `prefix ${p}: expected a checkpoint, found none`);
          }
          const again = await stage.discover();
          assert.deepEqual([again.created, again.unchanged, again.pass], [0, 6, 2]);
          assert.equal((await env.manifest.workCounts("ingest")).ingest.pending, 6);
        } finally {
          await env.close();
        }
      });

      await t.step("inventory: the newest report under inventoryUri", async () => {
        const invBucket = `inv-${Date.now().toString(36)}`;
        await server.createBucket(invBucket);
        const env = await openTestEnv(server, {
          settings: { discovery: "inventory", inventoryUri: `s3://${invBucket}/inv/x/daily` },
        });
        const inv = await openObjectStore(`s3://${invBucket}`, { s3: env.config.s3 });
        try {
          for (const k of KEYS) await env.put(k, bytes);
          const rows: InventoryRow[] = [];
          for await (const o of env.source.list()) {
            rows.push({ key: o.key, size: o.size, etag: o.etag });
          }
          const report = {
            prefix: "inv",
            sourceBucket: env.rawBucket,
            config: "daily",
            format: "CSV" as const,
          };
          // An older report with one key only, then the current one: the newest is applied.
          await writeInventoryReport(inv, {
            ...report,
            rows: rows.slice(0, 1),
            at: new Date(Date.UTC(2026, 11, 1)),
          });
          await writeInventoryReport(inv, { ...report, rows, files: 2 });
          // The report's bucket name is in its path: point inventoryUri at it.
          const cfg = {
            ...env.config,
            stage: {
              ...env.config.stage,
              inventoryUri: `s3://${invBucket}/inv/${env.rawBucket}/daily/`,
            },
          };
          const r = await createIngestStage(cfg, { ...env }).discover();
          assert.deepEqual([r.listed, r.created, r.skipped, r.complete], [7, 6, 1, true]);
          const images = await env.manifest.listImages({ limit: 100 });
          assert.deepEqual(
            images.filter((i) => i.status === "pending").map((i) => i.sourceKey).sort(),
            KEYS.filter((k) => k.endsWith(".jpg")),
          );
          assert.deepEqual(
            images.filter((i) => i.status === "failed").map((i) => i.sourceKey),
            ["f13.txt"],
          );
        } finally {
          await inv.close();
          await env.close();
        }
      });

      await t.step("inventory without inventoryUri is refused, naming the field", async () => {
        const env = await openTestEnv(server, { settings: { discovery: "inventory" } });
        try {
          await assert.rejects(
            createIngestStage(env.config, { ...env }).discover(),
            (e) => e instanceof SluiceError && /ingest\.inventoryUri/.test(e.message),
          );
        } finally {
          await env.close();
        }
      });

      await t.step("an unknown mode is refused by the config schema", async () => {
        await assert.rejects(
          openTestEnv(server, { settings: { discovery: "walk" } }),
          /ingest\.discovery/,
        );
      });
    } finally {
      await server.stop();
    }
  },
});
