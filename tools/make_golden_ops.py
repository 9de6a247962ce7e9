#!/usr/bin/python3
"""Writes the golden cases of the issue-3 operators: tests/golden/op_<case>/.

    /usr/bin/python3 tools/make_golden_ops.py             # every case
    /usr/bin/python3 tools/make_golden_ops.py op_pad_edge # only the named cases
    /usr/bin/python3 tools/make_golden_ops.py --list

Same conventions as tools/make_golden.py (see docs/golden.md), whose helpers
this script imports: model.yaml (name = directory name), model.safetensors,
in_<input>.bin, out_<output>.bin, case.txt; seeds from a CRC of the case
name; every case is also run in float64 and refused when the float32
reference is not well inside the test tolerance.

Unlike make_golden.py, the spec is written here by hand rather than by the
exporter: each case gives its layers as YAML, its parameters by their spec
names, and the reference as PyTorch functional code on those same tensors
(F.batch_norm, F.conv_transpose2d, F.interpolate, ...), so that the golden
data checks the operator semantics independently of the exporter.
"""

import argparse
import math
import os
import shutil
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
import cnnc_export  # noqa: E402
import make_golden as mg  # noqa: E402

CASES = {}


def case(name, desc, inputs, data=None):
    """Registers op_<name>.  inputs: {input: shape}.  The decorated function
    returns (layers, params, forward, outputs): the YAML flow mappings of the
    layers, {param name: tensor}, forward(inputs, params) -> {output: tensor},
    and the output layer names in order."""
    def reg(fn):
        full = "op_" + name
        assert full.isidentifier() and full not in CASES, full
        CASES[full] = dict(desc=desc, inputs=inputs, data=data, build=fn)
        return fn
    return reg


def awkward(*shape):
    """Normal values (times 3) with large magnitudes, tiny values and exact
    zeros mixed in: for the activations."""
    x = torch.randn(*shape) * 3
    flat = x.view(-1)
    special = [100.0, -100.0, 1e-30, -1e-30, 0.0, -0.0, 1e-3, -1e-3, 20.0, -20.0, 3.0, -3.0, 6.0]
    idx = torch.randperm(flat.numel())[:len(special)]
    for i, v in zip(idx.tolist(), special):
        flat[i] = v
    return x


def conv_params(p, name, cin, cout, k, groups=1, bias=True, transpose=False):
    m = (nn.ConvTranspose2d if transpose else nn.Conv2d)(cin, cout, k, groups=groups, bias=bias)
    p[name + ".weight"] = m.weight.detach().clone()
    if bias:
        p[name + ".bias"] = m.bias.detach().clone()


def bn_params(p, name, c):
    p[name + ".weight"] = torch.rand(c) + 0.5
    p[name + ".bias"] = torch.randn(c) * 0.2
    p[name + ".running_mean"] = torch.randn(c) * 0.3
    p[name + ".running_var"] = torch.rand(c) + 0.3


def bn(x, p, name, eps=1e-5):
    return F.batch_norm(x, p[name + ".running_mean"], p[name + ".running_var"], p[name + ".weight"],
                        p[name + ".bias"], False, 0.0, eps)


# --------------------------------------------------------------------------
# batchnorm
# --------------------------------------------------------------------------

@case("batchnorm_4d", "standalone batchnorm on [2, 5, 7, 3], epsilon 1e-3", {"x": [2, 5, 7, 3]})
def _():
    p = {}
    bn_params(p, "bn", 5)
    return (["{name: bn, op: batchnorm, epsilon: 0.001}"], p,
            lambda x, p: {"bn": bn(x["x"], p, "bn", 1e-3)}, ["bn"])


@case("batchnorm_2d", "batchnorm on a rank-2 [3, 17] tensor (default epsilon)", {"x": [3, 17]})
def _():
    p = {}
    bn_params(p, "bn", 17)
    return ["{name: bn, op: batchnorm}"], p, lambda x, p: {"bn": bn(x["x"], p, "bn")}, ["bn"]


# --------------------------------------------------------------------------
# add / mul with broadcasting; residual and SE blocks
# --------------------------------------------------------------------------

@case("add_nary", "3-ary add with broadcasting: [2, 3, 5, 7] + [2, 3, 1, 1] + [1, 1, 5, 1], "
      "fused relu6", {"a": [2, 3, 5, 7], "b": [2, 3, 1, 1], "c": [1, 1, 5, 1]})
def _():
    return (["{name: y, op: add, inputs: [a, b, c], activation: relu6}"], {},
            lambda x, p: {"y": F.relu6(x["a"] + x["b"] + x["c"])}, ["y"])


@case("add_bcast_rank", "add of [2, 5, 4, 3] and a lower-rank [4, 1] (aligned from the right), "
      "and of the result with itself", {"a": [2, 5, 4, 3], "b": [4, 1]})
def _():
    return (["{name: s, op: add, inputs: [a, b]}", "{name: y, op: add, inputs: [s, s]}"], {},
            lambda x, p: {"y": (x["a"] + x["b"]) * 2}, ["y"])


@case("mul_bcast", "3-ary mul [2, 3, 4, 5] * [1, 3, 1, 5] * [2, 1, 4, 1] with fused tanh",
      {"a": [2, 3, 4, 5], "b": [1, 3, 1, 5], "c": [2, 1, 4, 1]})
def _():
    return (["{name: y, op: mul, inputs: [a, b, c], activation: tanh}"], {},
            lambda x, p: {"y": torch.tanh(x["a"] * x["b"] * x["c"])}, ["y"])


@case("residual", "residual block: conv3x3 (no bias) + batchnorm + relu, conv3x3 + batchnorm, "
      "add with the input, relu; 5 channels, batch 2, 9x7", {"x": [2, 5, 9, 7]})
def _():
    p = {}
    conv_params(p, "conv1", 5, 5, 3, bias=False)
    conv_params(p, "conv2", 5, 5, 3, bias=False)
    bn_params(p, "bn1", 5)
    bn_params(p, "bn2", 5)
    layers = ["{name: conv1, op: conv2d, filters: 5, kernel: 3, padding: 1, bias: false, input: x}",
              "{name: bn1, op: batchnorm}",
              "{name: relu1, op: relu}",
              "{name: conv2, op: conv2d, filters: 5, kernel: 3, padding: 1, bias: false}",
              "{name: bn2, op: batchnorm}",
              "{name: y, op: add, inputs: [bn2, x], activation: relu}"]

    def fwd(x, p):
        h = F.relu(bn(F.conv2d(x["x"], p["conv1.weight"], padding=1), p, "bn1"))
        h = bn(F.conv2d(h, p["conv2.weight"], padding=1), p, "bn2")
        return {"y": F.relu(h + x["x"])}
    return layers, p, fwd, ["y"]


@case("se_block", "squeeze-and-excitation: global_avgpool2d, 1x1 conv 17 -> 5 + relu, 1x1 conv "
      "5 -> 17 + hardsigmoid, mul [2, 17, 1, 1] against [2, 17, 5, 3]", {"x": [2, 17, 5, 3]})
def _():
    p = {}
    conv_params(p, "fc1", 17, 5, 1)
    conv_params(p, "fc2", 5, 17, 1)
    layers = ["{name: squeeze, op: global_avgpool2d}",
              "{name: fc1, op: conv2d, filters: 5, kernel: 1, activation: relu}",
              "{name: fc2, op: conv2d, filters: 17, kernel: 1, activation: hardsigmoid}",
              "{name: y, op: mul, inputs: [x, fc2]}"]

    def fwd(x, p):
        s = F.adaptive_avg_pool2d(x["x"], 1)
        s = F.relu(F.conv2d(s, p["fc1.weight"], p["fc1.bias"]))
        s = F.hardsigmoid(F.conv2d(s, p["fc2.weight"], p["fc2.bias"]))
        return {"y": x["x"] * s}
    return layers, p, fwd, ["y"]


# --------------------------------------------------------------------------
# concat
# --------------------------------------------------------------------------

@case("concat_axis1", "concat on channels of an input, a conv of it (3 -> 5) and the input "
      "again: [2, 3+5+3, 4, 5]", {"x": [2, 3, 4, 5]})
def _():
    p = {}
    conv_params(p, "conv", 3, 5, 1)
    layers = ["{name: conv, op: conv2d, filters: 5, kernel: 1}",
              "{name: y, op: concat, inputs: [x, conv, x]}"]
    return (layers, p, lambda x, p: {"y": torch.cat(
        [x["x"], F.conv2d(x["x"], p["conv.weight"], p["conv.bias"]), x["x"]], 1)}, ["y"])


@case("concat_axis2", "concat along H of [1, 3, 2, 5], [1, 3, 1, 5] and [1, 3, 4, 5]",
      {"a": [1, 3, 2, 5], "b": [1, 3, 1, 5], "c": [1, 3, 4, 5]})
def _():
    return (["{name: y, op: concat, inputs: [a, b, c], axis: 2}"], {},
            lambda x, p: {"y": torch.cat([x["a"], x["b"], x["c"]], 2)}, ["y"])


@case("concat_axis3", "concat along W (axis: -1) of [2, 3, 4, 1] and [2, 3, 4, 6]",
      {"a": [2, 3, 4, 1], "b": [2, 3, 4, 6]})
def _():
    return (["{name: y, op: concat, inputs: [a, b], axis: -1}"], {},
            lambda x, p: {"y": torch.cat([x["a"], x["b"]], 3)}, ["y"])


# --------------------------------------------------------------------------
# global and adaptive pooling
# --------------------------------------------------------------------------

@case("global_pools", "global_maxpool2d and global_avgpool2d of [2, 5, 7, 3] (two outputs)",
      {"x": [2, 5, 7, 3]})
def _():
    return (["{name: gmax, op: global_maxpool2d, input: x}",
             "{name: gavg, op: global_avgpool2d, input: x}"], {},
            lambda x, p: {"gmax": F.adaptive_max_pool2d(x["x"], 1), "gavg": x["x"].mean((2, 3), keepdim=True)},
            ["gmax", "gavg"])


@case("global_avgpool_1x1", "global_avgpool2d of 1x1 images [2, 17, 1, 1]", {"x": [2, 17, 1, 1]})
def _():
    return (["{name: y, op: global_avgpool2d}"], {},
            lambda x, p: {"y": F.adaptive_avg_pool2d(x["x"], 1)}, ["y"])


