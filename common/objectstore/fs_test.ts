import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { SluiceError } from "../errors/mod.ts";
import { FsObjectStore, META_DIR } from "./fs.ts";
import { InvalidKeyError, type ObjectInfo, ObjectNotFoundError, openObjectStore } from "./mod.ts";

const enc = new TextEncoder();

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-fs-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(relative(base, p) + (e.isDirectory() ? "/" : ""));
    if (e.isDirectory()) out.push(...await walk(p, base));
  }
  return out.sort();
}

async function keys(store: FsObjectStore, prefix?: string): Promise<string[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list({ prefix })) out.push(o);
  return out.map((o) => o.key);
}

function md5(s: string | Uint8Array): string {
  return createHash("md5").update(s).digest("hex");
}

Deno.test("FsObjectStore.fromUrl", async (t) => {
  await t.step(
    "file URL, plain path and relative path open the same normalised root",
    () =>
      withTemp(async (dir) => {
        const root = join(dir, "objects");
        const a = await FsObjectStore.fromUrl(pathToFileURL(root).href);
        assert.equal(a.url, pathToFileURL(root).href);
        assert.equal((await stat(root)).isDirectory(), true, "root is created");
        const b = await FsObjectStore.fromUrl(root);
        assert.equal(b.url, a.url);
        const rel = relative(Deno.cwd(), root);
        const c = await FsObjectStore.fromUrl(rel);
        assert.equal(c.url, a.url);
        await a.put("x", enc.encode("1"));
        assert.equal(new TextDecoder().decode(await c.getBytes("x")), "1");
        const viaMod = await openObjectStore(a.url);
        assert.ok(viaMod instanceof FsObjectStore);
        assert.equal(viaMod.url, a.url);
      }),
  );

  await t.step("other schemes and non-directories are refused", () =>
    withTemp(async (dir) => {
      const isInvalid = (e: unknown) => e instanceof SluiceError && e.code === "invalid_url";
      await assert.rejects(FsObjectStore.fromUrl("http://example.com/x"), isInvalid);
      await assert.rejects(FsObjectStore.fromUrl(""), isInvalid);
      await writeFile(join(dir, "file"), "x");
      await assert.rejects(FsObjectStore.fromUrl(join(dir, "file")));
    }));
});

Deno.test("FsObjectStore layout: sidecars and temp files stay hidden", async (t) => {
  await t.step(
    "sidecars live under .sluice-meta and are never listed",
    () =>
      withTemp(async (dir) => {
        const store = await FsObjectStore.fromUrl(dir);
        await store.put("a/b.jpg", enc.encode("jpeg"), {
          contentType: "image/jpeg",
          metadata: { k: "v" },
        });
        assert.deepEqual(await walk(dir), [
          `${META_DIR}/`,
          `${META_DIR}/a/`,
          `${META_DIR}/a/b.jpg`,
          "a/",
          "a/b.jpg",
        ]);
        const sidecar = JSON.parse(await readFile(join(dir, META_DIR, "a", "b.jpg"), "utf8"));
        assert.equal(sidecar.etag, md5("jpeg"));
        assert.equal(sidecar.contentType, "image/jpeg");
        assert.deepEqual(await keys(store), ["a/b.jpg"]);
      }),
  );

  await t.step("keys naming the hidden areas are refused", () =>
    withTemp(async (dir) => {
      const store = await FsObjectStore.fromUrl(dir);
      for (const key of [`${META_DIR}/x`, "a/.sluice-tmp-123", ".sluice-tmp-x"]) {
        await assert.rejects(store.put(key, enc.encode("x")), InvalidKeyError);
        await assert.rejects(store.getBytes(key), InvalidKeyError);
      }
      // Only the top-level meta directory is reserved.
      await store.put(`a/${META_DIR}`, enc.encode("ok"));
      assert.deepEqual(await keys(store), [`a/${META_DIR}`]);
    }));

  await t.step(
    "a stream failing midway leaves no temp file anywhere",
    () =>
      withTemp(async (dir) => {
        const store = await FsObjectStore.fromUrl(dir);
        await store.put("d/keep", enc.encode("old"));
        const before = await walk(dir);
        let sent = 0;
        const failing = new ReadableStream<Uint8Array>({
          pull(ctl) {
            if (sent >= 3) return ctl.error(new Error("disk source vanished"));
            sent++;
            ctl.enqueue(new Uint8Array(100_000).fill(7));
          },
        });
        await assert.rejects(store.put("d/keep", failing), /disk source vanished/);
        assert.equal(sent, 3, "the write really started before failing");
        assert.deepEqual(await walk(dir), before);
        assert.equal(new TextDecoder().decode(await store.getBytes("d/keep")), "old");
      }),
  );
});

