#!/usr/bin/python3
"""bench.py: the cnnc benchmark (cnnc vs ONNX Runtime vs PyTorch, one core,
or each of several thread counts).

Called by bench/run.sh, which installs the dependencies and builds cnnc
first; run it directly only on a prepared machine:

    bench/bench.py [--models a,b] [--runs N] [--quick] [--threads 1,2] [--build-dir DIR] ...

For each model, one engine at a time, each in its own process pinned to one
core (taskset), or to n cores for a run at n threads:
  1. prepare.py     seeded weights, input, PyTorch reference output, FLOPs,
                    ONNX file, cnnc YAML + safetensors (tools/cnnc_export.py)
  2. cnnc           compile the very model.onnx that ONNX Runtime runs
                    (timed), link with cnnc_timing.c, time, check
  3. cnnc (YAML)    the same from the exporter's YAML (--cnnc-from both, the
                    default; --cnnc-from onnx or yaml runs one of them)
  4. ONNX Runtime   ort_bench.js (onnxruntime-node), time, check
  5. PyTorch        torch_bench.py, time, check
With --threads LIST (default 1) steps 2 to 5 time each engine at every
count n of LIST, the counts of a model one after the other: cnnc (compiled
and linked once) through its plain `run` at n = 1 and through run_pool on a
cnnrt_pool_new(n) pool at n > 1, ONNX Runtime with intraOpNumThreads = n,
PyTorch with torch.set_num_threads(n); pinned to the last n allowed cores
(not pinned, and noted, when there are fewer).  The table then has a row per
model and count with each engine's speedup over the first count, and
results.md checks issue 9's targets (TARGETS) on whatever counts were run.
The machine's FMA peak is measured before and after (peak.c; the best counts).  Every failure is
reported in the table with its reason; no number is ever made up.

Results: RESULTS.md (table), RESULTS.json (everything), ratios.png (plot of
cnnc / ONNX Runtime), in --out (default: bench/).  results.json keeps the
keys of a one-count run (models[i].cnnc, .ort, .ratio_cnnc_ort, ...: the
first count's) and adds models[i].at_threads["n"] with the same keys per
count plus .speedup and .pinning, and a top-level "targets" list.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import models  # noqa: E402

ENGINES = ("cnnc", "cnnc_yaml", "ort", "torch")
LABELS = {"cnnc": "cnnc from ONNX", "cnnc_yaml": "cnnc from YAML", "ort": "ONNX Runtime",
          "torch": "PyTorch"}
RTOL = 1e-3  # outputs must satisfy |got - ref| <= RTOL * (|ref| + max|ref|)


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

class Proc:
    """Result of one child process."""

    def __init__(self, rc, out, err, seconds, timed_out):
        self.rc, self.out, self.err = rc, out, err
        self.seconds, self.timed_out = seconds, timed_out

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out


def run(cmd, timeout, log=None, env=None, cwd=None):
    """Runs cmd; never raises for a failing or hanging child."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=env, cwd=cwd, errors="replace")
        res = Proc(p.returncode, p.stdout, p.stderr, time.monotonic() - t0, False)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        res = Proc(-1, out, err, time.monotonic() - t0, True)
    except OSError as e:
        res = Proc(-1, "", str(e), time.monotonic() - t0, False)
    if log:
        with open(log, "w") as f:
            f.write("$ %s\n# exit %s%s, %.2f s\n--- stdout\n%s\n--- stderr\n%s\n" % (
                " ".join(cmd), res.rc, " (timed out)" if res.timed_out else "",
                res.seconds, res.out, res.err))
    return res


def reason(p, what, timeout):
    """A one-line reason for a failed child: its first error line."""
    if p.timed_out:
        return ("%s timed out after %d s" % (what, timeout)).strip()
    lines = [l.strip() for l in (p.err + "\n" + p.out).splitlines() if l.strip()]
    pick = next((l for l in lines if re.search(r"\berror\b", l, re.I)), None)
    if pick is None:
        pick = lines[-1] if lines else "exit status %d" % p.rc
    if len(pick) > 300:
        pick = pick[:297] + "..."
    return "%s: %s" % (what, pick) if what else pick


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


class Pin:
    """Prefix that pins a child of n threads to n cores, when taskset works
    here: the n allowed cores that end at `core` (default: the last allowed
    core), so one thread gets `core` and two get `core` and the one before.
    More threads than allowed cores are not pinned, and the note says so."""

    def __init__(self, core, n=1):
        allowed = sorted(os.sched_getaffinity(0))
        last = core if core is not None else allowed[-1]
        self.cores = min(n, len(allowed))  # the cores the child can use
        self.prefix = []
        self.note = "not pinned (taskset not found)"
        if last not in allowed:
            self.note = "not pinned (core %d not available: %s)" % (last, allowed)
        elif n > len(allowed):
            self.note = "not pinned (%d threads, %d cores available: %s)" % (
                n, len(allowed), allowed)
        elif shutil.which("taskset"):
            i = allowed.index(last)
            spec = ",".join(str(c) for c in sorted(allowed[(i - k) % len(allowed)]
                                                   for k in range(n)))
            if run(["taskset", "-c", spec, "true"], 10).ok:
                self.prefix = ["taskset", "-c", spec]
                self.note = "taskset -c %s" % spec
            else:
                self.note = "not pinned (taskset failed)"

    def __call__(self, cmd):
        return self.prefix + cmd