@case("adaptive_avgpool", "adaptive_avgpool2d 13x11 -> [5, 3] (overlapping bins), batch 2",
      {"x": [2, 3, 13, 11]})
def _():
    return (["{name: y, op: adaptive_avgpool2d, output_size: [5, 3]}"], {},
            lambda x, p: {"y": F.adaptive_avg_pool2d(x["x"], (5, 3))}, ["y"])


@case("adaptive_avgpool_up", "adaptive_avgpool2d to a larger output, 3x2 -> 5x5, and to 1x1",
      {"x": [1, 5, 3, 2]})
def _():
    return (["{name: up, op: adaptive_avgpool2d, output_size: 5, input: x}",
             "{name: one, op: adaptive_avgpool2d, output_size: 1, input: x}"], {},
            lambda x, p: {"up": F.adaptive_avg_pool2d(x["x"], 5), "one": F.adaptive_avg_pool2d(x["x"], 1)},
            ["up", "one"])


# --------------------------------------------------------------------------
# conv_transpose2d
# --------------------------------------------------------------------------

@case("convt_basic", "conv_transpose2d 3 -> 5, kernel 3, stride 2, padding 1, output_padding 1, "
      "fused relu; batch 2, 5x4", {"x": [2, 3, 5, 4]})
def _():
    p = {}
    conv_params(p, "up", 3, 5, 3, transpose=True)
    return (["{name: up, op: conv_transpose2d, filters: 5, kernel: 3, stride: 2, padding: 1, "
             "output_padding: 1, activation: relu}"], p,
            lambda x, p: {"up": F.relu(F.conv_transpose2d(x["x"], p["up.weight"], p["up.bias"], 2, 1, 1))},
            ["up"])


@case("convt_stride_gt_kernel", "conv_transpose2d kernel [2, 1], stride [3, 4] (gaps of zeros "
      "plus bias), no padding, 17 -> 3 channels", {"x": [1, 17, 3, 4]})
def _():
    p = {}
    conv_params(p, "up", 17, 3, (2, 1), transpose=True)
    return (["{name: up, op: conv_transpose2d, filters: 3, kernel: [2, 1], stride: [3, 4]}"], p,
            lambda x, p: {"up": F.conv_transpose2d(x["x"], p["up.weight"], p["up.bias"], (3, 4))}, ["up"])


@case("convt_groups_dilation", "conv_transpose2d 6 -> 4 in 2 groups, kernel 3, stride 2, padding "
      "3 (more than half the kernel), dilation 2, output_padding [1, 0], no bias, fused elu",
      {"x": [2, 6, 5, 6]})
def _():
    p = {}
    conv_params(p, "up", 6, 4, 3, groups=2, bias=False, transpose=True)
    return (["{name: up, op: conv_transpose2d, filters: 4, kernel: 3, stride: 2, padding: 3, "
             "output_padding: [1, 0], dilation: 2, groups: 2, bias: false, activation: elu}"], p,
            lambda x, p: {"up": F.elu(F.conv_transpose2d(x["x"], p["up.weight"], None, 2, 3, (1, 0), 2, 2))},
            ["up"])


@case("convt_1x1_image", "conv_transpose2d of 1x1 images to 4x4 (kernel 4, stride 1), 5 -> 3, "
      "batch 2", {"x": [2, 5, 1, 1]})
def _():
    p = {}
    conv_params(p, "up", 5, 3, 4, transpose=True)
    return (["{name: up, op: conv_transpose2d, filters: 3, kernel: 4}"], p,
            lambda x, p: {"up": F.conv_transpose2d(x["x"], p["up.weight"], p["up.bias"])}, ["up"])


# --------------------------------------------------------------------------
# pad
# --------------------------------------------------------------------------

@case("pad_constant", "constant pad [top 1, left 2, bottom 3, right 0] with value 0.5",
      {"x": [2, 3, 4, 5]})
def _():
    return (["{name: y, op: pad, padding: [1, 2, 3, 0], value: 0.5}"], {},
            lambda x, p: {"y": F.pad(x["x"], (2, 0, 1, 3), value=0.5)}, ["y"])


@case("pad_reflect", "reflect pad [3, 4, 1, 2] on 4x5 (each pad up to dim - 1)", {"x": [1, 3, 4, 5]})
def _():
    return (["{name: y, op: pad, padding: [3, 4, 1, 2], mode: reflect}"], {},
            lambda x, p: {"y": F.pad(x["x"], (4, 2, 3, 1), mode="reflect")}, ["y"])


@case("pad_edge", "edge pad 3 of 1x1 images (more than the image), and replicate [2, 1] of "
      "the result", {"x": [2, 3, 1, 1]})
def _():
    return (["{name: p1, op: pad, padding: 3, mode: edge}",
             "{name: y, op: pad, padding: [2, 1], mode: replicate}"], {},
            lambda x, p: {"y": F.pad(F.pad(x["x"], (3, 3, 3, 3), mode="replicate"), (1, 1, 2, 2),
                                     mode="replicate")}, ["y"])


# --------------------------------------------------------------------------
# upsample
# --------------------------------------------------------------------------

@case("upsample_nearest", "nearest upsampling by 2 and by [3, 2] (two outputs)", {"x": [2, 3, 3, 5]})
def _():
    return (["{name: up2, op: upsample, scale: 2, input: x}",
             "{name: up32, op: upsample, scale: [3, 2], mode: nearest, input: x}"], {},
            lambda x, p: {"up2": F.interpolate(x["x"], scale_factor=2, mode="nearest"),
                          "up32": F.interpolate(x["x"], scale_factor=(3, 2), mode="nearest")},
            ["up2", "up32"])


@case("upsample_bilinear", "bilinear upsampling by 2 and by [3, 1] without align_corners",
      {"x": [1, 5, 4, 3]})
def _():
    return (["{name: up2, op: upsample, scale: 2, mode: bilinear, input: x}",
             "{name: up31, op: upsample, scale: [3, 1], mode: bilinear, input: x}"], {},
            lambda x, p: {"up2": F.interpolate(x["x"], scale_factor=2, mode="bilinear", align_corners=False),
                          "up31": F.interpolate(x["x"], scale_factor=(3, 1), mode="bilinear",
                                                align_corners=False)},
            ["up2", "up31"])


@case("upsample_align", "bilinear upsampling with align_corners: by 3 on 4x5, and by [2, 5] "
      "on 1x1 images", {"x": [2, 3, 4, 5], "one": [2, 3, 1, 1]})
def _():
    return (["{name: up3, op: upsample, scale: 3, mode: bilinear, align_corners: true, input: x}",
             "{name: up1, op: upsample, scale: [2, 5], mode: bilinear, align_corners: true, input: one}"], {},
            lambda x, p: {"up3": F.interpolate(x["x"], scale_factor=3, mode="bilinear", align_corners=True),
                          "up1": F.interpolate(x["one"], scale_factor=(2, 5), mode="bilinear",
                                               align_corners=True)},
            ["up3", "up1"])


# --------------------------------------------------------------------------
# activations: as layers on awkward values, and fused
# --------------------------------------------------------------------------

ACTS = [
    ("relu6", "{name: y, op: relu6}", F.relu6),
    ("leaky_relu", "{name: y, op: leaky_relu, alpha: 0.2}", lambda x: F.leaky_relu(x, 0.2)),
    ("leaky_relu_default", "{name: y, op: leaky_relu}", F.leaky_relu),
    ("elu", "{name: y, op: elu, alpha: 0.7}", lambda x: F.elu(x, 0.7)),
    ("sigmoid", "{name: y, op: sigmoid}", torch.sigmoid),
    ("tanh", "{name: y, op: tanh}", torch.tanh),
    ("hardsigmoid", "{name: y, op: hardsigmoid}", F.hardsigmoid),
    ("hardswish", "{name: y, op: hardswish}", F.hardswish),
    ("silu", "{name: y, op: silu}", F.silu),
    ("gelu", "{name: y, op: gelu}", F.gelu),
    ("gelu_tanh", "{name: y, op: gelu_tanh}", lambda x: F.gelu(x, approximate="tanh")),
    ("clip", "{name: y, op: clip, min: -0.5, max: 1.5}", lambda x: torch.clamp(x, -0.5, 1.5)),
    ("clip_max", "{name: y, op: clip, max: 2.5}", lambda x: torch.clamp(x, max=2.5)),
]


def _act_case(name, layer, fn):
    @case("act_" + name, "%s as a layer on [2, 5, 3, 7] values (normal * 3 with +-100, +-1e-30, "
          "zeros, +-20 ...)" % layer, {"x": [2, 5, 3, 7]}, data=lambda: {"x": awkward(2, 5, 3, 7)})
    def _():
        return [layer], {}, lambda x, p: {"y": fn(x["x"])}, ["y"]


for _a in ACTS:
    _act_case(*_a)


@case("act_prelu", "prelu with one slope per channel (num_parameters 5) and with one shared "
      "slope, on awkward values", {"x": [2, 5, 3, 7]}, data=lambda: {"x": awkward(2, 5, 3, 7)})
def _():
    p = {"pc.weight": torch.rand(5) - 0.3, "p1.weight": torch.tensor([0.25])}
    return (["{name: pc, op: prelu, num_parameters: 5, input: x}",
             "{name: p1, op: prelu, input: x}"], p,
            lambda x, p: {"pc": F.prelu(x["x"], p["pc.weight"]), "p1": F.prelu(x["x"], p["p1.weight"])},
            ["pc", "p1"])


@case("fused_acts", "activations fused into conv2d (silu), dense (gelu), add (leaky_relu 0.1), "
      "mul (sigmoid) and conv_transpose2d (clip -1..1, padding 3 with kernel 2); batch 2, "
      "3 -> 17 channels",
      {"x": [2, 3, 5, 5]})
