#!/usr/bin/python3
"""fuzz_diff: differential fuzzer of cnnc against PyTorch (see docs/fuzz.md).

Generates random small CNNs as torch nn.Modules (random DAGs of every op the
exporter knows, with awkward shapes), exports each with tools/cnnc_export.py,
compiles it with cnnc under random flags, links tests/golden_driver.c and
libcnnrt.a, runs the driver on the case and compares with PyTorch (eval mode,
float32) under the golden tolerance |got - want| <= 1e-4*|want| + 1e-5.

    /usr/bin/python3 tools/fuzz_diff.py --seed 1 --count 400 --keep /tmp/fuzz_fail
    /usr/bin/python3 tools/fuzz_diff.py --seed 1 --case 17 -v      # one case again
    /usr/bin/python3 tools/fuzz_diff.py --seed 1 --case 17 --shrink /tmp/fuzz_min

Outcomes per (net, flags):
  ok              every output within tolerance of PyTorch float32, driver contract ok
  wrong           out of tolerance (also NaN, or a failed driver contract check:
                  input modified, run not repeatable, error codes)
  ill-conditioned out of tolerance of PyTorch float32, but PyTorch float32 is
                  itself off float64 by more than the tolerance (or cnnc is within
                  tolerance of float64), and cnnc is no farther from float64 than
                  2x PyTorch float32 is
  crash           cnnc killed by a signal, "internal error", a timeout, an exit
                  status other than 0/1; the driver killed by a signal; the object
                  needing symbols besides memcpy/memset; the driver not linking
  rejected        cnnc exit 1 on a model PyTorch runs (message reported)
  export-error    tools/cnnc_export.py refused the generated module (not a cnnc bug)

Everything is seeded: case i of --seed S is always the same net, inputs and
flags.  --keep DIR writes each failing case as a golden-style directory
(model.yaml with name = directory name, model.safetensors, in_*.bin,
out_*.bin, case.txt with the cnnc command line).  --shrink DIR shrinks every
failing case (greedily: drop layers and outputs, shrink input shape, simplify
attributes and flags while the same kind of failure remains) and writes the
minimal cases there.
"""

import argparse
import copy
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

REL_TOL, ABS_TOL = 1e-4, 1e-5
CHANNELS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 40, 48, 63, 64, 65, 70]
SPECIAL_CH = [16, 17, 31, 32, 33, 48, 64]
MAX_HW = 48          # largest spatial size of any tensor
MAX_C = 96           # largest channel count of any tensor
MAX_ELEMS = 400000   # largest tensor
ACTS = ["relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "hardsigmoid",
        "hardswish", "silu", "gelu", "gelu_tanh", "clip", "clamp_min", "clamp_max", "prelu"]


class Invalid(Exception):
    """A generated node that PyTorch or the fuzzer's limits do not accept."""


# --------------------------------------------------------------------------
# The net: a list of IR nodes, built into modules by running them eagerly
# --------------------------------------------------------------------------
#
# net = {"inputs": [[N, C, H, W] or [N, F], ...], "nodes": [node, ...],
#        "outputs": [value index, ...], "fold_flatten": bool}
# Value index k < len(inputs) is graph input k; otherwise node k - len(inputs).
# node = {"op": str, "in": [value index, ...], "seed": int, ...attributes}

def _act_module(node, x):
    k = node["act"]
    if k == "relu":
        return nn.ReLU()
    if k == "relu6":
        return nn.ReLU6()
    if k == "leaky_relu":
        return nn.LeakyReLU(node.get("alpha", 0.01))
    if k == "elu":
        return nn.ELU(node.get("alpha", 1.0))
    if k == "sigmoid":
        return nn.Sigmoid()
    if k == "tanh":
        return nn.Tanh()
    if k == "hardsigmoid":
        return nn.Hardsigmoid()
    if k == "hardswish":
        return nn.Hardswish()
    if k == "silu":
        return nn.SiLU()
    if k == "gelu":
        return nn.GELU()
    if k == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if k == "clip":
        return nn.Hardtanh(node["lo"], node["hi"])
    if k == "prelu":
        n = 1 if node.get("per_channel") is False or x.dim() < 2 else x.shape[1]
        m = nn.PReLU(n)
        with torch.no_grad():
            m.weight.uniform_(-0.5, 0.6)
        return m
    return None  # clamp_min / clamp_max are functions


def _groups(node, cin):
    g = node.get("groups", 1)
    if g == "dw":
        return cin, cin * node.get("mult", 1)
    if cin % g or node["filters"] % g:
        raise Invalid("groups")
    return g, node["filters"]


def _rescale(m, y):
    """Scales a conv/dense's weight and bias so that its output has RMS about
    1: keeps deep random nets away from vanishing values (where the absolute
    part of the tolerance would hide every error)."""
    rms = float(y.double().pow(2).mean().sqrt())
    if rms > 1e-3 and math.isfinite(rms):
        with torch.no_grad():
            m.weight.div_(rms)
            if m.bias is not None:
                m.bias.div_(rms)
        return y / rms
    return y


