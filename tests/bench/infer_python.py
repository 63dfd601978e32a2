#!/usr/bin/python3
"""The Python side of tests/bench/infer.ts: the same detector on the same images, the way a
Python service would run it, timed end to end per round (decode, letterbox, batch, inference,
box decoding, mapping back to original pixels).

  infer_python.py --model-dir DIR --list IMAGES.txt [--batch 8] [--threads N] [--threshold 0.05]
                  [--rounds 3] [--backend auto|onnxruntime|torch]

Backend: onnxruntime on model.onnx when importable; else PyTorch running the trainer's module
(stages/train/trainer/model.py) with the weights the trainer saved beside the ONNX file
(model.pt). Prints one JSON line: {"backend", "images", "rounds_s": [...], "boxes"}.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINER = os.path.normpath(os.path.join(HERE, "..", "..", "stages", "train", "trainer"))
sys.path.insert(0, TRAINER)

from decode import decode_batch  # noqa: E402

PAD = 114  # the letterbox grey of the normalize stage and the trainer (#727272)


def letterbox(path, size):
    """Decode (JPEG shrink-on-load via draft), letterbox to size x size; returns CHW uint8 and
    the mapping (scale_x, scale_y, pad_x, pad_y) from original to tensor pixels."""
    img = Image.open(path)
    w0, h0 = img.size
    s = min(size / w0, size / h0)
    cw, ch = max(1, min(size, round(w0 * s))), max(1, min(size, round(h0 * s)))
    if img.format == "JPEG":
        img.draft("RGB", (cw, ch))
    img = img.convert("RGB").resize((cw, ch), Image.LANCZOS)
    px, py = (size - cw) // 2, (size - ch) // 2
    canvas = np.full((size, size, 3), PAD, dtype=np.uint8)
    canvas[py:py + ch, px:px + cw] = np.asarray(img)
    return canvas.transpose(2, 0, 1), (cw / w0, ch / h0, px, py), (w0, h0)


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, model_dir, threads):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), opts,
                                         providers=["CPUExecutionProvider"])

    def run(self, x):
        return self.sess.run(["heatmap", "size", "offset"], {"images": x})


class TorchBackend:
    name = "torch"

    def __init__(self, model_dir, threads, card):
        import torch
        from model import CenterNet, ExportWrapper
        torch.set_num_threads(threads)
        self.torch = torch
        width = float(card.get("training", {}).get("width", 1.0))
        net = CenterNet(len(card["labels"]), width)
        net.load_state_dict(torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu"))
        self.model = ExportWrapper(net.eval()).eval()

    def run(self, x):
        with self.torch.inference_mode():
            return [t.numpy() for t in self.model(self.torch.from_numpy(x))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--list", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threshold", type=float, default=0.05)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--backend", choices=["auto", "onnxruntime", "torch"], default="auto")
    a = p.parse_args()
    with open(os.path.join(a.model_dir, "model_card.json"), encoding="utf-8") as f:
        card = json.load(f)
    size = int(card["input"]["shape"][3])
    stride = int(card.get("stride", 4))
    dec = card.get("decode", {})
    backend = None
    if a.backend in ("auto", "onnxruntime"):
        try:
            backend = OrtBackend(a.model_dir, a.threads)
        except ImportError:
            if a.backend == "onnxruntime":
                raise
            print("infer_python: onnxruntime is not importable; running PyTorch instead "
                  "(the row is labelled torch and not compared with onnxruntime-node)", file=sys.stderr)
    if backend is None:
        backend = TorchBackend(a.model_dir, a.threads, card)
    with open(a.list, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]

    def one_round():
        boxes = 0
        for i in range(0, len(paths), a.batch):
            chunk = paths[i:i + a.batch]
            prepared = [letterbox(path, size) for path in chunk]
            x = np.stack([c for c, _, _ in prepared]).astype(np.float32) / 255.0
            hm, sz, off = backend.run(x)
            dets = decode_batch(hm, sz, off, stride=stride, input_w=size, input_h=size,
                                score_threshold=max(a.threshold, dec.get("score_threshold", 0.05)),
                                pre_nms_top_k=dec.get("pre_nms_top_k", 100), nms_iou=dec.get("nms_iou", 0.5),
                                top_k=dec.get("top_k", 100))
            for (_, (sx, sy, px, py), (w0, h0)), ds in zip(prepared, dets):
                for d in ds:
                    x0, y0, w, h = d["bbox"]
                    ox, oy = (x0 - px) / sx, (y0 - py) / sy
                    ox2, oy2 = min(w0, ox + w / sx), min(h0, oy + h / sy)
                    ox, oy = max(0.0, ox), max(0.0, oy)
                    if ox2 > ox and oy2 > oy:
                        boxes += 1
        return boxes

    one_round()  # warm-up: first-call allocations, file cache
    rounds, boxes = [], 0
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        boxes = one_round()
        rounds.append(time.perf_counter() - t0)
    print(json.dumps({"backend": backend.name, "images": len(paths), "rounds_s": rounds, "boxes": boxes,
                      "threads": a.threads, "batch": a.batch}))


if __name__ == "__main__":
    main()
