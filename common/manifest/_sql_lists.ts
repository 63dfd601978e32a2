/**
 * Lists in SQL statements: chunking long id lists and numbering their placeholders, the same
 * on SQLite and PostgreSQL (both take `$n`).
 *
 * @example
 * ```ts
 * for (const part of chunks(ids, ID_CHUNK)) {
 *   await db.query(`DELETE FROM t WHERE id IN (${placeholders(part.length)})`, part);
 * }
 * ```
 * @module
 */

// Rows per multi-row statement: far below SQLite's 32766 and PostgreSQL's 65535 parameters.
export const CHUNK = 500;
/** Ids per `IN (...)` list. */
export const ID_CHUNK = 900;

/** `items` in slices of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `$from, $from+1, ...` for `n` placeholders. */
export function placeholders(n: number, from = 1): string {
  return Array.from({ length: n }, (_, i) => `$${from + i}`).join(", ");
}

/** Multi-row VALUES list: rows of `width` placeholders starting at `$from`. */
export function valuesList(rows: number, width: number, from = 1): string {
  return Array.from(
    { length: rows },
    (_, r) => `(${placeholders(width, from + r * width)})`,
  ).join(", ");
}