def build_node(node, xs):
    """Returns (module or None, output value) of one node on inputs xs (eager).
    Raises Invalid when PyTorch or the fuzzer's limits reject it."""
    torch.manual_seed(node["seed"])
    op = node["op"]
    x = xs[0]
    m = None
    try:
        if op in ("conv", "convt"):
            if x.dim() != 4:
                raise Invalid("rank")
            cin = x.shape[1]
            g, cout = _groups(node, cin)
            if cout > MAX_C:
                raise Invalid("channels")
            if op == "conv":
                pad = node["pad"]
                m = nn.Conv2d(cin, cout, node["k"], node["stride"],
                              padding=pad if isinstance(pad, str) else tuple(pad),
                              dilation=node["dil"], groups=g, bias=node["bias"])
                if node.get("pad4"):
                    x = F.pad(x, node["pad4"])
            else:
                m = nn.ConvTranspose2d(cin, cout, node["k"], node["stride"],
                                       padding=tuple(node["pad"]),
                                       output_padding=tuple(node["opad"]), groups=g,
                                       bias=node["bias"], dilation=node["dil"])
            y = _rescale(m, m(x))
        elif op == "dense":
            if x.dim() != 2:
                raise Invalid("rank")
            m = nn.Linear(x.shape[1], node["units"], bias=node["bias"])
            y = _rescale(m, m(x))
        elif op == "bn":
            c = x.shape[1]
            m = (nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d)(c, eps=node.get("eps", 1e-5))
            with torch.no_grad():
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.6, 1.4)
                m.bias.normal_(0, 0.2)
            m.eval()
            y = m(x)
        elif op == "act":
            m = _act_module(node, x)
            if m is not None:
                y = m(x)
            elif node["act"] == "clamp_min":
                y = torch.clamp(x, min=node["lo"])
            else:
                y = torch.clamp(x, max=node["hi"])
        elif op == "maxpool":
            m = nn.MaxPool2d(node["k"], node["stride"], tuple(node["pad"]), node["dil"],
                             ceil_mode=node["ceil"])
            y = m(x)
        elif op == "avgpool":
            m = nn.AvgPool2d(node["k"], node["stride"], tuple(node["pad"]),
                             ceil_mode=node["ceil"], count_include_pad=node["cip"])
            y = m(x)
        elif op == "gpool":
            kind = node["kind"]
            if kind == "avg":
                m = nn.AdaptiveAvgPool2d(1)
                y = m(x)
            elif kind == "max":
                m = nn.AdaptiveMaxPool2d(1)
                y = m(x)
            elif kind == "mean_keep":
                y = x.mean([2, 3], keepdim=True)
            else:  # mean without keepdim: [N, C]
                y = x.mean([2, 3])
        elif op == "apool":
            m = nn.AdaptiveAvgPool2d(tuple(node["size"]))
            y = m(x)
        elif op == "pad":
            mode = node["mode"]
            y = F.pad(x, node["pads"], mode=mode,
                      **({"value": node["value"]} if mode == "constant" else {}))
        elif op == "upsample":
            if node["by_size"]:
                size = (x.shape[2] * node["scale"][0], x.shape[3] * node["scale"][1])
                y = F.interpolate(x, size=size, mode=node["mode"],
                                  **({"align_corners": node["ac"]} if node["mode"] == "bilinear" else {}))
            else:
                y = F.interpolate(x, scale_factor=tuple(float(s) for s in node["scale"]),
                                  mode=node["mode"],
                                  **({"align_corners": node["ac"]} if node["mode"] == "bilinear" else {}))
        elif op in ("add", "mul", "sub"):
            y = xs[0]
            for z in xs[1:]:
                y = y + z if op == "add" else (y * z if op == "mul" else y - z)
        elif op == "cat":
            y = torch.cat(xs, node["axis"])
        elif op == "affine":
            y = x * node["a"] + node["b"]
        elif op == "flatten":
            y = torch.flatten(x, 1)
        elif op == "reshape":
            y = x.reshape(node["shape"])
        elif op == "softmax":
            y = torch.softmax(x, node["axis"])
        elif op == "log_softmax":
            y = torch.log_softmax(x, node["axis"])
        elif op == "dropout":
            m = nn.Dropout(0.3)
            m.eval()
            y = m(x)
        else:
            raise AssertionError(op)
    except Invalid:
        raise
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise Invalid(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if y.numel() == 0 or y.numel() > MAX_ELEMS or min(y.shape) < 1:
        raise Invalid("size")
    if y.dim() == 4 and (y.shape[2] > MAX_HW or y.shape[3] > MAX_HW or y.shape[1] > MAX_C * 2):
        raise Invalid("size")
    if not torch.isfinite(y).all():
        raise Invalid("non-finite")
    if m is not None:
        m.eval()
    return m, y


class FuzzNet(nn.Module):
    """Runs the IR; traceable by torch.fx (the loop is over static data)."""

    def __init__(self, net, mods):
        super().__init__()
        self.ninp = len(net["inputs"])
        self.plan = [(i, n["op"], list(n["in"]), dict(n)) for i, n in enumerate(net["nodes"])]
        self.outs = list(net["outputs"])
        for i, m in mods.items():
            self.add_module("L%d_%s" % (i, net["nodes"][i]["op"]), m)

    def body(self, inputs):
        vals = list(inputs)
        for i, op, ins, n in self.plan:
            xs = [vals[j] for j in ins]
            x = xs[0]
            name = "L%d_%s" % (i, op)
            if op == "conv" and n.get("pad4"):
                x = F.pad(x, n["pad4"])
            if op in ("conv", "convt", "dense", "bn", "maxpool", "avgpool", "apool", "dropout"):
                y = getattr(self, name)(x)
            elif op == "act":
                if n["act"] == "clamp_min":
                    y = torch.clamp(x, min=n["lo"])
                elif n["act"] == "clamp_max":
                    y = torch.clamp(x, max=n["hi"])
                else:
                    y = getattr(self, name)(x)
            elif op == "gpool":
                if n["kind"] in ("avg", "max"):
                    y = getattr(self, name)(x)
                elif n["kind"] == "mean_keep":
                    y = x.mean([2, 3], keepdim=True)
                else:
                    y = x.mean([2, 3])
            elif op == "pad":
                if n["mode"] == "constant":
                    y = F.pad(x, n["pads"], mode="constant", value=n["value"])
                else:
                    y = F.pad(x, n["pads"], mode=n["mode"])
            elif op == "upsample":
                kw = {"align_corners": n["ac"]} if n["mode"] == "bilinear" else {}
                if n["by_size"]:
                    y = F.interpolate(x, size=tuple(n["size_out"]), mode=n["mode"], **kw)
                else:
                    y = F.interpolate(x, scale_factor=tuple(float(s) for s in n["scale"]),
                                      mode=n["mode"], **kw)
            elif op == "add":
                y = xs[0]
                for z in xs[1:]:
                    y = y + z
            elif op == "mul":
                y = xs[0]
                for z in xs[1:]:
                    y = y * z
            elif op == "sub":
                y = xs[0] - xs[1]
            elif op == "cat":
                y = torch.cat(xs, n["axis"])
            elif op == "affine":
                y = x * n["a"] + n["b"]
            elif op == "flatten":
                y = torch.flatten(x, 1)
            elif op == "reshape":
                y = x.reshape(n["shape"])
            elif op == "softmax":
                y = torch.softmax(x, n["axis"])
            elif op == "log_softmax":
                y = torch.log_softmax(x, n["axis"])
            vals.append(y)
        res = tuple(vals[o] for o in self.outs)
        return res[0] if len(res) == 1 else res


class Net1(FuzzNet):
    def forward(self, x0):
        return self.body([x0])


class Net2(FuzzNet):
    def forward(self, x0, x1):
        return self.body([x0, x1])


def make_inputs(net, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g) for s in net["inputs"]]


def build(net, inputs):
    """Eagerly builds every node; returns (module, values).  Raises Invalid."""
    vals = list(inputs)
    mods = {}
    for i, n in enumerate(net["nodes"]):
        if any(j >= len(vals) for j in n["in"]):
            raise Invalid("dangling input")
        m, y = build_node(n, [vals[j] for j in n["in"]])
        if n["op"] == "upsample":
            n["size_out"] = [int(y.shape[2]), int(y.shape[3])]
        if m is not None:
            mods[i] = m
        vals.append(y)
    if not net["outputs"] or any(o < len(inputs) for o in net["outputs"]):
        raise Invalid("output is a graph input")
    if len(set(net["outputs"])) != len(net["outputs"]):
        raise Invalid("duplicate output")
    cls = Net1 if len(inputs) == 1 else Net2
    model = cls(net, mods).eval()
    return model, vals


# --------------------------------------------------------------------------
# Random generation
# --------------------------------------------------------------------------

def _pick_ch(r):
    return r.choice(SPECIAL_CH) if r.random() < 0.4 else r.choice(CHANNELS)


def _rand_act(r, node):
    k = r.choice(ACTS)
    node["act"] = k
    if k == "leaky_relu" and r.random() < 0.7:
        node["alpha"] = r.choice([0.2, 0.1, -0.5, 1.5])
    if k == "elu" and r.random() < 0.5:
        node["alpha"] = r.choice([0.5, 2.0])
    if k == "clip":
        lo = r.choice([-1.0, 0.0, -0.5, 0.25])
        node["lo"], node["hi"] = lo, lo + r.choice([0.5, 1.0, 6.0])
    if k == "clamp_min":
        node["lo"] = r.choice([-0.5, 0.0, 0.3])
    if k == "clamp_max":
        node["hi"] = r.choice([-0.2, 0.0, 0.7])
    if k == "prelu":
        node["per_channel"] = r.random() < 0.6
    return node


