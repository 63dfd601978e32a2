/**
 * IAM policy documents of the stages, least privilege: each stage gets the S3 actions it uses on
 * the buckets it uses (object actions on `<bucket>/*`, listing on the bucket), ingest the SQS
 * actions on the one queue. No statement has a wildcard action on a wildcard resource.
 * @module
 */

/** A stage's data stores, as Terraform references (`${aws_s3_bucket.raw.arn}`). */
export interface StoreArns {
  raw: string;
  dataset: string;
  training: string;
  models: string;
  queue: string;
}

/** One IAM policy statement. */
export interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  /** Absent in trust policies only. */
  Resource?: string | string[];
  Principal?: unknown;
  Condition?: unknown;
}

/** An IAM policy document. */
export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

const READ = ["s3:GetObject", "s3:GetObjectVersion"];
const WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"];

function bucket(sid: string, arn: string, objectActions: string[]): Statement[] {
  return [
    { Sid: `${sid}List`, Effect: "Allow", Action: ["s3:ListBucket"], Resource: arn },
    { Sid: `${sid}Objects`, Effect: "Allow", Action: objectActions, Resource: `${arn}/*` },
  ];
}

/**
 * The policy of one stage.
 *
 * @example
 * ```ts
 * stagePolicy("normalize", arns).Statement.map((s) => s.Sid); // ["DatasetList", "DatasetObjects"]
 * ```
 */
export function stagePolicy(
  stage: "ingest" | "normalize" | "train" | "infer",
  a: StoreArns,
): PolicyDocument {
  const statements: Record<typeof stage, Statement[]> = {
    ingest: [
      ...bucket("Raw", a.raw, READ),
      ...bucket("Dataset", a.dataset, [...READ, ...WRITE]),
      {
        Sid: "Events",
        Effect: "Allow",
        Action: [
          "sqs:ReceiveMessage",
          "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
          "sqs:GetQueueAttributes",
          "sqs:GetQueueUrl",
        ],
        Resource: a.queue,
      },
    ],
    normalize: bucket("Dataset", a.dataset, [...READ, ...WRITE]),
    train: [
      ...bucket("Dataset", a.dataset, READ),
      ...bucket("Training", a.training, [...READ, ...WRITE]),
      ...bucket("Models", a.models, [...READ, ...WRITE]),
    ],
    infer: [
      ...bucket("Dataset", a.dataset, [...READ, ...WRITE]),
      ...bucket("Models", a.models, READ),
    ],
  };
  return { Version: "2012-10-17", Statement: statements[stage] };
}

/**
 * Read access to one release's artifacts (`<bucket>/<prefix>*`) for hosts that install them.
 *
 * @example
 * ```ts
 * artifactsPolicy("${aws_s3_bucket.artifacts.arn}", "sluice/").Statement.length; // 2
 * ```
 */
export function artifactsPolicy(bucketArn: string, prefix: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ArtifactsList",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: bucketArn,
        Condition: { StringLike: { "s3:prefix": [`${prefix}*`] } },
      },
      {
        Sid: "ArtifactsRead",
        Effect: "Allow",
        Action: ["s3:GetObject"],
        Resource: `${bucketArn}/${prefix}*`,
      },
    ],
  };
}

/** Lets `service` (e.g. ec2.amazonaws.com) assume a role. */
export function serviceTrust(service: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  };
}

/** Denies any request to the bucket that is not over TLS. */
export function tlsOnlyBucketPolicy(bucketArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: [bucketArn, `${bucketArn}/*`],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    }],
  };
}
