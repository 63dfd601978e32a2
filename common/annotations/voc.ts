/**
 * Pascal VOC annotation XML (one file per image, as the VOC devkit defines it and CVAT, Roboflow
 * and labelImg exchange it): `<annotation>` with `<filename>`, `<size>` (`width`, `height`,
 * `depth`), `<segmented>`, and one `<object>` per instance with `<name>`, `<pose>`,
 * `<truncated>`, `<difficult>` and `<bndbox>` (`xmin`, `ymin`, `xmax`, `ymax`).
 *
 * Coordinates: the devkit numbers pixels from 1 and `xmax` is the last pixel INSIDE the box, so a
 * Sluice box `[x, y, w, h]` (continuous, origin at the top-left corner of pixel 0) is
 * `xmin = x + 1, ymin = y + 1, xmax = x + w, ymax = y + h` (`origin: 1`, the default). Many tools
 * write 0-based corners instead (`xmin = x, xmax = x + w`; Label Studio's converter, CVAT's
 * Datumaro): pick `origin: 0` for them. Values are written unrounded; integers read as well.
 *
 * VOC has no polygons or rotated boxes. Sluice writes the box and, for a polygon, a
 * `<polygon><x1/><y1/>…</polygon>` element (the extension Roboflow writes) plus `<rotation>` for
 * rotated boxes; other readers ignore both, Sluice reads them back, so LS → VOC → LS keeps the
 * shape. `<truncated>1` marks boxes clipped at the border. An image whose XML has no `<object>`
 * is "reviewed, nothing there"; an image without XML is unlabelled.
 *
 * @example
 * ```ts
 * const xml = formatVocXml({ fileName: "a.jpg", width: 640, height: 480 }, [{ label: "cat", bbox: [0, 0, 10, 10] }]);
 * parseVocXml(xml).annotations[0].bbox; // [0, 0, 10, 10]
 * ```
 * @module
 */
import type { AnnotationInput, BBox } from "../manifest/mod.ts";
import { AnnotationFormatError, type AnnotationProblem } from "./errors.ts";
import { clipBox, envelope, type Point } from "./geometry.ts";
import { rotatedRectangle } from "./rotated_box.ts";
import { child, childrenNamed, escapeXml, parseXml, type XmlElement } from "./_xml.ts";
import { type ImageRef, imageRefFromUrl } from "./image_match.ts";

/** Which pixel numbering the corners use (see the module doc). */
export type VocOrigin = 0 | 1;

/** The image a VOC file describes. */
export interface VocImage {
  fileName: string;
  width: number;
  height: number;
  /** Channels (default 3). */
  depth?: number;
  folder?: string;
  /** Written as `<sluice_image_id>` so that a re-import matches the exact image. */
  sluiceImageId?: string;
}

const num = (n: number) => String(Math.abs(n) < 1e-12 ? 0 : n);

/**
 * One VOC XML document. Boxes outside the image are clipped to it (`<truncated>1`); annotations
 * with nothing inside are left out and reported.
 *
 * @example
 * ```ts
 * formatVocXml({ fileName: "a.jpg", width: 10, height: 10 }, [], { origin: 0 });
 * ```
 */
export function formatVocXml(
  image: VocImage,
  annotations: readonly AnnotationInput[],
  opts: { origin?: VocOrigin; problems?: AnnotationProblem[] } = {},
): string {
  const o = opts.origin ?? 1;
  const out: string[] = ["<annotation>"];
  out.push(`  <folder>${escapeXml(image.folder ?? "JPEGImages")}</folder>`);
  out.push(`  <filename>${escapeXml(image.fileName)}</filename>`);
  if (image.sluiceImageId) {
    out.push(`  <sluice_image_id>${escapeXml(image.sluiceImageId)}</sluice_image_id>`);
  }
  out.push("  <source><database>Sluice</database></source>");
  out.push(
    `  <size><width>${image.width}</width><height>${image.height}</height><depth>${
      image.depth ?? 3
    }</depth></size>`,
  );
  out.push("  <segmented>0</segmented>");
  annotations.forEach((a, i) => {
    const box = clipBox(a.bbox, image.width, image.height);
    if (!box) {
      opts.problems?.push({ path: `$[${i}]`, problem: "box lies outside the image: skipped" });
      return;
    }
    const truncated = box[0] !== a.bbox[0] || box[1] !== a.bbox[1] || box[2] !== a.bbox[2] ||
      box[3] !== a.bbox[3];
    out.push("  <object>");
    out.push(`    <name>${escapeXml(a.label)}</name>`);
    out.push("    <pose>Unspecified</pose>");
    out.push(`    <truncated>${truncated ? 1 : 0}</truncated>`);
    out.push("    <difficult>0</difficult>");
    out.push(
      `    <bndbox><xmin>${num(box[0] + o)}</xmin><ymin>${num(box[1] + o)}</ymin><xmax>${
        num(box[0] + box[2])
      }</xmax><ymax>${num(box[1] + box[3])}</ymax></bndbox>`,
    );
    if (a.polygon && a.polygon.length >= 3) {
      const pts = a.polygon.map(([x, y], k) =>
        `<x${k + 1}>${num(x)}</x${k + 1}><y${k + 1}>${num(y)}</y${k + 1}>`
      ).join("");
      out.push(`    <polygon>${pts}</polygon>`);
      if (a.rotation) out.push(`    <rotation>${num(a.rotation)}</rotation>`);
    }
    if (a.score !== undefined && a.score !== null) {
      out.push(`    <confidence>${num(a.score)}</confidence>`);
    }
    out.push("  </object>");
  });
  out.push("</annotation>");
  return out.join("\n") + "\n";
}

