/**
 * Annotation file imports of the ingest stage: one file by key, URI or local path, or the
 * files `ingest.annotations` names (optionally only those changed since their last import).
 * An unreadable file is recorded as a failed import, with its reason, and the rest go on.
 *
 * @example
 * ```ts
 * const importer = createAnnotationImporter({ manifest, settings, read: { source }, metrics, log });
 * const summary = await importer.importOne("exports/labelstudio.json");
 * summary.status; // "imported"
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import { type AnnotationReadOptions, readAnnotationText } from "./annotation_source.ts";
import {
  type AnnotationImportSummary,
  emptyImportSummary,
  importAnnotations,
  importCheckpointName,
  readImportRecord,
} from "./annotations_import.ts";
import type { AnnotationFormat, IngestSettings } from "./config.ts";
import type { IngestMetrics } from "./metrics.ts";

/** What the importer is built from. */
export interface AnnotationImporterOptions {
  manifest: ManifestStore;
  settings: IngestSettings;
  /** Where annotation files are read from (the source store, S3 settings). */
  read: AnnotationReadOptions;
  metrics: IngestMetrics;
  log: Logger;
}

/** The two ways to import, see {@link createAnnotationImporter}. */
export interface AnnotationImporter {
  importOne(
    ref: string,
    format?: AnnotationFormat | "auto",
    opts?: { preferLocal?: boolean; cwd?: string },
  ): Promise<AnnotationImportSummary>;
  importConfigured(opts?: { onlyIfNeeded?: boolean }): Promise<AnnotationImportSummary[]>;
}

/**
 * Builds the importer.
 *
 * @example
 * ```ts
 * const summaries = await createAnnotationImporter(opts).importConfigured({ onlyIfNeeded: true });
 * ```
 */
export function createAnnotationImporter(o: AnnotationImporterOptions): AnnotationImporter {
  const { manifest, settings: s, metrics, log } = o;
  const readOpts = o.read;
  const importOpts = {
    boxPolicy: {
      outOfBounds: s.boxOutOfBounds,
      minSize: s.minBoxSize,
      ...(s.labels ? { labels: s.labels } : {}),
    },
    labelStudioChoose: s.labelStudioChoose,
    ...(s.labelConfig ? { labelConfigFile: s.labelConfig } : {}),
    metrics,
    log,
  };

  const importOne = async (
    ref: string,
    format: AnnotationFormat | "auto" = "auto",
    opts: { preferLocal?: boolean; cwd?: string } = {},
  ): Promise<AnnotationImportSummary> => {
    let text: string;
    let file: string;
    try {
      ({ text, file } = await readAnnotationText(ref, { ...readOpts, ...opts }));
    } catch (err) {
      const summary = emptyImportSummary(ref, format, {
        status: "failed",
        reason: reasonOf(err),
        message: messageOf(err),
        sha256: "",
      });
      log.warn("annotation file unreadable", {
        file: ref,
        reason: summary.reason,
        error: summary.message,
      });
      metrics.stage.errorsTotal.inc({ reason: summary.reason! });
      metrics.annotationImports.inc({ format: summary.format ?? "unknown", result: "failed" });
      await manifest.setCheckpoint(importCheckpointName(ref), JSON.stringify(summary));
      return summary;
    }
    return await importAnnotations({ manifest, text, file, format, ...importOpts });
  };

  const importConfigured = async (
    opts: { onlyIfNeeded?: boolean } = {},
  ): Promise<AnnotationImportSummary[]> => {
    const out: AnnotationImportSummary[] = [];
    for (const entry of s.annotations) {
      const ref = typeof entry === "string" ? entry : entry.uri;
      const format = typeof entry === "string" ? "auto" : entry.format;
      if (opts.onlyIfNeeded) {
        const summary = await importIfNeeded(ref, format);
        if (summary) out.push(summary);
      } else {
        out.push(await importOne(ref, format));
      }
    }
    return out;
  };

  const importIfNeeded = async (ref: string, format: AnnotationFormat | "auto") => {
    let text: string;
    let file: string;
    try {
      ({ text, file } = await readAnnotationText(ref, readOpts));
    } catch {
      return await importOne(ref, format);
    }
    const last = await readImportRecord(manifest, file);
    const sha = createHash("sha256").update(text).digest("hex");
    if (
      last && last.sha256 === sha &&
      (last.status === "failed" ||
        (last.unmatched.length === 0 && (last.ambiguous ?? []).length === 0))
    ) {
      metrics.annotationImports.inc({ format: last.format ?? "unknown", result: "skipped" });
      return null;
    }
    return await importAnnotations({ manifest, text, file, format, ...importOpts });
  };

  return { importOne, importConfigured };
}
