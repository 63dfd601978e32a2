/**
 * `POST /events`: the webhook RustFS and MinIO send bucket notifications to. The body is the
 * MinIO/RustFS notification (`EventName`, `Key`, `Records[]`; RustFS sends one record per POST).
 * With a token configured the request must carry `Authorization: Bearer <token>` (RustFS's
 * `auth_token`). The answer is 200 only once every accepted event is recorded in the manifest;
 * a manifest failure answers 503 so the notifier delivers again (delivery is at-least-once and
 * recording is idempotent). RustFS probes the target with `HEAD /` first: the stage handler's
 * built-in `GET /` answers it with 200.
 *
 * @example
 * ```ts
 * const handler = createStageHandler({
 *   stage: "ingest", metrics,
 *   routes: { "POST /events": createWebhookRoute({ token, maxBodyBytes, record }) },
 * });
 * ```
 * @module
 */
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import type { RouteHandler } from "../../common/http/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import { jsonReply, sameToken } from "./_webhook_reply.ts";
import type { ApplySummary } from "./apply_events.ts";
import type { IngestMetrics } from "./metrics.ts";
import { EventFormatError, type ParsedNotification, parseS3Notification } from "./s3_event.ts";

export interface WebhookOptions {
  /** Bearer token the request must carry; unset accepts any request (see `publicBind`). */
  token?: string;
  /**
   * The server binds an address other hosts reach: without a token every request is then
   * refused (403), so an open bind never means an open webhook.
   */
  publicBind?: boolean;
  /** Largest body accepted (413 beyond). */
  maxBodyBytes: number;
  /** Records parsed events durably; throws when it cannot. */
  record(parsed: ParsedNotification): Promise<ApplySummary>;
  metrics?: IngestMetrics;
  log?: Logger;
}

/** Reads at most `max` bytes of a body; null when it is longer. */
async function readBody(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await req.body?.cancel();
    return null;
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > max) return null;
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Builds the `POST /events` route.
 *
 * @example
 * ```ts
 * const route = createWebhookRoute({ token: "s3cret", maxBodyBytes: 1 << 20, record });
 * const res = await route(new Request("http://x/events", { method: "POST", body }));
 * ```
 */
export function createWebhookRoute(opts: WebhookOptions): RouteHandler {
  const { metrics, log } = opts;
  return async (req) => {
    if (opts.token === undefined && opts.publicBind) {
      await req.body?.cancel();
      metrics?.events.inc({ source: "webhook", result: "unauthorized" });
      return jsonReply(403, {
        error: "no_webhook_token",
        message: "the HTTP server binds a non-loopback address: expected a webhook token to be " +
          "configured (SLUICE_INGEST_WEBHOOK_TOKEN), found none; events are refused",
      });
    }
    if (opts.token !== undefined) {
      const auth = req.headers.get("authorization") ?? "";
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      if (!m || !sameToken(m[1], opts.token)) {
        await req.body?.cancel();
        metrics?.events.inc({ source: "webhook", result: "unauthorized" });
        log?.warn("webhook request refused: missing or wrong bearer token", {
          hasAuthorization: auth !== "",
        });
        return jsonReply(401, {
          error: "unauthorized",
          message: "expected Authorization: Bearer <token> with the configured webhook token",
        }, { "www-authenticate": 'Bearer realm="sluice-ingest"' });
      }
    }
    const body = await readBody(req, opts.maxBodyBytes);
    if (body === null) {
      metrics?.events.inc({ source: "webhook", result: "too_large" });
      return jsonReply(413, {
        error: "too_large",
        message: `expected a notification body of at most ${opts.maxBodyBytes} bytes`,
      });
    }
    let parsed: ParsedNotification;
    try {
      let doc: unknown;
      try {
        doc = JSON.parse(new TextDecoder().decode(body));
      } catch (err) {
        throw new EventFormatError("expected a JSON body, found unparseable text", { cause: err });
      }
      parsed = parseS3Notification(doc);
    } catch (err) {
      metrics?.events.inc({ source: "webhook", result: "bad_event" });
      log?.warn("webhook body refused", { reason: reasonOf(err), error: messageOf(err) });
      return jsonReply(400, { error: reasonOf(err), message: messageOf(err) });
    }
    for (const i of parsed.ignored) {
      metrics?.events.inc({ source: "webhook", result: i.reason });
      if (i.reason === "malformed") log?.warn("webhook record ignored", { detail: i.detail });
    }
    let summary: ApplySummary;
    try {
      summary = parsed.events.length > 0 ? await opts.record(parsed) : { accepted: 0, results: {} };
    } catch (err) {
      log?.error("webhook events could not be recorded; the notifier will retry", {
        reason: reasonOf(err),
        error: messageOf(err),
      });
      return jsonReply(503, { error: reasonOf(err), message: messageOf(err) }, {
        "retry-after": "5",
      });
    }
    return jsonReply(200, {
      accepted: summary.accepted,
      results: summary.results,
      ignored: parsed.ignored.length,
    });
  };
}