def _():
    p = {}
    conv_params(p, "conv", 3, 17, 3)
    conv_params(p, "up", 17, 3, 2, transpose=True)
    fc = nn.Linear(17 * 25, 7)
    p["fc.weight"], p["fc.bias"] = fc.weight.detach().clone(), fc.bias.detach().clone()
    layers = ["{name: conv, op: conv2d, filters: 17, kernel: 3, padding: 1, activation: silu, input: x}",
              "{name: fc, op: dense, units: 7, activation: gelu, input: conv}",
              "{name: up, op: conv_transpose2d, filters: 3, kernel: 2, stride: 2, padding: 3, "
              "output_padding: 1, activation: {op: clip, min: -1, max: 1}, input: conv}",
              "{name: s, op: add, inputs: [up, x], activation: {op: leaky_relu, alpha: 0.1}}",
              "{name: m, op: mul, inputs: [s, x], activation: sigmoid}"]

    def fwd(x, p):
        c = F.silu(F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], padding=1))
        f = F.gelu(F.linear(c.flatten(1), p["fc.weight"], p["fc.bias"]))
        u = torch.clamp(F.conv_transpose2d(c, p["up.weight"], p["up.bias"], 2, 3, 1), -1, 1)
        s = F.leaky_relu(u + x["x"], 0.1)
        return {"fc": f, "m": torch.sigmoid(s * x["x"])}
    return layers, p, fwd, ["fc", "m"]


# --------------------------------------------------------------------------
# views: reshape, flatten, dropout
# --------------------------------------------------------------------------

@case("views", "reshape [0, 3, -1] of a conv output, dropout, softmax over the last axis; "
      "flatten then dense; the reshape itself is also an output (a copy, not a view)",
      {"x": [2, 3, 4, 5]})
