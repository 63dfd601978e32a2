/**
 * Label Studio label configs (the project's "labeling interface" XML): which Image tags exist
 * (`to_name`, and the task `data` key from `value="$key"`), which region controls point at them
 * (`RectangleLabels`, `PolygonLabels`, ... : the `from_name`), and the labels with their category
 * ids.
 *
 * Category ids follow label-studio-converter (`Converter._get_labels`), so that Sluice's YOLO
 * class ids and COCO category ids equal Label Studio's own exports: labels with an explicit
 * `category="N"` keep N; the others are sorted by name and take the smallest free ids from 0 up.
 * Two labels with the same `category`, or an `alias` that names a different label, are errors.
 * A label's `alias` is accepted as another name for it on import.
 *
 * @example
 * ```ts
 * const cfg = parseLabelConfig(`<View><Image name="img" value="$image"/>
 *   <RectangleLabels name="box" toName="img"><Label value="cat"/><Label value="dog"/></RectangleLabels>
 * </View>`);
 * cfg.categoryIds.get("dog"); // 1
 * cfg.rectangle; // { name: "box", toName: "img", ... }
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import { SluiceError } from "../errors/mod.ts";
import { descendants, parseXml, XmlSyntaxError } from "./_xml.ts";

/** The config is not XML, or is not a usable image-labelling config. */
export class LabelConfigError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super("bad_label_config", `label config: ${message}`, options);
    this.name = "LabelConfigError";
  }
}

/** Region control tags Sluice can read and write. */
export type RegionControlType = "rectanglelabels" | "polygonlabels";

/** One control tag (`RectangleLabels`, `PolygonLabels`, `Labels`, ...). */
export interface LabelControl {
  /** The tag name lowercased, as result `type`s spell it (`rectanglelabels`). */
  type: string;
  /** `from_name` of its results. */
  name: string;
  /** `to_name`: the object tag it labels. */
  toName: string;
  /** `<Label value>`s in document order. */
  labels: string[];
}

/** One `Image` object tag. */
export interface LabelImage {
  name: string;
  /** The task `data` key (`value="$image"` → `image`). */
  dataKey: string;
}

/** A parsed config. */
export interface LabelConfig {
  images: LabelImage[];
  controls: LabelControl[];
  /** The first `RectangleLabels` control, if any. */
  rectangle: LabelControl | null;
  /** The first `PolygonLabels` control, if any. */
  polygon: LabelControl | null;
  /** Label → category id (label-studio-converter's rule; see the module doc). */
  categoryIds: Map<string, number>;
  /** Labels in category id order (YOLO `names`, `classes.txt`). */
  labels: string[];
  /** Alias → label. */
  aliases: Map<string, string>;
}

const LABEL_PARENTS = new Set([
  "rectanglelabels",
  "polygonlabels",
  "labels",
  "keypointlabels",
  "brushlabels",
  "ellipselabels",
]);

/**
 * Parses a label config. Throws {@link LabelConfigError} for XML errors, a config without an
 * Image tag, controls pointing at an unknown tag, and category collisions.
 *
 * @example
 * ```ts
 * parseLabelConfig('<View><Image name="i" value="$img"/></View>').images; // [{ name: "i", dataKey: "img" }]
 * ```
 */
