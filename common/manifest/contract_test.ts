/**
 * The manifest contract: one suite, run against SQLite (a file in a temp dir) and a real
 * PostgreSQL (a throwaway cluster from tests/harness/postgres.ts). Every step gets a fresh
 * database. Most steps drive time with a hand clock so lease expiry and backoff are exact; one
 * step uses the real clock with a 200 ms lease.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Effects,
  imageIdFor,
  LeaseLostError,
  type ManifestStore,
  type VariantInput,
} from "./mod.ts";
import { ImageNotFoundError, ManifestInputError, SnapshotConflictError } from "./errors.ts";
import { openSqliteManifest } from "./sqlite.ts";
import { openPostgresManifest } from "./postgres.ts";
import { augmentationIdFor, type StoreOptions } from "./store.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

/** A fresh, empty database that stores can be opened on (several at once). */
interface TestDatabase {
  open(options?: StoreOptions): Promise<ManifestStore>;
  cleanup(): Promise<void>;
}

type Factory = () => Promise<TestDatabase>;

/** A clock that moves only when told to. */
class HandClock {
  t = 1_800_000_000_000;
  now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

interface Ctx {
  store: ManifestStore;
  clock: HandClock;
  /** Another store on the same database (separate connection), same clock. */
  other(): Promise<ManifestStore>;
}

const LEASE = { leaseMs: 60_000 };

function withStore(
  factory: Factory,
  fn: (ctx: Ctx) => Promise<void>,
  opts: { migrate?: boolean; realClock?: boolean } = {},
): () => Promise<void> {
  return async () => {
    const db = await factory();
    const clock = new HandClock();
    const storeOpts: StoreOptions = opts.realClock ? {} : { now: clock.now };
    const opened: ManifestStore[] = [];
    const open = async () => {
      const s = await db.open(storeOpts);
      opened.push(s);
      return s;
    };
    try {
      const store = await open();
      if (opts.migrate !== false) await store.migrate();
      await fn({ store, clock, other: open });
    } finally {
      for (const s of opened) await s.close();
      await db.cleanup();
    }
  };
}

/** Creates an image and completes its ingest with `image` effects (default: ingested). */
async function ingested(
  store: ManifestStore,
  name: string,
  image: Effects["image"] = {},
): Promise<string> {
  const { image: row } = await store.upsertSourceObject({
    sourceUri: `s3://raw/${name}`,
    sourceKey: name,
    etag: "e1",
  });
  const claims = await store.claim("ingest", { max: 100, owner: "setup", ...LEASE });
  const claim = claims.find((c) => c.itemId === row.id);
  assert.ok(claim, `ingest claim for ${name}`);
  await store.complete(claim, {
    image: { status: "ingested", sha256: `sha-${name}`, width: 640, height: 480, ...image },
  });
  for (const c of claims) if (c !== claim) await store.release(c);
  return row.id;
}

function variant(imageId: string, over: Partial<VariantInput> = {}): VariantInput {
  return {
    imageId,
    name: "train640",
    specHash: "spec1",
    version: 1,
    uri: `s3://ds/variants/train640/${imageId}.jpg`,
    width: 640,
    height: 480,
    bytes: 1234,
    sha256: "vsha",
    format: "jpeg",
    transform: {
      srcWidth: 1280,
      srcHeight: 960,
      width: 640,
      height: 480,
      scaleX: 0.5,
      scaleY: 0.5,
      padX: 0,
      padY: 0,
      cropX: 0,
      cropY: 0,
    },
    ...over,
  };
}

async function work(store: ManifestStore, stage: string, itemId: string) {
  const rows = await store.listWork(stage, undefined, 100_000);
  return rows.find((r) => r.itemId === itemId) ?? null;
}

async function contractSuite(t: Deno.TestContext, factory: Factory): Promise<void> {
  await t.step(
    "migrate is idempotent and safe when two stores race on an empty database",
    withStore(factory, async ({ store, other }) => {
      const second = await other();
      await Promise.all([store.migrate(), second.migrate()]);
      await store.migrate();
      assert.deepEqual((await store.stats()).work, {});
    }, { migrate: false }),
  );

  await t.step(
    "upsertSourceObject creates once, enqueues ingest, and is idempotent",
    withStore(factory, async ({ store }) => {
      const obj = { sourceUri: "s3://raw/a.jpg", sourceKey: "a.jpg", etag: "e1", size: 10 };
      const first = await store.upsertSourceObject(obj);
      assert.equal(first.created, true);
      assert.equal(first.changed, false);
      assert.equal(first.stale, false);
      assert.equal(first.image.id, await imageIdFor("s3://raw/a.jpg"));
      assert.equal(first.image.status, "pending");
      assert.equal(first.image.size, 10);
      assert.equal(first.image.sourceEtag, "e1");

      const again = await store.upsertSourceObject(obj);
      assert.deepEqual(
        [again.created, again.changed, again.stale],
        [false, false, false],
      );
      assert.deepEqual(again.image, first.image);
      assert.deepEqual(await store.workCounts("ingest"), {
        ingest: { pending: 1, leased: 0, done: 0, failed: 0 },
      });
      assert.deepEqual(await store.getImage(first.image.id), first.image);
      assert.deepEqual(await store.getImageBySource("s3://raw/a.jpg"), first.image);
      assert.equal(await store.getImage("img_missing"), null);
      assert.equal(await store.getImageBySource("s3://raw/missing.jpg"), null);
      await assert.rejects(
        store.upsertSourceObject({ sourceUri: "", sourceKey: "x" }),
        ManifestInputError,
      );
    }),
  );

  await t.step(
    "completing an image whose content another image already holds records a duplicate",
    withStore(factory, async ({ store, other }) => {
      const second = await other();
      const a = await store.upsertSourceObject({ sourceUri: "s3://raw/a.jpg", sourceKey: "a.jpg" });
      const b = await store.upsertSourceObject({ sourceUri: "s3://raw/b.jpg", sourceKey: "b.jpg" });
      const [ca] = await store.claim("ingest", { max: 1, leaseMs: 60_000, owner: "w1" });
      const [cb] = await second.claim("ingest", { max: 1, leaseMs: 60_000, owner: "w2" });
      const done = (c: typeof ca) => ({
        image: { status: "ingested" as const, sha256: "same-content", size: 5 },
        // A fused ingest records the variants with the image: the duplicate's are dropped too.
        variants: [variant(c.itemId)],
        enqueue: [{ stage: "normalize", itemId: c.itemId }],
      });
      // Two workers on separate connections finish the same content at the same moment.
      await Promise.all([store.complete(ca, done(ca)), second.complete(cb, done(cb))]);
      const rows = [await store.getImage(a.image.id), await store.getImage(b.image.id)];
      const ingested = rows.filter((r) => r?.status === "ingested");
      const dupes = rows.filter((r) => r?.status === "duplicate");
      assert.equal(ingested.length, 1, "exactly one image keeps the content");
      assert.equal(dupes.length, 1);
      assert.equal(dupes[0]!.duplicateOf, ingested[0]!.id);
      const normalize = await store.listWork("normalize", undefined, 10);
      assert.deepEqual(normalize.map((w) => w.itemId), [ingested[0]!.id]);
      assert.equal((await store.findImageBySha256("same-content"))?.id, ingested[0]!.id);
      const variants = await store.listVariants({ imageIds: [a.image.id, b.image.id] });
      assert.deepEqual(variants.map((v) => v.imageId), [ingested[0]!.id]);
    }),
  );

  await t.step(
    "a changed etag or version resets the image and re-queues ingest",
    withStore(factory, async ({ store, clock }) => {
      const id = await ingested(store, "a.jpg", { datasetUri: "s3://ds/images/aa/x.jpg" });
      assert.equal((await work(store, "ingest", id))?.state, "done");
      clock.advance(1000);
      const res = await store.upsertSourceObject({
        sourceUri: "s3://raw/a.jpg",
        sourceKey: "a.jpg",
        etag: "e2",
        size: 20,
      });
      assert.deepEqual([res.created, res.changed, res.stale], [false, true, false]);
      assert.equal(res.image.status, "pending");
      assert.equal(res.image.sha256, null);
      assert.equal(res.image.width, null);
      assert.equal(res.image.datasetUri, null);
      assert.equal(res.image.sourceEtag, "e2");
      assert.equal(res.image.size, 20);
      const w = await work(store, "ingest", id);
      assert.equal(w?.state, "pending");
      assert.equal(w?.attempts, 0);

      const v = await store.upsertSourceObject({
        sourceUri: "s3://raw/a.jpg",
        sourceKey: "a.jpg",
        etag: "e2",
        versionId: "v2",
      });
      assert.equal(v.changed, true);
      assert.equal(v.image.sourceVersion, "v2");
    }),
  );

  await t.step(
    "an older sequencer is stale and changes nothing",
    withStore(factory, async ({ store }) => {
      const uri = "s3://raw/s.jpg";
      const a = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "s.jpg",
        etag: "e2",
        sequencer: "0C",
      });
      const old = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "s.jpg",
        etag: "e1",
        sequencer: "0B",
      });
      assert.deepEqual([old.created, old.changed, old.stale], [false, false, true]);
      assert.deepEqual(old.image, a.image);
      // Right-padding: "0C" equals "0C00", so "0C01" is newer and applies.
      const newer = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "s.jpg",
        etag: "e3",
        sequencer: "0C01",
      });
      assert.deepEqual([newer.changed, newer.stale], [true, false]);
      assert.equal(newer.image.sourceSequencer, "0C01");
      // A duplicate delivery with a newer sequencer but the same etag is a no-op.
      const same = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "s.jpg",
        etag: "e3",
        sequencer: "0D",
      });
      assert.deepEqual([same.changed, same.stale], [false, false]);
      assert.equal(same.image.sourceSequencer, "0D");
      const late = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "s.jpg",
        etag: "e9",
        sequencer: "0C02",
      });
      assert.equal(late.stale, true);
      assert.equal((await store.getImage(a.image.id))?.sourceEtag, "e3");
    }),
  );

  await t.step(
    "markSourceDeleted honours sequencers, drops ingest work and leaves other stages",
    withStore(factory, async ({ store }) => {
      const uri = "s3://raw/d.jpg";
      const id = await ingested(store, "d.jpg");
      await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "d.jpg",
        etag: "e1",
        sequencer: "05",
      });
      await store.enqueue("normalize", [id]);
      assert.equal(await store.markSourceDeleted("s3://raw/none.jpg"), null);

      const stale = await store.markSourceDeleted(uri, "04");
      assert.equal(stale?.status, "ingested");
      const del = await store.markSourceDeleted(uri, "06");
      assert.equal(del?.status, "deleted");
      assert.equal(del?.sourceSequencer, "06");
      assert.equal(await work(store, "ingest", id), null);
      assert.equal((await work(store, "normalize", id))?.state, "pending");

      // Created again with the same content after the delete: it must flow again.
      const back = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "d.jpg",
        etag: "e1",
        sequencer: "07",
      });
      assert.equal(back.changed, true);
      assert.equal(back.image.status, "pending");
      assert.equal((await work(store, "ingest", id))?.state, "pending");
    }),
  );

  await t.step(
    "a delete delivered before its create leaves a tombstone that makes the create stale",
    withStore(factory, async ({ store }) => {
      const uri = "s3://raw/dir/t.jpg";
      const tomb = await store.markSourceDeleted(uri, "09");
      assert.equal(tomb?.status, "deleted");
      assert.equal(tomb?.sourceKey, "dir/t.jpg");
      const late = await store.upsertSourceObject({
        sourceUri: uri,
        sourceKey: "dir/t.jpg",
        etag: "e1",
        sequencer: "08",
      });
      assert.equal(late.stale, true);
      assert.equal(late.image.status, "deleted");
      assert.equal(await work(store, "ingest", late.image.id), null);
    }),
  );

  await t.step(
    "image queries: sha256 lookup, listing with pagination, recorded failures",
    withStore(factory, async ({ store }) => {
      const a = await ingested(store, "a.jpg", { sha256: "same" });
      const b = await ingested(store, "b.jpg", { sha256: "other-content" });
      await store.upsertSourceObject({ sourceUri: "s3://raw/c.jpg", sourceKey: "c.jpg" });
      assert.equal((await store.findImageBySha256("same"))?.id, a);
      assert.equal((await store.findImageBySha256("other-content"))?.id, b);
      assert.equal(await store.findImageBySha256("other"), null);

      const all = await store.listImages();
      assert.equal(all.length, 3);
      assert.deepEqual(all.map((i) => i.id), all.map((i) => i.id).toSorted());
      const page1 = await store.listImages({ limit: 2 });
      const page2 = await store.listImages({ limit: 2, afterId: page1[1].id });
      assert.deepEqual([...page1, ...page2].map((i) => i.id), all.map((i) => i.id));
      assert.deepEqual(
        (await store.listImages({ status: "ingested" })).map((i) => i.id).sort(),
        [a, b].sort(),
      );

      await store.recordImageFailure(a, "invalid_key", "key has ..");
      const failed = await store.getImage(a);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.error, "invalid_key: key has ..");
      await assert.rejects(store.recordImageFailure("img_nope", "x", "y"), ImageNotFoundError);
    }),
  );

  await t.step(
    "labels get dense, stable ids in insertion order, also under concurrency",
    withStore(factory, async ({ store, other }) => {
      const first = await store.ensureLabels(["cat", "dog"]);
      assert.deepEqual([...first], [["cat", 1], ["dog", 2]]);
      const second = await store.ensureLabels(["dog", "bird", "cat", "bird"]);
      assert.deepEqual([...second], [["dog", 2], ["bird", 3], ["cat", 1]]);

      const peer = await other();
      const names = Array.from({ length: 12 }, (_, i) => `l${i}`);
      const [x, y] = await Promise.all([
        store.ensureLabels(names),
        peer.ensureLabels(names.toReversed()),
      ]);
      for (const n of names) assert.equal(x.get(n), y.get(n));
      const listed = await store.listLabels();
      assert.deepEqual(listed.map((l) => l.id), Array.from({ length: 15 }, (_, i) => i + 1));
      assert.equal(new Set(listed.map((l) => l.name)).size, 15);
    }),
  );

  await t.step(
    "annotations are replaced as a set per (image, source)",
    withStore(factory, async ({ store }) => {
      const id = await ingested(store, "a.jpg");
      await store.replaceAnnotations(id, "coco", [
        { label: "cat", bbox: [1, 2, 3, 4], sourceRef: "ann-1" },
        { label: "dog", bbox: [5, 6, 7, 8], polygon: [[5, 6], [12, 6], [12, 14]], score: 0.5 },
      ]);
      await store.replaceAnnotations(id, "labelstudio", [
        { label: "cat", bbox: [0, 0, 10, 10], rotation: 30 },
      ]);
      let rows = await store.listAnnotations([id]);
      assert.equal(rows.length, 3);
      const dog = rows.find((r) => r.label === "dog")!;
      assert.deepEqual(dog.bbox, [5, 6, 7, 8]);
      assert.deepEqual(dog.polygon, [[5, 6], [12, 6], [12, 14]]);
      assert.equal(dog.score, 0.5);
      assert.equal(dog.source, "coco");
      assert.equal(rows.find((r) => r.source === "labelstudio")?.rotation, 30);
      assert.equal(rows.find((r) => r.sourceRef === "ann-1")?.label, "cat");

      await store.replaceAnnotations(id, "coco", [{ label: "bird", bbox: [1, 1, 2, 2] }]);
      rows = await store.listAnnotations([id, id]);
      assert.deepEqual(rows.map((r) => `${r.source}:${r.label}`).sort(), [
        "coco:bird",
        "labelstudio:cat",
      ]);
      await assert.rejects(
        store.replaceAnnotations(id, "coco", [{ label: "x", bbox: [1, 2, 3] as never }]),
        ManifestInputError,
      );
      assert.equal((await store.listAnnotations([id])).length, 2);
      assert.deepEqual(await store.listAnnotations([]), []);
    }),
  );

  await t.step(
    "variant specs: same spec keeps its version, a new spec gets max+1, also concurrently",
    withStore(factory, async ({ store, other }) => {
      const a = await store.registerVariantSpec("train640", "h1", { w: 640 });
      assert.equal(a.version, 1);
      assert.deepEqual(a.spec, { w: 640 });
      assert.equal((await store.registerVariantSpec("train640", "h1", { w: 640 })).version, 1);
      assert.equal((await store.registerVariantSpec("train640", "h2", { w: 641 })).version, 2);
      assert.equal((await store.registerVariantSpec("thumb", "h1", {})).version, 1);

      const peer = await other();
      const hashes = ["c1", "c2", "c3", "c4", "c5", "c6"];
      const got = await Promise.all(
        hashes.map((h, i) => (i % 2 ? store : peer).registerVariantSpec("race", h, { h })),
      );
      assert.deepEqual(got.map((g) => g.version).sort(), [1, 2, 3, 4, 5, 6]);
      const again = await Promise.all(
        hashes.map((h, i) => (i % 2 ? peer : store).registerVariantSpec("race", h, { h })),
      );
      assert.deepEqual(again.map((g) => g.version), got.map((g) => g.version));
      assert.deepEqual(
        (await store.listVariantSpecs("train640")).map((s) => [s.specHash, s.version]),
        [["h1", 1], ["h2", 2]],
      );
      assert.equal((await store.listVariantSpecs()).length, 9);
    }),
  );

  await t.step(
    "claim, renew, release, complete, fail with backoff",
    withStore(factory, async ({ store, clock }) => {
      assert.equal(await store.enqueue("normalize", ["c", "a", "b"]), 3);
      assert.equal(await store.enqueue("normalize", ["a", "b"]), 0);
      const t0 = clock.now();
      const two = await store.claim("normalize", { max: 2, owner: "w1", leaseMs: 1000 });
      assert.deepEqual(two.map((c) => c.itemId), ["a", "b"]);
      assert.ok(two.every((c) => c.attempts === 1 && c.leaseUntil === t0 + 1000));
      assert.notEqual(two[0].token, two[1].token);
      const one = await store.claim("normalize", { max: 5, owner: "w2", ...LEASE });
      assert.deepEqual(one.map((c) => c.itemId), ["c"]);
      assert.deepEqual(await store.claim("normalize", { max: 5, owner: "w2", leaseMs: 1000 }), []);
      assert.deepEqual(await store.claim("other", { max: 5, owner: "w2", leaseMs: 1000 }), []);

      clock.advance(500);
      const renewed = await store.renew([two[0], { ...two[1], token: "forged" }], 5000);
      assert.equal(renewed.length, 1);
      assert.equal(renewed[0].itemId, "a");
      assert.equal(renewed[0].leaseUntil, clock.now() + 5000);
      assert.equal((await work(store, "normalize", "a"))?.leaseUntil, clock.now() + 5000);

      await store.release(two[1]);
      const b = await work(store, "normalize", "b");
      assert.equal(b?.state, "pending");
      assert.equal(b?.attempts, 0);
      const [b2] = await store.claim("normalize", { max: 1, owner: "w1", leaseMs: 1000 });
      assert.equal(b2.itemId, "b");
      assert.equal(b2.attempts, 1);

      await store.complete(renewed[0]);
      assert.equal((await work(store, "normalize", "a"))?.state, "done");
      await assert.rejects(store.complete(renewed[0]), LeaseLostError);

      const failT = clock.now();
      assert.equal(await store.fail(b2, "decode_error", "truncated JPEG"), "pending");
      const bw = await work(store, "normalize", "b");
      assert.equal(bw?.state, "pending");
      assert.equal(bw?.lastError, "decode_error: truncated JPEG");
      // First retry: 500 ms ± 20 %.
      assert.ok(bw!.notBefore >= failT + 400 && bw!.notBefore <= failT + 600, `${bw!.notBefore}`);
      await assert.rejects(store.fail(b2, "x", "y"), LeaseLostError);
      assert.deepEqual(await store.claim("normalize", { max: 5, owner: "w1", leaseMs: 1000 }), []);
      clock.advance(601);
      const [b3] = await store.claim("normalize", { max: 5, owner: "w1", leaseMs: 1000 });
      assert.equal(b3.itemId, "b");
      assert.equal(b3.attempts, 2);
      assert.equal(
        await store.fail(b3, "decode_error", "again", { delayMs: 10_000 }),
        "pending",
      );
      assert.equal((await work(store, "normalize", "b"))?.notBefore, clock.now() + 10_000);
      clock.advance(10_000);
      const [b4] = await store.claim("normalize", { max: 5, owner: "w1", leaseMs: 1000 });
      assert.equal(await store.fail(b4, "bad_input", "never", { retry: false }), "failed");
      assert.deepEqual((await store.listWork("normalize", "failed")).map((w) => w.itemId), ["b"]);

      assert.equal(await store.enqueue("normalize", ["a"], { reset: true }), 1);
      assert.equal((await work(store, "normalize", "a"))?.state, "pending");
      await assert.rejects(
        store.claim("normalize", { max: 0, owner: "w1", leaseMs: 1000 }),
        ManifestInputError,
      );
    }),
  );

  await t.step(
    "an expired lease is retaken by another worker; the old holder can write nothing",
    withStore(factory, async ({ store, clock, other }) => {
      const id = await ingested(store, "a.jpg");
      await store.enqueue("normalize", [id]);
      const peer = await other();
      const [mine] = await store.claim("normalize", { max: 1, owner: "w1", leaseMs: 200 });
      assert.deepEqual(await peer.claim("normalize", { max: 1, owner: "w2", leaseMs: 200 }), []);
      clock.advance(201);
      const [theirs] = await peer.claim("normalize", { max: 1, owner: "w2", leaseMs: 60_000 });
      assert.equal(theirs.itemId, id);
      assert.equal(theirs.attempts, 2);
      assert.notEqual(theirs.token, mine.token);

      assert.deepEqual(await store.renew([mine], 60_000), []);
      await assert.rejects(
        store.complete(mine, {
          image: { width: 1 },
          variants: [variant(id)],
          enqueue: [{ stage: "infer", itemId: id }],
        }),
        LeaseLostError,
      );
      await assert.rejects(store.fail(mine, "x", "y"), LeaseLostError);
      await store.release(mine); // a no-op: it is not ours any more
      assert.equal((await store.getImage(id))?.width, 640);
      assert.deepEqual(await store.listVariants({ imageIds: [id] }), []);
      assert.equal(await work(store, "infer", id), null);
      const w = await work(store, "normalize", id);
      assert.equal(w?.state, "leased");
      assert.equal(w?.leaseOwner, "w2");
      assert.equal(w?.attempts, 2);
      await peer.complete(theirs, { variants: [variant(id)] });
      assert.equal((await store.listVariants({ imageIds: [id] })).length, 1);
    }),
  );

  await t.step(
    "with the real clock a 200 ms lease expires and is retaken",
    withStore(factory, async ({ store }) => {
      await store.enqueue("q", ["x"]);
      const [mine] = await store.claim("q", { max: 1, owner: "w1", leaseMs: 200 });
      await new Promise((r) => setTimeout(r, 300));
      const [theirs] = await store.claim("q", { max: 1, owner: "w2", leaseMs: 60_000 });
      assert.equal(theirs?.itemId, "x");
      await assert.rejects(store.complete(mine), LeaseLostError);
      await store.complete(theirs);
    }, { realClock: true }),
  );

  await t.step(
    "complete applies all effects and follow-up enqueues",
    withStore(factory, async ({ store }) => {
      const id = await ingested(store, "a.jpg");
      const dup = await ingested(store, "b.jpg");
      await store.enqueue("normalize", [id, dup]);
      await store.enqueue("infer", ["busy"]);
      await store.enqueue("infer", ["done-before"]);
      const [busy] = await store.claim("infer", { max: 1, owner: "w9", ...LEASE });
      assert.equal(busy.itemId, "busy");
      const [db] = await store.claim("infer", { max: 1, owner: "w9", ...LEASE });
      await store.complete(db);

      const claims = await store.claim("normalize", { max: 2, owner: "w1", ...LEASE });
      const c = claims.find((x) => x.itemId === id)!;
      const aug = {
        parentImageId: id,
        recipe: "flip",
        index: 0,
        seed: 42,
        params: { flip: true },
        uri: "s3://ds/aug/1.jpg",
        sha256: "asha",
        width: 640,
        height: 480,
        annotations: [{ label: "cat", bbox: [1, 2, 3, 4] as [number, number, number, number] }],
      };
      await store.complete(c, {
        image: { format: "jpeg", error: null },
        variants: [variant(id), variant(id, { name: "thumb", specHash: "s2", width: 64 })],
        annotations: [{
          imageId: id,
          source: "coco",
          items: [{ label: "cat", bbox: [1, 1, 1, 1] }],
        }],
        augmentations: [aug],
        predictions: [{
          imageId: id,
          modelName: "det",
          modelVersion: "1",
          boxes: [{ label: "cat", bbox: [1, 2, 3, 4], score: 0.9 }],
          score: 0.9,
        }],
        enqueue: [
          { stage: "infer", itemId: id },
          { stage: "infer", itemId: "busy" },
          { stage: "infer", itemId: "done-before" },
        ],
      });
      assert.equal((await store.getImage(id))?.format, "jpeg");
      const variants = await store.listVariants({ imageIds: [id] });
      assert.deepEqual(variants.map((v) => v.name).sort(), ["thumb", "train640"]);
      assert.deepEqual(
        variants.find((v) => v.name === "train640")?.transform,
        variant(id).transform,
      );
      assert.equal((await store.listVariants({ name: "thumb", specHash: "s2" })).length, 1);
      assert.equal((await store.listVariants({ name: "thumb", specHash: "nope" })).length, 0);
      assert.equal((await store.listAnnotations([id])).length, 1);
      const [augRow] = await store.listAugmentations([id]);
      assert.equal(augRow.id, await augmentationIdFor(id, "flip", 0, 42));
      assert.deepEqual(augRow.params, { flip: true });
      assert.deepEqual(augRow.annotations, aug.annotations);
      const [pred] = await store.listPredictions({ modelName: "det", modelVersion: "1" });
      assert.deepEqual(pred.boxes, [{ label: "cat", bbox: [1, 2, 3, 4], score: 0.9 }]);
      assert.equal(pred.uri, null);
      assert.equal((await work(store, "infer", id))?.state, "pending");
      assert.equal((await work(store, "infer", "busy"))?.state, "leased", "a lease is kept");
      assert.equal((await work(store, "infer", "done-before"))?.state, "pending", "reopened");
      assert.equal((await work(store, "normalize", id))?.state, "done");

      // Re-doing the work (same keys) upserts instead of duplicating.
      await store.enqueue("normalize", [id], { reset: true });
      const [again] = await store.claim("normalize", { max: 1, owner: "w1", ...LEASE });
      assert.equal(again.itemId, id);
      await store.complete(again, {
        variants: [variant(id, { uri: "s3://ds/v2.jpg", version: 2 })],
        augmentations: [{ ...aug, uri: "s3://ds/aug/1b.jpg" }],
        predictions: [{ imageId: id, modelName: "det", modelVersion: "1", boxes: [], score: 0 }],
      });
      const v2 = await store.listVariants({ imageIds: [id], name: "train640" });
      assert.deepEqual(v2.map((v) => [v.uri, v.version]), [["s3://ds/v2.jpg", 2]]);
      assert.deepEqual((await store.listAugmentations([id])).map((a) => a.uri), [
        "s3://ds/aug/1b.jpg",
      ]);
      assert.deepEqual((await store.listPredictions({ imageIds: [id] }))[0].boxes, []);

      // The effects' image id may name another image than the item (dedupe marks the copy).
      const other = claims.find((x) => x.itemId === dup)!;
      await store.complete(other, { image: { id: dup, status: "duplicate", duplicateOf: id } });
      assert.equal((await store.getImage(dup))?.duplicateOf, id);
    }),
  );

  await t.step(
    "a failing effect rolls back the whole completion",
    withStore(factory, async ({ store }) => {
      const id = await ingested(store, "a.jpg");
      await store.enqueue("normalize", [id]);
      const [c] = await store.claim("normalize", { max: 1, owner: "w1", ...LEASE });
      // The second variant names an image that does not exist: the database refuses it after
      // the image update and the first variant were written.
      await assert.rejects(store.complete(c, {
        image: { format: "png" },
        variants: [variant(id), variant("img_missing")],
        enqueue: [{ stage: "infer", itemId: id }],
      }));
      assert.equal((await store.getImage(id))?.format, null);
      assert.deepEqual(await store.listVariants({ imageIds: [id] }), []);
      assert.equal(await work(store, "infer", id), null);
      assert.equal((await work(store, "normalize", id))?.state, "leased");

      await assert.rejects(
        store.complete(c, { image: { id: "img_missing", status: "ingested" } }),
        ImageNotFoundError,
      );
      await assert.rejects(
        store.complete(c, {
          variants: [variant(id)],
          annotations: [{ imageId: id, source: "x", items: [{ label: "", bbox: [0, 0, 1, 1] }] }],
        }),
        ManifestInputError,
      );
      assert.deepEqual(await store.listVariants({ imageIds: [id] }), []);

      await store.complete(c, { image: { format: "png" }, variants: [variant(id)] });
      assert.equal((await store.getImage(id))?.format, "png");
      assert.equal((await store.listVariants({ imageIds: [id] })).length, 1);
    }),
  );

  await t.step(
    "items claimed too often go to the dead letter with the reason; retryFailed revives them",
    withStore(factory, async ({ store, clock }) => {
      const { image } = await store.upsertSourceObject({
        sourceUri: "s3://raw/p.jpg",
        sourceKey: "p.jpg",
      });
      for (let i = 1; i <= 3; i++) {
        const [c] = await store.claim("ingest", {
          max: 1,
          owner: "crashy",
          leaseMs: 100,
          maxAttempts: 3,
        });
        assert.equal(c.attempts, i);
        clock.advance(101);
      }
      assert.deepEqual(
        await store.claim("ingest", { max: 1, owner: "w", leaseMs: 100, maxAttempts: 3 }),
        [],
      );
      const [dead] = await store.listWork("ingest", "failed");
      assert.equal(dead.itemId, image.id);
      assert.equal(dead.lastError, "lease_expired: claimed 3 times without completing");
      const img = await store.getImage(image.id);
      assert.equal(img?.status, "failed");
      assert.equal(img?.error, "lease_expired: claimed 3 times without completing");

      assert.equal(await store.retryFailed("ingest", ["img_other"]), 0);
      assert.equal(await store.retryFailed("ingest", [image.id]), 1);
      assert.equal((await store.getImage(image.id))?.status, "pending");
      const [again] = await store.claim("ingest", { max: 1, owner: "w", ...LEASE });
      assert.equal(again.attempts, 1);

      // Failing at the last attempt is terminal, and an ingest failure marks the image.
      assert.equal(
        await store.fail(again, "fetch_failed", "503", { maxAttempts: 1 }),
        "failed",
      );
      assert.equal((await store.getImage(image.id))?.error, "fetch_failed: 503");
      assert.equal(await store.retryFailed("ingest"), 1);

      // ...unless the source was deleted meanwhile.
      const [c2] = await store.claim("ingest", { max: 1, owner: "w", ...LEASE });
      await store.markSourceDeleted("s3://raw/p.jpg");
      await assert.rejects(store.fail(c2, "not_found", "404", { retry: false }), LeaseLostError);
      assert.equal((await store.getImage(image.id))?.status, "deleted");
    }),
  );

  await t.step(
    "pruneDoneWork deletes a stage's done rows older than the cut-off, in bounded batches, nothing else",
    withStore(factory, async ({ store, clock }) => {
      const drain = async (stage: string, n: number, how: "complete" | "fail") => {
        const claims = await store.claim(stage, { max: n, owner: "w", ...LEASE });
        for (const c of claims) {
          if (how === "complete") await store.complete(c, {});
          else await store.fail(c, "decode_failed", "bad", { retry: false });
        }
        return claims.map((c) => c.itemId);
      };
      await store.enqueue("normalize", ["a", "b", "c", "d", "e", "f"]);
      await store.enqueue("infer", ["a"]);
      const old = await drain("normalize", 3, "complete"); // a, b, c: done at t0
      await drain("infer", 1, "complete");
      clock.advance(10_000);
      const cutOff = clock.now();
      clock.advance(1);
      await drain("normalize", 1, "complete"); // d: done after the cut-off
      await drain("normalize", 1, "fail"); // e: failed for good; f stays pending
      assert.deepEqual(old, ["a", "b", "c"]);

      assert.equal(await store.pruneDoneWork("normalize", { doneBefore: cutOff, limit: 2 }), 2);
      assert.equal(await store.pruneDoneWork("normalize", { doneBefore: cutOff, limit: 2 }), 1);
      assert.equal(await store.pruneDoneWork("normalize", { doneBefore: cutOff, limit: 2 }), 0);
      const left = (await store.listWork("normalize")).map((w) => `${w.itemId}:${w.state}`);
      assert.deepEqual(left, ["d:done", "e:failed", "f:pending"]);
      // Another stage's done rows are its own business.
      assert.deepEqual((await store.listWork("infer")).map((w) => w.state), ["done"]);
      assert.deepEqual((await store.workCounts("normalize")).normalize, {
        pending: 1,
        leased: 0,
        done: 1,
        failed: 1,
      });
      // A pruned item can be queued again (an explicit enqueue), as if new.
      assert.equal(await store.enqueue("normalize", ["a"]), 1);
      await assert.rejects(
        store.pruneDoneWork("normalize", { doneBefore: -1 }),
        ManifestInputError,
      );
    }),
  );

  await t.step(
    "enqueueForInference picks ingested, unannotated images without this model's prediction",
    withStore(factory, async ({ store }) => {
      const plain = await ingested(store, "plain.jpg");
      const annotated = await ingested(store, "annotated.jpg");
      await store.replaceAnnotations(annotated, "coco", [{ label: "cat", bbox: [0, 0, 1, 1] }]);
      const dup = await ingested(store, "dup.jpg", { status: "duplicate", duplicateOf: plain });
      const predicted = await ingested(store, "predicted.jpg");
      const oldModel = await ingested(store, "old.jpg");
      await store.upsertSourceObject({
        sourceUri: "s3://raw/pending.jpg",
        sourceKey: "pending.jpg",
      });
      await store.enqueue("setup-preds", [predicted]);
      const [c] = await store.claim("setup-preds", { max: 1, owner: "w", ...LEASE });
      await store.complete(c, {
        predictions: [
          { imageId: predicted, modelName: "det", modelVersion: "2", boxes: [], score: 0 },
          { imageId: oldModel, modelName: "det", modelVersion: "1", boxes: [], score: 0 },
        ],
      });

      assert.equal(await store.enqueueForInference("infer:det@2", "det", "2"), 2);
      const queued = (await store.listWork("infer:det@2")).map((w) => w.itemId).sort();
      assert.deepEqual(queued, [oldModel, plain].sort());
      assert.ok(!queued.includes(dup));
      assert.equal(await store.enqueueForInference("infer:det@2", "det", "2"), 0);
      assert.equal(
        await store.enqueueForInference("infer:det@2", "det", "2", { includeAnnotated: true }),
        1,
      );
      assert.equal((await work(store, "infer:det@2", annotated))?.state, "pending");
    }),
  );

  await t.step(
    "predictions of the same model version from two registries are kept apart",
    withStore(factory, async ({ store }) => {
      const [a, b, legacy] = [
        await ingested(store, "a.jpg"),
        await ingested(store, "b.jpg"),
        await ingested(store, "legacy.jpg"),
      ];
      const det1 = { modelName: "det", modelVersion: "1", boxes: [], score: 0 };
      await store.enqueue("setup-preds", [a]);
      const [c] = await store.claim("setup-preds", { max: 1, owner: "w", ...LEASE });
      await store.complete(c, {
        predictions: [
          { ...det1, imageId: a, registry: "file:///srv/mlruns" },
          { ...det1, imageId: a, registry: "http://mlflow:5000", score: 0.5 },
          { ...det1, imageId: legacy },
        ],
      });
      // Each registry sees its own rows and the legacy one (registry unknown, counts for all).
      const of = async (registry: string) =>
        (await store.listPredictions({ modelName: "det", registry }))
          .map((p) => [p.imageId, p.registry, p.score]);
      assert.deepEqual(
        await of("file:///srv/mlruns"),
        [[a, "file:///srv/mlruns", 0], [legacy, "", 0]].sort(),
      );
      assert.deepEqual(
        await of("http://mlflow:5000"),
        [[a, "http://mlflow:5000", 0.5], [legacy, "", 0]].sort(),
      );
      assert.equal((await store.listPredictions({ modelName: "det" })).length, 3);
      // A third registry has predicted nothing but the legacy row covers `legacy` for it too.
      assert.equal(
        await store.enqueueForInference("infer:det@1#x", "det", "1", { registry: "file:///x" }),
        2,
      );
      assert.deepEqual(
        (await store.listWork("infer:det@1#x")).map((w) => w.itemId).sort(),
        [
          a,
          b,
        ].sort(),
      );
      assert.equal(
        await store.enqueueForInference("infer:det@1#f", "det", "1", {
          registry: "file:///srv/mlruns",
        }),
        1,
      );
      assert.equal((await store.listWork("infer:det@1#f"))[0].itemId, b);
      // Without a registry, any registry's prediction counts (as before registries were kept).
      assert.equal(await store.enqueueForInference("infer:det@1", "det", "1"), 1);
      assert.equal((await store.listWork("infer:det@1"))[0].itemId, b);
    }),
  );

  await t.step(
    "snapshots are immutable and keep item order",
    withStore(factory, async ({ store }) => {
      const ids = [await ingested(store, "b.jpg"), await ingested(store, "a.jpg")];
      const items = [{ imageId: ids[0], split: "train" as const }, {
        imageId: ids[1],
        split: "val" as const,
      }];
      const snap = await store.createSnapshot("snap-1", { seed: 1 }, items);
      assert.deepEqual(snap.items, items);
      assert.deepEqual(await store.getSnapshot("snap-1"), snap);
      assert.deepEqual(await store.createSnapshot("snap-1", { seed: 1 }, items), snap);
      await assert.rejects(
        store.createSnapshot("snap-1", {}, [items[0]]),
        SnapshotConflictError,
      );
      await assert.rejects(
        store.createSnapshot("snap-2", {}, [items[0], items[0]]),
        ManifestInputError,
      );
      await assert.rejects(
        store.createSnapshot("snap-3", {}, [{ imageId: "img_none", split: "val" }]),
      );
      assert.equal(await store.getSnapshot("snap-3"), null);
      assert.equal(await store.getSnapshot("nope"), null);
      const empty = await store.createSnapshot("empty", null, []);
      assert.deepEqual((await store.getSnapshot("empty"))?.items, []);
      assert.equal(empty.spec, null);
    }),
  );

  await t.step(
    "training runs upsert by id; checkpoints are a key-value store",
    withStore(factory, async ({ store, clock }) => {
      const base = {
        id: "run-1",
        snapshotId: "snap-1",
        tracker: "mlflow",
        runId: null,
        modelName: null,
        modelVersion: null,
        status: "running",
        params: { lr: "0.01" },
        metrics: {},
      };
      const a = await store.upsertTrainingRun(base);
      assert.deepEqual({ ...a, createdAt: 0, updatedAt: 0 }, {
        ...base,
        createdAt: 0,
        updatedAt: 0,
      });
      clock.advance(5000);
      const b = await store.upsertTrainingRun({
        ...base,
        runId: "abc",
        status: "finished",
        modelName: "det",
        modelVersion: "3",
        metrics: { map50: 0.91, loss: NaN },
      });
      assert.equal(b.createdAt, a.createdAt);
      assert.equal(b.updatedAt, a.createdAt + 5000);
      assert.equal(b.metrics.map50, 0.91);
      assert.ok(Number.isNaN(b.metrics.loss));
      await store.upsertTrainingRun({ ...base, id: "run-2" });
      assert.deepEqual((await store.listTrainingRuns()).map((r) => [r.id, r.status]), [
        ["run-1", "finished"],
        ["run-2", "running"],
      ]);

      assert.equal(await store.getCheckpoint("reconcile:raw"), null);
      await store.setCheckpoint("reconcile:raw", "token-1");
      await store.setCheckpoint("reconcile:raw", "token-2");
      assert.equal(await store.getCheckpoint("reconcile:raw"), "token-2");
    }),
  );

  await t.step(
    "stats and workCounts count what is there",
    withStore(factory, async ({ store }) => {
      const id = await ingested(store, "a.jpg");
      await store.upsertSourceObject({ sourceUri: "s3://raw/b.jpg", sourceKey: "b.jpg" });
      await store.replaceAnnotations(id, "coco", [
        { label: "a", bbox: [0, 0, 1, 1] },
        { label: "b", bbox: [0, 0, 1, 1] },
      ]);
      await store.enqueue("normalize", [id, "x", "y"]);
      await store.claim("normalize", { max: 1, owner: "w", ...LEASE });
      await store.createSnapshot("s", {}, [{ imageId: id, split: "train" }]);
      const s = await store.stats();
      assert.deepEqual(s.images, { ingested: 1, pending: 1 });
      assert.equal(s.annotations, 2);
      assert.equal(s.variants, 0);
      assert.equal(s.snapshots, 1);
      assert.equal(s.trainingRuns, 0);
      assert.deepEqual(s.work, {
        ingest: { pending: 1, leased: 0, done: 1, failed: 0 },
        normalize: { pending: 2, leased: 1, done: 0, failed: 0 },
      });
      assert.deepEqual(await store.workCounts("nothing"), {
        nothing: { pending: 0, leased: 0, done: 0, failed: 0 },
      });
    }),
  );
}

Deno.test("manifest contract: sqlite", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-manifest-"));
  let n = 0;
  try {
    await contractSuite(t, () => {
      const url = `sqlite://${join(dir, `m${++n}.db`)}`;
      return Promise.resolve({
        open: (options?: StoreOptions) => openSqliteManifest(url, options),
        cleanup: () => Promise.resolve(),
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const pg = postgresAvailability();

Deno.test({
  name: "manifest contract: postgres",
  ignore: !pg.ok,
  async fn(t) {
    const server = await startPostgres();
    try {
      await contractSuite(t, async () => {
        const url = await server.newDatabase();
        return {
          open: (options?: StoreOptions) => openPostgresManifest(url, options),
          cleanup: () => Promise.resolve(),
        };
      });
    } finally {
      await server.stop();
    }
  },
});
