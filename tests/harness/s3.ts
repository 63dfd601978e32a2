/**
 * An S3 + SQS server for tests: the `fauxqs` emulator running in this process, bound to
 * 127.0.0.1 on a free port, or an external server named by `SLUICE_TEST_S3_ENDPOINT`.
 * The emulator's listings are corrected to S3's UTF-8 byte order (see `_fauxqs_order.ts`);
 * queue URLs it returns point at its loopback origin.
 *
 * External server settings (all optional except the endpoint):
 * `SLUICE_TEST_S3_ENDPOINT`, `SLUICE_TEST_S3_REGION` (default `us-east-1`),
 * `SLUICE_TEST_S3_ACCESS_KEY_ID`, `SLUICE_TEST_S3_SECRET_ACCESS_KEY` (default: the `AWS_*`
 * variables), `SLUICE_TEST_SQS_ENDPOINT` (no SQS without it).
 *
 * @example
 * ```ts
 * const s3 = await startS3Server();
 * try {
 *   await s3.createBucket("sluice-test");
 *   const queueUrl = await s3.createQueue("events");
 * } finally {
 *   await s3.stop();
 * }
 * ```
 * @module
 */
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, DeleteQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { byteOrderedS3Store } from "./_fauxqs_order.ts";

/** A running S3 (and usually SQS) endpoint plus what a client needs to reach it. */
export interface S3TestServer {
  /** `http://127.0.0.1:<port>` for the emulator. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** True when the server is the in-process emulator (its state vanishes on `stop`). */
  emulated: boolean;
  /** The SQS endpoint, when the server has one (the emulator serves both on one port). */
  sqsEndpoint?: string;
  /** Creates a bucket; an existing bucket owned by us is fine. */
  createBucket(name: string): Promise<void>;
  /** Creates an SQS queue and returns its URL, reachable at `sqsEndpoint`. */
  createQueue(name: string): Promise<string>;
  /** Stops the emulator (or, for an external server, deletes what this harness created). */
  stop(): Promise<void>;
}

/** The emulator could not start; `startS3Server` callers may skip on it unless `CI=true`. */
export class S3HarnessUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "S3HarnessUnavailableError";
  }
}

const DEFAULT_REGION = "us-east-1";

/**
 * Starts the S3 + SQS emulator on 127.0.0.1 (or connects to `SLUICE_TEST_S3_ENDPOINT`).
 * Throws `S3HarnessUnavailableError` when the emulator cannot be loaded or bound.
 *
 * @example
 * ```ts
 * const s3 = await startS3Server();
 * await s3.createBucket("b1");
 * await s3.stop();
 * ```
 */
export async function startS3Server(): Promise<S3TestServer> {
  const external = Deno.env.get("SLUICE_TEST_S3_ENDPOINT");
  if (external) return connectExternal(external);
  return await startEmulator();
}

/** Whether S3 tests can run here: `{ ok: false, reason }` means skip; with `CI=true` it throws. */
export type S3Availability = { ok: true } | { ok: false; reason: string };

/**
 * Probes the harness once (start + stop) so test files can register S3 tests with `ignore`.
 * With `CI=true` an unavailable server is an error, never a silent skip.
 *
 * @example
 * ```ts
 * const s3 = await s3Availability();
 * Deno.test({ name: "s3 thing", ignore: !s3.ok, fn: async () => {} });
 * ```
 */
export async function s3Availability(): Promise<S3Availability> {
  try {
    const server = await startS3Server();
    await server.stop();
    return { ok: true };
  } catch (err) {
    if (Deno.env.get("CI") === "true") throw err;
    const reason = `S3 emulator unavailable, S3 tests skipped: ${
      err instanceof Error ? err.message : String(err)
    } (set SLUICE_TEST_S3_ENDPOINT to use an external server; CI=true makes this fatal)`;
    console.warn(reason);
    return { ok: false, reason };
  }
}

interface FastifyLike {
  listen(opts: { host: string; port: number }): Promise<string>;
  close(): Promise<unknown>;
}

