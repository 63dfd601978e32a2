/**
 * Image ids: `img_` + 20 hex digits of sha256(source URI), the same on every host.
 *
 * @example
 * ```ts
 * await imageIdFor("s3://raw/a.jpg"); // "img_…"
 * ```
 * @module
 */

/** Stable image id for a source URI. */
export async function imageIdFor(sourceUri: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sourceUri));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return "img_" + hex.slice(0, 20);
}
