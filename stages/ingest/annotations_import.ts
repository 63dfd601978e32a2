/**
 * Imports a Label Studio JSON export or a COCO JSON file into the manifest: records are matched
 * to images by Sluice image id, source URI or file name (`common/annotations/image_match.ts`),
 * the box policy (clamp/drop) is applied against the image size, and each matched image's
 * annotations from that format are replaced as a set (`replaceAnnotations`, so re-importing is
 * idempotent). Unmatched and ambiguous records are reported. A file that is not JSON or not the
 * format's shape is a failed import with reason `bad_annotation_file`, never a crash; each
 * import's outcome is kept in the manifest as the checkpoint `ingest:annotations:<file>`.
 *
 * @example
 * ```ts
 * const s = await importAnnotations({ manifest, text, file: "export.json", format: "auto" });
 * if (s.status === "failed") console.error(s.reason, s.message);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { applyBoxPolicy, type BoxPolicyOptions } from "../../common/annotations/box_policy.ts";
import { parseCoco } from "../../common/annotations/coco.ts";
import { AnnotationFormatError } from "../../common/annotations/errors.ts";
import {
  createImageMatcher,
  type ImageRef,
  type MatchableImage,
} from "../../common/annotations/image_match.ts";
import {
  type LabelStudioImportOptions,
  parseLabelStudioExport,
} from "../../common/annotations/labelstudio.ts";
import {
  canonicalLabel,
  type LabelConfig,
  readLabelConfig,
} from "../../common/annotations/label_config.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { AnnotationInput, ImageRow, ManifestStore } from "../../common/manifest/mod.ts";
import type { AnnotationFormat } from "./config.ts";
import type { DatasetFormat } from "./dataset_formats.ts";
import type { IngestMetrics } from "./metrics.ts";
import { recordReviewedEmpty } from "../../common/annotations/reviewed_empty.ts";

/** What one import did. */
export interface AnnotationImportSummary {
  file: string;
  /** The format read (null when the file could not be recognised). */
  format: AnnotationFormat | DatasetFormat | null;
  status: "imported" | "failed";
  /** Failure reason code and message (status `failed`). */
  reason?: string;
  message?: string;
  /** SHA-256 of the file's text. */
  sha256: string;
  /** Tasks (Label Studio) or images (COCO) in the file. */
  records: number;
  matched: number;
  /** Image references of records that matched no image. */
  unmatched: string[];
  /** Image references that matched several images (not imported). */
  ambiguous: string[];
  /** Annotations stored. */
  annotations: number;
  /** Matched records that say "reviewed, no objects" (stored as an empty set). */
  reviewedEmpty?: number;
  /** Matched records nobody labelled (left as they were). */
  unlabelled?: number;
  /** Box-policy outcomes: kept, clamped, dropped, polygon_removed. */
  boxes: Record<string, number>;
  /** Records in the file that could not be read (the rest were imported). */
  recordFailures: { path: string; message: string }[];
  /**
   * Shapes and annotations skipped or changed while reading the file (unknown COCO category,
   * malformed bbox, cancelled Label Studio annotation, unsupported result type, ...), in total.
   */
  problems: number;
  /** The first {@link MAX_PROBLEM_EXAMPLES} of those problems, with their JSON paths. */
  problemExamples: { path: string; problem: string }[];
  /** Epoch ms. */
  at: number;
}

export interface ImportAnnotationsOptions {
  manifest: ManifestStore;
  /** The file's text. */
  text: string;
  /** Name used in reports and the checkpoint (its URI or path). */
  file: string;
  format: AnnotationFormat | "auto";
  boxPolicy?: BoxPolicyOptions;
  /** Which annotation of a Label Studio task wins (default `newest`). */
  labelStudioChoose?: LabelStudioImportOptions["choose"];
  /** A Label Studio label config: labels are mapped through its aliases; others are skipped. */
  labelConfig?: LabelConfig;
  /** The same, as a file to read first (`ingest.labelConfig`); unreadable = a failed import. */
  labelConfigFile?: string;
  metrics?: IngestMetrics;
  log?: Logger;
}

/** How many problems an import summary (and its checkpoint) lists by path; all are counted. */
export const MAX_PROBLEM_EXAMPLES = 50;