def child_env(threads=1):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["PYTHONPATH"] = BENCH + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# --------------------------------------------------------------------------
# checks and numbers
# --------------------------------------------------------------------------

def compare(out_path, ref_path):
    """{max_abs_err, max_rel_err, correct, note} of an engine's output."""
    ref = np.fromfile(ref_path, dtype="<f4").astype(np.float64)
    try:
        got = np.fromfile(out_path, dtype="<f4").astype(np.float64)
    except OSError as e:
        return {"correct": False, "note": "no output: %s" % e}
    if got.size != ref.size:
        return {"correct": False,
                "note": "output has %d values, PyTorch's has %d" % (got.size, ref.size)}
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if not np.all(np.isfinite(got)):
        return {"correct": False, "note": "output has NaN or infinity",
                "max_abs_err": None, "max_rel_err": None}
    d = np.abs(got - ref)
    max_abs = float(np.max(d)) if d.size else 0.0
    ok = bool(np.all(d <= RTOL * (np.abs(ref) + scale)))
    return {"correct": ok, "max_abs_err": max_abs,
            "max_rel_err": max_abs / scale if scale > 0 else max_abs,
            "argmax_equal": bool(np.argmax(got) == np.argmax(ref))}


def add_rates(r, flops, peak=None):
    """GFLOP/s from the median latency, and % of peak once the peak is known."""
    if r.get("median_ms"):
        g = flops / (r["median_ms"] * 1e-3) * 1e-9
        r["gflops"] = g
        if peak:
            r["pct_peak"] = 100.0 * g / peak


def merge_peaks(a, b):
    """Best of two peak measurements, width by width (disturbances only lower it)."""
    out = {}
    for k in ("avx512", "avx2"):
        vals = [v for v in (a.get(k), b.get(k)) if v is not None]
        out[k] = max(vals) if vals else None
    out["peak"] = max(v for v in (out["avx512"], out["avx2"]) if v is not None)
    out["isa"] = "avx512" if out["avx512"] == out["peak"] else "avx2"
    out["runs"] = [a, b]
    return out


