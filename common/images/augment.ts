/**
 * Box- and polygon-aware image augmentation, reproducible from a seed.
 *
 * One augmented copy is identified by (image id, recipe name, index). Those are hashed into a
 * 32-bit seed; a mulberry32 stream turns the seed and the {@link Recipe} into a plain-JSON
 * {@link AugmentParams} object (which ops fired and with which values). Rendering depends only on
 * the input bytes, the annotations and those params, so storing the params in the manifest lets
 * any machine regenerate the copy byte for byte ({@link renderAugmentation}); the same seed gives
 * byte-identical output ({@link augment}).
 *
 * Geometry: the geometric ops (flips, quarter turns, free rotation, random resized crop, affine)
 * are composed IN RECIPE ORDER into one 2×3 matrix from common/annotations/geometry.ts, and the
 * pixels are resampled once, through that same matrix, by a bilinear warp in JS. Boxes and
 * polygons go through the identical matrix, so they follow the pixels exactly. Free rotation
 * either EXPANDS the canvas to hold the whole rotated image (`mode: "expand"`, the default;
 * nothing is cut off, corners are filled) or keeps the canvas size and CROPS what rotates out
 * (`mode: "crop"`). Strong downscales are pre-shrunk with sharp (lanczos3) to avoid aliasing.
 * After the warp, every box is clipped to the output; a box whose visible fraction is below
 * `minVisible` (default 0.3) is dropped. Pixel ops then run in recipe order: colour
 * (brightness / saturation / hue via sharp `modulate`, contrast via `linear`), blur, seeded
 * Gaussian noise generated in JS, and a JPEG re-compression round trip.
 *
 * Determinism rests on: integer PRNG, the JS warp, and libvips being deterministic for these
 * operations with a given sharp/libvips build. A different sharp version may change bytes (the
 * params still regenerate the same geometry and annotations).
 *
 * @example
 * ```ts
 * const recipe = parseRecipe({ name: "default", ops: [{ op: "hflip" }, { op: "random_resized_crop", size: [640, 640] }] });
 * const out = await augment(bytes, annotations, { recipe, imageId: "img_0123", index: 0 });
 * await manifest.complete(claim, { augmentations: [{ parentImageId, recipe: recipe.name, index: 0,
 *   seed: out.seed, params: out.params, width: out.width, height: out.height, annotations: out.annotations, ... }] });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { z } from "zod";
import {
  type Affine,
  clipBox,
  clipPolygon,
  compose,
  determinant,
  envelope,
  flipHorizontal,
  flipVertical,
  identity,
  polygonArea,
  rotate,
  rotate90,
  scale,
  shear,
  transformBox,
  transformPolygon,
  translate,
  visibleFraction,
} from "../annotations/geometry.ts";
import { SluiceError } from "../errors/mod.ts";
import type { AnnotationInput } from "../manifest/mod.ts";
import { addGaussianNoise } from "./_noise.ts";
import { warpAffine } from "./_warp.ts";
import { Prng, seedFrom } from "./prng.ts";
import { ImageError, sniffFormat } from "./verify.ts";
import { DEFAULT_DECODE_POLICY } from "./decode_policy.ts";

// ---- recipe ------------------------------------------------------------------------------------

const Probability = z.number().min(0).max(1);
const range = (min: number, max: number, lo = -Infinity, hi = Infinity) =>
  z.tuple([z.number().min(lo).max(hi), z.number().min(lo).max(hi)])
    .refine(([a, b]) => a <= b, { message: "expected [min, max] with min <= max" })
    .default([min, max]);

const OpSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("hflip"), p: Probability.default(0.5) }),
  z.strictObject({ op: z.literal("vflip"), p: Probability.default(0.5) }),
  z.strictObject({
    op: z.literal("rot90"),
    p: Probability.default(0.5),
    /** Quarter turns clockwise to choose from. */
    turns: z.array(z.union([z.literal(1), z.literal(2), z.literal(3)])).min(1).default([1, 2, 3]),
  }),
  z.strictObject({
    op: z.literal("rotate"),
    p: Probability.default(0.5),
    /** Degrees, clockwise on screen. */
    degrees: range(-15, 15, -180, 180),
    mode: z.enum(["expand", "crop"]).default("expand"),
  }),
  z.strictObject({
    op: z.literal("random_resized_crop"),
    p: Probability.default(1),
    /** Crop area as a fraction of the image area. */
    scale: range(0.3, 1, 0.01, 1),
    /** Crop aspect ratio w/h (sampled log-uniformly). */
    ratio: range(3 / 4, 4 / 3, 0.05, 20),
    /** Output size `[w, h]`; absent keeps the crop's own size (a pure crop). */
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  }),
  z.strictObject({
    op: z.literal("affine"),
    p: Probability.default(0.5),
    scale: range(0.9, 1.1, 0.05, 20),
    /** Translation as a fraction of width / height. */
    translate: range(-0.1, 0.1, -1, 1),
    /** Shear along x, degrees. */
    shear: range(0, 0, -45, 45),
  }),
  z.strictObject({
    op: z.literal("color"),
    p: Probability.default(0.5),
    brightness: range(0.8, 1.2, 0, 10),
    contrast: range(0.8, 1.2, 0, 10),
    saturation: range(0.8, 1.2, 0, 10),
    /** Hue rotation in degrees. */
    hue: range(-10, 10, -180, 180),
  }),
  z.strictObject({
    op: z.literal("blur"),
    p: Probability.default(0.2),
    sigma: range(0.5, 1.5, 0.3, 100),
  }),
  z.strictObject({
    op: z.literal("noise"),
    p: Probability.default(0.2),
    /** Standard deviation of Gaussian noise, in 8-bit levels. */
    std: range(2, 10, 0, 128),
  }),
  z.strictObject({
    op: z.literal("jpeg"),
    p: Probability.default(0.3),
    quality: range(50, 90, 1, 100),
  }),
]);

