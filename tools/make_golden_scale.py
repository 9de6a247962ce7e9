#!/usr/bin/python3
"""Writes the golden cases for accuracy at scale (tests/golden/scale_*).

    /usr/bin/python3 tools/make_golden_scale.py [CASE...] [--list]

Every reduction must keep PyTorch's float32 accuracy however long it is: a
4096x4096 mean, 2^24 elements per channel, a softmax over 2^24 values, dot
products of 2^23 terms, convolutions over 32768 input channels.  Inputs and
weights that large cannot be committed, so these cases carry recipes
instead of data:

  in_<input>.gen   "uniform SEED LO HI [SKIP]": element i is
                   LO + (HI - LO) * (splitmix64_{SKIP+i+1}(SEED) >> 40) / 2^24,
                   computed in double and rounded to float32
                   (tests/golden_driver.c makes the same values);
  options.txt      extra cnnc options: --random-weights SEED, whose
                   values this script reproduces exactly (compiler/weights.c:
                   one splitmix64 stream per parameter, seeded with
                   SEED ^ fnv1a64(name), uniform in +-1/sqrt(fan_in)).

The outputs (a few values each) are PyTorch's in float64 on the same
float32 inputs and weights, rounded to float32, in out_<output>.bin:
PyTorch's own float32 kernels are not all accurate at these sizes
(F.avg_pool2d with a 4096x4096 kernel is 4% off, adaptive pooling 5e-5),
so the reference is the exact result and cnnc must meet it within the
golden tolerance (1e-4 * |want| + 1e-5).  The script prints how far
PyTorch's float32 result is, in units of that tolerance, for comparison.
"""
import argparse
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
REL_TOL, ABS_TOL = 1e-4, 1e-5
GOLD = np.uint64(0x9E3779B97F4A7C15)
M64 = (1 << 64) - 1


def splitmix(state, first, n):
    """Outputs first+1 .. first+n of splitmix64 from `state` (uint64 array)."""
    with np.errstate(over="ignore"):
        z = np.uint64(state) + np.arange(first + 1, first + n + 1, dtype=np.uint64) * GOLD
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def gen_uniform(seed, lo, hi, shape, skip=0):
    u = splitmix(seed, skip, int(np.prod(shape))) >> np.uint64(40)
    return (lo + (hi - lo) * u.astype(np.float64) / 16777216.0).astype(np.float32).reshape(shape)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def cnnc_random(seed, name, shape, bound):
    """compiler/weights.c fill_random with center 0: scale * t, t on a 2^-23 grid."""
    k = (splitmix(seed ^ fnv1a64(name), 1, int(np.prod(shape))) >> np.uint64(40)).astype(np.int64) - (1 << 23)
    return (bound * (k.astype(np.float64) / float(1 << 23))).astype(np.float32).reshape(shape)


CASES = {}


def case(name, desc):
    def reg(fn):
        CASES[name] = (desc, fn)
        return fn
    return reg


def spec(name, inputs, layers, outputs):
    lines = ["cnnc: 1", "name: " + name, "inputs:"]
    lines += ["  - {name: %s, shape: %s}" % (k, list(v)) for k, v in inputs.items()]
    lines += ["outputs: [%s]" % ", ".join(outputs), "layers:"] + ["  - " + l for l in layers]
    return "\n".join(lines) + "\n"


# Each case returns (yaml, {input: (seed, lo, hi, shape)}, options, reference(inputs, dtype) -> {output: tensor}).

@case("scale_global_avgpool", "global average pooling of 2 channels of 4096x4096 = 2^24 uniform [1, 2) "
      "values each, on the reference path (NCHW input) and the blocked path (after an identity 1x1 conv)")
def _():
    shape = (1, 2, 4096, 4096)
    y = spec("scale_global_avgpool", {"x": shape},
             ["{name: gp, op: global_avgpool2d, input: x}",
              "{name: id, op: conv2d, filters: 2, kernel: 1, bias: false, input: x, weight: [[[[1]], [[0]]], [[[0]], [[1]]]]}",
              "{name: gpb, op: global_avgpool2d, input: id}"], ["gp", "gpb"])
    def ref(x, dt):
        m = F.adaptive_avg_pool2d(x["x"].to(dt), 1)
        return {"gp": m, "gpb": m}
    return y, {"x": (1, 1.0, 2.0, shape)}, "", ref


@case("scale_avgpool_windows", "4096x4096 windows: adaptive_avgpool2d to 2x2 (bins of 2048x2048) and an "
      "avgpool2d with a 4096x4096 kernel, reference and blocked (after an identity 1x1 conv)")
