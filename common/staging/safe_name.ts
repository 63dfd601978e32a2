/**
 * Maps any string (an object key, a user-supplied file name) to a file name that is safe to
 * create inside a directory: one path segment of `[A-Za-z0-9._-]`, never hidden, never `.` or
 * `..`, at most ~110 bytes, and distinct for distinct inputs (a short hash of the whole input
 * is part of it). The readable part keeps the basename and extension so staged files are easy
 * to recognise and tools that sniff by extension still work.
 *
 * @example
 * ```ts
 * safeFileName("raw/2024/cat photo.JPG"); // "cat_photo-8655bfb77d15.jpg"
 * safeFileName("../../etc/passwd");       // "passwd-3754d6cb3a38"
 * ```
 * @module
 */
import { createHash } from "node:crypto";

const MAX_STEM = 80;

/** Returns a single safe path segment derived from `name` (see the module docs). */
export function safeFileName(name: string): string {
  const hash = createHash("sha256").update(name, "utf8").digest("hex").slice(0, 12);
  const base = name.split(/[\\/]/).pop() ?? "";
  const cleaned = base.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._-]+/, "");
  const extMatch = /\.([A-Za-z0-9]{1,10})$/.exec(cleaned);
  const ext = extMatch ? "." + extMatch[1].toLowerCase() : "";
  const stem = cleaned.slice(0, cleaned.length - ext.length).slice(0, MAX_STEM).replace(
    /[._-]+$/,
    "",
  );
  return `${stem || "file"}-${hash}${ext}`;
}
