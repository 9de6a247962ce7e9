#!/usr/bin/python3
"""serial_share.py: how much of a model's one-thread time runs on one thread
whatever the pool, and the 2-thread speedup that leaves at most.

    bench/serial_share.py MODEL [RUNS] [cnnc options...]

MODEL as for bench/profile.sh (a name in models/ or a path).  Runs
bench/profile.sh (per-layer times at one thread, pinned) and
`cnnc --stats` (each layer's split over threads), joins them by layer
name, and prints the time of the layers that are not split (pools,
reorders, element-wise layers, concatenations, small convolutions: split
"-" in --stats), the largest of them, and Amdahl's bound on the speedup
at n threads: 1 / (serial + (1 - serial) / n), which assumes the split
layers scale perfectly.  Both come from one measurement on this machine.
"""

import os
import re
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)


def model_path(name):
    if os.path.exists(name):
        return name
    return os.path.join(REPO, "models", name + ".yaml")


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    model, rest = argv[1], argv[2:]
    runs = rest.pop(0) if rest and rest[0].isdigit() else "20"
    build = os.environ.get("BUILD_DIR", os.path.join(REPO, "build"))
    path = model_path(model)
    stats = subprocess.run([os.path.join(build, "compiler", "cnnc"), path, "--random-weights", "1",
                            "-o", "/dev/null", "--stats"] + rest,
                           capture_output=True, text=True)
    if stats.returncode != 0:
        sys.stderr.write(stats.stderr)
        return stats.returncode
    split = {}
    for line in stats.stdout.splitlines():
        # layer op MFLOP weightKiB outputKiB layout split kernel...
        f = line.split()
        if len(f) >= 7 and re.match(r"^[\d.]+$", f[2] or ""):
            split[f[0]] = f[6]
    prof = subprocess.run([os.path.join(BENCH, "profile.sh"), model, runs] + rest,
                          capture_output=True, text=True)
    if prof.returncode != 0:
        sys.stderr.write(prof.stderr)
        return prof.returncode
    total = serial = 0.0
    worst = []
    for line in prof.stdout.splitlines():
        m = re.match(r"^(\S+)\s+([\d.]+)\s+[\d.]+%", line)
        if not m or m.group(1) in ("layer", "total"):
            continue
        name, ms = m.group(1), float(m.group(2))
        total += ms
        if split.get(name, "-") == "-":
            serial += ms
            worst.append((ms, name))
    if total <= 0:
        print("serial_share.py: no layer times in bench/profile.sh's output", file=sys.stderr)
        return 1
    s = serial / total
    worst.sort(reverse=True)
    print("%s: %.3f ms per run at 1 thread, %.3f ms (%.1f%%) in layers that are not split"
          % (model, total, serial, 100 * s))
    print("  largest: " + ", ".join("%s %.3f ms" % (n, ms) for ms, n in worst[:5]))
    for n in (2, 4):
        print("  speedup at %d threads is at most %.2fx (Amdahl, split layers scaling perfectly)"
              % (n, 1 / (s + (1 - s) / n)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
