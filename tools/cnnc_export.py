#!/usr/bin/python3
"""cnnc_export: turn a PyTorch nn.Module into a cnnc spec (format version 1).

The model is traced with torch.fx (symbolic tracing, eval mode), so any DAG
of supported operations can be exported: residual branches, concatenations,
several inputs and outputs.  Shapes are propagated once with a random example
input of the given input shapes; they resolve implicit arguments (softmax's
legacy dim, negative axes, adaptive pooling's None sizes, reshape targets).
docs/export.md lists every supported module and function and how it maps.

Each traced node becomes a spec layer named after the fx node: the module
path with '.' replaced by '_' (`layer1.0.conv1` -> `layer1_0_conv1`), or the
function's name (`add`, `cat_1`) for functional calls.  Parameters are
written under those layer names (`<layer>.weight`, `<layer>.bias`,
`<layer>.running_mean`, `<layer>.running_var`), so the safetensors file always
matches the YAML.  Simplifications done on the way:

  - an activation (relu, relu6, hardswish, sigmoid, silu, gelu, clip, ...)
    after a conv2d / conv_transpose2d / dense / add / mul that has no other
    user (and is no graph output) is fused as that layer's `activation:`;
  - identities (dropout, nn.Identity, stochastic depth in eval mode,
    contiguous, flatten of one dim) vanish;
  - a constant zero F.pad / nn.ZeroPad2d whose only user is a zero-padded
    conv2d is folded into the conv's [top, left, bottom, right] padding;
    any other pad is a pad layer;
  - arithmetic with Python numbers (x * 0.5 + 1) and channel slices put back
    together (googlenet's transform_input: x[:, k] * a + b, torch.cat) become
    one batchnorm with mean 0, var 1, epsilon 0;
  - x.mean([2, 3]) is global_avgpool2d (+ flatten without keepdim);
    adaptive pooling to 1x1 is global_avgpool2d / global_maxpool2d;
  - optionally (fold_flatten=True) a flatten from dim 1 whose only user is
    a dense layer is dropped, since cnnc's dense flattens a 4D input.

Anything else raises ExportError naming the module or function.

Library use:
    from cnnc_export import export
    ex = export(model, {"image": [1, 1, 28, 28]}, name="fashion_mnist",
                weights="fashion_mnist.safetensors")   # ex.yaml, ex.tensors
    write_model(model, ..., yaml_path="models/fashion_mnist.yaml")

Command line (FACTORY is module:callable returning an nn.Module):
    tools/cnnc_export.py torchvision.models:resnet18 --input x:1,3,224,224 \
        --name resnet18 -o models/resnet18.yaml [--state-dict sd.pt] [--inline]
"""

import argparse
import collections
import importlib
import json
import math
import operator
import os
import struct
import sys

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

FORMAT_VERSION = 1


class ExportError(Exception):
    """A model the exporter cannot express in the cnnc format."""


# --------------------------------------------------------------------------
# safetensors writer (no dependency on the safetensors package)
# --------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as little-endian F32 safetensors.

    Layout: u64 LE header length, JSON header padded with spaces to a
    multiple of 8, then the raw data of every tensor in header order."""
    header = {}
    blobs = []
    offset = 0
    for name in tensors:
        arr = np.ascontiguousarray(
            tensors[name].detach().cpu().to(torch.float32).numpy(), dtype="<f4")
        data = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Reads an F32 safetensors file back into {name: torch.Tensor}."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ExportError("%s: tensor %s has dtype %s, only F32 is supported"
                              % (path, name, info["dtype"]))
        b, e = info["data_offsets"]
        arr = np.frombuffer(buf[base + b:base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


# --------------------------------------------------------------------------
# YAML emission
# --------------------------------------------------------------------------

def _fmt_float(x):
    # repr of the double equal to the float32 value: exact, so the C side
    # reads back the very same float whether it uses strtof or strtod.
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ExportError("non-finite parameter value %r cannot be written inline" % x)
    s = repr(x)
    return s[:-2] if s.endswith(".0") else s


def _fmt_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _fmt_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, torch.Tensor):
        return "[" + ", ".join(_fmt_float(x) for x in
                               v.detach().to(torch.float32).reshape(-1).tolist()) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):  # e.g. activation: {op: leaky_relu, alpha: 0.2}
        return "{" + ", ".join("%s: %s" % (k, _fmt_value(x)) for k, x in v.items()
                               if x is not None) + "}"
    raise TypeError("cannot format %r" % (v,))


class Layer:
    """One spec layer: ordered attributes plus parameters (tensors)."""

    def __init__(self, name, op, inputs, **attrs):
        self.name = name
        self.op = op
        self.inputs = inputs       # list of layer / graph-input names
        self.attrs = dict(attrs)   # insertion ordered; None values are skipped
        self.params = {}           # "weight"/"bias" -> tensor

    def fmt(self, prev, inline):
        items = [("name", self.name), ("op", self.op)]
        if len(self.inputs) == 1:
            if self.inputs[0] != prev:
                items.append(("input", self.inputs[0]))
        else:
            items.append(("inputs", list(self.inputs)))
        items += [(k, v) for k, v in self.attrs.items() if v is not None]
        if inline:
            items += list(self.params.items())
        return "  - {" + ", ".join("%s: %s" % (k, _fmt_value(v)) for k, v in items) + "}"


def _emit_yaml(name, inputs, outputs, layers, weights, inline, header):
    lines = []
    for h in header or []:
        lines.append(("# " + h).rstrip())
    lines.append("cnnc: %d" % FORMAT_VERSION)
    lines.append("name: %s" % name)
    if weights and not inline and any(l.params for l in layers):
        lines.append("weights: %s" % weights)
    lines.append("inputs:")
    for iname, shape in inputs:
        lines.append("  - {name: %s, shape: %s}" % (iname, _fmt_value(list(shape))))
    lines.append("outputs: %s" % _fmt_value(list(outputs)))
    lines.append("layers:")
    prev = inputs[0][0] if inputs else None
    for l in layers:
        lines.append(l.fmt(prev, inline))
        prev = l.name
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Tracing and lowering
# --------------------------------------------------------------------------

def _pair(v, what):
    if isinstance(v, int):
        return [v, v]
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return [int(v[0]), int(v[1])]
    if isinstance(v, (tuple, list)) and len(v) == 1 and isinstance(v[0], int):
        return [int(v[0])] * 2
    raise ExportError("%s: expected an int or a pair of ints, got %r" % (what, v))


def _compact(p, default):
    """[a, a] -> a; the default -> None (omitted)."""
    if p == [default, default]:
        return None
    return p[0] if p[0] == p[1] else p


def _pad4(top, left, bottom, right):
    if top == bottom and left == right:
        if top == left:
            return top or None
        return [top, left]
    return [top, left, bottom, right]


def _shape(node):
    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    if meta is None or not hasattr(meta, "shape"):
        return None
    return list(meta.shape)


def _is_tensor(node):
    return _shape(node) is not None


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Spec names become C identifiers in the generated header.
_C_KEYWORDS = set("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex
_Generic _Imaginary _Noreturn _Static_assert _Thread_local""".split())

