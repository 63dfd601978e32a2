/**
 * `POST /labelstudio/webhook`: reviewed annotations come back from Label Studio by themselves.
 * Label Studio's webhook payloads (labelstud.io/guide/webhook_reference): `ANNOTATION_CREATED`
 * and `ANNOTATION_UPDATED` carry `{ action, task, annotation, project }`; `ANNOTATIONS_CREATED`
 * carries `annotation` as a list; `ANNOTATIONS_DELETED` carries `annotations: [{ id }]`;
 * `TASKS_DELETED` carries `tasks: [{ id }]`. Other actions are answered 200 and ignored.
 *
 * Authentication: the request must carry `Authorization: Bearer <token>` (set it as a custom
 * header of the Label Studio webhook); without it, 401. Recording is idempotent and out-of-order
 * safe (the manifest orders updates of one annotation by `updated_at`, and deletion is final),
 * so redeliveries and races do no harm. A manifest failure answers 503.
 *
 * @example
 * ```ts
 * routes["POST /labelstudio/webhook"] = createLabelStudioWebhookRoute({ token, manifest, maxBodyBytes });
 * ```
 * @module
 */
import { z } from "zod";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import type { RouteHandler } from "../../common/http/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import { jsonReply, sameToken } from "./_webhook_reply.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import {
  LabelStudioAnnotationSchema,
  LabelStudioTaskSchema,
  recordLabelStudioReview,
  type ReviewRecordResult,
} from "../../common/review/labelstudio_review.ts";

export interface LabelStudioWebhookOptions {
  /** Bearer token the request must carry (required: reviews are not taken from anyone). */
  token: string;
  manifest: ManifestStore;
  /** Largest body accepted (413 beyond). */
  maxBodyBytes: number;
  /** The `data` key holding the image URL (default `image`). */
  dataKey?: string;
  log?: Logger;
  /** Called with every outcome (metrics). */
  onResult?: (r: ReviewRecordResult | { outcome: "deleted_ids"; count: number }) => void;
}

const Ref = z.looseObject({ id: z.union([z.number(), z.string().min(1)]).transform(String) });
const PayloadSchema = z.discriminatedUnion("action", [
  z.looseObject({
    action: z.enum(["ANNOTATION_CREATED", "ANNOTATION_UPDATED"]),
    task: LabelStudioTaskSchema,
    annotation: LabelStudioAnnotationSchema,
  }),
  z.looseObject({
    action: z.literal("ANNOTATIONS_CREATED"),
    task: LabelStudioTaskSchema,
    annotation: z.array(LabelStudioAnnotationSchema),
  }),
  z.looseObject({ action: z.literal("ANNOTATIONS_DELETED"), annotations: z.array(Ref) }),
  z.looseObject({ action: z.literal("TASKS_DELETED"), tasks: z.array(Ref) }),
]);
const HANDLED = new Set([
  "ANNOTATION_CREATED",
  "ANNOTATION_UPDATED",
  "ANNOTATIONS_CREATED",
  "ANNOTATIONS_DELETED",
  "TASKS_DELETED",
]);

const encoder = new TextEncoder();

/**
 * Builds the Label Studio webhook route.
 *
 * @example
 * ```ts
 * const route = createLabelStudioWebhookRoute({ token: "s3cret", manifest, maxBodyBytes: 1 << 20 });
 * const res = await route(new Request("http://x/labelstudio/webhook", { method: "POST", body, headers }));
 * ```
 */
export function createLabelStudioWebhookRoute(opts: LabelStudioWebhookOptions): RouteHandler {
  const { log, manifest } = opts;
  return async (req) => {
    const auth = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (!m || !sameToken(m[1], opts.token)) {
      await req.body?.cancel();
      log?.warn("label studio webhook refused: missing or wrong bearer token", {
        hasAuthorization: auth !== "",
      });
      return jsonReply(401, {
        error: "unauthorized",
        message: "expected Authorization: Bearer <token> with the configured review webhook token",
      }, { "www-authenticate": 'Bearer realm="sluice-review"' });
    }
    const declared = Number(req.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > opts.maxBodyBytes) await req.body?.cancel();
    const text = Number.isFinite(declared) && declared > opts.maxBodyBytes ? "" : await req.text();
    if (text === "" && declared > opts.maxBodyBytes) {
      return jsonReply(413, {
        error: "too_large",
        message: `expected a webhook body of at most ${opts.maxBodyBytes} bytes`,
      });
    }
    if (encoder.encode(text).byteLength > opts.maxBodyBytes) {
      return jsonReply(413, {
        error: "too_large",
        message: `expected a webhook body of at most ${opts.maxBodyBytes} bytes`,
      });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return jsonReply(400, {
        error: "bad_event",
        message: "expected a JSON body, found unparseable text",
      });
    }
    const action = doc && typeof doc === "object" && "action" in doc ? doc.action : undefined;
    if (typeof action !== "string") {
      return jsonReply(400, {
        error: "bad_event",
        message: "expected a string `action`, found none",
      });
    }
    if (!HANDLED.has(action)) return jsonReply(200, { action, ignored: true });
    const parsed = PayloadSchema.safeParse(doc);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return jsonReply(400, {
        error: "bad_event",
        message: `${action}: ${issue.path.join(".") || "payload"}: ${issue.message}`,
      });
    }
    const p = parsed.data;
    try {
      if (p.action === "ANNOTATIONS_DELETED" || p.action === "TASKS_DELETED") {
        const count = p.action === "ANNOTATIONS_DELETED"
          ? await manifest.deleteReviews({ annotationIds: p.annotations.map((a) => a.id) })
          : await manifest.deleteReviews({ taskIds: p.tasks.map((t) => t.id) });
        opts.onResult?.({ outcome: "deleted_ids", count });
        return jsonReply(200, { action, deleted: count });
      }
      const anns = Array.isArray(p.annotation) ? p.annotation : [p.annotation];
      const results: ReviewRecordResult[] = [];
      for (const a of anns) {
        const r = await recordLabelStudioReview(manifest, p.task, a, { dataKey: opts.dataKey });
        if (r.outcome === "skipped") log?.warn("review skipped", { ...r });
        opts.onResult?.(r);
        results.push(r);
      }
      return jsonReply(200, { action, results });
    } catch (err) {
      log?.error("review could not be recorded", { reason: reasonOf(err), error: messageOf(err) });
      return jsonReply(503, { error: reasonOf(err), message: messageOf(err) }, {
        "retry-after": "5",
      });
    }
  };
}
