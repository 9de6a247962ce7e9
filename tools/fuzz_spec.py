#!/usr/bin/python3
"""fuzz_spec: mutation fuzzer of cnnc's front end (see docs/fuzz.md).

Takes the model files of the golden cases and the error tests, mutates them
(numbers, keys, values, lines, bytes; safetensors headers and sizes) and
runs cnnc on each mutant.  Every run must end with exit status 0 or 1 within
the time limit.  No signal, no "internal error".  Exit 1 must come with at
least one located "file:line:col: error:" diagnostic (or an error naming the
command line or a file), and it must leave no output file behind.  Needs
only Python and a build of cnnc.

    python3 tools/fuzz_spec.py --seed 1 --count 2000
    python3 tools/fuzz_spec.py --seed 1 --case 17 -v      # one mutant again
"""

import argparse
import glob
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INTERESTING = ["0", "-1", "1", "2", "3", "7", "16", "65536", "2147483647", "2147483648",
               "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
               "1e400", "-0.0", "nan", ".nan", ".inf", "-.inf", "0.5", "[]", "{}", "null", "~",
               "true", "''", "\"x\"", "[1, 2]", "[0, 0]", "[-1, 3]", "[1, 1, 1, 1, 1]",
               "same", "valid", "[[1]]", "*a", "&a 1", "!!binary AA==", "{op: relu}"]
KEYS = ["op", "name", "input", "inputs", "filters", "kernel", "stride", "padding", "dilation",
        "groups", "units", "axis", "shape", "weight", "bias", "activation", "mode", "scale",
        "ceil_mode", "count_include_pad", "output_size", "output_padding", "epsilon", "min",
        "max", "alpha", "value", "pads", "align_corners", "num_parameters", "start_dim",
        "weights", "outputs", "layers", "cnnc"]
OPS = ["conv2d", "conv_transpose2d", "dense", "maxpool2d", "avgpool2d", "global_avgpool2d",
       "global_maxpool2d", "adaptive_avgpool2d", "batchnorm", "add", "mul", "concat", "pad",
       "upsample", "relu", "prelu", "softmax", "log_softmax", "flatten", "reshape", "dropout",
       "clip", "gelu", "nonsense"]


def mutate_text(r, text):
    lines = text.split("\n")
    for _ in range(r.randint(1, 3)):
        k = r.randrange(9)
        if k == 0:  # replace a number
            nums = list(re.finditer(r"-?\d+(\.\d+)?", text))
            if nums:
                m = r.choice(nums)
                text = text[:m.start()] + r.choice(INTERESTING) + text[m.end():]
        elif k == 1:  # replace a key
            keys = list(re.finditer(r"\b([a-z_]+):", text))
            if keys:
                m = r.choice(keys)
                text = text[:m.start(1)] + r.choice(KEYS) + text[m.end(1):]
        elif k == 2:  # replace an op
            ops = list(re.finditer(r"op: ([a-z_0-9]+)", text))
            if ops:
                m = r.choice(ops)
                text = text[:m.start(1)] + r.choice(OPS) + text[m.end(1):]
        elif k == 3:  # delete a line
            lines = text.split("\n")
            if len(lines) > 1:
                del lines[r.randrange(len(lines))]
            text = "\n".join(lines)
        elif k == 4:  # duplicate a line
            lines = text.split("\n")
            i = r.randrange(len(lines))
            lines.insert(r.randrange(len(lines) + 1), lines[i])
            text = "\n".join(lines)
        elif k == 5:  # swap two lines
            lines = text.split("\n")
            i, j = r.randrange(len(lines)), r.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif k == 6:  # random bytes
            b = bytearray(text.encode("utf-8", "replace"))
            for _ in range(r.randint(1, 4)):
                if b:
                    b[r.randrange(len(b))] = r.randrange(256)
            text = b.decode("utf-8", "replace") if r.random() < 0.5 else b.decode("latin-1")
        elif k == 7:  # truncate
            text = text[:r.randrange(len(text) + 1)]
        else:  # insert a key: value into a flow mapping
            maps = [m.end() for m in re.finditer(r"\{", text)]
            if maps:
                i = r.choice(maps)
                text = text[:i] + "%s: %s, " % (r.choice(KEYS), r.choice(INTERESTING)) + text[i:]
    return text


