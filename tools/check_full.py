#!/usr/bin/python3
"""Full-size check: every model of tools/export_models.py, exported, compiled
with cnnc and run, against PyTorch (see docs/export.md).

    /usr/bin/python3 tools/check_full.py [--cnnc build/compiler/cnnc] [MODEL...]
    /usr/bin/python3 tools/check_full.py --onnx [--opset 17] [MODEL...]

For each model of export_models.py (resnet18 ... mnasnet1_0, shufflenet_v2_x1_0,
convnext_tiny): build it as export_models.py does (torchvision architecture,
torch.manual_seed(0) init), give every BatchNorm non-trivial statistics, and
LayerNorm non-trivial affine parameters and ConvNeXt's layer_scale values of
order 1 instead of 1e-6 (make_golden.randomize_bn; unless --plain-bn) so that
batchnorm folding and the blocks are exercised, export it with
tools/cnnc_export.py into a temporary directory (and check that the YAML is
the committed models/<name>.yaml), compile it with cnnc, link a small driver
with libcnnrt.a, run it on a seeded random normal 1x3x224x224 input, and
compare with PyTorch's eval-mode float32 output.  With --onnx the model is
instead exported by torch.onnx.export (--opset, default 13) and cnnc
compiles the .onnx file (the "yaml" column then shows the opset).

An element passes when |got - want| <= 1e-4 * |want| + 1e-5, the golden
tolerance; the table shows the worst ratio |got - want| / that bound (pass:
<= 1).  It also shows the same ratio between cnnc and PyTorch float64, and
between PyTorch float32 and float64 on the same weights and input: how far
PyTorch itself is from the exact result.  In deep nets the float32 reference
can itself miss the exact result by more than the tolerance; a model then
passes as "pass*" when cnnc is within 2x of PyTorch float32's own distance
from float64 (--strict: no pass*).  Exits 0 when every model passes, 1
otherwise, and 0 with a message when PyTorch or torchvision is not installed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
REL_TOL, ABS_TOL = 1e-4, 1e-5

DRIVER_C = r"""
/* check_full driver: runs the model of MODEL_DESC on DIR/in_<input>.bin,
 * writes DIR/got_<output>.bin and prints the best time of REPS runs. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "cnnrt.h"
extern const cnnrt_model MODEL_DESC;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  const cnnrt_model *m = &MODEL_DESC;
  char path[4096];
  if (argc != 3) return 2;
  int reps = atoi(argv[2]);
  float **in = calloc((size_t)m->num_inputs + 1, sizeof *in);
  float **out = calloc((size_t)m->num_outputs + 1, sizeof *out);
  void *ws = cnnrt_alloc((size_t)m->workspace_size);
  if (!in || !out || !ws) return 2;
  for (int64_t i = 0; i < m->num_inputs; i++) {
    in[i] = cnnrt_alloc((size_t)m->inputs[i].numel * sizeof(float));
    snprintf(path, sizeof path, "%s/in_%s.bin", argv[1], m->inputs[i].name);
    if (!in[i] || cnnrt_read_f32(path, in[i], (size_t)m->inputs[i].numel)) return 2;
  }
  for (int64_t i = 0; i < m->num_outputs; i++)
    if (!(out[i] = cnnrt_alloc((size_t)m->outputs[i].numel * sizeof(float)))) return 2;
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    int rc = m->run((const float *const *)in, out, ws);
    double t = now() - t0;
    if (rc) {
      fprintf(stderr, "run: %s\n", cnnrt_strerror(rc));
      return 1;
    }
    if (t < best) best = t;
  }
  for (int64_t i = 0; i < m->num_outputs; i++) {
    snprintf(path, sizeof path, "%s/got_%s.bin", argv[1], m->outputs[i].name);
    if (cnnrt_write_f32(path, out[i], (size_t)m->outputs[i].numel)) return 2;
  }
  printf("%.3f\n", best * 1e3);
  return 0;
}
"""


def tol_ratio(got, want):
    """max |got - want| / (REL_TOL * |want| + ABS_TOL), in float64."""
    import numpy as np
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want) / (REL_TOL * np.abs(want) + ABS_TOL)))


def run(cmd, what):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s%s" % (what, r.returncode,
                                                         r.stdout[-2000:], r.stderr[-4000:]))
    return r.stdout


def strip_comments(text):
    return "\n".join(l for l in text.splitlines() if not l.startswith("#"))


def check_model(name, args, work):
    import numpy as np
    import torch
    import export_models
    import make_golden
    import cnnc_export

    model = export_models.build(name)
    if not args.plain_bn:
        make_golden.randomize_bn(model, torch.Generator().manual_seed(args.seed))
    model.eval()
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(*export_models.INPUT[1], generator=gen)
    if args.onnx:
        # the file a user has: torch.onnx.export of the same module
        src = os.path.join(d, name + ".onnx")
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), src, opset_version=args.opset, do_constant_folding=True,
                              input_names=[export_models.INPUT[0]], output_names=[export_models.OUTPUT])
        yaml_state = "op%d" % args.opset
        nparams = sum(p.numel() for p in model.parameters()) / 1e6
    else:
        src = os.path.join(d, name + ".yaml")
        ex = cnnc_export.write_model(model, {export_models.INPUT[0]: export_models.INPUT[1]},
                                     name, src, outputs=[export_models.OUTPUT])
        nparams = sum(t.numel() for t in ex.tensors.values()) / 1e6
        committed = os.path.join(ROOT, "models", name + ".yaml")
        if not os.path.exists(committed):
            yaml_state = "missing"
        else:
            with open(committed) as f:
                same = strip_comments(f.read()) == strip_comments(ex.yaml)
            yaml_state = "same" if same else "DIFFERS"

    # Compile and link.
    obj = os.path.join(d, name + ".o")
    t0 = time.time()
    cmd = [args.cnnc, src, "--name", name, "-o", obj] + (["--cpu=" + args.cpu] if args.cpu else []) + \
        args.cnnc_flags.split()
    run(cmd, "cnnc")
    t_compile = time.time() - t0
    drv_c = os.path.join(d, "driver.c")
    with open(drv_c, "w") as f:
        f.write(DRIVER_C)
    exe = os.path.join(d, "driver")
    run([args.cc, "-std=c11", "-O1", "-DMODEL_DESC=%s_model" % name,
         "-I" + os.path.join(ROOT, "runtime"), drv_c, obj, args.runtime, "-o", exe], "link")

    # Input, reference, run.
    np.ascontiguousarray(x.numpy(), dtype="<f4").tofile(
        os.path.join(d, "in_%s.bin" % export_models.INPUT[0]))
    torch.set_num_threads(args.threads)
    with torch.no_grad():
        want = model(x).numpy()
        want64 = model.double()(x.double()).numpy()
    ms = float(run([exe, d, str(args.reps)], "driver").split()[-1])
    got = np.fromfile(os.path.join(d, "got_%s.bin" % export_models.OUTPUT), dtype="<f4")
    got = got.reshape(want.shape)
    err = np.abs(got.astype(np.float64) - want)
    return dict(
        name=name, params=nparams,
        yaml=yaml_state, compile=t_compile, ms=ms,
        maxabs=float(np.max(np.abs(want))), maxerr=float(np.max(err)),
        ratio=tol_ratio(got, want),
        ratio64=tol_ratio(got, want64), ref=tol_ratio(want, want64),
        argmax=int(np.argmax(got)) == int(np.argmax(want)),
        finite=bool(np.all(np.isfinite(got))))


def main():
    p = argparse.ArgumentParser(description="Full-size models: cnnc vs PyTorch.")
    p.add_argument("models", nargs="*", help="only these (default: all of export_models.py)")
    p.add_argument("--cnnc", default=os.path.join(ROOT, "build", "compiler", "cnnc"),
                   help="the cnnc executable (default build/compiler/cnnc)")
    p.add_argument("--runtime", help="libcnnrt.a (default: ../runtime/libcnnrt.a next to "
                   "cnnc's directory)")
    p.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler (default $CC or cc)")
    p.add_argument("--cpu", help="pass --cpu=CPU to cnnc (e.g. x86-64, x86-64-v3)")
    p.add_argument("--cnnc-flags", default="", help="more cnnc options, e.g. '--winograd=off'")
    p.add_argument("--seed", type=int, default=0, help="seed of the input and BN statistics")
    p.add_argument("--plain-bn", action="store_true", help="keep torchvision's initial BN "
                   "statistics (mean 0, var 1, weight 1, bias 0), norm parameters and "
                   "layer_scale")
    p.add_argument("--reps", type=int, default=3, help="timed runs of the compiled model")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    p.add_argument("--strict", action="store_true", help="only the golden tolerance against "
                   "PyTorch float32 passes (no pass*)")
    p.add_argument("--keep", help="work in this directory and keep it")
    p.add_argument("--onnx", action="store_true", help="compile the model exported by "
                   "torch.onnx.export instead of tools/cnnc_export.py's YAML")
    p.add_argument("--opset", type=int, default=13, help="the opset of --onnx (default 13)")
    args = p.parse_args()

    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print("check_full: skipped: PyTorch, torchvision and numpy are needed (%s)" % e)
        return 0
    sys.path.insert(0, TOOLS)
    import export_models
    names = args.models or list(export_models.MODELS)
    unknown = [n for n in names if n not in export_models.MODELS]
    if unknown:
        p.error("unknown model(s): %s" % ", ".join(unknown))
    args.cnnc = os.path.abspath(args.cnnc)
    if not os.access(args.cnnc, os.X_OK):
        p.error("cnnc not found at %s (build it, or give --cnnc)" % args.cnnc)
    if not args.runtime:
        args.runtime = os.path.join(os.path.dirname(os.path.dirname(args.cnnc)), "runtime",
                                    "libcnnrt.a")
    if not os.path.exists(args.runtime):
        p.error("libcnnrt.a not found at %s (give --runtime)" % args.runtime)

    work = args.keep or tempfile.mkdtemp(prefix="cnnc_check_full_")
    os.makedirs(work, exist_ok=True)
    print("tolerance: |got - want| <= %g * |want| + %g elementwise; 'ratio' is the worst "
          "|got - want| / bound (pass <= 1)" % (REL_TOL, ABS_TOL))
    print("columns: vs f32 = cnnc vs PyTorch float32 (the reference), vs f64 = cnnc vs "
          "PyTorch float64, torch f32 = PyTorch float32 vs float64")
    print("pass: vs f32 <= 1; pass*: vs f32 > 1 only because PyTorch's own float32 result "
          "is off: torch f32 > 1 and vs f64 <= 2 * torch f32%s"
          % (" (disabled by --strict)" if args.strict else ""))
    print("BN statistics: %s; input: randn(1, 3, 224, 224), seed %d; cnnc compiles %s"
          % ("torchvision init" if args.plain_bn else "randomised", args.seed,
             "torch.onnx.export's file (opset %d)" % args.opset if args.onnx else "cnnc_export's YAML"))
    hdr = ("%-19s %7s %-7s %8s %9s %9s %10s %8s %8s %9s %6s  %s"
           % ("model", "params", "yaml", "compile", "run", "max|want|", "max err", "vs f32",
              "vs f64", "torch f32", "argmax", "result"))
    print(hdr)
    print("-" * len(hdr))
    failed = 0
    for n in names:
        try:
            r = check_model(n, args, work)
        except Exception as e:  # report and go on with the next model
            failed += 1
            print("%-19s FAIL: %s" % (n, str(e).strip().replace("\n", "\n    ")))
            continue
        strict = r["ratio"] <= 1.0 and r["finite"]
        # The float32 reference itself can miss the exact (float64) result by
        # more than the tolerance in deep nets; then cnnc passes when it is as
        # close to the float64 result as PyTorch's float32 is (within 2x).
        near = (not args.strict and r["finite"] and r["ref"] > 1.0
                and r["ratio64"] <= 2.0 * r["ref"])
        result = "pass" if strict else "pass*" if near else "FAIL"
        failed += result == "FAIL"
        print("%-19s %6.2fM %-7s %7.1fs %7.1fms %9.3g %10.3g %8.3f %8.3f %9.3f %6s  %s"
              % (n, r["params"], r["yaml"], r["compile"], r["ms"], r["maxabs"], r["maxerr"],
                 r["ratio"], r["ratio64"], r["ref"], "same" if r["argmax"] else "DIFF",
                 result))
        sys.stdout.flush()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d models pass" % (len(names) - failed, len(names)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
