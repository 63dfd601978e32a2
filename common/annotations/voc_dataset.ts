/**
 * Pascal VOC datasets on disk, in the devkit's layout: `Annotations/<stem>.xml`,
 * `JPEGImages/<file>` and `ImageSets/Main/<split>.txt` (one stem per line). Import also accepts
 * a directory of XML files in any layout (Roboflow puts XML next to the images).
 *
 * @example
 * ```ts
 * await writeVocDataset({ dir: "voc", images, annotationsByImage });
 * const { records } = await readVocDataset("voc");
 * ```
 * @module
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import type { AnnotationInput } from "../manifest/mod.ts";
import { AnnotationFormatError, type AnnotationProblem } from "./errors.ts";
import { type ByImage, lookupByImage } from "./_by_image.ts";
import { formatVocXml, parseVocXml, type VocImport, type VocOrigin } from "./voc.ts";

/** One image to export. */
export interface VocExportImage {
  id: string;
  fileName: string;
  width: number;
  height: number;
  split?: "train" | "val" | "test";
}

/** What an export wrote. */
export interface VocExportSummary {
  dir: string;
  images: number;
  imagesWritten: number;
  xmlFiles: number;
  objects: number;
  problems: AnnotationProblem[];
}

/**
 * Writes `Annotations/`, `JPEGImages/` (when `imageBytes` is given) and, when images carry a
 * split, `ImageSets/Main/<split>.txt`. Images without an annotation entry get no XML.
 *
 * @example
 * ```ts
 * await writeVocDataset({ dir: "out", images, annotationsByImage, origin: 0 });
 * ```
 */
export async function writeVocDataset(opts: {
  dir: string;
  images: readonly VocExportImage[];
  annotationsByImage: ByImage<readonly AnnotationInput[]>;
  origin?: VocOrigin;
  imageBytes?: (image: VocExportImage) => Promise<Uint8Array>;
}): Promise<VocExportSummary> {
  const dir = resolve(opts.dir);
  await mkdir(join(dir, "Annotations"), { recursive: true });
  await mkdir(join(dir, "JPEGImages"), { recursive: true });
  const summary: VocExportSummary = {
    dir,
    images: opts.images.length,
    imagesWritten: 0,
    xmlFiles: 0,
    objects: 0,
    problems: [],
  };
  const taken = new Set<string>();
  const splits = new Map<string, string[]>();
  for (const img of opts.images) {
    let name = img.fileName.split(/[\\/]/).pop() || `${img.id}.jpg`;
    const dot = name.lastIndexOf(".");
    let stem = dot > 0 ? name.slice(0, dot) : name;
    if (taken.has(stem.toLowerCase())) {
      stem = `${stem}-${img.id}`;
      name = stem + (dot > 0 ? name.slice(dot) : "");
    }
    taken.add(stem.toLowerCase());
    if (img.split) splits.set(img.split, [...splits.get(img.split) ?? [], stem]);
    if (opts.imageBytes) {
      await writeFile(join(dir, "JPEGImages", name), await opts.imageBytes(img));
      summary.imagesWritten++;
    }
    const anns = lookupByImage(opts.annotationsByImage, img.id);
    if (anns === undefined) continue;
    const problems: AnnotationProblem[] = [];
    const xml = formatVocXml(
      { fileName: name, width: img.width, height: img.height, sluiceImageId: img.id },
      anns,
      { origin: opts.origin ?? 1, problems },
    );
    await writeFile(join(dir, "Annotations", `${stem}.xml`), xml);
    summary.xmlFiles++;
    summary.objects += anns.length - problems.length;
    for (const p of problems) {
      summary.problems.push({ path: `Annotations/${stem}.xml ${p.path}`, problem: p.problem });
    }
  }
  if (splits.size > 0) {
    await mkdir(join(dir, "ImageSets", "Main"), { recursive: true });
    for (const [split, stems] of splits) {
      await writeFile(join(dir, "ImageSets", "Main", `${split}.txt`), stems.join("\n") + "\n");
    }
  }
  return summary;
}

/** A dataset read from disk. */
export interface VocDatasetImport {
  dir: string;
  records: (VocImport & { split: string | null })[];
  failures: AnnotationFormatError[];
}

/**
 * Reads every `.xml` under `Annotations/` (or under the directory when there is none), with the
 * split from `ImageSets/Main/{train,val,test}.txt` when present.
 *
 * @example
 * ```ts
 * const { records, failures } = await readVocDataset("VOC2012", { origin: 1 });
 * ```
 */
export async function readVocDataset(
  dir: string,
  opts: { origin?: VocOrigin } = {},
): Promise<VocDatasetImport> {
  const root = resolve(dir);
  const annDir = join(root, "Annotations");
  let base = root;
  try {
    await readdir(annDir);
    base = annDir;
  } catch {
    base = root;
  }
  const files: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.toLowerCase().endsWith(".xml")) files.push(p);
    }
  };
  await walk(base);
  const splitOf = new Map<string, string>();
  for (const split of ["train", "val", "test"]) {
    try {
      const text = await readFile(join(root, "ImageSets", "Main", `${split}.txt`), "utf8");
      for (const l of text.split(/\r?\n/)) {
        if (l.trim()) splitOf.set(l.trim().split(/\s+/)[0], split);
      }
    } catch {
      // No split files: fine.
    }
  }
  const records: VocDatasetImport["records"] = [];
  const failures: AnnotationFormatError[] = [];
  for (const f of files) {
    const rel = relative(root, f).split(sep).join("/");
    try {
      const rec = parseVocXml(await readFile(f, "utf8"), {
        file: rel,
        ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
      });
      const stem = (f.split(sep).pop() ?? "").replace(/\.xml$/i, "");
      records.push({ ...rec, split: splitOf.get(stem) ?? null });
    } catch (err) {
      if (err instanceof AnnotationFormatError) failures.push(err);
      else throw err;
    }
  }
  return { dir: root, records, failures };
}
