/**
 * Matching annotation records (Label Studio tasks, COCO images) to the images Sluice knows.
 * Annotation tools rarely keep the URL the image came from: Label Studio uploads rename files
 * to `<8 hex>-<name>`, local-storage tasks hide the path in a `?d=` query, and presigned URLs
 * change every hour. So a reference carries several candidates, tried in priority order:
 * the Sluice image id (when the task was exported by Sluice), the full URL / S3 URI, then
 * file names.
 *
 * @example
 * ```ts
 * const match = createImageMatcher([{ id: "img_1", uri: "s3://raw/cats/tom.jpg" }]);
 * match(imageRefFromUrl("/data/upload/3/9f3a2b1c-tom.jpg")); // { kind: "matched", id: "img_1", by: "file_name" }
 * ```
 * @module
 */

/** Where an annotation record says its image is. */
export interface ImageRef {
  /** The URL or path exactly as the file gave it. */
  url: string;
  /** URL-decoded basename of the URL path (the `?d=` path for Label Studio local files). */
  fileName: string;
  /**
   * Everything this reference may be known by, most specific first: the URL, the URL without
   * its query, the S3 URI of an S3 https URL, the file name, and the file name without Label
   * Studio's upload prefix.
   */
  candidates: string[];
  /** `data.sluice_image_id` of a task that Sluice exported itself. */
  sluiceImageId?: string | null;
  /**
   * File names without their extension, tried last against the images' (a YOLO label file
   * `labels/cat.txt` exported without its image names `cat.jpg` or `cat.png`, not which).
   */
  stems?: string[];
}

/** An image that references can match: by id, by any of its URIs, or by file name. */
export interface MatchableImage {
  id: string;
  /** Source URI, dataset URI, ...: any URI this image is known by. */
  uris?: string[];
  /** Defaults to the basenames of `uris`. */
  fileNames?: string[];
}

export type MatchResult =
  | { kind: "matched"; id: string; by: "id" | "uri" | "file_name" | "file_stem"; candidate: string }
  | { kind: "ambiguous"; ids: string[]; by: "uri" | "file_name" | "file_stem"; candidate: string }
  | { kind: "none" };

// Label Studio names uploads `uuid4().hex[:8] + "-" + name`. Requiring a digit keeps ordinary
// hyphenated names ("sunset-beach.jpg") from losing their first word; the stripped name is only
// a lower-priority candidate anyway.
const UPLOAD_PREFIX = /^(?=[0-9a-z]*[0-9])[0-9a-z]{4,36}-(.+)$/i;

/**
 * Builds an {@link ImageRef} from a task's image URL, S3 URI, or path.
 *
 * @example
 * ```ts
 * imageRefFromUrl("https://b.s3.amazonaws.com/a/My%20Cat.jpg?X-Amz-Signature=1").fileName; // "My Cat.jpg"
 * ```
 */
