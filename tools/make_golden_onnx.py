#!/usr/bin/python3
"""Writes the ONNX golden cases, tests/golden/onnx_<model>_op<N>/.

    /usr/bin/python3 tools/make_golden_onnx.py            # every case
    /usr/bin/python3 tools/make_golden_onnx.py onnx_shuffle_op13
    /usr/bin/python3 tools/make_golden_onnx.py --list

Each model is a small PyTorch module exported by torch.onnx.export (the
TorchScript exporter that PyTorch users run) at opsets 11, 13 and 17, so
the cases see what each opset changes: Split's sizes as an attribute (11)
or an input (13), Clip's bounds as inputs, Resize's attributes,
LayerNormalization as one op (17) or as ReduceMean/Sub/Pow/Sqrt/Div (11,
13), Erf-based GELU, Gemm against MatMul + Add, and the shape arithmetic
(Shape, Gather, Unsqueeze, Concat, Reshape) that view() and flatten()
leave behind.  A case directory holds:

  model.onnx        the exported model (weights inside, or in model.data
                    for the external-data case)
  in_<input>.bin    every graph input, raw little-endian float32
  out_<output>.bin  PyTorch's eval-mode float32 output
  options.txt       extra cnnc options, when the case needs any
                    (--input-shape for a model exported with a dynamic batch)
  case.txt          what the case exercises

tests/unit/test_golden.c compiles model.onnx with `--name <case>` and
compares like every other golden case (1e-4 * |want| + 1e-5).  As in
tools/make_golden.py, the float32 reference must be within a quarter of
that tolerance of a float64 evaluation of the same module, seeds come from
the case name, and rerunning the script reproduces the data.  The .onnx
bytes depend on the installed torch and onnx versions (this repository's
were made with Debian 12's python3-torch and python3-onnx).
"""
import argparse
import io
import os
import shutil
import sys
import warnings
import zlib

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
REL_TOL, ABS_TOL = 1e-4, 1e-5
CHECK_FRACTION = 0.25
OPSETS = (11, 13, 17)

MODELS = {}


def model(name, desc, shape, opsets=OPSETS, dynamic_batch=False, external=False,
          initializers_as_inputs=False):
    def reg(fn):
        MODELS[name] = dict(desc=desc, shape=shape, opsets=opsets, build=fn,
                            dynamic_batch=dynamic_batch, external=external,
                            initializers_as_inputs=initializers_as_inputs)
        return fn
    return reg


def randomize(m, gen):
    """Non-trivial batchnorm statistics and affine parameters (a fresh
    module's are 0/1, which would hide a missing mean or scale)."""
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            mod.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
        elif isinstance(mod, (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)) and \
                getattr(mod, "weight", None) is not None:
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)
    return m


# ---- the models -------------------------------------------------------


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


@model("resnet", "a small ResNet: conv/bn/relu, max pooling, basic blocks with a strided 1x1 "
       "shortcut, global average pooling, flatten and Gemm", [1, 3, 20, 18])
class ResNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 5, 2, 2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer1 = Basic(8, 8, 1)
        self.layer2 = Basic(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c, expand, act):
        super().__init__()
        h = c * expand
        self.pw = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), act())
        self.dw = nn.Sequential(nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), act())
        self.se_reduce = nn.Conv2d(h, 4, 1)
        self.se_expand = nn.Conv2d(4, h, 1)
        self.pwl = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.dw(self.pw(x))
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))))
        return x + self.pwl(y * s)


@model("mobile", "MobileNet pieces: ReLU6 (Clip), depthwise 3x3, squeeze-excite with "
       "HardSigmoid and a broadcast Mul, HardSwish, a residual Add, a dropout and a classifier",
       [1, 3, 16, 16])
class Mobile(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.block1 = InvertedResidual(8, 3, nn.ReLU6)
        self.block2 = InvertedResidual(8, 2, nn.Hardswish)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 5))

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.head(x.mean((2, 3)))


def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, c, h, w)


@model("shuffle", "ShuffleNetV2's unit: chunk (Split), channel shuffle through view / transpose / "
       "view (Reshape and Transpose with shapes computed by Shape/Gather arithmetic), Concat",
       [1, 8, 10, 12])
class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                    nn.Conv2d(4, 4, 3, 1, 1, groups=4, bias=False), nn.BatchNorm2d(4),
                                    nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False), nn.BatchNorm2d(8),
                                  nn.Conv2d(8, 6, 1, bias=False), nn.ReLU())

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        x = channel_shuffle(torch.cat((a, self.branch(b)), dim=1), 2)
        p, q, r = torch.split(x, [2, 4, 2], dim=1)
        x = torch.cat((r, q * 0.5, p), dim=1)
        return self.down(x)


