/**
 * The AWS data stores of a Sluice deployment (aws and eks variants): raw, dataset, training and
 * models buckets (versioned, encrypted, public access blocked, TLS only, staging prefixes expired)
 * and the SQS queue (with a dead-letter queue) that the raw bucket notifies of object events.
 * @module
 */
import type { Construct } from "constructs";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket/index.js";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning/index.js";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js";
import { S3BucketOwnershipControls } from "@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js";
import { S3BucketLifecycleConfiguration } from "@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration/index.js";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy/index.js";
import { S3BucketNotification } from "@cdktf/provider-aws/lib/s3-bucket-notification/index.js";
import { SqsQueue } from "@cdktf/provider-aws/lib/sqs-queue/index.js";
import { SqsQueuePolicy } from "@cdktf/provider-aws/lib/sqs-queue-policy/index.js";
import type { StoreArns } from "./_iam.ts";
import { tlsOnlyBucketPolicy } from "./_iam.ts";

/** The buckets this module creates. */
export const BUCKETS = ["raw", "dataset", "training", "models", "artifacts"] as const;
/** One of {@link BUCKETS}. */
export type BucketRole = typeof BUCKETS[number];

/** Prefixes whose objects are scratch (expired after `stagingExpiryDays`). */
const STAGING_PREFIXES: Partial<Record<BucketRole, string[]>> = {
  dataset: ["staging/", "tmp/"],
  training: ["staging/", "tmp/"],
};

/** What the stacks wire to. */
export interface Storage {
  buckets: Record<BucketRole, S3Bucket>;
  queue: SqsQueue;
  deadLetter: SqsQueue;
  arns: StoreArns;
}

/**
 * Creates the buckets and the event queue under `prefix` (a Terraform expression is fine).
 *
 * @example
 * ```ts
 * const storage = addStorage(stack, "${var.name_prefix}");
 * storage.buckets.raw.bucket; // "${aws_s3_bucket.raw.bucket}"
 * ```
 */
export function addStorage(scope: Construct, prefix: string, stagingExpiryDays = 7): Storage {
  const buckets = {} as Record<BucketRole, S3Bucket>;
  for (const role of BUCKETS) {
    const b = new S3Bucket(scope, role, {
      bucket: `${prefix}-${role}`,
      tags: { "sluice:role": role },
    });
    buckets[role] = b;
    new S3BucketVersioningA(scope, `${role}_versioning`, {
      bucket: b.id,
      versioningConfiguration: { status: "Enabled" },
    });
    new S3BucketServerSideEncryptionConfigurationA(scope, `${role}_encryption`, {
      bucket: b.id,
      rule: [{
        applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" },
        bucketKeyEnabled: true,
      }],
    });
    new S3BucketPublicAccessBlock(scope, `${role}_public_access`, {
      bucket: b.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(scope, `${role}_ownership`, {
      bucket: b.id,
      rule: { objectOwnership: "BucketOwnerEnforced" },
    });
    new S3BucketPolicy(scope, `${role}_tls_only`, {
      bucket: b.id,
      policy: JSON.stringify(tlsOnlyBucketPolicy(b.arn)),
    });
    new S3BucketLifecycleConfiguration(scope, `${role}_lifecycle`, {
      bucket: b.id,
      rule: [
        {
          id: "abort-incomplete-uploads",
          status: "Enabled",
          filter: [{ prefix: "" }],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 1 }],
          noncurrentVersionExpiration: [{ noncurrentDays: 30 }],
        },
        ...(STAGING_PREFIXES[role] ?? []).map((p) => ({
          id: `expire-${p.replace(/\/$/, "")}`,
          status: "Enabled",
          filter: [{ prefix: p }],
          expiration: [{ days: stagingExpiryDays }],
        })),
      ],
    });
  }
  const deadLetter = new SqsQueue(scope, "events_dead_letter", {
    name: `${prefix}-raw-events-dlq`,
    sqsManagedSseEnabled: true,
    messageRetentionSeconds: 1_209_600,
  });
  const queue = new SqsQueue(scope, "events", {
    name: `${prefix}-raw-events`,
    sqsManagedSseEnabled: true,
    visibilityTimeoutSeconds: 300,
    messageRetentionSeconds: 345_600,
    receiveWaitTimeSeconds: 20,
    redrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetter.arn, maxReceiveCount: 5 }),
  });
  const queuePolicy = new SqsQueuePolicy(scope, "events_policy", {
    queueUrl: queue.url,
    policy: JSON.stringify({
      Version: "2012-10-17",
      Statement: [{
        Sid: "RawBucketEvents",
        Effect: "Allow",
        Principal: { Service: "s3.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: queue.arn,
        Condition: { ArnEquals: { "aws:SourceArn": buckets.raw.arn } },
      }],
    }),
  });
  new S3BucketNotification(scope, "raw_events", {
    bucket: buckets.raw.id,
    queue: [{
      queueArn: queue.arn,
      events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
    }],
    dependsOn: [queuePolicy],
  });
  return {
    buckets,
    queue,
    deadLetter,
    arns: {
      raw: buckets.raw.arn,
      dataset: buckets.dataset.arn,
      training: buckets.training.arn,
      models: buckets.models.arn,
      queue: queue.arn,
    },
  };
}