async function startEmulator(): Promise<S3TestServer> {
  let app: FastifyLike;
  try {
    // Dynamic so that a missing or broken package becomes a skip, not a module load failure.
    const fauxqs = await import("fauxqs");
    const s3Store = await byteOrderedS3Store();
    // startFauxqs() would listen on 0.0.0.0; buildApp() lets us choose loopback. Stores left
    // out are created by buildApp itself.
    app = fauxqs.buildApp({
      logger: false,
      stores: { s3Store } as never,
    }) as unknown as FastifyLike;
  } catch (err) {
    throw new S3HarnessUnavailableError(`cannot load fauxqs: ${String(err)}`, { cause: err });
  }
  let address: string;
  try {
    address = await app.listen({ host: "127.0.0.1", port: 0 });
  } catch (err) {
    await app.close().catch(() => {});
    throw new S3HarnessUnavailableError(`cannot bind fauxqs to 127.0.0.1: ${String(err)}`, {
      cause: err,
    });
  }
  const endpoint = new URL(address).origin;
  const creds = { accessKeyId: "sluice-test", secretAccessKey: "sluice-test-secret" };
  const clients = makeClients(endpoint, endpoint, DEFAULT_REGION, creds);
  return {
    endpoint,
    region: DEFAULT_REGION,
    ...creds,
    emulated: true,
    sqsEndpoint: endpoint,
    createBucket: (name) => createBucket(clients.s3, name),
    async createQueue(name) {
      const url = await createQueue(clients.sqs, name);
      // fauxqs names queues `http://sqs.<region>.localhost:<port>/...`, a host that does not
      // resolve here; it looks queues up by name, so its own loopback origin serves them.
      const u = new URL(url);
      return `${endpoint}${u.pathname}`;
    },
    async stop() {
      clients.destroy();
      await app.close();
    },
  };
}

function connectExternal(endpoint: string): S3TestServer {
  const region = Deno.env.get("SLUICE_TEST_S3_REGION") ?? DEFAULT_REGION;
  const accessKeyId = Deno.env.get("SLUICE_TEST_S3_ACCESS_KEY_ID") ??
    Deno.env.get("AWS_ACCESS_KEY_ID");
  const secretAccessKey = Deno.env.get("SLUICE_TEST_S3_SECRET_ACCESS_KEY") ??
    Deno.env.get("AWS_SECRET_ACCESS_KEY");
  if (!accessKeyId || !secretAccessKey) {
    throw new S3HarnessUnavailableError(
      "SLUICE_TEST_S3_ENDPOINT is set but no credentials were found: expected " +
        "SLUICE_TEST_S3_ACCESS_KEY_ID and SLUICE_TEST_S3_SECRET_ACCESS_KEY (or AWS_*)",
    );
  }
  const sqsEndpoint = Deno.env.get("SLUICE_TEST_SQS_ENDPOINT") || undefined;
  const creds = { accessKeyId, secretAccessKey };
  const clients = makeClients(endpoint, sqsEndpoint, region, creds);
  const buckets: string[] = [];
  const queues: string[] = [];
  return {
    endpoint,
    region,
    ...creds,
    emulated: false,
    sqsEndpoint,
    async createBucket(name) {
      await createBucket(clients.s3, name);
      buckets.push(name);
    },
    async createQueue(name) {
      if (!clients.sqs) {
        throw new Error("no SQS endpoint: set SLUICE_TEST_SQS_ENDPOINT to test SQS externally");
      }
      const url = await createQueue(clients.sqs, name);
      queues.push(url);
      return url;
    },
    async stop() {
      try {
        // Best effort: a test that left objects behind keeps its bucket, which is visible.
        for (const b of buckets) {
          await clients.s3.send(new DeleteBucketCommand({ Bucket: b })).catch(() => {});
        }
        for (const q of queues) {
          await clients.sqs?.send(new DeleteQueueCommand({ QueueUrl: q })).catch(() => {});
        }
      } finally {
        clients.destroy();
      }
    },
  };
}

interface Clients {
  s3: S3Client;
  sqs?: SQSClient;
  destroy(): void;
}

function makeClients(
  endpoint: string,
  sqsEndpoint: string | undefined,
  region: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): Clients {
  const s3 = new S3Client({
    endpoint,
    region,
    credentials,
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const sqs = sqsEndpoint
    ? new SQSClient({ endpoint: sqsEndpoint, region, credentials })
    : undefined;
  return {
    s3,
    sqs,
    destroy() {
      s3.destroy();
      sqs?.destroy();
    },
  };
}

async function createBucket(s3: S3Client, name: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    const n = err instanceof Error ? err.name : "";
    if (n !== "BucketAlreadyOwnedByYou") throw err;
  }
}

async function createQueue(sqs: SQSClient | undefined, name: string): Promise<string> {
  if (!sqs) throw new Error("this S3 test server has no SQS endpoint");
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  if (!out.QueueUrl) throw new Error(`CreateQueue ${name}: expected a QueueUrl, found none`);
  return out.QueueUrl;
}
