/**
 * The augmentation policy (`augment_policy.py`), run by Debian's python3 + torch: presets, the
 * names' validation, and for every transform that boxes still frame the objects they belong to
 * (a bright square on a dark image, its box recomputed from the pixels after the transform).
 */
import assert from "node:assert/strict";
import { trainerUnavailable } from "../testdata/pipeline.ts";

const missing = await trainerUnavailable();
const CI = Deno.env.get("CI") === "true";
if (missing !== null && !CI) console.warn(`skipping augmentation checks: ${missing}`);
const DIR = new URL(".", import.meta.url).pathname;

const SCRIPT = String.raw`
import json, sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from augment_policy import PRESETS, TRANSFORMS, apply_policy, parse_policy

out = {"presets": PRESETS, "transforms": list(TRANSFORMS)}
errors = {}
for bad in ["vflip,sideways", "", "photo,hflip"]:
    try:
        parse_policy(bad)
        errors[bad] = None
    except ValueError as e:
        errors[bad] = str(e)
out["errors"] = errors
out["parsed"] = {"list": parse_policy("color_jitter, hflip"), "light": parse_policy("light")}

size = 64
def case():
    img = torch.zeros(4, 3, size, size)
    boxes = []
    for i in range(4):
        x, y, w, h = 6 + 3 * i, 10 + 2 * i, 14, 9
        img[i, :, y:y + h, x:x + w] = torch.tensor([0.9, 0.5, 0.2])[:, None, None]
        boxes.append(torch.tensor([[float(x), float(y), float(w), float(h)]]))
    return img, boxes, [torch.tensor([i % 3]) for i in range(4)]

def bbox_of(mask):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]

worst = {}
for name in ["hflip", "vflip", "transpose", "channel_shuffle", "scale_translate", "color_jitter", "mosaic"]:
    err = 0.0
    for seed in range(6):
        img, boxes, classes = case()
        gen = torch.Generator().manual_seed(seed)
        x, bx, cl, ig = apply_policy(img, boxes, classes, [name], gen)
        for i in range(4):
            # The object is what differs from the background; mosaic mixes 4 images, so check
            # each box against the pixels inside it instead.
            if name == "mosaic":
                for b in bx[i]:
                    x0, y0, w, h = [float(v) for v in b]
                    patch = x[i, :, int(round(y0)):int(round(y0 + h)), int(round(x0)):int(round(x0 + w))]
                    err = max(err, float(1.0 - (patch.sum(0) > 0.3).float().mean()))
                continue
            diff = (x[i] - x[i, :, :1, :1]).abs().sum(0).numpy() > 0.2
            got = bbox_of(diff)
            want = [float(v) for v in bx[i][0]] if len(bx[i]) else None
            if got is None or want is None:
                err = max(err, 0.0 if got == want else 99.0)
                continue
            err = max(err, max(abs(a - b) for a, b in zip(got, want)))
        assert all(len(c) == len(b) for c, b in zip(cl, bx))
    worst[name] = err
out["worst"] = worst
print(json.dumps(out))
`;

Deno.test({
  name: "augmentation policy: presets, validation, boxes follow the pixels",
  ignore: missing !== null && !CI,
  fn: async () => {
    if (missing !== null) throw new Error(`CI=true but the trainer cannot run: ${missing}`);
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", SCRIPT, DIR],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(r.presets.photo, ["hflip", "scale_translate", "color_jitter"]);
    for (const unsafe of ["vflip", "transpose", "channel_shuffle", "invert"]) {
      assert.ok(!r.presets.photo.includes(unsafe), `the default leaves out ${unsafe}`);
    }
    assert.deepEqual(r.presets.shapes, ["hflip", "vflip", "transpose", "channel_shuffle"]);
    assert.match(r.errors["vflip,sideways"], /unknown: sideways/);
    assert.match(r.errors[""], /expected a preset/);
    assert.match(r.errors["photo,hflip"], /unknown: photo/);
    assert.deepEqual(r.parsed.list, ["hflip", "color_jitter"], "applied in canonical order");
    assert.deepEqual(r.parsed.light, ["light"]);
    // Exact transforms move boxes exactly; the bilinear resample may blur an edge by ~1 px.
    for (const t of ["hflip", "vflip", "transpose", "channel_shuffle", "color_jitter"]) {
      assert.equal(r.worst[t], 0, `${t}: box off the object by ${r.worst[t]} px`);
    }
    assert.ok(
      r.worst.scale_translate <= 1.5,
      `scale_translate: off by ${r.worst.scale_translate} px`,
    );
    assert.ok(r.worst.mosaic <= 0.25, `mosaic: ${r.worst.mosaic} of a box's pixels not object`);
  },
});