def mutate_safetensors(r, data):
    b = bytearray(data)
    k = r.randrange(4)
    if k == 0 and len(b) > 8:  # header length
        n = int.from_bytes(b[:8], "little")
        n = r.choice([0, 1, n - 1, n + 1, len(b), 2 ** 63, 2 ** 64 - 1, n * 2])
        b[:8] = (n % 2 ** 64).to_bytes(8, "little")
    elif k == 1 and len(b) > 8:  # header text
        n = min(int.from_bytes(b[:8], "little"), len(b) - 8)
        hdr = b[8:8 + n].decode("latin-1")
        nums = list(re.finditer(r"\d+", hdr))
        if nums:
            m = r.choice(nums)
            hdr = hdr[:m.start()] + r.choice(["0", "1", "99999999999", "18446744073709551615",
                                               "-1"]) + hdr[m.end():]
        hdr = hdr.replace("F32", r.choice(["F32", "F16", "I64", "BF16", "X"]), 1)
        hb = hdr.encode("latin-1")
        b = bytearray(len(hb).to_bytes(8, "little")) + hb + b[8 + n:]
    elif k == 2:  # truncate
        b = b[:r.randrange(len(b) + 1)]
    else:  # flip bytes
        for _ in range(r.randint(1, 8)):
            if b:
                b[r.randrange(min(len(b), 4096))] ^= 1 << r.randrange(8)
    return bytes(b)


LOCATED = re.compile(r"^[^\s:][^:]*:\d+:\d+: error: ", re.M)
ANY_ERROR = re.compile(r"error: ", re.M)


def run_case(cnnc, seeds, i, seed, work, timeout, verbose):
    r = random.Random(seed * 1000003 + i)
    src = r.choice(seeds)
    d = os.path.join(work, "c%d" % i)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    text = open(src, encoding="latin-1").read()
    st = None
    m = re.search(r"^weights:\s*(\S+)", text, re.M)
    if m:
        p = os.path.join(os.path.dirname(src), m.group(1))
        if os.path.exists(p):
            st = open(p, "rb").read()
            if r.random() < 0.3:
                st = mutate_safetensors(r, st)
            open(os.path.join(d, m.group(1)), "wb").write(st)
    if st is None or r.random() < 0.8:
        text = mutate_text(r, text)
    yml = os.path.join(d, "model.yaml")
    with open(yml, "w", encoding="latin-1", errors="replace") as f:
        f.write(text)
    out = os.path.join(d, "out.o")
    argv = [cnnc, yml, "-o", out]
    if r.random() < 0.3:
        argv.append("--random-weights=1" if r.random() < 0.5 else "--random-weights=7")
    t0 = time.time()
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", src, argv, ""
    err = p.stderr.decode("utf-8", "replace")
    problem = None
    if p.returncode < 0:
        problem = "signal %d" % -p.returncode
    elif p.returncode not in (0, 1):
        problem = "exit %d" % p.returncode
    elif "internal error" in err:
        problem = "internal error"
    elif p.returncode == 1 and not ANY_ERROR.search(err):
        problem = "exit 1 without an error message"
    elif p.returncode == 1 and (os.path.exists(out) or os.path.exists(out[:-2] + ".h")):
        problem = "exit 1 left an output file"
    elif p.returncode == 0 and not (os.path.exists(out) and os.path.exists(out[:-2] + ".h")):
        problem = "exit 0 without the object and header"
    if verbose:
        print("--- case %d from %s: exit %d in %.1fs\n%s" % (i, src, p.returncode, time.time() - t0,
                                                          err[-3000:]))
    if problem is None:
        shutil.rmtree(d, ignore_errors=True)
        return ("ok" if p.returncode == 0 else "rejected"), src, argv, err
    return problem, src, argv, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--case", type=int, action="append")
    ap.add_argument("--time", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per cnnc run")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "compiler", "cnnc"))
    ap.add_argument("--keep", default=os.path.join(tempfile.gettempdir(), "fuzz_spec_fail"),
                    help="failing mutants are left here")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.cnnc):
        sys.exit("fuzz_spec: %s not found (build first)" % a.cnnc)
    seeds = sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*", "model.yaml")) +
                   glob.glob(os.path.join(ROOT, "tests", "errors", "*.yaml")) +
                   [os.path.join(ROOT, "models", "fashion_mnist.yaml")])
    os.makedirs(a.keep, exist_ok=True)
    counts, fails, t0 = {}, [], time.time()
    for i in (a.case or range(a.count)):
        if a.time and time.time() - t0 > a.time:
            break
        res, src, argv, err = run_case(a.cnnc, seeds, i, a.seed, a.keep, a.timeout, a.verbose)
        counts[res] = counts.get(res, 0) + 1
        if res not in ("ok", "rejected"):
            fails.append(i)
            print("case %d: %s (from %s)\n  %s\n  %s" % (i, res, os.path.relpath(src, ROOT),
                                                     " ".join(argv), err.strip()[-600:]),
                  flush=True)
    print("mutants %d in %.0fs: %s" % (sum(counts.values()), time.time() - t0,
                                       ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    if fails:
        print("failing cases (kept in %s): %s" % (a.keep, " ".join(map(str, fails))))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
