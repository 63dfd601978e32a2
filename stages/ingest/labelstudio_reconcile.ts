/**
 * The reconciling pass of review ingestion: what webhooks missed. It reads the project's full
 * export through the Label Studio API (`GET /api/projects/<id>/export?exportType=JSON`, header
 * `Authorization: Token <key>`) and makes the manifest's reviews match it: every annotation is
 * recorded (idempotent: unchanged ones answer `duplicate`), and active reviews whose annotation
 * is no longer in the export are deleted. The same "events plus reconciling list" design as S3
 * ingest. Reviews are assumed to come from this one project.
 *
 * @example
 * ```ts
 * const s = await reconcileLabelStudioReviews({ manifest, url: "http://ls:8080", apiToken, projectId: 1 });
 * s.recorded; // annotations the webhooks had missed
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import {
  LabelStudioAnnotationSchema,
  LabelStudioTaskSchema,
  recordLabelStudioReview,
} from "../../common/review/labelstudio_review.ts";

export interface ReviewReconcileOptions {
  manifest: ManifestStore;
  /** Label Studio base URL, e.g. `http://labelstudio:8080`. */
  url: string;
  apiToken: string;
  projectId: number;
  dataKey?: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export interface ReviewReconcileSummary {
  tasks: number;
  recorded: number;
  duplicate: number;
  stale: number;
  deleted: number;
  skipped: number;
  /** Active reviews removed because their annotation is gone from the export. */
  removed: number;
}

/** The Label Studio export could not be read. */
export class LabelStudioExportError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super("labelstudio_export", message, options);
    this.name = "LabelStudioExportError";
  }
}

const ExportTaskSchema = LabelStudioTaskSchema.extend({
  annotations: z.array(LabelStudioAnnotationSchema).nullish(),
});

/**
 * One reconciling pass (see the module doc).
 *
 * @example
 * ```ts
 * await reconcileLabelStudioReviews({ manifest, url, apiToken, projectId: 3 });
 * ```
 */
export async function reconcileLabelStudioReviews(
  opts: ReviewReconcileOptions,
): Promise<ReviewReconcileSummary> {
  const doFetch = opts.fetch ?? fetch;
  const endpoint = new URL(`/api/projects/${opts.projectId}/export`, opts.url);
  endpoint.searchParams.set("exportType", "JSON");
  endpoint.searchParams.set("download_all_tasks", "true");
  const res = await doFetch(endpoint, {
    headers: { authorization: `Token ${opts.apiToken}`, accept: "application/json" },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new LabelStudioExportError(
      `label studio export ${endpoint.pathname}: expected 200, found ${res.status}`,
    );
  }
  const parsed = z.array(ExportTaskSchema).safeParse(await res.json());
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LabelStudioExportError(
      `label studio export ${endpoint.pathname}: at ${issue.path.join(".")}: ${issue.message}`,
    );
  }
  const summary: ReviewReconcileSummary = {
    tasks: parsed.data.length,
    recorded: 0,
    duplicate: 0,
    stale: 0,
    deleted: 0,
    skipped: 0,
    removed: 0,
  };
  const present = new Set<string>();
  for (const task of parsed.data) {
    for (const a of task.annotations ?? []) {
      present.add(a.id);
      const r = await recordLabelStudioReview(opts.manifest, task, a, { dataKey: opts.dataKey });
      summary[r.outcome]++;
    }
  }
  const gone = (await opts.manifest.listReviews())
    .map((r) => r.annotationId)
    .filter((id) => !present.has(id));
  if (gone.length > 0) summary.removed = await opts.manifest.deleteReviews({ annotationIds: gone });
  return summary;
}
