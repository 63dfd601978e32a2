import assert from "node:assert/strict";
import {
  canonicalLabel,
  LabelConfigError,
  namesFromLabelConfig,
  parseLabelConfig,
  readLabelConfig,
} from "./label_config.ts";

const TEMPLATE = new URL("./testdata/label_config_detection.xml", import.meta.url).pathname;

Deno.test("Label Studio label configs", async (t) => {
  await t.step("the object-detection template: names, data key, ids from 0", async () => {
    const cfg = await readLabelConfig(TEMPLATE);
    assert.deepEqual(cfg.images, [{ name: "image", dataKey: "image" }]);
    assert.deepEqual(cfg.rectangle, {
      type: "rectanglelabels",
      name: "label",
      toName: "image",
      labels: ["Airplane", "Car"],
    });
    assert.deepEqual([...cfg.categoryIds], [["Airplane", 0], ["Car", 1]]);
    assert.deepEqual(namesFromLabelConfig(cfg), {
      fromName: "label",
      toName: "image",
      dataKey: "image",
      polygonFromName: "polygon",
    });
  });

  await t.step("category ids as label-studio-converter assigns them", () => {
    // Explicit categories are kept; the rest are sorted by name and fill the free ids from 0.
    const cfg = parseLabelConfig(`<View>
      <Image name="img" value="$photo" zoom="true"/>
      <RectangleLabels name="boxes" toName="img">
        <Label value="zebra"/><Label value="ant" category="1"/><Label value="cow" alias="C"/>
      </RectangleLabels>
      <PolygonLabels name="outline" toName="img">
        <Label value="bee"/><Label value="ant" category="1"/>
      </PolygonLabels>
    </View>`);
    assert.deepEqual([...cfg.categoryIds].sort((a, b) => a[1] - b[1]), [
      ["bee", 0],
      ["ant", 1],
      ["cow", 2],
      ["zebra", 3],
    ]);
    assert.deepEqual(cfg.labels, ["bee", "ant", "cow", "zebra"]);
    assert.equal(canonicalLabel(cfg, "C"), "cow");
    assert.equal(canonicalLabel(cfg, "horse"), null);
    const names = namesFromLabelConfig(cfg, { needPolygons: true, labels: ["ant", "C"] });
    assert.deepEqual(names, {
      fromName: "boxes",
      toName: "img",
      dataKey: "photo",
      polygonFromName: "outline",
    });
  });

  await t.step("collisions and mismatches are errors that say what was found", () => {
    const bad = (xml: string, re: RegExp) =>
      assert.throws(
        () => parseLabelConfig(xml),
        (e: unknown) => e instanceof LabelConfigError && re.test(e.message),
      );
    const img = '<Image name="i" value="$image"/>';
    bad(
      `<View>${img}<RectangleLabels name="r" toName="i"><Label value="a" category="2"/><Label value="b" category="2"/></RectangleLabels></View>`,
      /category 2 is given to both "a" and "b"/,
    );
    bad(
      `<View>${img}<RectangleLabels name="r" toName="i"><Label value="a" alias="b"/><Label value="b"/></RectangleLabels></View>`,
      /alias "b" of "a" is also a label of its own/,
    );
    bad(
      `<View>${img}<RectangleLabels name="r" toName="picture"><Label value="a"/></RectangleLabels></View>`,
      /toName="picture", expected one of the Image tags: i/,
    );
    bad(`<View><Text name="t" value="$text"/></View>`, /expected an <Image> tag/);
    bad(`<View>${img}<RectangleLabels name="r" toName="i">`, /expected XML/);
    bad(
      `<View>${img}<RectangleLabels name="r" toName="i"><Label value="a" category="x"/></RectangleLabels></View>`,
      /expected category="N"/,
    );
    const polyOnly = parseLabelConfig(
      `<View>${img}<PolygonLabels name="p" toName="i"><Label value="a"/></PolygonLabels></View>`,
    );
    assert.throws(() => namesFromLabelConfig(polyOnly), /expected a <RectangleLabels> control/);
    const rectOnly = parseLabelConfig(
      `<View>${img}<RectangleLabels name="r" toName="i"><Label value="a"/></RectangleLabels></View>`,
    );
    assert.throws(
      () => namesFromLabelConfig(rectOnly, { needPolygons: true }),
      /no <PolygonLabels> control/,
    );
    assert.throws(
      () => namesFromLabelConfig(rectOnly, { labels: ["a", "b"] }),
      /labels "b" are not in the config \(it has "a"\)/,
    );
  });

  await t.step("a missing file is a named error", async () => {
    await assert.rejects(() => readLabelConfig("/nonexistent/config.xml"), /cannot read/);
  });
});
