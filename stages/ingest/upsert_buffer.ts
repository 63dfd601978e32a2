/**
 * Discovery's upserts, gathered: keys found by a listing or an inventory report are upserted
 * `size` at a time through `upsertSourceObjects` (one transaction per group) instead of one
 * transaction per key. Each key's result is handed to its own callback when its group is
 * recorded. Callers flush before writing a checkpoint, so a checkpoint never gets ahead of the
 * keys actually recorded.
 *
 * @example
 * ```ts
 * const buffer = new UpsertBuffer(manifest, 500);
 * await buffer.add(object, (r) => r.created && created++);
 * await buffer.flush();
 * await manifest.setCheckpoint(name, value);
 * ```
 * @module
 */
import type { ManifestStore, SourceObject, UpsertResult } from "../../common/manifest/mod.ts";

/** Keys per `upsertSourceObjects` call by default. */
export const UPSERT_GROUP = 500;

/** See the module docs. */
export class UpsertBuffer {
  readonly #manifest: Pick<ManifestStore, "upsertSourceObjects">;
  readonly #size: number;
  #waiting: { obj: SourceObject; then: (r: UpsertResult) => void }[] = [];

  constructor(manifest: Pick<ManifestStore, "upsertSourceObjects">, size = UPSERT_GROUP) {
    this.#manifest = manifest;
    this.#size = Math.max(1, Math.floor(size));
  }

  /** Queues one upsert; records the group when it is full. */
  async add(obj: SourceObject, then: (r: UpsertResult) => void): Promise<void> {
    this.#waiting.push({ obj, then });
    if (this.#waiting.length >= this.#size) await this.flush();
  }

  /** Records every queued upsert and calls their callbacks. */
  async flush(): Promise<void> {
    const group = this.#waiting.splice(0);
    if (group.length === 0) return;
    const results = await this.#manifest.upsertSourceObjects(group.map((g) => g.obj));
    group.forEach((g, i) => g.then(results[i]));
  }
}
