/**
 * YOLO datasets on disk, both layouts the tools use:
 *
 * - `ultralytics`: `data.yaml` (`path`, `train`, `val`, optional `test`, `names`),
 *   `images/<split>/…` and `labels/<split>/….txt` (a label file's path is its image's path with
 *   the last `/images/` replaced by `/labels/`, as Ultralytics' `img2label_paths` does).
 * - `classes`: `classes.txt` (one name per line, line number = class id), `images/` and
 *   `labels/`, as Label Studio's YOLO export and CVAT write it (`obj.names` is read too).
 *
 * Import reads every image's size from its header (sharp, with EXIF orientation applied, as
 * Ultralytics' `exif_size` does). A label file with no image beside it (Label Studio's plain
 * "YOLO" export and CVAT's "YOLO 1.1" without "save images" write labels only) is returned as
 * `labelOnly`: its image is found by file name without extension, and its normalised coordinates
 * are turned into pixels with that image's size (`parseLabelOnly`). Export writes a label file for every image that has an
 * annotation entry (an empty file for "reviewed, no objects") and none for images without one,
 * copies the image bytes when given a way to read them, and writes `sluice_images.json` (file →
 * Sluice image id, ignored by other tools) so that re-importing matches images exactly.
 *
 * @example
 * ```ts
 * await writeYoloDataset({ dir: "out", task: "detect", names: ["cat"], images, annotationsByImage });
 * const ds = await readYoloDataset("out");
 * ```
 * @module
 */
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import sharp from "sharp";
import type { AnnotationInput } from "../manifest/mod.ts";
import { AnnotationFormatError, type AnnotationProblem } from "./errors.ts";
import { type ByImage, lookupByImage } from "./_by_image.ts";
import { formatDataYaml, parseDataYaml } from "./_data_yaml.ts";
import { type ImageRef, imageRefFromUrl, withoutUploadPrefix } from "./image_match.ts";
import { formatYoloLabels, parseYoloLabels, type YoloTask } from "./yolo.ts";

/** Image file extensions Ultralytics reads (`IMG_FORMATS`). */
export const YOLO_IMAGE_EXTENSIONS = [
  "bmp",
  "dng",
  "jpeg",
  "jpg",
  "mpo",
  "png",
  "tif",
  "tiff",
  "webp",
  "pfm",
  "heic",
];

/** Sidecar mapping image paths (relative to the dataset) to Sluice image ids. */
export const SLUICE_IMAGES_FILE = "sluice_images.json";

/** One image to export. */
export interface YoloExportImage {
  /** Sluice image id. */
  id: string;
  /** File name to write under `images/<split>/` (made unique when two collide). */
  fileName: string;
  width: number;
  height: number;
  /** Ultralytics layout: the split; ignored by the `classes` layout. */
  split?: "train" | "val" | "test";
}

/** What to export. */
export interface YoloExportOptions {
  dir: string;
  task: YoloTask;
  layout?: "ultralytics" | "classes";
  /** Class names in class-id order. Labels not listed are skipped (reported as unknown). */
  names: readonly string[];
  images: readonly YoloExportImage[];
  /** An image with an entry gets a label file (empty when the entry is []); without, none. */
  annotationsByImage: ByImage<readonly AnnotationInput[]>;
  /** Reads an image's bytes; without it, only labels and `data.yaml` are written. */
  imageBytes?: (image: YoloExportImage) => Promise<Uint8Array>;
}

/** What an export wrote. */
export interface YoloExportSummary {
  dir: string;
  images: number;
  imagesWritten: number;
  labelFiles: number;
  objects: number;
  problems: AnnotationProblem[];
  splits: Record<string, number>;
}

function uniqueName(name: string, id: string, taken: Set<string>): string {
  const base = name.split(/[\\/]/).pop() || `${id}.jpg`;
  let out = base;
  if (taken.has(out.toLowerCase())) {
    const dot = base.lastIndexOf(".");
    const stem = dot > 0 ? base.slice(0, dot) : base;
    const ext = dot > 0 ? base.slice(dot) : "";
    out = `${stem}-${id}${ext}`;
  }
  taken.add(out.toLowerCase());
  return out;
}

function stemOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

