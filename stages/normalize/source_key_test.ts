import assert from "node:assert/strict";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { tempDir } from "./_test_fixtures.ts";
import { ForeignUriError, keyForUri } from "./source_key.ts";

Deno.test("keyForUri maps dataset URIs back to keys of the same store only", async (t) => {
  await using dir = await tempDir();
  const store = await openObjectStore(`${dir.path}/objects dir`);
  try {
    await t.step("round trip, percent-encoding undone", () => {
      for (const key of ["images/ab/abc.jpg", "images/a b/x%20y+z.jpg", "über/ß.png"]) {
        assert.equal(keyForUri(store, store.uriFor(key)), key);
      }
    });
    await t.step("URIs of other stores are refused", () => {
      for (
        const uri of [
          "s3://bucket/images/ab/x.jpg",
          "file:///elsewhere/images/x.jpg",
          store.uriFor("x").slice(0, -1),
        ]
      ) {
        assert.throws(
          () => keyForUri(store, uri),
          (e: unknown) => e instanceof ForeignUriError && e.code === "foreign_uri",
        );
      }
    });
  } finally {
    await store.close();
  }
});