Deno.test("FsObjectStore etags without a sidecar", async (t) => {
  await t.step(
    "a file put there by hand gets an md5 etag, cached afterwards",
    () =>
      withTemp(async (dir) => {
        const store = await FsObjectStore.fromUrl(dir);
        await mkdir(join(dir, "hand"));
        await writeFile(join(dir, "hand", "made.txt"), "by hand");
        const head = await store.head("hand/made.txt");
        assert.equal(head?.etag, md5("by hand"));
        assert.equal(head?.contentType, undefined);
        const cached = JSON.parse(await readFile(join(dir, META_DIR, "hand", "made.txt"), "utf8"));
        assert.equal(cached.etag, md5("by hand"));
        assert.deepEqual(await keys(store), ["hand/made.txt"]);
      }),
  );

  await t.step(
    "a file replaced by hand (same size) does not keep the old etag",
    () =>
      withTemp(async (dir) => {
        const store = await FsObjectStore.fromUrl(dir);
        await store.put("r/x", enc.encode("AAAA"), { contentType: "text/plain" });
        // Replace through a new inode, as editors and rsync do.
        await writeFile(join(dir, "r", "x.new"), "BBBB");
        await Deno.rename(join(dir, "r", "x.new"), join(dir, "r", "x"));
        const head = await store.head("r/x");
        assert.equal(head?.etag, md5("BBBB"));
        assert.equal(head?.contentType, undefined, "metadata of another version is dropped");
        const listed = [];
        for await (const o of store.list({ prefix: "r/" })) listed.push(o);
        assert.equal(listed[0].etag, md5("BBBB"));
      }),
  );
});

Deno.test("FsObjectStore stays inside its root", async (t) => {
  await t.step(
    "a directory symlink leading out is refused for every operation",
    () =>
      withTemp(async (dir) => {
        const root = join(dir, "root");
        const outside = join(dir, "outside");
        await mkdir(outside);
        await writeFile(join(outside, "secret"), "secret");
        const store = await FsObjectStore.fromUrl(root);
        await symlink(outside, join(root, "evil"));
        await assert.rejects(store.getBytes("evil/secret"), InvalidKeyError);
        await assert.rejects(store.get("evil/secret"), InvalidKeyError);
        await assert.rejects(store.head("evil/secret"), InvalidKeyError);
        await assert.rejects(store.put("evil/new", enc.encode("x")), InvalidKeyError);
        await assert.rejects(store.put("evil/deeper/new", enc.encode("x")), InvalidKeyError);
        await assert.rejects(store.delete("evil/secret"), InvalidKeyError);
        await assert.rejects(store.copy("evil/secret", "stolen"), InvalidKeyError);
        assert.deepEqual(await walk(outside), ["secret"]);
        assert.equal(await readFile(join(outside, "secret"), "utf8"), "secret");
        assert.deepEqual(await keys(store), [], "symlinks are not listed");
      }),
  );

  await t.step(
    "a file symlink leading out is refused; one inside is followed",
    () =>
      withTemp(async (dir) => {
        const root = join(dir, "root");
        await writeFile(join(dir, "secret"), "secret");
        const store = await FsObjectStore.fromUrl(root);
        await symlink(join(dir, "secret"), join(root, "link"));
        await assert.rejects(store.getBytes("link"), InvalidKeyError);
        await store.put("real/file", enc.encode("inside"));
        await symlink(join(root, "real", "file"), join(root, "alias"));
        assert.equal(new TextDecoder().decode(await store.getBytes("alias")), "inside");
      }),
  );

  await t.step("a root reached through a symlink works", () =>
    withTemp(async (dir) => {
      await mkdir(join(dir, "real-root"));
      await symlink(join(dir, "real-root"), join(dir, "link-root"));
      const store = await FsObjectStore.fromUrl(join(dir, "link-root"));
      await store.put("a/b", enc.encode("x"));
      assert.deepEqual(await keys(store), ["a/b"]);
      assert.equal(await readFile(join(dir, "real-root", "a", "b"), "utf8"), "x");
    }));
});