def _():
    p = {}
    conv_params(p, "conv", 3, 6, 3)
    fc = nn.Linear(120, 7)
    p["fc.weight"], p["fc.bias"] = fc.weight.detach().clone(), fc.bias.detach().clone()
    layers = ["{name: conv, op: conv2d, filters: 6, kernel: 3, padding: 1}",
              "{name: r, op: reshape, shape: [0, 3, -1]}",
              "{name: drop, op: dropout, p: 0.5}",
              "{name: sm, op: softmax, axis: 2}",
              "{name: flat, op: flatten, input: conv}",
              "{name: drop2, op: dropout, input: flat}",
              "{name: fc, op: dense, units: 7}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], padding=1)
        r = c.reshape(2, 3, -1)
        return {"r": r, "sm": F.softmax(r, 2), "fc": F.linear(c.flatten(1), p["fc.weight"], p["fc.bias"])}
    return layers, p, fwd, ["r", "sm", "fc"]


@case("reshape_chain", "views of views: flatten(start_dim 2) of an input, reshape to [2, 15, 4], "
      "relu (reads the input's buffer through two views)", {"x": [2, 3, 4, 5]})
def _():
    return (["{name: f, op: flatten, start_dim: 2}", "{name: r, op: reshape, shape: [2, 15, 4]}",
             "{name: y, op: relu}"], {},
            lambda x, p: {"y": F.relu(x["x"].flatten(2).reshape(2, 15, 4))}, ["y"])


# --------------------------------------------------------------------------
# helpers for the newer ops
# --------------------------------------------------------------------------

def values(shape, specials=(100.0, -100.0, 1e-30, -1e-30, 0.0, -0.0, 1e-3, -1e-3, 20.0, -20.0, 3.0, -3.0)):
    """Like awkward(): normal * 3 with the given special values mixed in."""
    x = torch.randn(*shape) * 3
    flat = x.view(-1)
    idx = torch.randperm(flat.numel())[:len(specials)]
    for i, v in zip(idx.tolist(), specials):
        flat[i] = v
    return x


def linear_params(p, name, fin, units, bias=True):
    m = nn.Linear(fin, units, bias=bias)
    p[name + ".weight"] = m.weight.detach().clone()
    if bias:
        p[name + ".bias"] = m.bias.detach().clone()


def flow(v):
    """A float32 value as YAML text that reads back as the same float32."""
    return repr(float(torch.tensor(float(v), dtype=torch.float32)))


def flow_list(t):
    return "[" + ", ".join(flow(v) for v in t.flatten().tolist()) + "]"


def py_slice(x, axis, start=None, end=None, step=None):
    """x[..., start:end:step, ...] along axis, as Python slices it (torch
    tensors take no negative steps, so through index_select)."""
    idx = list(range(*slice(start, end, step).indices(x.shape[axis])))
    return torch.index_select(x, axis, torch.tensor(idx, dtype=torch.long))


# --------------------------------------------------------------------------
# transpose
# --------------------------------------------------------------------------

@case("transpose_rank3", "transpose of [2, 3, 5] by perm [2, 0, 1] and [1, 2, 0], and of [3, 1, 7] by "
      "[-1, 0, -2] (negative entries)", {"x": [2, 3, 5], "y": [3, 1, 7]})
def _():
    return (["{name: t1, op: transpose, perm: [2, 0, 1], input: x}",
             "{name: t2, op: transpose, perm: [1, 2, 0], input: x}",
             "{name: t3, op: transpose, perm: [-1, 0, -2], input: y}"], {},
            lambda x, p: {"t1": x["x"].permute(2, 0, 1), "t2": x["x"].permute(1, 2, 0),
                          "t3": x["y"].permute(2, 0, 1)}, ["t1", "t2", "t3"])


@case("transpose_rank4", "transpose of [2, 3, 4, 5]: NCHW -> NHWC [0, 2, 3, 1], [3, 1, 0, 2], the "
      "identity [0, 1, 2, 3], and a transpose of a conv output (blocked, 11 channels) by [0, 3, 2, 1]",
      {"x": [2, 3, 4, 5]})
def _():
    p = {}
    conv_params(p, "conv", 3, 11, 3)
    layers = ["{name: nhwc, op: transpose, perm: [0, 2, 3, 1], input: x}",
              "{name: mix, op: transpose, perm: [3, 1, 0, 2], input: x}",
              "{name: same, op: transpose, perm: [0, 1, 2, 3], input: x}",
              "{name: conv, op: conv2d, filters: 11, kernel: 3, padding: 1, input: x}",
              "{name: tc, op: transpose, perm: [0, 3, 2, 1]}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], padding=1)
        return {"nhwc": x["x"].permute(0, 2, 3, 1), "mix": x["x"].permute(3, 1, 0, 2), "same": x["x"].clone(),
                "tc": c.permute(0, 3, 2, 1)}
    return layers, p, fwd, ["nhwc", "mix", "same", "tc"]


@case("transpose_rank56", "transpose of rank 5 [2, 3, 1, 4, 3] by [4, 2, 0, 3, 1] and rank 6 "
      "[2, 1, 3, 2, 4, 3] by [5, 3, 1, 0, 4, 2]; a permutation that only moves 1-sized dims "
      "([1, 5, 1, 7] by [2, 1, 3, 0]: a plain copy)",
      {"a": [2, 3, 1, 4, 3], "b": [2, 1, 3, 2, 4, 3], "c": [1, 5, 1, 7]})
def _():
    return (["{name: t5, op: transpose, perm: [4, 2, 0, 3, 1], input: a}",
             "{name: t6, op: transpose, perm: [5, 3, 1, 0, 4, 2], input: b}",
             "{name: t1, op: transpose, perm: [2, 1, 3, 0], input: c}"], {},
            lambda x, p: {"t5": x["a"].permute(4, 2, 0, 3, 1), "t6": x["b"].permute(5, 3, 1, 0, 4, 2),
                          "t1": x["c"].permute(2, 1, 3, 0)}, ["t5", "t6", "t1"])


@case("channel_shuffle", "ShuffleNet's channel shuffle between two convs: conv 3 -> 6, reshape "
      "[2, 2, 3, 5, 3], transpose [0, 2, 1, 3, 4], reshape [2, 6, 5, 3], conv 6 -> 5 (grouped: 2); "
      "batch 2", {"x": [2, 3, 5, 3]})
def _():
    p = {}
    conv_params(p, "c1", 3, 6, 1)
    conv_params(p, "c2", 6, 4, 3, groups=2)
    layers = ["{name: c1, op: conv2d, filters: 6, kernel: 1, activation: relu}",
              "{name: r1, op: reshape, shape: [2, 2, 3, 5, 3]}",
              "{name: t, op: transpose, perm: [0, 2, 1, 3, 4]}",
              "{name: r2, op: reshape, shape: [2, 6, 5, 3]}",
              "{name: c2, op: conv2d, filters: 4, kernel: 3, padding: 1, groups: 2}"]

    def fwd(x, p):
        h = F.relu(F.conv2d(x["x"], p["c1.weight"], p["c1.bias"]))
        h = h.reshape(2, 2, 3, 5, 3).transpose(1, 2).reshape(2, 6, 5, 3)
        return {"t": h.reshape(2, 3, 2, 5, 3), "c2": F.conv2d(h, p["c2.weight"], p["c2.bias"], padding=1, groups=2)}
    return layers, p, fwd, ["t", "c2"]


# --------------------------------------------------------------------------
# slice and split
# --------------------------------------------------------------------------

@case("slice_axes", "slices of [2, 5, 7, 6] along every axis: axis 0 from 1; axis 1 [1:4]; axis 2 "
      "[-5:-1:2]; axis -1 [::3]; axis 3 [2:100] (end past the dim); axis 1 [-100:2] (start before it)",
      {"x": [2, 5, 7, 6]})
def _():
    layers = ["{name: s0, op: slice, axis: 0, start: 1, input: x}",
              "{name: s1, op: slice, axis: 1, start: 1, end: 4, input: x}",
              "{name: s2, op: slice, axis: 2, start: -5, end: -1, step: 2, input: x}",
              "{name: s3, op: slice, axis: -1, step: 3, input: x}",
              "{name: s4, op: slice, axis: 3, start: 2, end: 100, input: x}",
              "{name: s5, op: slice, axis: 1, start: -100, end: 2, input: x}"]

    def fwd(x, p):
        x = x["x"]
        return {"s0": x[1:], "s1": x[:, 1:4], "s2": x[:, :, -5:-1:2], "s3": x[..., ::3], "s4": x[..., 2:100],
                "s5": x[:, -100:2]}
    return layers, {}, fwd, ["s0", "s1", "s2", "s3", "s4", "s5"]


@case("slice_negative_step", "slices with negative steps, as Python: axis 1 [::-1] (defaults), axis 2 "
      "[-2:0:-2], axis 3 [10:-10:-3] (both clamped), axis 3 [4::-2], axis 0 [::-1] of batch 2, "
      "axis 2 [:-3:-1], and steps of 2^63 - 1 and -2^63 (one element each)", {"x": [2, 5, 7, 6]})
def _():
    layers = ["{name: r1, op: slice, axis: 1, step: -1, input: x}",
              "{name: r2, op: slice, axis: 2, start: -2, end: 0, step: -2, input: x}",
              "{name: r3, op: slice, axis: 3, start: 10, end: -10, step: -3, input: x}",
              "{name: r4, op: slice, axis: 3, start: 4, step: -2, input: x}",
              "{name: r5, op: slice, axis: 0, step: -1, input: x}",
              "{name: r6, op: slice, axis: 2, end: -3, step: -1, input: x}",
              "{name: r7, op: slice, axis: 3, start: 1, step: 9223372036854775807, input: x}",
              "{name: r8, op: slice, axis: 1, step: -9223372036854775808, input: x}"]

    def fwd(x, p):
        x = x["x"]
        return {"r1": py_slice(x, 1, None, None, -1), "r2": py_slice(x, 2, -2, 0, -2),
                "r3": py_slice(x, 3, 10, -10, -3), "r4": py_slice(x, 3, 4, None, -2),
                "r5": py_slice(x, 0, None, None, -1), "r6": py_slice(x, 2, None, -3, -1),
                "r7": py_slice(x, 3, 1, None, 2**63 - 1), "r8": py_slice(x, 1, None, None, -2**63)}
    return layers, {}, fwd, ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]


@case("slice_conv", "slices of a conv output (blocked, 11 channels): channels [3:10:2] into a "
      "conv, channels [-4:] plus a rank-3 slice [1:] of an input; a slice of one element "
      "(channel 5 of 11)", {"x": [1, 3, 6, 5], "y": [5, 6, 5]})
def _():
    p = {}
    conv_params(p, "conv", 3, 11, 3)
    conv_params(p, "c2", 4, 5, 1)
    layers = ["{name: conv, op: conv2d, filters: 11, kernel: 3, padding: 1, input: x}",
              "{name: odd, op: slice, axis: 1, start: 3, end: 10, step: 2, input: conv}",
              "{name: c2, op: conv2d, filters: 5, kernel: 1}",
              "{name: tail, op: slice, axis: 1, start: -4, input: conv}",
              "{name: ys, op: slice, axis: 0, start: 1, input: y}",
              "{name: sum, op: add, inputs: [tail, ys]}",
              "{name: one, op: slice, axis: 1, start: 5, end: 6, input: conv}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], padding=1)
        c2 = F.conv2d(c[:, 3:10:2], p["c2.weight"], p["c2.bias"])
        return {"c2": c2, "sum": c[:, -4:] + x["y"][1:], "one": c[:, 5:6]}
    return layers, p, fwd, ["c2", "sum", "one"]


@case("split_sizes", "split of a conv output (7 channels, blocked) with sizes [2, 4, 1] on axis 1, "
      "the parts concatenated in another order; split of an input along axis -1 with sizes [3, 2]",
      {"x": [2, 3, 4, 5]})
def _():
    p = {}
    conv_params(p, "conv", 3, 7, 1)
    layers = ["{name: conv, op: conv2d, filters: 7, kernel: 1, input: x}",
              "{name: sp, op: split, axis: 1, sizes: [2, 4, 1], outputs: [a, b, c]}",
              "{name: cat, op: concat, inputs: [c, a, b]}",
              "{name: sp2, op: split, axis: -1, sizes: [3, 2], input: x, outputs: [w0, w1]}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"])
        a, b, cc = torch.split(c, [2, 4, 1], 1)
        w0, w1 = torch.split(x["x"], [3, 2], -1)
        return {"a": a, "b": b, "c": cc, "cat": torch.cat([cc, a, b], 1), "w0": w0, "w1": w1}
    return layers, p, fwd, ["a", "b", "c", "cat", "w0", "w1"]


@case("split_chunks", "split into chunks as torch.chunk: 3 chunks of a length-7 axis (3, 3, 1), "
      "2 chunks of H = 5 (3, 2), 4 chunks of 4 channels, 1 chunk (the whole tensor); a mul of two parts",
      {"x": [2, 4, 5, 7]})
def _():
    layers = ["{name: sp1, op: split, axis: -1, chunks: 3, input: x, outputs: [a0, a1, a2]}",
              "{name: sp2, op: split, axis: 2, chunks: 2, input: x, outputs: [h0, h1]}",
              "{name: sp3, op: split, axis: 1, chunks: 4, input: x, outputs: [c0, c1, c2, c3]}",
              "{name: sp4, op: split, axis: 0, chunks: 1, input: x, outputs: [whole]}",
              "{name: y, op: mul, inputs: [a0, a1]}"]

    def fwd(x, p):
        x = x["x"]
        a = torch.chunk(x, 3, -1)
        h = torch.chunk(x, 2, 2)
        c = torch.chunk(x, 4, 1)
        return {"a0": a[0], "a2": a[2], "h1": h[1], "c0": c[0], "c3": c[3], "whole": x.clone(),
                "y": a[0] * a[1]}
    return layers, {}, fwd, ["a0", "a2", "h1", "c0", "c3", "whole", "y"]


# --------------------------------------------------------------------------
# layer_norm and instance_norm
# --------------------------------------------------------------------------

def norm_params(p, name, shape):
    p[name + ".weight"] = torch.rand(*shape) + 0.5
    p[name + ".bias"] = torch.randn(*shape) * 0.3


@case("layer_norm_last", "layer_norm over the last axis (default axes): [2, 5, 7] affine, [3, 13] "
      "with epsilon 1e-3 and no affine, [2, 5, 1] (one element: the bias), a [2, 3, 17] input "
      "shifted by 8 (two-pass variance)", {"x": [2, 5, 7], "y": [3, 13], "z": [2, 5, 1], "s": [2, 3, 17]},
      data=lambda: {"x": torch.randn(2, 5, 7), "y": torch.randn(3, 13) * 2, "z": torch.randn(2, 5, 1),
                    "s": torch.randn(2, 3, 17) + 8})
def _():
    p = {}
    norm_params(p, "lx", [7])
    norm_params(p, "lz", [1])
    norm_params(p, "ls", [17])
    layers = ["{name: lx, op: layer_norm, input: x}",
              "{name: ly, op: layer_norm, axes: [-1], epsilon: 0.001, elementwise_affine: false, input: y}",
              "{name: lz, op: layer_norm, axes: -1, input: z}",
              "{name: ls, op: layer_norm, axes: [2], input: s}"]

    def fwd(x, p):
        ln = lambda v, n, s: F.layer_norm(v, s, p[n + ".weight"], p[n + ".bias"])
        return {"lx": ln(x["x"], "lx", [7]), "ly": F.layer_norm(x["y"], [13], eps=1e-3),
                "lz": ln(x["z"], "lz", [1]), "ls": ln(x["s"], "ls", [17])}
    return layers, p, fwd, ["lx", "ly", "lz", "ls"]


@case("layer_norm_last2", "layer_norm over the last two axes [-2, -1] of [2, 3, 5, 7] (weight and "
      "bias [5, 7]) and over [1, 2] of a rank-3 [2, 4, 9] without affine; over the last three of a "
      "conv output [2, 11, 3, 4]", {"x": [2, 3, 5, 7], "y": [2, 4, 9]})
def _():
    p = {}
    norm_params(p, "l2", [5, 7])
    norm_params(p, "l3", [11, 3, 4])
    conv_params(p, "conv", 3, 11, 3)
    layers = ["{name: l2, op: layer_norm, axes: [-2, -1], input: x}",
              "{name: ly, op: layer_norm, axes: [1, 2], elementwise_affine: false, input: y}",
              "{name: conv, op: conv2d, filters: 11, kernel: 3, stride: [2, 2], padding: 1, input: x}",
              "{name: l3, op: layer_norm, axes: [1, 2, 3], epsilon: 0.0001}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], stride=2, padding=1)
        return {"l2": F.layer_norm(x["x"], [5, 7], p["l2.weight"], p["l2.bias"]),
                "ly": F.layer_norm(x["y"], [4, 9]),
                "l3": F.layer_norm(c, [11, 3, 4], p["l3.weight"], p["l3.bias"], 1e-4)}
    return layers, p, fwd, ["l2", "ly", "l3"]


@case("layer_norm_channels", "ConvNeXt's channels-first LayerNorm2d: layer_norm axes [1] of NCHW "
      "(weight [C]) after a conv (11 channels, batch 2), with epsilon 1e-6, and without affine on an "
      "input [2, 5, 3, 1]; reference: F.layer_norm on the NHWC permutation",
      {"x": [2, 3, 5, 4], "y": [2, 5, 3, 1]})
def _():
    p = {}
    conv_params(p, "conv", 3, 11, 3)
    norm_params(p, "ln", [11])
    layers = ["{name: conv, op: conv2d, filters: 11, kernel: 3, padding: 1, input: x}",
              "{name: ln, op: layer_norm, axes: [1], epsilon: 0.000001}",
              "{name: act, op: gelu}",
              "{name: ly, op: layer_norm, axes: [-3], elementwise_affine: false, input: y}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], padding=1)
        nchw = lambda v, w, b, eps: F.layer_norm(v.permute(0, 2, 3, 1), [v.shape[1]], w, b, eps).permute(0, 3, 1, 2)
        l = nchw(c, p["ln.weight"], p["ln.bias"], 1e-6)
        return {"ln": l, "act": F.gelu(l), "ly": nchw(x["y"], None, None, 1e-5)}
    return layers, p, fwd, ["ln", "act", "ly"]


@case("instance_norm", "instance_norm (F.instance_norm): [2, 5, 4, 7] without affine (the default), "
      "with affine and epsilon 1e-3 on a conv output (11 channels), rank 3 [2, 3, 9] (InstanceNorm1d) "
      "shifted by 8, and planes of two pixels [2, 3, 2, 1]",
      {"x": [2, 5, 4, 7], "y": [2, 3, 9], "z": [2, 3, 2, 1]},
      data=lambda: {"x": torch.randn(2, 5, 4, 7), "y": torch.randn(2, 3, 9) + 8, "z": torch.randn(2, 3, 2, 1)})
def _():
    p = {}
    conv_params(p, "conv", 5, 11, 1)
    norm_params(p, "ia", [11])
    norm_params(p, "iz", [3])
    layers = ["{name: i0, op: instance_norm, input: x}",
              "{name: conv, op: conv2d, filters: 11, kernel: 1, input: x}",
              "{name: ia, op: instance_norm, affine: true, epsilon: 0.001}",
              "{name: iy, op: instance_norm, affine: false, input: y}",
              "{name: iz, op: instance_norm, affine: true, input: z}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"])
        return {"i0": F.instance_norm(x["x"]),
                "ia": F.instance_norm(c, weight=p["ia.weight"], bias=p["ia.bias"], eps=1e-3),
                "iy": F.instance_norm(x["y"]),
                "iz": F.instance_norm(x["z"], weight=p["iz.weight"], bias=p["iz.bias"])}
    return layers, p, fwd, ["i0", "ia", "iy", "iz"]


# --------------------------------------------------------------------------
# reductions
# --------------------------------------------------------------------------

def _reduce_case(op, fn):
    @case(op, "%s of [2, 5, 1, 7]: over axis 1 with keepdims, over [2, 3] without (the default), "
          "over every axis (no axes: one value), over every axis with keepdims, over the "
          "non-adjacent [0, -1] with keepdims, over the 1-sized axis 2; of a conv output (11 "
          "channels) over [2, 3]" % op, {"x": [2, 5, 1, 7]})
    def _():
        p = {}
        conv_params(p, "conv", 5, 11, 1)
        layers = ["{name: k1, op: %s, axes: [1], keepdims: true, input: x}" % op,
                  "{name: hw, op: %s, axes: [2, 3], input: x}" % op,
                  "{name: all, op: %s, input: x}" % op,
                  "{name: allk, op: %s, axes: [0, 1, 2, 3], keepdims: true, input: x}" % op,
                  "{name: ends, op: %s, axes: [0, -1], keepdims: true, input: x}" % op,
                  "{name: one, op: %s, axes: 2, keepdims: false, input: x}" % op,
                  "{name: conv, op: conv2d, filters: 11, kernel: 1, input: x}",
                  "{name: cr, op: %s, axes: [-2, -1]}" % op]

        def fwd(x, p):
            v = x["x"]
            c = F.conv2d(v, p["conv.weight"], p["conv.bias"])
            return {"k1": fn(v, (1,), True), "hw": fn(v, (2, 3), False), "all": fn(v, (0, 1, 2, 3), False).reshape(1),
                    "allk": fn(v, (0, 1, 2, 3), True), "ends": fn(v, (0, 3), True), "one": fn(v, (2,), False),
                    "cr": fn(c, (2, 3), False)}
        return layers, p, fwd, ["k1", "hw", "all", "allk", "ends", "one", "cr"]


_reduce_case("reduce_mean", lambda v, d, k: torch.mean(v, d, keepdim=k))
_reduce_case("reduce_sum", lambda v, d, k: torch.sum(v, d, keepdim=k))
_reduce_case("reduce_max", lambda v, d, k: torch.amax(v, d, keepdim=k))
_reduce_case("reduce_min", lambda v, d, k: torch.amin(v, d, keepdim=k))


@case("reduce_long", "reduce_mean and reduce_sum of a rank-3 [2, 300, 3] over axis 1 (a strided "
      "reduction of 300 terms, blocked), reduce_max over [0, 2]", {"x": [2, 300, 3]},
      data=lambda: {"x": torch.randn(2, 300, 3) + 2})
def _():
    layers = ["{name: m, op: reduce_mean, axes: 1, input: x}",
              "{name: s, op: reduce_sum, axes: [1], keepdims: true, input: x}",
              "{name: mx, op: reduce_max, axes: [0, 2], input: x}"]
    return (layers, {}, lambda x, p: {"m": x["x"].mean(1), "s": x["x"].sum(1, keepdim=True),
                                       "mx": torch.amax(x["x"], (0, 2))}, ["m", "s", "mx"])


# --------------------------------------------------------------------------
# linear (torch.nn.Linear over the last axis)
# --------------------------------------------------------------------------

@case("linear_ranks", "linear over the last axis: rank 1 [17] -> 5, rank 2 [3, 17] -> 5 with bias, "
      "rank 3 [2, 5, 17] -> 7 without bias, rank 4 [2, 3, 4, 9] -> 6 with a fused relu; "
      "4 -> 1 unit on [2, 3, 4]; a selu layer after a linear (fused into it)",
      {"v": [17], "a": [3, 17], "b": [2, 5, 17], "c": [2, 3, 4, 9], "d": [2, 3, 4]})
def _():
    p = {}
    linear_params(p, "lv", 17, 5)
    linear_params(p, "la", 17, 5)
    linear_params(p, "lb", 17, 7, bias=False)
    linear_params(p, "lc", 9, 6)
    linear_params(p, "ld", 4, 1)
    linear_params(p, "lt", 17, 4)
    layers = ["{name: lv, op: linear, units: 5, input: v}",
              "{name: la, op: linear, units: 5, input: a}",
              "{name: lb, op: linear, units: 7, bias: false, input: b}",
              "{name: lc, op: linear, units: 6, activation: relu, input: c}",
              "{name: ld, op: linear, units: 1, input: d}",
              "{name: lt, op: linear, units: 4, input: b}",
              "{name: lts, op: selu}"]

    def fwd(x, p):
        return {"lv": F.linear(x["v"], p["lv.weight"], p["lv.bias"]),
                "la": F.linear(x["a"], p["la.weight"], p["la.bias"]),
                "lb": F.linear(x["b"], p["lb.weight"]),
                "lc": F.relu(F.linear(x["c"], p["lc.weight"], p["lc.bias"])),
                "ld": F.linear(x["d"], p["ld.weight"], p["ld.bias"]),
                "lts": F.selu(F.linear(x["b"], p["lt.weight"], p["lt.bias"]))}
    return layers, p, fwd, ["lv", "la", "lb", "lc", "ld", "lts"]


@case("linear_conv", "linear over W of a conv output (blocked, 11 channels, W 7 -> 5 units), then "
      "a transformer-style MLP on [2, 6, 11] tokens (linear 11 -> 37 with gelu, linear 37 -> 11, "
      "residual add, layer_norm)", {"x": [2, 3, 4, 7], "t": [2, 6, 11]})
def _():
    p = {}
    conv_params(p, "conv", 3, 11, 3)
    linear_params(p, "lw", 7, 5)
    linear_params(p, "fc1", 11, 37)
    linear_params(p, "fc2", 37, 11)
    norm_params(p, "ln", [11])
    layers = ["{name: conv, op: conv2d, filters: 11, kernel: 3, padding: 1, input: x}",
              "{name: lw, op: linear, units: 5}",
              "{name: fc1, op: linear, units: 37, activation: gelu, input: t}",
              "{name: fc2, op: linear, units: 11}",
              "{name: res, op: add, inputs: [fc2, t]}",
              "{name: ln, op: layer_norm}"]

    def fwd(x, p):
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"], padding=1)
        h = F.linear(F.gelu(F.linear(x["t"], p["fc1.weight"], p["fc1.bias"])), p["fc2.weight"], p["fc2.bias"])
        return {"lw": F.linear(c, p["lw.weight"], p["lw.bias"]),
                "ln": F.layer_norm(h + x["t"], [11], p["ln.weight"], p["ln.bias"])}
    return layers, p, fwd, ["lw", "ln"]


# --------------------------------------------------------------------------
# the newer activations: as a layer, fused into a conv (blocked epilogue),
# into a blocked add with a per-channel operand and into a plain add
# --------------------------------------------------------------------------

NO_TINY = (100.0, -100.0, 0.0, -0.0, 1e-3, -1e-3, 20.0, -20.0, 3.0, -3.0)
POLE = "pole"  # a pole at 0: specials without tiny values, and the convs see |x| with positive weights

NEW_ACTS = [
    # case suffix, op, its keys, reference, specials of the input
    ("selu", "selu", {}, F.selu, None),
    ("selu_params", "selu", {"alpha": 1.5, "gamma": 2}, lambda x: 2 * torch.where(x > 0, x, 1.5 * torch.expm1(x)),
     None),
    ("softplus", "softplus", {}, F.softplus, None),
    ("softplus_beta", "softplus", {"beta": 2}, lambda x: F.softplus(x, beta=2), None),
    ("exp", "exp", {}, torch.exp, (30.0, -100.0, 1e-30, -1e-30, 0.0, -0.0, 1e-3, -1e-3, 10.0, -10.0)),
    ("neg", "neg", {}, torch.neg, None),
    ("abs", "abs", {}, torch.abs, None),
    ("sqrt", "sqrt", {}, torch.sqrt, None),
    ("reciprocal", "reciprocal", {}, torch.reciprocal, POLE),
    ("erf", "erf", {}, torch.erf, None),
    ("pow3", "pow", {"exponent": 3}, lambda x: torch.pow(x, 3), None),
    ("pow2", "pow", {"exponent": 2}, lambda x: torch.pow(x, 2), None),
    ("pow_half", "pow", {"exponent": 0.5}, lambda x: torch.pow(x, 0.5), None),
    ("pow_1_5", "pow", {"exponent": 1.5}, lambda x: torch.pow(x, 1.5), None),
    ("pow_m1", "pow", {"exponent": -1}, lambda x: torch.pow(x, -1), POLE),
    ("pow_m2", "pow", {"exponent": -2}, lambda x: torch.pow(x, -2), POLE),
    ("pow_m0_5", "pow", {"exponent": -0.5}, lambda x: torch.pow(x, -0.5), POLE),
    ("pow0", "pow", {"exponent": 0}, lambda x: torch.pow(x, 0), None),
    ("scale", "scale", {"scale": 0.5, "offset": -1.5}, lambda x: 0.5 * x - 1.5, None),
    ("scale_only", "scale", {"scale": -2}, lambda x: -2 * x, None),
    ("hardsigmoid_params", "hardsigmoid", {"alpha": 0.2, "beta": 0.5}, lambda x: torch.clamp(0.2 * x + 0.5, 0, 1),
     None),
]


def _new_act_case(suffix, op, keys, fn, specials):
    kv = "".join(", %s: %s" % (k, v) for k, v in keys.items())
    act = "{op: %s%s}" % (op, kv) if keys else op
    pole = specials == POLE
    spec = NO_TINY if pole else specials or (100.0, -100.0, 1e-30, -1e-30, 0.0, -0.0, 1e-3, -1e-3, 20.0, -20.0, 3.0,
                                             -3.0)
    how = ("; the convs read |x| with positive weights and biases of at least 0.5, so that no conv output is "
           "near the pole at 0" if pole else "")

    @case("act_" + suffix, "%s%s: as a layer on awkward values (normal * 3 with %s), fused into a 1x1 "
          "conv 5 -> 11 (blocked), into an add with a per-channel [2, 11, 1, 1] (blocked) and into a "
          "plain add x + x%s" % (op, " (%s)" % kv[2:] if kv else "", ", ".join("%g" % v for v in spec), how),
          {"x": [2, 5, 3, 5]}, data=lambda: {"x": values((2, 5, 3, 5), spec)})
    def _():
        p = {}
        conv_params(p, "c", 5, 11, 1)
        conv_params(p, "d", 5, 11, 1)
        if pole:
            for k in p:
                p[k] = p[k].abs() + (0.5 if k.endswith(".bias") else 0.0)
        src = "ax" if pole else "x"
        layers = ["{name: y, op: %s%s, input: x}" % (op, kv)] + (["{name: ax, op: abs, input: x}"] if pole else []) + [
                  "{name: c, op: conv2d, filters: 11, kernel: 1, activation: %s, input: %s}" % (act, src),
                  "{name: d, op: conv2d, filters: 11, kernel: 1, input: %s}" % src,
                  "{name: g, op: global_avgpool2d}",
                  "{name: e, op: add, inputs: [d, g], activation: %s}" % act,
                  "{name: s, op: add, inputs: [x, x], activation: %s}" % act]

        def fwd(x, p):
            v = x["x"]
            cv = v.abs() if pole else v
            d = F.conv2d(cv, p["d.weight"], p["d.bias"])
            return {"y": fn(v), "c": fn(F.conv2d(cv, p["c.weight"], p["c.bias"])),
                    "e": fn(d + d.mean((2, 3), keepdim=True)), "s": fn(v + v)}
        return layers, p, fwd, ["y", "c", "e", "s"]


for _a in NEW_ACTS:
    _new_act_case(*_a)

SPECIALS = [float("inf"), float("-inf"), float("nan"), 0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 1e30, -1e30,
            100.0, -100.0, 88.0, -88.0, 0.5, 2.5, -2.5]


# integer exponents beyond 64 (not by repeated multiplication) and a large non-integer one
BIG_POWS = [("pow%s" % str(e).replace("-", "m").replace(".", "_"), "pow", {"exponent": e},
             (lambda e: lambda x: torch.pow(x, e))(e), None) for e in (65, 66, -65, 100.5)]


@case("act_new_specials", "every newer activation as a layer on IEEE special values: +-inf, NaN, "
      "+-0, +-1e-30, the subnormals +-1e-45, +-1e30 (overflows), +-100, +-88, 0.5, +-2.5; also pow "
      "with exponents 65, 66, -65 and 100.5", {"x": [len(SPECIALS)]}, data=lambda: {"x": torch.tensor(SPECIALS)})
def _():
    acts = NEW_ACTS + BIG_POWS
    layers = ["{name: %s, op: %s%s, input: x}" % (suffix, op, "".join(", %s: %s" % kv for kv in keys.items()))
              for suffix, op, keys, _, _ in acts]
    return (layers, {}, lambda x, p: {suffix: fn(x["x"]) for suffix, _, _, fn, _ in acts},
            [suffix for suffix, _, _, _, _ in acts])


# --------------------------------------------------------------------------
# sub, div, max, min
# --------------------------------------------------------------------------

def away_from_zero(*shape):
    return (torch.rand(*shape) * 1.5 + 0.5) * torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0)


def with_nan(*shape):
    x = torch.randn(*shape)
    flat = x.view(-1)
    for i, v in zip(torch.randperm(flat.numel())[:4].tolist(), [float("nan"), float("inf"), float("-inf"), 0.0]):
        flat[i] = v
    return x


@case("binary_plain", "sub, div, max, min on plain tensors with broadcasting: [2, 3, 4, 5] - "
      "[1, 3, 1, 5] and the reverse (output larger than the first input), [4, 1] - [2, 3, 4, 5] (lower "
      "rank first), divisions by values away from 0, 3-ary max and min, max/min with NaN and +-inf "
      "(NaN propagates), fused abs, relu and scale, and exp and erf layers after a sub and a max (fused "
      "into them)",
      {"a": [2, 3, 4, 5], "b": [1, 3, 1, 5], "c": [4, 1], "d": [2, 3, 4, 5]},
      data=lambda: {"a": torch.randn(2, 3, 4, 5), "b": away_from_zero(1, 3, 1, 5), "c": away_from_zero(4, 1),
                    "d": with_nan(2, 3, 4, 5)})
def _():
    layers = ["{name: s1, op: sub, inputs: [a, b]}",
              "{name: s2, op: sub, inputs: [b, a]}",
              "{name: s3, op: sub, inputs: [c, a], activation: abs}",
              "{name: q1, op: div, inputs: [a, b]}",
              "{name: q2, op: div, inputs: [c, b]}",
              "{name: q3, op: div, inputs: [b, c], activation: {op: scale, scale: 0.5, offset: 1}}",
              "{name: mx, op: max, inputs: [a, b, c]}",
              "{name: mn, op: min, inputs: [c, b, a], activation: relu}",
              "{name: mxd, op: max, inputs: [a, d]}",
              "{name: mnd, op: min, inputs: [d, a]}",
              "{name: sd, op: sub, inputs: [a, d], activation: abs}",
              "{name: sp, op: sub, inputs: [a, b]}",
              "{name: spe, op: exp}",
              "{name: mb, op: max, inputs: [b, a]}",
              "{name: mbe, op: erf}"]

    def fwd(x, p):
        a, b, c, d = x["a"], x["b"], x["c"], x["d"]
        return {"s1": a - b, "s2": b - a, "s3": (c - a).abs(), "q1": a / b, "q2": c / b, "q3": 0.5 * (b / c) + 1,
                "mx": torch.maximum(torch.maximum(a, b), c), "mn": F.relu(torch.minimum(torch.minimum(c, b), a)),
                "mxd": torch.maximum(a, d), "mnd": torch.minimum(d, a), "sd": (a - d).abs(),
                "spe": torch.exp(a - b), "mbe": torch.erf(torch.maximum(b, a))}
    return layers, {}, fwd, ["s1", "s2", "s3", "q1", "q2", "q3", "mx", "mn", "mxd", "mnd", "sd", "spe", "mbe"]


@case("binary_blocked", "sub, div, max, min in the channel-blocked layout (conv outputs, 11 "
      "channels, batch 2): conv - per-channel mean and the reverse with relu, div of equal shapes "
      "(by a sigmoid conv) and by a per-channel sigmoid, 3-ary max with a per-channel operand, min "
      "with a fused scale, a tanh layer after a div (fused into it)", {"x": [2, 3, 3, 4]})
def _():
    p = {}
    conv_params(p, "c1", 3, 11, 3)
    conv_params(p, "c2", 3, 11, 1)
    layers = ["{name: c1, op: conv2d, filters: 11, kernel: 3, padding: 1, input: x}",
              "{name: c2, op: conv2d, filters: 11, kernel: 1, activation: sigmoid, input: x}",
              "{name: g, op: global_avgpool2d, input: c1}",
              "{name: den, op: sigmoid, input: g}",
              "{name: d1, op: sub, inputs: [c1, g]}",
              "{name: d2, op: sub, inputs: [g, c1], activation: relu}",
              "{name: q1, op: div, inputs: [c1, c2]}",
              "{name: q2, op: div, inputs: [c1, den]}",
              "{name: mx, op: max, inputs: [c1, c2, g]}",
              "{name: mn, op: min, inputs: [g, c1], activation: {op: scale, scale: -1, offset: 0.5}}",
              "{name: dt, op: div, inputs: [c1, den]}",
              "{name: dtt, op: tanh}"]

    def fwd(x, p):
        c1 = F.conv2d(x["x"], p["c1.weight"], p["c1.bias"], padding=1)
        c2 = torch.sigmoid(F.conv2d(x["x"], p["c2.weight"], p["c2.bias"]))
        g = c1.mean((2, 3), keepdim=True)
        return {"d1": c1 - g, "d2": F.relu(g - c1), "q1": c1 / c2, "q2": c1 / torch.sigmoid(g),
                "mx": torch.maximum(torch.maximum(c1, c2), g), "mn": -1 * torch.minimum(g, c1) + 0.5,
                "dtt": torch.tanh(c1 / torch.sigmoid(g))}
    return layers, p, fwd, ["d1", "d2", "q1", "q2", "mx", "mn", "dtt"]


# --------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------

@case("constants", "constants as operands: an inline [1, 11, 1, 1] times a conv output at batch 1 "
      "(blocked, the constant reordered) and at batch 2 (plain), a [11, 1, 1] from the weights file "
      "(k2.value) subtracted, an inline one-value [1] divisor, a constant [1, 5, 3, 4] image added and "
      "convolved, the same constant twice in a 3-ary max, the constant first in a sub; a nested inline "
      "[2, 2] constant as a graph output, and the [1, 11, 1, 1] one too (an output that other layers read)",
      {"x": [1, 5, 3, 4], "x2": [2, 5, 3, 4]})
def _():
    p = {}
    conv_params(p, "conv", 5, 11, 1)
    conv_params(p, "cimg", 5, 3, 3)
    conv_params(p, "conv2", 5, 11, 1)
    k = torch.randint(-8, 9, (1, 11, 1, 1)).float() / 4
    p["k2.value"] = torch.randn(11, 1, 1)
    p["img.value"] = torch.randn(1, 5, 3, 4)
    k4 = torch.tensor([[1.5, -2.0], [0.25, 4.0]])
    layers = ["{name: k, op: constant, shape: [1, 11, 1, 1], value: %s}" % flow_list(k),
              "{name: k2, op: constant, shape: [11, 1, 1]}",
              "{name: k3, op: constant, shape: [1], value: [0.5]}",
              "{name: k4, op: constant, shape: [2, 2], value: [[1.5, -2], [0.25, 4]]}",
              "{name: img, op: constant, shape: [1, 5, 3, 4]}",
              "{name: conv, op: conv2d, filters: 11, kernel: 1, input: x}",
              "{name: y1, op: mul, inputs: [conv, k]}",
              "{name: y2, op: sub, inputs: [conv, k2]}",
              "{name: y3, op: div, inputs: [x, k3]}",
              "{name: y5, op: add, inputs: [x, img]}",
              "{name: cimg, op: conv2d, filters: 3, kernel: 3, padding: 1, input: img}",
              "{name: y6, op: max, inputs: [conv, k, k]}",
              "{name: conv2, op: conv2d, filters: 11, kernel: 1, input: x2}",
              "{name: z1, op: mul, inputs: [conv2, k]}",
              "{name: z2, op: sub, inputs: [k, conv2]}"]

    def fwd(x, p):
        kk = k.to(x["x"].dtype)
        c = F.conv2d(x["x"], p["conv.weight"], p["conv.bias"])
        c2 = F.conv2d(x["x2"], p["conv2.weight"], p["conv2.bias"])
        return {"y1": c * kk, "y2": c - p["k2.value"], "y3": x["x"] / 0.5, "k4": k4.to(kk.dtype),
                "y5": x["x"] + p["img.value"],
                "cimg": F.conv2d(p["img.value"], p["cimg.weight"], p["cimg.bias"], padding=1),
                "y6": torch.maximum(c, kk), "z1": c2 * kk, "z2": kk - c2, "k": kk.clone()}
    return layers, p, fwd, ["y1", "y2", "y3", "k4", "y5", "cimg", "y6", "z1", "z2", "k"]


# --------------------------------------------------------------------------
# upsample: float scales, sizes, and ONNX Resize's coordinate and nearest modes
# --------------------------------------------------------------------------

COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]
NEAREST = ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"]