# --------------------------------------------------------------------------
# engines
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.a = args
        self.pin = Pin(args.core)  # one core: the peak, and 1-thread runs
        self.pins = {n: self.pin if n == 1 else Pin(args.core, n) for n in args.threads}
        self.env = child_env()
        self.cnnc = os.path.join(args.build_dir, "compiler", "cnnc")
        self.rtlib = os.path.join(args.build_dir, "runtime")
        self.cc = os.environ.get("CC", "cc")

    def log(self, msg):
        print(msg, flush=True)

    def measure_peak(self, tag):
        exe = os.path.join(self.a.cache, "peak")
        p = run([self.cc, "-O2", "-march=native", "-o", exe, os.path.join(BENCH, "peak.c")],
                120, os.path.join(self.a.cache, "peak_build.log"))
        if not p.ok:
            raise SystemExit("bench: cannot build peak.c: " + reason(p, "", 120))
        p = run(self.pin([exe]), 120, os.path.join(self.a.cache, "peak_%s.log" % tag))
        res = last_json(p.out) if p.ok else None
        if not res:
            raise SystemExit("bench: peak failed: " + reason(p, "", 120))
        return res

    def prepare(self, name, d):
        p = run([sys.executable, os.path.join(BENCH, "prepare.py"), name, d,
                 os.path.join(REPO, "tools")], self.a.prepare_timeout,
                os.path.join(d, "prepare.log"), env=self.env)
        meta_path = os.path.join(d, "meta.json")
        if not p.ok or not os.path.exists(meta_path):
            return None, reason(p, "prepare", self.a.prepare_timeout)
        with open(meta_path) as f:
            return json.load(f), None

    def cnnc_build(self, meta, d, source):
        """Compiles model.onnx (source "onnx": the file ONNX Runtime runs) or
        the exporter's YAML ("yaml") and links the timing driver, once for
        every thread count.  Returns (record, driver); the driver is None
        when there is nothing to time, and the record says why."""
        tag = "cnnc" if source == "onnx" else "cnnc_yaml"
        r = {"engine": tag, "source": source}
        if source not in self.a.cnnc_from:
            r.update(status="not run", reason=None)
            return r, None
        if source == "yaml" and meta["cnnc_export"] != "ok":
            r.update(status="export failed", reason=meta["cnnc_export"])
            return r, None
        if source == "onnx" and meta["onnx"] != "ok":
            r.update(status="export failed", reason=meta["onnx"])
            return r, None
        if self.a.cnnc_unavailable:
            r.update(status="not built", reason=self.a.cnnc_unavailable)
            return r, None
        if not (os.access(self.cnnc, os.X_OK) and
                os.path.exists(os.path.join(self.rtlib, "libcnnrt.a"))):
            r.update(status="not built", reason="no %s or libcnnrt.a in %s"
                     % (self.cnnc, self.rtlib))
            return r, None
        name = meta["cnnc_name"]
        wd = os.path.join(d, tag)
        os.makedirs(wd, exist_ok=True)
        obj = os.path.join(wd, name + ".o")
        for stale in (obj, os.path.join(wd, "timing")):
            if os.path.exists(stale):
                os.remove(stale)
        model = meta["cnnc_yaml"] if source == "yaml" else os.path.join(d, "model.onnx")
        cmd = [self.cnnc] + self.a.cnnc_flags.split() + [model, "--name", name, "-o", obj, "--stats"]
        log = os.path.join(d, "%s_compile.log" % tag)
        p = run(cmd, self.a.compile_timeout, log)
        r["compile_s"] = p.seconds if p.ok else None
        if p.ok:  # --stats' last line: "workspace: N bytes (liveness bound M bytes); ..."
            with open(log, errors="replace") as f:
                text = f.read()
            m = re.search(r"workspace: (\d+) bytes \(liveness bound (\d+) bytes\)", text)
            if m:
                r["liveness_bound"] = int(m.group(2))
            r["plan"] = compute_plan(text)
        r["compile_cmd"] = " ".join(os.path.relpath(c, REPO) if c.startswith("/") else c
                                    for c in cmd)
        if not p.ok or not os.path.exists(obj):
            r.update(status="compile timed out" if p.timed_out else "compile failed",
                     reason=reason(p, "", self.a.compile_timeout))
            return r, None
        r["object_bytes"] = os.path.getsize(obj)
        exe = os.path.join(wd, "timing")
        p = run([self.cc, "-O2", "-DCNNC_MODEL=%s_model" % name,
                 "-I", os.path.join(REPO, "runtime"), os.path.join(BENCH, "cnnc_timing.c"),
                 obj, "-L", self.rtlib, "-lcnnrt", "-o", exe], 300,
                os.path.join(d, "%s_link.log" % tag))
        if not p.ok:
            r.update(status="link failed", reason=reason(p, "", 300))
            return r, None
        return r, exe

    def run_cnnc(self, build, d, n):
        """cnnc's driver at n threads: at 1 the plain `run` entry point (no
        pool, as before), else run_pool on a cnnrt_pool_new(n) pool."""
        r, exe = build
        r = dict(r)  # the build's record, one copy per thread count
        if exe is None:
            return r
        return self.timed(r, [exe], d, r["engine"], n, [] if n == 1 else [str(n)])

    def run_ort(self, meta, d, n):
        r = {"engine": "ort"}
        if meta["onnx"] != "ok":
            r.update(status="export failed", reason=meta["onnx"])
            return r
        return self.timed(r, ["node", os.path.join(BENCH, "ort_bench.js"),
                              os.path.join(d, "model.onnx")], d, "ort", n, [str(n)])

    def run_torch(self, meta, d, n):
        r = {"engine": "torch"}
        return self.timed(r, [sys.executable, os.path.join(BENCH, "torch_bench.py"),
                              meta["model"], os.path.join(d, "weights.pt")], d, "torch",
                          n, [str(n)])

    def timed(self, r, cmd, d, tag, n, tail):
        """Runs a timing driver on the cores of n threads:
        cmd + INPUT OUTPUT WARMUP RUNS BUDGET + tail (its THREADS, if any)."""
        sfx = "" if n == 1 else "_%dt" % n  # 1 thread: the file names of before
        out = os.path.join(d, "out_%s%s.bin" % (tag, sfx))
        if os.path.exists(out):
            os.remove(out)
        full = self.pins[n](cmd + [os.path.join(d, "input.bin"), out, str(self.a.warmup),
                                   str(self.a.runs), str(self.a.budget)] + tail)
        p = run(full, self.a.run_timeout, os.path.join(d, "%s_run%s.log" % (tag, sfx)),
                env=child_env(n))
        res = last_json(p.out) if p.ok else None
        if res is None:
            r.update(status="timed out" if p.timed_out else "run failed",
                     reason=reason(p, "", self.a.run_timeout))
            return r
        r.update(res)
        r.update(compare(out, os.path.join(d, "ref.bin")))
        r["status"] = "ok" if r["correct"] else "WRONG"
        if not r["correct"]:
            r["reason"] = r.get("note") or ("max abs err %.3g, max rel err %.3g (rtol %g)"
                                            % (r["max_abs_err"], r["max_rel_err"], RTOL))
        return r

    def model(self, name):
        d = os.path.join(self.a.cache, name)
        os.makedirs(d, exist_ok=True)
        row = {"model": name}
        t0 = time.monotonic()
        self.log("== %s: prepare (weights, ONNX, cnnc export)" % name)
        meta, err = self.prepare(name, d)
        if meta is None:
            self.log("   prepare failed: %s" % err)
            row["error"] = err
            for e in ENGINES:
                row[e] = {"engine": e, "status": "not run", "reason": err}
            row["at_threads"] = {str(n): dict({"threads": n, "pinning": self.pins[n].note},
                                              **{e: row[e] for e in ENGINES})
                                 for n in self.a.threads}
            return row
        row.update(flops=meta["flops"], params=meta["params"],
                   output_shape=meta["output_shape"])
        self.log("   %.2f GFLOP, %.1f M params; cnnc export: %s" % (
            meta["flops"] * 1e-9, meta["params"] * 1e-6, meta["cnnc_export"]))
        builds = {"cnnc": self.cnnc_build(meta, d, "onnx"),
                  "cnnc_yaml": self.cnnc_build(meta, d, "yaml")}
        # The counts one after the other for this model, every engine at a
        # count back to back: the ratio at a count and an engine's speedup
        # compare runs a minute or two apart on the same machine.
        at = {}
        for n in self.a.threads:
            at[str(n)] = e = {"threads": n, "pinning": self.pins[n].note}
            if len(self.a.threads) > 1:
                self.log("   -- %s (%s)" % (threads_str(n), e["pinning"]))
            e["cnnc"] = self.run_cnnc(builds["cnnc"], d, n)
            e["cnnc_yaml"] = self.run_cnnc(builds["cnnc_yaml"], d, n)
            e["ort"] = self.run_ort(meta, d, n)
            e["torch"] = self.run_torch(meta, d, n)
            for tag in ENGINES:
                r = e[tag]
                add_rates(r, meta["flops"])
                if r["status"] != "not run" or r.get("reason"):
                    self.log("   %-9s %s" % (tag, describe(r)))
            add_ratios(e)
        add_speedups(at, self.a.threads)
        # The keys of a one-count run, from the first count.
        row.update((k, v) for k, v in at[str(self.a.threads[0])].items()
                   if k in ENGINES or k.startswith("ratio_") or k == "same_plan")
        row["at_threads"] = at
        row["seconds"] = time.monotonic() - t0
        return row


