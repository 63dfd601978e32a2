// readSource against a real file object store: the bytes, missing objects, tampered bytes,
// and objects over the byte limit (refused while streaming).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SluiceError } from "../../common/errors/mod.ts";
import { ImageError } from "../../common/images/verify.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { readSource } from "./_read_source.ts";
import { tempDir } from "./_test_fixtures.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("readSource returns the object's bytes and refuses missing, tampered and oversized ones", async (t) => {
  await using dir = await tempDir();
  const store = await openObjectStore(dir.path);
  // 3 MB of varied bytes: more than one read chunk, and more than the 1 MB first buffer.
  const bytes = new Uint8Array(3_000_003).map((_, i) => (i * 31 + (i >> 9)) & 255);
  await store.put("images/a.jpg", bytes);
  const want = { imageId: "i1", uri: store.uriFor("images/a.jpg"), sha256: sha(bytes) };

  await t.step("bytes come back whole, with or without a recorded size", async () => {
    for (const size of [bytes.byteLength, null, 10]) {
      const got = await readSource(store, "images/a.jpg", { ...want, maxBytes: 1 << 30, size });
      assert.equal(got.byteLength, bytes.byteLength);
      assert.deepEqual(got, bytes);
    }
  });
  await t.step("a missing object is source_missing, naming the image and URI", async () => {
    const err = await readSource(store, "images/none.jpg", { ...want, maxBytes: 1 << 30 })
      .catch((e) => e);
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, "source_missing");
    assert.match(err.message, /^image i1: expected its dataset object at file:.*, found none$/);
  });
  await t.step("different bytes are checksum_mismatch with both hashes", async () => {
    const other = bytes.slice();
    other[2_000_000] ^= 1;
    await store.put("images/b.jpg", other);
    const err = await readSource(store, "images/b.jpg", { ...want, maxBytes: 1 << 30 })
      .catch((e) => e);
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, "checksum_mismatch");
    assert.ok(err.message.includes(`expected ${want.uri} to have sha256 ${want.sha256}`));
    assert.ok(err.message.includes(`found ${sha(other)} (3000003 bytes)`));
  });
  await t.step("an object over maxBytes is too_large, refused while streaming", async () => {
    const err = await readSource(store, "images/a.jpg", { ...want, maxBytes: 1_000_000 })
      .catch((e) => e);
    assert.ok(err instanceof ImageError);
    assert.equal(err.code, "too_large");
    assert.match(err.message, /exceeds the limit of 1000000 bytes/);
  });
  await t.step("an aborted signal stops the read", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await assert.rejects(
      readSource(store, "images/a.jpg", { ...want, maxBytes: 1 << 30 }, ac.signal),
      /stop/,
    );
  });
});
