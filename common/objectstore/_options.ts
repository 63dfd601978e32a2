/**
 * Validation of per-call options shared by every adapter, so that a put that one adapter
 * accepts is never refused (or silently mangled) by another: S3 sends metadata as HTTP
 * headers, which carry printable ASCII only.
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import type { ListOptions, PutOptions } from "./contract.ts";

/** S3's limit on user metadata (keys + values, UTF-8 bytes). */
export const MAX_METADATA_BYTES = 2048;

const printable = /^[\x20-\x7e]*$/;

const putSchema = z.strictObject({
  contentType: z.string().min(1).max(256).regex(printable, "expected printable ASCII")
    .optional(),
  metadata: z.record(
    z.string().regex(
      /^[a-z0-9][a-z0-9._-]{0,127}$/,
      "expected a lower-case ASCII name ([a-z0-9._-], starting with a letter or digit)",
    ),
    z.string().regex(printable, "expected printable ASCII"),
  ).optional(),
});

const listSchema = z.strictObject({
  prefix: z.string().optional(),
  startAfter: z.string().optional(),
  pageSize: z.number().int().min(1).max(1000).optional(),
});

function describe(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join(".") || "(options)"}: ${i.message}`).join("; ");
}

/**
 * Checks put options: content type and metadata are printable ASCII, metadata names
 * lower-case, at most 2 KiB of metadata in all. Throws SluiceError("invalid_options").
 *
 * @example
 * ```ts
 * parsePutOptions({ contentType: "image/jpeg", metadata: { source: "cam-1" } });
 * ```
 */
export function parsePutOptions(opts: PutOptions | undefined): PutOptions {
  const r = putSchema.safeParse(opts ?? {});
  if (!r.success) throw new SluiceError("invalid_options", `put options: ${describe(r.error)}`);
  const metadata = r.data.metadata;
  if (metadata) {
    let bytes = 0;
    for (const [k, v] of Object.entries(metadata)) bytes += k.length + v.length;
    if (bytes > MAX_METADATA_BYTES) {
      throw new SluiceError(
        "invalid_options",
        `put options: expected at most ${MAX_METADATA_BYTES} bytes of metadata, found ${bytes}`,
      );
    }
  }
  return r.data;
}

/**
 * Checks list options (pageSize 1..1000, like S3 MaxKeys). Throws SluiceError("invalid_options").
 *
 * @example
 * ```ts
 * parseListOptions({ prefix: "images/", pageSize: 100 });
 * ```
 */
export function parseListOptions(opts: ListOptions | undefined): ListOptions {
  const r = listSchema.safeParse(opts ?? {});
  if (!r.success) throw new SluiceError("invalid_options", `list options: ${describe(r.error)}`);
  return r.data;
}