/**
 * Writes a dataset. The `ultralytics` layout writes `data.yaml` with `path` set to the absolute
 * dataset directory, `train: images/train`, `val: images/val` (and `test` when an image is in
 * it), so `yolo train data=<dir>/data.yaml` works from any working directory.
 *
 * @example
 * ```ts
 * const s = await writeYoloDataset({ dir: "/tmp/ds", task: "segment", names, images, annotationsByImage });
 * console.log(s.splits); // { train: 80, val: 20 }
 * ```
 */
export async function writeYoloDataset(opts: YoloExportOptions): Promise<YoloExportSummary> {
  const layout = opts.layout ?? "ultralytics";
  const dir = resolve(opts.dir);
  const classIds = new Map<string, number>();
  opts.names.forEach((n, i) => {
    if (!classIds.has(n)) classIds.set(n, i);
  });
  const summary: YoloExportSummary = {
    dir,
    images: opts.images.length,
    imagesWritten: 0,
    labelFiles: 0,
    objects: 0,
    problems: [],
    splits: {},
  };
  const taken = new Map<string, Set<string>>();
  const sidecar: Record<string, string> = {};
  for (const img of opts.images) {
    const split = layout === "ultralytics" ? img.split ?? "train" : "";
    summary.splits[split || "all"] = (summary.splits[split || "all"] ?? 0) + 1;
    const seen = taken.get(split) ?? new Set<string>();
    taken.set(split, seen);
    const name = uniqueName(img.fileName, img.id, seen);
    const imageRel = split ? `images/${split}/${name}` : `images/${name}`;
    const labelRel = split ? `labels/${split}/${stemOf(name)}.txt` : `labels/${stemOf(name)}.txt`;
    sidecar[imageRel] = img.id;
    if (opts.imageBytes) {
      await mkdir(dirname(join(dir, imageRel)), { recursive: true });
      await writeFile(join(dir, imageRel), await opts.imageBytes(img));
      summary.imagesWritten++;
    }
    const anns = lookupByImage(opts.annotationsByImage, img.id);
    if (anns === undefined) continue;
    const out = formatYoloLabels(anns, img, classIds, opts.task);
    await mkdir(dirname(join(dir, labelRel)), { recursive: true });
    await writeFile(join(dir, labelRel), out.text);
    summary.labelFiles++;
    summary.objects += out.objects;
    for (const p of out.problems) {
      summary.problems.push({
        path: `${labelRel} ${p.path} (image ${img.id})`,
        problem: p.problem,
      });
    }
  }
  await mkdir(dir, { recursive: true });
  if (layout === "ultralytics") {
    await writeFile(
      join(dir, "data.yaml"),
      formatDataYaml({
        path: dir,
        train: "images/train",
        val: "images/val",
        ...(summary.splits.test ? { test: "images/test" } : {}),
        names: opts.names,
      }),
    );
    for (const s of ["train", "val"]) {
      await mkdir(join(dir, "images", s), { recursive: true });
      await mkdir(join(dir, "labels", s), { recursive: true });
    }
  } else {
    await writeFile(join(dir, "classes.txt"), opts.names.map((n) => n + "\n").join(""));
    await mkdir(join(dir, "images"), { recursive: true });
    await mkdir(join(dir, "labels"), { recursive: true });
  }
  await writeFile(join(dir, SLUICE_IMAGES_FILE), JSON.stringify(sidecar, null, 2) + "\n");
  return summary;
}

// ---- import ------------------------------------------------------------------------------------

/** One imported image. */
export interface YoloImageImport {
  /** Path relative to the dataset directory. */
  path: string;
  split: string | null;
  width: number;
  height: number;
  imageRef: ImageRef;
  /** True when a label file exists (an empty one means "no objects"). */
  labelled: boolean;
  annotations: AnnotationInput[];
  problems: AnnotationProblem[];
}

/** A label file with no image beside it: matched by file stem, read once a size is known. */
export interface YoloLabelOnly {
  /** The label file, relative to the dataset directory. */
  path: string;
  split: string | null;
  /** No URL or file name of an image: `stems` (the label file's name without `.txt`). */
  imageRef: ImageRef;
  text: string;
}

/** A dataset read from disk. */
export interface YoloImport {
  dir: string;
  layout: "ultralytics" | "classes";
  names: string[];
  images: YoloImageImport[];
  /** Label files without an image (label-only exports); see {@link parseLabelOnly}. */
  labelOnly: YoloLabelOnly[];
  /** Problems that belong to no image. */
  problems: AnnotationProblem[];
  /** Images that could not be read. */
  failures: AnnotationFormatError[];
}

