/**
 * The identity of a model registry: what tells version 1 of `det` in one registry from version 1
 * of `det` in another. An embedded file store is `file://<absolute directory>`; an MLflow server
 * is its tracking URL reduced to scheme, host, port and path, WITHOUT user, password, query or
 * fragment (so credentials never reach a queue name, a log line or the manifest). The short
 * {@link registryKey} (8 hex digits of its SHA-256) goes where a readable name is wanted.
 *
 * @example
 * ```ts
 * registryIdentity("https://bot:s3cret@MLflow.example:443/ml/?x=1"); // "https://mlflow.example/ml"
 * registryIdentity("./mlruns"); // "file:///work/mlruns"
 * registryKey("file:///work/mlruns"); // e.g. "3fa2c1d0"
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SluiceError } from "../errors/mod.ts";

/**
 * The credential-free identity of the registry at `location`: an `http(s)://` tracking URL, a
 * `file:` URL or a directory path.
 *
 * @example
 * ```ts
 * registryIdentity("http://u:p@127.0.0.1:5000/"); // "http://127.0.0.1:5000"
 * ```
 */
export function registryIdentity(location: string): string {
  const loc = location.trim();
  if (/^https?:\/\//i.test(loc)) {
    if (!URL.canParse(loc)) {
      throw new SluiceError(
        "invalid_registry",
        `model registry: expected an http(s) URL, found an unparseable one (${loc.length} chars)`,
      );
    }
    const u = new URL(loc);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(loc) && !loc.startsWith("file:")) {
    throw new SluiceError(
      "invalid_registry",
      `model registry: expected an http(s):// or file: URL or a directory, found scheme ` +
        `${loc.slice(0, loc.indexOf(":"))}`,
    );
  }
  const path = loc.startsWith("file:") ? fileURLToPath(loc) : resolve(loc);
  return pathToFileURL(path).href.replace(/\/+$/, "");
}

/**
 * A short, stable key of a registry identity: the first 8 hex digits of its SHA-256.
 *
 * @example
 * ```ts
 * registryKey("http://127.0.0.1:5000").length; // 8
 * ```
 */
export function registryKey(identity: string): string {
  return createHash("sha256").update(identity).digest("hex").slice(0, 8);
}