# Layers an activation can be fused into (`activation:`), and the
# activations that can be fused (prelu has a parameter: layer only).
_FUSE_INTO = ("conv2d", "conv_transpose2d", "dense", "add", "mul")
_FUSABLE_ACTS = ("relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "hardsigmoid",
                 "hardswish", "silu", "gelu", "gelu_tanh", "clip")


def _clip(lo, hi, where):
    """hardtanh / clamp bounds -> (spec op, attrs)."""
    if lo is not None and not _is_number(lo) or hi is not None and not _is_number(hi):
        raise ExportError("%s: clamp bounds must be numbers (tensor bounds are not "
                          "supported)" % where)
    if lo is None and hi is None:
        raise ExportError("%s: clamp without min and max" % where)
    if lo is not None and hi is not None and float(lo) == 0.0 and float(hi) == 6.0:
        return "relu6", {}
    return "clip", {"min": None if lo is None else float(lo),
                    "max": None if hi is None else float(hi)}


def _module_act(m, where):
    """(spec op, attrs) for an activation module, or None if m is none."""
    if isinstance(m, nn.ReLU):
        return "relu", {}
    if isinstance(m, nn.ReLU6):  # a Hardtanh subclass: test first
        return "relu6", {}
    if isinstance(m, nn.Hardtanh):
        return _clip(m.min_val, m.max_val, where)
    if isinstance(m, nn.LeakyReLU):
        a = float(m.negative_slope)
        return "leaky_relu", {"alpha": None if a == 0.01 else a}
    if isinstance(m, nn.ELU):
        a = float(m.alpha)
        return "elu", {"alpha": None if a == 1.0 else a}
    if isinstance(m, nn.Sigmoid):
        return "sigmoid", {}
    if isinstance(m, nn.Tanh):
        return "tanh", {}
    if isinstance(m, nn.Hardsigmoid):
        return "hardsigmoid", {}
    if isinstance(m, nn.Hardswish):
        return "hardswish", {}
    if isinstance(m, nn.SiLU):
        return "silu", {}
    if isinstance(m, nn.GELU):
        return _gelu(getattr(m, "approximate", "none"), where)
    return None


def _gelu(approximate, where):
    if approximate == "none":
        return "gelu", {}
    if approximate == "tanh":
        return "gelu_tanh", {}
    raise ExportError("%s: GELU approximate='%s' is not supported" % (where, approximate))


class _Affine:
    """A value not yet written as a layer: channels `chans` of layer `src`,
    each scaled and shifted by a constant (y[c] = x[chans[c]] * scale[c] +
    shift[c]).  Made by arithmetic with Python numbers and by channel
    slices such as x[:, 0]; written as a batchnorm (mean 0, var 1, epsilon 0,
    weight = scale, bias = shift) when something else uses it.  This is how
    googlenet's transform_input and scalar normalisations export."""

    def __init__(self, node, src, src_shape, chans, scale, shift, squeezed):
        self.node = node            # the fx node the pending value belongs to
        self.src = src              # layer / input name
        self.src_shape = src_shape  # its shape (rank 2 or 4)
        self.chans = chans          # source channel per value channel
        self.scale = scale
        self.shift = shift
        self.squeezed = squeezed    # x[:, k]: the channel dim was removed

    def derive(self, node, scale=None, shift=None, squeezed=None):
        return _Affine(node, self.src, self.src_shape, self.chans,
                       self.scale if scale is None else scale,
                       self.shift if shift is None else shift,
                       self.squeezed if squeezed is None else squeezed)

    def is_whole(self):
        return not self.squeezed and self.chans == list(range(self.src_shape[1]))