/**
 * The manifest checkpoint where an annotation file's last import is recorded.
 *
 * @example
 * ```ts
 * importCheckpointName("s3://raw/labels.json"); // "ingest:annotations:s3://raw/labels.json"
 * ```
 */
export function importCheckpointName(file: string): string {
  return `ingest:annotations:${file}`;
}

const SummarySchema = z.looseObject({
  file: z.string(),
  status: z.enum(["imported", "failed"]),
  sha256: z.string(),
  unmatched: z.array(z.string()),
  at: z.number(),
});

/**
 * The recorded outcome of a file's last import, or null.
 *
 * @example
 * ```ts
 * (await readImportRecord(manifest, "s3://raw/labels.json"))?.status; // "imported"
 * ```
 */
export async function readImportRecord(
  manifest: ManifestStore,
  file: string,
): Promise<AnnotationImportSummary | null> {
  const raw = await manifest.getCheckpoint(importCheckpointName(file));
  if (raw === null) return null;
  try {
    return SummarySchema.parse(JSON.parse(raw)) as unknown as AnnotationImportSummary;
  } catch {
    return null;
  }
}

/**
 * Tells the formats apart: a list (or an object with `data`) is Label Studio, an object with
 * `images` is COCO.
 *
 * @example
 * ```ts
 * detectAnnotationFormat({ images: [], annotations: [] }); // "coco"
 * ```
 */
export function detectAnnotationFormat(doc: unknown): AnnotationFormat | null {
  if (Array.isArray(doc)) return "labelstudio";
  if (doc && typeof doc === "object") {
    if ("images" in doc) return "coco";
    if ("data" in doc) return "labelstudio";
  }
  return null;
}

/** One record of any format, reduced to what matching and storing need. */
export interface ImportRecord {
  ref: ImageRef;
  width: number | null;
  height: number | null;
  annotations: AnnotationInput[];
  /** False for a record nobody labelled (left as it is); default true. */
  labelled?: boolean;
  /**
   * Objects that need the matched image's size to be read (a YOLO label file exported without
   * its image: normalised coordinates). Called with it once matched; `annotations` is unused.
   */
  annotationsFor?: (size: { width: number; height: number }) => {
    annotations: AnnotationInput[];
    problems: { path: string; problem: string }[];
  };
}

/** A file or directory already read into records (see {@link importParsedAnnotations}). */
export interface ParsedAnnotations {
  format: AnnotationFormat | DatasetFormat;
  records: ImportRecord[];
  recordFailures: { path: string; message: string }[];
  problems: { path: string; problem: string }[];
  /** Label order for new manifest label ids. */
  labelOrder: string[];
}

/** Every non-deleted image, for matching. */
async function matchableImages(manifest: ManifestStore): Promise<Map<string, ImageRow>> {
  const out = new Map<string, ImageRow>();
  let afterId: string | undefined;
  for (;;) {
    const page = await manifest.listImages({ limit: 1000, ...(afterId ? { afterId } : {}) });
    for (const img of page) if (img.status !== "deleted") out.set(img.id, img);
    if (page.length < 1000) break;
    afterId = page[page.length - 1].id;
  }
  return out;
}

/**
 * A summary with nothing counted yet, for `file` in `format`.
 *
 * @example
 * ```ts
 * emptyImportSummary("a.json", "auto", { status: "failed", reason: "not_found", sha256: "" });
 * ```
 */
export function emptyImportSummary(
  file: string,
  format: AnnotationFormat | "auto",
  fields: Pick<AnnotationImportSummary, "status" | "sha256" | "reason" | "message">,
): AnnotationImportSummary {
  return {
    file,
    format: format === "auto" ? null : format,
    ...fields,
    records: 0,
    matched: 0,
    unmatched: [],
    ambiguous: [],
    annotations: 0,
    boxes: {},
    recordFailures: [],
    problems: 0,
    problemExamples: [],
    at: Date.now(),
  };
}

