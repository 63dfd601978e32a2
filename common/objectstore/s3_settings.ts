/**
 * The one S3 settings type: what the configuration's `s3` section holds, accepted unchanged by
 * the object store (`openObjectStore(url, { s3 })`), the SQS client of ingest
 * ({@link awsConnectionOf}) and the MLflow REST client's direct artifact access.
 *
 * @example
 * ```ts
 * const s3: S3Settings = S3SettingsSchema.parse({ endpoint: "http://127.0.0.1:9000", partSizeMb: 16 });
 * const store = await openObjectStore("s3://datasets", { s3 });
 * ```
 * @module
 */
import { z } from "zod";

/** Validates S3 settings at an edge that receives them from outside the configuration. */
export const S3SettingsSchema = z.object({
  endpoint: z.string().optional(),
  region: z.string().optional(),
  forcePathStyle: z.boolean().optional(),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  sessionToken: z.string().optional(),
  /** Multipart part size in bytes (the adapter's unit). */
  partSize: z.number().int().positive().optional(),
  /** Multipart part size in MiB (the configuration's unit); converted by `openObjectStore`. */
  partSizeMb: z.number().int().min(5).optional(),
  /** Attempts per S3 call on retryable errors. */
  maxAttempts: z.number().int().positive().optional(),
});

/** S3 connection settings; the configuration's `s3` section is one. */
export type S3Settings = z.input<typeof S3SettingsSchema>;

/** The credential and region part of {@link S3Settings}, as any AWS SDK client takes it. */
export interface AwsConnection {
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}

/**
 * The region and credentials of `s3` for another AWS client (SQS): credentials only when both
 * the key id and the secret are set, the session token only with them.
 *
 * @example
 * ```ts
 * awsConnectionOf({ region: "eu-west-1", accessKeyId: "AK", secretAccessKey: "s" });
 * // { region: "eu-west-1", accessKeyId: "AK", secretAccessKey: "s" }
 * ```
 */
export function awsConnectionOf(s3: S3Settings): AwsConnection {
  return {
    ...(s3.region !== undefined ? { region: s3.region } : {}),
    ...(s3.accessKeyId && s3.secretAccessKey
      ? {
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        ...(s3.sessionToken ? { sessionToken: s3.sessionToken } : {}),
      }
      : {}),
  };
}