export function parseLabelConfig(xml: string): LabelConfig {
  let root;
  try {
    root = parseXml(xml);
  } catch (err) {
    if (err instanceof XmlSyntaxError) {
      throw new LabelConfigError(`expected XML, found: ${err.message}`, { cause: err });
    }
    throw err;
  }
  const all = [root, ...descendants(root)];
  const images: LabelImage[] = [];
  const controls: LabelControl[] = [];
  const explicit = new Map<string, number>();
  const aliases = new Map<string, string>();
  const labelSet = new Set<string>();
  for (const el of all) {
    const type = el.name.toLowerCase();
    if (type === "image") {
      const name = el.attributes.name;
      const value = el.attributes.value ?? "";
      if (!name) throw new LabelConfigError("expected a name on <Image>");
      if (!value.startsWith("$") || value.length < 2) {
        throw new LabelConfigError(
          `<Image name="${name}">: expected value="$key", found ${JSON.stringify(value)}`,
        );
      }
      images.push({ name, dataKey: value.slice(1) });
    } else if (
      LABEL_PARENTS.has(type) || type === "rectangle" || type === "polygon"
    ) {
      const name = el.attributes.name, toName = el.attributes.toName;
      if (!name || !toName) {
        throw new LabelConfigError(`<${el.name}>: expected name and toName attributes`);
      }
      const labels: string[] = [];
      for (const l of el.children.filter((c) => c.name === "Label")) {
        const value = l.attributes.value;
        if (!value) {
          throw new LabelConfigError(`<${el.name} name="${name}">: <Label> without value`);
        }
        labels.push(value);
        labelSet.add(value);
        const alias = l.attributes.alias;
        if (alias !== undefined && alias !== value) {
          const prior = aliases.get(alias);
          if (prior !== undefined && prior !== value) {
            throw new LabelConfigError(
              `alias "${alias}" names both "${prior}" and "${value}"`,
            );
          }
          aliases.set(alias, value);
        }
        const cat = l.attributes.category;
        if (cat !== undefined) {
          if (!/^\d+$/.test(cat)) {
            throw new LabelConfigError(
              `<Label value="${value}">: expected category="N" (an integer ≥ 0), found "${cat}"`,
            );
          }
          const n = Number(cat);
          const prior = explicit.get(value);
          if (prior !== undefined && prior !== n) {
            throw new LabelConfigError(
              `label "${value}" has category ${prior} and ${n} in different controls`,
            );
          }
          explicit.set(value, n);
        }
      }
      controls.push({ type, name, toName, labels });
    }
  }
  if (images.length === 0) {
    throw new LabelConfigError("expected an <Image> tag, found none (not an image project)");
  }
  const imageNames = new Set(images.map((i) => i.name));
  for (const c of controls) {
    if (!imageNames.has(c.toName)) {
      throw new LabelConfigError(
        `<${c.type} name="${c.name}"> has toName="${c.toName}", expected one of the Image tags: ${
          [...imageNames].join(", ")
        }`,
      );
    }
  }
  for (const [alias, value] of aliases) {
    if (labelSet.has(alias)) {
      throw new LabelConfigError(`alias "${alias}" of "${value}" is also a label of its own`);
    }
  }
  const categoryIds = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const [label, id] of explicit) {
    const other = byId.get(id);
    if (other !== undefined) {
      throw new LabelConfigError(`category ${id} is given to both "${other}" and "${label}"`);
    }
    byId.set(id, label);
    categoryIds.set(label, id);
  }
  let next = 0;
  while (byId.has(next)) next++;
  for (const label of [...labelSet].filter((l) => !explicit.has(l)).sort()) {
    categoryIds.set(label, next);
    byId.set(next, label);
    while (byId.has(next)) next++;
  }
  const labels = [...categoryIds].sort((a, b) => a[1] - b[1]).map(([l]) => l);
  return {
    images,
    controls,
    rectangle: controls.find((c) => c.type === "rectanglelabels") ?? null,
    polygon: controls.find((c) => c.type === "polygonlabels") ?? null,
    categoryIds,
    labels,
    aliases,
  };
}

/**
 * Reads and parses a label config file.
 *
 * @example
 * ```ts
 * const cfg = await readLabelConfig("project/config.xml");
 * ```
 */
export async function readLabelConfig(path: string): Promise<LabelConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new LabelConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parseLabelConfig(text);
  } catch (err) {
    if (err instanceof LabelConfigError) {
      throw new LabelConfigError(`${path}: ${err.message.replace(/^label config: /, "")}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** The names a Label Studio export or prediction set needs from a config. */
export interface LabelStudioNames {
  fromName: string;
  toName: string;
  dataKey: string;
  polygonFromName: string;
}

/**
 * The `from_name`/`to_name`/data key to write for rectangles and polygons. Throws
 * {@link LabelConfigError} when the config has no control of a kind that is needed (a
 * rectangle is always needed; a polygon control only when `needPolygons`), or when the given
 * `labels` include one that the config lacks: Label Studio would reject the import.
 *
 * @example
 * ```ts
 * namesFromLabelConfig(cfg, { labels: ["cat"] }); // { fromName: "box", toName: "img", dataKey: "image", ... }
 * ```
 */
export function namesFromLabelConfig(
  cfg: LabelConfig,
  opts: { needPolygons?: boolean; labels?: Iterable<string> } = {},
): LabelStudioNames {
  const rect = cfg.rectangle;
  if (!rect) {
    throw new LabelConfigError(
      `expected a <RectangleLabels> control, found ${
        cfg.controls.map((c) => `<${c.type} name="${c.name}">`).join(", ") || "none"
      }`,
    );
  }
  const poly = cfg.polygon;
  if (opts.needPolygons && !poly) {
    throw new LabelConfigError(
      "polygons are written as polygons, but the config has no <PolygonLabels> control",
    );
  }
  const image = cfg.images.find((i) => i.name === rect.toName)!;
  if (opts.labels) {
    const missing = [...new Set(opts.labels)].filter((l) =>
      !cfg.categoryIds.has(l) && !cfg.aliases.has(l)
    );
    if (missing.length > 0) {
      throw new LabelConfigError(
        `labels ${missing.map((m) => JSON.stringify(m)).join(", ")} are not in the config (it has ${
          cfg.labels.map((m) => JSON.stringify(m)).join(", ")
        })`,
      );
    }
  }
  return {
    fromName: rect.name,
    toName: rect.toName,
    dataKey: image.dataKey,
    polygonFromName: poly?.name ?? "polygon",
  };
}

/**
 * The label a name stands for (itself, or the label whose alias it is), or null when the config
 * has neither.
 *
 * @example
 * ```ts
 * canonicalLabel(cfg, "C"); // "cat" when <Label value="cat" alias="C"/>
 * ```
 */
export function canonicalLabel(cfg: LabelConfig, name: string): string | null {
  if (cfg.categoryIds.has(name)) return name;
  return cfg.aliases.get(name) ?? null;
}
