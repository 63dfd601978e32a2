/**
 * The ingest CLI's annotation commands, all formats:
 *
 * ```
 * import-annotations --format labelstudio|coco FILE_OR_URI
 * import-annotations --format yolo|voc DIR [--yolo-task detect|segment|obb|auto] [--voc-origin 1|0]
 * export --format coco|labelstudio --out FILE [--polygons polygon|rectangle]
 * export --format yolo|voc --out DIR [--yolo-task …] [--yolo-layout ultralytics|classes] [--voc-origin …]
 *   any export: [--snapshot ID] [--source NAME] [--image-url source|dataset] [--label-config FILE]
 * ```
 *
 * Options are validated with zod here, at the edge; `main.ts` only passes them on.
 *
 * @example
 * ```ts
 * const code = await runAnnotationCommand("export", { config, flags, args: [], cwd, print, log });
 * ```
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { type LabelConfig, readLabelConfig } from "../../common/annotations/label_config.ts";
import { YOLO_TASKS } from "../../common/annotations/yolo.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { ExportSetImage } from "./annotation_sets.ts";
import { exportDocument, exportSetFor } from "./annotations_export.ts";
import { importParsedAnnotations } from "./annotations_import.ts";
import { ANNOTATION_FORMATS, type IngestConfig } from "./config.ts";
import { exportDataset } from "./dataset_export.ts";
import { DATASET_FORMATS, isDatasetFormat } from "./dataset_formats.ts";
import { readDatasetRecords } from "./dataset_import.ts";
import { imageUrlResolver } from "./image_urls.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import { openResources } from "../../common/stage/mod.ts";
import { createIngestStage } from "./stage.ts";

/** The flags these commands add to `sluice-ingest` (spread into main's FLAGS). */
export const ANNOTATION_FLAGS = {
  format: {
    type: "string",
    description: "Annotation format: labelstudio, coco, yolo or voc",
  },
  out: { type: "string", description: 'export: output file ("-" for stdout) or directory' },
  "image-url": {
    type: "string",
    description: "export: image from the source object (default) or the dataset copy",
  },
  polygons: {
    type: "string",
    description: "export labelstudio: polygon (default, as the source held) or rectangle",
  },
  "label-config": {
    type: "string",
    description: "Label Studio label config XML: label ids, aliases, from_name/to_name",
  },
  snapshot: { type: "string", description: "export: a recorded training snapshot id" },
  source: { type: "string", description: "export: only annotations from this source" },
  "yolo-task": { type: "string", description: "yolo: detect (default export), segment, obb" },
  "yolo-layout": { type: "string", description: "yolo export: ultralytics (default) or classes" },
  "voc-origin": { type: "string", description: "voc: 1 (devkit, default) or 0-based corners" },
} as const;

const FORMATS = [...ANNOTATION_FORMATS, ...DATASET_FORMATS] as const;

const OptionsSchema = z.strictObject({
  format: z.enum(FORMATS, { error: `expected one of ${FORMATS.join(", ")}` }).optional(),
  out: z.string().min(1).optional(),
  "image-url": z.enum(["source", "dataset"], { error: "expected source or dataset" }).optional(),
  polygons: z.enum(["polygon", "rectangle"], { error: "expected polygon or rectangle" })
    .optional(),
  "label-config": z.string().min(1).optional(),
  snapshot: z.string().min(1).optional(),
  source: z.string().min(1).optional(),
  "yolo-task": z.enum([...YOLO_TASKS, "auto"], {
    error: "expected detect, segment, obb or auto",
  }).optional(),
  "yolo-layout": z.enum(["ultralytics", "classes"], { error: "expected ultralytics or classes" })
    .optional(),
  "voc-origin": z.enum(["0", "1"], { error: "expected 1 (devkit) or 0" }).optional(),
});

/** Where the command prints and how it exits. */
export interface AnnotationCommandContext {
  config: IngestConfig;
  flags: Record<string, unknown>;
  /** Positional arguments after the command. */
  args: readonly string[];
  cwd: string;
  print: (text: string) => void;
  usageError: (message: string) => number;
  log: Logger;
}

/**
 * Checks the options of an annotation command; returns a usage message or null.
 *
 * @example
 * ```ts
 * checkAnnotationOptions("export", { format: "yolo" }, []); // "export: expected --format … and --out …"
 * ```
 */
