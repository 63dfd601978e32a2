/**
 * S3 event notifications, as RustFS and MinIO POST them to a webhook and as AWS delivers them
 * through SQS (directly, wrapped in an SNS envelope, or as EventBridge events), turned into one
 * plain {@link SourceEvent} shape. Pure: no I/O.
 *
 * Facts this follows (see ENVIRONMENT.md): record keys are form-encoded (`+` is a space, a real
 * `+` is `%2B`; RustFS/MinIO also encode `/`), so `+` becomes a space BEFORE percent-decoding;
 * event names may carry an `s3:` prefix (RustFS/MinIO) or not (AWS); delivery is at-least-once
 * and out of order, and `sequencer` orders the events of one key only. EventBridge keys are
 * documented without encoding and are used as they come.
 *
 * @example
 * ```ts
 * const { events } = parseS3Notification(JSON.parse(body));
 * for (const e of orderEvents(events)) console.log(e.kind, e.bucket, e.key);
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import { compareSequencers } from "../../common/manifest/sequencer.ts";

/** What happened to the object. */
export type SourceEventKind = "created" | "removed";

/** One object creation or removal, decoded. */
export interface SourceEvent {
  kind: SourceEventKind;
  bucket: string;
  /** The object key in the bucket, decoded. */
  key: string;
  /** Without an `s3:` prefix: `ObjectCreated:Put`, `ObjectRemoved:Delete`, `Object Created`. */
  eventName: string;
  etag: string | null;
  size: number | null;
  versionId: string | null;
  sequencer: string | null;
  /** Epoch ms of the event, when the notification says. */
  eventTime: number | null;
  /** The notification shape it came in. */
  shape: "s3" | "eventbridge";
}

/** Why a notification, or a record inside it, produced no event. */
export type IgnoredReason = "test_event" | "other_event" | "malformed";

export interface ParsedNotification {
  events: SourceEvent[];
  ignored: { reason: IgnoredReason; detail: string }[];
}

/** A notification body that is not JSON or not any known notification shape. */
export class EventFormatError extends SluiceError {
  constructor(problem: string, options?: ErrorOptions) {
    super("bad_event", `S3 notification: ${problem}`, options);
    this.name = "EventFormatError";
  }
}

/**
 * Decodes a record key as form-encoding: `+` → space first, then percent-decoding (UTF-8).
 * Throws {@link EventFormatError} for a malformed escape.
 *
 * @example
 * ```ts
 * decodeEventKey("photos%2Fred+flower%2B1.jpg"); // "photos/red flower+1.jpg"
 * ```
 */
export function decodeEventKey(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch (err) {
    throw new EventFormatError(
      `object key ${JSON.stringify(raw.slice(0, 200))}: expected form-encoded UTF-8, found a ` +
        "malformed percent escape",
      { cause: err },
    );
  }
}

/**
 * Strips the `s3:` prefix RustFS and MinIO put on event names.
 *
 * @example
 * ```ts
 * normalizeEventName("s3:ObjectCreated:Put"); // "ObjectCreated:Put"
 * ```
 */
export function normalizeEventName(name: string): string {
  return name.startsWith("s3:") ? name.slice(3) : name;
}

/**
 * Whether a (normalised) event name creates or removes an object; null for anything else
 * (ObjectAccessed, ObjectRestore, Replication, tagging, ...).
 *
 * @example
 * ```ts
 * eventKind("ObjectRemoved:DeleteMarkerCreated"); // "removed"
 * ```
 */
