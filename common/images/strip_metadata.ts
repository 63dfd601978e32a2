/**
 * Removes personal metadata (EXIF with its GPS block, XMP, IPTC, text chunks) from encoded
 * images without re-encoding the pixels where the format allows it: JPEG loses its APP1 (EXIF,
 * XMP) and APP13 (IPTC/Photoshop) segments, PNG its `eXIf`, `tEXt`, `iTXt`, `zTXt` and `tIME`
 * chunks, WebP its `EXIF` and `XMP ` chunks (the `VP8X` flags are updated). The ICC profile
 * (colour, not personal) is kept. Other formats are returned as they are.
 *
 * @example
 * ```ts
 * const clean = stripPersonalMetadata(jpegBytes); // same pixels, no EXIF/GPS
 * ```
 * @module
 */

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_DROPPED = new Set(["eXIf", "tEXt", "iTXt", "zTXt", "tIME"]);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function stripJpeg(b: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [b.subarray(0, 2)];
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return b; // not a marker where one must be: leave the bytes alone
    const marker = b[i + 1];
    if (marker === 0xda) break; // start of scan: the rest is image data
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      parts.push(b.subarray(i, i + 2));
      i += 2;
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    if (len < 2 || i + 2 + len > b.length) return b;
    const drop = marker === 0xe1 || marker === 0xed; // APP1 (EXIF, XMP), APP13 (IPTC)
    if (!drop) parts.push(b.subarray(i, i + 2 + len));
    i += 2 + len;
  }
  parts.push(b.subarray(i));
  return concat(parts);
}

function stripPng(b: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [b.subarray(0, 8)];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 8;
  while (i + 12 <= b.length) {
    const len = view.getUint32(i);
    const type = String.fromCharCode(...b.subarray(i + 4, i + 8));
    const end = i + 12 + len;
    if (end > b.length) return b;
    if (!PNG_DROPPED.has(type)) parts.push(b.subarray(i, end));
    i = end;
    if (type === "IEND") break;
  }
  return concat(parts);
}

function stripWebp(b: Uint8Array): Uint8Array {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const parts: Uint8Array[] = [];
  let i = 12;
  let vp8x: Uint8Array | undefined;
  while (i + 8 <= b.length) {
    const type = String.fromCharCode(...b.subarray(i, i + 4));
    const len = view.getUint32(i + 4, true);
    const end = i + 8 + len + (len & 1);
    if (end > b.length) return b;
    const chunk = b.slice(i, end);
    if (type === "VP8X") vp8x = chunk;
    if (type !== "EXIF" && type !== "XMP ") parts.push(chunk);
    i = end;
  }
  if (vp8x) vp8x[8] &= ~(0x08 | 0x04); // clear the EXIF and XMP flags
  const body = concat(parts);
  const head = new Uint8Array(12);
  head.set(b.subarray(0, 12));
  new DataView(head.buffer).setUint32(4, body.byteLength + 4, true);
  return concat([head, body]);
}

/**
 * The same image without personal metadata (see the module documentation); bytes it does not
 * understand are returned unchanged.
 *
 * @example
 * ```ts
 * stripPersonalMetadata(await Deno.readFile("photo.jpg"));
 * ```
 */
export function stripPersonalMetadata(bytes: Uint8Array): Uint8Array {
  if (bytes.length > 4 && bytes[0] === 0xff && bytes[1] === 0xd8) return stripJpeg(bytes);
  if (bytes.length > 8 && PNG_SIGNATURE.every((v, i) => bytes[i] === v)) return stripPng(bytes);
  const riff = String.fromCharCode(...bytes.subarray(0, 4));
  const webp = String.fromCharCode(...bytes.subarray(8, 12));
  if (riff === "RIFF" && webp === "WEBP") return stripWebp(bytes);
  return bytes;
}
