#!/usr/bin/python3
"""torch_bench.py: times one model with PyTorch (eager, CPU) on THREADS threads.

    torch_bench.py MODEL WEIGHTS.pt INPUT.bin OUTPUT.bin WARMUP RUNS BUDGET_SECONDS [THREADS]

Builds the torchvision architecture, loads the benchmark's weights, and runs
it under torch.inference_mode() with torch.set_num_threads(THREADS) (default
1; one inter-op thread): WARMUP untimed runs (at least one; fewer once they
have taken a quarter of the budget), then up to RUNS timed runs (at least
3; stops early once BUDGET_SECONDS of timed runs have passed), timed with
time.perf_counter_ns (monotonic).
Writes the output of the last run to OUTPUT.bin and prints one JSON object:
{"median_ms", "min_ms", "runs", "warmup", "torch_version"}.
"""

import json
import statistics
import sys
import time

import numpy as np
import torch

import models


def main(argv):
    if len(argv) not in (8, 9):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    name, wpath, inpath, outpath = argv[1:5]
    warmup, runs, budget_ms = int(argv[5]), int(argv[6]), 1e3 * float(argv[7])
    threads = int(argv[8]) if len(argv) == 9 else 1
    if threads < 1:
        print("torch_bench.py: THREADS must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set by an earlier parallel call
    model = models.build(name)
    model.load_state_dict(torch.load(wpath, map_location="cpu"))
    model.eval()
    x = torch.from_numpy(np.fromfile(inpath, dtype="<f4").reshape(models.INPUT_SHAPE))
    times = []
    spent = 0.0
    with torch.inference_mode():
        warm, warm_spent = 0, 0.0
        while warm < max(warmup, 1) and not (warm >= 1 and warm_spent >= budget_ms / 4):
            t0 = time.perf_counter_ns()
            model(x)
            warm_spent += (time.perf_counter_ns() - t0) * 1e-6
            warm += 1
        y = None
        while len(times) < runs and not (len(times) >= 3 and spent >= budget_ms):
            t0 = time.perf_counter_ns()
            y = model(x)
            dt = (time.perf_counter_ns() - t0) * 1e-6
            times.append(dt)
            spent += dt
    y.numpy().astype("<f4").tofile(outpath)
    print(json.dumps({"median_ms": statistics.median(times), "min_ms": min(times),
                      "runs": len(times), "warmup": warm,
                      "torch_version": torch.__version__,
                      "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