class LayerNorm2d(nn.Module):
    """ConvNeXt's channels-first layer norm, written as torchvision does it."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.LayerNorm(c, eps=1e-6)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.pwconv2 = nn.Linear(4 * c, c)
        self.layer_scale = nn.Parameter(torch.full((c, 1, 1), 0.5))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


@model("convnext", "ConvNeXt pieces: 4x4 patchify conv, channels-first LayerNorm by permutes, "
       "depthwise 7x7, Linear over the last axis (MatMul + Add), exact GELU (Erf), "
       "a layer-scale Mul, LayerNormalization at opset 17 and its decomposition before",
       [1, 3, 16, 16])
class ConvNeXtish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, 4), LayerNorm2d(8))
        self.block = CNBlock(8)
        self.head_norm = nn.LayerNorm(8, eps=1e-6)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.fc(self.head_norm(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


@model("resize", "upsampling: nearest by 2 and by (1.5, 2), bilinear with align_corners "
       "false and true (Resize's coordinate modes; Upsample/Resize by opset), "
       "ConvTranspose with output_padding, reflection Pad and a strided slice",
       [1, 3, 6, 7])
class Resize(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 3, 2, 1, output_padding=1)
        self.conv = nn.Conv2d(10, 4, 3)

    def forward(self, x):
        a = F.interpolate(x, scale_factor=2, mode="nearest")
        b = F.interpolate(x, size=(12, 14), mode="bilinear", align_corners=False)
        c = F.interpolate(x, size=(12, 14), mode="bilinear", align_corners=True)
        d = self.up(x)[:, :, :12, :14]
        y = torch.cat((a + b, c, d), dim=1)
        y = self.conv(F.pad(y, (1, 1, 1, 1), mode="reflect"))
        e = F.interpolate(y, scale_factor=(1.5, 2.0), mode="nearest")
        return e[:, :, 1:-1:2, ::3]


@model("misc", "element-wise and pooling odds: AvgPool with ceil_mode and no padding count, "
       "LeakyReLU, ELU, PReLU, Sigmoid, Tanh, Softplus, Sub/Div/Pow/Sqrt with constants, "
       "Max/Min, ReduceMean/ReduceMax, Softmax and LogSoftmax",
       [2, 4, 9, 7])
class Misc(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.prelu = nn.PReLU(6, 0.2)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        y = self.prelu(self.conv(x))
        y = F.avg_pool2d(y, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        a = F.leaky_relu(y, 0.1) - F.elu(y, 0.7) / 2.0
        b = torch.sigmoid(y) * torch.tanh(y) + F.softplus(y)
        c = torch.sqrt(torch.pow(y, 2.0) + 1.0)
        y = torch.maximum(a, b) + torch.minimum(b, c)
        m = y.mean(dim=(2, 3)) + y.amax(dim=(2, 3)) * 0.25
        z = self.fc(m)
        return torch.cat((F.softmax(z, dim=1), F.log_softmax(z, dim=1)), dim=1)


@model("dynamic", "a model exported with a dynamic batch dimension: cnnc needs "
       "--input-shape (options.txt); Flatten, Gemm", [1, 3, 8, 8], opsets=(13,), dynamic_batch=True)
class Dynamic(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 2)
        self.fc = nn.Linear(36, 3)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))


@model("extdata", "weights as ONNX external data in model.data beside the model", [1, 3, 8, 8],
       opsets=(13,), external=True)
class ExtData(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(y.reshape(y.shape[0], -1))


@model("initinputs", "an older exporter's form: initializers also listed among the graph inputs "
       "(keep_initializers_as_inputs)", [1, 3, 8, 8], opsets=(11,), initializers_as_inputs=True)
class InitInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


# ---- writing ----------------------------------------------------------


def seed_of(name):
    return zlib.crc32(name.encode())


def export(m, x, opset, spec):
    f = io.BytesIO()
    kw = {}
    if spec["dynamic_batch"]:
        kw["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), f, input_names=["x"], output_names=["y"], opset_version=opset,
                          do_constant_folding=True,
                          keep_initializers_as_inputs=spec["initializers_as_inputs"], **kw)
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto)
    return proto


def tol_units(got, want):
    return float(np.max(np.abs(got - want) / (REL_TOL * np.abs(want) + ABS_TOL)))


def write_case(name, spec, opset):
    case = "%s_op%d" % (name, opset)
    cname = "onnx_" + case
    gen = torch.Generator().manual_seed(seed_of(cname))
    torch.manual_seed(seed_of(cname))
    m = randomize(spec["build"](), gen).eval()
    x = torch.randn(spec["shape"], generator=gen)
    with torch.no_grad():
        y = m(x)
        y64 = m.double()(x.double()).float()
        m.float()
    off = tol_units(y.numpy(), y64.numpy())
    if off > CHECK_FRACTION:
        sys.exit("%s: PyTorch float32 is %.2f tolerances from float64; refusing" % (cname, off))
    proto = export(m, x, opset, spec)
    d = os.path.join(GOLDEN, cname)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    path = os.path.join(d, "model.onnx")
    if spec["external"]:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.data", size_threshold=0)
    else:
        onnx.save_model(proto, path)
    np.ascontiguousarray(x.numpy(), dtype="<f4").tofile(os.path.join(d, "in_x.bin"))
    np.ascontiguousarray(y.numpy(), dtype="<f4").tofile(os.path.join(d, "out_y.bin"))
    if spec["dynamic_batch"]:
        with open(os.path.join(d, "options.txt"), "w") as f:
            f.write("--input-shape x=%s\n" % ",".join(str(v) for v in spec["shape"]))
    ops = sorted({n.op_type for n in proto.graph.node})
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write("%s (torch.onnx.export, opset %d)\n\nONNX ops: %s\n\ninput  x %s\noutput y %s\n"
                % (spec["desc"], opset, " ".join(ops), list(x.shape), list(y.shape)))
    print("%-26s opset %2d  %3d nodes  float32 vs float64: %.3f tol  %s" %
          (cname, opset, len(proto.graph.node), off, " ".join(ops)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    todo = [(n, s, o) for n, s in MODELS.items() for o in s["opsets"]]
    if args.list:
        for n, s, o in todo:
            print("onnx_%s_op%d" % (n, o))
        return
    for n, s, o in todo:
        if args.cases and "onnx_%s_op%d" % (n, o) not in args.cases:
            continue
        write_case(n, s, o)


if __name__ == "__main__":
    main()
