/**
 * Discovery from an S3 Inventory report instead of a LIST: for buckets where listing every key
 * each day costs too much time or money, S3 writes a daily or weekly report of the bucket into a
 * destination bucket, and this reads it. A report is
 * `destination-prefix/source-bucket/config-ID/YYYY-MM-DDTHH-MMZ/manifest.json` naming data files
 * (`files[].key`) in the format given by `fileFormat`:
 *
 * - `CSV`: gzip-compressed, no header row, every field double-quoted, columns in the order of
 *   `fileSchema` (`"Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate,
 *   ETag, ..."`); object keys are URL-encoded;
 * - `Parquet`: columns `bucket`, `key`, `version_id`, `is_latest`, `is_delete_marker`, `size`,
 *   `last_modified_date`, `e_tag`, ...; keys as they are. Read with `hyparquet` (pure JS).
 *
 * (ORC, the third format S3 writes, is refused with the formats that are understood.)
 *
 * Each object is upserted exactly as a listed one (same source URI, etag and version), so a key
 * found by LIST, by an event and by the inventory is one image. Delete markers and non-current
 * versions are skipped. A checkpoint per report (`ingest:inventory:<report>`) records the data
 * files already applied, so a run cut short resumes at the next file and a finished report is
 * not applied twice.
 *
 * @example
 * ```ts
 * const report = await latestInventoryReport(inventoryStore, "inv/raw/daily/");
 * if (report) await discoverInventory({ manifest, source, location, inventoryStore, report });
 * ```
 * @module
 */
import { parquetReadObjects } from "hyparquet";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { type SourceLocation, sourceUriFor } from "./source_location.ts";
import { recordUnsupportedSuffix } from "./refused_suffix.ts";
import { UpsertBuffer } from "./upsert_buffer.ts";

/** `manifest.json` of an inventory report (the fields used here). */
export const InventoryManifestSchema = z.object({
  sourceBucket: z.string().min(1),
  destinationBucket: z.string().optional(),
  version: z.string().optional(),
  creationTimestamp: z.string().optional(),
  fileFormat: z.string().min(1),
  fileSchema: z.string().min(1),
  files: z.array(z.object({
    key: z.string().min(1),
    size: z.number().nonnegative().optional(),
    MD5checksum: z.string().optional(),
  })),
});
export type InventoryManifest = z.infer<typeof InventoryManifestSchema>;

/** One object of the report. */
export interface InventoryObject {
  /** The key in the source bucket (decoded). */
  key: string;
  size: number | null;
  etag: string | null;
  versionId: string | null;
  /** False for non-current versions (reports that include all versions). */
  isLatest: boolean;
  isDeleteMarker: boolean;
}

export interface InventoryDiscoverOptions {
  manifest: ManifestStore;
  /** The source store images are read from (for their source URIs). */
  source: ObjectStore;
  location: SourceLocation;
  /** The store holding the report (the inventory destination bucket). */
  inventoryStore: ObjectStore;
  /** Key of the report's `manifest.json` in `inventoryStore`. */
  report: string;
  /** Aborting stops after the current data file, keeping the checkpoint. */
  signal?: AbortSignal;
  /** Stop after applying this many data files; the checkpoint lets the next call go on. */
  maxFiles?: number;
  log?: Logger;
}

export interface InventoryDiscoverSummary {
  /** Rows read from data files applied by this call. */
  listed: number;
  seen: number;
  skipped: number;
  created: number;
  changed: number;
  unchanged: number;
  /** Data files applied by this call / already applied by an earlier one. */
  filesApplied: number;
  filesAlreadyApplied: number;
  /** Every data file of the report has been applied. */
  complete: boolean;
}

const CheckpointSchema = z.object({ files: z.array(z.string()), complete: z.boolean() });

/**
 * The manifest checkpoint name for one inventory report.
 *
 * @example
 * ```ts
 * inventoryCheckpointName("s3://inv", "raw/daily/2026-12-06T00-00Z/manifest.json");
 * ```
 */
export function inventoryCheckpointName(storeUrl: string, report: string): string {
  return `ingest:inventory:${storeUrl}|${report}`;
}

