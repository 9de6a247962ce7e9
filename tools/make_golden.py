#!/usr/bin/python3
"""Writes the golden test cases under tests/golden/<case>/ (see docs/golden.md).

    /usr/bin/python3 tools/make_golden.py            # every case
    /usr/bin/python3 tools/make_golden.py conv_same  # only the named cases
    /usr/bin/python3 tools/make_golden.py --list

Each case is a small PyTorch module, exported with tools/cnnc_export.py, run
once in eval mode in float32 on seeded random normal inputs.  A case
directory holds:

  model.yaml          the spec; its `name:` is the directory name
  model.safetensors   its parameters (absent when they are inline in the YAML)
  in_<input>.bin      every graph input, raw little-endian float32, row-major
  out_<output>.bin    PyTorch's output for every graph output, same format
  case.txt            what the case exercises

The C side accepts an element when |got - want| <= 1e-4 * |want| + 1e-5.
To keep that tolerance meaningful, every case is also evaluated in float64
on the same (float32) inputs and weights, and the script refuses to write a
case whose float32 reference is itself farther than a quarter of the
tolerance from the float64 one (an ill-conditioned case would make the test
flaky rather than strict).

Seeds come from the case name, so adding or removing a case leaves every
other case's data unchanged, and rerunning the script reproduces the files
byte for byte.
"""

import argparse
import json
import os
import shutil
import sys
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
import cnnc_export  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "golden")
MODELS = os.path.join(ROOT, "models")
REL_TOL, ABS_TOL = 1e-4, 1e-5
CHECK_FRACTION = 0.25  # float32 reference vs float64 must be within this much of the tolerance

CASES = {}


def case(name, desc, inputs, scale=1.0, inline=False, fold_flatten=False, data=None,
         output=None, state_dict=False, yaml=None, yaml_outputs=None):
    """Registers a case.  inputs: {name: shape}; the decorated function
    returns the nn.Module.  data: optional function returning the inputs;
    output: optional new name for the model's output (default: its last layer),
    or a list of names when the model returns a tuple of outputs.
    state_dict: the weights file is the model's state_dict() exactly (every
    tensor, dtypes kept), not the exporter's tensors.  yaml: a hand-written
    spec instead of the exported one ('{case}' stands for the case name),
    with these outputs (yaml_outputs, in order); implies state_dict."""
    def reg(fn):
        assert name.isidentifier() and name not in CASES, name
        assert (yaml is None) == (yaml_outputs is None), name
        CASES[name] = dict(desc=desc, inputs=inputs, scale=scale, inline=inline,
                           fold_flatten=fold_flatten, build=fn, data=data, output=output,
                           state_dict=state_dict or yaml is not None, yaml=yaml,
                           yaml_outputs=yaml_outputs)
        return fn
    return reg


class Seq(nn.Sequential):
    """nn.Sequential whose children get readable names: Seq(conv=..., pool=...)."""

    def __init__(self, **mods):
        super().__init__()
        for k, m in mods.items():
            self.add_module(k, m)

    def forward(self, x):  # names the graph input `x`
        for m in self:
            x = m(x)
        return x


class PadConv(nn.Module):
    """F.pad (asymmetric, zero) then a conv: PyTorch's way of writing cnnc's
    [top, left, bottom, right] padding; the exporter folds the pad."""

    def __init__(self, pad_lrtb, conv, relu=False):
        super().__init__()
        self.pad = list(pad_lrtb)
        self.conv = conv
        self.relu = relu

    def forward(self, x):
        y = self.conv(F.pad(x, self.pad))
        return F.relu(y) if self.relu else y


