import assert from "node:assert/strict";
import { basenameOf, createImageMatcher, imageRefFromUrl } from "./image_match.ts";

Deno.test("imageRefFromUrl", async (t) => {
  await t.step("Label Studio upload prefix: both names are candidates, exact one first", () => {
    const ref = imageRefFromUrl("/data/upload/3/abc123-name.jpg");
    assert.equal(ref.fileName, "abc123-name.jpg");
    assert.deepEqual(ref.candidates, [
      "/data/upload/3/abc123-name.jpg",
      "abc123-name.jpg",
      "name.jpg",
    ]);
    // A hyphenated name without a digit in its first part is not an upload prefix.
    assert.ok(!imageRefFromUrl("/data/upload/3/sunset-beach.jpg").candidates.includes("beach.jpg"));
    // Outside /data/upload/ nothing is stripped.
    assert.ok(!imageRefFromUrl("https://x.test/9f3a2b1c-name.jpg").candidates.includes("name.jpg"));
  });

  await t.step("URL-decoding, query strings, local files, S3 https URLs", () => {
    const presigned = imageRefFromUrl(
      "https://raw.s3.eu-west-1.amazonaws.com/cats/My%20Cat.jpg?X-Amz-Signature=1",
    );
    assert.equal(presigned.fileName, "My Cat.jpg");
    assert.ok(
      presigned.candidates.includes("https://raw.s3.eu-west-1.amazonaws.com/cats/My%20Cat.jpg"),
    );
    assert.ok(presigned.candidates.includes("s3://raw/cats/My Cat.jpg"));
    assert.ok(
      imageRefFromUrl("https://s3.amazonaws.com/raw/a/b.jpg").candidates.includes(
        "s3://raw/a/b.jpg",
      ),
    );
    assert.equal(imageRefFromUrl("/data/local-files/?d=photos/a%2520b.jpg").fileName, "a%20b.jpg");
    assert.equal(basenameOf("s3://raw/dir/x%2By.jpg"), "x+y.jpg");
    assert.equal(basenameOf("plain/relative/file.png"), "file.png");
  });
});

Deno.test("createImageMatcher", async (t) => {
  const match = createImageMatcher([
    { id: "img_1", uris: ["s3://raw/cats/tom.jpg"] },
    { id: "img_2", uris: ["s3://raw/dogs/rex.jpg"] },
    { id: "img_3", uris: ["s3://raw/a/dup.jpg"] },
    { id: "img_4", uris: ["s3://raw/b/dup.jpg"] },
  ]);

  await t.step("priority: sluice id, then URI, then file name", () => {
    assert.deepEqual(match(imageRefFromUrl("anything.jpg", "img_2")), {
      kind: "matched",
      id: "img_2",
      by: "id",
      candidate: "img_2",
    });
    assert.deepEqual(match(imageRefFromUrl("s3://raw/b/dup.jpg")), {
      kind: "matched",
      id: "img_4",
      by: "uri",
      candidate: "s3://raw/b/dup.jpg",
    });
    const up = match(imageRefFromUrl("/data/upload/7/9f3a2b1c-tom.jpg"));
    assert.deepEqual(up, { kind: "matched", id: "img_1", by: "file_name", candidate: "tom.jpg" });
  });

  await t.step("shared file names are ambiguous, unknown ones are none", () => {
    assert.deepEqual(match(imageRefFromUrl("https://x.test/dup.jpg")), {
      kind: "ambiguous",
      ids: ["img_3", "img_4"],
      by: "file_name",
      candidate: "dup.jpg",
    });
    assert.deepEqual(match(imageRefFromUrl("nope.jpg")), { kind: "none" });
  });

  await t.step(
    "file stems (label-only YOLO files) match last, and a shared stem is ambiguous",
    () => {
      const byStem = createImageMatcher([
        { id: "img_1", uris: ["s3://raw/cats/tom.jpg"] },
        { id: "img_5", uris: ["s3://raw/x/pair.jpg"] },
        { id: "img_6", uris: ["s3://raw/x/pair.png"] },
      ]);
      const ref = (stems: string[]) => ({
        url: "labels/x.txt",
        fileName: "x",
        candidates: [],
        stems,
      });
      assert.deepEqual(byStem(ref(["tom"])), {
        kind: "matched",
        id: "img_1",
        by: "file_stem",
        candidate: "tom",
      });
      assert.deepEqual(byStem(ref(["pair"])), {
        kind: "ambiguous",
        ids: ["img_5", "img_6"],
        by: "file_stem",
        candidate: "pair",
      });
      // Label Studio's upload prefix: the bare stem is the second try.
      assert.equal(byStem(ref(["8f3c1a2e-tom", "tom"])).kind, "matched");
      assert.deepEqual(byStem(ref(["tom.jpg"])), { kind: "none" });
    },
  );
});