export function checkAnnotationOptions(
  command: string,
  flags: Record<string, unknown>,
  args: readonly string[],
): string | null {
  const picked = Object.fromEntries(
    Object.keys(ANNOTATION_FLAGS).filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]]),
  );
  const parsed = OptionsSchema.safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = String(issue.path[0]);
    return `--${flag}: ${issue.message}, found ${JSON.stringify(picked[flag])}`;
  }
  const o = parsed.data;
  if (command === "import-annotations") {
    if (args.length !== 1) return "import-annotations: expected exactly one FILE_OR_URI";
    if (o.format && isDatasetFormat(o.format) === false && (o["yolo-task"] || o["voc-origin"])) {
      return "--yolo-task / --voc-origin: only for --format yolo or voc";
    }
    return null;
  }
  if (command === "export") {
    if (args.length !== 0) return `export: unexpected arguments ${args.join(" ")}`;
    if (!o.format || !o.out) {
      return `export: expected --format ${FORMATS.join("|")} and --out FILE_OR_DIR`;
    }
    if (isDatasetFormat(o.format) && o.out === "-") {
      return `export --format ${o.format}: expected a directory for --out, found "-"`;
    }
  }
  return null;
}

async function bytesOf(store: ObjectStore, uri: string): Promise<Uint8Array> {
  const base = store.url.replace(/\/+$/, "") + "/";
  if (!uri.startsWith(base)) {
    throw new Error(`image ${uri}: expected it inside the store ${store.url}`);
  }
  return await store.getBytes(decodeURIComponent(uri.slice(base.length)));
}

/**
 * Runs `import-annotations` or `export` and returns the exit status (0 done, 1 failed).
 *
 * @example
 * ```ts
 * Deno.exit(await runAnnotationCommand("import-annotations", ctx));
 * ```
 */
export async function runAnnotationCommand(
  command: "import-annotations" | "export",
  ctx: AnnotationCommandContext,
): Promise<number> {
  const problem = checkAnnotationOptions(command, ctx.flags, ctx.args);
  if (problem) return ctx.usageError(problem);
  const o = OptionsSchema.parse(
    Object.fromEntries(
      Object.keys(ANNOTATION_FLAGS).filter((k) => ctx.flags[k] !== undefined).map((
        k,
      ) => [k, ctx.flags[k]]),
    ),
  );
  const s = ctx.config.stage;
  const labelConfigFile = o["label-config"]
    ? resolve(ctx.cwd, o["label-config"])
    : s.labelConfig ?? null;
  const labelConfig: LabelConfig | undefined = labelConfigFile
    ? await readLabelConfig(labelConfigFile)
    : undefined;
  const config: IngestConfig = labelConfigFile
    ? { ...ctx.config, stage: { ...s, labelConfig: labelConfigFile } }
    : ctx.config;
  const metrics = createStageMetrics("ingest");
  const res = await openResources(config, {}, {
    stage: "ingest",
    log: ctx.log,
    metrics,
    source: true,
  });
  const deps = {
    manifest: res.manifest,
    source: res.source,
    objectStore: res.store,
    staging: res.staging,
    metrics,
    log: ctx.log,
  };
  const stage = createIngestStage(config, deps);
  res.closers.add("ingest stage", () => stage.close());
  const run: CommandRun = { ctx, o, config, deps, stage, labelConfig };
  try {
    return command === "import-annotations" ? await runImport(run) : await runExport(run);
  } finally {
    await res.close();
  }
}

/** What `import-annotations` and `export` work with once the resources are open. */
interface CommandRun {
  ctx: AnnotationCommandContext;
  o: z.output<typeof OptionsSchema>;
  config: IngestConfig;
  deps: {
    manifest: ManifestStore;
    source: ObjectStore;
    objectStore: ObjectStore;
  };
  stage: ReturnType<typeof createIngestStage>;
  labelConfig: LabelConfig | undefined;
}