class Fn(nn.Module):
    """Wraps a functional call so that a case can be written as a lambda."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


# --------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------

@case("conv_basic", "conv2d 3x3 pad 1 with fused relu; 3 -> 5 channels on a 13x5 image",
      {"x": [1, 3, 13, 5]})
def _():
    return Seq(conv=nn.Conv2d(3, 5, 3, padding=1), relu=nn.ReLU())


@case("conv_odd", "conv2d with kernel [3, 5], stride [2, 1], padding [1, 2], no bias; "
      "5 -> 17 channels on 7x9", {"x": [1, 5, 7, 9]})
def _():
    return Seq(conv=nn.Conv2d(5, 17, (3, 5), stride=(2, 1), padding=(1, 2), bias=False))


@case("conv_1x1_image", "1x1 images (batch 2): a 1x1 conv 17 -> 5 with fused relu, "
      "then a 3x3 conv with padding 1 that sees only its centre tap", {"x": [2, 17, 1, 1]})
def _():
    return Seq(conv1=nn.Conv2d(17, 5, 1), relu=nn.ReLU(), conv2=nn.Conv2d(5, 3, 3, padding=1))


@case("conv_stride_gt_kernel", "strides larger than the kernel (2x2 stride 3, then 1x2 "
      "stride [4, 3]) skip input pixels; 23x20 image", {"x": [1, 3, 23, 20]})
def _():
    return Seq(conv1=nn.Conv2d(3, 5, 2, stride=3),
               conv2=nn.Conv2d(5, 3, (1, 2), stride=(4, 3)))


@case("conv_asym_pad", "asymmetric padding [top 1, left 2, bottom 3, right 0] (bottom larger "
      "than half the kernel) with fused relu; reference is F.pad + conv", {"x": [1, 3, 6, 7]})
def _():
    return PadConv((2, 0, 1, 3), nn.Conv2d(3, 4, 3), relu=True)


@case("conv_asym_pad_stride", "asymmetric padding [0, 3, 2, 1] on top of no conv padding, "
      "stride 2, batch 2, 5 channels", {"x": [2, 5, 9, 8]})
def _():
    return PadConv((3, 1, 0, 2), nn.Conv2d(5, 3, (2, 3), stride=2))


@case("conv_same_even", "padding 'same' with an even kernel (4x4: one more row/column of "
      "padding at the bottom/right, as PyTorch does)", {"x": [1, 3, 7, 6]})
def _():
    return Seq(conv=nn.Conv2d(3, 4, 4, padding="same"))


@case("conv_same_dilated", "padding 'same' with kernel [4, 2] and dilation [1, 3] "
      "(odd total padding in both dims)", {"x": [2, 5, 9, 10]})
def _():
    return Seq(conv=nn.Conv2d(5, 6, (4, 2), padding="same", dilation=(1, 3)))


@case("conv_valid", "padding 'valid' (no padding) with a 5x3 kernel on 13x5",
      {"x": [1, 3, 13, 5]})
def _():
    return Seq(conv=nn.Conv2d(3, 8, (5, 3), padding="valid"))


@case("conv_dilation", "dilation [2, 3] with padding [2, 1] and stride 2", {"x": [1, 4, 13, 11]})
def _():
    return Seq(conv=nn.Conv2d(4, 6, 3, stride=2, padding=(2, 1), dilation=(2, 3)))


@case("conv_groups", "grouped conv: 6 -> 9 channels in 3 groups, then 9 -> 3 in 3 groups "
      "without bias", {"x": [2, 6, 7, 5]})
def _():
    return Seq(conv1=nn.Conv2d(6, 9, 3, padding=1, groups=3), relu=nn.ReLU(),
               conv2=nn.Conv2d(9, 3, (1, 3), groups=3, bias=False))


@case("conv_depthwise", "depthwise convs: 5 -> 5 groups 5 (relu), then channel multiplier "
      "2 (5 -> 10, groups 5, stride 2)", {"x": [1, 5, 9, 7]})
def _():
    return Seq(dw1=nn.Conv2d(5, 5, 3, padding=1, groups=5), relu=nn.ReLU(),
               dw2=nn.Conv2d(5, 10, 3, stride=2, padding=1, groups=5))


@case("conv_batch2", "batch 2, 3 -> 17 channels, 5x5 kernel with padding 2 on 7x9, "
      "then a pointwise 17 -> 8", {"x": [2, 3, 7, 9]})
def _():
    return Seq(conv1=nn.Conv2d(3, 17, 5, padding=2), relu=nn.ReLU(),
               conv2=nn.Conv2d(17, 8, 1))


@case("conv_inline", "conv2d with inline weight and bias in the YAML (no weights file)",
      {"x": [1, 2, 5, 4]}, inline=True)
def _():
    return Seq(conv=nn.Conv2d(2, 3, 3, padding=1), relu=nn.ReLU())


# --------------------------------------------------------------------------
# maxpool2d / avgpool2d
# --------------------------------------------------------------------------

@case("maxpool_pad", "maxpool 3x3 stride 2 padding 1 (padding never wins: it is -inf) "
      "on 7x9", {"x": [1, 3, 7, 9]})
def _():
    return Seq(pool=nn.MaxPool2d(3, stride=2, padding=1))


@case("maxpool_ceil", "maxpool 3x3 stride 2 ceil_mode: a last partial window in both "
      "dims (8x10 -> 4x5), batch 2", {"x": [2, 5, 8, 10]})
def _():
    return Seq(pool=nn.MaxPool2d(3, stride=2, ceil_mode=True))


@case("maxpool_ceil_pad", "maxpool 2x2 stride 2 padding 1 ceil_mode on 5x5: the window "
      "that would start in the bottom/right padding is dropped (3x3, not 4x4)",
      {"x": [1, 3, 5, 5]})
def _():
    return Seq(pool=nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True))


@case("maxpool_dilation", "maxpool kernel [3, 2], stride [2, 1], padding 1, dilation [2, 3]",
      {"x": [1, 4, 9, 8]})
def _():
    return Seq(pool=nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(2, 3)))


@case("maxpool_stride_ne_kernel", "maxpool kernel [2, 3] with stride [3, 1] on 11x7, batch 2",
      {"x": [2, 3, 11, 7]})
def _():
    return Seq(pool=nn.MaxPool2d((2, 3), stride=(3, 1)))


@case("pool_1x1_image", "1x1 images: maxpool 3x3 pad 1 stride 1 (the value itself), then "
      "avgpool 3x3 pad 1 counting the padding (value / 9)", {"x": [2, 3, 1, 1]})
def _():
    return Seq(maxpool=nn.MaxPool2d(3, stride=1, padding=1),
               avgpool=nn.AvgPool2d(3, stride=1, padding=1))


@case("avgpool_pad", "avgpool 3x3 stride 2 padding 1, count_include_pad (default) on 7x9",
      {"x": [1, 3, 7, 9]})
def _():
    return Seq(pool=nn.AvgPool2d(3, stride=2, padding=1))


@case("avgpool_nocount", "avgpool 3x3 stride 2 padding 1, count_include_pad false "
      "(edge windows divide by the in-image count), batch 2", {"x": [2, 5, 7, 9]})
def _():
    return Seq(pool=nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False))


@case("avgpool_ceil", "avgpool 3x3 stride 2 padding 1 ceil_mode with count_include_pad: "
      "the last window runs past the padding and divides by the part inside input+padding",
      {"x": [1, 3, 8, 6]})
def _():
    return Seq(pool=nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True))


@case("avgpool_ceil_nocount", "avgpool kernel [3, 2] stride [2, 3] padding 1 ceil_mode, "
      "count_include_pad false", {"x": [1, 4, 8, 9]})
def _():
    return Seq(pool=nn.AvgPool2d((3, 2), stride=(2, 3), padding=1, ceil_mode=True,
                                 count_include_pad=False))


@case("avgpool_ceil_pad_drop", "avgpool 2x2 stride 2 padding 1 ceil_mode on 5x5: the "
      "window starting in the padding is dropped (3x3 output)", {"x": [1, 3, 5, 5]})
def _():
    return Seq(pool=nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True))


@case("output_copy_after_pool", "batch 3: 1x1 conv on 1x1 images, global avgpool, flatten "
      "as the graph output: the output is a copy out of the workspace, which LLVM once "
      "merged with the reorder's copy into a memmove call (found by tools/fuzz_diff.py)",
      {"x": [3, 1, 1, 1]})
def _():
    return Seq(conv=nn.Conv2d(1, 64, 1, bias=False), pool=nn.AdaptiveAvgPool2d(1),
               flat=nn.Flatten())


class _PoolMoveNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.apool = nn.AdaptiveAvgPool2d((1, 3))
        self.mean = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(64, 1, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x):
        m = self.mean(self.apool(x))
        return torch.cat([self.conv(m), m, self.pool(m)], 1)


@case("identity_pool_copy_overlap", "batch 2, 1x1 images: a maxpool that is an identity "
      "copies a tensor whose workspace buffer overlaps its own; LLVM merges the copies into "
      "a memmove, which cnnc lowers to an internal loop (found by tools/fuzz_diff.py)",
      {"x": [2, 64, 1, 1]})
def _():
    return _PoolMoveNet()


# A net found by tools/fuzz_diff.py (--seed 5 --case 495, shrunk): x - conv(x),
# then a 3x3 conv, with the fuzzer's own seeded weights and input.  Winograd
# F(4x4,3x3) on the points 0, +-1, +-2 put one output at 1.13x the tolerance
# (PyTorch float32: 0.09x); the points 0, 1, -1, 1/2, -2 fix it.
_FUZZ_WINO_NET = json.loads("""{"inputs": [[1, 48, 4, 8]], "nodes": [{"op": "conv", "in": [0], "seed": 1528314206, "k": 3, "stride": 1, "dil": 1, "bias": true, "pad": [1, 1], "filters": 48, "groups": 1}, {"op": "sub", "in": [0, 1], "seed": 1730329086}, {"op": "conv", "in": [2], "seed": 721562805, "k": [3, 3], "stride": [1, 1], "dil": [1, 1], "pad": "same", "bias": true, "filters": 70}], "outputs": [3], "fold_flatten": true}""")
_FUZZ_WINO_SEED = 5, 495


def _fuzz_wino_inputs():
    import fuzz_diff
    return fuzz_diff.make_inputs(_FUZZ_WINO_NET, fuzz_diff.case_seed(*_FUZZ_WINO_SEED))


@case("fuzz_wino_points", "3x3 convs on [1, 48, 4, 8] from tools/fuzz_diff.py, where "
      "Winograd on the points +-2 was beyond tolerance (golden_winograd runs it with Winograd)",
      {"x0": [1, 48, 4, 8]}, data=lambda: {"x0": _fuzz_wino_inputs()[0]})
def _():
    import copy
    import fuzz_diff
    return fuzz_diff.build(copy.deepcopy(_FUZZ_WINO_NET), _fuzz_wino_inputs())[0]


class _DwPw(nn.Module):
    """Depthwise + pointwise pairs for --fuse-dw (fuse_dw.c): a stride-2
    depthwise on an odd image into a 1x1, and an inverted residual block."""

    def __init__(self):
        super().__init__()
        self.dw1 = nn.Conv2d(19, 19, 3, stride=2, padding=1, groups=19)
        self.pw1 = nn.Conv2d(19, 23, 1)
        self.exp = nn.Conv2d(19, 40, 1)
        self.dw2 = nn.Conv2d(40, 40, 3, padding=1, groups=40, bias=False)
        self.pw2 = nn.Conv2d(40, 19, 1, bias=False)

    def forward(self, x):
        a = self.pw1(F.relu6(self.dw1(x)))
        b = x + self.pw2(F.relu6(self.dw2(F.relu6(self.exp(x)))))
        return a, b


@case("dw_pw_pairs", "batch 2, 19 channels on 9x11: depthwise 3x3 stride 2 + relu6 into a "
      "1x1 conv to 23 channels; and an inverted residual block (1x1 to 40, depthwise "
      "without bias, 1x1 back to 19, + input): the pairs --fuse-dw=on fuses",
      {"x": [2, 19, 9, 11]}, output=["a", "b"])
def _():
    return _DwPw()


@case("maxpool_kernel_gt_input", "maxpool 4x4 stride 3 ceil_mode on 2x2, 19 channels: the "
      "kernel is larger than the input, which PyTorch allows with ceil_mode (one window, "
      "clipped to the input)", {"x": [1, 19, 2, 2]})
def _():
    return Seq(pool=nn.MaxPool2d(4, stride=3, ceil_mode=True))


@case("avgpool_kernel_gt_input", "avgpool kernel [4, 3] stride [3, 2] padding [1, 0] "
      "ceil_mode on 1x5, 17 channels: the window runs past the padded input; the divisor "
      "counts the padded rows it covers", {"x": [2, 17, 1, 5]})
def _():
    return Seq(pool=nn.AvgPool2d((4, 3), stride=(3, 2), padding=(1, 0), ceil_mode=True))


@case("avgpool_kernel_gt_input_nocount", "avgpool 3x3 ceil_mode count_include_pad=False "
      "on 1x1 (the kernel covers 9 pixels of which one exists)", {"x": [1, 5, 1, 1]})
def _():
    return Seq(pool=nn.AvgPool2d(3, ceil_mode=True, count_include_pad=False))


@case("avgpool_stride_gt_kernel", "avgpool 2x2 with stride 3 on 8x11 (skips pixels)",
      {"x": [1, 2, 8, 11]})
def _():
    return Seq(pool=nn.AvgPool2d(2, stride=3))


# --------------------------------------------------------------------------
# dense, relu, flatten
# --------------------------------------------------------------------------

@case("dense_bias", "dense 37 -> 5 with bias, batch 3", {"x": [3, 37]})
def _():
    return Seq(fc=nn.Linear(37, 5))


@case("dense_nobias", "dense 17 -> 9 without bias, batch 2", {"x": [2, 17]})
def _():
    return Seq(fc=nn.Linear(17, 9, bias=False))


@case("dense_relu", "dense 20 -> 13 with fused relu, then dense 13 -> 4", {"x": [2, 20]})
def _():
    return Seq(fc1=nn.Linear(20, 13), relu=nn.ReLU(), fc2=nn.Linear(13, 4))


@case("dense_4d", "dense directly on a 4D input [2, 5, 3, 7]: implicit flatten to "
      "[2, 105] (reference: flatten + linear)", {"x": [2, 5, 3, 7]}, fold_flatten=True)
def _():
    return Seq(flatten=nn.Flatten(), fc=nn.Linear(105, 6))


@case("dense_inline", "dense layers with inline weights (fused relu; second without bias)",
      {"x": [2, 6]}, inline=True)
def _():
    return Seq(fc1=nn.Linear(6, 4), relu=nn.ReLU(), fc2=nn.Linear(4, 3, bias=False))


@case("relu_layer", "relu as a layer on a graph input (nothing to fuse into)",
      {"x": [2, 3, 4, 5]})
def _():
    return Seq(relu=nn.ReLU())


@case("flatten", "maxpool, a relu layer (not fusable into a pool), then flatten "
      "[2, 3, 4, 6] -> [2, 72]", {"x": [2, 3, 5, 7]})
def _():
    return Seq(pool=nn.MaxPool2d(2, stride=1), relu=nn.ReLU(), flatten=nn.Flatten())


@case("flatten_start2", "flatten from dim 2 ([2, 3, 4, 5] -> [2, 3, 20]), then softmax "
      "over the last axis of the rank-3 result", {"x": [2, 3, 4, 5]}, scale=5.0)
def _():
    return Seq(flatten=nn.Flatten(2), softmax=nn.Softmax(dim=2))


@case("conv_flatten_dense", "conv, flatten, dense: the flatten of a conv output feeds "
      "a dense layer", {"x": [2, 3, 5, 4]})
def _():
    return Seq(conv=nn.Conv2d(3, 5, 3, padding=1), relu=nn.ReLU(),
               flatten=nn.Flatten(), fc=nn.Linear(100, 7))


# --------------------------------------------------------------------------
# softmax / log_softmax (logits scaled by 50: naive exp would overflow)
# --------------------------------------------------------------------------

@case("softmax_axis1", "softmax over channels of a 4D tensor, logits * 50",
      {"x": [2, 5, 3, 4]}, scale=50.0)
def _():
    return Seq(softmax=nn.Softmax(dim=1))


@case("softmax_axis0", "softmax over the batch axis of a 4D tensor, logits * 50",
      {"x": [3, 4, 2, 5]}, scale=50.0)
def _():
    return Seq(softmax=nn.Softmax(dim=0))


@case("softmax_axis2", "softmax over H of a 4D tensor, logits * 50", {"x": [2, 3, 7, 2]},
      scale=50.0)
def _():
    return Seq(softmax=nn.Softmax(dim=2))


@case("softmax_axis3", "softmax over the last axis of a 4D tensor (dim=-1), logits * 50",
      {"x": [2, 3, 2, 9]}, scale=50.0)
def _():
    return Seq(softmax=nn.Softmax(dim=-1))


@case("softmax_2d", "softmax over features of [4, 10], logits * 50", {"x": [4, 10]},
      scale=50.0)
def _():
    return Seq(softmax=nn.Softmax(dim=1))


@case("log_softmax_2d", "log_softmax over features of [3, 11], logits * 50",
      {"x": [3, 11]}, scale=50.0)
def _():
    return Seq(logsoftmax=nn.LogSoftmax(dim=1))


@case("log_softmax_axis3", "log_softmax over the last axis of a 4D tensor, logits * 50",
      {"x": [2, 4, 3, 5]}, scale=50.0)
def _():
    return Seq(logsoftmax=nn.LogSoftmax(dim=3))


@case("mixed_chain", "a small LeNet-like chain: conv (no bias) + relu, avgpool, "
      "conv stride 2, maxpool ceil_mode, flatten, dense + relu, dense, log_softmax; batch 2",
      {"x": [2, 3, 17, 13]})
def _():
    return Seq(conv1=nn.Conv2d(3, 8, 3, padding=1, bias=False), relu1=nn.ReLU(),
               pool1=nn.AvgPool2d(2),
               conv2=nn.Conv2d(8, 5, 3, stride=2, padding=(0, 1)),
               pool2=nn.MaxPool2d(2, ceil_mode=True),
               flatten=nn.Flatten(), fc1=nn.Linear(5 * 2 * 2, 12), relu2=nn.ReLU(),
               fc2=nn.Linear(12, 10), out=nn.LogSoftmax(dim=1))


# --------------------------------------------------------------------------
# the shipped Fashion-MNIST model on real test images
# --------------------------------------------------------------------------

def _fashion_model():
    import train_fashion_mnist as t
    path = os.path.join(MODELS, "fashion_mnist.safetensors")
    if not os.path.exists(path):
        raise SystemExit("%s is missing: run tools/train_fashion_mnist.py first" % path)
    m = t.FashionCNN()
    m.load_state_dict(cnnc_export.read_safetensors(path))
    return m


def _fashion_images(n):
    def data():
        import train_fashion_mnist as t
        x, _ = t.load(t.DATA, "t10k")
        return {"image": x[:n].contiguous()}
    return data


@case("fashion_mnist", "the shipped models/fashion_mnist weights on Fashion-MNIST test "
      "image 0 (batch 1, pixels / 255)", {"image": [1, 1, 28, 28]},
      data=_fashion_images(1), output="probs")
def _():
    return _fashion_model()


@case("fashion_mnist_b8", "the shipped models/fashion_mnist weights with a batch-8 input: "
      "test images 0..7", {"image": [8, 1, 28, 28]}, data=_fashion_images(8), output="probs")
def _():
    return _fashion_model()


# --------------------------------------------------------------------------
# architecture families at reduced width and resolution (fam_*)
#
# Built from torchvision's own blocks (or its model classes with small
# configurations), so the traced graphs have the real block structure; all
# BatchNorm statistics and affine parameters are randomised so that
# batchnorm folding is really tested.  See docs/golden.md.
# --------------------------------------------------------------------------

def randomize_bn(model, gen=None):
    """Gives every BatchNorm non-trivial running statistics and affine
    parameters, every LayerNorm / InstanceNorm / GroupNorm with affine
    parameters non-trivial ones, and every ConvNeXt block's layer_scale
    values of order 1 (the seeded torch RNG unless gen is given; modules in
    model.modules() order).  Scales stay near 1 so that deep stacks keep
    activations of order 1."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(c, generator=gen) * 0.8 + 0.6)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)) \
                and getattr(m, "weight", None) is not None:
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.8 + 0.6)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
        if isinstance(getattr(m, "layer_scale", None), nn.Parameter):  # ConvNeXt's CNBlock
            with torch.no_grad():
                m.layer_scale.copy_(torch.rand(m.layer_scale.shape, generator=gen) * 0.8 + 0.2)
    return model


