import assert from "node:assert/strict";
import { KeyTemplateError, parseVariantSpec, specHash } from "../../common/images/variant_spec.ts";
import {
  compileNormalizeKeyTemplate,
  DEFAULT_NORMALIZE_KEY_TEMPLATE,
  variantKey,
  variantStem,
} from "./variant_keys.ts";

const SHA = "ab" + "0123456789abcdef".repeat(3) + "0123456789abcd";

Deno.test("variant keys", async (t) => {
  const spec = parseVariantSpec({ name: "640", width: 640, height: 640, mode: "letterbox" });
  const hash = specHash(spec);

  await t.step("the default key is prefix/variant/specHash/aa/sha256.ext", () => {
    const keys = compileNormalizeKeyTemplate(DEFAULT_NORMALIZE_KEY_TEMPLATE);
    assert.equal(
      variantKey(keys, { prefix: "variants", spec, specHash: hash, version: 3, sha256: SHA }),
      `variants/640/${hash}/ab/${SHA}.jpg`,
    );
    assert.equal(variantStem(SHA, hash), `${hash}/ab/${SHA}`);
  });

  await t.step("a changed spec gives a different key; the same spec the same key", () => {
    const keys = compileNormalizeKeyTemplate(DEFAULT_NORMALIZE_KEY_TEMPLATE);
    const other = parseVariantSpec({ ...spec, quality: 70 });
    const a = variantKey(keys, { prefix: "v", spec, specHash: hash, version: 1, sha256: SHA });
    const b = variantKey(keys, {
      prefix: "v",
      spec: other,
      specHash: specHash(other),
      version: 2,
      sha256: SHA,
    });
    assert.notEqual(a, b);
    assert.equal(
      a,
      variantKey(keys, { prefix: "v", spec, specHash: hash, version: 1, sha256: SHA }),
    );
  });

  await t.step("format picks the extension; an empty prefix drops its segment", () => {
    const keys = compileNormalizeKeyTemplate("{prefix}/{variant}/v{version}/{sha256}.{ext}");
    const webp = parseVariantSpec({ ...spec, format: "webp" });
    assert.equal(
      variantKey(keys, {
        prefix: "",
        spec: webp,
        specHash: specHash(webp),
        version: 2,
        sha256: SHA,
      }),
      `640/v2/${SHA}.webp`,
    );
  });

  await t.step("templates that would overwrite on a spec change are refused", () => {
    for (const t of ["{prefix}/{variant}/{sha256}.{ext}", "{variant}/{aa}/{sha256}"]) {
      assert.throws(
        () => compileNormalizeKeyTemplate(t),
        (e: unknown) =>
          e instanceof KeyTemplateError && /\{stem\}, \{specHash\} or \{version\}/.test(e.message),
      );
    }
    assert.throws(() => compileNormalizeKeyTemplate("{prefix}/{size}/{stem}"), KeyTemplateError);
  });
});
