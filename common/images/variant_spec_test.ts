import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { InvalidKeyError } from "../objectstore/mod.ts";
import {
  canonicalJson,
  compileKeyTemplate,
  DEFAULT_LETTERBOX_BACKGROUND,
  DEFAULT_VARIANT_KEY_TEMPLATE,
  DEFAULT_VARIANTS,
  KeyTemplateError,
  parseVariantSpec,
  parseVariantSpecs,
  specHash,
  VariantSpecError,
} from "./variant_spec.ts";

const SHA = "ab" + "0123456789abcdef".repeat(3) + "0123456789abcd";

Deno.test("variant specs", async (t) => {
  await t.step("defaults are filled in and documented defaults hold", () => {
    const s = parseVariantSpec({ name: "640", width: 640, height: 480 });
    assert.deepEqual(s, {
      name: "640",
      width: 640,
      height: 480,
      mode: "fit",
      format: "jpeg",
      quality: 85,
      background: DEFAULT_LETTERBOX_BACKGROUND,
    });
    assert.deepEqual(
      DEFAULT_VARIANTS.map((v) =>
        `${v.name}:${v.width}x${v.height}:${v.mode}:${v.format}:${v.quality}`
      ),
      [
        "320:320x320:letterbox:jpeg:85",
        "640:640x640:letterbox:jpeg:85",
        "1280:1280x1280:fit:jpeg:85",
      ],
    );
    assert.throws(() => (DEFAULT_VARIANTS as unknown as unknown[]).push({}), TypeError);
  });

  await t.step("bad specs are refused with the field and what was expected", () => {
    const cases: [unknown, RegExp][] = [
      [{ name: "a", width: 0, height: 10 }, /width/],
      [{ name: "a", width: 10, height: 10, mode: "zoom" }, /mode/],
      [{ name: "a", width: 10, height: 10, quality: 101 }, /quality/],
      [{ name: "a", width: 10, height: 10, background: "grey" }, /background: expected a colour/],
      [{ name: "a/b", width: 10, height: 10 }, /name: expected 1-64 characters/],
      [{ name: "a", width: 10, height: 10, colour: "#000000" }, /colour|Unrecognized/i],
      [{ name: "a", width: 10.5, height: 10 }, /width/],
    ];
    for (const [input, re] of cases) {
      assert.throws(() => parseVariantSpec(input), (e: unknown) => {
        assert.ok(e instanceof VariantSpecError);
        assert.equal(e.code, "invalid_variant_spec");
        assert.match(e.message, re);
        return true;
      });
    }
    assert.throws(
      () =>
        parseVariantSpecs([{ name: "a", width: 1, height: 1 }, { name: "a", width: 2, height: 2 }]),
      /expected unique variant names, found "a" twice/,
    );
    assert.throws(() => parseVariantSpecs([]), VariantSpecError);
  });

  await t.step("canonicalJson sorts keys at every level", () => {
    assert.equal(
      canonicalJson({ b: 1, a: [{ d: 2, c: 3 }], e: undefined }),
      '{"a":[{"c":3,"d":2}],"b":1}',
    );
    assert.throws(() => canonicalJson({ a: NaN }), /finite/);
  });

  await t.step("specHash is stable, order-independent and default-independent", () => {
    const a = specHash({ name: "640", width: 640, height: 640, mode: "letterbox" });
    const b = specHash({
      background: "#727272",
      quality: 85,
      format: "jpeg",
      mode: "letterbox",
      height: 640,
      width: 640,
      name: "640",
    });
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{16}$/);
    // Pinned: the hash must not change between runs or releases (objects are keyed by it).
    assert.equal(
      a,
      specHash(parseVariantSpec({ name: "640", width: 640, height: 640, mode: "letterbox" })),
    );
    assert.equal(
      a,
      createHash("sha256")
        .update(
          '{"background":"#727272","format":"jpeg","height":640,"mode":"letterbox","name":"640","quality":85,"width":640}',
        )
        .digest("hex").slice(0, 16),
    );
  });

  await t.step("specHash changes with anything that changes the output", () => {
    const base = { name: "v", width: 640, height: 640, mode: "letterbox" as const };
    const h = specHash(base);
    for (
      const change of [
        { width: 641 },
        { height: 639 },
        { mode: "cover" as const },
        { format: "webp" as const },
        { quality: 84 },
        { background: "#000000" },
        { name: "w" },
      ]
    ) {
      assert.notEqual(specHash({ ...base, ...change }), h, JSON.stringify(change));
    }
    // Background cannot change a fit variant: same hash.
    assert.equal(
      specHash({ name: "f", width: 10, height: 10, mode: "fit", background: "#000000" }),
      specHash({ name: "f", width: 10, height: 10, mode: "fit" }),
    );
    assert.equal(
      specHash({ name: "f", width: 10, height: 10, mode: "letterbox", background: "#ABCDEF" }),
      specHash({ name: "f", width: 10, height: 10, mode: "letterbox", background: "#abcdef" }),
    );
  });
});