/**
 * The key of the newest `manifest.json` under a report prefix
 * (`destination-prefix/source-bucket/config-ID/`), or null when there is none. Report folders are
 * named by their UTC start time, so the newest sorts last.
 *
 * @example
 * ```ts
 * await latestInventoryReport(store, "inv/raw/daily/"); // ".../2026-12-06T00-00Z/manifest.json"
 * ```
 */
export async function latestInventoryReport(
  store: ObjectStore,
  prefix: string,
): Promise<string | null> {
  let latest: string | null = null;
  const stamp = /\/\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z\/manifest\.json$/;
  for await (const o of store.list({ prefix })) {
    if (stamp.test("/" + o.key) && (latest === null || o.key > latest)) latest = o.key;
  }
  return latest;
}

/**
 * Reads and validates a report's `manifest.json`.
 *
 * @example
 * ```ts
 * const m = await readInventoryManifest(store, report);
 * console.log(m.fileFormat, m.files.length);
 * ```
 */
export async function readInventoryManifest(
  store: ObjectStore,
  report: string,
): Promise<InventoryManifest> {
  const text = new TextDecoder().decode(await store.getBytes(report));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SluiceError(
      "invalid_inventory",
      `${store.uriFor(report)}: expected JSON, found ${String(err)}`,
    );
  }
  const parsed = InventoryManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SluiceError(
      "invalid_inventory",
      `${store.uriFor(report)}: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/**
 * Parses one line of an inventory CSV: comma-separated, each field in double quotes (a quote
 * inside doubled), an empty unquoted field allowed.
 *
 * @example
 * ```ts
 * parseCsvLine('"b","a%20b.jpg","12"'); // ["b", "a%20b.jpg", "12"]
 * ```
 */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = "";
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else v += line[i++];
      }
      out.push(v);
    } else {
      const end = line.indexOf(",", i);
      out.push(line.slice(i, end === -1 ? line.length : end));
      i = end === -1 ? line.length : end;
    }
    if (line[i] === ",") i++;
    else break;
  }
  return out;
}

/** CSV keys are URL-encoded (form style: a space may arrive as `+`, a plus as `%2B`). */
function decodeCsvKey(raw: string): string {
  return decodeURIComponent(raw.replace(/\+/g, " "));
}

function bool(v: unknown): boolean {
  return v === true || v === "true";
}

function num(v: unknown): number | null {
  if (v === null || v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** ETags without the quotes S3 puts around them in headers. */
function etagOf(v: unknown): string | null {
  const s = str(v);
  return s === null ? null : s.replace(/^"(.*)"$/, "$1");
}

function str(v: unknown): string | null {
  return v === null || v === undefined || v === "" ? null : String(v);
}

async function* csvObjects(bytes: Uint8Array, schema: string): AsyncGenerator<InventoryObject> {
  const columns = schema.split(",").map((c) => c.trim());
  const at = (name: string) => columns.indexOf(name);
  const [iKey, iVer, iLatest, iDel, iSize, iEtag] = [
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "ETag",
  ].map(at);
  if (iKey < 0) {
    throw new SluiceError("invalid_inventory", `fileSchema ${schema}: expected a Key column`);
  }
  const text = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"))
    .pipeThrough(new TextDecoderStream());
  let rest = "";
  const row = (line: string): InventoryObject => {
    const f = parseCsvLine(line);
    return {
      key: decodeCsvKey(f[iKey] ?? ""),
      versionId: iVer < 0 ? null : str(f[iVer]),
      isLatest: iLatest < 0 ? true : bool(f[iLatest]),
      isDeleteMarker: iDel < 0 ? false : bool(f[iDel]),
      size: iSize < 0 ? null : num(f[iSize]),
      etag: iEtag < 0 ? null : etagOf(f[iEtag]),
    };
  };
  for await (const chunk of text) {
    rest += chunk;
    const lines = rest.split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") yield row(line.replace(/\r$/, ""));
  }
  if (rest.trim() !== "") yield row(rest.replace(/\r$/, ""));
}

async function* parquetObjects(bytes: Uint8Array): AsyncGenerator<InventoryObject> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const rows = await parquetReadObjects({ file: file as ArrayBuffer });
  for (const r of rows) {
    yield {
      key: String(r.key ?? ""),
      versionId: str(r.version_id),
      isLatest: r.is_latest === undefined || r.is_latest === null ? true : bool(r.is_latest),
      isDeleteMarker: bool(r.is_delete_marker),
      size: num(typeof r.size === "bigint" ? Number(r.size) : r.size),
      etag: etagOf(r.e_tag),
    };
  }
}

/**
 * The objects listed in one data file of a report.
 *
 * @example
 * ```ts
 * for await (const o of inventoryFileObjects(store, m, m.files[0].key)) console.log(o.key);
 * ```
 */
export async function* inventoryFileObjects(
  store: ObjectStore,
  manifest: InventoryManifest,
  fileKey: string,
): AsyncGenerator<InventoryObject> {
  const bytes = await store.getBytes(fileKey);
  const format = manifest.fileFormat.toLowerCase();
  if (format === "csv") yield* csvObjects(bytes, manifest.fileSchema);
  else if (format === "parquet") yield* parquetObjects(bytes);
  else {
    throw new SluiceError(
      "invalid_inventory",
      `inventory fileFormat ${manifest.fileFormat}: expected CSV or Parquet`,
    );
  }
}

/**
 * Applies an inventory report: upserts every current, accepted object of the source (500 keys per
 * transaction, `UpsertBuffer`), one data file at a time, checkpointing after each.
 *
 * @example
 * ```ts
 * const s = await discoverInventory({ manifest, source, location, inventoryStore, report });
 * console.log(`${s.created} new from ${s.filesApplied} files`);
 * ```
 */
export async function discoverInventory(
  opts: InventoryDiscoverOptions,
): Promise<InventoryDiscoverSummary> {
  const { manifest, source, location, inventoryStore, report, log } = opts;
  const inv = await readInventoryManifest(inventoryStore, report);
  if (location.bucket !== null && inv.sourceBucket !== location.bucket) {
    throw new SluiceError(
      "invalid_inventory",
      `${inventoryStore.uriFor(report)}: expected a report of bucket ${location.bucket}, ` +
        `found one of ${inv.sourceBucket}`,
    );
  }
  const name = inventoryCheckpointName(inventoryStore.url, report);
  const raw = await manifest.getCheckpoint(name);
  const cp = raw === null
    ? { files: [], complete: false }
    : CheckpointSchema.catch({ files: [], complete: false }).parse(JSON.parse(raw));
  const done = new Set(cp.files);
  const summary: InventoryDiscoverSummary = {
    listed: 0,
    seen: 0,
    skipped: 0,
    created: 0,
    changed: 0,
    unchanged: 0,
    filesApplied: 0,
    filesAlreadyApplied: 0,
    complete: false,
  };
  const upserts = new UpsertBuffer(manifest);
  for (const f of inv.files) {
    if (done.has(f.key)) {
      summary.filesAlreadyApplied++;
      continue;
    }
    if (opts.signal?.aborted) break;
    if (opts.maxFiles !== undefined && summary.filesApplied >= opts.maxFiles) break;
    for await (const o of inventoryFileObjects(inventoryStore, inv, f.key)) {
      summary.listed++;
      const key = location.relativeKey(o.key);
      if (o.isDeleteMarker || !o.isLatest || key === null || !location.accepts(key)) {
        summary.skipped++;
        if (key !== null && !o.isDeleteMarker && o.isLatest && location.inPrefix(key)) {
          const { etag, versionId, size } = o;
          await recordUnsupportedSuffix({ manifest, source, key, etag, versionId, size });
        }
        continue;
      }
      summary.seen++;
      await upserts.add({
        sourceUri: sourceUriFor(source, key),
        sourceKey: key,
        etag: o.etag,
        versionId: o.versionId,
        size: o.size,
      }, (r) => {
        if (r.created) summary.created++;
        else if (r.changed) summary.changed++;
        else summary.unchanged++;
      });
    }
    await upserts.flush();
    done.add(f.key);
    summary.filesApplied++;
    await manifest.setCheckpoint(
      name,
      JSON.stringify({ files: [...done], complete: done.size === inv.files.length }),
    );
  }
  summary.complete = inv.files.every((f) => done.has(f.key));
  log?.info("inventory applied", { report, ...summary });
  return summary;
}
