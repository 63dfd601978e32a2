import assert from "node:assert/strict";
import { join } from "node:path";
import { openObjectStore } from "./mod.ts";
import { isRecordedKey, keyOfRecorded, uriOfRecorded } from "./recorded_key.ts";

Deno.test("recorded keys: relative keys and this store's absolute URIs resolve, others do not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-recorded-" });
  const store = await openObjectStore(join(dir, "objects"));
  const other = await openObjectStore(join(dir, "elsewhere"));
  try {
    assert.equal(isRecordedKey("images/ab/x.jpg"), true);
    assert.equal(isRecordedKey("s3://b/images/ab/x.jpg"), false);
    assert.equal(keyOfRecorded(store, "images/ab/x.jpg"), "images/ab/x.jpg");
    // Older rows: the store's absolute URI, percent-encoding undone.
    assert.equal(keyOfRecorded(store, store.uriFor("images/a b/x.jpg")), "images/a b/x.jpg");
    assert.equal(keyOfRecorded(store, other.uriFor("images/ab/x.jpg")), null);
    assert.equal(keyOfRecorded(store, "../up.jpg"), null, "an invalid key is no key");
    assert.equal(keyOfRecorded(store, "s3://bucket/images/ab/x.jpg"), null);
    assert.equal(uriOfRecorded(store, "images/ab/x.jpg"), store.uriFor("images/ab/x.jpg"));
    assert.equal(uriOfRecorded(store, "s3://b/k.jpg"), "s3://b/k.jpg");
  } finally {
    await store.close();
    await other.close();
    await Deno.remove(dir, { recursive: true });
  }
});
