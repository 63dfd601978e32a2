#!/usr/bin/python3
"""Builds real ONNX detectors for the infer stage's tests and benchmark, in the trainer's format
(input "images" [batch, 3, S, S] RGB 0..1; outputs heatmap / size / offset at stride 4; decoding
outside the graph) with the trainer's own model card writer.

  make_models.py boxfinder --out DIR [--size 160]
      A detector with known behaviour: it finds the one pure-red axis-aligned rectangle in an
      image exactly (box from the red mask's extent, centre from its mean), class "red".
      Tests use it to check that a known box survives letterbox, inference and the mapping
      back to the original image.

  make_models.py centernet --out DIR [--size 320] [--classes 3] [--width 1.0] [--seed 0]
      The trainer's CenterNet (stages/train/trainer/model.py), randomly initialised, exported
      with the trainer's exporter; model.pt holds the same weights for PyTorch.
"""

import argparse
import json
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINER = os.path.normpath(os.path.join(HERE, "..", "..", "train", "trainer"))
sys.path.insert(0, TRAINER)

from export_onnx import INPUT_NAME, OUTPUT_NAMES, OPSET, export_onnx, model_card, write_json  # noqa: E402
from model import STRIDE, CenterNet  # noqa: E402


class BoxFinder(nn.Module):
    """Locates the red rectangle: mask = clamp(R - G, 0, 1); its column / row profiles (max over
    the other axis) give width and height as sums and the centre as the weighted mean, which
    stays exact to a fraction of a pixel through resampling (a blurred edge keeps its area)."""

    def __init__(self, size):
        super().__init__()
        side = size // STRIDE
        self.register_buffer("cells", torch.arange(side, dtype=torch.float32))
        self.register_buffer("px", torch.arange(size, dtype=torch.float32) + 0.5)

    def forward(self, images):
        mask = torch.clamp(images[:, 0] - images[:, 1], 0.0, 1.0)  # N, H, W
        col = torch.amax(mask, dim=1)  # N, W
        row = torch.amax(mask, dim=2)  # N, H
        w = torch.sum(col, dim=1)
        h = torch.sum(row, dim=1)
        cx = torch.sum(col * self.px, dim=1) / torch.clamp(w, min=1e-6)
        cy = torch.sum(row * self.px, dim=1) / torch.clamp(h, min=1e-6)
        centres = self.cells * STRIDE + STRIDE / 2
        dx = centres[None, None, :] - cx[:, None, None]  # N, 1, side
        dy = centres[None, :, None] - cy[:, None, None]  # N, side, 1
        present = torch.clamp(w - 2.0, 0.0, 1.0)[:, None, None]
        score = torch.exp(-(dx * dx + dy * dy) / 32.0) * present  # N, side, side
        ones = torch.ones_like(score)
        size = torch.stack([ones * w[:, None, None], ones * h[:, None, None]], dim=1)
        offx = (cx[:, None, None] / STRIDE - self.cells[None, None, :]) * ones
        offy = (cy[:, None, None] / STRIDE - self.cells[None, :, None]) * ones
        return score[:, None], size, torch.stack([offx, offy], dim=1)


def export(module, size, path):
    dummy = torch.rand(1, 3, size, size)
    kwargs = dict(
        input_names=[INPUT_NAME],
        output_names=OUTPUT_NAMES,
        dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME] + OUTPUT_NAMES},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    import inspect
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(module.eval(), (dummy,), path, **kwargs)


def boxfinder(args):
    os.makedirs(args.out, exist_ok=True)
    export(BoxFinder(args.size), args.size, os.path.join(args.out, "model.onnx"))
    labels = ["red"]
    card = model_card(args.size, labels, [1], {"note": "analytic red-box finder, not trained"},
                      {"model": "boxfinder"}, {"onnx_checker": "not run"})
    write_json(os.path.join(args.out, "model_card.json"), card)
    write_json(os.path.join(args.out, "labels.json"), labels)


def centernet(args):
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    model = CenterNet(args.classes, args.width).eval()
    export_onnx(model, args.size, os.path.join(args.out, "model.onnx"))
    torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    labels = [f"class{i}" for i in range(args.classes)]
    card = model_card(args.size, labels, list(range(1, args.classes + 1)), {"note": "random init"},
                      {"model": "centernet-dw", "width": args.width, "seed": args.seed},
                      {"onnx_checker": "not run"})
    write_json(os.path.join(args.out, "model_card.json"), card)
    write_json(os.path.join(args.out, "labels.json"), labels)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", required=True)
    b = sub.add_parser("boxfinder")
    b.add_argument("--out", required=True)
    b.add_argument("--size", type=int, default=160)
    c = sub.add_parser("centernet")
    c.add_argument("--out", required=True)
    c.add_argument("--size", type=int, default=320)
    c.add_argument("--classes", type=int, default=3)
    c.add_argument("--width", type=float, default=1.0)
    c.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.size % 32 != 0:
        p.error(f"--size: expected a multiple of 32, found {args.size}")
    torch.set_num_threads(1)
    (boxfinder if args.kind == "boxfinder" else centernet)(args)
    print(json.dumps({"out": args.out, "kind": args.kind}))


if __name__ == "__main__":
    main()