/** One parsed VOC file. */
export interface VocImport {
  file: string;
  fileName: string;
  width: number;
  height: number;
  imageRef: ImageRef;
  annotations: AnnotationInput[];
  problems: AnnotationProblem[];
}

const text = (el: XmlElement | undefined) => el?.text.trim() ?? "";

/**
 * Reads one VOC XML document. Throws {@link AnnotationFormatError} when it is not XML, not an
 * `<annotation>`, or lacks the image size; a bad `<object>` is skipped with a problem.
 * `<difficult>1` objects are kept (COCO-style evaluation tools decide what to do with them).
 *
 * @example
 * ```ts
 * const { fileName, annotations } = parseVocXml(await Deno.readTextFile("Annotations/0001.xml"));
 * ```
 */
export function parseVocXml(
  xml: string,
  opts: { file?: string; origin?: VocOrigin; sourceRefPrefix?: string } = {},
): VocImport {
  const file = opts.file ?? "<voc xml>";
  const o = opts.origin ?? 1;
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (err) {
    throw new AnnotationFormatError(file, "$", `expected XML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (root.name !== "annotation") {
    throw new AnnotationFormatError(file, "$", `expected <annotation>, found <${root.name}>`);
  }
  const size = child(root, "size");
  const width = Number(text(size && child(size, "width")));
  const height = Number(text(size && child(size, "height")));
  if (!(width > 0 && height > 0)) {
    throw new AnnotationFormatError(
      file,
      "annotation.size",
      `expected positive <width> and <height>, found ${JSON.stringify(text(size))}`,
    );
  }
  const fileName = text(child(root, "filename")) ||
    text(child(root, "path")).split(/[\\/]/).pop() ||
    "";
  const sluiceId = text(child(root, "sluice_image_id")) || null;
  const problems: AnnotationProblem[] = [];
  const annotations: AnnotationInput[] = [];
  childrenNamed(root, "object").forEach((obj, i) => {
    const path = `annotation.object[${i}]`;
    const label = text(child(obj, "name"));
    if (!label) return problems.push({ path, problem: "object without <name>: skipped" });
    const bb = child(obj, "bndbox");
    const v = ["xmin", "ymin", "xmax", "ymax"].map((k) => Number(text(bb && child(bb, k))));
    let bbox: BBox | null = null;
    if (bb && v.every(Number.isFinite) && text(child(bb, "xmin")) !== "") {
      const [xmin, ymin, xmax, ymax] = v;
      bbox = [xmin - o, ymin - o, xmax - xmin + o, ymax - ymin + o];
      if (!(bbox[2] > 0 && bbox[3] > 0)) {
        return problems.push({
          path: `${path}.bndbox`,
          problem: `empty box (xmin ${xmin}, xmax ${xmax}, ymin ${ymin}, ymax ${ymax}): skipped`,
        });
      }
    }
    let polygon: Point[] | null = null;
    const poly = child(obj, "polygon");
    if (poly) {
      const pts: Point[] = [];
      for (let k = 1;; k++) {
        const x = child(poly, `x${k}`), y = child(poly, `y${k}`);
        if (!x || !y) break;
        pts.push([Number(text(x)), Number(text(y))]);
      }
      if (pts.length >= 3 && pts.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))) {
        polygon = pts;
      } else {
        problems.push({ path: `${path}.polygon`, problem: "polygon unreadable: kept the box" });
      }
    }
    if (!bbox && !polygon) {
      return problems.push({ path, problem: "object without <bndbox>: skipped" });
    }
    const ann: AnnotationInput = { label, bbox: bbox ?? envelope(polygon!) };
    if (polygon) {
      ann.polygon = polygon;
      ann.bbox = envelope(polygon);
      const rot = Number(text(child(obj, "rotation")));
      if (rot && Number.isFinite(rot) && rotatedRectangle(polygon)) ann.rotation = rot;
    }
    const conf = text(child(obj, "confidence"));
    if (conf !== "" && Number.isFinite(Number(conf))) ann.score = Number(conf);
    ann.sourceRef = `${opts.sourceRefPrefix ?? "voc:"}${file}#${i}`;
    annotations.push(ann);
  });
  return {
    file,
    fileName,
    width,
    height,
    imageRef: imageRefFromUrl(fileName || file, sluiceId),
    annotations,
    problems,
  };
}
