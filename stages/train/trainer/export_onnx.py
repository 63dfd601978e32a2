"""ONNX export (opset 13, dynamic batch, fixed spatial size), verification and the model card."""

import inspect
import json
import os
import warnings

import torch

from decode import DEFAULTS as DECODE_DEFAULTS
from model import INPUT_MEAN, INPUT_STD, STRIDE, ExportWrapper

INPUT_NAME = "images"
OUTPUT_NAMES = ["heatmap", "size", "offset"]
OPSET = 13


def export_onnx(model, input_size, path):
    """Exports `model` (a CenterNet, in eval mode) to `path`; returns the wrapper used."""
    wrapper = ExportWrapper(model).eval()
    dummy = torch.rand(1, 3, input_size, input_size)
    kwargs = dict(
        input_names=[INPUT_NAME],
        output_names=OUTPUT_NAMES,
        dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME] + OUTPUT_NAMES},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    # torch >= 2.5 defaults to the dynamo exporter, which needs onnxscript; the TorchScript
    # exporter is the one that works on both torch 1.13 and 2.x.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad(), warnings.catch_warnings():
        # torch 1.13 warns about shape inference of constants on every export; harmless here
        # (verify_onnx checks the declared output shapes).
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(wrapper, (dummy,), path, **kwargs)
    return wrapper


def verify_onnx(path, wrapper, input_size, num_classes):
    """onnx.checker plus declared shapes; with python onnxruntime present, also compares outputs.

    Returns a dict describing what was checked (recorded in the model card).
    """
    import onnx

    m = onnx.load(path)
    onnx.checker.check_model(m)
    out_dims = {}
    for o in m.graph.output:
        dims = [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        out_dims[o.name] = dims
    side = input_size // STRIDE
    expected = {"heatmap": ["batch", num_classes, side, side], "size": ["batch", 2, side, side],
                "offset": ["batch", 2, side, side]}
    if out_dims != expected:
        raise RuntimeError(f"ONNX outputs: expected {expected}, found {out_dims}")
    import platform

    result = {"onnx_checker": "passed", "opset": OPSET, "onnx_version": onnx.__version__,
              "python_version": platform.python_version()}
    try:
        import numpy as np
        import onnxruntime as ort  # absent on Debian; trainer_test.ts compares with onnxruntime-node
    except ImportError:
        result["runtime_comparison"] = "skipped: python onnxruntime absent (compared in trainer_test.ts)"
        return result
    x = torch.rand(2, 3, input_size, input_size)
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(x)]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(OUTPUT_NAMES, {INPUT_NAME: x.numpy()})
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, got))
    if diff > 1e-3:
        raise RuntimeError(f"onnxruntime vs PyTorch: expected max abs diff <= 1e-3, found {diff}")
    result["runtime_comparison"] = f"onnxruntime max abs diff {diff:.2e}"
    return result


def model_card(input_size, labels, category_ids, metrics, training, verification):
    side = input_size // STRIDE
    return {
        "format": "sluice-centernet/1",
        "framework": f"pytorch {torch.__version__}",
        "opset": OPSET,
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", 3, input_size, input_size],
            "dtype": "float32",
            "layout": "NCHW",
            "color": "RGB",
            "normalisation": "pixel / 255 (range 0..1); the graph subtracts "
            f"{INPUT_MEAN} and divides by {INPUT_STD} itself",
            "preprocess": f"the variant image, letterboxed to {input_size}x{input_size}",
        },
        "outputs": [
            {"name": "heatmap", "shape": ["batch", len(labels), side, side],
             "meaning": "per-class centre probability (sigmoid applied in the graph)"},
            {"name": "size", "shape": ["batch", 2, side, side],
             "meaning": "box width (channel 0) and height (channel 1) in input pixels"},
            {"name": "offset", "shape": ["batch", 2, side, side],
             "meaning": "centre offset within the cell, in cells: x (channel 0), y (channel 1)"},
        ],
        "stride": STRIDE,
        "labels": list(labels),
        "category_ids": list(category_ids),
        "decode": {
            "box_format": "[x, y, w, h] in input pixels, top-left origin",
            "steps": [
                "peaks: heatmap cells equal to the max of their 3x3 neighbourhood (outside = -inf) "
                "with score >= score_threshold",
                "sort candidates by score descending, ties by flat index (class, y, x); keep pre_nms_top_k",
                "centre = ((x + offset[0]) * stride, (y + offset[1]) * stride); w, h = size[0], size[1]; "
                "clip corners to the input; drop empty boxes",
                "class-wise greedy NMS: drop a box whose IoU with a kept box of its class is > nms_iou",
                "keep the first top_k",
            ],
            **DECODE_DEFAULTS,
            "reference": "stages/train/trainer/decode.py, common/detector/decode.ts",
        },
        "metrics": metrics,
        "training": training,
        "verification": verification,
    }


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
