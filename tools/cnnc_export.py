#!/usr/bin/python3
"""cnnc_export: turn a PyTorch nn.Module into a cnnc spec (format version 1).

The model is traced with torch.fx (symbolic tracing, eval mode), so any DAG
of supported operations can be exported, not just nn.Sequential chains.
Shapes are propagated once with a random example input of the given input
shapes; they resolve implicit arguments (softmax's legacy dim, negative
axes) and let the exporter recognise `x.view(x.size(0), -1)` as a flatten.

Each traced node becomes at most one spec layer, named after the fx node:
the module path with '.' replaced by '_' (`features.0` -> `features_0`),
or the function's name (`relu`, `flatten_1`) for functional calls.
Parameters are written under those layer names (`<layer>.weight`,
`<layer>.bias`), so the safetensors file always matches the YAML even when
module paths contain dots.  Simplifications done on the way:

  - relu after a conv2d/dense that has no other user (and is no graph
    output) is fused as `activation: relu`;
  - identities (nn.Dropout, nn.Identity, F.dropout, contiguous) vanish;
  - a constant zero F.pad / nn.ZeroPad2d whose only user is a zero-padded
    conv2d is folded into the conv's [top, left, bottom, right] padding;
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
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return list(meta.shape)


def _is_tensor(node):
    return _shape(node) is not None


# Spec names become C identifiers in the generated header.
_C_KEYWORDS = set("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex
_Generic _Imaginary _Noreturn _Static_assert _Thread_local""".split())


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
        if node not in self.alias:
            raise ExportError("%s: input %s is not a supported tensor"
                              % (self.where(user), node.name))
        return self.alias[node]

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
        if not -r <= dim < r:
            raise ExportError("%s: dim %d out of range for rank %d" % (self.where(user), dim, r))
        return dim % r

    # ---- per-kind lowering ---------------------------------------------
    def conv(self, node, m, x):
        if m.padding_mode != "zeros":
            raise ExportError("%s: padding_mode '%s' is not supported (only 'zeros')"
                              % (self.where(node), m.padding_mode))
        if isinstance(m.padding, str):
            pad = m.padding  # 'same' or 'valid', written as PyTorch spells it
        else:
            ph, pw = _pair(m.padding, self.where(node) + " padding")
            pad = [ph, pw, ph, pw]
        if x in self.pending_pad:  # F.pad / ZeroPad2d in front: add it to ours
            if pad == "same":
                raise ExportError("%s: cannot fold an explicit pad into padding='same'"
                                  % self.where(node))
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

    def relu(self, node, x):
        self.add(node, "relu", [self.src(x, node)])

    def flatten(self, node, x, start_dim, end_dim):
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input rank" % self.where(node))
        sd = self.norm_dim(x, start_dim, node)
        ed = self.norm_dim(x, end_dim, node)
        if ed != len(shape) - 1:
            raise ExportError("%s: flatten must end at the last dim (end_dim=%d)"
                              % (self.where(node), end_dim))
        if sd == ed:
            self.alias[node] = self.src(x, node)
            return
        users = self.users(node)
        if (self.fold_flatten and sd == 1 and len(users) == 1 and not self.is_output(node)
                and users[0].op == "call_module"
                and isinstance(self.modules[users[0].target], nn.Linear)):
            self.alias[node] = self.src(x, node)
            return
        self.add(node, "flatten", [self.src(x, node)], start_dim=None if sd == 1 else sd)

    def softmax(self, node, x, dim, log):
        shape = _shape(x)
        if dim is None:  # PyTorch's legacy implicit dim
            dim = 0 if len(shape) in (0, 1, 3) else 1
        axis = self.norm_dim(x, dim, node)
        self.add(node, "log_softmax" if log else "softmax", [self.src(x, node)], axis=axis)

    def zero_pad(self, node, x, pad, mode="constant", value=0.0):
        pad = list(pad)
        if mode != "constant" or (value or 0.0) != 0.0 or len(pad) not in (2, 4):
            raise ExportError("%s: only constant zero padding of the last two dims is "
                              "supported" % self.where(node))
        if len(pad) == 2:
            pad += [0, 0]
        left, right, top, bottom = pad
        if min(pad) < 0:
            raise ExportError("%s: negative padding is not supported" % self.where(node))
        users = self.users(node)
        ok = (len(users) == 1 and not self.is_output(node) and users[0].op == "call_module"
              and isinstance(self.modules[users[0].target], nn.Conv2d))
        if not ok:
            raise ExportError("%s: a pad is only supported when its one user is a conv2d "
                              "(it is folded into the conv's padding)" % self.where(node))
        self.pending_pad[node] = (self.src(x, node), [top, left, bottom, right])

    def reshape_as_flatten(self, node, x):
        src_shape, out_shape = _shape(x), _shape(node)
        if (src_shape is not None and out_shape is not None and len(src_shape) >= 2
                and out_shape == [src_shape[0], int(np.prod(src_shape[1:]))]):
            if len(src_shape) == 2:
                self.alias[node] = self.src(x, node)
            else:
                self.add(node, "flatten", [self.src(x, node)])
            return
        raise ExportError("%s: only view/reshape to [N, -1] (a flatten) is supported, "
                          "%s -> %s" % (self.where(node), src_shape, out_shape))

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
        if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
            self.alias[node] = self.src(x, node)
        elif isinstance(m, nn.Conv2d):
            self.conv(node, m, x)
        elif isinstance(m, nn.MaxPool2d):
            self.pool(node, "maxpool2d", x, m.kernel_size, m.stride, m.padding, m.dilation,
                      m.ceil_mode, return_indices=m.return_indices)
        elif isinstance(m, nn.AvgPool2d):
            self.pool(node, "avgpool2d", x, m.kernel_size, m.stride, m.padding, None,
                      m.ceil_mode, m.count_include_pad, m.divisor_override)
        elif isinstance(m, nn.ReLU):
            self.relu(node, x)
        elif isinstance(m, nn.Flatten):
            self.flatten(node, x, m.start_dim, m.end_dim)
        elif isinstance(m, nn.Linear):
            self.dense(node, m, x)
        elif isinstance(m, nn.Softmax):
            self.softmax(node, x, m.dim, False)
        elif isinstance(m, nn.LogSoftmax):
            self.softmax(node, x, m.dim, True)
        elif isinstance(m, nn.ZeroPad2d):
            self.zero_pad(node, x, m.padding)
        elif isinstance(m, nn.ConstantPad2d):
            self.zero_pad(node, x, m.padding, value=m.value)
        else:
            raise ExportError("unsupported %s" % self.where(node))

    def call_function(self, node, fn, method=False):
        b = _bind(fn, node, method)
        if b is None:
            raise ExportError("unsupported %s" % self.where(node))
        kind, a = b
        x = a["input"]
        if kind == "relu":
            self.relu(node, x)
        elif kind == "identity":
            self.alias[node] = self.src(x, node)
        elif kind == "flatten":
            self.flatten(node, x, a.get("start_dim", 0), a.get("end_dim", -1))
        elif kind in ("softmax", "log_softmax"):
            if a.get("dtype") is not None:
                raise ExportError("%s: dtype is not supported" % self.where(node))
            self.softmax(node, x, a.get("dim"), kind == "log_softmax")
        elif kind == "max_pool2d":
            self.pool(node, "maxpool2d", x, a["kernel_size"], a.get("stride"),
                      a.get("padding", 0), a.get("dilation", 1), a.get("ceil_mode", False),
                      return_indices=a.get("return_indices", False))
        elif kind == "avg_pool2d":
            self.pool(node, "avgpool2d", x, a["kernel_size"], a.get("stride"),
                      a.get("padding", 0), None, a.get("ceil_mode", False),
                      a.get("count_include_pad", True), a.get("divisor_override"))
        elif kind == "pad":
            self.zero_pad(node, x, a["pad"], a.get("mode", "constant"), a.get("value", 0.0))
        elif kind == "reshape":
            self.reshape_as_flatten(node, x)
        else:
            raise ExportError("unsupported %s" % self.where(node))

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
            elif node.op == "call_function":
                if not _is_tensor(node) and node.target in (getattr, operator.getitem):
                    continue  # x.size(0), x.shape[0]: consumed by view/reshape
                self.call_function(node, node.target)
            elif node.op == "call_method":
                if node.target == "size":
                    continue
                self.call_function(node, node.target, method=True)
            elif node.op == "output":
                outputs = _flatten_outputs(node.args[0])
        if self.pending_pad:
            n = next(iter(self.pending_pad))
            raise ExportError("%s: pad was not folded into a conv2d" % self.where(n))
        out_names = []
        for o in outputs:
            if not isinstance(o, torch.fx.Node) or o not in self.alias:
                raise ExportError("model output %r is not a supported tensor" % (o,))
            n = self.alias[o]
            if n not in self.by_name:
                raise ExportError("model output '%s' is a graph input: nothing to compute" % n)
            if n in out_names:
                raise ExportError("model returns layer '%s' twice" % n)
            out_names.append(n)
        self.prune(out_names)
        self.fuse_relu(out_names)
        if names_out:
            self.rename(out_names, names_out)
        return inputs, out_names

    def fuse_relu(self, out_names):
        """relu whose input is a conv2d/dense used by nothing else -> activation."""
        uses = {}
        for l in self.layers:
            for i in l.inputs:
                uses[i] = uses.get(i, 0) + 1
        fused = {}
        for l in self.layers:
            l.inputs = [fused.get(i, i) for i in l.inputs]
            if l.op != "relu":
                continue
            p = self.by_name.get(l.inputs[0])
            if (p is not None and p.op in ("conv2d", "dense") and "activation" not in p.attrs
                    and uses[p.name] == 1 and p.name not in out_names):
                p.attrs["activation"] = "relu"
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