/** Import options. */
export interface YoloImportOptions {
  /** See {@link parseYoloLabels}; default `auto`. */
  task?: YoloTask | "auto";
  /** Class names to use instead of the dataset's own (e.g. from a label config). */
  names?: readonly string[];
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function listImages(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (YOLO_IMAGE_EXTENSIONS.includes(e.name.split(".").pop()!.toLowerCase())) out.push(p);
    }
  };
  await walk(root);
  return out;
}

/** Ultralytics `img2label_paths`: the last `/images/` becomes `/labels/`, the suffix `.txt`. */
export function labelPathFor(imagePath: string): string {
  const a = `${sep}images${sep}`;
  const i = imagePath.lastIndexOf(a);
  const swapped = i < 0
    ? imagePath
    : imagePath.slice(0, i) + `${sep}labels${sep}` + imagePath.slice(i + a.length);
  const dot = swapped.lastIndexOf(".");
  return (dot > swapped.lastIndexOf(sep) ? swapped.slice(0, dot) : swapped) + ".txt";
}

async function imageSize(path: string): Promise<{ width: number; height: number }> {
  const m = await sharp(path, { limitInputPixels: false }).metadata();
  if (!m.width || !m.height) throw new Error("no width/height in the image header");
  const turned = (m.orientation ?? 1) >= 5;
  return turned ? { width: m.height, height: m.width } : { width: m.width, height: m.height };
}

/** Where a dataset's class names and images are, by its layout. */
async function readLayout(root: string): Promise<{
  layout: YoloImport["layout"];
  names: string[];
  sources: { split: string | null; files: string[] }[];
}> {
  let names: string[];
  let layout: YoloImport["layout"];
  const sources: { split: string | null; files: string[] }[] = [];
  const yamlFile = ["data.yaml", "data.yml", "dataset.yaml"].map((f) => join(root, f));
  const found = (await Promise.all(yamlFile.map(exists))).findIndex((x) => x);
  if (found >= 0) {
    layout = "ultralytics";
    const file = yamlFile[found];
    let doc;
    try {
      doc = parseDataYaml(await readFile(file, "utf8"));
    } catch (err) {
      throw new AnnotationFormatError(file, "$", (err as Error).message, { cause: err });
    }
    names = doc.names;
    const base = doc.path === null
      ? root
      : isAbsolute(doc.path)
      ? doc.path
      : resolve(dirname(file), doc.path);
    // A data.yaml written elsewhere (absolute path that no longer exists): use its directory.
    const baseDir = (await exists(base)) ? base : root;
    for (const split of ["train", "val", "test"] as const) {
      const files: string[] = [];
      for (const entry of doc[split]) {
        const p = isAbsolute(entry) ? entry : join(baseDir, entry);
        if (p.endsWith(".txt")) {
          const text = await readFile(p, "utf8");
          for (const l of text.split(/\r?\n/).map((s) => s.trim()).filter(Boolean)) {
            files.push(isAbsolute(l) ? l : resolve(dirname(p), l));
          }
        } else files.push(...await listImages(p));
      }
      if (files.length > 0) sources.push({ split, files });
    }
  } else {
    layout = "classes";
    const classesFile = [join(root, "classes.txt"), join(root, "obj.names")];
    const which = (await Promise.all(classesFile.map(exists))).findIndex((x) => x);
    if (which < 0) {
      throw new AnnotationFormatError(
        root,
        "$",
        "expected data.yaml (Ultralytics) or classes.txt / obj.names (Label Studio, CVAT), found neither",
      );
    }
    names = (await readFile(classesFile[which], "utf8")).split(/\r?\n/).map((s) => s.trim())
      .filter((s) => s !== "");
    sources.push({ split: null, files: await listImages(root) });
  }
  return { layout, names, sources };
}

/**
 * The label files that no image read (`seen`) belongs to: under `labels/` (Ultralytics, Label
 * Studio) and CVAT's `obj_<subset>_data/` directories, in name order.
 */
async function labelsWithoutImage(
  root: string,
  seen: Set<string>,
): Promise<{ path: string; split: string | null }[]> {
  const out: { path: string; split: string | null }[] = [];
  const walk = async (d: string, split: string | null) => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p, split ?? (SPLITS.has(e.name) ? e.name : null));
      else if (e.name.endsWith(".txt") && !seen.has(resolve(p))) out.push({ path: p, split });
    }
  };
  await walk(join(root, "labels"), null);
  const top = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const e of top) {
    const cvat = /^obj_(\w+)_data$/.exec(e.name);
    if (e.isDirectory() && cvat) await walk(join(root, e.name), cvat[1]);
  }
  return out;
}