def _():
    shape = (1, 1, 4096, 4096)
    y = spec("scale_avgpool_windows", {"x": shape},
             ["{name: ad, op: adaptive_avgpool2d, output_size: 2, input: x}",
              "{name: ap, op: avgpool2d, kernel: 4096, input: x}",
              "{name: id, op: conv2d, filters: 1, kernel: 1, bias: false, input: x, weight: [1]}",
              "{name: adb, op: adaptive_avgpool2d, output_size: 2, input: id}",
              "{name: apb, op: avgpool2d, kernel: 4096, input: id}"], ["ad", "ap", "adb", "apb"])
    def ref(x, dt):
        a = x["x"].to(dt)
        ad, ap = F.adaptive_avg_pool2d(a, 2), F.avg_pool2d(a, 4096)
        return {"ad": ad, "ap": ap, "adb": ad, "apb": ap}
    return y, {"x": (2, 0.25, 1.0, shape)}, "", ref


@case("scale_softmax", "softmax over 2^24 values of [-0.001, 0), then the largest result times 2^24 "
      "(max is exact, so this is 2^24 / the sum of 2^24 exponentials)")
def _():
    n = 1 << 24
    y = spec("scale_softmax", {"x": (1, n)},
             ["{name: sm, op: softmax, axis: 1, input: x}",
              "{name: r, op: reshape, shape: [1, 1, 4096, 4096]}",
              "{name: gp, op: global_maxpool2d}",
              "{name: scaled, op: conv2d, filters: 1, kernel: 1, bias: false, weight: [16777216]}"], ["scaled"])
    def ref(x, dt):
        s = torch.softmax(x["x"].to(dt), dim=1).reshape(1, 1, 4096, 4096)
        return {"scaled": F.adaptive_max_pool2d(s, 1) * 16777216.0}
    return y, {"x": (3, -0.001, 0.0, (1, n))}, "", ref


@case("scale_dense_long", "dense layer with 2^23 inputs (a dot product of 8,388,608 terms per unit), "
      "weights from --random-weights 5; the input follows unit 0's weights, so all of its terms are positive")
def _():
    k = 1 << 23
    y = spec("scale_dense_long", {"x": (1, k)}, ["{name: fc, op: dense, units: 3, input: x}"], ["fc"])
    bound = 1.0 / np.sqrt(k)
    w = cnnc_random(5, "fc.weight", (3, k), bound)
    b = cnnc_random(5, "fc.bias", (3,), bound)
    def ref(x, dt):
        return {"fc": F.linear(x["x"].to(dt), torch.from_numpy(w).to(dt), torch.from_numpy(b).to(dt))}
    return y, {"x": (5 ^ fnv1a64("fc.weight"), -1.0, 1.0, (1, k), 1)}, "--random-weights 5", ref


@case("scale_conv_long", "convolutions whose reductions exceed 16384 terms: a 1x1 over 2^20 channels "
      "(direct kernel, NCHW input), a 3x3 over 2048 channels (direct, blocked input), a grouped 1x1 over "
      "2 x 2^20 channels (reference kernel), a transposed 1x1 over 2^20 channels; --random-weights 6, "
      "inputs following a weight row so that those dot products add only positive terms")
def _():
    C = 1 << 20
    y = spec("scale_conv_long", {"x": (1, C, 1, 1), "g": (1, 2 * C, 1, 1), "z": (1, C, 1, 1)},
             ["{name: c1, op: conv2d, filters: 1, kernel: 1, input: x}",
              "{name: wide, op: conv2d, filters: 2048, kernel: 1, bias: false, input: c1}",
              "{name: c3, op: conv2d, filters: 3, kernel: 3, padding: 1, input: wide}",
              "{name: cg, op: conv2d, filters: 2, kernel: 1, groups: 2, input: g}",
              "{name: ct, op: conv_transpose2d, filters: 1, kernel: 1, input: z}"],
             ["c1", "c3", "cg", "ct"])
    P = {}
    def w(name, shape, fan_in):
        P[name] = torch.from_numpy(cnnc_random(6, name, shape, 1.0 / np.sqrt(fan_in)))
    w("c1.weight", (1, C, 1, 1), C), w("c1.bias", (1,), C)
    w("wide.weight", (2048, 1, 1, 1), 1)
    w("c3.weight", (3, 2048, 3, 3), 2048 * 9), w("c3.bias", (3,), 2048 * 9)
    w("cg.weight", (2, C, 1, 1), C), w("cg.bias", (2,), C)
    w("ct.weight", (C, 1, 1, 1), 1), w("ct.bias", (1,), 1)  # PyTorch's fan_in: dim 1 x kernel
    def ref(x, dt):
        p = {k: v.to(dt) for k, v in P.items()}
        c1 = F.conv2d(x["x"].to(dt), p["c1.weight"], p["c1.bias"])
        c3 = F.conv2d(F.conv2d(c1, p["wide.weight"]), p["c3.weight"], p["c3.bias"], padding=1)
        cg = F.conv2d(x["g"].to(dt), p["cg.weight"], p["cg.bias"], groups=2)
        ct = F.conv_transpose2d(x["z"].to(dt), p["ct.weight"], p["ct.bias"])
        return {"c1": c1, "c3": c3, "cg": cg, "ct": ct}
    return y, {"x": (6 ^ fnv1a64("c1.weight"), -1.0, 1.0, (1, C, 1, 1), 1),
               "g": (6 ^ fnv1a64("cg.weight"), -1.0, 1.0, (1, 2 * C, 1, 1), 1),
               "z": (6 ^ fnv1a64("ct.weight"), -1.0, 1.0, (1, C, 1, 1), 1)}, "--random-weights 6", ref