export function eventKind(name: string): SourceEventKind | null {
  const n = normalizeEventName(name);
  if (n.startsWith("ObjectCreated:") || n === "Object Created") return "created";
  if (
    n.startsWith("ObjectRemoved:") || n.startsWith("LifecycleExpiration:") ||
    n === "Object Deleted"
  ) return "removed";
  return null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

function num(v: unknown): number | null {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
}

function etagOf(v: unknown): string | null {
  const s = str(v);
  return s === null ? null : s.replace(/^"|"$/g, "");
}

function versionOf(v: unknown): string | null {
  const s = str(v);
  // Unversioned buckets report the literal "null" version.
  return s === null || s === "null" ? null : s;
}

function timeOf(v: unknown): number | null {
  const s = str(v);
  if (s === null) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}

/**
 * Parses a decoded S3 notification document: `{ Records: [...] }` (AWS, MinIO, RustFS; MinIO
 * and RustFS add `EventName` and `Key`), an `s3:TestEvent`, or an EventBridge event. Records
 * that are not creations/removals, or are malformed, are listed in `ignored`. Throws
 * {@link EventFormatError} when the document is none of these.
 *
 * @example
 * ```ts
 * parseS3Notification({ Records: [{ eventName: "ObjectCreated:Put",
 *   s3: { bucket: { name: "raw" }, object: { key: "a+b.jpg", size: 3, eTag: "e1" } } }] });
 * // { events: [{ kind: "created", bucket: "raw", key: "a b.jpg", ... }], ignored: [] }
 * ```
 */
export function parseS3Notification(doc: unknown): ParsedNotification {
  const out: ParsedNotification = { events: [], ignored: [] };
  if (!isObject(doc)) {
    throw new EventFormatError(`expected a JSON object, found ${describe(doc)}`);
  }
  if (normalizeEventName(String(doc.Event ?? "")) === "TestEvent") {
    out.ignored.push({ reason: "test_event", detail: `test event for bucket ${doc.Bucket}` });
    return out;
  }
  if (doc.source === "aws.s3" && isObject(doc.detail)) {
    parseEventBridge(doc, out);
    return out;
  }
  if (Array.isArray(doc.Records)) {
    if (doc.Records.length === 0 && typeof doc.EventName === "string") {
      parseMinioSummary(doc, out);
      return out;
    }
    doc.Records.forEach((r, i) => parseRecord(r, i, out));
    return out;
  }
  if (typeof doc.EventName === "string" && typeof doc.Key === "string") {
    parseMinioSummary(doc, out);
    return out;
  }
  throw new EventFormatError(
    `expected Records[], an s3:TestEvent or an EventBridge aws.s3 event, found keys ` +
      `[${Object.keys(doc).slice(0, 8).join(", ")}]`,
  );
}

function parseRecord(r: unknown, i: number, out: ParsedNotification): void {
  const bad = (problem: string) =>
    out.ignored.push({ reason: "malformed", detail: `Records[${i}]: ${problem}` });
  if (!isObject(r)) return void bad(`expected an object, found ${describe(r)}`);
  const name = str(r.eventName);
  if (name === null) return void bad("expected eventName as a string");
  const kind = eventKind(name);
  if (kind === null) {
    out.ignored.push({
      reason: "other_event",
      detail: `Records[${i}]: ${normalizeEventName(name)}`,
    });
    return;
  }
  const s3 = isObject(r.s3) ? r.s3 : null;
  const bucket = s3 && isObject(s3.bucket) ? str(s3.bucket.name) : null;
  const obj = s3 && isObject(s3.object) ? s3.object : null;
  const rawKey = obj ? str(obj.key) : null;
  if (bucket === null || obj === null || rawKey === null) {
    return void bad("expected s3.bucket.name and s3.object.key as strings");
  }
  let key: string;
  try {
    key = decodeEventKey(rawKey);
  } catch (err) {
    return void bad(err instanceof Error ? err.message : String(err));
  }
  out.events.push({
    kind,
    bucket,
    key,
    eventName: normalizeEventName(name),
    etag: etagOf(obj.eTag ?? obj.etag),
    size: num(obj.size),
    versionId: versionOf(obj.versionId),
    sequencer: str(obj.sequencer),
    eventTime: timeOf(r.eventTime),
    shape: "s3",
  });
}

// MinIO's summary fields, used only when there are no records: Key is "<bucket>/<key>", plain.
function parseMinioSummary(doc: Json, out: ParsedNotification): void {
  const name = String(doc.EventName);
  const kind = eventKind(name);
  const full = String(doc.Key ?? "");
  const slash = full.indexOf("/");
  if (kind === null) {
    out.ignored.push({ reason: "other_event", detail: normalizeEventName(name) });
    return;
  }
  if (slash <= 0 || slash === full.length - 1) {
    out.ignored.push({ reason: "malformed", detail: `Key ${describe(full)}: expected bucket/key` });
    return;
  }
  out.events.push({
    kind,
    bucket: full.slice(0, slash),
    key: full.slice(slash + 1),
    eventName: normalizeEventName(name),
    etag: null,
    size: null,
    versionId: null,
    sequencer: null,
    eventTime: null,
    shape: "s3",
  });
}

function parseEventBridge(doc: Json, out: ParsedNotification): void {
  const type = String(doc["detail-type"] ?? "");
  const kind = eventKind(type);
  if (kind === null) {
    out.ignored.push({ reason: "other_event", detail: `EventBridge ${type}` });
    return;
  }
  const detail = doc.detail as Json;
  const bucket = isObject(detail.bucket) ? str(detail.bucket.name) : null;
  const obj = isObject(detail.object) ? detail.object : null;
  const key = obj ? str(obj.key) : null;
  if (bucket === null || obj === null || key === null) {
    out.ignored.push({
      reason: "malformed",
      detail: "EventBridge detail: expected bucket.name and object.key as strings",
    });
    return;
  }
  out.events.push({
    kind,
    bucket,
    key,
    eventName: type,
    etag: etagOf(obj.etag),
    size: num(obj.size),
    versionId: versionOf(obj["version-id"]),
    sequencer: str(obj.sequencer),
    eventTime: timeOf(doc.time),
    shape: "eventbridge",
  });
}

/**
 * Parses an SQS message body carrying S3 notifications: the S3 document itself, or an SNS
 * envelope (`Type: "Notification"`, the document as a JSON string in `Message`) around it.
 * Throws {@link EventFormatError} when the body is not JSON or not a known shape.
 *
 * @example
 * ```ts
 * parseSqsBody(JSON.stringify({ Type: "Notification", Message: JSON.stringify(s3doc) }));
 * ```
 */
export function parseSqsBody(body: string): ParsedNotification {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new EventFormatError(`expected a JSON message body, found ${describe(body)}`, {
      cause: err,
    });
  }
  if (isObject(doc) && doc.Type === "Notification" && typeof doc.Message === "string") {
    try {
      doc = JSON.parse(doc.Message);
    } catch (err) {
      throw new EventFormatError("SNS envelope: expected Message to hold JSON", { cause: err });
    }
  }
  return parseS3Notification(doc);
}

/**
 * Orders events for applying: events of one (bucket, key) by sequencer, oldest first (events
 * without a sequencer keep their place among their key's events); keys in order of first
 * appearance.
 *
 * @example
 * ```ts
 * orderEvents([removeSeq2, createSeq1]); // [createSeq1, removeSeq2]
 * ```
 */
export function orderEvents(events: readonly SourceEvent[]): SourceEvent[] {
  const groups = new Map<string, SourceEvent[]>();
  for (const e of events) {
    const id = `${e.bucket}\u0000${e.key}`;
    const g = groups.get(id);
    if (g) g.push(e);
    else groups.set(id, [e]);
  }
  const out: SourceEvent[] = [];
  for (const g of groups.values()) {
    const withSeq = g.filter((e) => e.sequencer !== null)
      .sort((a, b) => compareSequencers(a.sequencer!, b.sequencer!));
    let next = 0;
    // Keep sequencer-less events in place; fill the other slots in sequencer order.
    for (const e of g) out.push(e.sequencer === null ? e : withSeq[next++]);
  }
  return out;
}
