/**
 * `completeMany` against real databases (a SQLite file and a throwaway PostgreSQL): per-item
 * atomicity, a lost lease failing only its own item, row effects inside a batch, and exactly-once
 * completion when 4 and 16 workers drain one queue with batched claims and completions.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Claim, LeaseLostError, type ManifestStore } from "../mod.ts";
import { ImageNotFoundError } from "../errors.ts";
import { openSqliteManifest } from "../sqlite.ts";
import { openPostgresManifest } from "../postgres.ts";
import { postgresAvailability, startPostgres } from "../../../tests/harness/postgres.ts";

type Open = (now: () => number) => Promise<ManifestStore>;

function tally(map: Map<string, number>, key: string) {
  map.set(key, (map.get(key) ?? 0) + 1);
}

async function contract(
  t: Deno.TestContext,
  open: Open,
  workers: number,
  items: number,
  claimMax = 50,
) {
  let clock = 1_000_000;
  const now = () => clock;
  const a = await open(now);
  const b = await open(now);
  try {
    await a.migrate();

    await t.step(
      "a lost lease fails only its own item; follow-ups land only for held items",
      async () => {
        const ids = ["h0", "h1", "h2", "h3", "h4"];
        await a.enqueue("hop", ids);
        const mine = await a.claim("hop", { max: 5, owner: "a", leaseMs: 1000 });
        assert.equal(mine.length, 5);
        clock += 2000; // every lease expires; b takes h2 over
        await a.renew(mine.filter((c) => c.itemId !== "h2"), 60_000);
        const stolen = await b.claim("hop", { max: 5, owner: "b", leaseMs: 60_000 });
        assert.deepEqual(stolen.map((c) => c.itemId), ["h2"]);
        const out = await a.completeMany(
          mine.map((claim) => ({
            claim,
            effects: { enqueue: [{ stage: "hop2", itemId: claim.itemId }] },
          })),
        );
        assert.deepEqual(out.map((o) => [o.claim.itemId, o.ok]), [
          ["h0", true],
          ["h1", true],
          ["h2", false],
          ["h3", true],
          ["h4", true],
        ]);
        const lost = out[2];
        assert.ok(!lost.ok && lost.error instanceof LeaseLostError, String(!lost.ok && lost.error));
        assert.deepEqual(
          (await a.listWork("hop2", "pending")).map((r) => r.itemId),
          ["h0", "h1", "h3", "h4"],
        );
        assert.deepEqual((await a.listWork("hop", "done")).map((r) => r.itemId), [
          "h0",
          "h1",
          "h3",
          "h4",
        ]);
        const h2 = (await a.listWork("hop", "leased"))[0];
        assert.equal(h2.itemId, "h2");
        assert.equal(h2.leaseOwner, "b");
        // Completing the same claims again: the item is done, the lease is gone.
        const again = await a.completeMany([{ claim: mine[0] }]);
        assert.ok(!again[0].ok && again[0].error instanceof LeaseLostError);
        // b still completes its claim.
        const theirs = await b.completeMany([{ claim: stolen[0] }]);
        assert.ok(theirs[0].ok);
      },
    );

    await t.step(
      "row effects in a batch: one item's error leaves the others recorded",
      async () => {
        const up = await a.upsertSourceObject({
          sourceUri: "s3://bucket/cat.jpg",
          sourceKey: "cat.jpg",
          etag: "e1",
        });
        const imageId = up.image.id;
        const dog = (await a.upsertSourceObject({
          sourceUri: "s3://bucket/dog.jpg",
          sourceKey: "dog.jpg",
          etag: "e2",
        })).image;
        await a.enqueue("rows", ["missing-image", "partial", "plain"]);
        const ingest = (await a.claim("ingest", { max: 10, owner: "a", leaseMs: 60_000 }))
          .filter((c) => c.itemId === imageId);
        const rows = await a.claim("rows", { max: 10, owner: "a", leaseMs: 60_000 });
        assert.deepEqual(ingest.map((c) => c.itemId), [imageId]);
        const byId = new Map(rows.map((c) => [c.itemId, c]));
        const out = await a.completeMany([
          {
            claim: ingest[0],
            effects: {
              image: { status: "ingested", sha256: "ab".repeat(32), width: 4, height: 3 },
              enqueue: [{ stage: "normalize", itemId: imageId }],
            },
          },
          { claim: byId.get("missing-image")!, effects: { image: { status: "ingested" } } },
          { claim: byId.get("plain")!, effects: {} },
          {
            // Its image update runs, then its prediction breaks a foreign key: both roll back.
            claim: byId.get("partial")!,
            effects: {
              image: { id: dog.id, status: "failed", error: "must not land" },
              predictions: [{
                imageId: "img_absent",
                modelName: "m",
                modelVersion: "1",
                boxes: [],
                score: 0,
              }],
            },
          },
        ]);
        assert.ok(out[0].ok, String(!out[0].ok && out[0].error));
        assert.ok(!out[1].ok && out[1].error instanceof ImageNotFoundError);
        assert.ok(out[2].ok);
        assert.ok(!out[3].ok, "a foreign-key violation fails its item");
        const dogAfter = await a.getImage(dog.id);
        assert.equal(dogAfter?.status, dog.status, "the failed item's earlier writes rolled back");
        assert.equal(dogAfter?.error, null);
        const img = await a.getImage(imageId);
        assert.equal(img?.status, "ingested");
        assert.equal(img?.width, 4);
        assert.deepEqual((await a.listWork("normalize", "pending")).map((r) => r.itemId), [
          imageId,
        ]);
        // The failed item wrote nothing and is still leased to its owner.
        assert.deepEqual((await a.listWork("rows", "leased")).map((r) => r.itemId), [
          "missing-image",
          "partial",
        ]);
      },
    );

    await t.step("the same claim twice in one batch completes once", async () => {
      await a.enqueue("twice", ["t0"]);
      const [c] = await a.claim("twice", { max: 1, owner: "a", leaseMs: 60_000 });
      const out = await a.completeMany([{ claim: c }, { claim: c }]);
      assert.deepEqual(out.map((o) => o.ok), [true, false]);
      assert.equal((await a.workCounts("twice")).twice.done, 1);
    });

    await t.step("an item that enqueues itself stays done, as with complete", async () => {
      await a.enqueue("self", ["s0", "s1"]);
      const mine = await a.claim("self", { max: 2, owner: "a", leaseMs: 60_000 });
      const out = await a.completeMany(mine.map((claim) => ({
        claim,
        effects: { enqueue: [{ stage: "self", itemId: claim.itemId }] },
      })));
      assert.deepEqual(out.map((o) => o.ok), [true, true]);
      assert.deepEqual((await a.workCounts("self")).self, {
        pending: 0,
        leased: 0,
        done: 2,
        failed: 0,
      });
    });

    await t.step(
      `${workers} workers drain ${items} items in batches of ${claimMax}, exactly once`,
      async () => {
        clock = Date.now();
        const stores = [a, b];
        for (let i = 2; i < workers; i++) stores.push(await open(now));
        try {
          const ids = Array.from({ length: items }, (_, i) => `x-${String(i).padStart(6, "0")}`);
          await a.enqueue("drain", ids);
          const claims = new Map<string, number>();
          const completions = new Map<string, number>();
          const owners = new Set<string>();
          await Promise.all(stores.map(async (s, w) => {
            while (true) {
              const batch: Claim[] = await s.claim("drain", {
                max: claimMax,
                owner: `w${w}`,
                leaseMs: 600_000,
              });
              if (batch.length === 0) return;
              for (const c of batch) tally(claims, c.itemId);
              const out = await s.completeMany(batch.map((claim) => ({
                claim,
                effects: { enqueue: [{ stage: "drain-next", itemId: claim.itemId }] },
              })));
              for (const o of out) {
                assert.ok(o.ok, `${o.claim.itemId}: ${!o.ok && String(o.error)}`);
                tally(completions, o.claim.itemId);
                owners.add(o.claim.owner);
              }
            }
          }));
          for (const id of ids) {
            assert.equal(claims.get(id), 1, `${id} claimed ${claims.get(id) ?? 0} times`);
            assert.equal(
              completions.get(id),
              1,
              `${id} completed ${completions.get(id) ?? 0} times`,
            );
          }
          assert.equal(claims.size, items);
          assert.ok(owners.size >= 2, `work spread over ${owners.size} worker(s)`);
          const counts = await a.workCounts();
          assert.deepEqual(counts.drain, { pending: 0, leased: 0, done: items, failed: 0 });
          assert.deepEqual(counts["drain-next"], { pending: items, leased: 0, done: 0, failed: 0 });
        } finally {
          for (const s of stores.slice(2)) await s.close();
        }
      },
    );
  } finally {
    await a.close();
    await b.close();
  }
}

Deno.test("completeMany: sqlite file, 4 stores", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-batch-"));
  try {
    const url = `sqlite://${join(dir, "m.db")}`;
    await contract(t, (now) => openSqliteManifest(url, { now }), 4, 2000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const pg = postgresAvailability();

for (
  const [workers, items, batch] of [
    [4, 4000, 50],
    [16, 20_000, 50],
    // ≈ 31 s on the shared 2-core machine (22 s of it the drain).
    [16, 100_000, 500],
  ] as const
) {
  Deno.test({
    name: `completeMany: postgres, ${workers} stores on separate connections, ${items} items`,
    ignore: !pg.ok,
    async fn(t) {
      const server = await startPostgres();
      try {
        await contract(
          t,
          (now) => openPostgresManifest(server.url, { now }),
          workers,
          items,
          batch,
        );
      } finally {
        await server.stop();
      }
    },
  });
}
