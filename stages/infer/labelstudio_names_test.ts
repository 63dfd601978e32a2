import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LabelConfigError } from "../../common/annotations/label_config.ts";
import { fakeLabelStudio, makeJwt } from "../../tests/support/fake_labelstudio.ts";
import { testConfig } from "./_test_fixtures.ts";
import { labelStudioPusher } from "./labelstudio_push.ts";
import { loadLabelStudioNames } from "./labelstudio_names.ts";
import { labelStudioTasks } from "./outputs.ts";
import { createInferStage } from "./stage.ts";

const CONFIG = `<View>
  <Image name="photo" value="$img"/>
  <RectangleLabels name="objects" toName="photo">
    <Label value="cat"/><Label value="dog"/>
  </RectangleLabels>
</View>`;

const IMAGE = {
  id: "img_1",
  url: "https://cdn.example/a.jpg",
  fileName: "a.jpg",
  width: 100,
  height: 50,
  boxes: [{ label: "cat", bbox: [10, 5, 20, 10] as [number, number, number, number], score: 0.9 }],
  score: 0.9,
};
const REF = { name: "det", version: "3", alias: "champion" };

Deno.test("pre-annotations take their names from the label config", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "ls-names-"));
  try {
    const file = join(dir, "config.xml");
    await writeFile(file, CONFIG);

    await t.step("without a config: Label Studio's template names", async () => {
      const target = await loadLabelStudioNames({});
      assert.deepEqual(target.names, { fromName: "label", toName: "image", dataKey: "image" });
      target.checkLabels(["anything"]);
    });

    await t.step(
      "with a config: its tag names and data key; the project accepts them",
      async () => {
        const target = await loadLabelStudioNames({ labelStudioLabelConfig: file });
        assert.deepEqual(target.names, { fromName: "objects", toName: "photo", dataKey: "img" });
        const tasks = labelStudioTasks([IMAGE], REF, target.names);
        assert.equal(tasks[0].data.img, IMAGE.url);
        const r = tasks[0].predictions![0].result[0];
        assert.deepEqual([r.from_name, r.to_name], ["objects", "photo"]);
        // A loopback Label Studio whose project has this config takes the configured names and
        // refuses the hard-coded defaults, as recent Label Studio versions do.
        const pat = makeJwt({ token_type: "refresh" });
        const ls = fakeLabelStudio({
          pat,
          projects: { 4: { fromNames: ["objects"], toNames: ["photo"] } },
        });
        try {
          const push = labelStudioPusher({ url: ls.url, token: pat, projectId: 4 });
          assert.equal((await push(tasks)).taskCount, 1);
          const err = await push(labelStudioTasks([IMAGE], REF)).catch((e) => e);
          assert.equal(err.status, 400);
        } finally {
          await ls.close();
        }
      },
    );

    await t.step("a model label the config lacks is an error naming it", async () => {
      const target = await loadLabelStudioNames({ labelStudioLabelConfig: file });
      target.checkLabels(["dog", "cat"]);
      assert.throws(
        () => target.checkLabels(["cat", "horse"]),
        (e: unknown) =>
          e instanceof LabelConfigError &&
          /config\.xml: the model's labels "horse" are not in the config/.test(e.message),
      );
    });

    await t.step("the infer stage refuses to start with an unusable config", async () => {
      const bad = join(dir, "bad.xml");
      await writeFile(
        bad,
        '<View><Image name="i" value="$image"/><PolygonLabels name="p" toName="i"><Label value="a"/></PolygonLabels></View>',
      );
      const config = await testConfig(dir, { SLUICE_INFER_LABEL_STUDIO_LABEL_CONFIG: bad });
      await assert.rejects(
        () => createInferStage(config),
        (e: unknown) =>
          e instanceof LabelConfigError && /expected a <RectangleLabels> control/.test(e.message),
      );
      const missing = await testConfig(dir, {
        SLUICE_INFER_LABEL_STUDIO_LABEL_CONFIG: join(dir, "nope.xml"),
      });
      await assert.rejects(() => createInferStage(missing), /cannot read .*nope\.xml/);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
