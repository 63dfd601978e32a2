/**
 * Writes S3 Inventory reports as AWS lays them out, for tests and benchmarks: a data folder of
 * gzip CSV (no header, every field quoted, keys URL-encoded) or Parquet files, and
 * `<prefix>/<source-bucket>/<config>/<YYYY-MM-DDTHH-MMZ>/manifest.json` naming them.
 *
 * @example
 * ```ts
 * const report = await writeInventoryReport(store, {
 *   prefix: "inv", sourceBucket: "raw", config: "daily", format: "CSV",
 *   rows: [{ key: "a.jpg", size: 3, etag: "abc" }], files: 1,
 * });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { parquetWriteBuffer } from "hyparquet-writer";
import type { ObjectStore } from "../../common/objectstore/mod.ts";

/** One row of the report. */
export interface InventoryRow {
  key: string;
  size: number;
  etag: string;
  versionId?: string;
  isLatest?: boolean;
  isDeleteMarker?: boolean;
  lastModified?: Date;
}

export interface InventoryReportOptions {
  prefix: string;
  sourceBucket: string;
  config: string;
  format: "CSV" | "Parquet";
  rows: InventoryRow[];
  /** Data files to split the rows into (default 1). */
  files?: number;
  /** Report start time (default 2026-12-06T00:00Z). */
  at?: Date;
}

const CSV_SCHEMA =
  "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass";

/** Form-style URL encoding as inventory CSVs carry keys (`/` kept, space as `+`). */
function encodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, "/").replace(/%20/g, "+");
}

const q = (v: string) => `"${v.replace(/"/g, '""')}"`;

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function stampOf(d: Date): string {
  return d.toISOString().slice(0, 16).replace(":", "-") + "Z";
}

/**
 * Writes one report and returns the key of its `manifest.json`.
 *
 * @example
 * ```ts
 * const key = await writeInventoryReport(store, { prefix: "inv", sourceBucket: "raw",
 *   config: "daily", format: "Parquet", rows });
 * ```
 */
export async function writeInventoryReport(
  store: ObjectStore,
  o: InventoryReportOptions,
): Promise<string> {
  const at = o.at ?? new Date(Date.UTC(2026, 11, 6));
  const base = `${o.prefix}/${o.sourceBucket}/${o.config}`;
  const n = Math.max(1, o.files ?? 1);
  const per = Math.ceil(o.rows.length / n) || 1;
  const files: { key: string; size: number; MD5checksum: string }[] = [];
  for (let f = 0; f < n; f++) {
    const part = o.rows.slice(f * per, (f + 1) * per);
    const lm = (r: InventoryRow) => (r.lastModified ?? at).toISOString();
    let bytes: Uint8Array;
    let key: string;
    if (o.format === "CSV") {
      const text = part.map((r) =>
        [
          o.sourceBucket,
          encodeKey(r.key),
          r.versionId ?? "",
          String(r.isLatest ?? true),
          String(r.isDeleteMarker ?? false),
          String(r.size),
          lm(r),
          r.etag,
          "STANDARD",
        ].map(q).join(",")
      ).join("\n") + "\n";
      bytes = await gzip(text);
      key = `${base}/data/part-${f}.csv.gz`;
    } else {
      bytes = new Uint8Array(parquetWriteBuffer({
        columnData: [
          { name: "bucket", data: part.map(() => o.sourceBucket), type: "STRING" },
          { name: "key", data: part.map((r) => r.key), type: "STRING" },
          { name: "version_id", data: part.map((r) => r.versionId ?? null), type: "STRING" },
          { name: "is_latest", data: part.map((r) => r.isLatest ?? true), type: "BOOLEAN" },
          {
            name: "is_delete_marker",
            data: part.map((r) => r.isDeleteMarker ?? false),
            type: "BOOLEAN",
          },
          { name: "size", data: part.map((r) => BigInt(r.size)), type: "INT64" },
          {
            name: "last_modified_date",
            data: part.map((r) => r.lastModified ?? at),
            type: "TIMESTAMP",
          },
          { name: "e_tag", data: part.map((r) => r.etag), type: "STRING" },
          { name: "storage_class", data: part.map(() => "STANDARD"), type: "STRING" },
        ],
      }));
      key = `${base}/data/part-${f}.parquet`;
    }
    await store.put(key, bytes);
    const md5 = createHash("md5").update(bytes).digest("hex");
    files.push({ key, size: bytes.byteLength, MD5checksum: md5 });
  }
  const manifest = {
    sourceBucket: o.sourceBucket,
    destinationBucket: "arn:aws:s3:::inventory",
    version: "2016-11-30",
    creationTimestamp: String(at.getTime()),
    fileFormat: o.format,
    fileSchema: o.format === "CSV"
      ? CSV_SCHEMA
      : "message s3.inventory { required binary bucket (STRING); required binary key (STRING); optional binary version_id (STRING); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); optional binary e_tag (STRING); optional binary storage_class (STRING);}",
    files,
  };
  const key = `${base}/${stampOf(at)}/manifest.json`;
  await store.put(key, new TextEncoder().encode(JSON.stringify(manifest, null, 2)));
  return key;
}
