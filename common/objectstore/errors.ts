/**
 * The object store's named errors.
 *
 * @example
 * ```ts
 * if (err instanceof ObjectNotFoundError) return null;
 * ```
 * @module
 */
import { SluiceError } from "../errors/mod.ts";

/** A key was refused before touching storage (escape, NUL, too long, empty). */
export class InvalidKeyError extends SluiceError {
  readonly key: string;
  constructor(key: string, problem: string) {
    super("invalid_key", `object key ${JSON.stringify(key.slice(0, 200))}: ${problem}`);
    this.name = "InvalidKeyError";
    this.key = key;
  }
}

/** The object does not exist. */
export class ObjectNotFoundError extends SluiceError {
  readonly key: string;
  constructor(url: string, key: string) {
    super("not_found", `object ${JSON.stringify(key)} not found in ${url}`);
    this.name = "ObjectNotFoundError";
    this.key = key;
  }
}