# Functional calls and tensor methods: name -> (kind, positional parameter names).
_FUNCS = {
    F.relu: ("relu", ["input", "inplace"]),
    torch.relu: ("relu", ["input"]),
    F.relu_: ("relu", ["input"]),
    torch.flatten: ("flatten", ["input", "start_dim", "end_dim"]),
    F.softmax: ("softmax", ["input", "dim", "_stacklevel", "dtype"]),
    torch.softmax: ("softmax", ["input", "dim", "dtype"]),
    F.log_softmax: ("log_softmax", ["input", "dim", "_stacklevel", "dtype"]),
    torch.log_softmax: ("log_softmax", ["input", "dim", "dtype"]),
    F.dropout: ("identity", ["input", "p", "training", "inplace"]),
    F.max_pool2d: ("max_pool2d", ["input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"]),
    F.avg_pool2d: ("avg_pool2d", ["input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override"]),
    F.pad: ("pad", ["input", "pad", "mode", "value"]),
    torch.reshape: ("reshape", ["input", "shape"]),
}
_METHODS = {
    "relu": ("relu", ["input"]),
    "relu_": ("relu", ["input"]),
    "flatten": ("flatten", ["input", "start_dim", "end_dim"]),
    "softmax": ("softmax", ["input", "dim", "dtype"]),
    "log_softmax": ("log_softmax", ["input", "dim", "dtype"]),
    "contiguous": ("identity", ["input"]),
    "view": ("reshape", ["input"]),
    "reshape": ("reshape", ["input"]),
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