def cnnc_of(e):
    """The cnnc record that cnnc/ORT uses: from ONNX, or from YAML when only
    that one has a latency (--cnnc-from yaml)."""
    c, y = e["cnnc"], e.get("cnnc_yaml", {"status": "not run"})
    return y if c.get("median_ms") is None and y.get("median_ms") is not None else c


def add_ratios(e):
    """cnnc / ONNX Runtime, ONNX / YAML and 'same kernels' at one count."""
    c, y, o = cnnc_of(e), e["cnnc_yaml"], e["ort"]
    if c.get("median_ms") and o.get("median_ms"):
        e["ratio_cnnc_ort"] = c["median_ms"] / o["median_ms"]
    if e["cnnc"].get("median_ms") and y.get("median_ms"):
        e["ratio_onnx_yaml"] = e["cnnc"]["median_ms"] / y["median_ms"]
    if e["cnnc"].get("plan") and y.get("plan"):  # one object for every count
        e["same_plan"] = e["cnnc"]["plan"] == y["plan"]


def add_speedups(at, counts):
    """Each engine's speedup over the first count: median there / median here."""
    base = at[str(counts[0])]
    for n in counts:
        e = at[str(n)]
        e["speedup"] = {}
        for tag in ENGINES:
            b, m = base[tag].get("median_ms"), e[tag].get("median_ms")
            if b and m:
                e["speedup"][tag] = b / m


def compute_plan(stats):
    """The convolution and matrix layers of a --stats table, names left out:
    (op, MFLOP, layout, kernel and tiling with the fused epilogue), sorted.
    Two compiles with the same plan run the same kernels on the same
    shapes, whatever the layers are called."""
    rows = []
    body = stats.split("\nlayer ", 1)[-1].split("\ntotal:", 1)[0].splitlines()[1:]
    for line in body:
        m = re.match(r"^.*?\s+(\S+)\s+(-?[\d.]+)\s+[\d.]+\s+[\d.]+\s+(\S+)\s+(.*)$", line)
        if m and m.group(1) in ("conv2d", "conv_transpose2d", "dense", "linear"):
            rows.append((m.group(1), m.group(2), m.group(3), m.group(4).strip()))
    return sorted(rows)


def describe(r):
    s = r["status"]
    if r.get("median_ms") is not None:
        s = "%s: median %.3f ms (min %.3f, %d runs), %.1f GFLOP/s, err %.2g" % (
            s, r["median_ms"], r["min_ms"], r["runs"], r.get("gflops", 0),
            r.get("max_rel_err") or 0)
        if r.get("compile_s") is not None:
            s += ", compile %.2f s" % r["compile_s"]
    if r.get("reason"):
        s += " (%s)" % r["reason"]
    return s


# --------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------

def machine_info():
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        m = re.search(r"^model name\s*:\s*(.*)$", txt, re.M)
        if m:
            info["cpu"] = m.group(1).strip()
        fl = re.search(r"^flags\s*:\s*(.*)$", txt, re.M)
        if fl:
            have = set(fl.group(1).split())
            info["simd"] = [f for f in ("sse2", "avx", "avx2", "fma", "avx512f", "avx512vl",
                                        "avx512bw", "avx512_bf16") if f in have]
    except OSError:
        pass
    info["kernel"] = platform.release()
    return info


def git_rev():
    p = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], 20)
    if not p.ok:
        return None
    rev = p.out.strip()
    q = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], 20)
    if q.ok and q.out.strip():
        rev += " + uncommitted changes"
    return rev


def ms(r):
    if r.get("median_ms") is None:
        return r["status"]
    s = "%.2f" % r["median_ms"] if r["median_ms"] < 100 else "%.1f" % r["median_ms"]
    return s if r["status"] == "ok" else "%s (WRONG)" % s


def ratio(e):
    v = fmt(e.get("ratio_cnnc_ort"), "%.2f")
    wrong = cnnc_of(e)["status"] != "ok" or e["ort"]["status"] != "ok"
    return v + " (WRONG)" if v and wrong else v


def speedup(row, e, tags):
    """The first of tags' speedups that exists (cnnc from ONNX, else from YAML),
    WRONG when either of its two results is."""
    sp = e.get("speedup", {})
    tag = next((t for t in tags if t in sp), None)
    if tag is None:
        return ""
    base = next(iter(row["at_threads"].values()))  # the first count
    wrong = e[tag]["status"] != "ok" or base[tag]["status"] != "ok"
    return "%.2fx%s" % (sp[tag], " (WRONG)" if wrong else "")


