/**
 * Reads an annotation file's JSON: text is parsed, an already parsed value passes through.
 * Broken JSON throws {@link AnnotationFormatError} at path `$` naming the file.
 *
 * @example
 * ```ts
 * const doc = parseJsonInput('{"images": []}', "instances.json"); // { images: [] }
 * ```
 * @module
 */
import { AnnotationFormatError } from "./errors.ts";

/** `input` parsed when it is a string, else `input` itself. */
export function parseJsonInput(input: string | unknown, file: string): unknown {
  if (typeof input !== "string") return input;
  try {
    return JSON.parse(input);
  } catch (err) {
    throw new AnnotationFormatError(
      file,
      "$",
      `expected JSON, found a parse error: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