class _Exporter:
    def __init__(self, gm, input_shapes, fold_flatten):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.input_shapes = input_shapes  # forward arg -> (spec name, shape)
        self.fold_flatten = fold_flatten
        self.layers = []          # in topological order
        self.by_name = {}         # layer name -> Layer
        self.alias = {}           # fx node -> layer/input name it evaluates to
        self.pending_pad = {}     # fx node of a folded pad -> (src name, [t,l,b,r])
        self.affine = {}          # fx node -> _Affine (not yet a layer)
        self.taken = set()

    # ---- helpers -------------------------------------------------------
    def where(self, node):
        if node.op == "call_module":
            return "module '%s' (%s)" % (node.target, type(self.modules[node.target]).__name__)
        if node.op in ("call_function", "call_method"):
            t = node.target
            tname = getattr(t, "__name__", str(t))
            return "%s '%s' (node %s)" % (node.op.replace("call_", ""), tname, node.name)
        return "node %s" % node.name

    def src(self, node, user):
        if not isinstance(node, torch.fx.Node):
            raise ExportError("%s: expected a tensor argument, got %r" % (self.where(user), node))
        if node in self.pending_pad:
            raise ExportError("%s: F.pad/ZeroPad2d can only be folded into a following "
                              "zero-padded conv2d" % self.where(node))
        if node in self.affine:
            self.materialise(node, user)
        if node not in self.alias:
            raise ExportError("%s: input %s is not a supported tensor"
                              % (self.where(user), node.name))
        return self.alias[node]

    def materialise(self, node, user):
        """Writes a pending _Affine as a batchnorm layer."""
        a = self.affine.pop(node)
        if not a.is_whole():
            raise ExportError("%s: channel slices (x[:, k]) are only supported when they "
                              "are concatenated back into all channels in order, with "
                              "constant scale and shift" % self.where(user))
        if len(a.src_shape) not in (2, 4):
            raise ExportError("%s: arithmetic with a constant needs a rank-2 or rank-4 "
                              "tensor (it is written as a batchnorm)" % self.where(node))
        self.affine_layer(node, node.name, a)

    def affine_layer(self, node, base, a):
        """The batchnorm layer y = x * scale + shift for a whole _Affine;
        aliases `node` to it when node is given."""
        c = len(a.chans)
        layer = Layer(self.fresh(base), "batchnorm", [a.src], epsilon=0.0)
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        if node is not None:
            self.alias[node] = layer.name
        layer.params["weight"] = torch.tensor(a.scale, dtype=torch.float32)
        layer.params["bias"] = torch.tensor(a.shift, dtype=torch.float32)
        layer.params["running_mean"] = torch.zeros(c)
        layer.params["running_var"] = torch.ones(c)
        return layer

    def fresh(self, base):
        name = base.replace(".", "_")
        if name[:1] == "_" and name[1:2].isdigit():
            name = "layer" + name  # nn.Sequential child '0' traces as '_0'
        if not name or not (name[0].isalpha() or name[0] == "_"):
            name = "layer_" + name
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
        if name in _C_KEYWORDS:
            name += "_"
        cand, k = name, 1
        while cand in self.taken:
            cand = "%s_%d" % (name, k)
            k += 1
        self.taken.add(cand)
        return cand

    def add(self, node, op, inputs, **attrs):
        layer = Layer(self.fresh(node.name), op, inputs, **attrs)
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        self.alias[node] = layer.name
        return layer

    def users(self, node):
        return list(node.users)

    def norm_dim(self, node, dim, user):
        shape = _shape(node)
        if shape is None:
            raise ExportError("%s: unknown input rank" % self.where(user))
        r = len(shape)
        if not isinstance(dim, int) or not -r <= dim < r:
            raise ExportError("%s: dim %r out of range for rank %d" % (self.where(user), dim, r))
        return dim % r

    def need_rank(self, x, node, ranks, what):
        shape = _shape(x)
        if shape is None or len(shape) not in ranks:
            raise ExportError("%s: %s needs a rank %s input, got shape %s"
                              % (self.where(node), what, " or ".join(map(str, ranks)), shape))
        return shape

    # ---- per-kind lowering ---------------------------------------------
    def conv(self, node, m, x):
        if m.padding_mode != "zeros":
            raise ExportError("%s: padding_mode '%s' is not supported (only 'zeros'; use "
                              "an explicit pad layer)" % (self.where(node), m.padding_mode))
        if isinstance(m.padding, str):
            pad = m.padding  # 'same' or 'valid', written as PyTorch spells it
        else:
            ph, pw = _pair(m.padding, self.where(node) + " padding")
            pad = [ph, pw, ph, pw]
        if x in self.pending_pad:  # F.pad / ZeroPad2d in front: add it to ours
            src, extra = self.pending_pad.pop(x)
            base = [0, 0, 0, 0] if pad == "valid" else pad
            pad = [p + e for p, e in zip(base, extra)]
        else:
            src = self.src(x, node)
        if isinstance(pad, list):
            pad = _pad4(*pad)
        layer = self.add(node, "conv2d", [src],
                         filters=m.out_channels,
                         kernel=_compact(_pair(m.kernel_size, "kernel"), None),
                         stride=_compact(_pair(m.stride, "stride"), 1),
                         padding=pad,
                         dilation=_compact(_pair(m.dilation, "dilation"), 1),
                         groups=m.groups if m.groups != 1 else None,
                         bias=None if m.bias is not None else False)
        layer.params["weight"] = m.weight
        if m.bias is not None:
            layer.params["bias"] = m.bias

    def conv_transpose(self, node, m, x):
        if m.padding_mode != "zeros":
            raise ExportError("%s: padding_mode '%s' is not supported"
                              % (self.where(node), m.padding_mode))
        self.need_rank(x, node, (4,), "conv_transpose2d")
        layer = self.add(node, "conv_transpose2d", [self.src(x, node)],
                         filters=m.out_channels,
                         kernel=_compact(_pair(m.kernel_size, "kernel"), None),
                         stride=_compact(_pair(m.stride, "stride"), 1),
                         padding=_compact(_pair(m.padding, "padding"), 0),
                         output_padding=_compact(_pair(m.output_padding, "output_padding"), 0),
                         dilation=_compact(_pair(m.dilation, "dilation"), 1),
                         groups=m.groups if m.groups != 1 else None,
                         bias=None if m.bias is not None else False)
        layer.params["weight"] = m.weight
        if m.bias is not None:
            layer.params["bias"] = m.bias

    def batchnorm(self, node, m, x):
        shape = self.need_rank(x, node, (2, 4), "batchnorm")
        if not m.track_running_stats or m.running_mean is None:
            raise ExportError("%s: batchnorm without running statistics (eval mode would "
                              "use batch statistics)" % self.where(node))
        c = shape[1]
        layer = self.add(node, "batchnorm", [self.src(x, node)],
                         epsilon=None if float(m.eps) == 1e-5 else float(m.eps))
        layer.params["weight"] = m.weight if m.weight is not None else torch.ones(c)
        layer.params["bias"] = m.bias if m.bias is not None else torch.zeros(c)
        layer.params["running_mean"] = m.running_mean
        layer.params["running_var"] = m.running_var

    def pool(self, node, kind, x, kernel, stride, padding, dilation, ceil_mode,
             count_include_pad=True, divisor_override=None, return_indices=False):
        if return_indices:
            raise ExportError("%s: return_indices is not supported" % self.where(node))
        if divisor_override is not None:
            raise ExportError("%s: divisor_override is not supported" % self.where(node))
        k = _pair(kernel, "kernel")
        s = _pair(stride if stride not in (None, [], ()) else kernel, "stride")
        ph, pw = _pair(padding, "padding")
        attrs = dict(kernel=_compact(k, None),
                     stride=None if s == k else _compact(s, None),
                     padding=_pad4(ph, pw, ph, pw))
        if kind == "maxpool2d":
            attrs["dilation"] = _compact(_pair(dilation, "dilation"), 1)
        elif dilation is not None:
            raise ExportError("%s: avgpool2d has no dilation" % self.where(node))
        attrs["ceil_mode"] = True if ceil_mode else None
        if kind == "avgpool2d":
            attrs["count_include_pad"] = None if count_include_pad else False
        self.add(node, kind, [self.src(x, node)], **attrs)

    def adaptive_pool(self, node, x, output_size, is_max):
        shape = self.need_rank(x, node, (4,), "adaptive pooling")
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
            raise ExportError("%s: bad output_size %r" % (self.where(node), output_size))
        oh, ow = [shape[2 + i] if v is None else int(v) for i, v in enumerate(output_size)]
        if (oh, ow) == (1, 1):
            self.add(node, "global_maxpool2d" if is_max else "global_avgpool2d",
                     [self.src(x, node)])
        elif is_max:
            raise ExportError("%s: adaptive max pooling is only supported to 1x1"
                              % self.where(node))
        else:
            self.add(node, "adaptive_avgpool2d", [self.src(x, node)],
                     output_size=oh if oh == ow else [oh, ow])

    def mean(self, node, x, dim, keepdim):
        shape = _shape(x)
        dims = dim if isinstance(dim, (tuple, list)) else [dim]
        if shape is None or len(shape) != 4 or dim is None:
            raise ExportError("%s: mean is only supported over dims [2, 3] of a rank-4 "
                              "tensor" % self.where(node))
        if sorted(self.norm_dim(x, d, node) for d in dims) != [2, 3]:
            raise ExportError("%s: mean is only supported over dims [2, 3] (spatial), "
                              "got %r" % (self.where(node), dim))
        if keepdim:
            self.add(node, "global_avgpool2d", [self.src(x, node)])
            return
        # [N, C, H, W] -> global_avgpool2d [N, C, 1, 1] -> flatten [N, C]
        gap = Layer(self.fresh(node.name + "_pool"), "global_avgpool2d", [self.src(x, node)])
        self.layers.append(gap)
        self.by_name[gap.name] = gap
        self.add(node, "flatten", [gap.name])

    def dense(self, node, m, x):
        shape = _shape(x)
        if shape is not None and len(shape) != 2:
            raise ExportError("%s: nn.Linear on a rank-%d input applies to the last dim; "
                              "cnnc's dense needs [N, features] (flatten first)"
                              % (self.where(node), len(shape)))
        layer = self.add(node, "dense", [self.src(x, node)], units=m.out_features,
                         bias=None if m.bias is not None else False)
        layer.params["weight"] = m.weight
        if m.bias is not None:
            layer.params["bias"] = m.bias

    def act(self, node, x, op, attrs):
        layer = self.add(node, op, [self.src(x, node)], **attrs)
        layer.fusable = op in _FUSABLE_ACTS

    def prelu(self, node, m, x):
        shape = self.need_rank(x, node, (2, 4), "prelu")
        n = m.num_parameters
        if n != 1 and n != shape[1]:
            raise ExportError("%s: num_parameters %d does not match %d channels"
                              % (self.where(node), n, shape[1]))
        layer = self.add(node, "prelu", [self.src(x, node)],
                         num_parameters=None if n == 1 else n)
        layer.params["weight"] = m.weight

    def flatten(self, node, x, start_dim, end_dim):
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input rank" % self.where(node))
        sd = self.norm_dim(x, start_dim, node)
        ed = self.norm_dim(x, end_dim, node)
        if ed != len(shape) - 1:
            self.reshape(node, x)  # flatten of inner dims: a reshape
            return
        if sd == ed:
            self.alias[node] = self.src(x, node)
            return
        users = self.users(node)
        if (self.fold_flatten and sd == 1 and len(users) == 1 and not self.is_output(node)
                and users[0].op == "call_module"
                and isinstance(self.modules[users[0].target], nn.Linear)):
            self.alias[node] = self.src(x, node)
            return
        if sd == 0:
            self.reshape(node, x)
            return
        self.add(node, "flatten", [self.src(x, node)], start_dim=None if sd == 1 else sd)

    def reshape(self, node, x):
        """view / reshape: a flatten when it is one ([N, -1]), else a reshape
        to the traced output shape."""
        src_shape, out_shape = _shape(x), _shape(node)
        if src_shape is None or out_shape is None:
            raise ExportError("%s: unknown shapes" % self.where(node))
        if src_shape == out_shape:
            self.alias[node] = self.src(x, node)
        elif len(src_shape) > 2 and out_shape == [src_shape[0], int(np.prod(src_shape[1:]))]:
            self.add(node, "flatten", [self.src(x, node)])
        else:
            self.add(node, "reshape", [self.src(x, node)], shape=out_shape)

    def softmax(self, node, x, dim, log):
        shape = _shape(x)
        if dim is None:  # PyTorch's legacy implicit dim
            dim = 0 if len(shape) in (0, 1, 3) else 1
        axis = self.norm_dim(x, dim, node)
        self.add(node, "log_softmax" if log else "softmax", [self.src(x, node)], axis=axis)

    def pad(self, node, x, pad, mode="constant", value=0.0):
        """F.pad and the nn.*Pad2d modules.  A constant zero pad whose one user
        is a conv2d is folded into the conv's padding; anything else is a
        pad layer."""
        pad = list(pad)
        if len(pad) not in (2, 4) or not all(isinstance(p, int) for p in pad):
            raise ExportError("%s: only padding of the last two dims is supported, got %r"
                              % (self.where(node), pad))
        if len(pad) == 2:
            pad += [0, 0]
        left, right, top, bottom = pad
        if min(pad) < 0:
            raise ExportError("%s: negative padding (cropping) is not supported"
                              % self.where(node))
        value = 0.0 if value is None else value
        if not _is_number(value):
            raise ExportError("%s: pad value must be a number" % self.where(node))
        self.need_rank(x, node, (4,), "pad")
        modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}
        if mode not in modes:
            raise ExportError("%s: pad mode '%s' is not supported (constant, reflect, "
                              "replicate)" % (self.where(node), mode))
        users = self.users(node)
        if (mode == "constant" and float(value) == 0.0 and len(users) == 1
                and not self.is_output(node) and users[0].op == "call_module"
                and isinstance(self.modules[users[0].target], nn.Conv2d)
                and self.modules[users[0].target].padding_mode == "zeros"
                and self.modules[users[0].target].padding != "same"
                and users[0].args[0] is node):
            self.pending_pad[node] = (self.src(x, node), [top, left, bottom, right])
            return
        self.add(node, "pad", [self.src(x, node)],
                 padding=_pad4(top, left, bottom, right) or 0,
                 mode=None if mode == "constant" else modes[mode],
                 value=float(value) if mode == "constant" and float(value) != 0.0 else None)

    def upsample(self, node, x, size, scale_factor, mode, align_corners):
        shape = self.need_rank(x, node, (4,), "upsample")
        out = _shape(node)
        if mode not in ("nearest", "bilinear"):
            raise ExportError("%s: interpolation mode '%s' is not supported (nearest, "
                              "bilinear)" % (self.where(node), mode))
        scale = []
        for i in (2, 3):
            if out[i] % shape[i]:
                raise ExportError("%s: only integer scale factors are supported (%d -> %d)"
                                  % (self.where(node), shape[i], out[i]))
            scale.append(out[i] // shape[i])
        if scale_factor is not None:
            sf = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor] * 2
            if [float(s) for s in sf] != [float(s) for s in scale]:
                raise ExportError("%s: only integer scale factors are supported, got %r"
                                  % (self.where(node), scale_factor))
        self.add(node, "upsample", [self.src(x, node)],
                 scale=scale[0] if scale[0] == scale[1] else scale,
                 mode=None if mode == "nearest" else mode,
                 align_corners=True if mode == "bilinear" and align_corners else None)

    def binary(self, node, kind, a, b, alpha=1):
        """add / sub / mul / div of two operands, tensors or Python numbers."""
        if alpha != 1:
            raise ExportError("%s: alpha is not supported" % self.where(node))
        ta, tb = isinstance(a, torch.fx.Node), isinstance(b, torch.fx.Node)
        if ta and tb:
            if kind == "sub":  # a - b = a + (b * -1): the negation is a batchnorm
                first = self.src(a, node)
                nb = self.affine_of(b, node)
                if not nb.is_whole():
                    self.src(b, node)  # raises the slice error
                neg = self.affine_layer(None, node.name + "_neg",
                                        nb.derive(None, scale=[-v for v in nb.scale],
                                                  shift=[-v for v in nb.shift]))
                self.add(node, "add", [first, neg.name])
                return
            if kind not in ("add", "mul"):
                raise ExportError("%s: %s of two tensors is not supported (add, sub, mul "
                                  "only)" % (self.where(node), kind))
            self.add(node, kind, [self.src(a, node), self.src(b, node)])
            return
        if not ((ta and _is_number(b)) or (tb and _is_number(a))):
            raise ExportError("%s: unsupported operands %r, %r" % (self.where(node), a, b))
        x, c = (a, float(b)) if ta else (b, float(a))
        base = self.affine_of(x, node)
        if kind == "add":
            shift, scale = [s + c for s in base.shift], None
        elif kind == "sub" and ta:
            shift, scale = [s - c for s in base.shift], None
        elif kind == "sub":  # c - x
            scale, shift = [-s for s in base.scale], [c - s for s in base.shift]
        elif kind == "mul":
            scale, shift = [s * c for s in base.scale], [s * c for s in base.shift]
        elif kind == "div" and ta:
            if c == 0.0:
                raise ExportError("%s: division by zero" % self.where(node))
            scale, shift = [s / c for s in base.scale], [s / c for s in base.shift]
        else:
            raise ExportError("%s: division of a number by a tensor is not supported"
                              % self.where(node))
        self.affine[node] = base.derive(node, scale=scale, shift=shift)

    def affine_of(self, x, user):
        if x in self.affine:
            return self.affine[x]
        shape = _shape(x)
        if shape is None or len(shape) not in (2, 4):
            raise ExportError("%s: arithmetic with a constant needs a rank-2 or rank-4 "
                              "tensor (it is written as a batchnorm)" % self.where(user))
        c = shape[1]
        return _Affine(x, self.src(x, user), shape, list(range(c)), [1.0] * c, [0.0] * c,
                       False)

    def getitem(self, node, x, idx):
        shape = _shape(x)
        full = slice(None, None, None)
        if (shape is not None and len(shape) in (2, 4) and isinstance(idx, tuple)
                and len(idx) == 2 and idx[0] == full):
            c = shape[1]
            if isinstance(idx[1], int) and -c <= idx[1] < c:
                base = self.affine_of(x, node)
                k = idx[1] % c
                self.affine[node] = _Affine(node, base.src, base.src_shape, [base.chans[k]],
                                            [base.scale[k]], [base.shift[k]], True)
                return
            if isinstance(idx[1], slice):
                base = self.affine_of(x, node)
                sel = list(range(c))[idx[1]]
                self.affine[node] = _Affine(node, base.src, base.src_shape,
                                            [base.chans[k] for k in sel],
                                            [base.scale[k] for k in sel],
                                            [base.shift[k] for k in sel], False)
                return
        raise ExportError("%s: indexing %r is not supported (only x[:, k] and x[:, a:b] "
                          "concatenated back in order)" % (self.where(node), idx))

    def unsqueeze(self, node, x, dim):
        if x in self.affine and self.affine[x].squeezed and dim == 1:
            self.affine[node] = self.affine[x].derive(node, squeezed=False)
            return
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input shape" % self.where(node))
        self.reshape(node, x)

    def cat(self, node, tensors, dim):
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise ExportError("%s: expected a list of tensors" % self.where(node))
        out = _shape(node)
        axis = dim % len(out) if isinstance(dim, int) and -len(out) <= dim < len(out) else None
        if axis is None:
            raise ExportError("%s: bad dim %r" % (self.where(node), dim))
        parts = [self.affine.get(t) for t in tensors]
        if axis == 1 and all(p is not None for p in parts):
            p0 = parts[0]
            if all(p.src == p0.src and not p.squeezed for p in parts):
                self.affine[node] = _Affine(node, p0.src, p0.src_shape,
                                            sum((p.chans for p in parts), []),
                                            sum((p.scale for p in parts), []),
                                            sum((p.shift for p in parts), []), False)
                return
        srcs = [self.src(t, node) for t in tensors]
        if len(srcs) == 1:
            self.alias[node] = srcs[0]
            return
        self.add(node, "concat", srcs, axis=None if axis == 1 else axis)

    # ---- dispatch ------------------------------------------------------
    def is_output(self, node):
        return any(u.op == "output" for u in node.users)

    def call_module(self, node):
        m = self.modules[node.target]
        args, kw = node.args, node.kwargs
        if kw:
            raise ExportError("%s: keyword arguments are not supported" % self.where(node))
        x = args[0] if args else None
        if len(args) != 1:
            raise ExportError("%s: expected exactly one input" % self.where(node))
        w = self.where(node)
        act = _module_act(m, w)
        if act is not None:
            self.act(node, x, *act)
        elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout,
                            nn.FeatureAlphaDropout, nn.Identity)):
            self.alias[node] = self.src(x, node)
        elif isinstance(m, nn.Conv2d):
            self.conv(node, m, x)
        elif isinstance(m, nn.ConvTranspose2d):
            self.conv_transpose(node, m, x)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            self.batchnorm(node, m, x)
        elif isinstance(m, nn.MaxPool2d):
            self.pool(node, "maxpool2d", x, m.kernel_size, m.stride, m.padding, m.dilation,
                      m.ceil_mode, return_indices=m.return_indices)
        elif isinstance(m, nn.AvgPool2d):
            self.pool(node, "avgpool2d", x, m.kernel_size, m.stride, m.padding, None,
                      m.ceil_mode, m.count_include_pad, m.divisor_override)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive_pool(node, x, m.output_size, False)
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            if m.return_indices:
                raise ExportError("%s: return_indices is not supported" % w)
            self.adaptive_pool(node, x, m.output_size, True)
        elif isinstance(m, nn.PReLU):
            self.prelu(node, m, x)
        elif isinstance(m, nn.Flatten):
            self.flatten(node, x, m.start_dim, m.end_dim)
        elif isinstance(m, nn.Linear):
            self.dense(node, m, x)
        elif isinstance(m, nn.Softmax):
            self.softmax(node, x, m.dim, False)
        elif isinstance(m, nn.LogSoftmax):
            self.softmax(node, x, m.dim, True)
        elif isinstance(m, nn.ZeroPad2d):
            self.pad(node, x, m.padding)
        elif isinstance(m, nn.ConstantPad2d):
            self.pad(node, x, m.padding, value=m.value)
        elif isinstance(m, nn.ReflectionPad2d):
            self.pad(node, x, m.padding, mode="reflect")
        elif isinstance(m, nn.ReplicationPad2d):
            self.pad(node, x, m.padding, mode="replicate")
        elif isinstance(m, nn.Upsample):
            self.upsample(node, x, m.size, m.scale_factor, m.mode, m.align_corners)
        else:
            raise ExportError("unsupported %s" % w)

    def call_function(self, node, fn, method=False):
        b = _bind(fn, node, method)
        if b is None:
            raise ExportError("unsupported %s" % self.where(node))
        kind, a = b
        x = a.get("input")
        w = self.where(node)
        if kind in _SIMPLE_ACTS:
            self.act(node, x, _SIMPLE_ACTS[kind], {})
        elif kind == "hardtanh":
            self.act(node, x, *_clip(a.get("min_val", -1.0), a.get("max_val", 1.0), w))
        elif kind == "clamp":
            self.act(node, x, *_clip(a.get("min"), a.get("max"), w))
        elif kind == "leaky_relu":
            s = float(a.get("negative_slope", 0.01))
            self.act(node, x, "leaky_relu", {"alpha": None if s == 0.01 else s})
        elif kind == "elu":
            al = float(a.get("alpha", 1.0))
            self.act(node, x, "elu", {"alpha": None if al == 1.0 else al})
        elif kind == "gelu":
            self.act(node, x, *_gelu(a.get("approximate", "none"), w))
        elif kind == "identity":
            self.alias[node] = self.src(x, node)
        elif kind == "stochastic_depth":
            if a.get("training", True) and float(a.get("p", 0.0)) != 0.0:
                raise ExportError("%s: stochastic depth in training mode (export in eval "
                                  "mode)" % w)
            self.alias[node] = self.src(x, node)
        elif kind == "flatten":
            self.flatten(node, x, a.get("start_dim", 0), a.get("end_dim", -1))
        elif kind in ("softmax", "log_softmax"):
            if a.get("dtype") is not None:
                raise ExportError("%s: dtype is not supported" % w)
            self.softmax(node, x, a.get("dim"), kind == "log_softmax")
        elif kind == "max_pool2d":
            self.pool(node, "maxpool2d", x, a["kernel_size"], a.get("stride"),
                      a.get("padding", 0), a.get("dilation", 1), a.get("ceil_mode", False),
                      return_indices=a.get("return_indices", False))
        elif kind == "avg_pool2d":
            self.pool(node, "avgpool2d", x, a["kernel_size"], a.get("stride"),
                      a.get("padding", 0), None, a.get("ceil_mode", False),
                      a.get("count_include_pad", True), a.get("divisor_override"))
        elif kind == "adaptive_avg_pool2d":
            self.adaptive_pool(node, x, a["output_size"], False)
        elif kind == "adaptive_max_pool2d":
            if a.get("return_indices"):
                raise ExportError("%s: return_indices is not supported" % w)
            self.adaptive_pool(node, x, a["output_size"], True)
        elif kind == "mean":
            if a.get("dtype") is not None:
                raise ExportError("%s: dtype is not supported" % w)
            self.mean(node, x, a.get("dim"), a.get("keepdim", False))
        elif kind == "pad":
            self.pad(node, x, a["pad"], a.get("mode", "constant"), a.get("value", 0.0))
        elif kind == "interpolate":
            if a.get("antialias"):
                raise ExportError("%s: antialias is not supported" % w)
            if a.get("recompute_scale_factor"):
                raise ExportError("%s: recompute_scale_factor is not supported" % w)
            self.upsample(node, x, a.get("size"), a.get("scale_factor"),
                          a.get("mode", "nearest"), a.get("align_corners"))
        elif kind == "reshape":
            self.reshape(node, x)
        elif kind == "unsqueeze":
            self.unsqueeze(node, x, a["dim"])
        elif kind in ("add", "sub", "mul", "div"):
            if a.get("out") is not None or a.get("rounding_mode") is not None:
                raise ExportError("%s: out= / rounding_mode are not supported" % w)
            self.binary(node, kind, x, a["other"], a.get("alpha", 1))
        elif kind == "rsub":
            self.binary(node, "sub", a["other"], x, a.get("alpha", 1))
        elif kind == "cat":
            self.cat(node, a["tensors"], a.get("dim", 0))
        elif kind == "getitem":
            self.getitem(node, x, a["idx"])
        else:
            raise ExportError("unsupported %s" % w)

    def run(self, names_out):
        graph = self.gm.graph
        inputs = []
        outputs = []
        for node in graph.nodes:
            if node.op == "placeholder":
                spec_name, shape = self.input_shapes[str(node.target).lstrip("*")]
                name = self.fresh(spec_name)
                if name != spec_name:
                    raise ExportError("input name '%s' is not a C identifier" % spec_name)
                inputs.append((name, shape))
                self.alias[node] = name
            elif node.op == "get_attr":
                raise ExportError("node %s reads parameter '%s' directly; only parameters "
                                  "of supported modules are exported" % (node.name, node.target))
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op in ("call_function", "call_method"):
                if not _is_tensor(node):
                    continue  # x.size(0), x.shape[0], arithmetic on sizes: Python values
                self.call_function(node, node.target, method=node.op == "call_method")
            elif node.op == "output":
                outputs = _flatten_outputs(node.args[0])
        if self.pending_pad:
            n = next(iter(self.pending_pad))
            raise ExportError("%s: pad was not folded into a conv2d" % self.where(n))
        out_names = []
        for o in outputs:
            if not isinstance(o, torch.fx.Node):
                raise ExportError("model output %r is not a supported tensor" % (o,))
            if o in self.affine:
                self.materialise(o, o)
            if o not in self.alias:
                raise ExportError("model output %r is not a supported tensor" % (o,))
            n = self.alias[o]
            if n not in self.by_name:
                raise ExportError("model output '%s' is a graph input: nothing to compute" % n)
            if n in out_names:
                raise ExportError("model returns layer '%s' twice" % n)
            out_names.append(n)
        self.prune(out_names)
        self.fuse_activations(out_names)
        if names_out:
            self.rename(out_names, names_out)
        return inputs, out_names

    def fuse_activations(self, out_names):
        """An activation layer whose input is a conv2d / conv_transpose2d /
        dense / add / mul used by nothing else (and no graph output) becomes
        that layer's `activation:`."""
        uses = {}
        for l in self.layers:
            for i in l.inputs:
                uses[i] = uses.get(i, 0) + 1
        fused = {}
        for l in self.layers:
            l.inputs = [fused.get(i, i) for i in l.inputs]
            if not getattr(l, "fusable", False):
                continue
            p = self.by_name.get(l.inputs[0])
            if (p is not None and p.op in _FUSE_INTO and "activation" not in p.attrs
                    and uses[p.name] == 1 and p.name not in out_names):
                params = {k: v for k, v in l.attrs.items() if v is not None}
                p.attrs["activation"] = dict(op=l.op, **params) if params else l.op
                fused[l.name] = p.name
        self.layers = [l for l in self.layers if l.name not in fused]
        self.by_name = {l.name: l for l in self.layers}
        out_names[:] = [fused.get(o, o) for o in out_names]

    def rename(self, out_names, new_names):
        if len(new_names) != len(out_names):
            raise ExportError("%d output names given for %d model outputs"
                              % (len(new_names), len(out_names)))
        mapping = {}
        for old, new in zip(out_names, new_names):
            if new != old and new in self.by_name:
                raise ExportError("output name '%s' is already a layer name" % new)
            mapping[old] = new
        for l in self.layers:
            l.name = mapping.get(l.name, l.name)
            l.inputs = [mapping.get(i, i) for i in l.inputs]
        self.by_name = {l.name: l for l in self.layers}
        out_names[:] = [mapping[o] for o in out_names]

    def prune(self, out_names):
        """Drops layers no output depends on (e.g. dead branches)."""
        live = set(out_names)
        for l in reversed(self.layers):
            if l.name in live:
                live.update(l.inputs)
        self.layers = [l for l in self.layers if l.name in live]
        self.by_name = {l.name: l for l in self.layers}


