/**
 * The ObjectStore contract: one suite, run against every adapter (the directory store and
 * the S3 store talking HTTP to the emulator from `tests/harness/s3.ts`).
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SluiceError } from "../errors/mod.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import { compareKeys } from "./_key_order.ts";
import { FsObjectStore } from "./fs.ts";
import { InvalidKeyError, type ObjectInfo, ObjectNotFoundError, type ObjectStore } from "./mod.ts";
import { S3ObjectStore } from "./s3.ts";

/** A store under test plus how to tear it down. */
export interface ContractFixture {
  store: ObjectStore;
  /** Set when the store uploads large bodies in parts of this size (S3 multipart ETags). */
  partSize?: number;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** S3's ETag for a multipart upload: md5 of the parts' binary md5s, then `-<parts>`. */
function multipartEtag(bytes: Uint8Array, partSize: number): string {
  const outer = createHash("md5");
  let parts = 0;
  for (let off = 0; off < bytes.length; off += partSize, parts++) {
    outer.update(createHash("md5").update(bytes.subarray(off, off + partSize)).digest());
  }
  return `${outer.digest("hex")}-${parts}`;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, off + 65536));
  return out;
}

/** A stream of `bytes` in `chunk`-sized pieces; errors after `failAfter` bytes if given. */
function streamOf(bytes: Uint8Array, chunk = 64 * 1024, failAfter?: number) {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (failAfter !== undefined && off >= failAfter) {
        ctl.error(new Error("source failed midway"));
        return;
      }
      if (off >= bytes.length) {
        ctl.close();
        return;
      }
      ctl.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}

async function keysOf(store: ObjectStore, opts?: Parameters<ObjectStore["list"]>[0]) {
  return (await collect(store.list(opts))).map((o) => o.key);
}

const BAD_KEYS: [string, string][] = [
  ["parent escape", "../x"],
  ["absolute", "/abs"],
  ["nested escape", "a/../../b"],
  // ".." that stays inside the root: only the key rule refuses it (a path check would not).
  ["inner parent segment", "a/../b"],
  ["trailing parent segment", "a/.."],
  ["NUL", "a\0b"],
  ["1025 bytes", "k".repeat(1025)],
  ["1026 UTF-8 bytes", "é".repeat(513)],
  ["empty", ""],
  ["dot segment", "a/./b"],
  ["empty segment", "a//b"],
  ["backslash", "a\\b"],
];

/**
 * Registers the contract suite for one adapter.
 *
 * @example
 * ```ts
 * objectStoreContract("fs", async () => {
 *   const dir = await Deno.makeTempDir();
 *   return { store: await FsObjectStore.fromUrl(dir), cleanup: () => Deno.remove(dir, { recursive: true }) };
 * });
 * ```
 */
export function objectStoreContract(
  name: string,
  open: () => Promise<ContractFixture>,
  opts: { ignore?: boolean } = {},
): void {
  Deno.test({
    name: `ObjectStore contract: ${name}`,
    ignore: opts.ignore,
    async fn(t) {
      const fx = await open();
      const { store } = fx;
      const tmp = await mkdtemp(join(tmpdir(), "sluice-contract-"));
      try {
        await runContract(t, fx, tmp);
      } finally {
        await rm(tmp, { recursive: true, force: true });
        await store.close();
        await fx.cleanup();
      }
    },
  });
}