def fmt(v, f):
    return "" if v is None else f % v


def threads_str(n):
    return "%d thread%s" % (n, "s" if n != 1 else "")


def counts_str(counts):
    """[1, 2, 4] -> '1, 2 and 4 threads'."""
    if len(counts) == 1:
        return threads_str(counts[0])
    return "%s and %s" % (", ".join(str(n) for n in counts[:-1]), threads_str(counts[-1]))


# --------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------

# Issue 9's targets, which results.md checks on every run that has the
# counts they need: (kind, threads, limit, models).  "ratio": cnnc /
# ONNX Runtime at that many threads (both engines on them) is at most
# limit; "speedup": cnnc's median at 1 thread / at that many is at least limit.
TARGETS = (
    ("ratio", 2, 0.6, ("resnet18", "vgg16")),
    ("ratio", 2, 0.8, ("resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "vgg16")),
    ("speedup", 2, 1.8, ("resnet18", "resnet50", "vgg16")),
    ("ratio", 1, 0.7, ("mobilenet_v2", "squeezenet1_1", "resnet50")),
)


def target_name(kind, n, limit):
    if kind == "ratio":
        return "cnnc/ORT at %s <= %g" % (threads_str(n), limit)
    return "cnnc speedup 1 -> %d threads >= %g" % (n, limit)


def check_target(row, kind, n, limit):
    """{value, met, why}: met is None when this run lacks a count it needs."""
    at = row["at_threads"]
    need = [n] if kind == "ratio" else [1, n]
    lack = [k for k in need if str(k) not in at]
    if lack:
        return {"value": None, "met": None, "why": "no run at %s" % threads_str(lack[0])}
    e = at[str(n)]
    if kind == "ratio":
        used, value = [cnnc_of(e), e["ort"]], e.get("ratio_cnnc_ort")
    else:
        b = at["1"]
        tag = "cnnc" if b["cnnc"].get("median_ms") and e["cnnc"].get("median_ms") else "cnnc_yaml"
        used = [b[tag], e[tag]]
        value = (b[tag]["median_ms"] / e[tag]["median_ms"]
                 if b[tag].get("median_ms") and e[tag].get("median_ms") else None)
    bad = [r for r in used if r["status"] != "ok"]
    label = lambda r: LABELS.get(r["engine"], r["engine"])
    if value is None:
        return {"value": None, "met": False,
                "why": "no %s result: %s" % (label(bad[0]), bad[0]["status"])
                if bad else "no result"}
    ok = value <= limit if kind == "ratio" else value >= limit
    if bad:
        return {"value": value, "met": False, "why": "%s output WRONG" % label(bad[0])}
    return {"value": value, "met": ok, "why": None}


def check_targets(rows):
    """Every target on every model of this run that it names."""
    out = []
    for kind, n, limit, names in TARGETS:
        for row in rows:
            if row["model"] in names:
                t = {"target": target_name(kind, n, limit), "kind": kind, "threads": n,
                     "limit": limit, "model": row["model"]}
                t.update(check_target(row, kind, n, limit))
                out.append(t)
    return out


# --------------------------------------------------------------------------
# results.md
# --------------------------------------------------------------------------

def md_table(L, cols, items):
    """cols: (header, alignment, cell(item)); one line per item."""
    L.append("| " + " | ".join(c[0] for c in cols) + " |")
    L.append("|" + "|".join(c[1] for c in cols) + "|")
    for it in items:
        L.append("| " + " | ".join(str(c[2](it)) for c in cols) + " |")


def entries(res):
    """(row, entry) for each model and thread count, in the table's order."""
    return [(row, row["at_threads"][str(n)])
            for row in res["models"] for n in res["config"]["threads"]]


def main_columns(multi):
    gb = lambda row, e: fmt(row.get("flops") and row["flops"] * 1e-9, "%.2f")
    cols = [("model", "---", lambda it: it[0]["model"])]
    if multi:
        cols.append(("threads", "---:", lambda it: it[1]["threads"]))
    cols += [
        ("GFLOP", "---:", lambda it: gb(*it)),
        ("cnnc ms", "---:", lambda it: ms(it[1]["cnnc"])),
        ("cnnc (YAML) ms", "---:", lambda it: ms(it[1].get("cnnc_yaml", {"status": "not run"}))),
        ("ORT ms", "---:", lambda it: ms(it[1]["ort"])),
        ("PyTorch ms", "---:", lambda it: ms(it[1]["torch"])),
        ("cnnc/ORT", "---:", lambda it: ratio(it[1])),
        ("ONNX/YAML", "---:", lambda it: fmt(it[1].get("ratio_onnx_yaml"), "%.2f")),
        ("same kernels", ":---:",
         lambda it: {True: "yes", False: "**no**"}.get(it[1].get("same_plan"), "-")),
    ]
    if multi:
        cols += [("cnnc speedup", "---:", lambda it: speedup(*it, ("cnnc", "cnnc_yaml"))),
                 ("ORT speedup", "---:", lambda it: speedup(*it, ("ort",)))]
    ws = lambda e: cnnc_of(e).get("workspace")
    lb = lambda e: cnnc_of(e).get("liveness_bound")
    cols += [
        ("cnnc GFLOP/s", "---:", lambda it: fmt(cnnc_of(it[1]).get("gflops"), "%.1f")),
        ("cnnc % peak", "---:", lambda it: fmt(cnnc_of(it[1]).get("pct_peak"), "%.1f")),
        ("ORT GFLOP/s", "---:", lambda it: fmt(it[1]["ort"].get("gflops"), "%.1f")),
        ("ORT % peak", "---:", lambda it: fmt(it[1]["ort"].get("pct_peak"), "%.1f")),
        ("cnnc compile s", "---:", lambda it: fmt(cnnc_of(it[1]).get("compile_s"), "%.2f")),
        ("cnnc workspace MiB", "---:", lambda it: fmt(ws(it[1]) and ws(it[1]) / 2**20, "%.2f")),
        ("liveness bound MiB", "---:", lambda it: fmt(lb(it[1]) and lb(it[1]) / 2**20, "%.2f")),
    ]
    return cols


def failure_notes(res, multi):
    """One line per model, engine and reason; the counts it happened at
    when not at every count (a failed compile fails every count alike)."""
    counts = res["config"]["threads"]
    seen = {}
    for row, e in entries(res):
        for tag in ENGINES:
            if tag in e and e[tag].get("reason"):
                key = (row["model"], LABELS[tag], e[tag]["status"], e[tag]["reason"])
                seen.setdefault(key, []).append(e["threads"])
    notes = []
    for (model, label, status, why), at in seen.items():
        where = "" if not multi or len(at) == len(counts) else \
            " (%s)" % ", ".join(threads_str(n) for n in at)
        notes.append("- %s, %s%s: %s: %s" % (model, label, where, status,
                                              why.replace("|", "\\|")))
    return notes


def write_targets(L, res):
    L.append("Targets (issue 9), checked on this run's numbers (see TARGETS in "
             "bench/bench.py):")
    L.append("")
    cols = [("target", "---", lambda t: t["target"]),
            ("model", "---", lambda t: t["model"]),
            ("measured", "---:", lambda t: (fmt(t["value"], "%.2fx" if t["kind"] == "speedup"
                                                 else "%.2f") or "-")),
            ("met", ":---:", lambda t: {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
             + (" (%s)" % t["why"] if t["why"] else ""))]
    measured = [t for t in res["targets"] if t["met"] is not None]
    if measured:
        md_table(L, cols, measured)
        L.append("")
    lack = {}  # not measured: target -> (why, models)
    for t in res["targets"]:
        if t["met"] is None:
            lack.setdefault(t["target"], (t["why"], []))[1].append(t["model"])
    if lack:
        L.append("Not measured in this run: %s. `--threads 1,2` measures them all." % "; ".join(
            "%s on %s (%s)" % (name, ", ".join(ms_), why) for name, (why, ms_) in lack.items()))
        L.append("")


def write_md(path, res):
    peak = res["peak"]
    counts = res["config"]["threads"]
    multi = len(counts) > 1
    pins = res["pinning_by_threads"]
    L = []
    L.append("# cnnc benchmark results")
    L.append("")
    if counts == [1]:
        where = "one core (%s)" % res["pinning"]
    else:
        where = "at %s (%s)" % (
            counts_str(counts), "; ".join("%s: %s" % (threads_str(n), pins[str(n)]) for n in counts))
    L.append("Batch 1, 1x3x224x224 float32, %s, median latency in ms "
             "(lower is better). Made by `bench/run.sh`; see docs/bench.md." % where)
    L.append("")
    md_table(L, main_columns(multi), entries(res))
    L.append("")
    notes = failure_notes(res, multi)
    if notes:
        L.append("Failures and mismatches (full logs in the cache directory):")
        L.append("")
        L += notes
        L.append("")
    if res.get("targets"):
        write_targets(L, res)
    L.append("Correctness: each engine's output is compared with PyTorch's on the "
             "benchmark input; a row is marked WRONG unless every value satisfies "
             "|got - ref| <= %g * (|ref| + max|ref|). Largest errors (relative to max|ref|):"
             % RTOL)
    L.append("")
    cols = [("model", "---", lambda it: it[0]["model"])]
    if multi:
        cols.append(("threads", "---:", lambda it: it[1]["threads"]))
    cols += [
        ("cnnc max abs err", "---:", lambda it: fmt(it[1]["cnnc"].get("max_abs_err"), "%.3g")),
        ("cnnc max rel err", "---:", lambda it: fmt(it[1]["cnnc"].get("max_rel_err"), "%.3g")),
        ("ORT max abs err", "---:", lambda it: fmt(it[1]["ort"].get("max_abs_err"), "%.3g")),
        ("ORT max rel err", "---:", lambda it: fmt(it[1]["ort"].get("max_rel_err"), "%.3g")),
        ("timed runs (cnnc / ORT / PyTorch)", "---:", lambda it: "%s / %s / %s" % tuple(
            it[1][t].get("runs", "-") for t in ("cnnc", "ort", "torch")))]
    md_table(L, cols, entries(res))
    L.append("")
    m = res["machine"]
    L.append("Machine: %s, %s cores, SIMD %s. Measured single-core FMA peak (bench/peak.c): "
             "AVX-512 %s GFLOP/s, AVX2 %s GFLOP/s (best of a measurement before and one after "
             "the models); peak = %.1f GFLOP/s." % (
                 m.get("cpu"), m.get("cores"), ", ".join(m.get("simd", [])),
                 fmt(peak.get("avx512"), "%.1f") or "n/a", fmt(peak.get("avx2"), "%.1f") or "n/a",
                 peak["peak"]))
    L.append("")
    cfg = res["config"]
    L.append("Run: %s; repo %s; %d timed runs requested after %d warm-up runs, at most about "
             "%g s of timed runs per engine and %s (at least 3 runs); cnnc flags `%s`; "
             "ONNX Runtime %s (onnxruntime-node); PyTorch %s; seed %d; total %.0f s." % (
                 res["date"], res.get("git") or "?", cfg["runs"], cfg["warmup"], cfg["budget"],
                 "model, at each thread count" if multi else "model",
                 cfg["cnnc_flags"] or "(default: -O3, host CPU)", res.get("ort_version") or "?",
                 res.get("torch_version") or "?", models.SEED, res["seconds"]))
    L.append("")
    L.append("cnnc compiles the very `model.onnx` that ONNX Runtime runs (torch.onnx.export, "
             "opset %d); cnnc (YAML) compiles tools/cnnc_export.py's spec of the same weights, "
             "and ONNX/YAML is the ratio of the two latencies; 'same kernels' says whether "
             "both compiles chose the same kernel, tiling, layout and fused epilogue for every "
             "convolution and matrix layer (their --stats, names aside), so that any gap "
             "between the two latencies is noise. GFLOP counts 2 x "
             "multiply-accumulates of the convolution and linear layers. "
             "%% peak = GFLOP/s / measured peak." % res["config"].get("onnx_opset", 13))
    L.append("")
    if counts != [1]:
        L.append("Threads: every engine runs at each count, the counts of a model one after "
                 "the other; cnnc at 1 thread calls the plain `run` entry point, at n > 1 "
                 "`run_pool` on a cnnrt_pool_new(n) pool; ONNX Runtime with "
                 "intraOpNumThreads = n (interOpNumThreads 1), PyTorch with "
                 "torch.set_num_threads(n). Each object is compiled once, so 'same kernels' "
                 "is the same at every count. Speedup = median at %s / median at this count. "
                 "%% peak at n threads = GFLOP/s / (peak x the cores the run had)."
                 % threads_str(counts[0]))
        L.append("")
    L.append("![cnnc / ONNX Runtime latency ratio per model](ratios.png)")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))
    return "\n".join(L)


def write_plot(path, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    counts = res["config"]["threads"]
    multi = len(counts) > 1
    names = [r["model"] for r in res["models"]]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names) * (1 + 0.5 * multi) + 2), 4.2),
                           dpi=110)
    xs = list(range(len(names)))
    width = 0.8 / len(counts)
    have = [e.get("ratio_cnnc_ort") for _, e in entries(res) if e.get("ratio_cnnc_ort")]
    log = bool(have) and (max(have) > 8 or min(have) < 0.125)
    palette = ("#4c72b0", "#dd8452", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
    for k, n in enumerate(counts):
        off = (k - (len(counts) - 1) / 2) * width
        for x, row in zip(xs, res["models"]):
            e = row["at_threads"][str(n)]
            v = e.get("ratio_cnnc_ort")
            if v:
                wrong = cnnc_of(e)["status"] != "ok" or e["ort"]["status"] != "ok"
                color = (palette[k % len(palette)] if multi else
                         "#c44e52" if (v > 1 or wrong) else "#55a868")
                ax.bar(x + off, v, width=0.8 if not multi else width * 0.95, color=color,
                       hatch="//" if wrong else None, edgecolor="black", linewidth=0.6)
                ax.annotate("%.2f%s" % (v, " WRONG" if wrong else ""), (x + off, v),
                            ha="center", va="bottom", fontsize=8 if not multi else 7,
                            xytext=(0, 2), textcoords="offset points")
            else:
                lack = next((r for r in (cnnc_of(e), e["ort"]) if r.get("median_ms") is None),
                            cnnc_of(e))
                ax.annotate("no %s result:\n%s" % ("ORT" if lack is e["ort"] else "cnnc",
                                                    lack["status"]), (x + off, 1.0),
                            ha="center", va="bottom", fontsize=7, color="gray",
                            xytext=(0, 4), textcoords="offset points")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    if log:
        ax.set_yscale("log")
    top = max(have + [1.0])
    bottom = min(have + [1.0])
    if log:
        ax.set_ylim(bottom / 2, top * 3)
    else:
        ax.set_ylim(0, top * 1.25)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylabel("cnnc latency / ONNX Runtime latency")
    if multi:
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(facecolor=palette[k % len(palette)], edgecolor="black",
                                 label=threads_str(n)) for k, n in enumerate(counts)],
                  fontsize=8, title="both engines at", title_fontsize=8)
    where = "one core" if counts == [1] else "at " + counts_str(counts)
    ax.set_title("cnnc vs ONNX Runtime, batch 1, %s (below 1.0: cnnc faster)" % where,
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="cnnc vs ONNX Runtime vs PyTorch, one core "
                                "(or each --threads count).")
    known = models.DEFAULT_MODELS + models.EXTRA_MODELS
    p.add_argument("--models", default=",".join(models.DEFAULT_MODELS),
                   help="comma-separated, from: %s (default: all but plain_cnn)" % ", ".join(known))
    p.add_argument("--runs", type=int,
                   help="timed runs per engine and thread count (default 20; --quick 5)")
    p.add_argument("--warmup", type=int, help="warm-up runs (default 3; --quick 1)")
    p.add_argument("--budget", type=float,
                   help="seconds of timed runs per engine, model and thread count after "
                   "which a slow engine stops early, keeping at least 3 runs (default 20; "
                   "--quick 5)")
    p.add_argument("--quick", action="store_true", help="fewer runs, smaller budget")
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                   help="cnnc build directory (default: build)")
    p.add_argument("--cache", default=None,
                   help="where exported models and logs go (default: BUILD_DIR/bench)")
    p.add_argument("--out", default=BENCH, help="where results.md/.json and ratios.png go")
    p.add_argument("--threads", default="1", metavar="LIST",
                   help="comma-separated thread counts every engine runs at, e.g. 1,2 "
                   "(default 1); speedups are over the first count")
    p.add_argument("--core", type=int, default=None,
                   help="core to pin to (default: the last); n threads get it and the "
                   "n - 1 allowed cores before it")
    p.add_argument("--cnnc-flags", default="", help="extra cnnc options, e.g. '--cpu x86-64-v3'")
    p.add_argument("--cnnc-from", default="both", choices=("both", "onnx", "yaml"),
                   help="what cnnc compiles: the model.onnx that ONNX Runtime runs, the "
                   "exporter's YAML, or both (default)")
    p.add_argument("--cnnc-unavailable", metavar="REASON", default=None,
                   help="do not run cnnc; report REASON in its rows (run.sh uses this "
                   "when cnnc does not build)")
    p.add_argument("--compile-timeout", type=int, default=300)
    p.add_argument("--run-timeout", type=int, default=600)
    p.add_argument("--prepare-timeout", type=int, default=600)
    a = p.parse_args(argv)
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    for m in a.models:
        if m not in known:
            p.error("unknown model '%s' (known: %s)" % (m, ", ".join(known)))
    if not a.models:
        p.error("--models is empty")
    spec = a.threads
    try:
        a.threads = [int(t) for t in spec.split(",") if t.strip()]
    except ValueError:
        a.threads = []
    if not a.threads or min(a.threads) < 1 or len(set(a.threads)) != len(a.threads):
        p.error("--threads wants distinct comma-separated counts >= 1, e.g. 1,2 (got '%s')"
                % spec)
    a.runs = a.runs or (5 if a.quick else 20)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    a.budget = a.budget or (5.0 if a.quick else 20.0)
    if a.runs < 1 or a.warmup < 0 or a.budget <= 0:
        p.error("--runs must be >= 1, --warmup >= 0, --budget > 0")
    a.cnnc_from = {"onnx", "yaml"} if a.cnnc_from == "both" else {a.cnnc_from}
    a.build_dir = os.path.abspath(a.build_dir)
    a.cache = os.path.abspath(a.cache or os.path.join(a.build_dir, "bench"))
    a.out = os.path.abspath(a.out)
    return a