def _flatten_outputs(a):
    if isinstance(a, (tuple, list)):
        r = []
        for x in a:
            r += _flatten_outputs(x)
        return r
    if isinstance(a, dict):
        r = []
        for x in a.values():
            r += _flatten_outputs(x)
        return r
    return [a]


# Activations without parameters: bound kind -> spec op.
_SIMPLE_ACTS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
                "hardsigmoid": "hardsigmoid", "hardswish": "hardswish", "silu": "silu"}


def _stochastic_depth_fn():
    try:
        from torchvision.ops import stochastic_depth
        return stochastic_depth
    except Exception:  # torchvision missing or broken: nothing to recognise
        return None


# Functional calls and tensor methods: callable / name -> (kind, positional
# parameter names).  Keyword arguments must be among the names.
_FUNCS = {
    F.relu: ("relu", ["input", "inplace"]),
    torch.relu: ("relu", ["input"]),
    F.relu_: ("relu", ["input"]),
    F.relu6: ("relu6", ["input", "inplace"]),
    F.hardtanh: ("hardtanh", ["input", "min_val", "max_val", "inplace"]),
    torch.clamp: ("clamp", ["input", "min", "max"]),
    torch.clip: ("clamp", ["input", "min", "max"]),
    F.leaky_relu: ("leaky_relu", ["input", "negative_slope", "inplace"]),
    F.elu: ("elu", ["input", "alpha", "inplace"]),
    torch.sigmoid: ("sigmoid", ["input"]),
    F.sigmoid: ("sigmoid", ["input"]),
    torch.tanh: ("tanh", ["input"]),
    F.tanh: ("tanh", ["input"]),
    F.hardsigmoid: ("hardsigmoid", ["input", "inplace"]),
    F.hardswish: ("hardswish", ["input", "inplace"]),
    F.silu: ("silu", ["input", "inplace"]),
    F.gelu: ("gelu", ["input", "approximate"]),
    torch.flatten: ("flatten", ["input", "start_dim", "end_dim"]),
    F.softmax: ("softmax", ["input", "dim", "_stacklevel", "dtype"]),
    torch.softmax: ("softmax", ["input", "dim", "dtype"]),
    F.log_softmax: ("log_softmax", ["input", "dim", "_stacklevel", "dtype"]),
    torch.log_softmax: ("log_softmax", ["input", "dim", "dtype"]),
    F.dropout: ("identity", ["input", "p", "training", "inplace"]),
    F.dropout2d: ("identity", ["input", "p", "training", "inplace"]),
    F.max_pool2d: ("max_pool2d", ["input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"]),
    F.avg_pool2d: ("avg_pool2d", ["input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override"]),
    F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", ["input", "output_size"]),
    F.adaptive_max_pool2d: ("adaptive_max_pool2d", ["input", "output_size", "return_indices"]),
    torch.mean: ("mean", ["input", "dim", "keepdim", "dtype"]),
    F.pad: ("pad", ["input", "pad", "mode", "value"]),
    F.interpolate: ("interpolate", ["input", "size", "scale_factor", "mode", "align_corners",
                                    "recompute_scale_factor", "antialias"]),
    torch.reshape: ("reshape", ["input", "shape"]),
    torch.unsqueeze: ("unsqueeze", ["input", "dim"]),
    torch.add: ("add", ["input", "other", "alpha", "out"]),
    torch.mul: ("mul", ["input", "other", "out"]),
    torch.sub: ("sub", ["input", "other", "alpha", "out"]),
    torch.div: ("div", ["input", "other", "rounding_mode", "out"]),
    operator.add: ("add", ["input", "other"]),
    operator.iadd: ("add", ["input", "other"]),
    operator.mul: ("mul", ["input", "other"]),
    operator.imul: ("mul", ["input", "other"]),
    operator.sub: ("sub", ["input", "other"]),
    operator.isub: ("sub", ["input", "other"]),
    operator.truediv: ("div", ["input", "other"]),
    operator.itruediv: ("div", ["input", "other"]),
    torch.cat: ("cat", ["tensors", "dim", "out"]),
    torch.concat: ("cat", ["tensors", "dim", "out"]),
    operator.getitem: ("getitem", ["input", "idx"]),
}
if _stochastic_depth_fn() is not None:
    _FUNCS[_stochastic_depth_fn()] = ("stochastic_depth", ["input", "p", "mode", "training"])

