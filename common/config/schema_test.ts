import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseSqliteUrl } from "../manifest/sqlite.ts";
import { DEFAULT_HTTP_PORTS, sharedSchema } from "./schema.ts";

const ctx = { cwd: "/srv/app", stage: "normalize" as const, hostname: "box", pid: 99 };

Deno.test("sharedSchema", async (t) => {
  const schema = sharedSchema(ctx);

  await t.step("parses {} to every default", () => {
    const c = schema.parse({});
    assert.equal(c.objectStore.url, "file:///srv/app/.sluice/objects");
    assert.equal(c.manifest.url, "sqlite:///srv/app/.sluice/manifest.db");
    assert.equal(c.worker.id, "box-99");
    assert.equal(c.http.port, DEFAULT_HTTP_PORTS.normalize);
  });

  await t.step("manifest URL forms", () => {
    const url = (v: string) => schema.parse({ manifest: { url: v } }).manifest.url;
    assert.equal(url("sqlite:///var/lib/m.db"), "sqlite:///var/lib/m.db");
    assert.equal(url("sqlite:///var/lib/with%20space.db"), "sqlite:///var/lib/with%20space.db");
    assert.equal(url("/var/lib/with space.db"), "sqlite:///var/lib/with%20space.db");
    assert.equal(url("sqlite:m.db"), "sqlite:///srv/app/m.db");
    assert.equal(url("data/m.db"), "sqlite:///srv/app/data/m.db");
    assert.equal(url("sqlite::memory:"), "sqlite::memory:");
    assert.equal(url("postgresql://u@h/db"), "postgresql://u@h/db");
    assert.equal(schema.safeParse({ manifest: { url: "postgres:///nohost" } }).success, false);
    assert.equal(schema.safeParse({ manifest: { url: "sqlite:" } }).success, false);
    // sqlite://host/... names a host, as the manifest's parser reads it.
    assert.equal(schema.safeParse({ manifest: { url: "sqlite://rel/m.db" } }).success, false);
  });

  await t.step("odd paths survive the round trip through the manifest and store parsers", () => {
    const odd = sharedSchema({ ...ctx, cwd: "/srv/my app/100%" }).parse({});
    assert.equal(parseSqliteUrl(odd.manifest.url), "/srv/my app/100%/.sluice/manifest.db");
    assert.equal(fileURLToPath(odd.objectStore.url), "/srv/my app/100%/.sluice/objects");
    assert.equal(odd.staging.fallbackRoot, "/srv/my app/100%/.sluice/staging");
  });

  await t.step("object store URL forms", () => {
    const url = (v: string) => schema.parse({ objectStore: { url: v } }).objectStore.url;
    assert.equal(url("s3://my-bucket"), "s3://my-bucket");
    assert.equal(url("s3://my-bucket/a/b/"), "s3://my-bucket/a/b");
    assert.equal(url("/data/objects"), "file:///data/objects");
    assert.equal(url("objects"), "file:///srv/app/objects");
    assert.equal(url("file:///data/with space"), "file:///data/with%20space");
    for (const bad of ["s3://", "s3://Bad_Bucket", "http://x/y", "file://relative/x", ""]) {
      assert.equal(schema.safeParse({ objectStore: { url: bad } }).success, false, bad);
    }
  });

  await t.step("suffixes are lower-cased and checked", () => {
    assert.deepEqual(schema.parse({ source: { suffixes: [".PNG"] } }).source.suffixes, [".png"]);
    assert.equal(schema.safeParse({ source: { suffixes: ["png"] } }).success, false);
    assert.equal(schema.safeParse({ source: { suffixes: [] } }).success, false);
  });

  await t.step("worker ids must be safe directory names", () => {
    assert.equal(schema.safeParse({ worker: { id: "node-1.pod_2" } }).success, true);
    for (const bad of ["..", "a/b", "-x", ""]) {
      assert.equal(schema.safeParse({ worker: { id: bad } }).success, false, bad);
    }
  });

  await t.step("unknown keys are refused", () => {
    assert.equal(schema.safeParse({ worker: { concurency: 1 } }).success, false);
    assert.equal(schema.safeParse({ extra: {} }).success, false);
  });
});
