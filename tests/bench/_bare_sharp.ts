/**
 * The yardstick of the normalize benchmark: the plain sharp script a careful engineer would write.
 * Read the file, decode it ONCE (EXIF orientation applied, shrink-on-load) to fit 1280, then encode
 * three variants from that one decode: 1280 fit, 640 letterbox, 320 cover, JPEG q85; 2 images in
 * flight. No limits, no hashing, no manifest: the bound the stage is measured against.
 *
 * @example
 * ```sh
 * deno run -A tests/bench/_bare_sharp.ts --list files.txt --out /tmp/out [--in-flight 2]
 * ```
 * @module
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i === -1 ? undefined : Deno.args[i + 1];
}

const list = arg("list"), out = arg("out");
if (!list || !out) throw new Error("usage: _bare_sharp.ts --list FILE --out DIR [--in-flight N]");
const inFlight = Number(arg("in-flight") ?? 2);
const files = (await Deno.readTextFile(list)).split("\n").filter(Boolean);
await Deno.mkdir(out, { recursive: true });

async function one(file: string, n: number): Promise<void> {
  const bytes = await Deno.readFile(file);
  // One decode: orientation applied, shrink-on-load picks the largest JPEG scale ≥ 1280.
  const { data, info } = await sharp(bytes).rotate()
    .resize(1280, 1280, { fit: "inside", withoutEnlargement: true })
    .raw().toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const from = () => sharp(data, raw);
  const [a, b, c] = await Promise.all([
    from().jpeg({ quality: 85 }).toBuffer(),
    from().resize(640, 640, { fit: "contain", background: { r: 0, g: 0, b: 0 } })
      .jpeg({ quality: 85 }).toBuffer(),
    from().resize(320, 320, { fit: "cover" }).jpeg({ quality: 85 }).toBuffer(),
  ]);
  await Promise.all([
    writeFile(join(out!, `${n}_1280.jpg`), a),
    writeFile(join(out!, `${n}_640.jpg`), b),
    writeFile(join(out!, `${n}_320.jpg`), c),
  ]);
}

let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: Math.max(1, inFlight) }, async () => {
  while (next < files.length) {
    const n = next++;
    await one(files[n], n);
  }
}));
console.log(JSON.stringify({ images: files.length, seconds: (performance.now() - t0) / 1000 }));