_METHODS = {
    "relu": ("relu", ["input"]),
    "relu_": ("relu", ["input"]),
    "sigmoid": ("sigmoid", ["input"]),
    "sigmoid_": ("sigmoid", ["input"]),
    "tanh": ("tanh", ["input"]),
    "tanh_": ("tanh", ["input"]),
    "clamp": ("clamp", ["input", "min", "max"]),
    "clamp_": ("clamp", ["input", "min", "max"]),
    "clip": ("clamp", ["input", "min", "max"]),
    "flatten": ("flatten", ["input", "start_dim", "end_dim"]),
    "softmax": ("softmax", ["input", "dim", "dtype"]),
    "log_softmax": ("log_softmax", ["input", "dim", "dtype"]),
    "contiguous": ("identity", ["input", "memory_format"]),
    "view": ("reshape", ["input"]),
    "reshape": ("reshape", ["input"]),
    "unsqueeze": ("unsqueeze", ["input", "dim"]),
    "mean": ("mean", ["input", "dim", "keepdim", "dtype"]),
    "add": ("add", ["input", "other", "alpha"]),
    "add_": ("add", ["input", "other", "alpha"]),
    "mul": ("mul", ["input", "other"]),
    "mul_": ("mul", ["input", "other"]),
    "sub": ("sub", ["input", "other", "alpha"]),
    "sub_": ("sub", ["input", "other", "alpha"]),
    "div": ("div", ["input", "other", "rounding_mode"]),
    "div_": ("div", ["input", "other", "rounding_mode"]),
    "__rsub__": ("rsub", ["input", "other"]),
}


