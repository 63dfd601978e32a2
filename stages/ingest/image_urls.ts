/**
 * The `data.image` URL a Label Studio task carries: something the Label Studio server (or the
 * annotator's browser) can actually load. `file:///…` URIs, which a file-backed store would give,
 * cannot be loaded by Label Studio. The mode is the setting `ingest.labelStudioImageUrl`:
 *
 * - `s3`: `s3://bucket/key`, for projects with S3 cloud storage connected (Label Studio resolves
 *   and presigns these itself);
 * - `presigned`: a presigned HTTPS GET URL valid for `ingest.imageUrlExpirySeconds` (SigV4 caps
 *   it at 7 days), signed with the `s3` section's endpoint, region and credentials;
 * - `prefix`: `<ingest.imageUrlPrefix>/<key>` (an image server or CDN in front of the store);
 * - `local-files`: `/data/local-files/?d=<path>`, Label Studio's local-files serving, `path`
 *   relative to `ingest.localFilesRoot` (Label Studio's `LOCAL_FILES_DOCUMENT_ROOT`);
 * - `auto` (default): `s3` for an S3 store, `prefix` when a prefix is set, else `local-files`
 *   for a file store.
 *
 * @example
 * ```ts
 * const url = await imageUrlResolver({ mode: "prefix", prefix: "https://cdn.example/img", stores })
 *   ("s3://raw/cats/a.jpg"); // "https://cdn.example/img/cats/a.jpg"
 * ```
 * @module
 */
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";

/** The URL modes. */
export const IMAGE_URL_MODES = ["auto", "s3", "presigned", "prefix", "local-files"] as const;
export type ImageUrlMode = typeof IMAGE_URL_MODES[number];

/** Resolver options (validated with zod). */
export const ImageUrlOptionsSchema = z.strictObject({
  mode: z.enum(IMAGE_URL_MODES).default("auto"),
  /** Base URL for `prefix`. */
  prefix: z.url({ protocol: /^https?$/ }).optional(),
  /** Presigned URL lifetime, seconds (1 s … 7 days). */
  expirySeconds: z.int().min(1).max(604_800).default(604_800),
  /** `local-files`: the directory Label Studio serves from (default `/`). */
  localFilesRoot: z.string().default("/"),
  /** Store URLs, to turn a URI into its key (`prefix`) — the longest match wins. */
  stores: z.array(z.string()).default([]),
  /** For `presigned`: the `s3` config section. */
  s3: z.looseObject({
    endpoint: z.string().optional(),
    region: z.string().optional(),
    forcePathStyle: z.boolean().optional(),
    accessKeyId: z.string().optional(),
    secretAccessKey: z.string().optional(),
    sessionToken: z.string().optional(),
  }).optional(),
});
export type ImageUrlOptions = z.input<typeof ImageUrlOptionsSchema>;

/** A URI could not be turned into a URL of the chosen mode. */
export class ImageUrlError extends SluiceError {
  constructor(message: string) {
    super("bad_image_url", message);
    this.name = "ImageUrlError";
  }
}

function s3Parts(uri: string): { bucket: string; key: string } | null {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1], key: m[2] } : null;
}

/**
 * Builds the resolver. Unsupported combinations (a `file://` URI in `s3` or `presigned` mode,
 * `prefix` without a prefix) throw {@link ImageUrlError} naming the URI and the mode.
 *
 * @example
 * ```ts
 * const url = imageUrlResolver({ mode: "s3" });
 * await url("s3://raw/a.jpg"); // "s3://raw/a.jpg"
 * ```
 */
export function imageUrlResolver(options: ImageUrlOptions): (uri: string) => Promise<string> {
  const opts = ImageUrlOptionsSchema.parse(options);
  let client: S3Client | null = null;
  const s3Client = () => {
    if (client) return client;
    const s3 = opts.s3 ?? {};
    client = new S3Client({
      region: s3.region ?? "us-east-1",
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      forcePathStyle: s3.forcePathStyle ?? !!s3.endpoint,
      ...(s3.accessKeyId && s3.secretAccessKey
        ? {
          credentials: {
            accessKeyId: s3.accessKeyId,
            secretAccessKey: s3.secretAccessKey,
            ...(s3.sessionToken ? { sessionToken: s3.sessionToken } : {}),
          },
        }
        : {}),
    });
    return client;
  };
  const keyOf = (uri: string): string => {
    const store =
      opts.stores.map((s) => s.replace(/\/+$/, "")).filter((s) => uri.startsWith(s + "/")).sort((
        a,
        b,
      ) => b.length - a.length)[0];
    if (store) return uri.slice(store.length + 1);
    const s3 = s3Parts(uri);
    if (s3) return s3.key;
    throw new ImageUrlError(`image URL: ${uri} is in none of the stores ${opts.stores.join(", ")}`);
  };
  return async (uri: string) => {
    const isS3 = uri.startsWith("s3://");
    const mode = opts.mode === "auto"
      ? isS3 ? "s3" : opts.prefix ? "prefix" : "local-files"
      : opts.mode;
    if (mode === "s3" || mode === "presigned") {
      const parts = s3Parts(uri);
      if (!parts) {
        throw new ImageUrlError(
          `image URL mode ${mode}: expected an s3:// object, found ${uri} (use prefix or local-files for a file store)`,
        );
      }
      if (mode === "s3") return uri;
      return await getSignedUrl(
        s3Client(),
        new GetObjectCommand({ Bucket: parts.bucket, Key: parts.key }),
        { expiresIn: opts.expirySeconds },
      );
    }
    if (mode === "prefix") {
      if (!opts.prefix) {
        throw new ImageUrlError(
          "image URL mode prefix: expected ingest.imageUrlPrefix, found none",
        );
      }
      const key = keyOf(uri).split("/").map(encodeURIComponent).join("/");
      return `${opts.prefix.replace(/\/+$/, "")}/${key}`;
    }
    if (!uri.startsWith("file://")) {
      throw new ImageUrlError(
        `image URL mode local-files: expected a file:// object, found ${uri}`,
      );
    }
    const path = relative(opts.localFilesRoot, fileURLToPath(uri));
    if (path.startsWith("..")) {
      throw new ImageUrlError(
        `image URL mode local-files: ${uri} is outside ingest.localFilesRoot ${opts.localFilesRoot}`,
      );
    }
    return `/data/local-files/?d=${encodeURIComponent(path).replace(/%2F/g, "/")}`;
  };
}
