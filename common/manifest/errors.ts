/**
 * The manifest's named errors.
 *
 * @module
 */
import { SluiceError } from "../errors/mod.ts";
import type { Claim } from "./manifest_store.ts";

/** An argument did not match what the manifest accepts; nothing was written. */
export class ManifestInputError extends SluiceError {
  constructor(what: string, problems: string) {
    super("invalid_manifest_input", `${what}: ${problems}`);
    this.name = "ManifestInputError";
  }
}

/** An image row that an operation needs does not exist. */
export class ImageNotFoundError extends SluiceError {
  constructor(id: string) {
    super("image_not_found", `image ${id}: expected a manifest row, found none`);
    this.name = "ImageNotFoundError";
  }
}

/** A snapshot id was reused for a different set of items. Snapshots are immutable. */
export class SnapshotConflictError extends SluiceError {
  constructor(id: string, expected: number, found: number) {
    super(
      "snapshot_conflict",
      `snapshot ${id} already exists with ${found} items that differ from the ${expected} given; ` +
        `snapshots are immutable, use a new id`,
    );
    this.name = "SnapshotConflictError";
  }
}

/** The claim's lease expired or was taken by another worker; nothing was written. */
export class LeaseLostError extends SluiceError {
  constructor(claim: Claim) {
    super(
      "lease_lost",
      `lease on ${claim.stage}/${claim.itemId} (owner ${claim.owner}) was lost before completion`,
    );
    this.name = "LeaseLostError";
  }
}

/** The manifest URL was not understood. */
export class ManifestUrlError extends SluiceError {
  constructor(url: string) {
    super(
      "invalid_manifest_url",
      `manifest URL ${JSON.stringify(url)}: expected sqlite:///path/to.db, sqlite::memory:, ` +
        `or postgres://user:pass@host:port/db`,
    );
  }
}
