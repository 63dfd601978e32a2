/**
 * Errors specific to the manifest store (LeaseLostError and ManifestUrlError live in `mod.ts`).
 *
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

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