/** Parses the file's records (Label Studio tasks or COCO images) into `summary`'s format. */
function readRecords(
  opts: ImportAnnotationsOptions,
  summary: AnnotationImportSummary,
  noteProblems: (list: readonly { path: string; problem: string }[]) => void,
): { records: ImportRecord[]; labelOrder: string[] } {
  const { file } = opts;
  let records: ImportRecord[];
  let labelOrder: string[];
  let doc: unknown;
  try {
    doc = JSON.parse(opts.text);
  } catch (err) {
    throw new AnnotationFormatError(
      file,
      "$",
      `expected JSON, found a parse error: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  const format = opts.format === "auto" ? detectAnnotationFormat(doc) : opts.format;
  if (format === null) {
    throw new AnnotationFormatError(
      file,
      "$",
      "expected a Label Studio export (a list of tasks) or a COCO document (an object with images)",
    );
  }
  summary.format = format;
  if (format === "labelstudio") {
    const ls = parseLabelStudioExport(doc, {
      file,
      ...(opts.labelStudioChoose ? { choose: opts.labelStudioChoose } : {}),
    });
    records = ls.tasks.map((t) => ({
      ref: t.imageRef,
      width: t.width,
      height: t.height,
      annotations: t.annotations,
      labelled: t.labelled,
    }));
    summary.recordFailures = ls.failures.map((f) => ({ path: f.path, message: f.message }));
    noteProblems(ls.tasks.flatMap((t) => t.problems));
    labelOrder = records.flatMap((r) => r.annotations.map((a) => a.label));
  } else {
    const coco = parseCoco(doc, { file });
    records = coco.images.map((i) => ({
      ref: i.imageRef,
      width: i.width,
      height: i.height,
      annotations: i.annotations,
    }));
    summary.recordFailures = coco.failures.map((f) => ({ path: f.path, message: f.message }));
    noteProblems([...coco.problems, ...coco.images.flatMap((i) => i.problems)]);
    labelOrder = [...coco.categories].sort((a, b) => a.id - b.id).map((c) => c.name);
  }
  return { records, labelOrder };
}

/** The metrics and log lines of a finished import. */
function reportImport(summary: AnnotationImportSummary, opts: ImportAnnotationsOptions): void {
  const { file, metrics, log } = opts;
  for (const [k, v] of Object.entries(summary.boxes)) {
    metrics?.annotationBoxes.inc({ outcome: k }, v);
  }
  metrics?.annotationRecords.inc({ result: "matched" }, summary.matched);
  metrics?.annotationRecords.inc({ result: "unmatched" }, summary.unmatched.length);
  metrics?.annotationRecords.inc({ result: "ambiguous" }, summary.ambiguous.length);
  metrics?.annotationRecords.inc({ result: "unreadable" }, summary.recordFailures.length);
  metrics?.annotationProblems.inc(summary.problems);
  if (summary.problems > 0 || summary.recordFailures.length > 0) {
    log?.warn("annotation file has records or shapes that were skipped or changed", {
      file,
      problems: summary.problems,
      recordFailures: summary.recordFailures.length,
      examples: [
        ...summary.recordFailures.map((f) => `${f.path}: ${f.message}`),
        ...summary.problemExamples.map((p) => `${p.path}: ${p.problem}`),
      ].slice(0, 20),
    });
  }
  if (summary.unmatched.length > 0 || summary.ambiguous.length > 0) {
    log?.warn("annotation records without a unique image", {
      file,
      unmatched: summary.unmatched.length,
      ambiguous: summary.ambiguous.length,
      examples: [...summary.unmatched, ...summary.ambiguous].slice(0, 20),
    });
  }
  log?.info("annotations imported", {
    file,
    format: summary.format,
    records: summary.records,
    matched: summary.matched,
    annotations: summary.annotations,
    boxes: summary.boxes,
    recordFailures: summary.recordFailures.length,
    problems: summary.problems,
  });
}

/**
 * Imports one annotation file; never throws for a bad file (only for manifest failures).
 *
 * @example
 * ```ts
 * const s = await importAnnotations({ manifest, text, file, format: "coco",
 *   boxPolicy: { outOfBounds: "clamp" } });
 * console.log(`${s.matched}/${s.records} matched, unmatched: ${s.unmatched.join(", ")}`);
 * ```
 */
export async function importAnnotations(
  opts: ImportAnnotationsOptions,
): Promise<AnnotationImportSummary> {
  const { manifest, file, metrics, log } = opts;
  const summary = emptyImportSummary(file, opts.format, {
    status: "imported",
    sha256: createHash("sha256").update(opts.text).digest("hex"),
  });
  const noteProblems = (list: readonly { path: string; problem: string }[]) => {
    summary.problems += list.length;
    for (const p of list) {
      if (summary.problemExamples.length < MAX_PROBLEM_EXAMPLES) {
        summary.problemExamples.push({ path: p.path, problem: p.problem });
      }
      log?.debug("annotation problem", { file, path: p.path, problem: p.problem });
    }
  };
  const finish = async () => {
    await manifest.setCheckpoint(importCheckpointName(file), JSON.stringify(summary));
    metrics?.annotationImports.inc({ format: summary.format ?? "unknown", result: summary.status });
    return summary;
  };

  let records: ImportRecord[];
  let labelOrder: string[];
  try {
    if (opts.labelConfigFile && !opts.labelConfig) {
      opts = { ...opts, labelConfig: await readLabelConfig(opts.labelConfigFile) };
    }
    ({ records, labelOrder } = readRecords(opts, summary, noteProblems));
  } catch (err) {
    summary.status = "failed";
    summary.reason = reasonOf(err);
    summary.message = messageOf(err);
    metrics?.stage.errorsTotal.inc({ reason: summary.reason });
    log?.warn("annotation import failed", { file, reason: summary.reason, error: summary.message });
    return await finish();
  }

  return await storeRecords(opts, summary, records, labelOrder, noteProblems, finish);
}

/**
 * Stores records read by another reader (YOLO and VOC directories): the same matching, label
 * config, box policy, replacement and summary as {@link importAnnotations}.
 *
 * @example
 * ```ts
 * const s = await importParsedAnnotations({ manifest, file: "/data/yolo", parsed });
 * ```
 */
export async function importParsedAnnotations(
  opts: Omit<ImportAnnotationsOptions, "text" | "format"> & {
    parsed: ParsedAnnotations;
    sha256?: string;
  },
): Promise<AnnotationImportSummary> {
  const { manifest, file, metrics, log, parsed } = opts;
  const summary: AnnotationImportSummary = {
    file,
    format: parsed.format,
    status: "imported",
    sha256: opts.sha256 ?? "",
    records: 0,
    matched: 0,
    unmatched: [],
    ambiguous: [],
    annotations: 0,
    boxes: {},
    recordFailures: parsed.recordFailures,
    problems: 0,
    problemExamples: [],
    at: Date.now(),
  };
  const noteProblems = (list: readonly { path: string; problem: string }[]) => {
    summary.problems += list.length;
    for (const p of list) {
      if (summary.problemExamples.length < MAX_PROBLEM_EXAMPLES) {
        summary.problemExamples.push({ path: p.path, problem: p.problem });
      }
      log?.debug("annotation problem", { file, path: p.path, problem: p.problem });
    }
  };
  noteProblems(parsed.problems);
  const finish = async () => {
    await manifest.setCheckpoint(importCheckpointName(file), JSON.stringify(summary));
    metrics?.annotationImports.inc({ format: summary.format ?? "unknown", result: summary.status });
    return summary;
  };
  return await storeRecords(
    { ...opts, text: "", format: "auto" },
    summary,
    parsed.records,
    parsed.labelOrder,
    noteProblems,
    finish,
  );
}

async function storeRecords(
  opts: ImportAnnotationsOptions,
  summary: AnnotationImportSummary,
  records: ImportRecord[],
  labelOrder: string[],
  noteProblems: (list: readonly { path: string; problem: string }[]) => void,
  finish: () => Promise<AnnotationImportSummary>,
): Promise<AnnotationImportSummary> {
  const { manifest, file, log } = opts;
  const cfg = opts.labelConfig;
  // The config decides the labels: aliases map to their label, unknown labels are dropped.
  const relabel = (rec: ImportRecord, r: number): ImportRecord => {
    if (!cfg) return rec;
    const kept: AnnotationInput[] = [];
    rec.annotations.forEach((a, i) => {
      const label = canonicalLabel(cfg, a.label);
      if (label === null) {
        noteProblems([{
          path: `record ${r} (${rec.ref.url}) annotation ${i}`,
          problem: `label ${JSON.stringify(a.label)} is not in the label config: skipped`,
        }]);
      } else kept.push(label === a.label ? a : { ...a, label });
    });
    return { ...rec, annotations: kept };
  };
  if (cfg) labelOrder = [...cfg.labels];
  records = records.map((rec, r) => rec.annotationsFor ? rec : relabel(rec, r));
  summary.records = records.length;
  const images = await matchableImages(manifest);
  const match = createImageMatcher(
    [...images.values()].map((img): MatchableImage => ({
      id: img.id,
      uris: [img.sourceUri, ...(img.datasetUri ? [img.datasetUri] : [])],
    })),
  );
  const source = summary.format!;
  const policy: BoxPolicyOptions = opts.boxPolicy ?? {};
  const seenLabels = new Set<string>();
  const labels: string[] = [];
  const addLabels = (names: Iterable<string>) => {
    for (const n of names) {
      if (!seenLabels.has(n)) {
        seenLabels.add(n);
        labels.push(n);
      }
    }
  };
  addLabels(labelOrder);
  const bump = (k: string, n = 1) => {
    if (n > 0) summary.boxes[k] = (summary.boxes[k] ?? 0) + n;
  };
  const writes: { id: string; items: AnnotationInput[] }[] = [];
  for (let [r, rec] of records.entries()) {
    const m = match(rec.ref);
    if (m.kind === "none") {
      summary.unmatched.push(rec.ref.url);
      continue;
    }
    if (m.kind === "ambiguous") {
      summary.ambiguous.push(rec.ref.url);
      continue;
    }
    summary.matched++;
    if (rec.labelled === false && rec.annotations.length === 0) {
      // Nobody labelled it: it says nothing about the image, so what is stored stays.
      summary.unlabelled = (summary.unlabelled ?? 0) + 1;
      continue;
    }
    const img = images.get(m.id)!;
    if (rec.annotationsFor) {
      // Normalised coordinates: the matched image's size makes them pixels.
      if (!img.width || !img.height) {
        summary.recordFailures.push({
          path: rec.ref.url,
          message: `matched image ${m.id} has no size yet (not ingested): its objects, in ` +
            "coordinates relative to the image, cannot be placed; import again after ingest",
        });
        continue;
      }
      const read = rec.annotationsFor({ width: img.width, height: img.height });
      noteProblems(read.problems);
      rec = relabel(
        { ...rec, annotations: read.annotations, width: img.width, height: img.height },
        r,
      );
    }
    // The ingested image's own size wins; before ingestion, the file's word is all there is.
    const width = img.width ?? rec.width;
    const height = img.height ?? rec.height;
    let kept = rec.annotations;
    if (kept.length > 0) {
      if (!width || !height) {
        log?.warn("annotations without an image size: stored without the box policy", {
          file,
          image: m.id,
          ref: rec.ref.url,
        });
      } else {
        const r = applyBoxPolicy(rec.annotations, { width, height }, policy);
        kept = r.kept;
        for (const p of r.problems) {
          bump(p.action);
          log?.info("annotation box changed by the box policy", {
            file,
            image: m.id,
            problem: p.problem,
            action: p.action,
            detail: p.detail,
          });
        }
        const clamped = r.problems.filter((p) => p.action === "clamped").length;
        bump("kept", kept.length - clamped);
      }
    }
    writes.push({ id: m.id, items: kept });
  }
  addLabels(writes.flatMap((w) => w.items.map((a) => a.label)));
  if (labels.length > 0) await manifest.ensureLabels(labels);
  for (const w of writes) {
    await manifest.replaceAnnotations(w.id, source, w.items);
    summary.annotations += w.items.length;
  }
  const empty = writes.filter((w) => w.items.length === 0).map((w) => w.id);
  summary.reviewedEmpty = empty.length;
  await recordReviewedEmpty(manifest, source, {
    empty,
    labelled: writes.filter((w) => w.items.length > 0).map((w) => w.id),
  });
  reportImport(summary, opts);
  return await finish();
}
