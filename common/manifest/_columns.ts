/**
 * Readers for result columns. PostgreSQL returns BIGINT and COUNT(*) as decimal strings while
 * SQLite returns numbers, so every numeric read goes through {@link toNumber}.
 *
 * @module
 */

/** Reads a numeric column that may arrive as a number, a bigint or a decimal string. */
export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint" || typeof v === "string") return Number(v);
  throw new TypeError(`expected a numeric column value, found ${v === null ? "null" : typeof v}`);
}

/** Like {@link toNumber}, passing NULL through. */
export function toNumberOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : toNumber(v);
}

/** Reads a text column that may be NULL. */
export function toStringOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** Reads a JSON text column. */
export function fromJson<T>(v: unknown): T {
  return JSON.parse(String(v)) as T;
}

/** Like {@link fromJson}, passing NULL through. */
export function fromJsonOrNull<T>(v: unknown): T | null {
  return v === null || v === undefined ? null : JSON.parse(String(v)) as T;
}