/** `import-annotations`: a dataset folder (YOLO, VOC, ...) or a COCO / Label Studio file. */
async function runImport(
  { ctx, o, config, deps, stage, labelConfig }: CommandRun,
): Promise<number> {
  const s = config.stage;
  const ref = ctx.args[0];
  if (o.format && isDatasetFormat(o.format)) {
    const dir = resolve(ctx.cwd, ref);
    const parsed = await readDatasetRecords(o.format, dir, {
      ...(o["yolo-task"] ? { yoloTask: o["yolo-task"] } : {}),
      ...(o["voc-origin"] ? { vocOrigin: Number(o["voc-origin"]) as 0 | 1 } : {}),
      ...(labelConfig ? { labelConfig } : {}),
    });
    const summary = await importParsedAnnotations({
      manifest: deps.manifest,
      file: dir,
      parsed,
      boxPolicy: {
        outOfBounds: s.boxOutOfBounds,
        minSize: s.minBoxSize,
        ...(s.labels ? { labels: s.labels } : {}),
      },
      ...(labelConfig ? { labelConfig } : {}),
      log: ctx.log,
    });
    ctx.print(JSON.stringify(summary, null, 2) + "\n");
    return summary.status === "imported" ? 0 : 1;
  }
  const summary = await stage.importAnnotations(
    ref,
    (o.format as "labelstudio" | "coco" | undefined) ?? "auto",
    { preferLocal: true, cwd: ctx.cwd },
  );
  ctx.print(JSON.stringify(summary, null, 2) + "\n");
  return summary.status === "imported" ? 0 : 1;
}

/** `export`: a dataset folder, or a COCO / Label Studio document. */
async function runExport({ ctx, o, config, deps, labelConfig }: CommandRun): Promise<number> {
  const s = config.stage;
  const format = o.format!;
  const set = await exportSetFor(deps.manifest, {
    ...(o.source ? { source: o.source } : {}),
    ...(o["image-url"] ? { imageUrl: o["image-url"] } : {}),
    ...(o.snapshot ? { snapshot: o.snapshot } : {}),
    datasetStore: deps.objectStore,
    ...(labelConfig ? { labelConfig } : {}),
  });
  if (isDatasetFormat(format)) {
    const storeOf = (img: ExportSetImage) =>
      img.store === "dataset" ? deps.objectStore : deps.source;
    const summary = await exportDataset(set, {
      format,
      dir: resolve(ctx.cwd, o.out!),
      ...(o["yolo-task"] && o["yolo-task"] !== "auto" ? { task: o["yolo-task"] } : {}),
      ...(o["yolo-layout"] ? { layout: o["yolo-layout"] } : {}),
      ...(o["voc-origin"] ? { vocOrigin: Number(o["voc-origin"]) as 0 | 1 } : {}),
      ...(labelConfig ? { labelConfig } : {}),
      readImage: (img) => bytesOf(storeOf(img), img.uri),
    });
    ctx.log.info("export written", { ...summary, problems: summary.problems.length });
    ctx.print(
      JSON.stringify(
        {
          ...summary,
          problems: summary.problems.length,
          problemExamples: summary.problems.slice(0, 50),
        },
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  const urlFor = format === "labelstudio"
    ? imageUrlResolver({
      mode: s.labelStudioImageUrl,
      ...(s.imageUrlPrefix ? { prefix: s.imageUrlPrefix } : {}),
      expirySeconds: s.imageUrlExpirySeconds,
      localFilesRoot: s.localFilesRoot,
      stores: [deps.source.url, deps.objectStore.url],
      s3: {
        ...(config.s3.endpoint ? { endpoint: config.s3.endpoint } : {}),
        region: config.s3.region,
        ...(config.s3.forcePathStyle !== undefined
          ? { forcePathStyle: config.s3.forcePathStyle }
          : {}),
        ...(config.s3.accessKeyId ? { accessKeyId: config.s3.accessKeyId } : {}),
        ...(config.s3.secretAccessKey ? { secretAccessKey: config.s3.secretAccessKey } : {}),
        ...(config.s3.sessionToken ? { sessionToken: config.s3.sessionToken } : {}),
      },
    })
    : undefined;
  const out = await exportDocument(set, {
    format,
    ...(o.polygons ? { polygons: o.polygons } : {}),
    ...(labelConfig ? { labelConfig } : {}),
    ...(urlFor ? { urlFor } : {}),
  });
  const text = JSON.stringify(out.document, null, 2) + "\n";
  if (o.out === "-") ctx.print(text);
  else await Deno.writeTextFile(resolve(ctx.cwd, o.out!), text);
  ctx.log.info("export written", {
    format,
    out: o.out,
    images: out.images,
    annotations: out.annotations,
    ...(set.snapshotId ? { snapshot: set.snapshotId } : {}),
  });
  return 0;
}