def reset_linear(model):
    """PyTorch's default init for every nn.Linear: torchvision initialises
    some classifiers with std 0.01, which would leave logits so small that
    the absolute part of the tolerance dominates."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return model


def _tv(module):
    """A torchvision.models submodule (some share a name with a builder)."""
    import importlib
    return importlib.import_module("torchvision.models." + module)


class SmallResNet(nn.Module):
    """torchvision's ResNet layout (stem, maxpool, stages of BasicBlock or
    Bottleneck with conv1x1+BN downsampling, avgpool, fc) at small widths;
    _make_layer follows torchvision.models.resnet.ResNet._make_layer."""

    def __init__(self, block, layers, widths, stem=8, num_classes=10, groups=1,
                 width_per_group=64):
        super().__init__()
        self.inplanes, self.groups, self.base_width = stem, groups, width_per_group
        self.conv1 = nn.Conv2d(3, stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages = []
        for i, (n, w) in enumerate(zip(layers, widths)):
            stages.append(self._make_layer(block, w, n, 1 if i == 0 else 2))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride,
                          bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        kw = {}
        if block.expansion == 4:
            kw = dict(groups=self.groups, base_width=self.base_width)
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, **kw))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


@case("fam_resnet_basic", "ResNet-18 family: stem conv+BN+relu, maxpool, torchvision "
      "BasicBlocks (two per stage, conv1x1+BN downsampling at stride 2; residual add + "
      "relu), adaptive avgpool to 1x1, flatten, fc; randomised BN statistics",
      {"x": [1, 3, 32, 32]})
def _():
    r = _tv("resnet")
    return randomize_bn(SmallResNet(r.BasicBlock, [2, 2, 1], [8, 12, 16]))


@case("fam_resnet_bottleneck", "ResNet-50 family, batch 2: torchvision Bottleneck blocks "
      "(1x1-3x3-1x1, expansion 4) with a grouped 3x3 (ResNeXt style, groups 2) and "
      "projection shortcuts; 24x24 input", {"x": [2, 3, 24, 24]})
def _():
    r = _tv("resnet")
    return randomize_bn(SmallResNet(r.Bottleneck, [2, 1], [4, 6], groups=2,
                                    width_per_group=32))


@case("fam_mobilenet_v2", "MobileNetV2 family: torchvision's MobileNetV2 class (its "
      "forward: F.adaptive_avg_pool2d, flatten, dropout, linear) with a small inverted "
      "residual setting (expand 1 and 6, depthwise 3x3, relu6, residual adds) and a "
      "48-channel last conv", {"x": [1, 3, 32, 32]})
def _():
    mv2 = _tv("mobilenetv2")
    from torchvision.ops.misc import Conv2dNormActivation
    m = mv2.MobileNetV2(num_classes=10, inverted_residual_setting=[
        [1, 8, 1, 1], [6, 12, 2, 2], [6, 16, 2, 2]], width_mult=1.0)
    m.features[-1] = Conv2dNormActivation(16, 48, kernel_size=1,
                                          activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(48, 10)
    return reset_linear(randomize_bn(m))


@case("fam_mobilenet_v3", "MobileNetV3 family: torchvision's MobileNetV3 class with a "
      "small setting: hardswish and relu blocks, squeeze-and-excitation (avgpool, 1x1 "
      "convs, hardsigmoid, [N,C,1,1] * [N,C,H,W]), 5x5 depthwise, residual adds; "
      "classifier linear + hardswish + dropout + linear", {"x": [1, 3, 32, 32]})
def _():
    mv3 = _tv("mobilenetv3")
    C = mv3.InvertedResidualConfig
    setting = [C(8, 3, 8, 8, True, "RE", 2, 1, 1.0),
               C(8, 3, 24, 16, False, "RE", 2, 1, 1.0),
               C(16, 3, 40, 16, False, "RE", 1, 1, 1.0),
               C(16, 5, 48, 24, True, "HS", 2, 1, 1.0),
               C(24, 5, 64, 24, True, "HS", 1, 1, 1.0)]
    return reset_linear(randomize_bn(mv3.MobileNetV3(setting, last_channel=32,
                                                     num_classes=10)))


@case("fam_efficientnet", "EfficientNet-B0 family: torchvision's EfficientNet class with "
      "small MBConv configs (SiLU, squeeze-and-excitation with sigmoid gate, "
      "stochastic depth = identity in eval, residual adds, 5x5 depthwise)",
      {"x": [1, 3, 32, 32]})
def _():
    ef = _tv("efficientnet")
    M = ef.MBConvConfig
    setting = [M(1, 3, 1, 8, 8, 1), M(6, 3, 2, 8, 12, 2), M(6, 5, 2, 12, 16, 2)]
    return reset_linear(randomize_bn(ef.EfficientNet(setting, dropout=0.2, num_classes=10,
                                                     last_channel=32)))


class SmallMNASNet(nn.Module):
    """MNASNet layout (stem conv, depthwise-separable, torchvision mnasnet._stack
    of _InvertedResidual with 3x3 and 5x5 depthwise, x.mean([2, 3]), dropout,
    linear) at small widths."""

    def __init__(self):
        super().__init__()
        mn = _tv("mnasnet")
        m = 1 - 0.9997
        self.layers = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, stride=2, bias=False), nn.BatchNorm2d(8, momentum=m),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8, momentum=m),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8, momentum=m),
            mn._stack(8, 12, 3, 2, 3, 2, m), mn._stack(12, 16, 5, 2, 3, 2, m),
            mn._stack(16, 16, 5, 1, 6, 1, m),
            nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32, momentum=m),
            nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(32, 10))

    def forward(self, x):  # as torchvision.models.MNASNet.forward
        x = self.layers(x)
        x = x.mean([2, 3])
        return self.classifier(x)


@case("fam_mnasnet", "MNASNet family: stem, depthwise separable conv, torchvision "
      "mnasnet._stack inverted residuals (3x3 and 5x5 depthwise, residual adds), "
      "x.mean([2, 3]) (global average pool + flatten), linear", {"x": [1, 3, 32, 32]})
def _():
    return randomize_bn(SmallMNASNet())


class SmallSqueezeNet(nn.Module):
    """SqueezeNet 1.1 layout with torchvision Fire modules (squeeze 1x1, expand
    1x1 and 3x3, torch.cat) and its classifier (dropout, 1x1 conv, relu,
    adaptive avgpool, flatten)."""

    def __init__(self, num_classes=10):
        super().__init__()
        Fire = _tv("squeezenet").Fire
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            Fire(16, 4, 8, 8), Fire(16, 4, 8, 8),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            Fire(16, 6, 12, 12), Fire(24, 6, 12, 12))
        self.classifier = nn.Sequential(nn.Dropout(p=0.5), nn.Conv2d(24, num_classes, 1),
                                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):  # as torchvision.models.SqueezeNet.forward
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)


@case("fam_squeezenet", "SqueezeNet 1.1 family: torchvision Fire modules (concat of the "
      "1x1 and 3x3 expands), maxpool ceil_mode, conv classifier + relu + adaptive "
      "avgpool; 35x35 input (odd sizes through the ceil_mode pools)", {"x": [1, 3, 35, 35]})
def _():
    return SmallSqueezeNet()


class SmallVGG(nn.Module):
    """torchvision VGG layout: vgg.make_layers(cfg, batch_norm), adaptive avgpool
    (here to 3x3 from 4x4: overlapping bins), flatten, classifier linear + relu +
    dropout."""

    def __init__(self, cfg, batch_norm):
        super().__init__()
        self.features = _tv("vgg").make_layers(cfg, batch_norm=batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        c = [v for v in cfg if v != "M"][-1]
        self.classifier = nn.Sequential(
            nn.Linear(c * 9, 32), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(32, 32), nn.ReLU(True), nn.Dropout(p=0.5), nn.Linear(32, 10))

    def forward(self, x):  # as torchvision.models.VGG.forward
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


@case("fam_vgg", "VGG-16 family: torchvision vgg.make_layers blocks (3x3 convs + relu, "
      "maxpool), adaptive avgpool 4x4 -> 3x3 (overlapping bins), flatten, "
      "linear/relu/dropout classifier", {"x": [1, 3, 32, 32]})
def _():
    return SmallVGG([8, 8, "M", 16, 16, "M", 16, 16, 16, "M"], batch_norm=False)


@case("fam_vgg_bn", "VGG-BN family, batch 2: vgg.make_layers with batch_norm (conv, BN, "
      "relu) on 20x28 input (adaptive avgpool 2x3 -> 3x3 upsamples bins)",
      {"x": [2, 3, 20, 28]})
def _():
    return randomize_bn(SmallVGG([8, "M", 12, "M", 16, "M"], batch_norm=True))


class SmallGoogLeNet(nn.Module):
    """GoogLeNet layout with torchvision's transform_input (x[:, k] slices,
    scaled and concatenated back), BasicConv2d (conv, BN eps 1e-3, relu) and
    Inception blocks (four branches concatenated, maxpool ceil_mode branch)."""

    def __init__(self):
        super().__init__()
        g = _tv("googlenet")
        self.transform_input = True
        self.conv1 = g.BasicConv2d(3, 16, kernel_size=3, stride=1, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = g.Inception(16, 8, 8, 12, 4, 6, 6)
        self.inception3b = g.Inception(32, 12, 8, 12, 4, 6, 6)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = g.Inception(36, 8, 8, 12, 4, 6, 6)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(32, 10)

    def _transform_input(self, x):
        return _tv("googlenet").GoogLeNet._transform_input(self, x)

    def forward(self, x):
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


@case("fam_googlenet", "GoogLeNet family: torchvision transform_input (per-channel "
      "affine on x[:, k], exported as a batchnorm), BasicConv2d (BN eps 1e-3) and "
      "Inception blocks (4-way concat, 3x3 maxpool ceil_mode branch), adaptive avgpool, "
      "dropout, fc; 29x29 input", {"x": [1, 3, 29, 29]})
def _():
    return randomize_bn(SmallGoogLeNet())


@case("fam_densenet", "DenseNet-121 family: torchvision's DenseNet class (growth 8, "
      "blocks (3, 2), bn_size 2): BN+relu before every conv, concat of all previous "
      "features, transition (BN, relu, 1x1 conv, avgpool 2), final BN + relu, "
      "F.adaptive_avg_pool2d, linear", {"x": [1, 3, 32, 32]})
def _():
    dn = _tv("densenet")
    return randomize_bn(dn.DenseNet(growth_rate=8, block_config=(3, 2), num_init_features=16,
                                    bn_size=2, num_classes=10))


class SmallUNet(nn.Module):
    """An encoder-decoder exercising the remaining exported ops: reflect and
    replicate padding, a constant non-zero F.pad, PReLU, ELU, LeakyReLU, GELU,
    Hardtanh (clip), ConvTranspose2d, nearest and bilinear upsampling, skip
    concatenation, scalar arithmetic (x * 0.5 + 1 -> batchnorm), a broadcast
    subtraction of the spatial mean (global_avgpool2d, negated by a batchnorm,
    add), two outputs."""

    def __init__(self):
        super().__init__()
        self.pad0 = nn.ReflectionPad2d(1)
        self.enc1 = nn.Conv2d(3, 8, 3)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.PReLU(8)
        self.pool = nn.MaxPool2d(2)
        self.pad1 = nn.ReplicationPad2d((1, 2, 0, 1))
        self.enc2 = nn.Conv2d(8, 12, (2, 4))
        self.act2 = nn.ELU(alpha=0.5)
        self.up1 = nn.ConvTranspose2d(12, 8, 3, stride=2, padding=1, output_padding=1)
        self.act3 = nn.LeakyReLU(0.1)
        self.dec1 = nn.Conv2d(16, 8, 3, padding=1)
        self.act4 = nn.GELU()
        self.head = nn.Conv2d(8, 2, 1)
        self.head2 = nn.Conv2d(8, 1, 1)
        self.up2 = nn.Upsample(scale_factor=(1, 2), mode="nearest")
        self.clip = nn.Hardtanh(-0.5, 2.0)

    def forward(self, x):
        e1 = self.act1(self.bn1(self.enc1(self.pad0(x))))          # 8 x H x W
        e2 = self.act2(self.enc2(self.pad1(self.pool(e1))))         # 12 x H/2 x W/2
        e2 = e2 - e2.mean((2, 3), keepdim=True)                     # broadcast sub
        d1 = self.act3(self.up1(e2))                                # 8 x H x W
        d1 = self.act4(self.dec1(torch.cat([d1, e1], dim=1)))
        d1 = F.pad(d1, (1, 1, 1, 1), value=0.25)                    # not foldable
        seg = self.clip(self.head(d1) * 0.5 + 1.0)
        up = self.up2(torch.sigmoid(self.head2(d1)))
        up = F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=True)
        return seg, up


@case("fam_unet", "encoder-decoder, batch 2: reflect and replicate pads, PReLU, ELU, "
      "x - x.mean((2, 3), keepdim=True), "
      "ConvTranspose2d (stride 2, output_padding), LeakyReLU, skip concat, GELU, a "
      "constant 0.25 F.pad, x * 0.5 + 1 (a batchnorm), Hardtanh (clip), sigmoid, "
      "nearest [1, 2] and bilinear (align_corners) upsampling; two outputs", {"x": [2, 3, 12, 10]}, output=["seg", "up"])
def _():
    return randomize_bn(SmallUNet())


def reset_params(model, types=(nn.Conv2d, nn.Linear)):
    """PyTorch's default init for these module types (ConvNeXt initialises
    convs and linears with std 0.02: outputs too small for the tolerance)."""
    for m in model.modules():
        if isinstance(m, types):
            m.reset_parameters()
    return model


@case("fam_shufflenet", "ShuffleNetV2 family: torchvision's ShuffleNetV2 class (stages "
      "[2, 2, 1], widths [8, 16, 32, 48, 64]): x.chunk(2, dim=1) (a split), both branches "
      "(depthwise 3x3 stride 2, BN, 1x1, relu), torch.cat, channel_shuffle (x.size() "
      "unpacking: view to rank 5, transpose(1, 2), view back), x.mean([2, 3]), fc; "
      "48x48 input", {"x": [1, 3, 48, 48]})
def _():
    sn = _tv("shufflenetv2")
    return reset_linear(randomize_bn(sn.ShuffleNetV2([2, 2, 1], [8, 16, 32, 48, 64],
                                                     num_classes=10)))


@case("fam_convnext", "ConvNeXt family: torchvision's ConvNeXt class (CNBlock configs "
      "8 -> 16 -> 24, stochastic depth = identity in eval): stem 4x4 stride 4 + LayerNorm2d "
      "(layer_norm over dim 1), 7x7 depthwise, Permute to NHWC (transpose), LayerNorm over "
      "the last dim, linear on [N, H, W, C] + GELU, linear, Permute back, layer_scale "
      "[C, 1, 1] (a constant) * block, residual add, LayerNorm2d + 2x2 stride 2 "
      "downsampling, avgpool, LayerNorm2d, flatten, linear; randomised norms and "
      "layer_scale", {"x": [1, 3, 32, 32]})
def _():
    cn = _tv("convnext")
    C = cn.CNBlockConfig
    m = cn.ConvNeXt([C(8, 16, 2), C(16, 24, 2), C(24, None, 1)], stochastic_depth_prob=0.1,
                    num_classes=10)
    return randomize_bn(reset_params(m))


# --------------------------------------------------------------------------
# exporter coverage (export_*): the ops of the newer format, from PyTorch code
# --------------------------------------------------------------------------

class _ShapeOps(nn.Module):
    """chunk / split (getitem of the parts), channel slices concatenated in a
    new order, permute, transpose, contiguous, multi-axis slicing with steps and
    negative ends, x[..., k], x[:, k] with scalar arithmetic, reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 8, 3, padding=1)

    def forward(self, x):                          # [2, 6, 5, 7]
        a, b, c = torch.chunk(x, 3, dim=1)
        y = self.conv(torch.cat([c, a * 2.0, b], dim=1))
        p, q = y.split([3, 5], dim=1)
        t = p.permute(0, 2, 3, 1).transpose(1, 2).contiguous()   # [2, 7, 5, 3]
        s = q[:, 1:4, ::2, 1:-1][..., 0]           # [2, 3, 3]
        u = t[:, :, 0:3, :].reshape(2, 7, 9)
        w = x[:, 2] * 0.5 - 1.0                    # [2, 5, 7]
        return t, s, u, w