def _coords(n_in, n_out, scale, coord, f32):
    """Source coordinates of the n_out output positions as ONNX Resize
    defines them (scale = output / input as given, or n_out / n_in for a
    size).  f32: the same in float32 operations, in the order cnnc and
    PyTorch compute them (ratio = float(1 / scale), or n_in / n_out in
    float for a size)."""
    o = np.arange(n_out, dtype=np.float64)
    if not f32:
        if coord == "align_corners":
            return o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
        if coord == "asymmetric":
            return o / scale
        if coord == "tf_half_pixel_for_nn":
            return (o + 0.5) / scale
        if coord == "pytorch_half_pixel" and n_out == 1:
            return np.zeros(n_out)
        return (o + 0.5) / scale - 0.5
    f = np.float32
    o = o.astype(f)
    ratio = f(1.0 / scale) if scale is not None and not isinstance(scale, tuple) else f(f(n_in) / f(n_out))
    if coord == "align_corners":
        return o * (f(n_in - 1) / f(n_out - 1)) if n_out > 1 else np.zeros(n_out, f)
    if coord == "asymmetric":
        return o * ratio
    if coord == "tf_half_pixel_for_nn":
        return ratio * (o + f(0.5))
    if coord == "pytorch_half_pixel" and n_out == 1:
        return np.zeros(n_out, f)
    return ratio * (o + f(0.5)) - f(0.5)


