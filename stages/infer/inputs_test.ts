import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { imageIdFor } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { InputError, resolveInputs, storeKeyOf } from "./inputs.ts";

const SUFFIXES = [".jpg", ".jpeg", ".png"];
const enc = new TextEncoder();

Deno.test("resolveInputs: --input prefixes and @lists", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "infer-inputs-"));
  const store = await openObjectStore(join(dir, "objects"));
  try {
    await store.put("holdout/a.jpg", enc.encode("A"));
    await store.put("holdout/sub/b.PNG", enc.encode("B"));
    await store.put("holdout/notes.txt", enc.encode("not an image"));
    await store.put("other/c.png", enc.encode("C"));
    await store.put("other/with space.jpg", enc.encode("S"));
    const outside = join(dir, "outside.jpg");
    await writeFile(outside, "O");
    const outsideUrl = join(dir, "url.png");
    await writeFile(outsideUrl, "U");

    await t.step("a prefix gives every image under it (other suffixes are skipped)", async () => {
      const items = await resolveInputs(["holdout/"], store, SUFFIXES);
      assert.deepEqual(items.map((i) => i.key), ["holdout/a.jpg", "holdout/sub/b.PNG"]);
      const [a] = items;
      assert.equal(a.uri, store.uriFor("holdout/a.jpg"));
      assert.equal(a.id, await imageIdFor(a.uri));
      assert.equal(a.fileName, "a.jpg");
      assert.deepEqual(await a.read(), enc.encode("A"));
    });

    await t.step(
      "@list: keys, store URIs, outside paths and file:// URLs; comments and repeats dropped",
      async () => {
        const list = join(dir, "list.txt");
        await writeFile(
          list,
          [
            "# held-out images",
            "other/c.png",
            "",
            `  ${store.uriFor("other/with space.jpg")}  `,
            outside,
            pathToFileURL(outsideUrl).href,
            // The same image again, spelled as a path inside the store and as its key.
            new URL(store.uriFor("other/c.png")).pathname,
            "other/c.png",
          ].join("\r\n"),
        );
        const items = await resolveInputs([`@${list}`, "holdout/"], store, SUFFIXES);
        assert.deepEqual(items.map((i) => [i.key, i.fileName]), [
          ["other/c.png", "c.png"],
          ["other/with space.jpg", "with space.jpg"],
          [null, "outside.jpg"],
          [null, "url.png"],
          ["holdout/a.jpg", "a.jpg"],
          ["holdout/sub/b.PNG", "b.PNG"],
        ]);
        assert.equal(items[2].uri, pathToFileURL(outside).href);
        assert.equal(items[2].id, await imageIdFor(pathToFileURL(outside).href));
        assert.deepEqual(await items[1].read(), enc.encode("S"));
        assert.deepEqual(await items[2].read(), enc.encode("O"));
        assert.deepEqual(await items[3].read(), enc.encode("U"));
      },
    );

    await t.step("what cannot be used is named", async () => {
      const missing = join(dir, "nope.txt");
      const noList = await resolveInputs([`@${missing}`], store, SUFFIXES).catch((e) => e);
      assert.ok(noList instanceof InputError);
      assert.equal(noList.code, "invalid_input");
      assert.match(noList.message, new RegExp(`input list ${missing}: expected a readable file`));

      const empty = await resolveInputs(["nothing/"], store, SUFFIXES).catch((e) => e);
      assert.equal(empty.code, "invalid_input");
      assert.match(empty.message, /input prefix "nothing\/": expected images .* found none/);

      const list = join(dir, "foreign.txt");
      await writeFile(list, "s3://elsewhere/x.jpg\n");
      const foreign = await resolveInputs([`@${list}`], store, SUFFIXES).catch((e) => e);
      assert.equal(foreign.code, "invalid_input");
      assert.match(foreign.message, /"s3:\/\/elsewhere\/x\.jpg": expected an object of /);
    });

    await t.step("storeKeyOf inverts uriFor, and refuses other stores' URIs", () => {
      for (const key of ["holdout/a.jpg", "other/with space.jpg"]) {
        assert.equal(storeKeyOf(store, store.uriFor(key)), key);
      }
      assert.equal(storeKeyOf(store, "s3://bucket/holdout/a.jpg"), null);
      assert.equal(storeKeyOf(store, pathToFileURL(outside).href), null);
    });
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