export function imageRefFromUrl(url: string, sluiceImageId?: string | null): ImageRef {
  const candidates: string[] = [url];
  // Decoded path whose last segment is the file name.
  let path: string;
  let parsed: URL | null = null;
  try {
    parsed = /^[a-z][a-z0-9+.-]*:/i.test(url)
      ? new URL(url)
      : new URL(url, "http://relative.invalid");
  } catch {
    parsed = null;
  }
  if (parsed) {
    const d = parsed.searchParams.get("d");
    // searchParams already decodes: decoding `d` again would turn a literal "%25" into "%".
    path = d !== null && parsed.pathname.includes("/data/local-files")
      ? d
      : safeDecode(parsed.pathname);
    if (parsed.search) candidates.push(url.slice(0, url.indexOf("?")));
    const s3 = s3UriOf(parsed);
    if (s3) candidates.push(s3);
  } else {
    path = safeDecode(url.split(/[?#]/)[0]);
  }
  const fileName = path.split("/").filter((s) => s !== "").pop() ?? "";
  candidates.push(fileName);
  if (path.includes("/data/upload/")) {
    const m = UPLOAD_PREFIX.exec(fileName);
    if (m) candidates.push(m[1]);
  }
  const ref: ImageRef = {
    url,
    fileName,
    candidates: [...new Set(candidates.filter((c) => c !== ""))],
  };
  if (sluiceImageId) ref.sluiceImageId = sluiceImageId;
  return ref;
}

/**
 * A file name without Label Studio's upload prefix (`8f3c1a2e-cat.jpg` → `cat.jpg`), or null
 * when it has none. Label Studio's exports (YOLO, VOC, COCO) name uploaded images this way.
 *
 * @example
 * ```ts
 * withoutUploadPrefix("8f3c1a2e-cat.jpg"); // "cat.jpg"
 * ```
 */
export function withoutUploadPrefix(fileName: string): string | null {
  const m = UPLOAD_PREFIX.exec(fileName);
  return m ? m[1] : null;
}

/**
 * The URL-decoded basename of a URI or path (`s3://b/dir/a%20b.jpg` → `a b.jpg`).
 *
 * @example
 * ```ts
 * basenameOf("s3://raw/cats/tom.jpg"); // "tom.jpg"
 * ```
 */
export function basenameOf(uri: string): string {
  return imageRefFromUrl(uri).fileName;
}

/**
 * Creates a matcher over a set of images. A reference matches by Sluice image id first, then
 * by URI, then by file name, then by file name without extension (`stems`); a candidate shared by
 * several images is reported as ambiguous rather than guessed.
 *
 * @example
 * ```ts
 * const match = createImageMatcher([{ id: "img_1", uris: ["s3://raw/a.jpg"] }]);
 * match(imageRefFromUrl("s3://raw/a.jpg")); // { kind: "matched", id: "img_1", by: "uri", ... }
 * ```
 */
export function createImageMatcher(
  images: readonly MatchableImage[],
): (ref: ImageRef) => MatchResult {
  const ids = new Set<string>();
  const byUri = new Map<string, Set<string>>();
  const byName = new Map<string, Set<string>>();
  const byStem = new Map<string, Set<string>>();
  const add = (map: Map<string, Set<string>>, key: string, id: string) => {
    if (!key) return;
    let set = map.get(key);
    if (!set) map.set(key, set = new Set());
    set.add(id);
  };
  for (const img of images) {
    ids.add(img.id);
    for (const uri of img.uris ?? []) {
      const ref = imageRefFromUrl(uri);
      for (const c of ref.candidates) if (c.includes("/") || c.includes(":")) add(byUri, c, img.id);
    }
    const names = img.fileNames ?? (img.uris ?? []).map(basenameOf);
    for (const n of names) {
      add(byName, n, img.id);
      const dot = n.lastIndexOf(".");
      if (dot > 0) add(byStem, n.slice(0, dot), img.id);
    }
  }
  return (ref) => {
    if (ref.sluiceImageId && ids.has(ref.sluiceImageId)) {
      return { kind: "matched", id: ref.sluiceImageId, by: "id", candidate: ref.sluiceImageId };
    }
    const tries = [
      [byUri, "uri", ref.candidates],
      [byName, "file_name", ref.candidates],
      [byStem, "file_stem", ref.stems ?? []],
    ] as const;
    for (const [map, by, candidates] of tries) {
      for (const c of candidates) {
        const hit = map.get(c);
        if (!hit) continue;
        if (hit.size === 1) return { kind: "matched", id: [...hit][0], by, candidate: c };
        return { kind: "ambiguous", ids: [...hit].sort(), by, candidate: c };
      }
    }
    return { kind: "none" };
  };
}

/** `s3://bucket/key` for S3 URIs and for virtual-hosted or path-style AWS S3 https URLs. */
function s3UriOf(u: URL): string | null {
  if (u.protocol === "s3:") return `s3://${u.host}${safeDecode(u.pathname)}`;
  if (u.protocol !== "https:" && u.protocol !== "http:") return null;
  const virtual = /^(.+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com$/.exec(u.hostname);
  if (virtual) return `s3://${virtual[1]}${safeDecode(u.pathname)}`;
  if (/^s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com$/.test(u.hostname)) {
    const path = safeDecode(u.pathname).replace(/^\//, "");
    return path.includes("/") ? `s3://${path}` : null;
  }
  return null;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
