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
import os
import shutil
import sys
import zlib

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


def make_case(name, c, out_dir, generator="tools/make_golden_ops.py"):
    torch.manual_seed(zlib.crc32(name.encode()))
    layers, params, fwd, outputs = c["build"]()
    inputs = c["data"]() if c["data"] else {k: torch.randn(*s) for k, s in c["inputs"].items()}
    for k, shape in c["inputs"].items():
        assert list(inputs[k].shape) == shape, (name, k)
    with torch.no_grad():
        want = fwd(inputs, params)
        want64 = fwd({k: v.double() for k, v in inputs.items()}, {k: v.double() for k, v in params.items()})
    worst = max(mg._check_conditioning(name, want[o], want64[o]) for o in outputs)

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
