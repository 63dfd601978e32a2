/**
 * `sluice-infer --eval`'s pictures: PR curves per class, the confusion matrix and a contact sheet
 * of the scored images (`common/eval/pictures.ts`), written into the model version's output
 * directory (`<prefix>/<model>/<version>/eval/*.png`) in the dataset store.
 *
 * @example
 * ```ts
 * const uris = await publishEvalPictures(store, "predictions/det/3", scored);
 * ```
 * @module
 */
import { keyOfRecorded } from "../../common/objectstore/recorded_key.ts";
import { writeEvalPictures } from "../../common/eval/pictures.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { ScoredSet } from "./evaluate.ts";

/** Draws the pictures of `scored` and puts them under `<dir>/eval/`; returns their URIs. */
export async function publishEvalPictures(
  store: Pick<ObjectStore, "url" | "uriFor" | "getBytes" | "put">,
  dir: string,
  scored: ScoredSet,
): Promise<string[]> {
  const root = store.url.replace(/\/+$/, "") + "/";
  const read = async (img: { id: number | string }) => {
    const uris = scored.imageUris.get(img.id) ?? [];
    // A store-relative key (what the manifest records) or an absolute URI of this store.
    const key = uris.map((u) => keyOfRecorded(store, u)).find((k) => k !== null);
    if (!key) {
      throw new Error(`image ${img.id}: expected a URI in ${root}, found ${uris.join(", ")}`);
    }
    return await store.getBytes(key);
  };
  const tmp = await Deno.makeTempDir({ prefix: "sluice-eval-" });
  try {
    const files = await writeEvalPictures(tmp, {
      gt: scored.gt,
      predictions: scored.predictions,
      image: read,
    });
    const uris: string[] = [];
    for (const f of files) {
      const key = `${dir}/eval/${f.slice(tmp.length + 1)}`;
      await store.put(key, await Deno.readFile(f), { contentType: "image/png" });
      uris.push(store.uriFor(key));
    }
    return uris;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
