import assert from "node:assert/strict";
import { join } from "node:path";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { applySourceEvents } from "./apply_events.ts";
import { recordUnsupportedSuffix } from "./refused_suffix.ts";
import type { SourceEvent } from "./s3_event.ts";
import { sourceLocation } from "./source_location.ts";

function created(key: string, etag: string): SourceEvent {
  return {
    kind: "created",
    bucket: "raw",
    key,
    eventName: "ObjectCreated:Put",
    etag,
    size: 10,
    versionId: null,
    sequencer: null,
    eventTime: null,
    shape: "s3",
  };
}

Deno.test("refused suffix: an event for an .svg records a failed row once, nothing queued", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-refused-" });
  const manifest = await openManifest(`sqlite://${join(dir, "m.db")}`);
  const source = await openObjectStore(join(dir, "raw"));
  try {
    const location = sourceLocation({ sourceUrl: "s3://raw", prefix: "", suffixes: [".jpg"] });
    const opts = { manifest, source, location, origin: "webhook" as const };
    const s = await applySourceEvents([created("logo.svg", "e1"), created("a.jpg", "e2")], opts);
    assert.equal(s.results.ignored_suffix, 1);
    assert.equal(s.results.created, 1);
    const rows = await manifest.listImages({ limit: 10 });
    const svg = rows.find((r) => r.sourceKey === "logo.svg");
    assert.equal(svg?.status, "failed");
    assert.match(svg?.error ?? "", /^unsupported_suffix: .*\.svg/);
    const queued = await manifest.listWork("ingest", "pending");
    assert.deepEqual(queued.map((w) => w.itemId), [rows.find((r) => r.sourceKey === "a.jpg")!.id]);

    // Seen again (a re-list, a repeated event): the row stays as it was, not counted twice.
    const again = await recordUnsupportedSuffix({ manifest, source, key: "logo.svg" });
    assert.equal(again.created, false);
    assert.equal(again.image.id, svg?.id);
    assert.equal((await manifest.listImages({ limit: 10 })).length, 2);
  } finally {
    await source.close();
    await manifest.close();
    await Deno.remove(dir, { recursive: true });
  }
});
