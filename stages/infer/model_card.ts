/**
 * What the infer stage must know about a detector to feed it and read it: the input tensor's
 * name and size, the output names, the stride, the labels and their category ids, and the
 * decoding settings. It comes from the trainer's `model_card.json` (format
 * `sluice-centernet/1`, see `stages/train/trainer/export_onnx.py`), falling back to
 * `labels.json` plus the ONNX graph's own input and output shapes.
 *
 * @example
 * ```ts
 * const spec = detectorSpec(card, null, session.info);
 * spec.inputWidth; // 320
 * spec.labels;     // ["circle", "rectangle", "triangle"]
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";

/** Input and output names and shapes of a loaded ONNX graph (dims are numbers or symbols). */
export interface GraphInfo {
  inputNames: string[];
  outputNames: string[];
  inputShapes: Record<string, (number | string)[]>;
  outputShapes: Record<string, (number | string)[]>;
}

/** Decoding settings (see common/detector/decode.ts). */
export interface DecodeSettings {
  scoreThreshold: number;
  preNmsTopK: number;
  nmsIou: number;
  topK: number;
  /** The graph already applies NMS: decoding must not apply it again. */
  nmsInGraph: boolean;
}

/** Everything inference needs to know about one detector. */
export interface DetectorSpec {
  format: string;
  inputName: string;
  inputWidth: number;
  inputHeight: number;
  outputs: { heatmap: string; size: string; offset: string };
  stride: number;
  /** Class names in class-index order. */
  labels: string[];
  /** COCO category id of each class (same order as `labels`). */
  categoryIds: number[];
  decode: DecodeSettings;
}

/** The model's files or graph do not describe a usable detector. */
export class ModelCardError extends SluiceError {
  constructor(message: string) {
    super("invalid_model", message);
    this.name = "ModelCardError";
  }
}

const dim = z.union([z.number(), z.string()]);

/** The parts of `model_card.json` inference reads; other fields are kept but ignored. */
export const ModelCardSchema = z.looseObject({
  format: z.string().default("sluice-centernet/1"),
  input: z.looseObject({
    name: z.string().min(1).default("images"),
    shape: z.array(dim).length(4).optional(),
  }).optional(),
  outputs: z.array(z.looseObject({ name: z.string().min(1), shape: z.array(dim).optional() }))
    .optional(),
  stride: z.int().min(1).optional(),
  labels: z.array(z.string().min(1)).min(1).optional(),
  category_ids: z.array(z.int()).optional(),
  decode: z.looseObject({
    score_threshold: z.number().min(0).max(1).optional(),
    pre_nms_top_k: z.int().min(1).optional(),
    nms_iou: z.number().min(0).max(1).optional(),
    top_k: z.int().min(1).optional(),
    nms_in_graph: z.boolean().optional(),
  }).optional(),
});

/** The parsed card. */
export type ModelCard = z.output<typeof ModelCardSchema>;

const LabelsSchema = z.array(z.string().min(1)).min(1);

/** Decoding defaults of the trainer (`stages/train/trainer/decode.py` DEFAULTS). */
export const DECODE_DEFAULTS: Readonly<DecodeSettings> = {
  scoreThreshold: 0.05,
  preNmsTopK: 100,
  nmsIou: 0.5,
  topK: 100,
  nmsInGraph: false,
};

function problems(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

function fixed(d: number | string | undefined): number | null {
  return typeof d === "number" && Number.isInteger(d) && d > 0 ? d : null;
}

/**
 * Builds the detector spec from the card (or null), the labels file (or null) and the graph.
 * Throws {@link ModelCardError} naming what is missing or inconsistent.
 *
 * @example
 * ```ts
 * const spec = detectorSpec(JSON.parse(cardText), null, graph);
 * ```
 */
export function detectorSpec(
  cardJson: unknown | null,
  labelsJson: unknown | null,
  graph: GraphInfo,
): DetectorSpec {
  let card: ModelCard | null = null;
  if (cardJson !== null && cardJson !== undefined) {
    const parsed = ModelCardSchema.safeParse(cardJson);
    if (!parsed.success) {
      throw new ModelCardError(
        `model_card.json: expected a model card, found ${problems(parsed.error)}`,
      );
    }
    card = parsed.data;
  }
  let labels = card?.labels;
  if (!labels && labelsJson !== null && labelsJson !== undefined) {
    const parsed = LabelsSchema.safeParse(labelsJson);
    if (!parsed.success) {
      throw new ModelCardError(
        `labels.json: expected a non-empty list of label names, found ${problems(parsed.error)}`,
      );
    }
    labels = parsed.data;
  }
  if (!labels) {
    throw new ModelCardError(
      "model files: expected labels in model_card.json or labels.json, found neither",
    );
  }

  const inputName = card?.input?.name ??
    (graph.inputNames.length === 1 ? graph.inputNames[0] : "images");
  if (!graph.inputNames.includes(inputName)) {
    throw new ModelCardError(
      `model graph: expected an input named "${inputName}", found [${graph.inputNames.join(", ")}]`,
    );
  }
  const gShape = graph.inputShapes[inputName] ?? [];
  const cShape = card?.input?.shape;
  const inputHeight = fixed(cShape?.[2]) ?? fixed(gShape[2]);
  const inputWidth = fixed(cShape?.[3]) ?? fixed(gShape[3]);
  if (inputWidth === null || inputHeight === null) {
    throw new ModelCardError(
      `model input "${inputName}": expected a fixed [batch, 3, H, W] size, found ` +
        `[${(cShape ?? gShape).join(", ")}]`,
    );
  }
  const channels = fixed(gShape[1]) ?? fixed(cShape?.[1]);
  if (channels !== null && channels !== 3) {
    throw new ModelCardError(
      `model input "${inputName}": expected 3 (RGB) channels, found ${channels}`,
    );
  }

  const outputs = { heatmap: "heatmap", size: "size", offset: "offset" };
  for (const name of Object.values(outputs)) {
    if (!graph.outputNames.includes(name)) {
      throw new ModelCardError(
        `model graph: expected outputs heatmap, size and offset, found [${
          graph.outputNames.join(", ")
        }]`,
      );
    }
  }
  const hm = graph.outputShapes[outputs.heatmap] ?? [];
  const classes = fixed(hm[1]);
  if (classes !== null && classes !== labels.length) {
    throw new ModelCardError(
      `model heatmap: expected ${labels.length} classes (one per label), found ${classes}`,
    );
  }
  const mapWidth = fixed(hm[3]);
  const stride = card?.stride ?? (mapWidth ? Math.round(inputWidth / mapWidth) : 4);

  const categoryIds = card?.category_ids ?? labels.map((_, i) => i + 1);
  if (categoryIds.length !== labels.length) {
    throw new ModelCardError(
      `model_card.json: expected one category id per label (${labels.length}), found ${categoryIds.length}`,
    );
  }
  const d = card?.decode ?? {};
  return {
    format: card?.format ?? "sluice-centernet/1",
    inputName,
    inputWidth,
    inputHeight,
    outputs,
    stride,
    labels: [...labels],
    categoryIds: [...categoryIds],
    decode: {
      scoreThreshold: d.score_threshold ?? DECODE_DEFAULTS.scoreThreshold,
      preNmsTopK: d.pre_nms_top_k ?? DECODE_DEFAULTS.preNmsTopK,
      nmsIou: d.nms_iou ?? DECODE_DEFAULTS.nmsIou,
      topK: d.top_k ?? DECODE_DEFAULTS.topK,
      nmsInGraph: d.nms_in_graph ?? false,
    },
  };
}
