/**
 * Parallel listing by prefix over a real file-backed object store and a real SQLite manifest:
 * the same images as one LIST, one checkpoint per prefix (a cut-short run resumes each), and
 * overlapping or foreign prefixes refused.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteManifest } from "../../common/manifest/sqlite.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { discoverSource, listCheckpointName, readListCheckpoint } from "./discover.ts";
import { discoverPrefixes, hexPrefixes } from "./discover_prefixes.ts";
import { sourceLocation } from "./source_location.ts";

Deno.test("discoverPrefixes: parallel prefixes find what one LIST finds, each resumable", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-prefixes-"));
  const source = await openObjectStore(`file://${join(dir, "raw")}`);
  const parallel = await openSqliteManifest(`sqlite://${join(dir, "p.db")}`);
  const serial = await openSqliteManifest(`sqlite://${join(dir, "s.db")}`);
  try {
    await parallel.migrate();
    await serial.migrate();
    const keys: string[] = [];
    for (let i = 0; i < 64; i++) {
      const hex = ((i * 2654435761) >>> 0).toString(16).padStart(8, "0");
      keys.push(`cams/${hex}.jpg`);
    }
    keys.push("cams/0/readme.txt", "other/ffff.jpg");
    for (const k of keys) await source.put(k, new TextEncoder().encode(k));
    const location = sourceLocation({
      sourceUrl: source.url,
      prefix: "cams/",
      suffixes: [".jpg"],
    });
    const prefixes = hexPrefixes("cams/");
    const opts = { manifest: parallel, source, location, pageSize: 2, prefixes, concurrency: 4 };

    const first = await discoverPrefixes({ ...opts, maxObjects: 1 });
    assert.equal(first.complete, false);
    const used = prefixes.filter((p) => keys.some((k) => k.startsWith(p)));
    for (const p of used) {
      const cp = await readListCheckpoint(parallel, listCheckpointName(source.url, p));
      assert.ok(cp.startAfter.startsWith(p), `${p}: checkpoint ${cp.startAfter}`);
    }
    const rest = await discoverPrefixes(opts);
    assert.equal(rest.complete, true);
    assert.equal(first.created + rest.created, 64);
    assert.equal(first.listed + rest.listed, 65, "every key under cams/ listed once");

    const one = await discoverSource({ manifest: serial, source, location, pageSize: 100 });
    assert.equal(one.created, 64);
    const ids = async (m: typeof serial) =>
      (await m.listImages({ limit: 1000 })).map((i) => `${i.sourceUri} ${i.sourceEtag}`).sort();
    assert.deepEqual(await ids(parallel), await ids(serial));

    await assert.rejects(
      discoverPrefixes({ ...opts, prefixes: ["cams/a", "cams/ab"] }),
      /expected none inside another/,
    );
    await assert.rejects(
      discoverPrefixes({ ...opts, prefixes: ["other/"] }),
      /expected one under "cams\/"/,
    );
  } finally {
    await parallel.close();
    await serial.close();
    await source.close();
    await rm(dir, { recursive: true, force: true });
  }
});
