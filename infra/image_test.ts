/**
 * The image setting: default repository and release tag, validation of both parts.
 * @module
 */
import assert from "node:assert/strict";
import { imageRef, ImageSettingsSchema } from "./image.ts";
import { SLUICE_RELEASE } from "./release.ts";

Deno.test("image reference: ghcr.io/sluice/sluice:<release> by default, tag a setting", () => {
  assert.equal(imageRef(ImageSettingsSchema.parse({})), `ghcr.io/sluice/sluice:${SLUICE_RELEASE}`);
  assert.equal(
    imageRef(
      ImageSettingsSchema.parse({ repository: "registry.local:5000/ml/sluice", tag: "2.0.0-rc1" }),
    ),
    "registry.local:5000/ml/sluice:2.0.0-rc1",
  );
  const bad = ImageSettingsSchema.safeParse({ repository: "GHCR.io/Sluice", tag: "a b" });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error!.issues.map((i) => i.path[0]).sort(), ["repository", "tag"]);
});
