/**
 * The SQS consumer for AWS S3 notifications: long polling, S3 `Records` bodies (event names
 * without the `s3:` prefix), SNS envelopes and EventBridge "Object Created"/"Object Deleted"
 * events, `s3:TestEvent` ignored. A message is deleted only after its events are recorded in
 * the manifest; when recording fails the message stays and SQS delivers it again after its
 * visibility timeout. A body that is not any notification shape can never succeed: it is
 * logged, counted (`sqs_messages_total{result="unrecognised"}`) and deleted; the reconciling
 * list still finds any object it may have announced.
 *
 * @example
 * ```ts
 * const sqs = new SQSClient(awsClientOptions({ endpoint }));
 * await runSqsConsumer({ client: sqs, queueUrl, waitTimeSeconds: 20, maxMessages: 10, record, signal });
 * ```
 * @module
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ApplySummary } from "./apply_events.ts";
import type { IngestMetrics } from "./metrics.ts";
import { EventFormatError, type ParsedNotification, parseSqsBody } from "./s3_event.ts";
import { sleep } from "../../common/timing/mod.ts";

export interface SqsConsumerOptions {
  client: SQSClient;
  queueUrl: string;
  /** Long-poll wait, 0–20 s. */
  waitTimeSeconds: number;
  /** Messages per receive, 1–10. */
  maxMessages: number;
  /** Visibility timeout per receive (default: the queue's). */
  visibilityTimeoutS?: number;
  /** Records parsed events durably; throws when it cannot. */
  record(parsed: ParsedNotification): Promise<ApplySummary>;
  metrics?: IngestMetrics;
  log?: Logger;
}

/** What one receive did. */
export interface ReceiveSummary {
  received: number;
  /** Deleted after their events were recorded (or because they can never be parsed). */
  deleted: number;
  /** Left on the queue because recording failed. */
  kept: number;
  /** Bodies that are not S3 notifications. */
  unrecognised: number;
  /** Events recorded. */
  events: number;
}

function isAbort(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === "AbortError" || name === "RequestAbortedError";
}

/**
 * Receives one batch (one long poll) and handles it. An abort during the poll returns an empty
 * summary.
 *
 * @example
 * ```ts
 * const s = await receiveOnce(opts);
 * console.log(`${s.deleted} of ${s.received} messages handled`);
 * ```
 */
export async function receiveOnce(
  opts: SqsConsumerOptions,
  signal?: AbortSignal,
): Promise<ReceiveSummary> {
  const { client, queueUrl, metrics, log } = opts;
  const summary: ReceiveSummary = { received: 0, deleted: 0, kept: 0, unrecognised: 0, events: 0 };
  let messages: Message[];
  try {
    const out = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: opts.maxMessages,
        WaitTimeSeconds: opts.waitTimeSeconds,
        ...(opts.visibilityTimeoutS !== undefined
          ? { VisibilityTimeout: opts.visibilityTimeoutS }
          : {}),
        MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
      }),
      signal ? { abortSignal: signal } : {},
    );
    messages = out.Messages ?? [];
  } catch (err) {
    if (signal?.aborted && isAbort(err)) return summary;
    throw err;
  }
  summary.received = messages.length;
  const done: Message[] = [];
  for (const m of messages) {
    let parsed: ParsedNotification;
    try {
      parsed = parseSqsBody(m.Body ?? "");
    } catch (err) {
      if (!(err instanceof EventFormatError)) throw err;
      summary.unrecognised++;
      metrics?.sqsMessages.inc({ result: "unrecognised" });
      log?.warn("SQS message is not an S3 notification: deleted", {
        messageId: m.MessageId,
        error: err.message,
        body: (m.Body ?? "").slice(0, 500),
      });
      done.push(m);
      continue;
    }
    for (const i of parsed.ignored) {
      metrics?.events.inc({ source: "sqs", result: i.reason });
      if (i.reason === "malformed") {
        log?.warn("SQS record ignored", { messageId: m.MessageId, detail: i.detail });
      }
    }
    try {
      if (parsed.events.length > 0) summary.events += (await opts.record(parsed)).accepted;
      done.push(m);
    } catch (err) {
      summary.kept++;
      metrics?.sqsMessages.inc({ result: "kept" });
      log?.error("SQS message not recorded; it will be delivered again", {
        messageId: m.MessageId,
        receiveCount: m.Attributes?.ApproximateReceiveCount,
        reason: reasonOf(err),
        error: messageOf(err),
      });
    }
  }
  if (done.length > 0) {
    const out = await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    const failed = out.Failed ?? [];
    for (const f of failed) {
      // Redelivery is harmless: recording is idempotent.
      log?.warn("SQS delete failed; the message will be delivered again", {
        messageId: done[Number(f.Id)]?.MessageId,
        code: f.Code,
        error: f.Message,
      });
    }
    const deleted = done.length - failed.length;
    summary.deleted += deleted;
    metrics?.sqsMessages.inc({ result: "deleted" }, deleted);
  }
  return summary;
}

/**
 * Receives and handles batches until `signal` aborts. Errors (network, throttling) are logged
 * and retried after `errorBackoffMs`.
 *
 * @example
 * ```ts
 * await runSqsConsumer({ ...opts, signal: shutdown.signal });
 * ```
 */
export async function runSqsConsumer(
  opts: SqsConsumerOptions & { signal: AbortSignal; errorBackoffMs?: number },
): Promise<void> {
  const backoff = opts.errorBackoffMs ?? 5_000;
  opts.log?.info("SQS consumer started", { queueUrl: opts.queueUrl });
  while (!opts.signal.aborted) {
    try {
      await receiveOnce(opts, opts.signal);
    } catch (err) {
      if (opts.signal.aborted) break;
      opts.log?.error("SQS receive failed", { reason: reasonOf(err), error: messageOf(err) });
      await sleep(backoff, opts.signal);
    }
  }
  opts.log?.info("SQS consumer stopped", { queueUrl: opts.queueUrl });
}