def _bind(fn, node, method):
    entry = _METHODS.get(fn) if method else _FUNCS.get(fn)
    if entry is None:
        return None
    kind, names = entry
    a = {}
    if kind == "reshape":  # view(*shape): only the input matters
        a["input"] = node.args[0]
        return kind, a
    if len(node.args) > len(names):
        return None
    for n, v in zip(names, node.args):
        a[n] = v
    for k, v in node.kwargs.items():
        if k not in names:
            return None
        a[k] = v
    if kind == "flatten" and method:
        a.setdefault("start_dim", 0)
    if kind == "identity" and a.get("training"):
        raise ExportError("node %s: dropout with training=True (export in eval mode)"
                          % node.name)
    return kind, a


def trace(model):
    """Symbolically traces `model` in eval mode; returns the GraphModule."""
    model = model.eval()
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as e:  # data-dependent control flow and the like
        raise ExportError("torch.fx cannot trace %s: %s" % (type(model).__name__, e)) from e


Exported = collections.namedtuple("Exported", "yaml tensors inputs outputs")
Exported.__doc__ = """yaml: the spec text; tensors: {safetensors key: tensor};
inputs: [(name, shape)]; outputs: [layer name] (graph outputs, in order)."""


def export(model, inputs, name, weights=None, outputs=None, inline=False,
           header=None, fold_flatten=False):
    """Returns an Exported(yaml, tensors, inputs, outputs).

    inputs:  {name: shape}, one per forward argument.  When the names are the
             forward arguments' names they are matched by name; otherwise in
             order, and the given names become the spec's input names.
    outputs: optional new names for the model's outputs, in return order.
    weights: the `weights:` file name written into the YAML (relative to it).
    inline:  put every parameter into the YAML instead (no weights file).
    header:  comment lines for the top of the file."""
    if not name.isidentifier():
        raise ExportError("model name '%s' is not a C identifier" % name)
    gm = trace(model)
    given = [(k, [int(d) for d in v]) for k, v in inputs.items()]
    placeholders = [str(n.target).lstrip("*") for n in gm.graph.nodes
                    if n.op == "placeholder"]
    if set(placeholders) == set(k for k, _ in given):
        shapes = {k: (k, v) for k, v in given}
    elif len(given) == len(placeholders):
        shapes = {p: kv for p, kv in zip(placeholders, given)}
    else:
        raise ExportError("the model's forward takes %d input(s) (%s), %d shape(s) given"
                          % (len(placeholders), ", ".join(placeholders), len(given)))
    examples = [torch.randn(*shapes[p][1]) for p in placeholders]
    with torch.no_grad():
        ShapeProp(gm).propagate(*examples)
    ex = _Exporter(gm, shapes, fold_flatten)
    in_list, out_names = ex.run(outputs)
    tensors = {}
    for l in ex.layers:
        for pname, t in l.params.items():
            tensors["%s.%s" % (l.name, pname)] = t.detach().to(torch.float32).contiguous()
    if not inline and tensors and not weights:
        raise ExportError("the model has parameters: give a weights file name or inline=True")
    text = _emit_yaml(name, in_list, out_names, ex.layers, weights, inline, header)
    return Exported(text, tensors, in_list, out_names)