@case("export_shape_ops", "torch.chunk into 3, channel slices re-concatenated out of order "
      "(x2 on one part), conv, Tensor.split([3, 5]), permute + transpose + contiguous "
      "(transpose layers), q[:, 1:4, ::2, 1:-1][..., 0] (slices with step and negative "
      "end, an index), reshape, x[:, 2] * 0.5 - 1 (slice, squeeze, scale); four outputs",
      {"x": [2, 6, 5, 7]}, output=["t", "s", "u", "w"])
def _():
    return _ShapeOps()


class _Norms(nn.Module):
    """LayerNorm2d, InstanceNorm2d (affine, plain, running statistics),
    LayerNorm over the last two dims, LayerNorm without affine parameters,
    nn.Linear on a rank-4 input, F.layer_norm with the module's own
    parameters."""

    def __init__(self):
        super().__init__()
        cn = _tv("convnext")
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.ln2d = cn.LayerNorm2d(8, eps=1e-6)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.inorm_plain = nn.InstanceNorm2d(8, eps=1e-3)
        self.inorm_stats = nn.InstanceNorm2d(8, track_running_stats=True)
        self.ln = nn.LayerNorm([5, 6])
        self.ln_plain = nn.LayerNorm(6, elementwise_affine=False)
        self.fc = nn.Linear(6, 4)
        self.weight = nn.Parameter(torch.rand(8) + 0.5)
        self.bias = nn.Parameter(torch.randn(8) * 0.2)
        with torch.no_grad():
            self.inorm_stats.running_mean.copy_(torch.randn(8) * 0.2)
            self.inorm_stats.running_var.copy_(torch.rand(8) + 0.5)

    def forward(self, x):                          # [2, 3, 5, 6]
        y = self.conv(x)
        a = self.ln2d(y)
        b = self.inorm(y) + self.inorm_plain(y) + self.inorm_stats(y)
        c = self.ln(y)
        d = self.fc(self.ln_plain(y))              # [2, 8, 5, 4]
        e = F.layer_norm(y.permute(0, 2, 3, 1), (8,), self.weight, self.bias, 1e-3)
        return a, b, c, d, e


