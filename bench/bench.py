#!/usr/bin/python3
"""bench.py: the cnnc benchmark (cnnc vs ONNX Runtime vs PyTorch, one core).

Called by bench/run.sh, which installs the dependencies and builds cnnc
first; run it directly only on a prepared machine:

    bench/bench.py [--models a,b] [--runs N] [--quick] [--build-dir DIR] ...

For each model, one engine at a time, each in its own process pinned to one
core (taskset):
  1. prepare.py     seeded weights, input, PyTorch reference output, FLOPs,
                    ONNX file, cnnc YAML + safetensors (tools/cnnc_export.py)
  2. cnnc           compile the very model.onnx that ONNX Runtime runs
                    (timed), link with cnnc_timing.c, time, check
  3. cnnc (YAML)    the same from the exporter's YAML (--cnnc-from both, the
                    default; --cnnc-from onnx or yaml runs one of them)
  4. ONNX Runtime   ort_bench.js (onnxruntime-node), time, check
  5. PyTorch        torch_bench.py, time, check
The machine's FMA peak is measured before and after (peak.c; the best counts).  Every failure is
reported in the table with its reason; no number is ever made up.

Results: RESULTS.md (table), RESULTS.json (everything), ratios.png (plot of
cnnc / ONNX Runtime), in --out (default: bench/).
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
    """Prefix that pins a child to one core, when taskset works here."""

    def __init__(self, core):
        allowed = sorted(os.sched_getaffinity(0))
        self.core = core if core is not None else allowed[-1]
        self.prefix = []
        self.note = "not pinned (taskset not found)"
        if self.core not in allowed:
            self.note = "not pinned (core %d not available: %s)" % (self.core, allowed)
        elif shutil.which("taskset"):
            if run(["taskset", "-c", str(self.core), "true"], 10).ok:
                self.prefix = ["taskset", "-c", str(self.core)]
                self.note = "taskset -c %d" % self.core
            else:
                self.note = "not pinned (taskset failed)"

    def __call__(self, cmd):
        return self.prefix + cmd


def child_env():
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = "1"
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
        self.pin = Pin(args.core)
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

    def run_cnnc(self, meta, d):
        return self.cnnc_from(meta, d, "onnx")

    def run_cnnc_yaml(self, meta, d):
        return self.cnnc_from(meta, d, "yaml")

    def cnnc_from(self, meta, d, source):
        """cnnc on model.onnx (source "onnx": the file ONNX Runtime runs)
        or on the exporter's YAML ("yaml")."""
        tag = "cnnc" if source == "onnx" else "cnnc_yaml"
        r = {"engine": tag, "source": source}
        if source not in self.a.cnnc_from:
            r.update(status="not run", reason=None)
            return r
        if source == "yaml" and meta["cnnc_export"] != "ok":
            r.update(status="export failed", reason=meta["cnnc_export"])
            return r
        if source == "onnx" and meta["onnx"] != "ok":
            r.update(status="export failed", reason=meta["onnx"])
            return r
        if self.a.cnnc_unavailable:
            r.update(status="not built", reason=self.a.cnnc_unavailable)
            return r
        if not (os.access(self.cnnc, os.X_OK) and
                os.path.exists(os.path.join(self.rtlib, "libcnnrt.a"))):
            r.update(status="not built", reason="no %s or libcnnrt.a in %s"
                     % (self.cnnc, self.rtlib))
            return r
        name = meta["cnnc_name"]
        wd = os.path.join(d, tag)
        os.makedirs(wd, exist_ok=True)
        obj = os.path.join(wd, name + ".o")
        for stale in (obj, os.path.join(wd, "timing"), os.path.join(d, "out_%s.bin" % tag)):
            if os.path.exists(stale):
                os.remove(stale)
        model = meta["cnnc_yaml"] if source == "yaml" else os.path.join(d, "model.onnx")
        cmd = [self.cnnc] + self.a.cnnc_flags.split() + [model, "--name", name, "-o", obj, "--stats"]
        log = os.path.join(d, "%s_compile.log" % tag)
        p = run(cmd, self.a.compile_timeout, log)
        r["compile_s"] = p.seconds if p.ok else None
        if p.ok:  # --stats' last line: "workspace: N bytes (liveness bound M bytes); ..."
            with open(log, errors="replace") as f:
                m = re.search(r"workspace: (\d+) bytes \(liveness bound (\d+) bytes\)", f.read())
            if m:
                r["liveness_bound"] = int(m.group(2))
        r["compile_cmd"] = " ".join(os.path.relpath(c, REPO) if c.startswith("/") else c
                                    for c in cmd)
        if not p.ok or not os.path.exists(obj):
            r.update(status="compile timed out" if p.timed_out else "compile failed",
                     reason=reason(p, "", self.a.compile_timeout))
            return r
        r["object_bytes"] = os.path.getsize(obj)
        exe = os.path.join(wd, "timing")
        p = run([self.cc, "-O2", "-DCNNC_MODEL=%s_model" % name,
                 "-I", os.path.join(REPO, "runtime"), os.path.join(BENCH, "cnnc_timing.c"),
                 obj, "-L", self.rtlib, "-lcnnrt", "-o", exe], 300,
                os.path.join(d, "%s_link.log" % tag))
        if not p.ok:
            r.update(status="link failed", reason=reason(p, "", 300))
            return r
        return self.timed(r, [exe], d, tag)

    def run_ort(self, meta, d):
        r = {"engine": "ort"}
        if meta["onnx"] != "ok":
            r.update(status="export failed", reason=meta["onnx"])
            return r
        return self.timed(r, ["node", os.path.join(BENCH, "ort_bench.js"),
                              os.path.join(d, "model.onnx")], d, "ort")

    def run_torch(self, meta, d):
        r = {"engine": "torch"}
        return self.timed(r, [sys.executable, os.path.join(BENCH, "torch_bench.py"),
                              meta["model"], os.path.join(d, "weights.pt")], d, "torch")

    def timed(self, r, cmd, d, tag):
        """Runs a timing driver: cmd + INPUT OUTPUT WARMUP RUNS BUDGET."""
        out = os.path.join(d, "out_%s.bin" % tag)
        if os.path.exists(out):
            os.remove(out)
        full = self.pin(cmd + [os.path.join(d, "input.bin"), out, str(self.a.warmup),
                               str(self.a.runs), str(self.a.budget)])
        p = run(full, self.a.run_timeout, os.path.join(d, "%s_run.log" % tag), env=self.env)
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
            return row
        row.update(flops=meta["flops"], params=meta["params"],
                   output_shape=meta["output_shape"])
        self.log("   %.2f GFLOP, %.1f M params; cnnc export: %s" % (
            meta["flops"] * 1e-9, meta["params"] * 1e-6, meta["cnnc_export"]))
        for e, fn in (("cnnc", self.run_cnnc), ("cnnc_yaml", self.run_cnnc_yaml),
                      ("ort", self.run_ort), ("torch", self.run_torch)):
            r = fn(meta, d)
            add_rates(r, meta["flops"])
            row[e] = r
            if r["status"] != "not run" or r.get("reason"):
                self.log("   %-9s %s" % (e, describe(r)))
        c, y, o = row["cnnc"], row["cnnc_yaml"], row["ort"]
        if not c.get("median_ms") and y.get("median_ms"):  # --cnnc-from yaml
            c = y
        if c.get("median_ms") and o.get("median_ms"):
            row["ratio_cnnc_ort"] = c["median_ms"] / o["median_ms"]
        if row["cnnc"].get("median_ms") and y.get("median_ms"):
            row["ratio_onnx_yaml"] = row["cnnc"]["median_ms"] / y["median_ms"]
        row["seconds"] = time.monotonic() - t0
        return row


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


