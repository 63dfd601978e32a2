/**
 * An S3 `ObjectCreated:Put` notification body for one key, as AWS writes it (key URL-encoded),
 * for tests that post events to the ingest stage.
 *
 * @example
 * ```ts
 * const body = objectCreatedEvent("raw", "a.jpg");
 * body.Records[0].s3.object.key; // "a.jpg"
 * ```
 * @module
 */

/** One-record notification for `key` in `bucket`. */
export function objectCreatedEvent(
  bucket: string,
  key: string,
  object: { size?: number; eTag?: string; sequencer?: string } = {},
) {
  return {
    Records: [{
      eventVersion: "2.1",
      eventSource: "aws:s3",
      eventName: "s3:ObjectCreated:Put",
      s3: {
        bucket: { name: bucket },
        object: {
          key: encodeURIComponent(key),
          size: object.size ?? 10,
          eTag: object.eTag ?? "e",
          sequencer: object.sequencer ?? "01",
        },
      },
    }],
  };
}