@case("export_norms", "torchvision LayerNorm2d (layer_norm axes [1]), InstanceNorm2d "
      "with affine, without, and with running statistics (a batchnorm), LayerNorm([5, 6]) "
      "(axes [-2, -1]), LayerNorm without affine then nn.Linear on [N, C, H, W] (linear), "
      "F.layer_norm on the NHWC permute with module parameters; randomised norms",
      {"x": [2, 3, 5, 6]}, output=["a", "b", "c", "d", "e"])
def _():
    return randomize_bn(_Norms())


class _Reduce(nn.Module):
    def forward(self, x):                          # [2, 4, 5, 6]
        return (x.mean(dim=-1), torch.sum(x, dim=(1, 3), keepdim=True), torch.amax(x, dim=2),
                x.max(dim=1)[0], torch.min(x, dim=3, keepdim=True).values, x.mean(),
                torch.amin(x, dim=(2, 3)))


@case("export_reduce", "x.mean(-1), torch.sum over (1, 3) keepdim, torch.amax over 2, "
      "x.max(dim=1)[0], torch.min(x, 3, keepdim=True).values, x.mean() (all: one element), "
      "torch.amin over (2, 3): reduce_mean/sum/max/min", {"x": [2, 4, 5, 6]},
      output=["mean", "sum", "amax", "max", "min", "all", "amin"])