def ratio(row):
    v = fmt(row.get("ratio_cnnc_ort"), "%.2f")
    return v + " (WRONG)" if v and row["cnnc"]["status"] != "ok" else v


def fmt(v, f):
    return "" if v is None else f % v


def write_md(path, res):
    peak = res["peak"]
    L = []
    L.append("# cnnc benchmark results")
    L.append("")
    L.append("Batch 1, 1x3x224x224 float32, one core (%s), median latency in ms "
             "(lower is better). Made by `bench/run.sh`; see docs/bench.md." % res["pinning"])
    L.append("")
    L.append("| model | GFLOP | cnnc ms | cnnc (YAML) ms | ORT ms | PyTorch ms | cnnc/ORT "
             "| ONNX/YAML | cnnc GFLOP/s | cnnc % peak | ORT GFLOP/s | ORT % peak | cnnc compile s "
             "| cnnc workspace MiB | liveness bound MiB |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for row in res["models"]:
        c, y, o, t = row["cnnc"], row.get("cnnc_yaml", {"status": "not run"}), row["ort"], row["torch"]
        if c.get("median_ms") is None and y.get("median_ms") is not None:
            c = y  # --cnnc-from yaml
        gflop = fmt(row.get("flops") and row["flops"] * 1e-9, "%.2f")
        ws = c.get("workspace")
        lb = c.get("liveness_bound")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row["model"], gflop, ms(row["cnnc"]), ms(y), ms(o), ms(t),
            ratio(row), fmt(row.get("ratio_onnx_yaml"), "%.2f"),
            fmt(c.get("gflops"), "%.1f"), fmt(c.get("pct_peak"), "%.1f"),
            fmt(o.get("gflops"), "%.1f"), fmt(o.get("pct_peak"), "%.1f"),
            fmt(c.get("compile_s"), "%.2f"), fmt(ws and ws / 2**20, "%.2f"), fmt(lb and lb / 2**20, "%.2f")))
        for e, label in (("cnnc", "cnnc from ONNX"), ("cnnc_yaml", "cnnc from YAML"),
                         ("ort", "ONNX Runtime"), ("torch", "PyTorch")):
            if e in row and row[e].get("reason"):
                notes.append("- %s, %s: %s: %s" % (row["model"], label, row[e]["status"],
                                                   row[e]["reason"].replace("|", "\\|")))
    L.append("")
    if notes:
        L.append("Failures and mismatches (full logs in the cache directory):")
        L.append("")
        L += notes
        L.append("")
    L.append("Correctness: each engine's output is compared with PyTorch's on the "
             "benchmark input; a row is marked WRONG unless every value satisfies "
             "|got - ref| <= %g * (|ref| + max|ref|). Largest errors (relative to max|ref|):"
             % RTOL)
    L.append("")
    L.append("| model | cnnc max abs err | cnnc max rel err | ORT max abs err "
             "| ORT max rel err | timed runs (cnnc / ORT / PyTorch) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for row in res["models"]:
        c, o, t = row["cnnc"], row["ort"], row["torch"]
        L.append("| %s | %s | %s | %s | %s | %s / %s / %s |" % (
            row["model"], fmt(c.get("max_abs_err"), "%.3g"), fmt(c.get("max_rel_err"), "%.3g"),
            fmt(o.get("max_abs_err"), "%.3g"), fmt(o.get("max_rel_err"), "%.3g"),
            c.get("runs", "-"), o.get("runs", "-"), t.get("runs", "-")))
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
             "%g s of timed runs per engine and model (at least 3 runs); cnnc flags `%s`; "
             "ONNX Runtime %s (onnxruntime-node); PyTorch %s; seed %d; total %.0f s." % (
                 res["date"], res.get("git") or "?", cfg["runs"], cfg["warmup"], cfg["budget"],
                 cfg["cnnc_flags"] or "(default: -O3, host CPU)", res.get("ort_version") or "?",
                 res.get("torch_version") or "?", models.SEED, res["seconds"]))
    L.append("")
    L.append("cnnc compiles the very `model.onnx` that ONNX Runtime runs (torch.onnx.export, "
             "opset %d); cnnc (YAML) compiles tools/cnnc_export.py's spec of the same weights, "
             "and ONNX/YAML is the ratio of the two latencies. GFLOP counts 2 x "
             "multiply-accumulates of the convolution and linear layers. "
             "%% peak = GFLOP/s / measured peak." % res["config"].get("onnx_opset", 13))
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
    names = [r["model"] for r in res["models"]]
    ratios = [r.get("ratio_cnnc_ort") for r in res["models"]]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names) + 2), 4.2), dpi=110)
    xs = list(range(len(names)))
    have = [v for v in ratios if v]
    log = bool(have) and (max(have) > 8 or min(have) < 0.125)
    for x, v, row in zip(xs, ratios, res["models"]):
        if v:
            wrong = row["cnnc"]["status"] != "ok"
            ax.bar(x, v, color="#c44e52" if (v > 1 or wrong) else "#55a868",
                   hatch="//" if wrong else None, edgecolor="black", linewidth=0.6)
            ax.annotate("%.2f%s" % (v, " WRONG" if wrong else ""), (x, v),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        else:
            ax.annotate("no cnnc result:\n%s" % row["cnnc"]["status"], (x, 1.0),
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
    ax.set_title("cnnc vs ONNX Runtime, batch 1, one core (below 1.0: cnnc faster)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="cnnc vs ONNX Runtime vs PyTorch, one core.")
    known = models.DEFAULT_MODELS + models.EXTRA_MODELS
    p.add_argument("--models", default=",".join(models.DEFAULT_MODELS),
                   help="comma-separated, from: %s (default: all but plain_cnn)" % ", ".join(known))
    p.add_argument("--runs", type=int, help="timed runs per engine (default 20; --quick 5)")
    p.add_argument("--warmup", type=int, help="warm-up runs (default 3; --quick 1)")
    p.add_argument("--budget", type=float,
                   help="seconds of timed runs per engine and model after which a slow "
                   "engine stops early, keeping at least 3 runs (default 20; --quick 5)")
    p.add_argument("--quick", action="store_true", help="fewer runs, smaller budget")
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                   help="cnnc build directory (default: build)")
    p.add_argument("--cache", default=None,
                   help="where exported models and logs go (default: BUILD_DIR/bench)")
    p.add_argument("--out", default=BENCH, help="where results.md/.json and ratios.png go")
    p.add_argument("--core", type=int, default=None, help="core to pin to (default: the last)")
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
    b.log("== pinning: %s; cache: %s" % (b.pin.note, a.cache))
    peak0 = b.measure_peak("start")
    b.log("== FMA peak: AVX-512 %s, AVX2 %s GFLOP/s (measured again at the end)" % (
        peak0.get("avx512"), peak0.get("avx2")))
    rows = [b.model(m) for m in a.models]
    peak1 = b.measure_peak("end")
    peak = merge_peaks(peak0, peak1)
    b.log("== FMA peak at the end: AVX-512 %s, AVX2 %s GFLOP/s -> peak %.1f GFLOP/s" % (
        peak1.get("avx512"), peak1.get("avx2"), peak["peak"]))
    for row in rows:
        for e in ENGINES:
            if row.get("flops") and e in row:
                add_rates(row[e], row["flops"], peak["peak"])
    res = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_rev(), "machine": machine_info(), "peak": peak, "pinning": b.pin.note,
        "config": {"models": a.models, "runs": a.runs, "warmup": a.warmup,
                   "budget": a.budget, "quick": a.quick, "cnnc_flags": a.cnnc_flags,
                   "cnnc_from": sorted(a.cnnc_from), "onnx_opset": 13,
                   "rtol": RTOL, "seed": models.SEED, "input_shape": list(models.INPUT_SHAPE)},
        "models": rows, "seconds": time.monotonic() - t0,
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
