/**
 * Concurrent claiming against real databases: several workers on separate connections (separate
 * store instances, and on SQLite also separate processes) drain one queue; every item must be
 * claimed and completed exactly once. Then a worker that stops renewing loses its items to the
 * others and can no longer complete them.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LeaseLostError, type ManifestStore, openManifest } from "./mod.ts";
import { openSqliteManifest } from "./sqlite.ts";
import { openPostgresManifest } from "./postgres.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

type Open = () => Promise<ManifestStore>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tally(map: Map<string, number>, key: string) {
  map.set(key, (map.get(key) ?? 0) + 1);
}

async function drain(
  store: ManifestStore,
  owner: string,
  stage: string,
  claims: Map<string, number>,
  completions: Map<string, number>,
  perWorker: Map<string, number>,
): Promise<void> {
  while (true) {
    const batch = await store.claim(stage, { max: 10, owner, leaseMs: 60_000 });
    // Nothing is ever abandoned here, so an empty claim means the queue is drained or the rest
    // is leased by workers that will finish it.
    if (batch.length === 0) return;
    for (const c of batch) tally(claims, c.itemId);
    await Promise.all(batch.map(async (c) => {
      await store.complete(c, { enqueue: [{ stage: `${stage}-next`, itemId: c.itemId }] });
      tally(completions, c.itemId);
      tally(perWorker, owner);
    }));
  }
}

async function claimContract(
  t: Deno.TestContext,
  open: Open,
  workers: number,
  items: number,
): Promise<void> {
  const stores: ManifestStore[] = [];
  try {
    for (let i = 0; i < workers; i++) stores.push(await open());
    await stores[0].migrate();

    await t.step(
      `${workers} workers drain ${items} items, each completed exactly once`,
      async () => {
        const ids = Array.from({ length: items }, (_, i) => `item-${String(i).padStart(5, "0")}`);
        assert.equal(await stores[0].enqueue("drain", ids), items);
        const claims = new Map<string, number>();
        const completions = new Map<string, number>();
        const perWorker = new Map<string, number>();
        await Promise.all(
          stores.map((s, i) => drain(s, `w${i}`, "drain", claims, completions, perWorker)),
        );
        for (const id of ids) {
          assert.equal(claims.get(id), 1, `${id} claimed ${claims.get(id) ?? 0} times`);
          assert.equal(completions.get(id), 1, `${id} completed ${completions.get(id) ?? 0} times`);
        }
        assert.equal(claims.size, items);
        assert.ok(perWorker.size >= 2, `work spread over ${perWorker.size} worker(s)`);
        assert.deepEqual(await stores[0].workCounts(), {
          drain: { pending: 0, leased: 0, done: items, failed: 0 },
          "drain-next": { pending: items, leased: 0, done: 0, failed: 0 },
        });
        const rows = await stores[0].listWork("drain", "done", 100_000);
        assert.ok(rows.every((r) => r.attempts === 1));
      },
    );

    await t.step("a worker that keeps renewing keeps its items", async () => {
      await stores[0].enqueue("renewed", ["r1", "r2"]);
      const mine = await stores[0].claim("renewed", { max: 2, owner: "slow", leaseMs: 1000 });
      assert.equal(mine.length, 2);
      let held = mine;
      for (let i = 0; i < 8; i++) {
        await sleep(250);
        held = await stores[0].renew(held, 1000);
        assert.equal(held.length, 2);
        const others = await stores[1].claim("renewed", { max: 2, owner: "other", leaseMs: 1000 });
        assert.deepEqual(others, []);
      }
      for (const c of held) await stores[0].complete(c);
    });

    await t.step("a worker that stops renewing loses its items to the others", async () => {
      const total = 40;
      const ids = Array.from({ length: total }, (_, i) => `lease-${String(i).padStart(3, "0")}`);
      await stores[0].enqueue("lease", ids);
      const stalled = await stores[0].claim("lease", { max: 10, owner: "stalled", leaseMs: 300 });
      assert.equal(stalled.length, 10);
      const completions = new Map<string, number>();
      const deadline = Date.now() + 20_000;
      await Promise.all(
        stores.slice(1).map(async (s, i) => {
          while (Date.now() < deadline) {
            const batch = await s.claim("lease", { max: 5, owner: `live${i}`, leaseMs: 60_000 });
            for (const c of batch) {
              await s.complete(c);
              tally(completions, c.itemId);
            }
            if (batch.length === 0) {
              if ((await s.workCounts("lease")).lease.done === total) return;
              await sleep(25);
            }
          }
        }),
      );
      assert.equal((await stores[0].workCounts("lease")).lease.done, total);
      for (const id of ids) assert.equal(completions.get(id), 1, id);
      assert.deepEqual(await stores[0].renew(stalled, 60_000), []);
      for (const c of stalled) {
        await assert.rejects(stores[0].complete(c), LeaseLostError);
      }
      const rows = await stores[0].listWork("lease", "done", 1000);
      const stolen = new Set(stalled.map((c) => c.itemId));
      for (const r of rows) {
        assert.equal(r.attempts, stolen.has(r.itemId) ? 2 : 1, r.itemId);
        assert.notEqual(r.leaseOwner, "stalled");
      }
    });
  } finally {
    for (const s of stores) await s.close();
  }
}

Deno.test("claims: sqlite, two stores on one file", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-claims-"));
  try {
    const url = `sqlite://${join(dir, "m.db")}`;
    await claimContract(t, () => openSqliteManifest(url), 2, 200);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("claims: sqlite, two processes on one file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-claims-"));
  try {
    const url = `sqlite://${join(dir, "m.db")}`;
    const store = await openManifest(url);
    const items = 300;
    const ids = Array.from({ length: items }, (_, i) => `p-${String(i).padStart(4, "0")}`);
    try {
      await store.enqueue("proc", ids);
    } finally {
      await store.close();
    }
    const here = dirname(fileURLToPath(import.meta.url));
    const runs = ["a", "b"].map((owner) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(here, "testdata", "claim_worker.ts"), url, "proc", owner],
        cwd: join(here, "..", ".."),
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    const outs = await Promise.all(runs);
    const dec = new TextDecoder();
    const done: string[] = [];
    for (const o of outs) {
      assert.equal(o.code, 0, dec.decode(o.stderr));
      done.push(...JSON.parse(dec.decode(o.stdout).trim()) as string[]);
    }
    assert.equal(done.length, items, "no item completed twice");
    assert.deepEqual(done.toSorted(), ids);
    const check = await openManifest(url);
    try {
      assert.deepEqual((await check.workCounts("proc")).proc, {
        pending: 0,
        leased: 0,
        done: items,
        failed: 0,
      });
    } finally {
      await check.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const pg = postgresAvailability();

Deno.test({
  name: "claims: postgres, four stores on separate connections",
  ignore: !pg.ok,
  async fn(t) {
    const server = await startPostgres();
    try {
      await claimContract(t, () => openPostgresManifest(server.url), 4, 1000);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "claims: postgres, a claim skips rows another transaction holds instead of waiting",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    const store = await openPostgresManifest(server.url);
    const { default: postgres } = await import("postgres");
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      await store.migrate();
      await store.enqueue("locked", ["a", "b", "c", "d"]);
      let locked!: () => void;
      const holding = new Promise<void>((r) => locked = r);
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      const holder = sql.begin(async (tx) => {
        await tx`SELECT item_id FROM work WHERE stage = 'locked' AND item_id IN ('a', 'b') FOR UPDATE`;
        locked();
        await released;
      });
      await holding;
      const started = Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        store.claim("locked", { max: 4, owner: "w", leaseMs: 60_000 }),
        new Promise<"blocked">((r) => timer = setTimeout(() => r("blocked"), 3000)),
      ]);
      clearTimeout(timer);
      release();
      await holder;
      assert.notEqual(outcome, "blocked", "the claim waited on rows another transaction held");
      assert.ok(Date.now() - started < 3000);
      assert.deepEqual(
        (outcome as { itemId: string }[]).map((c) => c.itemId),
        ["c", "d"],
      );
    } finally {
      await sql.end();
      await store.close();
      await server.stop();
    }
  },
});
