/**
 * Errors raised while reading annotation files (Label Studio, COCO).
 *
 * @example
 * ```ts
 * throw new AnnotationFormatError("export.json", "$[3].data.image", "expected a string, found null");
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

/**
 * An annotation file (or one task / record inside it) is not valid JSON or has the wrong
 * shape. `file` names the file and `path` the JSON path of the problem (`$` is the root).
 */
export class AnnotationFormatError extends SluiceError {
  readonly file: string;
  readonly path: string;
  constructor(file: string, path: string, problem: string, options?: ErrorOptions) {
    super("bad_annotation_file", `${file} at ${path}: ${problem}`, options);
    this.name = "AnnotationFormatError";
    this.file = file;
    this.path = path;
  }
}

/** A non-fatal problem found while importing one record (the record itself was imported). */
export interface AnnotationProblem {
  /** JSON path of the offending value, e.g. `$[3].annotations[0].result[2].value`. */
  path: string;
  problem: string;
}

/**
 * JSON path text for a list of keys: `jsonPath(["tasks", 3, "data"])` → `$.tasks[3].data`.
 *
 * @example
 * ```ts
 * jsonPath([0, "annotations", 2, "result"]); // "$[0].annotations[2].result"
 * ```
 */
export function jsonPath(keys: readonly PropertyKey[]): string {
  let out = "$";
  for (const k of keys) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out += `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}