def write_model(model, inputs, name, yaml_path, outputs=None, inline=False,
                header=None, fold_flatten=False):
    """Exports `model` to yaml_path and, unless inline, to a safetensors file
    of the same stem next to it.  Returns the Exported result."""
    stem = os.path.splitext(os.path.basename(yaml_path))[0]
    wname = None if inline else stem + ".safetensors"
    ex = export(model, inputs, name, weights=wname, outputs=outputs,
                inline=inline, header=header, fold_flatten=fold_flatten)
    text, tensors = ex.yaml, ex.tensors
    d = os.path.dirname(yaml_path) or "."
    if wname and tensors:
        write_safetensors(os.path.join(d, wname), tensors,
                          metadata={"format": "pt", "producer": "cnnc_export"})
    tmp = yaml_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, yaml_path)
    return ex


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _parse_input(s):
    if ":" not in s:
        raise argparse.ArgumentTypeError("expected NAME:D0,D1,... got '%s'" % s)
    name, dims = s.split(":", 1)
    try:
        shape = [int(d) for d in dims.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("bad shape '%s'" % dims)
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError("bad shape '%s'" % dims)
    return name, shape


def _load_factory(spec, kwargs):
    if ":" not in spec:
        raise ExportError("FACTORY must be module:callable, got '%s'" % spec)
    mod, attr = spec.split(":", 1)
    sys.path.insert(0, os.getcwd())
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    model = obj(**kwargs)
    if not isinstance(model, nn.Module):
        raise ExportError("%s did not return an nn.Module" % spec)
    return model


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Export a PyTorch nn.Module to a cnnc spec (YAML) plus safetensors.")
    p.add_argument("factory", help="module:callable that returns the nn.Module")
    p.add_argument("--kwargs", default="{}", help="JSON keyword arguments for the factory")
    p.add_argument("--input", action="append", type=_parse_input, required=True,
                   metavar="NAME:SHAPE", help="graph input and its shape, e.g. x:1,3,224,224 "
                   "(once per forward argument, in order)")
    p.add_argument("--name", required=True, help="model name (a C identifier)")
    p.add_argument("--output-name", action="append", default=None,
                   help="rename the model's outputs, in return order")
    p.add_argument("--state-dict", help="load this state_dict (.pt via torch.load, or "
                   ".safetensors) before exporting")
    p.add_argument("--inline", action="store_true", help="write parameters into the YAML")
    p.add_argument("-o", "--output", required=True, help="YAML path; the safetensors file "
                   "goes next to it with the same stem")
    args = p.parse_args(argv)
    try:
        model = _load_factory(args.factory, json.loads(args.kwargs))
        if args.state_dict:
            if args.state_dict.endswith(".safetensors"):
                sd = read_safetensors(args.state_dict)
            else:
                sd = torch.load(args.state_dict, map_location="cpu")
            model.load_state_dict(sd)
        header = ["Generated by tools/cnnc_export.py from %s; do not edit." % args.factory]
        write_model(model, dict(args.input), args.name, args.output,
                    outputs=args.output_name, inline=args.inline, header=header)
    except ExportError as e:
        print("cnnc_export: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