def main(argv):
    a = parse_args(argv)
    os.makedirs(a.cache, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    b = Bench(a)
    t0 = time.monotonic()
    b.log("== pinning: %s; cache: %s" % (
        "; ".join("%s: %s" % (threads_str(n), b.pins[n].note) for n in a.threads)
        if a.threads != [1] else b.pin.note, a.cache))
    peak0 = b.measure_peak("start")
    b.log("== FMA peak: AVX-512 %s, AVX2 %s GFLOP/s (measured again at the end)" % (
        peak0.get("avx512"), peak0.get("avx2")))
    rows = [b.model(m) for m in a.models]
    peak1 = b.measure_peak("end")
    peak = merge_peaks(peak0, peak1)
    b.log("== FMA peak at the end: AVX-512 %s, AVX2 %s GFLOP/s -> peak %.1f GFLOP/s" % (
        peak1.get("avx512"), peak1.get("avx2"), peak["peak"]))
    for row in rows:
        for n in a.threads:  # n threads may use n cores: n times the peak
            e = row["at_threads"][str(n)]
            for tag in ENGINES:
                if row.get("flops") and tag in e:
                    add_rates(e[tag], row["flops"], peak["peak"] * b.pins[n].cores)
    res = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_rev(), "machine": machine_info(), "peak": peak,
        "pinning": b.pins[a.threads[0]].note,
        "pinning_by_threads": {str(n): b.pins[n].note for n in a.threads},
        "config": {"models": a.models, "runs": a.runs, "warmup": a.warmup,
                   "budget": a.budget, "quick": a.quick, "cnnc_flags": a.cnnc_flags,
                   "cnnc_from": sorted(a.cnnc_from), "onnx_opset": 13, "threads": a.threads,
                   "rtol": RTOL, "seed": models.SEED, "input_shape": list(models.INPUT_SHAPE)},
        "models": rows, "targets": check_targets(rows), "seconds": time.monotonic() - t0,
    }
    for key, eng in (("ort_version", "ort"), ("torch_version", "torch")):
        res[key] = next((r[eng][key] for r in rows if r[eng].get(key)), None)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    md = write_md(os.path.join(a.out, "results.md"), res)
    try:
        write_plot(os.path.join(a.out, "ratios.png"), res)
    except Exception as e:  # a missing matplotlib must not lose the table
        print("bench: plot failed: %s" % e, file=sys.stderr)
    print()
    print(md)
    print("== wrote %s/results.md, results.json, ratios.png (%.0f s)" % (a.out, res["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
