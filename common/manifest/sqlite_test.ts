import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ManifestUrlError, openManifest } from "./mod.ts";
import { openSqliteManifest, parseSqliteUrl, SqliteBusyError } from "./sqlite.ts";
import { SchemaTooNewError } from "./migrations/mod.ts";

Deno.test("parseSqliteUrl", async (t) => {
  await t.step("absolute, relative and in-memory forms", () => {
    assert.equal(parseSqliteUrl("sqlite:///tmp/m.db"), "/tmp/m.db");
    assert.equal(parseSqliteUrl("sqlite:/tmp/m.db"), "/tmp/m.db");
    assert.equal(parseSqliteUrl("sqlite:data/m.db"), resolve("data/m.db"));
    assert.equal(parseSqliteUrl("sqlite::memory:"), ":memory:");
    assert.equal(parseSqliteUrl("sqlite:///tmp/with%20space.db"), "/tmp/with space.db");
  });
  await t.step("URLs that name a host or nothing are refused", () => {
    assert.throws(() => parseSqliteUrl("sqlite://host/m.db"), ManifestUrlError);
    assert.throws(() => parseSqliteUrl("sqlite:"), ManifestUrlError);
    assert.throws(() => parseSqliteUrl("postgres://x/y"), ManifestUrlError);
  });
});

Deno.test("openManifest dispatches by URL and migrates", async (t) => {
  await t.step("sqlite::memory: is ready to use", async () => {
    const store = await openManifest("sqlite::memory:");
    try {
      assert.equal(store.kind, "sqlite");
      assert.equal(await store.enqueue("q", ["a"]), 1);
    } finally {
      await store.close();
    }
  });
  await t.step("unknown schemes are refused", async () => {
    await assert.rejects(openManifest("mysql://db/x"), ManifestUrlError);
  });
});

Deno.test("sqlite manifest on a file", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-sqlite-"));
  const path = join(dir, "nested", "m.db");
  const url = `sqlite://${path}`;
  try {
    await t.step("creates missing parent directories and uses WAL", async () => {
      const store = await openManifest(url);
      await store.close();
      const raw = new DatabaseSync(path);
      try {
        const [row] = raw.prepare("PRAGMA journal_mode").all();
        assert.equal(row.journal_mode, "wal");
      } finally {
        raw.close();
      }
    });

    await t.step("waits for another connection's write lock, then proceeds", async () => {
      const raw = new DatabaseSync(path);
      const store = await openSqliteManifest(url, { busyTimeoutMs: 10_000 });
      try {
        raw.exec("BEGIN IMMEDIATE");
        const pending = store.enqueue("q", ["waited"]);
        setTimeout(() => raw.exec("COMMIT"), 150);
        assert.equal(await pending, 1);
      } finally {
        await store.close();
        raw.close();
      }
    });

    await t.step("gives up with SqliteBusyError after busyTimeoutMs", async () => {
      const raw = new DatabaseSync(path);
      const store = await openSqliteManifest(url, { busyTimeoutMs: 200 });
      try {
        raw.exec("BEGIN IMMEDIATE");
        const started = Date.now();
        await assert.rejects(store.enqueue("q", ["late"]), SqliteBusyError);
        assert.ok(Date.now() - started >= 200);
        raw.exec("ROLLBACK");
        assert.equal(await store.enqueue("q", ["late"]), 1);
      } finally {
        await store.close();
        raw.close();
      }
    });

    await t.step("concurrent callers on one store do not interleave transactions", async () => {
      const store = await openManifest(url);
      try {
        const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
        await store.enqueue("conc", ids);
        // Each claim is a transaction of two statements; interleaving would double-claim.
        const batches = await Promise.all(
          ids.map((_, i) => store.claim("conc", { max: 1, owner: `w${i}`, leaseMs: 60_000 })),
        );
        const claimed = batches.flat().map((c) => c.itemId);
        assert.equal(claimed.length, 50);
        assert.equal(new Set(claimed).size, 50);
      } finally {
        await store.close();
      }
    });

    await t.step("refuses a database migrated by a newer version", async () => {
      const raw = new DatabaseSync(path);
      raw.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, 'x', 0)");
      raw.close();
      const store = await openSqliteManifest(url);
      try {
        await assert.rejects(store.migrate(), SchemaTooNewError);
      } finally {
        await store.close();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
