/**
 * The manifest store: the record of every image, annotation, variant, augmentation, dataset
 * snapshot, training run and prediction, and also the work queue that distributes items to
 * workers (claims with leases). Two adapters share one implementation of the domain logic over a
 * tiny SQL driver: `sqlite.ts` (node:sqlite, the embedded default) and `postgres.ts`
 * (npm:postgres). `contract_test.ts` runs against both.
 *
 * Writes that finish a claimed item go through {@link ManifestStore.complete}, which applies all
 * of the item's effects and the follow-up enqueues in one transaction, fenced by the claim's
 * lease token: a worker that lost its lease cannot record anything.
 *
 * @example
 * ```ts
 * const manifest = await openManifest("sqlite:///tmp/sluice/manifest.db");
 * await manifest.upsertSourceObject({ sourceUri: "s3://raw/a.jpg", sourceKey: "a.jpg", etag: "e1" });
 * const [claim] = await manifest.claim("ingest", { max: 1, leaseMs: 60_000, owner: "host-1" });
 * await manifest.complete(claim, { image: { status: "ingested", sha256 }, enqueue: [{ stage: "normalize", itemId: claim.itemId }] });
 * ```
 * @module
 */
export * from "./contract.ts";
export * from "./open.ts";