def _():
    return _Reduce()


class _Arith(nn.Module):
    """Tensor-tensor sub, div, maximum, minimum; x ** 2, sqrt, exp, abs, erf,
    reciprocal, rsqrt, neg, 1 - x, 2 / x, Softplus(beta=2), SELU; a
    parameter [1, C, 1, 1] times a tensor (a constant) and a parameter
    expression folded into one constant."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 6, 1)
        self.gain = nn.Parameter(torch.rand(1, 6, 1, 1) + 0.5)
        self.softplus = nn.Softplus(beta=2)
        self.selu = nn.SELU()

    def forward(self, x):                          # [2, 3, 6, 7]
        a, b = self.conv1(x), self.conv2(x)
        pos = b.abs() + 1.0
        s = torch.maximum(a - b, a / pos) + torch.minimum(a, -b * 0.5)
        p = a ** 2 + torch.sqrt(pos) + torch.exp(-a.abs()) + torch.erf(a)
        r = torch.reciprocal(pos) + torch.rsqrt(pos) + (1 - a) + 2 / pos
        v = self.softplus(a) + self.selu(b)
        k = self.gain * a + self.gain ** 2
        return s, p, r, v, k


@case("export_arith", "two convs combined by sub, div, torch.maximum, torch.minimum; "
      "a ** 2, sqrt, exp(-|a|), erf, reciprocal, rsqrt, 1 - a, 2 / x, -b * 0.5; "
      "Softplus(beta=2), SELU; parameter [1, 6, 1, 1] * tensor (constant layer) and "
      "gain ** 2 (folded constant); batch 2", {"x": [2, 3, 6, 7]},
      output=["s", "p", "r", "v", "k"])
def _():
    return _Arith()


class _Resize(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=1.75, mode="bilinear")

    def forward(self, x):                          # [1, 3, 6, 8]
        return (F.interpolate(x, scale_factor=1.5, mode="nearest"),
                F.interpolate(x, scale_factor=(0.5, 2.5), mode="bilinear"),
                F.interpolate(x, size=(5, 11), mode="bilinear", align_corners=True),
                F.interpolate(x, size=(7, 13), mode="nearest-exact"),
                self.up(x),
                F.interpolate(x, scale_factor=1.7, mode="nearest",
                              recompute_scale_factor=True))


@case("export_upsample", "F.interpolate with float scales (nearest 1.5, bilinear "
      "[0.5, 2.5]), sizes (bilinear align_corners [5, 11], nearest-exact [7, 13]), "
      "nn.Upsample bilinear 1.75, recompute_scale_factor (nearest 1.7 as a size)",
      {"x": [1, 3, 6, 8]}, output=["nearest", "bilinear", "align", "exact", "module",
                                   "recomputed"])
def _():
    return _Resize()


class _Tokens(nn.Module):
    """Patch embedding to tokens [N, L, C] (flatten(2).transpose(1, 2)),
    LayerNorm, an MLP of nn.Linear on rank 3 with GELU and a residual add,
    the mean over the tokens, a linear head."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 2, stride=2)
        self.norm = nn.LayerNorm(8)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 8, bias=False)
        self.head = nn.Linear(8, 5)

    def forward(self, x):                          # [2, 3, 8, 8]
        t = self.proj(x).flatten(2).transpose(1, 2)
        t = t + self.fc2(F.gelu(self.fc1(self.norm(t))))
        return self.head(t.mean(dim=1))


