import assert from "node:assert/strict";
import {
  decodeEventKey,
  EventFormatError,
  eventKind,
  normalizeEventName,
  orderEvents,
  parseS3Notification,
  parseSqsBody,
  type SourceEvent,
} from "./s3_event.ts";

/** A MinIO/RustFS webhook body with one record (they encode `/` in the key). */
function minioBody(eventName: string, rawKey: string, extra: Record<string, unknown> = {}) {
  return {
    EventName: eventName,
    Key: `raw/${decodeURIComponent(rawKey)}`,
    Records: [{
      eventVersion: "2.0",
      eventSource: "minio:s3",
      awsRegion: "",
      eventTime: "2026-11-23T10:00:00.000Z",
      eventName,
      userIdentity: { principalId: "minioadmin" },
      s3: {
        s3SchemaVersion: "1.0",
        configurationId: "Config",
        bucket: {
          name: "raw",
          ownerIdentity: { principalId: "minioadmin" },
          arn: "arn:aws:s3:::raw",
        },
        object: {
          key: rawKey,
          size: 1234,
          eTag: "abc123",
          sequencer: "17A2C9B5C1F7A1B0",
          ...extra,
        },
      },
    }],
  };
}

Deno.test("decodeEventKey decodes form-encoding: + first, then percent-escapes", async (t) => {
  await t.step("a space arrives as +, a real + as %2B, / as %2F (RustFS/MinIO)", () => {
    assert.equal(decodeEventKey("photos%2Fred+flower%2B1.jpg"), "photos/red flower+1.jpg");
  });
  await t.step("UTF-8 percent-escapes", () => {
    assert.equal(decodeEventKey("caf%C3%A9%2F%E7%8C%AB.png"), "café/猫.png");
  });
  await t.step("AWS leaves / alone", () => {
    assert.equal(decodeEventKey("a/b/c+d.jpg"), "a/b/c d.jpg");
  });
  await t.step("a malformed escape is a bad_event error", () => {
    assert.throws(() => decodeEventKey("bad%E0%A4%A.jpg"), (err: unknown) => {
      assert.ok(err instanceof EventFormatError);
      assert.equal(err.code, "bad_event");
      return true;
    });
  });
});

Deno.test("event names: s3: prefix stripped, kinds recognised", () => {
  assert.equal(normalizeEventName("s3:ObjectCreated:Put"), "ObjectCreated:Put");
  assert.equal(normalizeEventName("ObjectCreated:Put"), "ObjectCreated:Put");
  assert.equal(eventKind("s3:ObjectCreated:CompleteMultipartUpload"), "created");
  assert.equal(eventKind("ObjectRemoved:DeleteMarkerCreated"), "removed");
  assert.equal(eventKind("s3:ObjectRemoved:Delete"), "removed");
  assert.equal(eventKind("LifecycleExpiration:Delete"), "removed");
  assert.equal(eventKind("Object Created"), "created");
  assert.equal(eventKind("Object Deleted"), "removed");
  assert.equal(eventKind("s3:ObjectAccessed:Get"), null);
  assert.equal(eventKind("ObjectRestore:Completed"), null);
});

Deno.test("parseS3Notification reads the MinIO/RustFS webhook body", async (t) => {
  await t.step("one record, key decoded, s3: stripped, fields kept", () => {
    const { events, ignored } = parseS3Notification(
      minioBody("s3:ObjectCreated:Put", "cams%2Fnight+shot%2B2.jpg"),
    );
    assert.deepEqual(ignored, []);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.equal(e.kind, "created");
    assert.equal(e.bucket, "raw");
    assert.equal(e.key, "cams/night shot+2.jpg");
    assert.equal(e.eventName, "ObjectCreated:Put");
    assert.equal(e.etag, "abc123");
    assert.equal(e.size, 1234);
    assert.equal(e.sequencer, "17A2C9B5C1F7A1B0");
    assert.equal(e.eventTime, Date.parse("2026-11-23T10:00:00.000Z"));
    assert.equal(e.versionId, null);
    assert.equal(e.shape, "s3");
  });
  await t.step("quoted etags and the literal null version are normalised", () => {
    const { events } = parseS3Notification(
      minioBody("s3:ObjectCreated:Put", "a.jpg", { eTag: '"q1"', versionId: "null" }),
    );
    assert.equal(events[0].etag, "q1");
    assert.equal(events[0].versionId, null);
  });
  await t.step("removals and other events", () => {
    const removed = parseS3Notification(minioBody("s3:ObjectRemoved:Delete", "a.jpg"));
    assert.equal(removed.events[0].kind, "removed");
    const accessed = parseS3Notification(minioBody("s3:ObjectAccessed:Get", "a.jpg"));
    assert.deepEqual(accessed.events, []);
    assert.equal(accessed.ignored[0].reason, "other_event");
  });
  await t.step("a malformed record is ignored, the others kept", () => {
    const body = minioBody("s3:ObjectCreated:Put", "good.jpg");
    body.Records.push({ eventName: "s3:ObjectCreated:Put" } as never);
    const { events, ignored } = parseS3Notification(body);
    assert.equal(events.length, 1);
    assert.equal(ignored.length, 1);
    assert.equal(ignored[0].reason, "malformed");
    assert.match(ignored[0].detail, /Records\[1\]/);
  });
  await t.step("a body of no known shape throws bad_event", () => {
    assert.throws(() => parseS3Notification({ hello: "world" }), EventFormatError);
    assert.throws(() => parseS3Notification([1, 2]), EventFormatError);
  });
});