async function runContract(t: Deno.TestContext, fx: ContractFixture, tmp: string) {
  const { store } = fx;

  await t.step("put, get, getBytes and head round-trip bytes, type and metadata", async () => {
    const body = enc.encode("hello, object store");
    const before = Date.now();
    const info = await store.put("rt/a.txt", body, {
      contentType: "text/plain",
      metadata: { source: "cam-1", "sha-prefix": "ab" },
    });
    assert.equal(info.key, "rt/a.txt");
    assert.equal(info.size, body.length);
    assert.equal(info.etag, md5(body));
    assert.ok(Math.abs(info.lastModified.getTime() - before) < 60_000);
    assert.deepEqual(await store.getBytes("rt/a.txt"), body);
    assert.deepEqual(await readAll(await store.get("rt/a.txt")), body);
    const head = await store.head("rt/a.txt");
    assert.ok(head);
    assert.equal(head.key, "rt/a.txt");
    assert.equal(head.size, body.length);
    assert.equal(head.etag, md5(body));
    assert.equal(head.contentType, "text/plain");
    assert.deepEqual(head.metadata, { source: "cam-1", "sha-prefix": "ab" });
    assert.ok(Math.abs(head.lastModified.getTime() - before) < 60_000);
  });

  await t.step("an overwrite replaces bytes, type and metadata", async () => {
    const body = enc.encode("second version, longer than the first");
    await store.put("rt/a.txt", body, { metadata: { v: "2" } });
    assert.deepEqual(await store.getBytes("rt/a.txt"), body);
    const head = await store.head("rt/a.txt");
    assert.equal(head?.etag, md5(body));
    assert.deepEqual(head?.metadata, { v: "2" });
    assert.notEqual(head?.contentType, "text/plain");
  });

  await t.step("an empty object", async () => {
    const info = await store.put("rt/empty", new Uint8Array(0));
    assert.equal(info.size, 0);
    assert.equal(info.etag, md5(new Uint8Array(0)));
    assert.equal((await store.getBytes("rt/empty")).length, 0);
    assert.equal((await store.head("rt/empty"))?.size, 0);
  });

  await t.step("missing objects", async () => {
    const isNotFound = (key: string) => (e: unknown) =>
      e instanceof ObjectNotFoundError && e.key === key && e.code === "not_found";
    await assert.rejects(store.get("missing/x"), isNotFound("missing/x"));
    await assert.rejects(store.getBytes("missing/x"), isNotFound("missing/x"));
    await assert.rejects(store.download("missing/x", join(tmp, "m")), isNotFound("missing/x"));
    await assert.rejects(store.copy("missing/x", "missing/y"), isNotFound("missing/x"));
    assert.equal(await store.head("missing/x"), null);
    assert.equal(await store.head("rt"), null, "a key prefix is not an object");
    await store.delete("missing/x");
    await assert.rejects(readFile(join(tmp, "m")), { code: "ENOENT" });
  });

  await t.step("download writes a local file, creating its directory", async () => {
    const body = randomBytes(300_000);
    await store.put("dl/blob.bin", body, { contentType: "application/octet-stream" });
    const dest = join(tmp, "dl", "nested", "blob.bin");
    const info = await store.download("dl/blob.bin", dest);
    assert.deepEqual(new Uint8Array(await readFile(dest)), body);
    assert.equal(info.size, body.length);
    assert.equal(info.etag, md5(body));
    assert.equal(info.contentType, "application/octet-stream");
    // Overwrites an existing file whole.
    await writeFile(dest, "old content that is going away");
    await store.put("dl/blob.bin", enc.encode("short"));
    await store.download("dl/blob.bin", dest);
    assert.equal(await readFile(dest, "utf8"), "short");
  });

  await t.step("putFile uploads a small file", async () => {
    const path = join(tmp, "small.txt");
    await writeFile(path, "small file");
    const info = await store.putFile("pf/small.txt", path, { contentType: "text/plain" });
    assert.equal(info.size, 10);
    assert.equal(info.etag, md5(enc.encode("small file")));
    assert.equal(dec.decode(await store.getBytes("pf/small.txt")), "small file");
    assert.equal((await store.head("pf/small.txt"))?.contentType, "text/plain");
  });

  await t.step("putFile uploads a ~12 MiB file in parts", async () => {
    const body = randomBytes(12 * MiB + 12345);
    const path = join(tmp, "big.bin");
    await writeFile(path, body);
    const info = await store.putFile("pf/big.bin", path, { metadata: { kind: "big" } });
    assert.equal(info.size, body.length);
    const expectedEtag = fx.partSize ? multipartEtag(body, fx.partSize) : md5(body);
    if (fx.partSize) assert.match(expectedEtag, /-3$/);
    assert.equal(info.etag, expectedEtag);
    const head = await store.head("pf/big.bin");
    assert.equal(head?.size, body.length);
    assert.equal(head?.etag, expectedEtag);
    assert.deepEqual(head?.metadata, { kind: "big" });
    assert.equal(md5(await store.getBytes("pf/big.bin")), md5(body));
    const dest = join(tmp, "big-back.bin");
    await store.download("pf/big.bin", dest);
    assert.equal(md5(new Uint8Array(await readFile(dest))), md5(body));
  });

  await t.step("put streams a small body and a multi-part body", async () => {
    const small = enc.encode("streamed in pieces ".repeat(100));
    const info = await store.put("st/small.txt", streamOf(small, 7), { contentType: "text/plain" });
    assert.equal(info.size, small.length);
    assert.equal(info.etag, md5(small));
    assert.deepEqual(await store.getBytes("st/small.txt"), small);
    assert.equal((await store.head("st/small.txt"))?.contentType, "text/plain");

    const big = randomBytes(11 * MiB);
    const bigInfo = await store.put("st/big.bin", streamOf(big));
    assert.equal(bigInfo.size, big.length);
    assert.equal(bigInfo.etag, fx.partSize ? multipartEtag(big, fx.partSize) : md5(big));
    assert.equal(md5(await readAll(await store.get("st/big.bin"))), md5(big));
  });

  await t.step("a stream that fails midway leaves no object and keeps the old one", async () => {
    await store.put("fail/keep", enc.encode("old"));
    const body = randomBytes(1 * MiB);
    await assert.rejects(store.put("fail/keep", streamOf(body, 64 * 1024, 512 * 1024)));
    assert.equal(dec.decode(await store.getBytes("fail/keep")), "old");
    await assert.rejects(store.put("fail/new", streamOf(body, 64 * 1024, 512 * 1024)));
    assert.equal(await store.head("fail/new"), null);
    // Past the first part, so S3 has started (and must abort) a multipart upload.
    const big = randomBytes(7 * MiB);
    await assert.rejects(store.put("fail/big", streamOf(big, 256 * 1024, 6 * MiB)));
    assert.equal(await store.head("fail/big"), null);
    assert.deepEqual(await keysOf(store, { prefix: "fail/" }), ["fail/keep"]);
  });

  await t.step("concurrent writers: readers see one whole version", async () => {
    const versions = [0, 1, 2, 3, 4, 5].map((i) => randomBytes(200_000 + i));
    const sums = new Set(versions.map(md5));
    const reads: Promise<void>[] = [];
    await store.put("cc/obj", versions[0]);
    const writes = versions.map((v) => store.put("cc/obj", v));
    for (let i = 0; i < 12; i++) {
      reads.push(store.getBytes("cc/obj").then((b) => assert.ok(sums.has(md5(b)))));
    }
    await Promise.all([...writes, ...reads]);
    const final = await store.getBytes("cc/obj");
    assert.ok(sums.has(md5(final)));
    assert.equal((await store.head("cc/obj"))?.etag, md5(final));
  });

  const listKeys = [
    "list/B",
    "list/Z/1",
    "list/a b",
    "list/a+b",
    "list/a-y",
    "list/a/x",
    "list/a0",
    "list/z",
    "list/\uFFFD",
    "list/\u{1F600}",
    "list/ü/ñ.jpg",
  ];
  const sorted = [...listKeys].sort(compareKeys);

  await t.step("list returns keys in S3 (UTF-8 byte) order with sizes and etags", async () => {
    // Written out of order on purpose.
    for (const k of [...listKeys].reverse()) await store.put(k, enc.encode(k));
    assert.deepEqual(sorted.slice(0, 3), ["list/B", "list/Z/1", "list/a b"]);
    assert.equal(sorted.at(-1), "list/\u{1F600}");
    const all = await collect(store.list({ prefix: "list/" }));
    assert.deepEqual(all.map((o) => o.key), sorted);
    for (const o of all) {
      assert.equal(o.size, enc.encode(o.key).length);
      assert.equal(o.etag, md5(enc.encode(o.key)));
      assert.ok(o.lastModified instanceof Date && !isNaN(o.lastModified.getTime()));
    }
  });

  await t.step("list: prefixes need not end at a slash", async () => {
    assert.deepEqual(await keysOf(store, { prefix: "list/a" }), [
      "list/a b",
      "list/a+b",
      "list/a-y",
      "list/a/x",
      "list/a0",
    ]);
    assert.deepEqual(await keysOf(store, { prefix: "list/a/" }), ["list/a/x"]);
    assert.deepEqual(await keysOf(store, { prefix: "list/ü" }), ["list/ü/ñ.jpg"]);
    assert.deepEqual(await keysOf(store, { prefix: "list/nothing" }), []);
    assert.deepEqual(await keysOf(store, { prefix: "lis" }), sorted);
  });

  await t.step("list: startAfter resumes strictly after a key", async () => {
    assert.deepEqual(
      await keysOf(store, { prefix: "list/", startAfter: "list/a+b" }),
      [
        "list/a-y",
        "list/a/x",
        "list/a0",
        "list/z",
        "list/\uFFFD",
        "list/\u{1F600}",
        "list/ü/ñ.jpg",
      ].sort(compareKeys),
    );
    // A startAfter that is not itself a key, inside a "directory".
    assert.deepEqual(await keysOf(store, { prefix: "list/", startAfter: "list/a/" }), [
      "list/a/x",
      "list/a0",
      "list/z",
      "list/ü/ñ.jpg",
      "list/\uFFFD",
      "list/\u{1F600}",
    ]);
    assert.deepEqual(await keysOf(store, { prefix: "list/", startAfter: sorted.at(-1) }), []);
    assert.deepEqual(await keysOf(store, { prefix: "list/", startAfter: "a" }), sorted);
  });

  await t.step("list: small pages return the same keys over more than two pages", async () => {
    for (const pageSize of [1, 2, 3]) {
      assert.deepEqual(await keysOf(store, { prefix: "list/", pageSize }), sorted);
    }
    assert.deepEqual(
      await keysOf(store, { prefix: "list/", pageSize: 2, startAfter: "list/a-y" }),
      sorted.slice(sorted.indexOf("list/a-y") + 1),
    );
  });

  await t.step("list: the whole store, and bad list options", async () => {
    const all = await keysOf(store);
    assert.deepEqual(all, [...all].sort(compareKeys));
    for (const k of [...listKeys, "rt/a.txt", "pf/big.bin", "st/small.txt"]) {
      assert.ok(all.includes(k), `${k} missing from a full listing`);
    }
    const isInvalid = (e: unknown) => e instanceof SluiceError && e.code === "invalid_options";
    await assert.rejects(collect(store.list({ pageSize: 0 })), isInvalid);
    await assert.rejects(collect(store.list({ pageSize: 1.5 })), isInvalid);
  });

  await t.step("copy duplicates bytes, type and metadata", async () => {
    const body = enc.encode("copy me");
    await store.put("cp/src", body, { contentType: "text/x-test", metadata: { a: "1" } });
    const info = await store.copy("cp/src", "cp/dst/nested");
    assert.equal(info.key, "cp/dst/nested");
    assert.equal(info.size, body.length);
    assert.equal(info.etag, md5(body));
    assert.deepEqual(await store.getBytes("cp/dst/nested"), body);
    const head = await store.head("cp/dst/nested");
    assert.equal(head?.contentType, "text/x-test");
    assert.deepEqual(head?.metadata, { a: "1" });
    assert.deepEqual(await store.getBytes("cp/src"), body);
    // Onto an existing object, and onto itself.
    await store.put("cp/other", enc.encode("to be replaced"));
    await store.copy("cp/src", "cp/other");
    assert.deepEqual(await store.getBytes("cp/other"), body);
    const self = await store.copy("cp/src", "cp/src");
    assert.equal(self.etag, md5(body));
    assert.deepEqual(await store.getBytes("cp/src"), body);
  });

  await t.step("delete removes one object; absent objects are fine", async () => {
    await store.put("del/x/1", enc.encode("1"));
    await store.put("del/x/2", enc.encode("2"));
    await store.delete("del/x/1");
    assert.equal(await store.head("del/x/1"), null);
    await assert.rejects(store.getBytes("del/x/1"), ObjectNotFoundError);
    assert.deepEqual(await keysOf(store, { prefix: "del/" }), ["del/x/2"]);
    await store.delete("del/x/1");
    await store.delete("del/x/2");
    assert.deepEqual(await keysOf(store, { prefix: "del/" }), []);
    // The same key can be written again after its "directory" went away.
    await store.put("del/x/1", enc.encode("again"));
    assert.equal(dec.decode(await store.getBytes("del/x/1")), "again");
  });

  await t.step("unicode, space and + keys", async () => {
    const keys = ["uni/ü ñ/日本 語+1.jpg", "uni/a+b c%20d.txt", "uni/\u{1F600} emoji", "uni/plus+"];
    for (const k of keys) {
      const info = await store.put(k, enc.encode(k), { contentType: "text/plain" });
      assert.equal(info.key, k);
      assert.equal(dec.decode(await store.getBytes(k)), k);
      assert.equal((await store.head(k))?.size, enc.encode(k).length);
      assert.ok(store.uriFor(k).startsWith(store.url + "/"));
    }
    assert.deepEqual(await keysOf(store, { prefix: "uni/" }), [...keys].sort(compareKeys));
    await store.copy("uni/a+b c%20d.txt", "uni/copy of a+b");
    assert.equal(dec.decode(await store.getBytes("uni/copy of a+b")), "uni/a+b c%20d.txt");
    for (const k of [...keys, "uni/copy of a+b"]) await store.delete(k);
    assert.deepEqual(await keysOf(store, { prefix: "uni/" }), []);
  });

  await t.step("a key of exactly 1024 UTF-8 bytes is accepted", async () => {
    const seg = "s".repeat(200);
    let key = `long/${seg}/${seg}/${seg}/${seg}/`;
    key += "t".repeat(1024 - enc.encode(key).length);
    assert.equal(enc.encode(key).length, 1024);
    await store.put(key, enc.encode("long"));
    assert.equal(dec.decode(await store.getBytes(key)), "long");
    assert.deepEqual(await keysOf(store, { prefix: "long/" }), [key]);
    await store.delete(key);
  });

  await t.step("uriFor names a key under the store URL", () => {
    assert.equal(store.uriFor("a/b.jpg"), `${store.url}/a/b.jpg`);
  });

  await t.step("bad keys are refused with InvalidKeyError before any I/O", async (t) => {
    const snapshot = await keysOf(store);
    const src = join(tmp, "src.txt");
    await writeFile(src, "x");
    for (const [label, key] of BAD_KEYS) {
      await t.step(label, async () => {
        const isInvalid = (e: unknown) => e instanceof InvalidKeyError && e.code === "invalid_key";
        assert.throws(() => store.uriFor(key), isInvalid);
        await assert.rejects(store.put(key, enc.encode("x")), isInvalid);
        await assert.rejects(store.put(key, streamOf(enc.encode("x"))), isInvalid);
        await assert.rejects(store.putFile(key, src), isInvalid);
        await assert.rejects(store.get(key), isInvalid);
        await assert.rejects(store.getBytes(key), isInvalid);
        await assert.rejects(store.head(key), isInvalid);
        await assert.rejects(store.download(key, join(tmp, "bad-dl")), isInvalid);
        await assert.rejects(store.copy(key, "rt/a.txt"), isInvalid);
        await assert.rejects(store.copy("rt/a.txt", key), isInvalid);
        await assert.rejects(store.delete(key), isInvalid);
      });
    }
    assert.deepEqual(await keysOf(store), snapshot);
    await assert.rejects(readFile(join(tmp, "bad-dl")), { code: "ENOENT" });
    assert.equal(
      dec.decode(await store.getBytes("rt/a.txt")),
      "second version, longer than the first",
    );
  });

  await t.step("bad metadata and content types are refused", async () => {
    const isInvalid = (e: unknown) => e instanceof SluiceError && e.code === "invalid_options";
    await assert.rejects(
      store.put("md/x", enc.encode("x"), { metadata: { "Bad Key": "v" } }),
      isInvalid,
    );
    await assert.rejects(store.put("md/x", enc.encode("x"), { metadata: { k: "é" } }), isInvalid);
    await assert.rejects(
      store.put("md/x", enc.encode("x"), { metadata: { k: "a\nb" } }),
      isInvalid,
    );
    await assert.rejects(
      store.put("md/x", enc.encode("x"), { metadata: { k: "v".repeat(3000) } }),
      isInvalid,
    );
    await assert.rejects(
      store.put("md/x", enc.encode("x"), { contentType: "text/\u00e9" }),
      isInvalid,
    );
    assert.equal(await store.head("md/x"), null);
  });
}

objectStoreContract("fs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-fs-store-"));
  return {
    store: await FsObjectStore.fromUrl(`file://${dir}`),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const s3 = await s3Availability();
const PART = 5 * MiB;
objectStoreContract("s3 (HTTP to the emulator)", async () => {
  const server = await startS3Server();
  const bucket = `sluice-contract-${crypto.randomUUID().slice(0, 8)}`;
  await server.createBucket(bucket);
  const store = S3ObjectStore.fromUrl(`s3://${bucket}/contract/v1`, {
    endpoint: server.endpoint,
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    partSize: PART,
    retryBaseDelayMs: 10,
  });
  return {
    store,
    partSize: PART,
    async cleanup() {
      if (!server.emulated) {
        // An external server keeps state: empty the bucket so stop() can remove it.
        const cleaner = S3ObjectStore.fromUrl(`s3://${bucket}`, {
          endpoint: server.endpoint,
          region: server.region,
          accessKeyId: server.accessKeyId,
          secretAccessKey: server.secretAccessKey,
        });
        for await (const o of cleaner.list()) await cleaner.delete(o.key);
        await cleaner.close();
      }
      await server.stop();
    },
  };
}, { ignore: !s3.ok });