Deno.test("variant key templates", async (t) => {
  const vars = {
    prefix: "variants",
    variant: "640",
    sha256: SHA,
    ext: "jpg",
    specHash: "0011223344556677",
  };

  await t.step("default template is content-addressed and spec-versioned", () => {
    const k = compileKeyTemplate(DEFAULT_VARIANT_KEY_TEMPLATE);
    assert.equal(k.render(vars), `variants/640/0011223344556677/ab/${SHA}.jpg`);
    assert.deepEqual(k.placeholders, ["prefix", "variant", "specHash", "aa", "sha256", "ext"]);
  });

  await t.step("every placeholder renders; an empty prefix leaves no empty segment", () => {
    const k = compileKeyTemplate(
      "{prefix}/{variant}/v{version}/{aa}/{stem}-{sha256}.{specHash}.{ext}",
    );
    assert.equal(
      k.render({ ...vars, prefix: "", version: 3, stem: "cat" }),
      `640/v3/ab/cat-${SHA}.0011223344556677.jpg`,
    );
    assert.equal(
      compileKeyTemplate("{prefix}/{variant}/{stem}.{ext}").render({ ...vars, stem: "a/b" }),
      "variants/640/a/b.jpg",
    );
  });

  await t.step("unknown placeholders and stray braces are refused at config time", () => {
    assert.throws(() => compileKeyTemplate("{prefix}/{size}/{sha256}"), (e: unknown) => {
      assert.ok(e instanceof KeyTemplateError);
      assert.equal(e.code, "invalid_key_template");
      assert.match(e.message, /unknown placeholder \{size\}, expected one of \{prefix\}/);
      return true;
    });
    assert.throws(() => compileKeyTemplate("{prefix}/{variant}/{sha256"), /unbalanced brace/);
    assert.throws(() => compileKeyTemplate("{variant}/}{sha256}"), /unbalanced brace/);
    assert.throws(
      () => compileKeyTemplate("{prefix}/{variant}.{ext}"),
      /expected \{sha256\} or \{stem\}/,
    );
    assert.throws(
      () => compileKeyTemplate("{prefix}/{sha256}.{ext}"),
      /expected \{variant\} or \{specHash\}/,
    );
    assert.throws(() => compileKeyTemplate(""), /non-empty/);
  });

  await t.step("missing or malformed values are refused when rendering", () => {
    assert.throws(
      () => compileKeyTemplate("{variant}/v{version}/{sha256}").render(vars),
      /expected version as an integer/,
    );
    assert.throws(
      () => compileKeyTemplate("{variant}/{stem}").render(vars),
      /uses \{stem\} but no value/,
    );
    assert.throws(
      () => compileKeyTemplate(DEFAULT_VARIANT_KEY_TEMPLATE).render({ ...vars, sha256: "XY" }),
      /64 lowercase hex/,
    );
    assert.throws(
      () => compileKeyTemplate(DEFAULT_VARIANT_KEY_TEMPLATE).render({ ...vars, variant: "../x" }),
      /\{variant\}/,
    );
    assert.throws(
      () => compileKeyTemplate("{variant}/{stem}").render({ ...vars, stem: "../../etc" }),
      InvalidKeyError,
    );
  });
});