def _nearest(x, n_in, mode):
    if mode == "floor":
        i = np.floor(x)
    elif mode == "ceil":
        i = np.ceil(x)
    elif mode == "round_prefer_floor":
        i = np.ceil(x - 0.5)
    else:
        i = np.floor(x + 0.5)
    return np.clip(i, 0, n_in - 1).astype(np.int64)


def _axis(n_in, n_out, scale, given_size, linear, coord, nmode):
    """Indices (and weights) along one axis; the float64 and the float32
    computations must pick the same source pixels, so that the case does
    not depend on rounding at a tie."""
    s = (n_out / n_in) if given_size else scale
    x64 = _coords(n_in, n_out, s, coord, False)
    x32 = _coords(n_in, n_out, (0, 0) if given_size else scale, coord, True)
    if not linear:
        i64, i32 = _nearest(x64, n_in, nmode), _nearest(x32.astype(np.float64), n_in, nmode)
        assert (i64 == i32).all(), ("ambiguous nearest", n_in, n_out, scale, coord, nmode, x64, x32)
        return i64, None, None, None
    x = np.maximum(x64, 0)
    i0 = np.minimum(np.floor(x), n_in - 1).astype(np.int64)
    i1 = i0 + (i0 < n_in - 1)
    l1 = np.clip(x - i0, 0, 1)
    return i0, i1, 1 - l1, l1