@case("export_tokens", "patch embedding to [N, 16, 8] tokens (flatten(2).transpose(1, 2)), "
      "LayerNorm, linear 8 -> 16 + GELU, linear 16 -> 8 without bias (rank 3), residual "
      "add, mean over the tokens (reduce_mean), dense head; batch 2", {"x": [2, 3, 8, 8]})
def _():
    return randomize_bn(_Tokens())


# --------------------------------------------------------------------------
# PyTorch's names with a plain state_dict (names_*)
#
# The weights file of these cases is model.state_dict() saved as it is
# (num_batches_tracked included, as I64); the layer names are the module
# names, exported or written by hand.
# --------------------------------------------------------------------------

def _names_sequential():
    return randomize_bn(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, bias=False), nn.BatchNorm2d(12), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5)))


@case("names_sequential", "an nn.Sequential (layer names '0' .. '9', parameters '0.weight', "
      "'1.running_var', ...) exported; the weights file is its state_dict() unchanged",
      {"x": [2, 3, 10, 10]}, state_dict=True)
def _():
    return _names_sequential()


@case("names_sequential_yaml", "the nn.Sequential of names_sequential in a hand-written "
      "spec: layer names 0 .. 9 as YAML scalars (plain and quoted), weights = "
      "state_dict()", {"x": [2, 3, 10, 10]}, yaml_outputs=["9"], yaml="""\
cnnc: 1
name: {case}
weights: model.safetensors
inputs:
  - {name: x, shape: [2, 3, 10, 10]}
outputs: [9]
layers:
  - {name: 0, op: conv2d, filters: 8, kernel: 3, padding: 1}
  - {name: "1", op: batchnorm}
  - {name: 2, op: relu}
  - {name: '3', op: maxpool2d, kernel: 2}
  - {name: 4, op: conv2d, filters: 12, kernel: 3, bias: false}
  - {name: 5, op: batchnorm, input: 4}
  - {name: 6, op: relu6}
  - {name: 7, op: global_avgpool2d}
  - {name: 8, op: flatten}
  - {name: 9, op: dense, units: 5}
""")
def _():
    return _names_sequential()


class NestedNames(nn.Module):
    """MobileNetV2 blocks in a Sequential: names such as features.3.conv.0.1."""

    def __init__(self):
        super().__init__()
        mv2 = _tv("mobilenetv2")
        from torchvision.ops.misc import Conv2dNormActivation
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 8, stride=2, activation_layer=nn.ReLU6),
            mv2.InvertedResidual(8, 8, 1, expand_ratio=1),
            mv2.InvertedResidual(8, 12, 2, expand_ratio=2),
            mv2.InvertedResidual(12, 12, 1, expand_ratio=2))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(12, 5))

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


@case("names_nested", "torchvision MobileNetV2 blocks nested in Sequentials (layer names "
      "features.0.0, features.1.conv.0.1, features.3.conv.0.1, features.3.add, "
      "classifier.1) exported; the weights file is state_dict() unchanged",
      {"x": [1, 3, 16, 16]}, state_dict=True)
def _():
    return randomize_bn(NestedNames())