def _shape_ok_for(shape, want):
    return list(shape) == list(want)


# Kinds added by --extra (none by default, so that the nets of a seed stay
# the same): "dwpw" is a depthwise conv and a 1x1 conv after it (what
# cnnc --fuse-dw=on fuses), sometimes as an inverted residual block.
EXTRA_KINDS = []


def gen_node(r, vals, ninp):
    """A random node reading existing values (by index), or None."""
    shapes = [list(v.shape) for v in vals]
    four = [i for i, s in enumerate(shapes) if len(s) == 4]
    two = [i for i, s in enumerate(shapes) if len(s) == 2]
    last = len(vals) - 1
    node = {"seed": r.getrandbits(31)}

    def src(rank4=True):
        pool = four if rank4 else two
        if not pool:
            return None
        if last in pool and r.random() < 0.75:
            return last
        return r.choice(pool)

    ops = [("conv", 30), ("act", 12), ("bn", 7), ("maxpool", 6), ("avgpool", 6),
           ("residual", 8), ("branches", 6), ("se", 4), ("convt", 5), ("pad", 5),
           ("upsample", 4), ("gpool", 3), ("apool", 2), ("binary", 6), ("cat_hw", 2),
           ("affine", 3), ("reshape", 2), ("dropout", 1), ("softmax4", 1)]
    if two:
        ops += [("dense", 12), ("act2", 4), ("bn1d", 3), ("softmax", 4), ("binary2", 2)]
    if four:
        ops += [("head", 3)]
        ops += [(k, w) for k, w in EXTRA_KINDS]
    tot = sum(w for _, w in ops)
    t = r.uniform(0, tot)
    for kind, w in ops:
        t -= w
        if t <= 0:
            break
    if kind in ("act2", "bn1d", "softmax", "dense", "binary2"):
        s = src(False)
    else:
        s = src(True)
    if s is None:
        return None
    N, C = shapes[s][0], shapes[s][1]
    H, W = (shapes[s][2], shapes[s][3]) if len(shapes[s]) == 4 else (1, 1)

    def conv_node(s, filters=None, keep_shape=False):
        n = {"op": "conv", "in": [s], "seed": r.getrandbits(31)}
        if keep_shape:
            k = r.choice([1, 3, 3, 5])
            n.update(k=k, stride=1, dil=1, bias=r.random() < 0.7,
                     pad="same" if r.random() < 0.3 else [k // 2, k // 2],
                     filters=C, groups=1)
            if r.random() < 0.25:
                n["groups"] = "dw"
            return n
        kh = r.choice([1, 1, 2, 3, 3, 3, 4, 5, 7])
        kw = kh if r.random() < 0.8 else r.choice([1, 2, 3, 5, 7])
        n["k"] = [kh, kw]
        n["stride"] = [1, 1] if r.random() < 0.6 else [r.randint(1, 3)] * 2
        if r.random() < 0.15:
            n["stride"] = [r.randint(1, 3), r.randint(1, 3)]
        n["dil"] = [1, 1] if r.random() < 0.8 else [r.randint(1, 3), r.randint(1, 3)]
        if n["stride"] == [1, 1] and r.random() < 0.1:
            n["pad"] = "same"
        else:
            n["pad"] = [r.randint(0, kh - 1), r.randint(0, kw - 1)] if r.random() < 0.8 else [0, 0]
        if r.random() < 0.12:
            n["pad4"] = [r.randint(0, kw - 1), r.randint(0, kw - 1),
                         r.randint(0, kh - 1), r.randint(0, kh - 1)]
            if n["pad"] == "same":
                n["pad"] = [0, 0]
        n["bias"] = r.random() < 0.75
        n["filters"] = filters or _pick_ch(r)
        gsel = r.random()
        if gsel < 0.15:
            n["groups"] = "dw"
            n["mult"] = 1 if r.random() < 0.8 else 2
        elif gsel < 0.27:
            divs = [g for g in range(2, C + 1) if C % g == 0]
            if divs:
                g = r.choice(divs)
                n["groups"] = g
                n["filters"] = g * r.randint(1, max(1, 64 // g))
        return n

    if kind == "dwpw":
        k = r.choice([3, 3, 5, 7])
        st = r.choice([1, 1, 2, 3])
        p = r.randint(0, k // 2 + 1) if r.random() < 0.3 else k // 2
        dw = {"op": "conv", "in": [s], "seed": r.getrandbits(31), "k": [k, k], "stride": [st, st],
              "dil": [1, 1], "pad": [p, p], "bias": r.random() < 0.6, "filters": C, "groups": "dw",
              "mult": 1}
        body = [dw]
        if r.random() < 0.7:
            body.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
        residual = st == 1 and p == k // 2 and r.random() < 0.5
        body.append({"op": "conv", "in": ["prev"], "seed": r.getrandbits(31), "k": [1, 1],
                     "stride": [1, 1], "dil": [1, 1], "pad": [0, 0], "bias": r.random() < 0.6,
                     "filters": C if residual else _pick_ch(r), "groups": 1})
        if residual:
            body.append({"op": "add", "in": [s, "prev"], "seed": r.getrandbits(31)})
        if r.random() < 0.3:
            body.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
        return body
    if kind == "conv":
        node = conv_node(s)
        if r.random() < 0.35:
            return [node, _rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)})]
        return [node]
    if kind == "convt":
        k = r.randint(1, 5)
        st = r.randint(1, 3)
        dil = 1 if r.random() < 0.8 else 2
        p = r.randint(0, max(0, (dil * (k - 1)) // 2 + (1 if r.random() < 0.2 else 0)))
        op = r.randint(0, max(st, dil) - 1) if r.random() < 0.4 else 0
        n = {"op": "convt", "in": [s], "seed": r.getrandbits(31), "k": k, "stride": st,
             "pad": [p, p], "opad": [op, op], "dil": dil, "bias": r.random() < 0.7,
             "filters": _pick_ch(r), "groups": 1}
        if r.random() < 0.2:
            divs = [g for g in range(2, C + 1) if C % g == 0]
            if divs:
                g = r.choice(divs)
                n["groups"] = g
                n["filters"] = g * r.randint(1, max(1, 32 // g))
        return [n]
    if kind in ("act", "act2"):
        return [_rand_act(r, {"op": "act", "in": [s], "seed": node["seed"]})]
    if kind in ("bn", "bn1d"):
        n = {"op": "bn", "in": [s], "seed": node["seed"]}
        if r.random() < 0.2:
            n["eps"] = 1e-3
        return [n]
    if kind in ("maxpool", "avgpool"):
        k = r.randint(1, 5)
        kk = [k, k] if r.random() < 0.85 else [k, r.randint(1, 5)]
        st = r.choice([None, None, 1, 2, 3]) if kk[0] == kk[1] else r.choice([1, 2, 3])
        if st is None:
            stv = None
        else:
            stv = [st, st]
        pad = [r.randint(0, kk[0] // 2), r.randint(0, kk[1] // 2)] if r.random() < 0.5 else [0, 0]
        n = {"op": kind, "in": [s], "seed": node["seed"], "k": kk, "stride": stv,
             "pad": pad, "ceil": r.random() < 0.4}
        if kind == "maxpool":
            n["dil"] = [1, 1] if r.random() < 0.75 else [r.randint(1, 3)] * 2
        else:
            n["cip"] = r.random() < 0.6
        return [n]
    if kind == "gpool":
        return [{"op": "gpool", "in": [s], "seed": node["seed"],
                 "kind": r.choice(["avg", "max", "mean_keep", "mean_flat"])}]
    if kind == "apool":
        return [{"op": "apool", "in": [s], "seed": node["seed"],
                 "size": [r.randint(1, min(H, 7)) if r.random() < 0.7 else r.randint(1, 9),
                          r.randint(1, min(W, 7))]}]
    if kind == "pad":
        mode = r.choice(["constant", "constant", "reflect", "replicate"])
        pads = [r.randint(0, 3) for _ in range(4)]
        n = {"op": "pad", "in": [s], "seed": node["seed"], "mode": mode, "pads": pads}
        if mode == "constant":
            n["value"] = r.choice([0.0, 0.0, 1.5, -2.0])
        out = [n]
        if mode == "constant" and n["value"] == 0.0 and r.random() < 0.5:
            c = conv_node("prev")
            c["pad"] = [r.randint(0, c["k"][0] - 1), r.randint(0, c["k"][1] - 1)]
            out.append(c)
        return out
    if kind == "upsample":
        sh = r.randint(1, 3)
        sc = [sh, sh] if r.random() < 0.8 else [sh, r.randint(1, 3)]
        mode = r.choice(["nearest", "bilinear"])
        return [{"op": "upsample", "in": [s], "seed": node["seed"], "scale": sc, "mode": mode,
                 "ac": r.random() < 0.5, "by_size": r.random() < 0.3}]
    if kind == "residual":
        # y = act(f(x)); out = x + y (optionally activation after)
        body = [conv_node(s, keep_shape=True)]
        if r.random() < 0.5:
            body.append({"op": "bn", "in": ["prev"], "seed": r.getrandbits(31)})
        if r.random() < 0.6:
            body.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
        if r.random() < 0.5:
            c2 = conv_node("prev", keep_shape=True)
            body.append(c2)
        add = {"op": "add" if r.random() < 0.85 else "sub", "in": [s, "prev"] if r.random() < 0.5 else ["prev", s],
               "seed": r.getrandbits(31)}
        body.append(add)
        if r.random() < 0.4:
            body.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
        return body
    if kind == "branches":
        # 2-3 branches of the same spatial size, concatenated on channels
        nb = r.randint(2, 3)
        out = []
        refs = []
        for b in range(nb):
            t = r.random()
            if t < 0.2 and b > 0:
                refs.append(s)  # the input itself as a branch
                continue
            if t < 0.35:
                mp = {"op": "maxpool", "in": [s], "seed": r.getrandbits(31), "k": [3, 3],
                      "stride": [1, 1], "pad": [1, 1], "ceil": False, "dil": [1, 1]}
                out.append(mp)
            else:
                c = conv_node(s, keep_shape=True)
                c["filters"] = _pick_ch(r)
                if c.get("groups") == "dw":
                    c["mult"] = r.choice([1, 2])
                out.append(c)
                if r.random() < 0.5:
                    out.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
            refs.append(("node", len(out) - 1))
        out.append({"op": "cat", "in": refs, "seed": r.getrandbits(31), "axis": 1})
        return out
    if kind == "se":
        red = max(1, C // r.choice([2, 4, 8]))
        gk = r.choice(["avg", "mean_keep"])
        gate = r.choice(["sigmoid", "hardsigmoid"])
        body = [{"op": "gpool", "in": [s], "seed": r.getrandbits(31), "kind": gk},
                {"op": "conv", "in": ["prev"], "seed": r.getrandbits(31), "k": [1, 1],
                 "stride": [1, 1], "dil": [1, 1], "pad": [0, 0], "bias": True, "filters": red,
                 "groups": 1},
                _rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}),
                {"op": "conv", "in": ["prev"], "seed": r.getrandbits(31), "k": [1, 1],
                 "stride": [1, 1], "dil": [1, 1], "pad": [0, 0], "bias": True, "filters": C,
                 "groups": 1},
                {"op": "act", "in": ["prev"], "seed": r.getrandbits(31), "act": gate},
                {"op": "mul", "in": [s, "prev"] if r.random() < 0.5 else ["prev", s],
                 "seed": r.getrandbits(31)}]
        body[2]["act"] = r.choice(["relu", "silu", "hardswish", "relu6"])
        return body
    if kind in ("binary", "binary2"):
        same = [i for i in range(len(vals)) if shapes[i] == shapes[s] and i != s]
        bc = [i for i in range(len(vals)) if len(shapes[i]) == len(shapes[s]) and i != s
              and all(a == b or a == 1 or b == 1 for a, b in zip(shapes[i], shapes[s]))]
        cands = same if same and r.random() < 0.7 else bc
        if not cands:
            return None
        o = r.choice(cands)
        op = r.choice(["add", "add", "mul", "sub"])
        ins = [s, o] if r.random() < 0.5 else [o, s]
        if op == "add" and r.random() < 0.2:
            more = [i for i in same if i not in ins]
            if more:
                ins.append(r.choice(more))
        out = [{"op": op, "in": ins, "seed": node["seed"]}]
        if r.random() < 0.4:
            out.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
        return out
    if kind == "cat_hw":
        axis = r.choice([2, 3, 0])
        cands = [i for i in range(len(vals)) if len(shapes[i]) == 4 and
                 all(shapes[i][d] == shapes[s][d] for d in range(4) if d != axis)]
        ins = [s] + [r.choice(cands) for _ in range(r.randint(1, 2))]
        return [{"op": "cat", "in": ins, "seed": node["seed"], "axis": axis}]
    if kind == "affine":
        return [{"op": "affine", "in": [s], "seed": node["seed"],
                 "a": r.choice([0.5, -1.0, 2.0, 1.0 / 6]), "b": r.choice([0.0, 1.0, -0.25])}]
    if kind == "reshape":
        # [N, C, H, W] -> [N, C/g, g*H, W] or [N, C*H, W, 1] or [N, C, H*W, 1]
        opts = []
        for g in (2, 3, 4):
            if C % g == 0:
                opts.append([N, C // g, g * H, W])
        opts.append([N, C, H * W, 1])
        opts.append([N, C * H, W, 1])
        opts.append([N, C * H * W])
        return [{"op": "reshape", "in": [s], "seed": node["seed"], "shape": r.choice(opts)}]
    if kind == "dropout":
        return [{"op": "dropout", "in": [s], "seed": node["seed"]}]
    if kind == "softmax4":
        return [{"op": r.choice(["softmax", "log_softmax"]), "in": [s], "seed": node["seed"],
                 "axis": r.choice([1, 1, 2, 3, -1])}]
    if kind == "softmax":
        return [{"op": r.choice(["softmax", "log_softmax"]), "in": [s], "seed": node["seed"],
                 "axis": r.choice([1, -1, 1, 0])}]
    if kind == "dense":
        n = {"op": "dense", "in": [s], "seed": node["seed"], "units": r.choice([1, 3, 10, 17, 33, 64]),
             "bias": r.random() < 0.8}
        out = [n]
        if r.random() < 0.4:
            out.append(_rand_act(r, {"op": "act", "in": ["prev"], "seed": r.getrandbits(31)}))
        return out
    if kind == "head":
        # global pool or flatten, then dense, then maybe softmax
        out = []
        if r.random() < 0.5 or H * W * C > 4000:
            out.append({"op": "gpool", "in": [s], "seed": r.getrandbits(31),
                        "kind": "mean_flat"})
            if r.random() < 0.5:
                out[-1]["kind"] = r.choice(["avg", "max"])
                out.append({"op": "flatten", "in": ["prev"], "seed": r.getrandbits(31)})
        else:
            out.append({"op": "flatten", "in": [s], "seed": r.getrandbits(31)})
        out.append({"op": "dense", "in": ["prev"], "seed": r.getrandbits(31),
                    "units": r.choice([1, 2, 10, 16, 17, 40]), "bias": r.random() < 0.8})
        if r.random() < 0.3:
            out.append({"op": "bn", "in": ["prev"], "seed": r.getrandbits(31)})
        if r.random() < 0.4:
            out.append({"op": r.choice(["softmax", "log_softmax"]), "in": ["prev"],
                        "seed": r.getrandbits(31), "axis": 1})
        return out
    return None


def _resolve(group, base):
    """Turns "prev" and ("node", k) references of a generated group into value
    indices, given that the group's nodes get indices base, base+1, ..."""
    out = []
    for j, n in enumerate(group):
        n = dict(n)
        ins = []
        for x in n["in"]:
            if x == "prev":
                ins.append(base + j - 1)
            elif isinstance(x, tuple):
                ins.append(base + x[1])
            else:
                ins.append(x)
        n["in"] = ins
        out.append(n)
    return out


def gen_net(seed):
    r = random.Random(seed)
    nin = 2 if r.random() < 0.08 else 1
    N = r.choice([1, 1, 1, 2, 3])
    C = _pick_ch(r) if r.random() < 0.6 else r.choice([1, 3])
    if r.random() < 0.1:
        H = r.randint(1, 4)
    else:
        H = r.randint(5, 40)
    W = H if r.random() < 0.6 else (r.randint(1, 40) if r.random() < 0.2 else r.randint(5, 40))
    if C * H * W > 40000:  # keep it quick
        H = max(1, min(H, 24))
        W = max(1, min(W, 24))
    inputs = [[N, C, H, W]]
    if nin == 2:
        inputs.append([N, C, H, W] if r.random() < 0.7 else [N, C, 1, 1])
    net = {"inputs": inputs, "nodes": [], "outputs": [],
           "fold_flatten": r.random() < 0.5}
    x = make_inputs(net, seed)
    vals = list(x)
    target = r.choice([1, 2, 3, 4, 5, 6, 8, 10, 12, 15])
    tries = 0
    while len(net["nodes"]) < target and tries < 60:
        tries += 1
        group = gen_node(r, vals, nin)
        if not group:
            continue
        base = len(vals)
        group = _resolve(group, base)
        new_vals = []
        try:
            for n in group:
                _, y = build_node(n, [(vals + new_vals)[j] for j in n["in"]])
                new_vals.append(y)
        except Invalid:
            continue
        net["nodes"].extend(group)
        vals.extend(new_vals)
    if not net["nodes"]:
        return None
    ntot = len(vals)
    used = set(j for n in net["nodes"] for j in n["in"])
    outs = [ntot - 1]
    if nin == 2 and 1 not in used:  # make the second input matter
        return None
    # sometimes other unused nodes become outputs too
    for i in range(nin, ntot - 1):
        if i not in used and r.random() < 0.5:
            outs.append(i)
    if r.random() < 0.08 and ntot - 2 >= nin and (ntot - 2) not in outs:
        outs.append(ntot - 2)  # an output that another layer also reads
    net["outputs"] = outs
    return net


def prune(net):
    """Drops nodes whose values reach no output; renumbers."""
    nin = len(net["inputs"])
    live = set(net["outputs"])
    for k in range(len(net["nodes"]) - 1, -1, -1):
        if k + nin in live:
            live.update(net["nodes"][k]["in"])
    remap = {i: i for i in range(nin)}
    nodes = []
    for k, n in enumerate(net["nodes"]):
        if k + nin in live:
            n = dict(n)
            n["in"] = [remap[j] for j in n["in"]]
            remap[k + nin] = nin + len(nodes)
            nodes.append(n)
    out = dict(net)
    out["nodes"] = nodes
    out["outputs"] = [remap[o] for o in net["outputs"]]
    return out


# --------------------------------------------------------------------------
# References, export, compile, run
# --------------------------------------------------------------------------

def badness(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.size == 0:
        return 0.0
    nan_w, nan_g = np.isnan(want), np.isnan(got)
    b = np.abs(got - want) / (REL_TOL * np.abs(want) + ABS_TOL)
    b = np.where(nan_w, np.where(nan_g, 0, np.inf), b)
    b = np.where(~nan_w & nan_g, np.inf, b)
    return float(np.max(b))


def references(model, inputs):
    with torch.no_grad():
        r32 = model(*inputs)
        m64 = copy.deepcopy(model).double()
        r64 = m64(*[x.double() for x in inputs])
    if not isinstance(r32, tuple):
        r32, r64 = (r32,), (r64,)
    return [t.numpy().astype(np.float32) for t in r32], [t.numpy() for t in r64]


FLAG_SETS = {
    "winograd": ["--winograd=auto", "--winograd=on", "--winograd=off"],
    "cpu": ["--cpu=x86-64", "--cpu=x86-64-v3", None],   # None: the host (AVX-512 here)
    "opt": ["-O3", "-O0"],
}


def random_flags(r):
    f = [r.choice(FLAG_SETS["winograd"]), r.choice(FLAG_SETS["cpu"]),
         "-O0" if r.random() < 0.25 else "-O3"]
    return [x for x in f if x]


class Env:
    def __init__(self, args):
        self.cnnc = args.cnnc
        self.lib = args.runtime
        self.driver = os.path.join(ROOT, "tests", "golden_driver.c")
        self.inc = os.path.join(ROOT, "runtime")
        self.cc = os.environ.get("CC", "cc")
        self.verbose = args.verbose


def write_case(d, name, net, model, inputs, desc, r32, flags=None, extra=None):
    """Exports `model` into directory d as a golden case named `name`.
    Returns the Exported result (raises cnnc_export.ExportError)."""
    os.makedirs(d, exist_ok=True)
    in_names = {"x0": list(inputs[0].shape)}
    if len(inputs) == 2:
        in_names["x1"] = list(inputs[1].shape)
    ex = cnnc_export.write_model(model, in_names, name, os.path.join(d, "model.yaml"),
                                 fold_flatten=net["fold_flatten"],
                                 header=["fuzz_diff: " + desc])
    for (iname, _), t in zip(ex.inputs, inputs):
        t.numpy().astype("<f4").tofile(os.path.join(d, "in_%s.bin" % iname))
    for oname, t in zip(ex.outputs, r32):
        np.asarray(t, "<f4").tofile(os.path.join(d, "out_%s.bin" % oname))
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write(desc + "\n\n")
        for (iname, shp), t in zip(ex.inputs, inputs):
            f.write("input  %s %s\n" % (iname, list(t.shape)))
        for oname, t in zip(ex.outputs, r32):
            f.write("output %s %s\n" % (oname, list(np.shape(t))))
        if flags is not None:
            f.write("\ncnnc %s model.yaml -o out.o\n" % " ".join(flags))
        if extra:
            f.write(extra)
    return ex


def run_proc(argv, timeout, cwd=None):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                           errors="replace")
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return "timeout", (e.stdout or b"").decode("utf8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), ""


DRIVER_RE = re.compile(r"output (\w+): (\d+) elements, (\d+) out of tolerance(?:; worst (\[[^\]]*\]) "
                       r"\(flat (\d+)\): got (\S+), want (\S+), \|diff\| (\S+), allowed (\S+))?")


def parse_driver(out):
    res = {}
    for m in DRIVER_RE.finditer(out):
        name = m.group(1)
        got, want, diff, allowed = m.group(6), m.group(7), m.group(8), m.group(9)
        b = 0.0
        if got is not None:
            try:
                dv, av = float(diff), float(allowed)
                b = dv / av if math.isfinite(dv) else math.inf
                if math.isnan(b):
                    b = math.inf
                if math.isnan(float(got)) and not math.isnan(float(want)):
                    b = math.inf
            except ValueError:
                b = math.inf
        res[name] = dict(bad=int(m.group(3)), n=int(m.group(2)), where=m.group(4), got=got,
                         want=want, b=b)
    return res


def compile_and_run(env, d, name, flags, tmp):
    """Compiles case dir d with flags, links the golden driver, runs it.
    Returns a dict: stage, rc, msg, driver results."""
    obj = os.path.join(tmp, "out.o")
    for f in ("out.o", "out.h", "driver"):
        if os.path.exists(os.path.join(tmp, f)):
            os.remove(os.path.join(tmp, f))
    argv = [env.cnnc, os.path.join(d, "model.yaml"), "-o", obj] + flags
    t0 = time.time()
    rc, out, err = run_proc(argv, 300)
    res = {"compile_s": time.time() - t0}
    if rc == "timeout":
        return dict(res, outcome="crash", kind="cnnc-timeout", msg="cnnc timed out")
    if rc < 0:
        return dict(res, outcome="crash", kind="cnnc-signal",
                    msg="cnnc killed by %s\n%s" % (signal.Signals(-rc).name, err[-2000:]))
    if "internal error" in err:
        return dict(res, outcome="crash", kind="cnnc-internal", msg=err[-2000:])
    if rc == 1:
        return dict(res, outcome="rejected", kind="rejected", msg=err[-2000:])
    if rc != 0:
        return dict(res, outcome="crash", kind="cnnc-exit%d" % rc, msg=err[-2000:])
    if not os.path.exists(obj) or not os.path.exists(os.path.join(tmp, "out.h")):
        return dict(res, outcome="crash", kind="cnnc-nofile", msg="cnnc exited 0 without output")
    rc, out, err = run_proc(["nm", "-u", obj], 60)
    undef = [l.split()[-1] for l in out.splitlines() if l.strip()]
    bad_syms = [s for s in undef if s not in ("memcpy", "memset")]
    if bad_syms:
        return dict(res, outcome="crash", kind="undefined-symbols",
                    msg="object needs %s" % ", ".join(bad_syms))
    exe = os.path.join(tmp, "driver")
    link = [env.cc, "-std=c11", "-O1", "-Wall", "-Werror", "-DMODEL_DESC=%s_model" % name,
            "-DMODEL_HEADER=\"out.h\"", "-DMODEL_WORKSPACE_MACRO=%s_WORKSPACE_SIZE" % name.upper(),
            "-I" + env.inc, "-I" + tmp, env.driver, obj, env.lib, "-o", exe]
    rc, out, err = run_proc(link, 120)
    if rc != 0:
        return dict(res, outcome="crash", kind="link", msg=(out + err)[-2000:])
    t0 = time.time()
    rc, out, err = run_proc([exe, d], 120)
    res["run_s"] = time.time() - t0
    if rc == "timeout":
        return dict(res, outcome="crash", kind="driver-timeout", msg="driver timed out")
    if rc < 0:
        return dict(res, outcome="crash", kind="driver-signal",
                    msg="driver killed by %s\n%s" % (signal.Signals(-rc).name, (out + err)[-2000:]))
    outs = parse_driver(out)
    fails = [l for l in err.splitlines() if l.startswith("FAIL")]
    res.update(driver=outs, fails=fails, stdout=out, stderr=err)
    if rc == 0 and not fails:
        return dict(res, outcome="ok", kind="ok", msg="")
    value_fail = [l for l in fails if "differ from PyTorch" in l]
    other = [l for l in fails if l not in value_fail]
    if other:
        return dict(res, outcome="wrong", kind="contract", msg="\n".join(other[:5]))
    if rc not in (0, 1) or (not value_fail and rc != 0):
        return dict(res, outcome="crash", kind="driver-exit%s" % rc, msg=(out + err)[-2000:])
    return dict(res, outcome="wrong", kind="values", msg="\n".join(value_fail[:5]))


def classify_values(env, res, d, name, flags, tmp, r64, ex, t_bad):
    """A value failure against float32: decides between wrong and
    ill-conditioned by running the driver on float64 expectations."""
    drv = res["driver"]
    b32 = max((v["b"] for v in drv.values()), default=0.0)
    if any(v["got"] and v["got"].lower() in ("nan", "-nan") for v in drv.values()):
        res["kind"] = "nan"
        res["b32"] = math.inf
        return res
    d64 = d + "_f64"
    if os.path.exists(d64):
        shutil.rmtree(d64)
    shutil.copytree(d, d64)
    for oname, t in zip(ex.outputs, r64):
        np.asarray(t, "<f4").tofile(os.path.join(d64, "out_%s.bin" % oname))
    rc, out, err = run_proc([os.path.join(tmp, "driver"), d64], 120)
    shutil.rmtree(d64)
    b64 = max((v["b"] for v in parse_driver(out).values()), default=math.inf)
    res.update(b32=b32, b64=b64, t=t_bad)
    if (t_bad > 1 or b64 <= 1) and b64 <= max(2 * t_bad, 1):
        res["outcome"] = "ill-conditioned"
        res["kind"] = "ill-conditioned"
    return res


def evaluate(env, net, seed, flags, workdir, name="fz", keep_dir=None, desc=""):
    """Builds, references, exports, compiles and runs one net with flags.
    Returns a result dict with 'outcome'."""
    inputs = make_inputs(net, seed)
    model, _ = build(net, inputs)
    r32, r64 = references(model, inputs)
    if not all(np.isfinite(t).all() for t in r32):
        raise Invalid("non-finite reference")
    t_bad = max(badness(a, b) for a, b in zip(r32, r64))
    d = os.path.join(workdir, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    try:
        ex = write_case(d, name, net, model, inputs, desc, r32, flags)
    except cnnc_export.ExportError as e:
        return {"outcome": "export-error", "kind": "export-error", "msg": str(e)}
    tmp = os.path.join(workdir, "build_" + name)
    os.makedirs(tmp, exist_ok=True)
    res = compile_and_run(env, d, name, flags, tmp)
    res["t"] = t_bad
    if res["outcome"] == "wrong" and res["kind"] == "values":
        res = classify_values(env, res, d, name, flags, tmp, r64, ex, t_bad)
    res["yaml"] = open(os.path.join(d, "model.yaml")).read()
    res["layers"] = ex.yaml.count("- {name:") + ex.yaml.count("- name:")
    if keep_dir and res["outcome"] not in ("ok", "ill-conditioned", "export-error"):
        dst = os.path.join(keep_dir, name)
        if os.path.exists(dst):
            shutil.rmtree(dst)
        extra = "\noutcome: %s (%s)\n%s\n\nnet IR (fuzz_diff):\n%s\n" % (
            res["outcome"], res["kind"], res.get("msg", ""), json.dumps(net))
        write_case(dst, name, net, model, inputs, desc, r32, flags, extra)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    return res


# --------------------------------------------------------------------------
# Shrinking
# --------------------------------------------------------------------------

def _signature(res):
    """What must stay the same while shrinking."""
    o = res["outcome"]
    if o in ("wrong",):
        return (o, "contract" if res["kind"] == "contract" else "values")
    if o == "rejected":
        m = re.search(r"error: (.*)", res.get("msg", ""))
        msg = re.sub(r"'[^']*'|\d+", "_", m.group(1)) if m else ""
        return (o, msg[:60])
    if o == "crash":
        return (o, res["kind"])
    return (o,)


def _candidates(net, flags):
    """Simpler variants of (net, flags), most aggressive first."""
    nin = len(net["inputs"])
    # 1. fewer outputs
    if len(net["outputs"]) > 1:
        for k in range(len(net["outputs"])):
            n2 = dict(net, outputs=[o for j, o in enumerate(net["outputs"]) if j != k])
            yield "drop output", prune(n2), flags
    # 2. drop a node: its readers read its first input instead
    for k in range(len(net["nodes"]) - 1, -1, -1):
        nodes = copy.deepcopy(net["nodes"])
        repl = nodes[k]["in"][0]
        vi = k + nin
        for n in nodes[k + 1:]:
            n["in"] = [repl if j == vi else (j - 1 if j > vi else j) for j in n["in"]]
        del nodes[k]
        outs = [repl if o == vi else (o - 1 if o > vi else o) for o in net["outputs"]]
        if any(o < nin for o in outs):
            # an output would become a graph input: drop that output instead
            outs = [o for o in outs if o >= nin]
            if not outs:
                continue
        outs = list(dict.fromkeys(outs))
        yield "drop node %d (%s)" % (k, net["nodes"][k]["op"]), prune(dict(net, nodes=nodes, outputs=outs)), flags
    # 3. drop one input of an n-ary add / cat
    for k, n in enumerate(net["nodes"]):
        if n["op"] in ("add", "mul", "cat") and len(n["in"]) > 2:
            for j in range(len(n["in"])):
                n2 = copy.deepcopy(net)
                del n2["nodes"][k]["in"][j]
                yield "drop operand", prune(n2), flags
    # 4. smaller inputs
    for i, s in enumerate(net["inputs"]):
        opts = []
        if s[0] > 1:
            opts.append((0, 1))
        if len(s) == 4:
            for dim in (1, 2, 3):
                v = s[dim]
                for nv in sorted(set([1, 2, 3, 4, 8, v // 2, v - 1, (v + 1) // 2])):
                    if 1 <= nv < v:
                        opts.append((dim, nv))
        else:
            v = s[1]
            for nv in sorted(set([1, 2, 4, v // 2, v - 1])):
                if 1 <= nv < v:
                    opts.append((1, nv))
        for dim, nv in opts:
            n2 = copy.deepcopy(net)
            n2["inputs"][i][dim] = nv
            # the second input must still broadcast
            if len(n2["inputs"]) == 2 and dim > 0:
                o = n2["inputs"][1 - i]
                if o[dim] != 1 or dim == 1:
                    o[dim] = nv
            yield "input %d dim %d -> %d" % (i, dim, nv), n2, flags
    # 5. simpler attributes
    for k, n in enumerate(net["nodes"]):
        simp = []
        if "filters" in n and n["filters"] > 1:
            for v in sorted(set([1, 2, 4, 8, n["filters"] // 2, n["filters"] - 1])):
                if 1 <= v < n["filters"]:
                    simp.append(("filters", v))
        if "units" in n and n["units"] > 1:
            simp += [("units", v) for v in (1, 2, n["units"] // 2) if 1 <= v < n["units"]]
        if n.get("groups") not in (None, 1):
            simp.append(("groups", 1))
        if n.get("mult", 1) > 1:
            simp.append(("mult", 1))
        for key in ("stride", "dil"):
            v = n.get(key)
            if isinstance(v, list) and v != [1, 1]:
                simp.append((key, [1, 1]))
            elif isinstance(v, int) and v != 1:
                simp.append((key, 1))
        if isinstance(n.get("k"), list):
            kh, kw = n["k"]
            for nk in sorted(set([(1, 1), (kh, kh), (kw, kw), (max(1, kh - 1), max(1, kw - 1)), (3, 3)])):
                if list(nk) != n["k"] and nk[0] <= kh and nk[1] <= kw:
                    simp.append(("k", list(nk)))
        elif isinstance(n.get("k"), int) and n["k"] > 1:
            simp += [("k", v) for v in (1, n["k"] - 1)]
        if isinstance(n.get("pad"), list) and any(n["pad"]):
            simp.append(("pad", [0, 0]))
            simp.append(("pad", [min(1, p) for p in n["pad"]]))
        if n.get("pad") == "same":
            simp.append(("pad", [0, 0]))
        if n.get("pad4"):
            simp.append(("pad4", None))
        if n.get("opad") and any(n["opad"]):
            simp.append(("opad", [0, 0]))
        if n.get("bias"):
            simp.append(("bias", False))
        if n.get("ceil"):
            simp.append(("ceil", False))
        if n.get("cip") is False:
            simp.append(("cip", True))
        if n.get("op") == "act" and n["act"] != "relu":
            simp.append(("act", "relu"))
        if n.get("op") in ("maxpool", "avgpool") and n.get("stride") is not None:
            simp.append(("stride", None))
        if n.get("eps") not in (None, 1e-5):
            simp.append(("eps", 1e-5))
        for key, v in simp:
            n2 = copy.deepcopy(net)
            n2["nodes"][k][key] = v
            if key == "pad4" and v is None:
                del n2["nodes"][k]["pad4"]
            yield "node %d %s -> %s" % (k, key, v), n2, flags
    if net.get("fold_flatten"):
        yield "fold_flatten off", dict(net, fold_flatten=False), flags
    # 6. simpler flags (the default ones: -O3, auto, host)
    for f in flags:
        if f == "-O0":
            yield "flags -O3", net, [x for x in flags if x != "-O0"]
        if f.startswith("--cpu"):
            yield "flags host cpu", net, [x for x in flags if x != f]
        if f in ("--winograd=on", "--winograd=off"):
            yield "flags winograd auto", net, [x for x in flags if x != f]


def net_size(net):
    s = sum(int(np.prod(x)) for x in net["inputs"])
    return (len(net["nodes"]), len(net["outputs"]), s)


def shrink(env, net, seed, flags, res, workdir, budget_s, log):
    """Greedy shrinking while the failure signature stays the same."""
    sig = _signature(res)
    t_end = time.time() + budget_s
    tests = 0
    changed = True
    while changed and time.time() < t_end:
        changed = False
        for what, n2, f2 in _candidates(net, flags):
            if time.time() > t_end:
                break
            try:
                r2 = evaluate(env, n2, seed, f2, workdir, name="shrink")
            except Invalid:
                continue
            tests += 1
            if r2["outcome"] != "export-error" and _signature(r2) == sig:
                log("    shrink: %s -> %s layers %s" % (what, r2.get("layers"), net_size(n2)))
                net, flags, res = n2, f2, r2
                changed = True
                break
    log("    shrink: %d tests" % tests)
    return net, flags, res


def save_min(env, dst_root, cname, net, seed, flags, res, workdir):
    inputs = make_inputs(net, seed)
    model, _ = build(net, inputs)
    r32, r64 = references(model, inputs)
    d = os.path.join(dst_root, cname)
    if os.path.exists(d):
        shutil.rmtree(d)
    desc = "fuzz_diff minimal repro (%s: %s)" % (res["outcome"], res["kind"])
    extra = "\noutcome with these flags: %s (%s)\n%s\n" % (res["outcome"], res["kind"], res.get("msg", ""))
    drv = res.get("driver") or {}
    for oname, v in drv.items():
        if v.get("got") is not None:
            extra += "output %s worst %s: got %s, want %s (%.3g x tolerance)\n" % (
                oname, v["where"], v["got"], v["want"], v["b"])
    extra += "\nnet IR (fuzz_diff):\n%s\n" % json.dumps(net)
    write_case(d, cname, net, model, inputs, desc, r32, flags, extra)
    return d


# --------------------------------------------------------------------------
# Main loop
# --------------------------------------------------------------------------

def case_seed(seed, i):
    return zlib.crc32(("fuzz_diff:%d:%d" % (seed, i)).encode()) & 0x7FFFFFFF


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=100, help="number of random nets")
    ap.add_argument("--start", type=int, default=0, help="first case index")
    ap.add_argument("--case", type=int, action="append", help="run only these case indices")
    ap.add_argument("--flags-per-net", type=int, default=1,
                    help="compile every net under this many random flag sets")
    ap.add_argument("--flags", help="fixed cnnc flags (space separated) instead of random ones")
    ap.add_argument("--time", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--keep", help="write failing cases here (golden format)")
    ap.add_argument("--shrink", help="shrink failing cases and write the minimal ones here")
    ap.add_argument("--shrink-budget", type=float, default=240, help="seconds per shrink")
    ap.add_argument("--max-shrinks", type=int, default=1,
                    help="shrink at most this many cases per failure signature")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cnnc")
    ap.add_argument("--runtime")
    ap.add_argument("--json", help="append one JSON line per result here")
    ap.add_argument("--extra", default="", help="comma-separated extra node kinds, with weights: "
                    "dwpw=20 (see EXTRA_KINDS)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    for item in filter(None, args.extra.split(",")):
        k, _, w = item.partition("=")
        if k not in ("dwpw",):
            sys.exit("fuzz_diff: unknown --extra kind '%s'" % k)
        EXTRA_KINDS.append((k, float(w or 20)))
    args.cnnc = args.cnnc or os.path.join(args.build, "compiler", "cnnc")
    args.runtime = args.runtime or os.path.join(args.build, "runtime", "libcnnrt.a")
    for p in (args.cnnc, args.runtime):
        if not os.path.exists(p):
            sys.exit("fuzz_diff: %s not found (build first, or --build DIR)" % p)
    env = Env(args)
    workdir = tempfile.mkdtemp(prefix="fuzz_diff_")
    counts = {}
    failures = []
    shrunk_sigs = {}
    t0 = time.time()
    jf = open(args.json, "a") if args.json else None

    def log(s):
        print(s, flush=True)

    idx = args.case if args.case else range(args.start, args.start + args.count)
    nets = 0
    try:
        for i in idx:
            if args.time and time.time() - t0 > args.time:
                log("time limit reached")
                break
            cs = case_seed(args.seed, i)
            net = gen_net(cs)
            if net is None:
                counts["skipped"] = counts.get("skipped", 0) + 1
                continue
            net = prune(net)
            r = random.Random(cs ^ 0x5EED)
            flag_sets = []
            for _ in range(args.flags_per_net):
                flag_sets.append(args.flags.split() if args.flags else random_flags(r))
            nets += 1
            for fi, flags in enumerate(flag_sets):
                name = "fz_s%d_c%d_f%d" % (args.seed, i, fi)
                desc = "fuzz_diff --seed %d --case %d (flag set %d): %s" % (
                    args.seed, i, fi, " ".join(flags))
                t1 = time.time()
                try:
                    res = evaluate(env, net, cs, flags, workdir, name, args.keep, desc)
                except Invalid as e:
                    counts["skipped"] = counts.get("skipped", 0) + 1
                    log("%5d skipped (%s)" % (i, e))
                    continue
                o = res["outcome"]
                counts[o] = counts.get(o, 0) + 1
                extra = ""
                if o == "ill-conditioned" or (o == "wrong" and "b32" in res):
                    extra = " b32=%.3g b64=%.3g torch32=%.3g" % (res["b32"], res["b64"], res["t"])
                log("%5d %-15s %-16s %2d layers  %-40s %.1fs%s" % (
                    i, o, res["kind"], res.get("layers", 0), " ".join(flags),
                    time.time() - t1, extra))
                if o not in ("ok", "ill-conditioned"):
                    msg = res.get("msg", "")
                    for l in msg.strip().splitlines()[:6]:
                        log("        | " + l)
                    failures.append((i, fi, flags, res))
                if jf:
                    jf.write(json.dumps({"seed": args.seed, "case": i, "flags": flags,
                                         "outcome": o, "kind": res["kind"],
                                         "msg": res.get("msg", "")[:500],
                                         "b32": res.get("b32"), "b64": res.get("b64"),
                                         "t": res.get("t"), "layers": res.get("layers")}) + "\n")
                    jf.flush()
                if args.shrink and o not in ("ok", "ill-conditioned", "export-error"):
                    sig = _signature(res)
                    if shrunk_sigs.get(sig, 0) < args.max_shrinks:
                        shrunk_sigs[sig] = shrunk_sigs.get(sig, 0) + 1
                        log("    shrinking %s ..." % (sig,))
                        n2, f2, r2 = shrink(env, net, cs, flags, res, workdir,
                                            args.shrink_budget, log)
                        cname = "fuzz_%s_s%d_c%d" % (re.sub(r"\W+", "_", "_".join(
                            str(x) for x in sig[:2]))[:40].strip("_").lower(), args.seed, i)
                        d = save_min(env, args.shrink, cname, n2, cs, f2, r2, workdir)
                        log("    minimal: %s (%d nodes, flags %s)" % (d, len(n2["nodes"]),
                                                                     " ".join(f2)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log("")
    log("nets %d, results %d in %.0fs" % (nets, sum(v for k, v in counts.items() if k != "skipped"),
                                           time.time() - t0))
    for k in ("ok", "wrong", "crash", "rejected", "ill-conditioned", "export-error", "skipped"):
        log("  %-16s %d" % (k, counts.get(k, 0)))
    if failures:
        log("failures:")
        for i, fi, flags, res in failures:
            log("  case %d flags %s: %s (%s)" % (i, " ".join(flags), res["outcome"], res["kind"]))
    return 1 if any(counts.get(k) for k in ("wrong", "crash", "rejected")) else 0


if __name__ == "__main__":
    sys.exit(main())