@case("scale_add_17", "an add of 17 inputs after a conv2d (blocked kernel; once an internal limit of "
      "16), and a mul of 20; --random-weights 3")
def _():
    y = spec("scale_add_17", {"x": (1, 3, 8, 8)},
             ["{name: c, op: conv2d, filters: 8, kernel: 3, padding: 1, input: x}",
              "{name: s, op: add, inputs: [%s]}" % ", ".join(["c"] * 17),
              "{name: t, op: sigmoid, input: c}",
              "{name: p, op: mul, inputs: [%s]}" % ", ".join(["t"] * 20)], ["s", "p"])
    wt = torch.from_numpy(cnnc_random(3, "c.weight", (8, 3, 3, 3), 1.0 / np.sqrt(27)))
    bs = torch.from_numpy(cnnc_random(3, "c.bias", (8,), 1.0 / np.sqrt(27)))
    def ref(x, dt):
        c = F.conv2d(x["x"].to(dt), wt.to(dt), bs.to(dt), padding=1)
        s, t = c, torch.sigmoid(c)
        for _ in range(16):
            s = s + c
        p = t
        for _ in range(19):
            p = p * t
        return {"s": s, "p": p}
    return y, {"x": (10, -1.0, 1.0, (1, 3, 8, 8))}, "--random-weights 3", ref


def worst_of(w32, w64):
    err = np.abs(w32.numpy().astype(np.float64) - w64.numpy())
    return float(np.max(err / (REL_TOL * np.abs(w64.numpy()) + ABS_TOL)))


def make(name, out_dir):
    desc, fn = CASES[name]
    yaml, gens, options, ref = fn()
    gens = {k: v if len(v) == 5 else v + (0,) for k, v in gens.items()}
    inputs = {k: torch.from_numpy(gen_uniform(s, lo, hi, shape, skip)) for k, (s, lo, hi, shape, skip) in gens.items()}
    with torch.no_grad():
        want, want64 = ref(inputs, torch.float32), ref(inputs, torch.float64)
    worst = max(worst_of(want[k], want64[k]) for k in want)
    want = {k: v.to(torch.float32) for k, v in want64.items()}
    d = os.path.join(out_dir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "model.yaml"), "w") as f:
        f.write("# Generated by tools/make_golden_scale.py; do not edit (rerun the script).\n")
        f.write("# Golden case %s: %s\n" % (name, desc))
        f.write(yaml)
    for k, (s, lo, hi, _, skip) in gens.items():
        with open(os.path.join(d, "in_%s.gen" % k), "w") as f:
            f.write("uniform %d %r %r%s\n" % (s, lo, hi, " %d" % skip if skip else ""))
    if options:
        with open(os.path.join(d, "options.txt"), "w") as f:
            f.write(options + "\n")
    for k, w in want.items():
        np.ascontiguousarray(w.numpy(), dtype="<f4").tofile(os.path.join(d, "out_%s.bin" % k))
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write(desc + "\n\n")
        for k, (s, lo, hi, shape, skip) in gens.items():
            f.write("input  %s %s (generated: uniform seed %d skip %d in [%g, %g))\n" % (k, list(shape), s, skip, lo, hi))
        for k, w in want.items():
            f.write("output %s %s\n" % (k, list(w.shape)))
    print("%-24s PyTorch float32 is %.3f of the tolerance from the float64 reference" % (name, worst))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*")
    p.add_argument("--out", default=GOLDEN)
    p.add_argument("--list", action="store_true")
    a = p.parse_args()
    if a.list:
        for k, (d, _) in CASES.items():
            print("%-24s %s" % (k, d))
        return
    torch.set_num_threads(1)
    for name in a.cases or CASES:
        make(name, a.out)


if __name__ == "__main__":
    sys.exit(main())