def resize_ref(x, out_hw, scale=None, linear=False, coord=None, nmode="floor"):
    """ONNX Resize (nearest or linear) of an NCHW tensor to out_hw; scale
    (sh, sw) when the output size came from scales, None for a size."""
    coord = coord or ("half_pixel" if linear else "asymmetric")
    H, W = x.shape[2], x.shape[3]
    ah = _axis(H, out_hw[0], scale and scale[0], scale is None, linear, coord, nmode)
    aw = _axis(W, out_hw[1], scale and scale[1], scale is None, linear, coord, nmode)
    if not linear:
        return x[:, :, torch.tensor(ah[0])][:, :, :, torch.tensor(aw[0])]
    t = lambda a: torch.tensor(a)
    w = lambda a: torch.tensor(a, dtype=x.dtype)
    r0, r1 = x[:, :, t(ah[0])], x[:, :, t(ah[1])]
    lerp = lambda r: r[..., t(aw[0])] * w(aw[2]) + r[..., t(aw[1])] * w(aw[3])
    return lerp(r0) * w(ah[2])[:, None] + lerp(r1) * w(ah[3])[:, None]


def _out(n, s):
    return int(math.floor(float(n) * s))


@case("upsample_scales", "F.interpolate with float scales on [2, 2, 5, 7]: nearest by 1.5, 0.6 and "
      "[0.6, 1.5]; bilinear by 1.5, 0.6 and [1.5, 0.6]; bilinear with align_corners by 1.5 and 0.6",
      {"x": [2, 2, 5, 7]})
def _():
    specs = [("n15", "scale: 1.5", dict(scale_factor=1.5, mode="nearest")),
             ("n06", "scale: 0.6", dict(scale_factor=0.6, mode="nearest")),
             ("nmix", "scale: [0.6, 1.5], mode: nearest", dict(scale_factor=(0.6, 1.5), mode="nearest")),
             ("b15", "scale: 1.5, mode: bilinear", dict(scale_factor=1.5, mode="bilinear", align_corners=False)),
             ("b06", "scale: 0.6, mode: bilinear", dict(scale_factor=0.6, mode="bilinear", align_corners=False)),
             ("bmix", "scale: [1.5, 0.6], mode: bilinear", dict(scale_factor=(1.5, 0.6), mode="bilinear",
                                                               align_corners=False)),
             ("a15", "scale: 1.5, mode: bilinear, align_corners: true", dict(scale_factor=1.5, mode="bilinear",
                                                                             align_corners=True)),
             ("a06", "scale: 0.6, mode: bilinear, align_corners: true", dict(scale_factor=0.6, mode="bilinear",
                                                                             align_corners=True))]
    layers = ["{name: %s, op: upsample, %s, input: x}" % (n, a) for n, a, _ in specs]
    return (layers, {}, lambda x, p: {n: F.interpolate(x["x"], **kw) for n, _, kw in specs}, [n for n, _, _ in specs])


@case("upsample_size", "F.interpolate with size on [2, 3, 4, 5]: nearest, bilinear and align_corners "
      "to [7, 3]; bilinear and align_corners to [1, 1]; nearest to [4, 9] (H unchanged), bilinear "
      "to [9, 5] (W unchanged), nearest to [2, 10] (exactly half and twice)", {"x": [2, 3, 4, 5]})
def _():
    specs = [("n73", "size: [7, 3]", dict(size=(7, 3), mode="nearest")),
             ("b73", "size: [7, 3], mode: bilinear", dict(size=(7, 3), mode="bilinear", align_corners=False)),
             ("a73", "size: [7, 3], mode: bilinear, align_corners: true", dict(size=(7, 3), mode="bilinear",
                                                                               align_corners=True)),
             ("b11", "size: [1, 1], mode: bilinear", dict(size=(1, 1), mode="bilinear", align_corners=False)),
             ("a11", "size: [1, 1], mode: bilinear, align_corners: true", dict(size=(1, 1), mode="bilinear",
                                                                               align_corners=True)),
             ("n49", "size: [4, 9]", dict(size=(4, 9), mode="nearest")),
             ("b95", "size: [9, 5], mode: bilinear", dict(size=(9, 5), mode="bilinear", align_corners=False)),
             ("n210", "size: [2, 10], mode: nearest", dict(size=(2, 10), mode="nearest"))]
    layers = ["{name: %s, op: upsample, %s, input: x}" % (n, a) for n, a, _ in specs]
    return (layers, {}, lambda x, p: {n: F.interpolate(x["x"], **kw) for n, _, kw in specs}, [n for n, _, _ in specs])


@case("upsample_torch_edges", "F.interpolate where PyTorch's arithmetic has special cases: by [1.1, 0.7] "
      "on [1, 2, 5, 10] (W is floor(10 * 0.7) = 7 in double precision; H stays 5: bilinear copies it, "
      "nearest resamples it), nearest by [2.1, 2] (10 = 2 * 5 rows), bilinear by [0.3, 1.25]; nearest "
      "by [1.1, 0.7] and [2.1, 2] of one channel [2, 1, 5, 10], where PyTorch's kernel copies rows and "
      "takes o / 2", {"x": [1, 2, 5, 10], "y": [2, 1, 5, 10]})