const awsRecord = (eventName: string, key: string, sequencer: string) => ({
  eventVersion: "2.1",
  eventSource: "aws:s3",
  awsRegion: "us-east-1",
  eventTime: "2026-11-23T10:00:00.000Z",
  eventName,
  s3: {
    s3SchemaVersion: "1.0",
    bucket: { name: "raw", arn: "arn:aws:s3:::raw" },
    object: { key, size: 10, eTag: "e1", sequencer },
  },
});

Deno.test("parseSqsBody reads AWS bodies: plain, SNS-wrapped, EventBridge, TestEvent", async (t) => {
  await t.step("plain S3 notification, AWS names without s3:", () => {
    const body = JSON.stringify({ Records: [awsRecord("ObjectCreated:Put", "dir/a+b.jpg", "01")] });
    const { events } = parseSqsBody(body);
    assert.equal(events[0].key, "dir/a b.jpg");
    assert.equal(events[0].eventName, "ObjectCreated:Put");
  });
  await t.step("SNS envelope", () => {
    const inner = JSON.stringify({ Records: [awsRecord("ObjectRemoved:Delete", "x.png", "02")] });
    const body = JSON.stringify({
      Type: "Notification",
      MessageId: "m1",
      TopicArn: "arn:aws:sns:us-east-1:1:t",
      Subject: "Amazon S3 Notification",
      Message: inner,
    });
    const { events } = parseSqsBody(body);
    assert.equal(events[0].kind, "removed");
    assert.equal(events[0].key, "x.png");
  });
  await t.step("EventBridge Object Created: key used as is", () => {
    const body = JSON.stringify({
      version: "0",
      "detail-type": "Object Created",
      source: "aws.s3",
      time: "2026-11-23T10:00:00Z",
      detail: {
        version: "0",
        bucket: { name: "raw" },
        object: { key: "dir/a+b.jpg", size: 5, etag: "e9", "version-id": "v1", sequencer: "0A" },
        reason: "PutObject",
      },
    });
    const { events } = parseSqsBody(body);
    assert.equal(events[0].kind, "created");
    assert.equal(events[0].key, "dir/a+b.jpg");
    assert.equal(events[0].versionId, "v1");
    assert.equal(events[0].shape, "eventbridge");
  });
  await t.step("s3:TestEvent is ignored, also inside SNS", () => {
    const test = { Service: "Amazon S3", Event: "s3:TestEvent", Bucket: "raw", Time: "x" };
    assert.equal(parseSqsBody(JSON.stringify(test)).ignored[0].reason, "test_event");
    const wrapped = JSON.stringify({ Type: "Notification", Message: JSON.stringify(test) });
    const r = parseSqsBody(wrapped);
    assert.deepEqual(r.events, []);
    assert.equal(r.ignored[0].reason, "test_event");
  });
  await t.step("not JSON", () => {
    assert.throws(() => parseSqsBody("hello"), EventFormatError);
  });
});

Deno.test("orderEvents orders each key's events by sequencer and keeps keys apart", () => {
  const ev = (key: string, kind: "created" | "removed", sequencer: string | null): SourceEvent => ({
    kind,
    bucket: "raw",
    key,
    eventName: kind,
    etag: null,
    size: null,
    versionId: null,
    sequencer,
    eventTime: null,
    shape: "s3",
  });
  const input = [
    ev("a", "removed", "0055AED6DCD90281E6"),
    ev("b", "created", "02"),
    ev("a", "created", "0055AED6DCD90281E5"),
    ev("b", "removed", "01"),
    ev("c", "created", null),
  ];
  const out = orderEvents(input).map((e) => `${e.key}:${e.kind}:${e.sequencer}`);
  assert.deepEqual(out, [
    "a:created:0055AED6DCD90281E5",
    "a:removed:0055AED6DCD90281E6",
    "b:removed:01",
    "b:created:02",
    "c:created:null",
  ]);
  // AWS rule: shorter sequencers are right-padded with zeros before comparing.
  const padded = orderEvents([ev("d", "removed", "0A1"), ev("d", "created", "0A")]);
  assert.deepEqual(padded.map((e) => e.kind), ["created", "removed"]);
});
