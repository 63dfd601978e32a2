"""A small CenterNet-style detector: fully convolutional, outputs at stride 4.

Outputs per image (C classes, H = W = input_size / 4):
  heatmap  C x H x W   class-wise centre scores (logits in training, sigmoid in the export)
  size     2 x H x W   log(w / stride), log(h / stride) (exported as w, h in input pixels)
  offset   2 x H x W   sub-cell centre offset in cells: centre = (cell + offset) * stride

Decoding (peaks, boxes, NMS) runs outside the graph: see decode.py and common/detector/decode.ts.
The input is RGB in [0, 1]; the network normalises internally so every consumer feeds the same
thing.
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

STRIDE = 4
# Centre the inputs without per-dataset statistics (colours are random in our data).
INPUT_MEAN = 0.5
INPUT_STD = 0.25
SIZE_LOG_CLAMP = 6.0


def conv_bn(cin, cout, k=3, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DWBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 with a residual: cheap context on 2 CPU cores."""

    def __init__(self, ch, dilation=1):
        super().__init__()
        self.dw = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, dilation, dilation=dilation, groups=ch, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        )
        self.pw = conv_bn(ch, ch, 1, act=False)

    def forward(self, x):
        return F.relu(x + self.pw(self.dw(x)))


class CenterNet(nn.Module):
    """Backbone to stride 32, FPN-style top-down path back to stride 4.

    Capacity sits at strides 8-32 (full 3x3 convs are cheap there); the stride-4 maps, which
    dominated CPU time when profiled, stay narrow and depthwise.
    """

    def __init__(self, num_classes, width=1.0):
        super().__init__()

        def ch(c):
            return max(8, int(round(c * width / 8)) * 8)

        c1, c2, c3, c4, c5 = ch(16), ch(32), ch(64), ch(96), ch(128)
        neck, fine = ch(64), ch(32)
        self.num_classes = num_classes
        self.stem = nn.Sequential(conv_bn(3, c1, 3, 2), conv_bn(c1, c2, 3, 2))  # /4
        self.s3 = nn.Sequential(conv_bn(c2, c3, 3, 2), conv_bn(c3, c3, 3), DWBlock(c3))  # /8
        self.s4 = nn.Sequential(conv_bn(c3, c4, 3, 2), conv_bn(c4, c4, 3), DWBlock(c4, 2))  # /16
        self.s5 = nn.Sequential(conv_bn(c4, c5, 3, 2), conv_bn(c5, c5, 3), DWBlock(c5, 2))  # /32
        self.lat5 = conv_bn(c5, neck, 1)
        self.lat4 = conv_bn(c4, neck, 1)
        self.lat3 = conv_bn(c3, neck, 1)
        self.smooth4 = conv_bn(neck, neck, 3)
        self.smooth3 = conv_bn(neck, neck, 3)
        self.reduce3 = conv_bn(neck, fine, 1)
        self.lat2 = conv_bn(c2, fine, 1)
        self.smooth2 = DWBlock(fine)
        self.trunk = DWBlock(fine)
        # One 1x1 conv for all heads: heatmap logits, log-size, offset.
        self.out = nn.Conv2d(fine, num_classes + 4, 1)
        # Near-zero weights as CenterNet's heads: with default init, random logits over 6400 cells
        # x classes blew the focal loss up ~20x in the first steps and wrecked early training.
        nn.init.normal_(self.out.weight, std=0.001)
        with torch.no_grad():
            # Focal-loss prior p = 0.1 (CenterNet's -2.19); sizes start near 32 px.
            self.out.bias.copy_(torch.tensor([-2.19] * num_classes + [math.log(8.0)] * 2 + [0.5] * 2))

    def forward(self, images):
        x = (images - INPUT_MEAN) / INPUT_STD
        c2 = self.stem(x)
        c3 = self.s3(c2)
        c4 = self.s4(c3)
        c5 = self.s5(c4)
        p = self.lat5(c5)
        p = self.smooth4(self.lat4(c4) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth3(self.lat3(c3) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth2(self.lat2(c2) + F.interpolate(self.reduce3(p), scale_factor=2.0, mode="nearest"))
        o = self.out(self.trunk(p))
        c = self.num_classes
        return o[:, :c], o[:, c:c + 2], o[:, c + 2:c + 4]


class ExportWrapper(nn.Module):
    """What goes into the ONNX graph: probabilities and sizes in input pixels."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        hm, size, offset = self.model(images)
        size = torch.exp(torch.clamp(size, -SIZE_LOG_CLAMP, SIZE_LOG_CLAMP)) * float(STRIDE)
        return torch.sigmoid(hm), size, offset


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