Deno.test("FsObjectStore: file-system limits and cleanup", async (t) => {
  await t.step("`a` and `a/b` cannot both exist: key_conflict", () =>
    withTemp(async (dir) => {
      const store = await FsObjectStore.fromUrl(dir);
      const isConflict = (e: unknown) => e instanceof SluiceError && e.code === "key_conflict";
      await store.put("a", enc.encode("file"));
      await assert.rejects(store.put("a/b", enc.encode("x")), isConflict);
      await store.put("c/d", enc.encode("x"));
      await assert.rejects(store.put("c", enc.encode("x")), isConflict);
      await assert.rejects(store.getBytes("c"), ObjectNotFoundError);
      assert.equal(await store.head("c"), null);
      await store.delete("c"); // a directory is not an object: nothing to delete
      assert.deepEqual(await keys(store), ["a", "c/d"]);
      assert.deepEqual((await walk(dir)).filter((p) => p.includes(".sluice-tmp-")), []);
    }));

  await t.step(
    "delete removes emptied directories in both trees, never the root",
    () =>
      withTemp(async (dir) => {
        const store = await FsObjectStore.fromUrl(dir);
        await store.put("x/y/z/1", enc.encode("1"));
        await store.put("x/2", enc.encode("2"));
        await store.delete("x/y/z/1");
        assert.deepEqual(await walk(dir), [
          `${META_DIR}/`,
          `${META_DIR}/x/`,
          `${META_DIR}/x/2`,
          "x/",
          "x/2",
        ]);
        await store.delete("x/2");
        assert.deepEqual(await walk(dir), [`${META_DIR}/`]);
        assert.ok((await stat(dir)).isDirectory());
      }),
  );
});

Deno.test("FsObjectStore remembers directories, and re-creates one another process removed", () =>
  withTemp(async (dir) => {
    const root = join(dir, "root");
    const a = await FsObjectStore.fromUrl(root);
    const b = await FsObjectStore.fromUrl(root); // another process on the same directory
    await a.put("v/320/ab/one.jpg", enc.encode("1"));
    await a.put("v/320/ab/two.jpg", enc.encode("2")); // a known directory: no walk
    // b deletes both: the emptied directories (data and sidecars) go with the last object.
    await b.delete("v/320/ab/one.jpg");
    await b.delete("v/320/ab/two.jpg");
    await assert.rejects(stat(join(root, "v")), { code: "ENOENT" });
    // a still remembers v/320/ab: its put must re-create the directories, sidecar included.
    const info = await a.put("v/320/ab/three.jpg", enc.encode("three"));
    assert.equal(info.etag, createHash("md5").update("three").digest("hex"));
    assert.deepEqual(await keys(a), ["v/320/ab/three.jpg"]);
    assert.equal((await b.head("v/320/ab/three.jpg"))?.etag, info.etag);
    // A remembered directory replaced by a symlink leading out is still refused on the next
    // walk: a's delete forgets what it knew.
    await a.delete("v/320/ab/three.jpg");
    await mkdir(join(dir, "outside"));
    await mkdir(join(root, "v"), { recursive: true });
    await symlink(join(dir, "outside"), join(root, "v", "320"));
    await assert.rejects(a.put("v/320/ab/four.jpg", enc.encode("4")), InvalidKeyError);
    assert.deepEqual(await walk(join(dir, "outside")), []);
  }));
