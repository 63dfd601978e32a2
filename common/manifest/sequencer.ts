/**
 * Ordering of S3 event sequencers. A sequencer orders the events of one key only. AWS documents
 * the rule: right-pad the shorter with zeros, then compare as strings (case-insensitively). MinIO and RustFS send the
 * modification time in nanoseconds as hex, which orders correctly under the same rule.
 *
 * @module
 */

/**
 * Compares two sequencers of the same key: negative when `a` is older, 0 when equal, positive
 * when newer.
 *
 * @example
 * ```ts
 * compareSequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"); // < 0
 * compareSequencers("0A", "0A00"); // 0
 * ```
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  // Hex digits: "0a" and "0A" are the same sequencer, and "a" < "B" as hex but not as text.
  const pa = a.toUpperCase().padEnd(width, "0");
  const pb = b.toUpperCase().padEnd(width, "0");
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/**
 * True when an event carrying `incoming` is older than the one already applied (`stored`).
 * Events without a sequencer, or keys without one recorded, are never stale.
 *
 * @example
 * ```ts
 * isStaleSequencer("01", "02"); // true
 * isStaleSequencer(null, "02"); // false
 * ```
 */
export function isStaleSequencer(
  incoming: string | null | undefined,
  stored: string | null | undefined,
): boolean {
  if (incoming == null || stored == null) return false;
  return compareSequencers(incoming, stored) < 0;
}