@case("names_nested_yaml", "the model of names_nested in a hand-written spec whose layer "
      "names are its module names (the residual adds named after their blocks, "
      "features.1 and features.3); weights = state_dict()", {"x": [1, 3, 16, 16]},
      yaml_outputs=["classifier.1"], yaml="""\
cnnc: 1
name: {case}
weights: model.safetensors
inputs:
  - {name: x, shape: [1, 3, 16, 16]}
outputs: [classifier.1]
layers:
  - {name: features.0.0, op: conv2d, filters: 8, kernel: 3, stride: 2, padding: 1, bias: false}
  - {name: features.0.1, op: batchnorm}
  - {name: features.0.2, op: relu6}
  # features.1: depthwise 3x3, pointwise 1x1, residual
  - {name: features.1.conv.0.0, op: conv2d, filters: 8, kernel: 3, padding: 1, groups: 8, bias: false}
  - {name: features.1.conv.0.1, op: batchnorm}
  - {name: features.1.conv.0.2, op: relu6}
  - {name: features.1.conv.1, op: conv2d, filters: 8, kernel: 1, bias: false}
  - {name: features.1.conv.2, op: batchnorm}
  - {name: features.1, op: add, inputs: [features.0.2, features.1.conv.2]}
  # features.2: expand 1x1 to 16, depthwise stride 2, project to 12
  - {name: features.2.conv.0.0, op: conv2d, filters: 16, kernel: 1, bias: false}
  - {name: features.2.conv.0.1, op: batchnorm}
  - {name: features.2.conv.0.2, op: relu6}
  - {name: features.2.conv.1.0, op: conv2d, filters: 16, kernel: 3, stride: 2, padding: 1, groups: 16, bias: false}
  - {name: features.2.conv.1.1, op: batchnorm}
  - {name: features.2.conv.1.2, op: relu6}
  - {name: features.2.conv.2, op: conv2d, filters: 12, kernel: 1, bias: false}
  - {name: features.2.conv.3, op: batchnorm}
  # features.3: expand to 24, depthwise, project to 12, residual
  - {name: features.3.conv.0.0, op: conv2d, filters: 24, kernel: 1, bias: false}
  - {name: features.3.conv.0.1, op: batchnorm}
  - {name: features.3.conv.0.2, op: relu6}
  - {name: features.3.conv.1.0, op: conv2d, filters: 24, kernel: 3, padding: 1, groups: 24, bias: false}
  - {name: features.3.conv.1.1, op: batchnorm}
  - {name: features.3.conv.1.2, op: relu6}
  - {name: features.3.conv.2, op: conv2d, filters: 12, kernel: 1, bias: false}
  - {name: features.3.conv.3, op: batchnorm}
  - {name: features.3, op: add, inputs: [features.2.conv.3, features.3.conv.3]}
  - {name: pool, op: global_avgpool2d}
  - {name: classifier.1, op: dense, units: 5}
""")
def _():
    return randomize_bn(NestedNames())


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------

def _write_f32(path, t):
    np.ascontiguousarray(t.detach().numpy(), dtype="<f4").tofile(path)


def _check_conditioning(name, want32, want64):
    w64 = want64.numpy()
    err = np.abs(want32.numpy().astype(np.float64) - w64)
    tol = REL_TOL * np.abs(w64) + ABS_TOL
    worst = float(np.max(err / tol)) if err.size else 0.0
    if worst > CHECK_FRACTION:
        raise SystemExit("%s: float32 reference differs from float64 by %.2f of the test "
                         "tolerance; make the case better conditioned" % (name, worst))
    return worst


def make_case(name, c, out_dir):
    seed = zlib.crc32(name.encode())
    torch.manual_seed(seed)
    model = c["build"]().eval()
    if c["data"]:
        inputs = c["data"]()
    else:
        inputs = {k: torch.randn(*shape) * c["scale"] for k, shape in c["inputs"].items()}
    for k, shape in c["inputs"].items():
        assert list(inputs[k].shape) == shape, (name, k)

    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    header = ["Generated by tools/make_golden.py; do not edit (rerun the script).",
              "Golden case %s: %s" % (name, c["desc"])]
    out_rename = c["output"]
    if isinstance(out_rename, str):
        out_rename = [out_rename]
    if c["yaml"] is not None:  # hand-written
        text = "\n".join("# " + h for h in header) + "\n" + c["yaml"].replace("{case}", name)
        with open(os.path.join(d, "model.yaml"), "w") as f:
            f.write(text)
        out_names = list(c["yaml_outputs"])
    else:
        ex = cnnc_export.write_model(model, c["inputs"], name, os.path.join(d, "model.yaml"),
                                     outputs=out_rename, inline=c["inline"], header=header,
                                     fold_flatten=c["fold_flatten"])
        assert [n for n, _ in ex.inputs] == list(c["inputs"]), name
        text, out_names = ex.yaml, ex.outputs
    if c["state_dict"]:
        sd = {k: v for k, v in model.state_dict().items()}
        if c["yaml"] is None:  # the exporter's tensors are state_dict entries, unchanged
            for k, t in ex.tensors.items():
                assert k in sd and torch.equal(sd[k].float(), t), (name, k)
        cnnc_export.write_safetensors(os.path.join(d, "model.safetensors"), sd,
                                      metadata={"format": "pt"}, keep_dtype=True)
    # Reference: float32 eval mode; float64 only to check conditioning.
    torch.manual_seed(seed)
    args = [inputs[k] for k in c["inputs"]]
    with torch.no_grad():
        want = model(*args)
        want64 = model.double()(*[a.double() for a in args])
    if not isinstance(want, (tuple, list)):
        want, want64 = (want,), (want64,)
    assert len(want) == len(out_names), name
    worst = max(_check_conditioning(name, w, w64) for w, w64 in zip(want, want64))

    for k in c["inputs"]:
        _write_f32(os.path.join(d, "in_%s.bin" % k), inputs[k])
    for out_name, w in zip(out_names, want):
        _write_f32(os.path.join(d, "out_%s.bin" % out_name), w)
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write("%s\n\n" % c["desc"])
        for k in c["inputs"]:
            f.write("input  %s %s\n" % (k, list(inputs[k].shape)))
        for out_name, w in zip(out_names, want):
            f.write("output %s %s\n" % (out_name, list(w.shape)))
    _verify_yaml(name, d, text)
    return want[0].shape if len(want) == 1 else [list(w.shape) for w in want], worst


def _verify_yaml(name, d, text):
    """Cheap self-check of the emitted spec where PyYAML is around."""
    try:
        import yaml
    except ImportError:
        return
    spec = yaml.safe_load(text)
    assert spec["cnnc"] == 1 and spec["name"] == name, name
    for l in spec["layers"]:
        assert isinstance(l, dict) and "name" in l and "op" in l, (name, l)


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main():
    p = argparse.ArgumentParser(description="Write the golden test cases (needs PyTorch).")
    p.add_argument("cases", nargs="*", help="only these cases (default: all)")
    p.add_argument("--out", default=GOLDEN, help="output directory (default tests/golden)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args()
    if args.list:
        for name, c in CASES.items():
            print("%-26s %s" % (name, c["desc"]))
        return
    unknown = [n for n in args.cases if n not in CASES]
    if unknown:
        raise SystemExit("unknown case(s): %s (see --list)" % ", ".join(unknown))
    torch.set_num_threads(1)  # deterministic reductions
    # PyTorch notes that padding='same' with an even kernel copies the input.
    warnings.filterwarnings("ignore", message="Using padding='same'")
    os.makedirs(args.out, exist_ok=True)
    for name in args.cases or CASES:
        shape, worst = make_case(name, CASES[name], args.out)
        print("%-26s out %-18s f32-vs-f64 %.3f of tolerance" % (name, list(shape), worst))
    # op_*, fuse_*, scale_* and onnx_* cases belong to make_golden_ops.py,
    # make_golden_fusion.py, make_golden_scale.py and make_golden_onnx.py.
    stale = sorted(n for n in os.listdir(args.out)
                   if os.path.isdir(os.path.join(args.out, n)) and n not in CASES
                   and not n.startswith(("op_", "fuse_", "scale_", "onnx_")))
    if stale:
        print("note: directories without a case in this script: %s" % ", ".join(stale))
    print("total golden data: %.1f KiB" % (dir_size(args.out) / 1024.0))


if __name__ == "__main__":
    main()