const Rgb = z.tuple([
  z.number().int().min(0).max(255),
  z.number().int().min(0).max(255),
  z.number().int().min(0).max(255),
]);

/** An augmentation recipe: ops applied in order, each with its probability `p`. */
export const RecipeSchema = z.strictObject({
  name: z.string().min(1),
  ops: z.array(OpSchema),
  /** Boxes less visible than this after all geometric ops are dropped; the rest are clipped. */
  minVisible: z.number().min(0).max(1).default(0.3),
  /** Colour of canvas areas with no source pixels (rotation corners, translation). */
  fill: Rgb.default([0, 0, 0]),
  output: z.strictObject({
    format: z.enum(["jpeg", "png", "webp"]).default("jpeg"),
    quality: z.number().int().min(1).max(100).default(90),
  }).default({ format: "jpeg", quality: 90 }),
});
export type RecipeInput = z.input<typeof RecipeSchema>;
export type Recipe = z.output<typeof RecipeSchema>;
export type RecipeOp = Recipe["ops"][number];

/**
 * Validates a recipe (throws a SluiceError `invalid_recipe` naming the bad field).
 *
 * @example
 * ```ts
 * parseRecipe({ name: "flip-only", ops: [{ op: "hflip", p: 1 }] });
 * ```
 */
export function parseRecipe(input: unknown): Recipe {
  const r = RecipeSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SluiceError(
      "invalid_recipe",
      `augmentation recipe at ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  return r.data;
}

/**
 * Short stable hash of a validated recipe (defaults filled in), for recording which recipe
 * version produced a copy.
 */
export function recipeHash(recipe: Recipe): string {
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 16);
}

// ---- params ------------------------------------------------------------------------------------

const SampledOpSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("hflip") }),
  z.strictObject({ op: z.literal("vflip") }),
  z.strictObject({
    op: z.literal("rot90"),
    turns: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  }),
  z.strictObject({
    op: z.literal("rotate"),
    degrees: z.number(),
    mode: z.enum(["expand", "crop"]),
  }),
  z.strictObject({
    op: z.literal("random_resized_crop"),
    x: z.number().int().min(0),
    y: z.number().int().min(0),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    outWidth: z.number().int().positive(),
    outHeight: z.number().int().positive(),
  }),
  z.strictObject({
    op: z.literal("affine"),
    scale: z.number().positive(),
    translateX: z.number(),
    translateY: z.number(),
    shear: z.number(),
  }),
  z.strictObject({
    op: z.literal("color"),
    brightness: z.number().min(0),
    contrast: z.number().min(0),
    saturation: z.number().min(0),
    hue: z.number(),
  }),
  z.strictObject({ op: z.literal("blur"), sigma: z.number().min(0.3) }),
  z.strictObject({ op: z.literal("noise"), std: z.number().min(0), seed: z.number().int().min(0) }),
  z.strictObject({ op: z.literal("jpeg"), quality: z.number().int().min(1).max(100) }),
]);
export type SampledOp = z.infer<typeof SampledOpSchema>;

const SizeSchema = z.strictObject({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});

/** Everything needed to regenerate one augmented copy (plain JSON; store it in the manifest). */
export const AugmentParamsSchema = z.strictObject({
  version: z.literal(1),
  recipe: z.string(),
  recipeHash: z.string(),
  seed: z.number().int().min(0),
  /** Size of the (EXIF-upright) input. */
  input: SizeSchema,
  output: SizeSchema,
  /** Input pixel → output pixel; derived from `ops`, recorded for inspection. */
  matrix: z.tuple([z.number(), z.number(), z.number(), z.number(), z.number(), z.number()]),
  ops: z.array(SampledOpSchema),
  minVisible: z.number().min(0).max(1),
  fill: Rgb,
  format: z.enum(["jpeg", "png", "webp"]),
  quality: z.number().int().min(1).max(100),
});
export type AugmentParams = z.infer<typeof AugmentParamsSchema>;

/**
 * Draws the random choices of a recipe for an input of the given size. Pure and deterministic.
 *
 * @example
 * ```ts
 * const params = sampleAugmentParams(recipe, seedFrom("img_1", recipe.name, 0), { width: 640, height: 480 });
 * ```
 */
export function sampleAugmentParams(
  recipe: Recipe,
  seed: number,
  input: { width: number; height: number },
): AugmentParams {
  const rng = new Prng(seed);
  const ops: SampledOp[] = [];
  let W = input.width, H = input.height;
  for (const op of recipe.ops) {
    // Always draw the coin, so that one op's probability does not shift the others' values.
    const fire = rng.chance(op.p);
    switch (op.op) {
      case "hflip":
      case "vflip":
        if (fire) ops.push({ op: op.op });
        break;
      case "rot90": {
        const turns = rng.pick(op.turns);
        if (fire) {
          ops.push({ op: "rot90", turns });
          if (turns % 2 === 1) [W, H] = [H, W];
        }
        break;
      }
      case "rotate": {
        const degrees = rng.uniform(op.degrees[0], op.degrees[1]);
        if (fire) {
          ops.push({ op: "rotate", degrees, mode: op.mode });
          if (op.mode === "expand") ({ width: W, height: H } = expandedSize(W, H, degrees));
        }
        break;
      }
      case "random_resized_crop": {
        const crop = sampleCrop(rng, W, H, op.scale, op.ratio);
        if (fire) {
          const [outWidth, outHeight] = op.size ?? [crop.width, crop.height];
          ops.push({ op: "random_resized_crop", ...crop, outWidth, outHeight });
          [W, H] = [outWidth, outHeight];
        }
        break;
      }
      case "affine": {
        const s = rng.uniform(op.scale[0], op.scale[1]);
        const tx = rng.uniform(op.translate[0], op.translate[1]) * W;
        const ty = rng.uniform(op.translate[0], op.translate[1]) * H;
        const sh = rng.uniform(op.shear[0], op.shear[1]);
        if (fire) ops.push({ op: "affine", scale: s, translateX: tx, translateY: ty, shear: sh });
        break;
      }
      case "color": {
        const brightness = rng.uniform(op.brightness[0], op.brightness[1]);
        const contrast = rng.uniform(op.contrast[0], op.contrast[1]);
        const saturation = rng.uniform(op.saturation[0], op.saturation[1]);
        const hue = rng.uniform(op.hue[0], op.hue[1]);
        if (fire) ops.push({ op: "color", brightness, contrast, saturation, hue });
        break;
      }
      case "blur": {
        const sigma = rng.uniform(op.sigma[0], op.sigma[1]);
        if (fire) ops.push({ op: "blur", sigma });
        break;
      }
      case "noise": {
        const std = rng.uniform(op.std[0], op.std[1]);
        const noiseSeed = rng.nextUint32();
        if (fire) ops.push({ op: "noise", std, seed: noiseSeed });
        break;
      }
      case "jpeg": {
        const quality = Math.round(rng.uniform(op.quality[0], op.quality[1]));
        if (fire) ops.push({ op: "jpeg", quality });
        break;
      }
    }
  }
  const { matrix, width, height } = geometryOf(ops, input.width, input.height);
  return {
    version: 1,
    recipe: recipe.name,
    recipeHash: recipeHash(recipe),
    seed: seed >>> 0,
    input: { width: input.width, height: input.height },
    output: { width, height },
    matrix,
    ops,
    minVisible: recipe.minVisible,
    fill: recipe.fill,
    format: recipe.output.format,
    quality: recipe.output.quality,
  };
}

/** torchvision's RandomResizedCrop sampling, with integer offsets so pure crops copy pixels. */
function sampleCrop(
  rng: Prng,
  W: number,
  H: number,
  scaleRange: readonly [number, number],
  ratioRange: readonly [number, number],
): { x: number; y: number; width: number; height: number } {
  const area = W * H;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scaleRange[0], scaleRange[1]);
    const ratio = rng.logUniform(ratioRange[0], ratioRange[1]);
    const w = Math.round(Math.sqrt(target * ratio));
    const h = Math.round(Math.sqrt(target / ratio));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      return { x: rng.int(0, W - w), y: rng.int(0, H - h), width: w, height: h };
    }
  }
  // Fallback: the largest centred crop whose ratio is within range.
  const r = W / H;
  let w = W, h = H;
  if (r < ratioRange[0]) h = Math.max(1, Math.round(W / ratioRange[0]));
  else if (r > ratioRange[1]) w = Math.max(1, Math.round(H * ratioRange[1]));
  return { x: Math.floor((W - w) / 2), y: Math.floor((H - h) / 2), width: w, height: h };
}

function expandedSize(W: number, H: number, degrees: number): { width: number; height: number } {
  const corners = transformPolygon(rotate(degrees), [[0, 0], [W, 0], [W, H], [0, H]]);
  const [, , w, h] = envelope(corners);
  // Trim float noise so that 90° on a 640×480 image gives exactly 480×640.
  return { width: Math.max(1, Math.ceil(w - 1e-6)), height: Math.max(1, Math.ceil(h - 1e-6)) };
}

/**
 * The input → output matrix and the output size of the geometric ops of a params object.
 *
 * @example
 * ```ts
 * geometryOf([{ op: "hflip" }], 100, 50); // { matrix: [-1, 0, 100, 0, 1, 0], width: 100, height: 50 }
 * ```
 */
export function geometryOf(ops: readonly SampledOp[], width: number, height: number): {
  matrix: Affine;
  width: number;
  height: number;
} {
  let m = identity();
  let W = width, H = height;
  for (const op of ops) {
    switch (op.op) {
      case "hflip":
        m = compose(m, flipHorizontal(W));
        break;
      case "vflip":
        m = compose(m, flipVertical(H));
        break;
      case "rot90":
        m = compose(m, rotate90(op.turns, W, H));
        if (op.turns % 2 === 1) [W, H] = [H, W];
        break;
      case "rotate":
        if (op.mode === "crop") {
          m = compose(m, rotate(op.degrees, W / 2, H / 2));
        } else {
          const out = expandedSize(W, H, op.degrees);
          m = compose(
            m,
            translate(-W / 2, -H / 2),
            rotate(op.degrees),
            translate(out.width / 2, out.height / 2),
          );
          ({ width: W, height: H } = out);
        }
        break;
      case "random_resized_crop":
        m = compose(
          m,
          translate(-op.x, -op.y),
          scale(op.outWidth / op.width, op.outHeight / op.height),
        );
        [W, H] = [op.outWidth, op.outHeight];
        break;
      case "affine": {
        const cx = W / 2, cy = H / 2;
        m = compose(
          m,
          translate(-cx, -cy),
          shear(op.shear),
          scale(op.scale),
          translate(cx + op.translateX, cy + op.translateY),
        );
        break;
      }
      default:
        break; // pixel ops do not move anything
    }
  }
  return { matrix: m, width: W, height: H };
}

// ---- rendering ---------------------------------------------------------------------------------

/** An annotation that did not survive: too little of it was left inside the output. */
export interface DroppedAnnotation {
  index: number;
  label: string;
  visible: number;
}

export interface AugmentResult {
  bytes: Uint8Array;
  width: number;
  height: number;
  /** In output pixels; clipped; dropped ones removed. */
  annotations: AnnotationInput[];
  dropped: DroppedAnnotation[];
  params: AugmentParams;
  seed: number;
}

export const AugmentOptionsSchema = z.strictObject({
  recipe: z.unknown(),
  imageId: z.string().min(1),
  index: z.number().int().min(0),
  /** Overrides the seed derived from (imageId, recipe.name, index). */
  seed: z.number().int().min(0).max(0xffffffff).optional(),
});
export type AugmentOptions = {
  recipe: Recipe | RecipeInput;
  imageId: string;
  index: number;
  seed?: number;
};

/**
 * Produces one augmented copy of an image and its annotations.
 *
 * @example
 * ```ts
 * const out = await augment(bytes, annotations, { recipe, imageId: "img_0123", index: 2 });
 * out.params; // store it: renderAugmentation(bytes, annotations, out.params) regenerates out.bytes
 * ```
 */
export async function augment(
  input: Uint8Array,
  annotations: readonly AnnotationInput[],
  options: AugmentOptions,
): Promise<AugmentResult> {
  const opts = AugmentOptionsSchema.parse(options);
  const recipe = parseRecipe(opts.recipe);
  const seed = opts.seed ?? seedFrom(opts.imageId, recipe.name, opts.index);
  assertAllowed(input, opts.imageId);
  const meta = await sharp(input, { limitInputPixels: DEFAULT_DECODE_POLICY.maxPixels }).metadata();
  const size = meta.autoOrient ?? { width: meta.width ?? 0, height: meta.height ?? 0 };
  const params = sampleAugmentParams(recipe, seed, size);
  return await renderAugmentation(input, annotations, params, opts.imageId);
}

/**
 * Regenerates an augmented copy from stored params (validated with zod). Same input, same
 * annotations, same params ⇒ same bytes.
 *
 * @example
 * ```ts
 * const again = await renderAugmentation(bytes, annotations, row.params);
 * ```
 */
export async function renderAugmentation(
  input: Uint8Array,
  annotations: readonly AnnotationInput[],
  rawParams: AugmentParams | unknown,
  name = "image",
): Promise<AugmentResult> {
  const parsed = AugmentParamsSchema.safeParse(rawParams);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SluiceError(
      "invalid_augment_params",
      `augmentation params at ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  const params = parsed.data;
  assertAllowed(input, name);
  const fill = params.fill as [number, number, number];

  // Decode upright, flatten alpha onto the fill colour, 3 × 8-bit sRGB.
  const { data, info } = await sharp(input, {
    limitInputPixels: DEFAULT_DECODE_POLICY.maxPixels,
    failOn: "error",
  })
    .autoOrient()
    .flatten({ background: { r: fill[0], g: fill[1], b: fill[2] } })
    .toColourspace("srgb")
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (
    info.width !== params.input.width || info.height !== params.input.height || info.channels !== 3
  ) {
    throw new SluiceError(
      "augment_input_mismatch",
      `${name}: params were drawn for a ${params.input.width}×${params.input.height} image, found ` +
        `${info.width}×${info.height} (${info.channels} channels)`,
    );
  }
  const geo = geometryOf(params.ops, params.input.width, params.input.height);
  if (geo.width !== params.output.width || geo.height !== params.output.height) {
    throw new SluiceError(
      "invalid_augment_params",
      `${name}: ops give a ${geo.width}×${geo.height} output, params say ${params.output.width}×${params.output.height}`,
    );
  }

  let pixels: Uint8Array = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let W = info.width, H = info.height;
  if (!isIdentity(geo.matrix) || geo.width !== W || geo.height !== H) {
    let m = geo.matrix;
    // A strong shrink would alias in a bilinear warp: pre-shrink with a proper filter and
    // fold the exact pre-scale into the matrix.
    const fx = Math.hypot(m[0], m[3]), fy = Math.hypot(m[1], m[4]);
    if (fx < 0.75 || fy < 0.75) {
      const w1 = Math.max(1, Math.ceil(W * Math.min(1, fx))),
        h1 = Math.max(1, Math.ceil(H * Math.min(1, fy)));
      const small = await sharp(pixels, { raw: { width: W, height: H, channels: 3 } })
        .resize(w1, h1, { fit: "fill", kernel: "lanczos3" })
        .raw()
        .toBuffer();
      m = compose(scale(W / w1, H / h1), m);
      pixels = new Uint8Array(small.buffer, small.byteOffset, small.byteLength);
      [W, H] = [w1, h1];
    }
    pixels = warpAffine(pixels, W, H, m, geo.width, geo.height, fill);
    [W, H] = [geo.width, geo.height];
  }

  for (const op of params.ops) {
    if (op.op === "color") {
      const raw = await sharp(pixels, { raw: { width: W, height: H, channels: 3 } })
        .modulate({ brightness: op.brightness, saturation: op.saturation, hue: Math.round(op.hue) })
        .linear(op.contrast, 128 * (1 - op.contrast))
        .raw()
        .toBuffer();
      pixels = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    } else if (op.op === "blur") {
      const raw = await sharp(pixels, { raw: { width: W, height: H, channels: 3 } }).blur(op.sigma)
        .raw().toBuffer();
      pixels = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    } else if (op.op === "noise") {
      pixels = addGaussianNoise(pixels, op.std, op.seed);
    } else if (op.op === "jpeg") {
      const jpg = await sharp(pixels, { raw: { width: W, height: H, channels: 3 } }).jpeg({
        quality: op.quality,
      }).toBuffer();
      const raw = await sharp(jpg).raw().toBuffer();
      pixels = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    }
  }

  let enc = sharp(pixels, { raw: { width: W, height: H, channels: 3 } });
  if (params.format === "jpeg") enc = enc.jpeg({ quality: params.quality });
  else if (params.format === "png") enc = enc.png({ compressionLevel: 6 });
  else enc = enc.webp({ quality: params.quality });
  const encoded = await enc.toBuffer();

  const moved = transformAnnotations(annotations, geo.matrix, W, H, params.minVisible);
  return {
    bytes: new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength),
    width: W,
    height: H,
    annotations: moved.kept,
    dropped: moved.dropped,
    params,
    seed: params.seed,
  };
}

