#!/usr/bin/env python3
"""bench/compile_scale.py: cnnc's compile time against the number of layers.

    bench/compile_scale.py [--cnnc PATH] [--sizes 1000,10000,100000] [--kinds chain,dag]

Writes specs of N layers to a temporary directory and times
`cnnc SPEC --random-weights 1 -o out.o` on each (wall time and peak memory
from the child's resource usage), then prints the time per layer and its
ratio to the smallest size.  The target (issue 7): time per layer flat
within 2x from 1,000 to 100,000 layers.

Two kinds of graph, both on [1, 8, 8, 8] tensors so that only the number of
layers grows:
  chain  a straight line of conv2d 3x3 / relu / batchnorm / add-of-two /
         sigmoid layers in a fixed rotation;
  dag    every layer picks its op and its inputs at random (seeded) among
         the 16 layers before it: residual adds, multiplies and concats
         followed by 1x1 convs back to 8 channels, as real nets branch.
Identical layers share one kernel, as they do in real nets, so the cost
measured is the compiler's per-layer work: parsing, passes, memory
planning, the run function and its LLVM optimisation.
"""
import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def chain(n):
    lines = []
    for i in range(n):
        k = i % 5
        prev = f"l{i-1}" if i else "x"
        if k == 0:
            lines.append(f"  - {{name: l{i}, op: conv2d, filters: 8, kernel: 3, padding: 1, input: {prev}}}")
        elif k == 1:
            lines.append(f"  - {{name: l{i}, op: relu, input: {prev}}}")
        elif k == 2:
            lines.append(f"  - {{name: l{i}, op: batchnorm, input: {prev}}}")
        elif k == 3:
            other = f"l{i-3}" if i >= 3 else "x"
            lines.append(f"  - {{name: l{i}, op: add, inputs: [{prev}, {other}]}}")
        else:
            lines.append(f"  - {{name: l{i}, op: sigmoid, input: {prev}}}")
    return lines


def dag(n, seed=1):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        def pick():
            j = rng.randint(max(0, i - 16), i - 1) if i else -1
            return f"l{j}" if j >= 0 else "x"
        r = rng.random()
        a = pick()
        if r < 0.25:
            lines.append(f"  - {{name: l{i}, op: conv2d, filters: 8, kernel: {rng.choice([1, 3])}, padding: same, input: {a}}}")
        elif r < 0.45:
            lines.append(f"  - {{name: l{i}, op: add, inputs: [{a}, {pick()}]}}")
        elif r < 0.55:
            lines.append(f"  - {{name: l{i}, op: mul, inputs: [{a}, {pick()}]}}")
        elif r < 0.65:
            lines.append(f"  - {{name: l{i}c, op: concat, inputs: [{a}, {pick()}]}}")
            lines.append(f"  - {{name: l{i}, op: conv2d, filters: 8, kernel: 1, input: l{i}c}}")
        elif r < 0.8:
            lines.append(f"  - {{name: l{i}, op: {rng.choice(['relu', 'sigmoid', 'tanh', 'hardswish'])}, input: {a}}}")
        else:
            lines.append(f"  - {{name: l{i}, op: batchnorm, input: {a}}}")
    return lines


def spec(kind, n):
    body = chain(n) if kind == "chain" else dag(n)
    return "\n".join(["cnnc: 1", f"name: {kind}{n}", "inputs:", "  - {name: x, shape: [1, 8, 8, 8]}",
                      f"outputs: [l{n-1}]", "layers:"] + body) + "\n"


def run(cnnc, path, out):
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([cnnc, path, "--random-weights", "1", "-o", out], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if r.returncode != 0:
        sys.exit(f"cnnc failed on {path}:\n{r.stderr}")
    return dt, max(rss, before) / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cnnc", default=os.path.join(HERE, "..", "build", "compiler", "cnnc"))
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--kinds", default="chain,dag")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"{'graph':6} {'layers':>8} {'seconds':>9} {'ms/layer':>9} {'vs first':>9} {'peak MiB':>9}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.kinds.split(","):
            base = None
            for n in sizes:
                path = os.path.join(tmp, f"{kind}{n}.yaml")
                with open(path, "w") as f:
                    f.write(spec(kind, n))
                layers = sum(1 for line in open(path) if line.startswith("  - {name: l"))
                dt, rss = run(a.cnnc, path, os.path.join(tmp, "out.o"))
                per = 1000.0 * dt / layers
                base = base or per
                worst = max(worst, per / base)
                print(f"{kind:6} {layers:8d} {dt:9.2f} {per:9.3f} {per / base:9.2f} {rss:9.0f}", flush=True)
    print(f"largest ratio of time per layer to the smallest size's: {worst:.2f} (target: at most 2)")


if __name__ == "__main__":
    main()