const SPLITS = new Set(["train", "val", "test"]);

/**
 * The objects of a label-only file, in the pixels of an image of `size` (the matched image's):
 * exactly what {@link readYoloDataset} reads from a label file beside an image of that size.
 *
 * @example
 * ```ts
 * const { annotations } = parseLabelOnly(ds.labelOnly[0], { width: 640, height: 480 }, ds.names);
 * ```
 */
export function parseLabelOnly(
  item: YoloLabelOnly,
  size: { width: number; height: number },
  names: readonly string[],
  opts: YoloImportOptions = {},
): { annotations: AnnotationInput[]; problems: AnnotationProblem[] } {
  return parseYoloLabels(item.text, size, names, {
    file: item.path,
    ...(opts.task ? { task: opts.task } : {}),
  });
}

/**
 * Reads a dataset directory (either layout; `data.yaml` wins when both are present). Relative
 * `path` in `data.yaml` is taken relative to the YAML file's directory.
 *
 * @example
 * ```ts
 * const { names, images } = await readYoloDataset("/data/coco8", { task: "detect" });
 * ```
 */
export async function readYoloDataset(
  dir: string,
  opts: YoloImportOptions = {},
): Promise<YoloImport> {
  const root = resolve(dir);
  const problems: AnnotationProblem[] = [];
  const failures: AnnotationFormatError[] = [];
  const read = await readLayout(root);
  const { layout, sources } = read;
  let { names } = read;
  if (opts.names) names = [...opts.names];
  let sidecar: Record<string, string> = {};
  try {
    sidecar = JSON.parse(await readFile(join(root, SLUICE_IMAGES_FILE), "utf8"));
  } catch {
    sidecar = {};
  }

  const images: YoloImageImport[] = [];
  const seenLabels = new Set<string>();
  for (const { split, files } of sources) {
    for (const file of files) {
      const rel = relative(root, file).split(sep).join("/");
      let size;
      try {
        size = await imageSize(file);
      } catch (err) {
        failures.push(
          new AnnotationFormatError(rel, "$", `image header unreadable: ${(err as Error).message}`),
        );
        continue;
      }
      const labelFile = labelPathFor(file);
      const labelRel = relative(root, labelFile).split(sep).join("/");
      let text: string | null = null;
      try {
        text = await readFile(labelFile, "utf8");
        seenLabels.add(resolve(labelFile));
      } catch {
        text = null;
      }
      const parsed = text === null
        ? { annotations: [], problems: [] }
        : parseYoloLabels(text, size, names, {
          file: labelRel,
          ...(opts.task ? { task: opts.task } : {}),
        });
      const sluiceId = typeof sidecar[rel] === "string" ? sidecar[rel] : null;
      const imageRef = imageRefFromUrl(rel, sluiceId);
      // Label Studio's YOLO export names uploaded images `<hash>-<name>`.
      const bare = withoutUploadPrefix(imageRef.fileName);
      if (bare && !imageRef.candidates.includes(bare)) imageRef.candidates.push(bare);
      images.push({
        path: rel,
        split,
        width: size.width,
        height: size.height,
        imageRef,
        labelled: text !== null,
        annotations: parsed.annotations,
        problems: parsed.problems,
      });
    }
  }
  // Label files with no image beside them: a label-only export, matched by file stem later.
  const labelOnly: YoloLabelOnly[] = [];
  for (const { path, split } of await labelsWithoutImage(root, seenLabels)) {
    const rel = relative(root, path).split(sep).join("/");
    const stem = stemOf(rel.split("/").pop()!);
    // Label Studio names uploads `<hash>-<name>`; its label files keep the prefix.
    const bare = withoutUploadPrefix(stem);
    const sluiceId = typeof sidecar[rel] === "string" ? sidecar[rel] : null;
    const imageRef: ImageRef = {
      url: rel,
      fileName: stem,
      candidates: [],
      stems: bare ? [stem, bare] : [stem],
      ...(sluiceId ? { sluiceImageId: sluiceId } : {}),
    };
    labelOnly.push({ path: rel, split, imageRef, text: await readFile(path, "utf8") });
  }
  return { dir: root, layout, names, images, labelOnly, problems, failures };
}