/**
 * Maps annotations through a matrix onto a `width × height` output: polygons exactly (box =
 * envelope of the clipped polygon), boxes as the envelope of their transformed corners; then
 * clips, and drops those whose visible fraction is below `minVisible`. A rotated rectangle keeps
 * its `rotation` (updated) only under rotations/translations/uniform scaling that leave it
 * unclipped; otherwise its polygon carries the shape and `rotation` becomes null.
 *
 * @example
 * ```ts
 * transformAnnotations([{ label: "a", bbox: [0, 0, 10, 10] }], flipHorizontal(100), 100, 100, 0.3);
 * // { kept: [{ label: "a", bbox: [90, 0, 10, 10] }], dropped: [] }
 * ```
 */
export function transformAnnotations(
  annotations: readonly AnnotationInput[],
  matrix: Affine,
  width: number,
  height: number,
  minVisible: number,
): { kept: AnnotationInput[]; dropped: DroppedAnnotation[] } {
  const kept: AnnotationInput[] = [];
  const dropped: DroppedAnnotation[] = [];
  const similarity = Math.abs(matrix[0] - matrix[4]) < 1e-9 &&
    Math.abs(matrix[1] + matrix[3]) < 1e-9 &&
    determinant(matrix) > 0;
  const turn = (Math.atan2(matrix[3], matrix[0]) * 180) / Math.PI;
  annotations.forEach((a, index) => {
    if (a.polygon && a.polygon.length >= 3) {
      const moved = transformPolygon(matrix, a.polygon);
      const area = polygonArea(moved);
      const inside = clipPolygon(moved, width, height);
      const visible = area > 0 ? polygonArea(inside) / area : 0;
      if (inside.length < 3 || visible < minVisible || visible === 0) {
        dropped.push({ index, label: a.label, visible });
        return;
      }
      const out: AnnotationInput = { ...a, bbox: envelope(inside), polygon: inside };
      const whole = visible > 1 - 1e-9 && inside.length === moved.length;
      if (a.rotation) {
        out.rotation = similarity && whole ? normalizeDegrees(a.rotation + turn) : null;
        if (out.rotation !== null) out.polygon = moved;
      }
      kept.push(out);
    } else {
      const box = transformBox(matrix, a.bbox);
      const visible = visibleFraction(box, width, height);
      const clipped = clipBox(box, width, height);
      if (!clipped || visible < minVisible || visible === 0) {
        dropped.push({ index, label: a.label, visible });
        return;
      }
      kept.push({ ...a, bbox: clipped });
    }
  });
  return { kept, dropped };
}

function assertAllowed(input: Uint8Array, name: string): void {
  if (!sniffFormat(input.subarray(0, 16))) {
    throw new ImageError(
      "unsupported_format",
      name,
      "augment: expected JPEG, PNG, WebP or TIFF bytes (verify first)",
    );
  }
}

function isIdentity(m: Affine): boolean {
  return m[0] === 1 && m[1] === 0 && m[2] === 0 && m[3] === 0 && m[4] === 1 && m[5] === 0;
}

function normalizeDegrees(d: number): number {
  const r = ((d % 360) + 360) % 360;
  return Math.abs(r - 360) < 1e-9 || Math.abs(r) < 1e-9 ? 0 : r;
}