def _():
    specs = [("n", "scale: [1.1, 0.7]", "x", dict(scale_factor=(1.1, 0.7), mode="nearest")),
             ("b", "scale: [1.1, 0.7], mode: bilinear", "x", dict(scale_factor=(1.1, 0.7), mode="bilinear",
                                                                  align_corners=False)),
             ("n2", "scale: [2.1, 2]", "x", dict(scale_factor=(2.1, 2.0), mode="nearest")),
             ("b03", "scale: [0.3, 1.25], mode: bilinear", "x", dict(scale_factor=(0.3, 1.25), mode="bilinear",
                                                                     align_corners=False)),
             ("n_c1", "scale: [1.1, 0.7]", "y", dict(scale_factor=(1.1, 0.7), mode="nearest")),
             ("n2_c1", "scale: [2.1, 2]", "y", dict(scale_factor=(2.1, 2.0), mode="nearest"))]
    layers = ["{name: %s, op: upsample, %s, input: %s}" % (n, a, i) for n, a, i, _ in specs]
    return (layers, {}, lambda x, p: {n: F.interpolate(x[i], **kw) for n, _, i, kw in specs},
            [n for n, _, _, _ in specs])


@case("upsample_formula", "the resizes of upsample_torch_edges with special_cases: false, as ONNX Resize "
      "computes them (no copies of unchanged axes, no o / 2): the ONNX formulas, numpy reference; and two "
      "of them with PyTorch's special cases in the same model (their kernels must not be shared)",
      {"x": [1, 2, 5, 10], "y": [2, 1, 5, 10]})
def _():
    specs = [("n", "scale: [1.1, 0.7]", "x", (1.1, 0.7), False),
             ("b", "scale: [1.1, 0.7], mode: bilinear", "x", (1.1, 0.7), True),
             ("n2", "scale: [2.1, 2]", "x", (2.1, 2.0), False),
             ("b03", "scale: [0.3, 1.25], mode: bilinear", "x", (0.3, 1.25), True),
             ("n_c1", "scale: [1.1, 0.7]", "y", (1.1, 0.7), False),
             ("n2_c1", "scale: [2.1, 2]", "y", (2.1, 2.0), False)]
    layers = ["{name: %s, op: upsample, %s, special_cases: false, input: %s}" % (n, a, i) for n, a, i, _, _ in specs]
    # the same resizes of one channel with PyTorch's special cases, in the same model
    torch_specs = [("n_c1_torch", "scale: [1.1, 0.7]", (1.1, 0.7)), ("n2_c1_torch", "scale: [2.1, 2]", (2.1, 2.0))]
    layers += ["{name: %s, op: upsample, %s, input: y}" % (n, a) for n, a, _ in torch_specs]

    def fwd(x, p):
        r = {n: resize_ref(x[i], (_out(5, sc[0]), _out(10, sc[1])), sc, lin) for n, _, i, sc, lin in specs}
        r.update({n: F.interpolate(x["y"], scale_factor=sc, mode="nearest") for n, _, sc in torch_specs})
        return r
    return layers, {}, fwd, [n for n, _, _, _, _ in specs] + [n for n, _, _ in torch_specs]


def _nearest_modes_case(name, desc, shape, attr, scale, size):
    @case(name, desc, {"x": shape})
    def _():
        out = size or (_out(shape[2], scale[0]), _out(shape[3], scale[1]))
        specs = [("%s_%s" % (c[:4] if c != "pytorch_half_pixel" else "pyth", m.replace("round_prefer_", "r")), c, m)
                 for c in COORDS for m in NEAREST]
        layers = ["{name: %s, op: upsample, %s, coordinate_mode: %s, nearest_mode: %s, input: x}" % (n, attr, c, m)
                  for n, c, m in specs]
        sc = None if size else scale
        # the PyTorch modes against PyTorch itself
        x0 = torch.randn(*shape)
        assert torch.equal(resize_ref(x0, out, sc, coord="asymmetric", nmode="floor"),
                           F.interpolate(x0, size=size, scale_factor=None if size else scale, mode="nearest"))
        return (layers, {}, lambda x, p: {n: resize_ref(x["x"], out, sc, coord=c, nmode=m) for n, c, m in specs},
                [n for n, _, _ in specs])


_nearest_modes_case("upsample_nearest_modes", "nearest upsampling by [2, 1.5] of [1, 2, 3, 4] with every "
                    "coordinate_mode and nearest_mode (ONNX Resize; ties at .5 for round_prefer_*)",
                    [1, 2, 3, 4], "scale: [2, 1.5]", (2.0, 1.5), None)
_nearest_modes_case("upsample_nearest_modes_1", "nearest resizing by [1, 0.75] of [2, 3, 3, 4] with every "
                    "coordinate_mode and nearest_mode (ONNX Resize: at scale 1, tf_half_pixel_for_nn with ceil "
                    "or round_prefer_ceil shifts by one pixel)", [2, 3, 3, 4], "scale: [1, 0.75]", (1.0, 0.75), None)
_nearest_modes_case("upsample_nearest_modes_size", "nearest resizing of [2, 1, 5, 7] to size [3, 10] with every "
                    "coordinate_mode and nearest_mode (ONNX Resize)", [2, 1, 5, 7], "size: [3, 10]", None, (3, 10))


@case("upsample_linear_modes", "bilinear resizing with every coordinate_mode (ONNX Resize, edge values "
      "beyond the border): by [1.5, 0.6] of [2, 2, 4, 5], and to size [1, 7] (pytorch_half_pixel: "
      "coordinate 0 for an output of length 1)", {"x": [2, 2, 4, 5]})
def _():
    specs = [("s_%s" % c, "scale: [1.5, 0.6]", c, (1.5, 0.6), None) for c in COORDS] + \
            [("z_%s" % c, "size: [1, 7]", c, None, (1, 7)) for c in COORDS]
    layers = ["{name: %s, op: upsample, %s, mode: bilinear, coordinate_mode: %s, input: x}" % (n, a, c)
              for n, a, c, _, _ in specs]
    x0 = torch.randn(2, 2, 4, 5)
    for c, ac in (("half_pixel", False), ("align_corners", True)):  # the PyTorch modes against PyTorch
        for sc, sz in (((1.5, 0.6), None), (None, (1, 7))):
            out = sz or (_out(4, sc[0]), _out(5, sc[1]))
            want = F.interpolate(x0, size=sz, scale_factor=sc, mode="bilinear", align_corners=ac)
            assert torch.allclose(resize_ref(x0, out, sc, True, c), want, atol=1e-6), (c, sc, sz)

    def fwd(x, p):
        r = {}
        for n, _, c, sc, sz in specs:
            r[n] = resize_ref(x["x"], sz or (_out(4, sc[0]), _out(5, sc[1])), sc, True, c)
        return r
    return layers, {}, fwd, [n for n, _, _, _, _ in specs]


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------

def write_yaml(path, name, desc, inputs, layers, outputs, has_weights, generator="tools/make_golden_ops.py"):
    lines = ["# Generated by %s; do not edit (rerun the script)." % generator,
             "# Golden case %s: %s" % (name, desc),
             "cnnc: 1", "name: %s" % name]
    if has_weights:
        lines.append("weights: model.safetensors")
    lines.append("inputs:")
    lines += ["  - {name: %s, shape: [%s]}" % (k, ", ".join(map(str, s))) for k, s in inputs.items()]
    lines.append("outputs: [%s]" % ", ".join(outputs))
    lines.append("layers:")
    lines += ["  - " + l for l in layers]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _check_conditioning(name, want32, want64):
    """make_golden's check, where NaN (and an infinity) must be NaN (the
    same infinity, or a float64 value beyond the float32 range) in both and
    is left out of the ratio."""
    w32, w64 = want32.numpy().astype(np.float64), want64.numpy()
    overflow = np.isinf(w32) & (np.abs(w64) > np.finfo(np.float32).max) & (np.sign(w32) == np.sign(w64))
    w64 = np.where(overflow, w32, w64)  # beyond the float32 range: infinity is float32's answer
    same = (np.isnan(w32) & np.isnan(w64)) | (np.isinf(w32) & (w32 == w64))
    if (np.isnan(w32) != np.isnan(w64)).any() or (np.isinf(w32) != np.isinf(w64)).any():
        raise SystemExit("%s: NaN or infinity in only one of the float32 and float64 references" % name)
    return mg._check_conditioning(name, torch.from_numpy(np.where(same, 0.0, w32).astype(np.float32)),
                                  torch.from_numpy(np.where(same, 0.0, w64)))


def make_case(name, c, out_dir, generator="tools/make_golden_ops.py"):
    torch.manual_seed(zlib.crc32(name.encode()))
    layers, params, fwd, outputs = c["build"]()
    inputs = c["data"]() if c["data"] else {k: torch.randn(*s) for k, s in c["inputs"].items()}
    for k, shape in c["inputs"].items():
        assert list(inputs[k].shape) == shape, (name, k)
    with torch.no_grad():
        want = fwd(inputs, params)
        want64 = fwd({k: v.double() for k, v in inputs.items()}, {k: v.double() for k, v in params.items()})
    worst = max(_check_conditioning(name, want[o], want64[o]) for o in outputs)

    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    write_yaml(os.path.join(d, "model.yaml"), name, c["desc"], c["inputs"], layers, outputs, bool(params), generator)
    if params:
        cnnc_export.write_safetensors(os.path.join(d, "model.safetensors"), params)
    for k in c["inputs"]:
        mg._write_f32(os.path.join(d, "in_%s.bin" % k), inputs[k])
    for o in outputs:
        mg._write_f32(os.path.join(d, "out_%s.bin" % o), want[o])
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write("%s\n\n" % c["desc"])
        for k in c["inputs"]:
            f.write("input  %s %s\n" % (k, list(inputs[k].shape)))
        for o in outputs:
            f.write("output %s %s\n" % (o, list(want[o].shape)))
    return worst


def main():
    p = argparse.ArgumentParser(description="Write the op_* golden cases (needs PyTorch).")
    p.add_argument("cases", nargs="*", help="only these cases (default: all)")
    p.add_argument("--out", default=mg.GOLDEN, help="output directory (default tests/golden)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args()
    if args.list:
        for name, c in CASES.items():
            print("%-28s %s" % (name, c["desc"]))
        return
    unknown = [n for n in args.cases if n not in CASES]
    if unknown:
        raise SystemExit("unknown case(s): %s (see --list)" % ", ".join(unknown))
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name in args.cases or CASES:
        worst = make_case(name, CASES[name], args.out)
        total += mg.dir_size(os.path.join(args.out, name))
        print("%-28s f32-vs-f64 %.3f of tolerance" % (name, worst))
    print("op_* golden data written: %.1f KiB" % (total / 1024.0))


if __name__ == "__main__":
    main()
