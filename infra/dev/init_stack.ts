/**
 * One-shot set-up of the dev stack (the compose `init` service): waits for the S3 endpoint,
 * creates the buckets, and puts the bucket notification rule that sends the raw bucket's object
 * events to the ingest webhook target (RustFS: `arn:rustfs:sqs:<region>:<target id>:webhook`).
 * Idempotent: existing buckets are kept, the rule is replaced by the same rule.
 *
 * Settings come from the environment: `SLUICE_S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `SLUICE_DEV_BUCKETS` (comma list),
 * `SLUICE_DEV_NOTIFY_BUCKET`, `SLUICE_DEV_NOTIFY_ARN`.
 *
 * @example
 * ```ts
 * const done = await initStack(optionsFromEnv(Deno.env.toObject()));
 * done.created; // ["sluice-raw", "sluice-dataset", "sluice-mlflow"] on the first run, [] after
 * ```
 * @module
 */
import {
  CreateBucketCommand,
  type Event,
  GetBucketNotificationConfigurationCommand,
  HeadBucketCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { z } from "zod";

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** What the init service does, validated at the edge. */
export const InitOptionsSchema = z.object({
  endpoint: z.url({ protocol: /^https?$/ }),
  region: z.string().min(1).default("us-east-1"),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  buckets: z.array(z.string().regex(BUCKET, { error: "expected an S3 bucket name" })).min(1),
  notify: z.object({
    bucket: z.string().regex(BUCKET, { error: "expected an S3 bucket name" }),
    queueArn: z.string().regex(/^arn:[a-z0-9-]+:sqs:[^:]*:[^:]+:[^:]+$/, {
      error: "expected a queue ARN, e.g. arn:rustfs:sqs:us-east-1:ingest:webhook",
    }),
    events: z.array(z.string().regex(/^s3:[A-Za-z]+:[A-Za-z*]+$/)).min(1).default([
      "s3:ObjectCreated:*",
      "s3:ObjectRemoved:*",
    ]),
  }).optional(),
  /** How long to wait for the endpoint to answer. */
  waitMs: z.int().min(0).default(120_000),
});
export type InitOptions = z.input<typeof InitOptionsSchema>;

/** What one run did. */
export interface InitResult {
  created: string[];
  existing: string[];
  /** The queue ARNs of the notification rule read back from the server. */
  notification?: string[];
}

/** Options from environment variables (see the module doc). */
export function optionsFromEnv(env: Record<string, string | undefined>): InitOptions {
  const notifyBucket = env.SLUICE_DEV_NOTIFY_BUCKET;
  return {
    endpoint: env.SLUICE_S3_ENDPOINT ?? "",
    region: env.AWS_REGION ?? "us-east-1",
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? "",
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? "",
    buckets: (env.SLUICE_DEV_BUCKETS ?? "").split(",").map((b) => b.trim()).filter(Boolean),
    notify: notifyBucket
      ? { bucket: notifyBucket, queueArn: env.SLUICE_DEV_NOTIFY_ARN ?? "" }
      : undefined,
  };
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : "";
}

async function bucketExists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if (errorName(err) === "NotFound" || errorName(err) === "NoSuchBucket") return false;
    throw err;
  }
}

/**
 * Creates the buckets and the notification rule; see the module doc.
 *
 * @example
 * ```ts
 * await initStack({ endpoint: "http://127.0.0.1:9000", accessKeyId: "k", secretAccessKey: "s", buckets: ["raw"] });
 * ```
 */
export async function initStack(
  input: InitOptions,
  log: (line: string) => void = console.log,
): Promise<InitResult> {
  const parsed = InitOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`init_stack: invalid settings: ${issues}`);
  }
  const o = parsed.data;
  const s3 = new S3Client({
    endpoint: o.endpoint,
    region: o.region,
    forcePathStyle: true,
    credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  try {
    const until = Date.now() + o.waitMs;
    for (let attempt = 1;; attempt++) {
      try {
        await s3.send(new HeadBucketCommand({ Bucket: o.buckets[0] }));
        break;
      } catch (err) {
        const name = errorName(err);
        if (name === "NotFound" || name === "NoSuchBucket" || name === "Forbidden") break;
        if (Date.now() >= until) {
          throw new Error(`init_stack: ${o.endpoint} did not answer within ${o.waitMs} ms: ${err}`);
        }
        if (attempt === 1) log(`waiting for ${o.endpoint}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const result: InitResult = { created: [], existing: [] };
    for (const bucket of o.buckets) {
      if (await bucketExists(s3, bucket)) {
        result.existing.push(bucket);
        log(`bucket ${bucket} exists`);
        continue;
      }
      try {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      } catch (err) {
        // Another init racing this one created it first: fine.
        if (errorName(err) !== "BucketAlreadyOwnedByYou") throw err;
      }
      result.created.push(bucket);
      log(`created bucket ${bucket}`);
    }
    if (o.notify) {
      await s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: o.notify.bucket,
          NotificationConfiguration: {
            QueueConfigurations: [{
              Id: "sluice-ingest",
              QueueArn: o.notify.queueArn,
              Events: o.notify.events as Event[],
            }],
          },
        }),
      );
      const back = await s3.send(
        new GetBucketNotificationConfigurationCommand({ Bucket: o.notify.bucket }),
      );
      result.notification = (back.QueueConfigurations ?? []).map((q) => q.QueueArn ?? "");
      if (!result.notification.includes(o.notify.queueArn)) {
        throw new Error(
          `init_stack: notification rule on ${o.notify.bucket}: expected ${o.notify.queueArn}, ` +
            `found ${JSON.stringify(result.notification)}`,
        );
      }
      log(
        `bucket ${o.notify.bucket} notifies ${o.notify.queueArn} (${o.notify.events.join(", ")})`,
      );
    }
    return result;
  } finally {
    s3.destroy();
  }
}

if (import.meta.main) {
  try {
    await initStack(optionsFromEnv(Deno.env.toObject()));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
