/**
 * What `complete` does to an image row: finds whether another image already holds the same
 * content (so this one becomes its duplicate), and writes the image's new columns.
 *
 * @example
 * ```ts
 * const original = await contentOwner(tx, imageId, image);
 * await updateImage(tx, imageId, original ? { ...image, status: "duplicate", duplicateOf: original } : image, now);
 * ```
 * @module
 */
import type { Effects } from "../contract.ts";
import type { SqlDriver, SqlValue } from "../_driver.ts";
import { ImageNotFoundError } from "../errors.ts";

/** An image's part of a completion's effects. */
export type ImageEffect = NonNullable<Effects["image"]>;

/**
 * For an image about to be recorded as ingested with a content hash, the id of a different
 * image already ingested with that hash, else null. On PostgreSQL an advisory lock on the hash
 * serialises concurrent completions of the same content across connections; SQLite write
 * transactions are serialised already.
 */
export async function contentOwner(
  tx: SqlDriver,
  imageId: string,
  image: ImageEffect,
): Promise<string | null> {
  if (image.status !== "ingested" || !image.sha256) return null;
  if (tx.dialect === "postgres") {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 7))`, [
      `sluice:sha256:${image.sha256}`,
    ]);
  }
  const rows = await tx.query<{ id: string }>(
    `SELECT id FROM images WHERE sha256 = $1 AND status = 'ingested' AND id <> $2
     ORDER BY id LIMIT 1`,
    [image.sha256, imageId],
  );
  return rows[0]?.id ?? null;
}

/** Writes the columns `image` sets (and `updated_at`); throws when the image does not exist. */
export async function updateImage(
  tx: SqlDriver,
  id: string,
  image: ImageEffect,
  now: number,
): Promise<void> {
  const columns: [keyof ImageEffect, string][] = [
    ["status", "status"],
    ["sha256", "sha256"],
    ["size", "size"],
    ["width", "width"],
    ["height", "height"],
    ["format", "format"],
    ["datasetUri", "dataset_uri"],
    ["duplicateOf", "duplicate_of"],
    ["error", "error"],
    ["decodeWarning", "decode_warning"],
  ];
  const params: SqlValue[] = [id, now];
  const sets = ["updated_at = $2"];
  for (const [key, column] of columns) {
    if (image[key] === undefined) continue;
    params.push(image[key]);
    sets.push(`${column} = $${params.length}`);
  }
  const rows = await tx.query(
    `UPDATE images SET ${sets.join(", ")} WHERE id = $1 RETURNING id`,
    params,
  );
  if (rows.length === 0) throw new ImageNotFoundError(id);
}
