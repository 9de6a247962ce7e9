#!/usr/bin/python3
"""Writes the golden cases that exercise the optimising passes: tests/golden/fuse_<case>/.

    /usr/bin/python3 tools/make_golden_fusion.py [CASE...]

The other golden cases check operators; these are shaped so that the
compiler's passes must fire on them: batchnorm folding, activation,
residual and pad fusion, the channel-blocked layout with its reorders at
odd channel counts, graph outputs that are blocked internally, and
Winograd F(4x4,3x3) on layers that its automatic choice takes (at least 32
channels in and out, images of 6x6 or more) with sizes that are not
multiples of the 4x4 tile.  Same conventions and helpers as
tools/make_golden_ops.py (see docs/golden.md).
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402
import make_golden_ops as ops  # noqa: E402

CASES = {}
GENERATOR = "tools/make_golden_fusion.py"


def case(name, desc, inputs):
    def reg(fn):
        CASES["fuse_" + name] = dict(desc=desc, inputs=inputs, data=None, build=fn)
        return fn
    return reg


def conv(x, p, name, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(x, p[name + ".weight"], p.get(name + ".bias"), stride, padding, dilation, groups)


@case("pad_conv", "zero pad [1, 2, 0, 3] folded into the next conv's padding (20 channels, 9x11)",
      {"x": [1, 20, 9, 11]})
def _():
    p = {}
    ops.conv_params(p, "c", 20, 24, 3)
    layers = ["{name: pd, op: pad, padding: [1, 2, 0, 3]}",
              "{name: c, op: conv2d, filters: 24, kernel: 3, activation: relu}"]
    return layers, p, lambda x, p: {"c": F.relu(conv(F.pad(x["x"], (2, 3, 1, 0)), p, "c"))}, ["c"]


@case("wino_resblock", "ResNet basic block at 32 channels, 10x13, batch 2: conv-bn-relu-conv-bn + input, relu "
      "(Winograd by default, folded batchnorm, residual and relu in the epilogue)", {"x": [2, 32, 10, 13]})
def _():
    p = {}
    ops.conv_params(p, "stem", 32, 32, 1)
    ops.conv_params(p, "c1", 32, 32, 3, bias=False)
    ops.conv_params(p, "c2", 32, 32, 3, bias=False)
    ops.bn_params(p, "b1", 32)
    ops.bn_params(p, "b2", 32)
    layers = ["{name: stem, op: conv2d, filters: 32, kernel: 1}",
              "{name: c1, op: conv2d, filters: 32, kernel: 3, padding: 1, bias: false}",
              "{name: b1, op: batchnorm}", "{name: r1, op: relu}",
              "{name: c2, op: conv2d, filters: 32, kernel: 3, padding: 1, bias: false}",
              "{name: b2, op: batchnorm}",
              "{name: y, op: add, inputs: [b2, stem], activation: relu}"]

    def fwd(x, p):
        s = conv(x["x"], p, "stem")
        h = F.relu(ops.bn(conv(s, p, "c1", padding=1), p, "b1"))
        return {"y": F.relu(ops.bn(conv(h, p, "c2", padding=1), p, "b2") + s)}
    return layers, p, fwd, ["y"]


@case("wino_odd", "Winograd-sized layers with ragged tiles: 40 -> 36 channels on 9x11 (padding 1), then 36 -> 33 "
      "on the valid 7x9 interior, no bias", {"x": [1, 40, 9, 11]})
def _():
    p = {}
    ops.conv_params(p, "stem", 40, 40, 1)
    ops.conv_params(p, "c1", 40, 36, 3)
    ops.conv_params(p, "c2", 36, 33, 3, bias=False)
    layers = ["{name: stem, op: conv2d, filters: 40, kernel: 1}",
              "{name: c1, op: conv2d, filters: 36, kernel: 3, padding: 1, activation: silu}",
              "{name: c2, op: conv2d, filters: 33, kernel: 3, bias: false}"]

    def fwd(x, p):
        s = conv(x["x"], p, "stem")
        return {"c2": conv(F.silu(conv(s, p, "c1", padding=1)), p, "c2")}
    return layers, p, fwd, ["c2"]


@case("blocked_edges", "blocked layout at its edges: two graph outputs that are blocked inside (a conv also read "
      "later, and a dropout view at the end), a concat of 5 + 17 channels (not whole blocks), a strided "
      "dilated conv, a depthwise conv on 22 channels, global pool, flatten and dense", {"x": [2, 3, 11, 9]})
def _():
    p = {}
    ops.conv_params(p, "a", 3, 5, 3)
    ops.conv_params(p, "b", 3, 17, 1)
    ops.conv_params(p, "d", 22, 22, 3, groups=22)
    ops.conv_params(p, "s", 22, 20, 3)
    p["fc.weight"] = torch.randn(7, 20) * 0.2
    p["fc.bias"] = torch.randn(7)
    layers = ["{name: a, op: conv2d, filters: 5, kernel: 3, padding: 1, input: x}",
              "{name: b, op: conv2d, filters: 17, kernel: 1, input: x}",
              "{name: cat, op: concat, inputs: [a, b]}",
              "{name: d, op: conv2d, filters: 22, kernel: 3, stride: 2, padding: 1, groups: 22, activation: relu6}",
              "{name: s, op: conv2d, filters: 20, kernel: 3, stride: 2, padding: 2, dilation: 2}",
              "{name: g, op: global_avgpool2d}",
              "{name: f, op: flatten}",
              "{name: fc, op: dense, units: 7}",
              "{name: drop, op: dropout, input: s}"]

    def fwd(x, p):
        a = conv(x["x"], p, "a", padding=1)
        cat = torch.cat([a, conv(x["x"], p, "b")], 1)
        d = F.relu6(conv(cat, p, "d", stride=2, padding=1, groups=22))
        s = conv(d, p, "s", stride=2, padding=2, dilation=2)
        fc = F.linear(s.mean((2, 3)), p["fc.weight"], p["fc.bias"])
        return {"a": a, "fc": fc, "drop": s}
    return layers, p, fwd, ["a", "fc", "drop"]


@case("thread_splits", "layers large enough to be split over threads in every way schedule_split has: "
      "a 1x1 conv by rows, Winograd by tile chunks (32 -> 40 channels on 62x66, ragged last chunk), a stride-2 "
      "direct conv, "
      "a depthwise conv by channel blocks (64 channels), a dense layer by groups of 4 units with a tail of 2 "
      "(1002 units); the golden driver compares every thread count bit for bit", {"x": [1, 32, 62, 66]})
def _():
    p = {}
    ops.conv_params(p, "stem", 32, 32, 1)
    ops.conv_params(p, "wino", 32, 40, 3)
    ops.conv_params(p, "down", 40, 64, 3)
    ops.conv_params(p, "dw", 64, 64, 3, groups=64)
    p["fc.weight"] = torch.randn(1002, 64) * 0.2
    p["fc.bias"] = torch.randn(1002)
    layers = ["{name: stem, op: conv2d, filters: 32, kernel: 1}",
              "{name: wino, op: conv2d, filters: 40, kernel: 3, padding: 1, activation: relu}",
              "{name: down, op: conv2d, filters: 64, kernel: 3, stride: 2, padding: 1, activation: relu}",
              "{name: dw, op: conv2d, filters: 64, kernel: 3, padding: 1, groups: 64, activation: relu6}",
              "{name: g, op: global_avgpool2d}",
              "{name: f, op: flatten}",
              "{name: fc, op: dense, units: 1002}"]

    def fwd(x, p):
        w = F.relu(conv(conv(x["x"], p, "stem"), p, "wino", padding=1))
        d = F.relu(conv(w, p, "down", stride=2, padding=1))
        d = F.relu6(conv(d, p, "dw", padding=1, groups=64))
        return {"fc": F.linear(d.mean((2, 3)), p["fc.weight"], p["fc.bias"])}
    return layers, p, fwd, ["fc"]


@case("tail_groups", "direct convs whose channel blocks do not divide into the register blocking's groups, so "
      "that the last group is short: 1x1 32 -> 40, a dilated 3x3 40 -> 100, a depthwise 3x3 then a 1x1 100 -> 1000 "
      "(SqueezeNet's classifier: 125 blocks of 8), split over threads by channel groups; with --fuse-dw=on the "
      "depthwise and the 1x1 run fused, the short group in each strip", {"x": [1, 32, 13, 13]})
def _():
    p = {}
    ops.conv_params(p, "a", 32, 40, 1)
    ops.conv_params(p, "b", 40, 100, 3)
    ops.conv_params(p, "dw", 100, 100, 3, groups=100)
    ops.conv_params(p, "cls", 100, 1000, 1)
    layers = ["{name: a, op: conv2d, filters: 40, kernel: 1, activation: relu}",
              "{name: b, op: conv2d, filters: 100, kernel: 3, padding: 2, dilation: 2, activation: relu}",
              "{name: dw, op: conv2d, filters: 100, kernel: 3, padding: 1, groups: 100}",
              "{name: cls, op: conv2d, filters: 1000, kernel: 1, activation: relu}",
              "{name: g, op: global_avgpool2d}"]

    def fwd(x, p):
        a = F.relu(conv(x["x"], p, "a"))
        b = F.relu(conv(a, p, "b", padding=2, dilation=2))
        c = F.relu(conv(conv(b, p, "dw", padding=1, groups=100), p, "cls"))
        return {"g": c.mean((2, 3), keepdim=True)}
    return layers, p, fwd, ["g"]


def main():
    ap = argparse.ArgumentParser(description="Write the fuse_* golden cases (needs PyTorch).")
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.cases or CASES:
        worst = ops.make_case(name, CASES[name], mg.GOLDEN, GENERATOR)
        print("%-24s f32-vs-f64 %.3f of tolerance" % (name, worst))


if __name__ == "__main__":
    main()
