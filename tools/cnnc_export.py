#!/usr/bin/python3
"""cnnc_export: turn a PyTorch nn.Module into a cnnc spec (format version 1).

The model is traced with torch.fx in eval mode by a tracer that also runs
the model on example inputs of the given shapes (_Tracer): every traced
value has a concrete example, so `x.size()`, `x.shape`, `x.dim()` and
`len(x)` are Python constants for the fixed input shapes (ShuffleNetV2's
channel_shuffle unpacks `x.size()`), while the graph stays symbolic in the
tensors.  Any DAG of supported operations can be exported: residual
branches, concatenations, splits, several inputs and outputs.
docs/export.md lists every supported module and function and how it maps.

Names are PyTorch's.  A module call becomes a layer named by the module's
path (`layer1.0.conv1`, `features.3.conv.0.1`, `0` in an nn.Sequential),
so its parameters are written under the module's state_dict keys
(`layer1.0.conv1.weight`, `layer1.0.bn1.running_var`): the YAML reads a
state_dict saved as safetensors (tools/pt2safetensors.py) as it is.  A
functional call gets the path of the module whose forward makes it plus the
function's name (`layer1.0.add`, `stage2.1.chunk`, `flatten` at the top
level), numbered `_1`, `_2`, ... when repeated; so does the second call of
one module (`layer1.0.relu_1`).  Simplifications on the way:

  - an activation after a conv2d / conv_transpose2d / dense / linear / add /
    mul / sub / div / max / min that has no other user (and is no graph
    output) is fused as that layer's `activation:`;
  - identities (dropout, nn.Identity, stochastic depth in eval mode,
    contiguous, flatten of one dim) vanish;
  - a constant zero F.pad / nn.ZeroPad2d whose only user is a zero-padded
    conv2d is folded into the conv's [top, left, bottom, right] padding;
  - arithmetic with Python numbers (x * 0.5 + 1, -x, 1 - x) becomes one
    `scale` layer; channel slices put back together with per-channel
    constants (googlenet's transform_input: x[:, k] * a + b, torch.cat) one
    batchnorm with mean 0, var 1, epsilon 0;
  - x.mean([2, 3]) is global_avgpool2d (+ flatten without keepdim);
    adaptive pooling to 1x1 is global_avgpool2d / global_maxpool2d;
  - operations on parameters and constants alone are computed here
    (constant folding); a parameter used as a tensor (ConvNeXt's
    layer_scale) is a `constant` layer;
  - optionally (fold_flatten=True) a flatten from dim 1 whose only user is
    a dense layer is dropped, since cnnc's dense flattens a 4D input.

Parameters that are not in the model's state_dict (weight 1 and bias 0 of a
BatchNorm without affine parameters, the batchnorm of transform_input,
folded constants) are written inline when small, so that the YAML with a
plain state_dict file still has every parameter.

Anything else raises ExportError naming the module or function.

Library use:
    from cnnc_export import export
    ex = export(model, {"image": [1, 1, 28, 28]}, name="fashion_mnist",
                weights="fashion_mnist.safetensors")   # ex.yaml, ex.tensors
    write_model(model, ..., yaml_path="models/fashion_mnist.yaml")

Command line (FACTORY is module:callable returning an nn.Module):
    tools/cnnc_export.py torchvision.models:resnet18 --input x:1,3,224,224 \\
        --name resnet18 -o models/resnet18.yaml [--state-dict sd.pt] [--inline]
"""

import argparse
import collections
import importlib
import json
import math
import operator
import os
import re
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
# safetensors writer and reader (no dependency on the safetensors package)
# --------------------------------------------------------------------------

# torch dtype <-> safetensors dtype name
_ST_DTYPES = [(torch.float64, "F64"), (torch.float32, "F32"), (torch.float16, "F16"),
              (torch.bfloat16, "BF16"), (torch.int64, "I64"), (torch.int32, "I32"),
              (torch.int16, "I16"), (torch.int8, "I8"), (torch.uint8, "U8"),
              (torch.bool, "BOOL")]
_ST_NAME = {t: n for t, n in _ST_DTYPES}
_ST_TORCH = {n: t for t, n in _ST_DTYPES}


def _tensor_bytes(t):
    """The little-endian bytes of a CPU tensor, row-major."""
    t = t.detach().cpu().contiguous().reshape(-1)
    if sys.byteorder != "little" and t.element_size() > 1:
        raise ExportError("writing safetensors needs a little-endian host")
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None, keep_dtype=False):
    """Writes {name: tensor} as a safetensors file.

    Every tensor is written as little-endian F32 unless keep_dtype, when each
    keeps its dtype (I64 for BatchNorm's num_batches_tracked, F16, ...).
    Layout: u64 LE header length, JSON header padded with spaces to a
    multiple of 8, then the raw data of every tensor in header order.  The
    file is written next to `path` and renamed into place."""
    header = {}
    blobs = []
    offset = 0
    for name in tensors:
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise ExportError("%s: '%s' is not a tensor (%s)" % (path, name, type(t).__name__))
        t = t.detach()
        if not keep_dtype:
            t = t.to(torch.float32)
        if t.dtype not in _ST_NAME:
            raise ExportError("%s: tensor '%s' has dtype %s, which safetensors cannot hold"
                              % (path, name, t.dtype))
        data = _tensor_bytes(t)
        header[name] = {"dtype": _ST_NAME[t.dtype], "shape": list(t.shape),
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


def read_safetensors(path, keep_dtype=False):
    """Reads a safetensors file back into {name: torch.Tensor}: F32 tensors
    only, unless keep_dtype (then every dtype of write_safetensors)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in _ST_TORCH or (dt != "F32" and not keep_dtype):
            raise ExportError("%s: tensor %s has dtype %s, only F32 is supported"
                              % (path, name, dt))
        b, e = info["data_offsets"]
        raw = bytearray(buf[base + b:base + e])
        tdt = _ST_TORCH[dt]
        if tdt == torch.bool:
            t = torch.frombuffer(raw, dtype=torch.uint8).to(torch.bool) if raw else \
                torch.zeros(0, dtype=torch.bool)
        elif raw:
            t = torch.frombuffer(raw, dtype=tdt)
        else:
            t = torch.zeros(0, dtype=tdt)
        out[name] = t.reshape(info["shape"]).clone()
    return out


# --------------------------------------------------------------------------
# YAML emission
# --------------------------------------------------------------------------

def _fmt_float(x):
    # repr of the double: exact, so the C side reads back the very same
    # float whether it uses strtof or strtod (float32 values are exact in it).
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ExportError("non-finite value %r cannot be written into the YAML" % x)
    s = repr(x)
    return s[:-2] if s.endswith(".0") else s


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}


class Name(str):
    """A layer or input name: written plain when YAML reads it back as that
    string (`conv1`, `layer1.0.conv1`), else double-quoted (`"0"`, `"a b"`)."""


def _fmt_name(s):
    s = str(s)
    if _PLAIN_NAME.match(s) and s.lower() not in _YAML_WORDS:
        return s
    return json.dumps(s, ensure_ascii=False)  # a valid YAML double-quoted scalar


def _fmt_value(v):
    if isinstance(v, Name):
        return _fmt_name(v)
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


# Parameters the exporter makes up (not in the state_dict) go inline up to
# this many values, so that a plain state_dict file is a complete weights file.
INLINE_SYNTHETIC = 64


class Layer:
    """One spec layer: ordered attributes plus parameters (tensors)."""

    def __init__(self, name, op, inputs, **attrs):
        self.name = name
        self.op = op
        self.inputs = inputs       # list of layer / graph-input names
        self.attrs = dict(attrs)   # insertion ordered; None values are skipped
        self.params = {}           # "weight"/"bias"/... -> tensor
        self.synthetic = set()     # params not taken from the model's state
        self.outputs = None        # split: the names of its parts
        self.fusable = False       # an activation that may fuse into its input

    def names(self):
        """The names other layers use for this layer's results."""
        return list(self.outputs) if self.outputs else [self.name]

    def inline_keys(self, inline):
        """The parameters written into the YAML rather than the weights file."""
        return [k for k, v in self.params.items()
                if inline or (k in self.synthetic and v.numel() <= INLINE_SYNTHETIC)]

    def fmt(self, prev, inline):
        items = [("name", Name(self.name)), ("op", self.op)]
        if not self.inputs:
            items.append(("inputs", []))  # a constant: no default input
        elif len(self.inputs) == 1:
            if self.inputs[0] != prev:
                items.append(("input", Name(self.inputs[0])))
        else:
            items.append(("inputs", [Name(i) for i in self.inputs]))
        items += [(k, v) for k, v in self.attrs.items() if v is not None]
        if self.outputs:
            items.append(("outputs", [Name(o) for o in self.outputs]))
        items += [(k, self.params[k]) for k in self.inline_keys(inline)]
        return "  - {" + ", ".join("%s: %s" % (k, _fmt_value(v)) for k, v in items) + "}"


def _emit_yaml(name, inputs, outputs, layers, weights, inline, header):
    lines = []
    for h in header or []:
        lines.append(("# " + h).rstrip())
    lines.append("cnnc: %d" % FORMAT_VERSION)
    lines.append("name: %s" % name)
    in_file = [k for l in layers for k in l.params if k not in l.inline_keys(inline)]
    if weights and in_file:
        lines.append("weights: %s" % _fmt_name(weights))
    lines.append("inputs:")
    for iname, shape in inputs:
        lines.append("  - {name: %s, shape: %s}" % (_fmt_name(iname), _fmt_value(list(shape))))
    lines.append("outputs: %s" % _fmt_value([Name(o) for o in outputs]))
    lines.append("layers:")
    prev = inputs[0][0] if inputs else None
    for l in layers:
        lines.append(l.fmt(prev, inline))
        prev = l.names()[-1]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Tracing: torch.fx with concrete example values
# --------------------------------------------------------------------------

_VAL = "cnnc_value"   # node.meta key: the value on the example inputs (while tracing)
_SCOPE = "cnnc_scope"  # node.meta key: path of the module whose forward made the node

# Tensor methods and attributes that describe the shape, not the data: with
# fixed input shapes they are constants, so they are answered from the
# example values instead of being traced.
_SHAPE_METHODS = {"size", "dim", "ndimension", "numel", "nelement", "element_size",
                  "is_contiguous", "is_floating_point", "get_device"}
_SHAPE_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda", "layout", "requires_grad",
                "is_sparse", "is_quantized", "is_meta"}


def _leaf_types():
    """Modules outside torch.nn that the exporter maps as a whole."""
    global _LEAF_TYPES
    if _LEAF_TYPES is None:
        types = []
        try:
            from torchvision.models.convnext import LayerNorm2d
            types.append(LayerNorm2d)
        except Exception:  # torchvision missing or different: nothing to add
            pass
        try:
            from torchvision.ops.misc import Permute
            types.append(Permute)
        except Exception:
            pass
        _LEAF_TYPES = tuple(types)
    return _LEAF_TYPES


_LEAF_TYPES = None


class _Proxy(torch.fx.Proxy):
    """A proxy whose shape queries return the example value's."""

    def _value(self):
        node = self.__dict__.get("node")
        return node.meta.get(_VAL) if node is not None else None

    def __getattr__(self, k):
        v = self._value()
        if isinstance(v, torch.Tensor) and k in _SHAPE_ATTRS:
            return getattr(v, k)
        if isinstance(v, torch.Tensor) and hasattr(v, k) and not callable(getattr(v, k)):
            # a tensor-valued attribute such as x.T: traced right away
            return self.tracer.create_proxy("call_function", getattr, (self, k), {})
        return super().__getattr__(k)

    def __len__(self):
        v = self._value()
        if isinstance(v, (torch.Tensor, tuple, list)):
            return len(v)
        return super().__len__()

    def __iter__(self):
        # torch.fx's own __iter__ reads the caller's bytecode for the
        # unpacking length, which fails on Python 3.11; the value knows it.
        v = self._value()
        if isinstance(v, (torch.Tensor, tuple, list)):
            return iter([self[i] for i in range(len(v))])
        return super().__iter__()


class _Tracer(torch.fx.Tracer):
    """torch.fx's symbolic tracer, plus: every node is also evaluated on the
    example inputs (so the shape queries of _SHAPE_METHODS and _SHAPE_ATTRS
    are constants, and `len`, iteration and unpacking of tuples work), each
    node records the module whose forward made it (for names), and the
    modules of _leaf_types() are leaves."""

    def __init__(self, examples, leaf_types=()):
        super().__init__()
        self.examples = examples      # placeholder name -> example tensor
        self.leaf_types = tuple(leaf_types)
        self.scope = []               # paths of the modules being traced through
        self.concrete = 0             # > 0 while evaluating example values

    def proxy(self, node):
        return _Proxy(node, self)

    def is_leaf_module(self, m, qualname):
        return isinstance(m, self.leaf_types) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        if self.concrete:  # evaluating: a plain call
            return forward(*args, **kwargs)
        self.scope.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.scope.pop()

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self.concrete:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def iter(self, obj):
        v = obj._value() if isinstance(obj, _Proxy) else None
        if isinstance(v, (torch.Tensor, tuple, list)):
            return iter([obj[i] for i in range(len(v))])
        return super().iter(obj)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta[_SCOPE] = self.scope[-1] if self.scope else ""
        return node

    def _concrete_of(self, a):
        if isinstance(a, torch.fx.Proxy):
            a = a.node
        if isinstance(a, torch.fx.Node):
            if _VAL not in a.meta:
                if a.op == "get_attr":  # made by create_arg for a parameter
                    self.concrete += 1
                    try:
                        return _fetch_attr(self.root, a.target)
                    finally:
                        self.concrete -= 1
                raise ExportError("node %s has no example value" % a.name)
            return a.meta[_VAL]
        if isinstance(a, tuple) and hasattr(a, "_fields"):  # a namedtuple
            return type(a)(*[self._concrete_of(x) for x in a])
        if isinstance(a, (tuple, list)):
            return type(a)(self._concrete_of(x) for x in a)
        if isinstance(a, dict):
            return {k: self._concrete_of(x) for k, x in a.items()}
        if isinstance(a, slice):
            return slice(self._concrete_of(a.start), self._concrete_of(a.stop),
                         self._concrete_of(a.step))
        return a

    def _evaluate(self, kind, target, args, kwargs):
        if kind == "placeholder":
            name = str(target).lstrip("*")
            if name not in self.examples:
                raise ExportError("no example input for forward argument '%s'" % name)
            return self.examples[name]
        self.concrete += 1  # plain calls and attribute lookups from here
        try:
            if kind == "get_attr":
                return _fetch_attr(self.root, target)
            cargs, ckwargs = self._concrete_of(args), self._concrete_of(kwargs)
            with torch.no_grad():
                if kind == "call_function":
                    return target(*cargs, **ckwargs)
                if kind == "call_method":
                    return getattr(cargs[0], target)(*cargs[1:], **ckwargs)
                if kind == "call_module":
                    return self.root.get_submodule(target)(*cargs, **ckwargs)
        except ExportError:
            raise
        except Exception as e:
            raise ExportError("evaluating %s %s on the example inputs failed: %s"
                              % (kind, getattr(target, "__name__", target), e)) from e
        finally:
            self.concrete -= 1
        raise ExportError("cannot evaluate a '%s' node" % kind)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None,
                     proxy_factory_fn=None):
        value = self._evaluate(kind, target, args, kwargs)
        if kind == "call_method" and target in _SHAPE_METHODS:
            return value  # a constant for the fixed input shapes
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr,
                                     proxy_factory_fn)
        proxy.node.meta[_VAL] = value
        return proxy


def _fetch_attr(root, target):
    obj = root
    for part in str(target).split("."):
        obj = getattr(obj, part)
    return obj


def trace(model, inputs):
    """Traces `model` in eval mode; returns the GraphModule.  inputs:
    {forward argument: example tensor or shape}.  Every node's
    node.meta['cnnc_scope'] is the path of the module whose forward made it."""
    model = model.eval()
    examples = {k: v if isinstance(v, torch.Tensor) else torch.randn(*v)
                for k, v in inputs.items()}
    tracer = _Tracer(examples, _leaf_types())
    try:
        graph = tracer.trace(model)
    except ExportError:
        raise
    except Exception as e:  # data-dependent control flow and the like
        raise ExportError("torch.fx cannot trace %s: %s" % (type(model).__name__, e)) from e
    for n in graph.nodes:
        n.meta.pop(_VAL, None)
    return torch.fx.GraphModule(tracer.root, graph, type(model).__name__)


# --------------------------------------------------------------------------
# Lowering
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


def _meta(node):
    return node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None


def _shape(node):
    meta = _meta(node)
    if meta is None or not hasattr(meta, "shape"):
        return None
    return list(meta.shape)


def _is_tensor(node):
    return _shape(node) is not None


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(v):
    """A Python number as int when integral (for exponents, scales in YAML)."""
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 2**31 else v


# Layers an activation can be fused into (`activation:`), and the
# activations that can be fused (prelu has a parameter: layer only).
_FUSE_INTO = ("conv2d", "conv_transpose2d", "dense", "linear", "add", "mul", "sub", "div",
              "max", "min")
_FUSABLE_ACTS = ("relu", "relu6", "leaky_relu", "elu", "selu", "sigmoid", "tanh",
                 "hardsigmoid", "hardswish", "silu", "gelu", "gelu_tanh", "softplus", "clip",
                 "exp", "neg", "abs", "sqrt", "reciprocal", "erf", "pow", "scale")


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


def _softplus(beta, threshold, where):
    """softplus(x) = log(1 + exp(beta x)) / beta; PyTorch returns x itself
    where beta x > threshold, which is the same within float32 rounding
    (relative difference below exp(-threshold) / threshold) for thresholds
    of 10 and more (the default is 20)."""
    beta, threshold = float(beta), float(threshold)
    if beta <= 0:
        raise ExportError("%s: softplus beta must be positive, got %g" % (where, beta))
    if threshold < 10:
        raise ExportError("%s: softplus threshold %g is not supported (10 or more; cnnc "
                          "computes the smooth function everywhere)" % (where, threshold))
    return "softplus", {"beta": None if beta == 1.0 else _num(beta)}


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
    if isinstance(m, nn.SELU):
        return "selu", {}
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
    if isinstance(m, nn.Softplus):
        return _softplus(m.beta, m.threshold, where)
    return None


def _gelu(approximate, where):
    if approximate == "none":
        return "gelu", {}
    if approximate == "tanh":
        return "gelu_tanh", {}
    raise ExportError("%s: GELU approximate='%s' is not supported" % (where, approximate))


class _Affine:
    """A value not yet written as a layer: y = x * scale + shift of layer or
    input `src`, either of the whole tensor (chans None; scale and shift
    numbers) or of channels `chans` (dim 1) of a rank-2 or rank-4 tensor
    (scale and shift one number per channel; squeezed: x[:, k] removed the
    channel dim).  Made by arithmetic with Python numbers and by channel
    slices such as x[:, 0]; written as a `scale` layer (one scale for all),
    a batchnorm (per channel: mean 0, var 1, epsilon 0) and/or a `slice`
    when something else uses it.  This is how googlenet's transform_input
    and scalar normalisations export."""

    def __init__(self, src, src_shape, chans, scale, shift, squeezed=False):
        self.src = src
        self.src_shape = src_shape
        self.chans = chans
        self.scale = scale
        self.shift = shift
        self.squeezed = squeezed

    def per_channel(self):
        """The same value with per-channel lists (rank 2 or 4 only), or None."""
        if self.chans is not None:
            return self
        if len(self.src_shape) not in (2, 4):
            return None
        c = self.src_shape[1]
        return _Affine(self.src, self.src_shape, list(range(c)), [self.scale] * c,
                       [self.shift] * c)

    def apply(self, fn):
        """y -> fn(y) for an affine fn given as (scale, shift)."""
        s, t = fn
        if self.chans is None:
            return _Affine(self.src, self.src_shape, None, self.scale * s, self.shift * s + t)
        return _Affine(self.src, self.src_shape, self.chans, [a * s for a in self.scale],
                       [b * s + t for b in self.shift], self.squeezed)

    def progression(self):
        """Whether the channels are one slice start:end:step of the source."""
        ch = self.chans
        if ch is None or self.squeezed and len(ch) != 1:
            return False
        step = ch[1] - ch[0] if len(ch) > 1 else 1
        return step > 0 and all(ch[i + 1] - ch[i] == step for i in range(len(ch) - 1))

    def whole(self):
        return self.chans is None or (not self.squeezed
                                      and self.chans == list(range(self.src_shape[1])))

    def uniform(self):
        """(scale, shift) when one pair applies to every channel, else None."""
        if self.chans is None:
            return self.scale, self.shift
        if all(s == self.scale[0] for s in self.scale) and \
                all(t == self.shift[0] for t in self.shift):
            return self.scale[0], self.shift[0]
        return None


class _Exporter:
    def __init__(self, gm, input_shapes, fold_flatten):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.input_shapes = input_shapes  # forward arg -> (spec name, shape)
        self.fold_flatten = fold_flatten
        self.layers = []          # in topological order
        self.by_name = {}         # layer or split-part name -> Layer
        self.alias = {}           # fx node -> layer/input name it evaluates to
        self.pending_pad = {}     # fx node of a folded pad -> (src name, [t,l,b,r])
        self.affine = {}          # fx node -> _Affine (not yet a layer)
        self.consts = {}          # fx node -> (name, tensor, is a model attribute)
        self.splits = {}          # fx node of chunk/split -> [part names]
        self.multi = {}           # fx node of torch.max(x, dim) etc. -> (kind, args)
        self.module_calls = collections.Counter()
        self.taken = set()        # names in use
        self.input_names = set()
        # Module paths stay free for the modules themselves: a functional
        # layer never takes one, so every module keeps its own name.
        self.reserved = set(self.modules) - {""}

    # ---- names ---------------------------------------------------------
    def where(self, node):
        if node.op == "call_module":
            return "module '%s' (%s)" % (node.target, type(self.modules[node.target]).__name__)
        if node.op in ("call_function", "call_method"):
            t = node.target
            tname = getattr(t, "__name__", str(t))
            return "%s '%s' (node %s)" % (node.op.replace("call_", ""), tname, node.name)
        return "node %s" % node.name

    def fresh(self, base, exact_ok=False):
        """A unique name: `base` itself when free (and, unless exact_ok, not
        a module's path), else base_1, base_2, ..."""
        if base not in self.taken and (exact_ok or base not in self.reserved):
            self.taken.add(base)
            return base
        k = 1
        while "%s_%d" % (base, k) in self.taken or "%s_%d" % (base, k) in self.reserved:
            k += 1
        name = "%s_%d" % (base, k)
        self.taken.add(name)
        return name

    def base_name(self, node):
        """PyTorch's name of what a node computes: the module path for a
        module call; else the calling module's path (if any) and the
        function's name, e.g. `layer1.0.add`."""
        if node.op in ("call_module", "get_attr"):
            return str(node.target)
        t = node.target
        if node.op == "call_method":
            word = t
        else:
            word = _OPERATOR_WORDS.get(t) or getattr(t, "__name__", None) or node.name
        word = word.strip("_") or node.name
        scope = node.meta.get(_SCOPE, "")
        return "%s.%s" % (scope, word) if scope else word

    def node_name(self, node):
        """The layer name for node: a module's first call gets exactly its
        path (so its parameters are its state_dict keys)."""
        if node.op == "call_module":
            self.module_calls[node.target] += 1
            return self.fresh(node.target, exact_ok=self.module_calls[node.target] == 1)
        return self.fresh(self.base_name(node))

    def new_layer(self, name, op, inputs, **attrs):
        layer = Layer(name, op, inputs, **attrs)
        self.layers.append(layer)
        for n in layer.names():
            self.by_name[n] = layer
        return layer

    def add(self, node, op, inputs, **attrs):
        layer = self.new_layer(self.node_name(node), op, inputs, **attrs)
        self.alias[node] = layer.name
        return layer

    def extra(self, node, suffix, op, inputs, **attrs):
        """A helper layer before node's own (named after it, plus suffix)."""
        return self.new_layer(self.fresh(self.base_name(node) + "_" + suffix), op, inputs,
                              **attrs)

    # ---- operands ------------------------------------------------------
    def src(self, node, user):
        """The layer / input name of an operand, writing it out when it is
        still pending (an _Affine, a constant)."""
        if not isinstance(node, torch.fx.Node):
            raise ExportError("%s: expected a tensor argument, got %r" % (self.where(user), node))
        if node in self.alias:
            return self.alias[node]
        if node in self.pending_pad:
            raise ExportError("%s: F.pad/ZeroPad2d can only be folded into a following "
                              "zero-padded conv2d" % self.where(node))
        if node in self.affine:
            return self.materialise(node)
        if node in self.consts:
            return self.constant_layer(node)
        if node in self.splits:
            raise ExportError("%s: the parts of a split are used as one value; index them"
                              % self.where(user))
        raise ExportError("%s: input %s is not a supported tensor" % (self.where(user), node.name))

    def constant_layer(self, node):
        base, t, _ = self.consts[node]  # stays: later folds may still use the value
        shape = list(t.shape) or [1]
        layer = Layer(self.fresh(base, exact_ok=True), "constant", [], shape=shape)
        layer.params["value"] = t.detach().reshape(shape)
        if node.op != "get_attr":
            layer.synthetic.add("value")
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        self.alias[node] = layer.name
        return layer.name

    def materialise(self, node):
        """Writes a pending _Affine: slice (+ reshape) for a channel subset,
        then scale, neg or batchnorm for the arithmetic."""
        a = self.affine.pop(node)
        steps = []
        if not a.whole():
            ch = a.chans
            step = ch[1] - ch[0] if len(ch) > 1 else 1
            if not a.progression():
                raise ExportError("%s: channels %s of one tensor are taken in an order "
                                  "cnnc cannot slice" % (self.where(node), ch))
            steps.append(("slice", dict(axis=1, start=ch[0] or None, end=ch[-1] + 1,
                                        step=None if step == 1 else step), {}))
            if a.squeezed:
                steps.append(("reshape", dict(shape=a.src_shape[:1] + a.src_shape[2:]), {}))
        u = a.uniform()
        if u is not None:
            s, t = u
            if (s, t) == (-1.0, 0.0):
                steps.append(("neg", {}, {}))
            elif (s, t) != (1.0, 0.0):
                steps.append(("scale", dict(scale=None if s == 1.0 else s,
                                            offset=None if t == 0.0 else t), {}))
        else:
            c = len(a.chans)
            steps.append(("batchnorm", dict(epsilon=0.0), dict(
                weight=torch.tensor(a.scale, dtype=torch.float32),
                bias=torch.tensor(a.shift, dtype=torch.float32),
                running_mean=torch.zeros(c), running_var=torch.ones(c))))
        cur = a.src
        for i, (op, attrs, params) in enumerate(steps):
            last = i == len(steps) - 1
            name = self.fresh(self.base_name(node)) if last else \
                self.fresh(self.base_name(node) + "_" + op)
            layer = self.new_layer(name, op, [cur], **attrs)
            layer.params.update(params)
            layer.synthetic.update(params)
            layer.fusable = op in _FUSABLE_ACTS
            cur = layer.name
        self.alias[node] = cur
        return cur

    def affine_of(self, x, user):
        if x in self.affine:
            return self.affine[x]
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input shape" % self.where(user))
        return _Affine(self.src(x, user), shape, None, 1.0, 0.0)

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

    def tensor_arg(self, a, node, what):
        """The tensor of a parameter / constant argument (F.linear's weight)."""
        if a is None:
            return None
        if isinstance(a, torch.fx.Node) and a in self.consts:
            return self.consts[a][1]
        raise ExportError("%s: %s must be a parameter of the model (not a computed tensor)"
                          % (self.where(node), what))

    def param_layer_name(self, node, a):
        """F.linear(x, self.weight, self.bias) and the like: the layer is named
        after the module that owns the weight (its state_dict prefix), when
        that name is free."""
        if isinstance(a, torch.fx.Node) and a.op == "get_attr" and "." in a.target:
            prefix, leaf = a.target.rsplit(".", 1)
            if leaf == "weight" and prefix not in self.taken:
                self.taken.add(prefix)
                return prefix, True
        return self.fresh(self.base_name(node)), False

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
        self.bn_layer(node, m, x, shape[1])

    def bn_layer(self, node, m, x, c):
        layer = self.add(node, "batchnorm", [self.src(x, node)],
                         epsilon=None if float(m.eps) == 1e-5 else float(m.eps))
        if m.weight is not None:
            layer.params["weight"] = m.weight
            layer.params["bias"] = m.bias
        else:  # affine=False: the identity, inline
            layer.params["weight"] = torch.ones(c)
            layer.params["bias"] = torch.zeros(c)
            layer.synthetic.update(("weight", "bias"))
        layer.params["running_mean"] = m.running_mean
        layer.params["running_var"] = m.running_var

    def layer_norm(self, node, x, normalized_shape, weight, bias, eps, channels_first=False,
                   name=None, from_module=True):
        shape = _shape(x)
        k = len(normalized_shape)
        if channels_first:  # torchvision's LayerNorm2d: over dim 1 of [N, C, H, W]
            if len(shape) != 4 or k != 1 or shape[1] != normalized_shape[0]:
                raise ExportError("%s: LayerNorm2d needs [N, %d, H, W], got %s"
                                  % (self.where(node), normalized_shape[0], shape))
            axes = [1]
        else:
            if shape is None or list(shape[len(shape) - k:]) != list(normalized_shape):
                raise ExportError("%s: normalized_shape %s is not the last dims of %s"
                                  % (self.where(node), list(normalized_shape), shape))
            axes = list(range(-k, 0))
        if (weight is None) != (bias is None):
            raise ExportError("%s: layer norm with a weight but no bias (or the reverse) is "
                              "not supported" % self.where(node))
        attrs = dict(axes=None if axes == [-1] else axes,
                     epsilon=None if float(eps) == 1e-5 else float(eps),
                     elementwise_affine=None if weight is not None else False)
        src = self.src(x, node)
        if name is None:
            layer = self.add(node, "layer_norm", [src], **attrs)
        else:
            layer = self.new_layer(name, "layer_norm", [src], **attrs)
            self.alias[node] = name
        if weight is not None:
            layer.params["weight"] = weight
            layer.params["bias"] = bias
            if not from_module:
                layer.synthetic.update(("weight", "bias"))

    def instance_norm(self, node, m, x):
        shape = self.need_rank(x, node, (3, 4, 5), "instance norm")
        if m.track_running_stats and m.running_mean is not None:
            # eval mode with running statistics: a batchnorm
            if len(shape) != 4:
                raise ExportError("%s: instance norm with running statistics is exported as "
                                  "a batchnorm, which needs [N, C, H, W]" % self.where(node))
            self.bn_layer(node, m, x, shape[1])
            return
        layer = self.add(node, "instance_norm", [self.src(x, node)],
                         epsilon=None if float(m.eps) == 1e-5 else float(m.eps),
                         affine=True if m.affine else None)
        if m.affine:
            layer.params["weight"] = m.weight
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

    def reduce(self, node, kind, x, dim, keepdim):
        """mean / sum / amax / amin over dims; a spatial mean of [N, C, H, W]
        is a global_avgpool2d (+ flatten)."""
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input shape" % self.where(node))
        if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
            dims = list(range(len(shape)))
        else:
            dims = sorted(set(self.norm_dim(x, d, node)
                              for d in (dim if isinstance(dim, (tuple, list)) else [dim])))
        if kind == "mean" and len(shape) == 4 and dims == [2, 3]:
            if keepdim:
                self.add(node, "global_avgpool2d", [self.src(x, node)])
                return
            # [N, C, H, W] -> global_avgpool2d [N, C, 1, 1] -> flatten [N, C]
            gap = self.extra(node, "pool", "global_avgpool2d", [self.src(x, node)])
            self.add(node, "flatten", [gap.name])
            return
        all_dims = dims == list(range(len(shape)))
        self.add(node, "reduce_" + {"amax": "max", "amin": "min"}.get(kind, kind),
                 [self.src(x, node)], axes=None if all_dims else dims, keepdims=bool(keepdim))

    def dense(self, node, m, x):
        shape = _shape(x)
        op = "dense" if shape is not None and len(shape) == 2 else "linear"
        layer = self.add(node, op, [self.src(x, node)], units=m.out_features,
                         bias=None if m.bias is not None else False)
        layer.params["weight"] = m.weight
        if m.bias is not None:
            layer.params["bias"] = m.bias

    def act(self, node, x, op, attrs):
        layer = self.add(node, op, [self.src(x, node)], **attrs)
        layer.fusable = op in _FUSABLE_ACTS
        return layer

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
        """view / reshape / squeeze / unsqueeze / unflatten: a flatten when it
        is one ([N, -1]), else a reshape to the traced output shape."""
        src_shape, out_shape = _shape(x), _shape(node)
        if src_shape is None or out_shape is None:
            raise ExportError("%s: unknown shapes" % self.where(node))
        if src_shape == out_shape:
            self.alias[node] = self.src(x, node)
        elif len(src_shape) > 2 and out_shape == [src_shape[0], int(np.prod(src_shape[1:]))]:
            self.add(node, "flatten", [self.src(x, node)])
        elif not out_shape:  # a 0-dim tensor: one element
            self.add(node, "reshape", [self.src(x, node)], shape=[1])
        else:
            self.add(node, "reshape", [self.src(x, node)], shape=out_shape)

    def permute(self, node, x, perm):
        shape = _shape(x)
        if shape is None or len(perm) != len(shape):
            raise ExportError("%s: permutation %r does not fit shape %s"
                              % (self.where(node), perm, shape))
        perm = [self.norm_dim(x, int(p), node) for p in perm]
        if perm == list(range(len(shape))):
            self.alias[node] = self.src(x, node)
            return
        self.add(node, "transpose", [self.src(x, node)], perm=perm)

    def transpose(self, node, x, dim0, dim1):
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input shape" % self.where(node))
        perm = list(range(len(shape)))
        a, b = self.norm_dim(x, dim0, node), self.norm_dim(x, dim1, node)
        perm[a], perm[b] = perm[b], perm[a]
        self.permute(node, x, perm)

    def split(self, node, x, sizes, dim, chunks=None):
        """torch.split / torch.chunk: one split layer, one name per part
        (`<name>.0`, `<name>.1`, ...); indexing the result picks a part."""
        shape = _shape(x)
        metas = _meta(node)
        if shape is None or not isinstance(metas, (tuple, list)):
            raise ExportError("%s: unknown shapes" % self.where(node))
        axis = self.norm_dim(x, dim, node)
        parts = [int(m.shape[axis]) for m in metas]
        name = self.fresh(self.base_name(node))
        outs = [self.fresh("%s.%d" % (name, i)) for i in range(len(parts))]
        if chunks is not None and len(parts) == chunks:
            attrs = dict(axis=axis, chunks=chunks)
        else:
            attrs = dict(axis=axis, sizes=parts)
        src = self.src(x, node)
        layer = Layer(name, "split", [src], **attrs)
        layer.outputs = outs
        self.layers.append(layer)
        for o in outs:
            self.by_name[o] = layer
        self.splits[node] = outs

    def channel_shuffle(self, node, x, groups):
        """nn.ChannelShuffle: [N, g*k, H, W] -> view [N, g, k, H, W] ->
        transpose(1, 2) -> view [N, k*g, H, W]."""
        shape = self.need_rank(x, node, (4,), "channel shuffle")
        n, c, h, w = shape
        if c % groups:
            raise ExportError("%s: %d channels in %d groups" % (self.where(node), c, groups))
        a = self.extra(node, "view", "reshape", [self.src(x, node)],
                       shape=[n, groups, c // groups, h, w])
        b = self.extra(node, "transpose", "transpose", [a.name], perm=[0, 2, 1, 3, 4])
        self.add(node, "reshape", [b.name], shape=shape)

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

    def upsample(self, node, x, size, scale_factor, mode, align_corners,
                 recompute_scale_factor=None):
        """F.interpolate / nn.Upsample: `scale` when PyTorch maps coordinates
        by the scale factor (scale_factor given, not recomputed), else `size`
        (PyTorch then uses in / out)."""
        shape = self.need_rank(x, node, (4,), "upsample")
        out = _shape(node)
        modes = {"nearest": {}, "bilinear": {"mode": "bilinear"},
                 "nearest-exact": {"coordinate_mode": "tf_half_pixel_for_nn"}}
        if mode not in modes:
            raise ExportError("%s: interpolation mode '%s' is not supported (nearest, "
                              "nearest-exact, bilinear)" % (self.where(node), mode))
        attrs = {}
        if scale_factor is not None and not recompute_scale_factor:
            sf = list(scale_factor) if isinstance(scale_factor, (tuple, list)) \
                else [scale_factor] * 2
            if len(sf) != 2:
                raise ExportError("%s: expected 2 scale factors, got %r"
                                  % (self.where(node), scale_factor))
            sf = [_num(s) for s in sf]
            for i in (0, 1):  # cnnc's output size: floor(in * float32(scale))
                if int(shape[2 + i] * float(np.float32(sf[i]))) != out[2 + i]:
                    raise ExportError("%s: scale factor %r gives %d rows/columns in PyTorch "
                                      "but %d in float32; give the size instead"
                                      % (self.where(node), sf[i], out[2 + i],
                                         int(shape[2 + i] * float(np.float32(sf[i])))))
            attrs["scale"] = sf[0] if sf[0] == sf[1] else sf
        else:
            attrs["size"] = [out[2], out[3]]
        attrs.update(modes[mode])
        if mode == "bilinear" and align_corners:
            attrs["align_corners"] = True
        if attrs.get("scale") == 1 and mode != "bilinear":
            self.alias[node] = self.src(x, node)
            return
        self.add(node, "upsample", [self.src(x, node)], **attrs)

    def binary(self, node, kind, a, b, alpha=1):
        """add / sub / mul / div / pow / max / min of two operands, tensors or
        Python numbers."""
        if alpha != 1 and kind not in ("add", "sub"):
            raise ExportError("%s: alpha is not supported" % self.where(node))
        ta, tb = isinstance(a, torch.fx.Node), isinstance(b, torch.fx.Node)
        if ta and tb:
            if alpha != 1:  # a + alpha * b
                sb = self.extra(node, "alpha", "scale", [self.src(b, node)], scale=_num(alpha))
                first = self.src(a, node)
                self.add(node, kind, [first, sb.name])
                return
            if kind == "pow":
                raise ExportError("%s: a tensor power of a tensor is not supported"
                                  % self.where(node))
            self.add(node, kind, [self.src(a, node), self.src(b, node)])
            return
        if not ((ta and _is_number(b)) or (tb and _is_number(a))):
            raise ExportError("%s: unsupported operands %r, %r" % (self.where(node), a, b))
        x, c = (a, float(b)) if ta else (b, float(a))
        if kind in ("max", "min"):
            op = "clip"
            self.act(node, x, op, {"min": c} if kind == "max" else {"max": c})
            return
        if kind == "pow" and ta:  # x ** c
            if c == 1.0:
                self.alias[node] = self.src(x, node)
            elif c == 0.5:
                self.act(node, x, "sqrt", {})
            elif c == -1.0:
                self.act(node, x, "reciprocal", {})
            else:
                self.act(node, x, "pow", {"exponent": _num(c)})
            return
        if kind == "pow":  # c ** x = exp(x * ln c)
            if c <= 0:
                raise ExportError("%s: %g ** tensor is not supported" % (self.where(node), c))
            s = self.extra(node, "log", "scale", [self.src(x, node)], scale=math.log(c))
            s.fusable = True
            self.add(node, "exp", [s.name]).fusable = True
            return
        if kind == "div" and tb:  # c / x = c * reciprocal(x)
            r = self.extra(node, "reciprocal", "reciprocal", [self.src(x, node)])
            r.fusable = True
            self.affine[node] = _Affine(r.name, _shape(x), None, c, 0.0)
            return
        base = self.affine_of(x, node)
        if kind == "add":
            fn = (1.0, c * alpha) if ta else (alpha, c)
        elif kind == "sub" and ta:
            fn = (1.0, -c * alpha)
        elif kind == "sub":  # c - alpha * x
            fn = (-alpha, c)
        elif kind == "mul":
            fn = (c, 0.0)
        else:  # x / c
            if c == 0.0:
                raise ExportError("%s: division by zero" % self.where(node))
            fn = (1.0 / c, 0.0)
        self.affine[node] = base.apply(fn)

    def getitem(self, node, x, idx):
        """Indexing: a part of a split; x[:, k] and x[:, a:b] on rank 2 / 4
        (pending channel slices, see _Affine); any other mix of ints,
        slices with positive steps, None and ... (slice layers + reshape)."""
        if x in self.splits:
            parts = self.splits[x]
            if not isinstance(idx, int) or not -len(parts) <= idx < len(parts):
                raise ExportError("%s: index %r of a split into %d parts"
                                  % (self.where(node), idx, len(parts)))
            self.alias[node] = parts[idx]
            return
        if x in self.multi:
            kind, args = self.multi[x]
            if idx != 0:
                raise ExportError("%s: only the values of %s are supported, not the indices"
                                  % (self.where(node), kind))
            self.reduce(node, kind, *args)
            return
        shape = _shape(x)
        if shape is None:
            raise ExportError("%s: unknown input shape" % self.where(node))
        if not isinstance(idx, tuple):
            idx = (idx,)
        full = slice(None, None, None)
        if (len(shape) in (2, 4) and len(idx) == 2 and idx[0] == full
                and (isinstance(idx[1], slice) and idx[1].step in (None, 1) and idx[1] != full
                     or isinstance(idx[1], int) and not isinstance(idx[1], bool))):
            base = self.affine_of(x, node).per_channel()
            c = len(base.chans)
            if isinstance(idx[1], int):
                if not -c <= idx[1] < c:
                    raise ExportError("%s: index %d out of range" % (self.where(node), idx[1]))
                sel, squeezed = [idx[1] % c], True
            else:
                sel, squeezed = list(range(c))[idx[1]], False
            if base.squeezed or not sel:
                raise ExportError("%s: indexing %r is not supported" % (self.where(node), idx))
            self.affine[node] = _Affine(base.src, base.src_shape, [base.chans[k] for k in sel],
                                        [base.scale[k] for k in sel],
                                        [base.shift[k] for k in sel], squeezed)
            return
        nreal = sum(1 for i in idx if i is not None and i is not Ellipsis)
        if sum(1 for i in idx if i is Ellipsis) > 1 or nreal > len(shape):
            raise ExportError("%s: indexing %r is not supported" % (self.where(node), idx))
        expanded = []
        for i in idx:
            if i is Ellipsis:
                expanded += [full] * (len(shape) - nreal)
            else:
                expanded.append(i)
        slices, reshape, axis = [], False, 0
        for i in expanded:
            if i is None:
                reshape = True
                continue
            if isinstance(i, int) and not isinstance(i, bool):
                d = shape[axis]
                if not -d <= i < d:
                    raise ExportError("%s: index %d out of range" % (self.where(node), i))
                slices.append(dict(axis=axis, start=(i % d) or None, end=i % d + 1))
                reshape = True
            elif isinstance(i, slice):
                if i != full:
                    if (i.step is not None and (not isinstance(i.step, int) or i.step <= 0)) or \
                            not all(v is None or isinstance(v, int) for v in (i.start, i.stop)):
                        raise ExportError("%s: slice %r is not supported (integer bounds, "
                                          "positive step)" % (self.where(node), i))
                    slices.append(dict(axis=axis, start=i.start or None, end=i.stop,
                                       step=None if i.step in (None, 1) else i.step))
            else:
                raise ExportError("%s: indexing with %r is not supported (ints, slices, None, "
                                  "...)" % (self.where(node), type(i).__name__))
            axis += 1
        cur = self.src(x, node)
        steps = [("slice", s) for s in slices]
        if reshape:
            out = _shape(node)
            steps.append(("reshape", dict(shape=out or [1])))
        if not steps:
            self.alias[node] = cur
            return
        for k, (op, attrs) in enumerate(steps):
            if k == len(steps) - 1:
                cur = self.add(node, op, [cur], **attrs).name
            else:
                cur = self.extra(node, op, op, [cur], **attrs).name

    def unsqueeze(self, node, x, dim):
        if x in self.affine and self.affine[x].squeezed and dim == 1:
            a = self.affine[x]
            self.affine[node] = _Affine(a.src, a.src_shape, a.chans, a.scale, a.shift, False)
            return
        self.reshape(node, x)

    def cat(self, node, tensors, dim):
        if isinstance(tensors, torch.fx.Node) and tensors in self.splits:
            names = self.splits[tensors]
            tensors = None
        elif not isinstance(tensors, (list, tuple)) or not tensors:
            raise ExportError("%s: expected a list of tensors" % self.where(node))
        out = _shape(node)
        axis = dim % len(out) if isinstance(dim, int) and -len(out) <= dim < len(out) else None
        if axis is None:
            raise ExportError("%s: bad dim %r" % (self.where(node), dim))
        if tensors is not None:
            parts = [self.affine.get(t) for t in tensors]
            if axis == 1 and all(p is not None for p in parts):
                parts = [p.per_channel() for p in parts]
                p0 = parts[0]
                if all(p is not None and p.src == p0.src and not p.squeezed for p in parts):
                    joined = _Affine(p0.src, p0.src_shape, sum((p.chans for p in parts), []),
                                     sum((p.scale for p in parts), []),
                                     sum((p.shift for p in parts), []))
                    if joined.whole() or joined.progression():
                        self.affine[node] = joined
                        return
            names = [self.src(t, node) for t in tensors]
        if len(names) == 1:
            self.alias[node] = names[0]
            return
        self.add(node, "concat", names, axis=None if axis == 1 else axis)

    def func_linear(self, node, x, weight, bias):
        w = self.tensor_arg(weight, node, "the weight")
        b = self.tensor_arg(bias, node, "the bias")
        name, own = self.param_layer_name(node, weight)
        shape = _shape(x)
        op = "dense" if shape is not None and len(shape) == 2 else "linear"
        layer = self.new_layer(name, op, [self.src(x, node)], units=int(w.shape[0]),
                               bias=None if b is not None else False)
        self.alias[node] = name
        layer.params["weight"] = w
        if b is not None:
            layer.params["bias"] = b
        if not own:
            layer.synthetic.update(layer.params)

    def func_layer_norm(self, node, x, normalized_shape, weight, bias, eps):
        w = self.tensor_arg(weight, node, "the weight")
        b = self.tensor_arg(bias, node, "the bias")
        if w is None:
            self.layer_norm(node, x, list(normalized_shape), None, None, eps)
            return
        name, own = self.param_layer_name(node, weight)
        self.layer_norm(node, x, list(normalized_shape), w, b, eps, name=name, from_module=own)

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
        elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.Dropout3d,
                            nn.AlphaDropout, nn.FeatureAlphaDropout, nn.Identity)):
            self.alias[node] = self.src(x, node)
        elif isinstance(m, nn.Conv2d):
            self.conv(node, m, x)
        elif isinstance(m, nn.ConvTranspose2d):
            self.conv_transpose(node, m, x)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            self.batchnorm(node, m, x)
        elif _is_permute(m):
            self.permute(node, x, list(m.dims))
        elif _is_layernorm2d(m):
            self.layer_norm(node, x, list(m.normalized_shape), m.weight, m.bias, m.eps,
                            channels_first=True)
        elif isinstance(m, nn.LayerNorm):
            self.layer_norm(node, x, list(m.normalized_shape), m.weight, m.bias, m.eps)
        elif isinstance(m, (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)):
            self.instance_norm(node, m, x)
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
        elif isinstance(m, nn.Unflatten):
            self.reshape(node, x)
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
        elif isinstance(m, nn.Upsample):  # also UpsamplingNearest2d / UpsamplingBilinear2d
            self.upsample(node, x, m.size, m.scale_factor, m.mode, m.align_corners,
                          getattr(m, "recompute_scale_factor", None))
        elif isinstance(m, nn.ChannelShuffle):
            self.channel_shuffle(node, x, m.groups)
        else:
            raise ExportError("unsupported %s" % w)

    def fold_constant(self, node):
        """An operation on parameters / constants alone is computed here."""
        args = []
        torch.fx.node.map_arg((node.args, node.kwargs), args.append)
        if not args or not all(a in self.consts for a in args):
            return False
        vals = {a: self.consts[a][1] for a in args}
        fa = torch.fx.node.map_arg(node.args, lambda a: vals[a])
        fk = torch.fx.node.map_arg(node.kwargs, lambda a: vals[a])
        with torch.no_grad():
            if node.op == "call_function":
                v = node.target(*fa, **fk)
            else:
                v = getattr(fa[0], node.target)(*fa[1:], **fk)
        if not isinstance(v, torch.Tensor):
            return False
        self.consts[node] = (self.base_name(node), v.detach().to(torch.float32), False)
        return True

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
        elif kind == "softplus":
            self.act(node, x, *_softplus(a.get("beta", 1), a.get("threshold", 20), w))
        elif kind == "rsqrt":
            r = self.extra(node, "sqrt", "sqrt", [self.src(x, node)])
            r.fusable = True
            self.add(node, "reciprocal", [r.name]).fusable = True
        elif kind == "neg":
            self.affine[node] = self.affine_of(x, node).apply((-1.0, 0.0))
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
        elif kind in ("mean", "sum"):
            if a.get("dtype") is not None:
                raise ExportError("%s: dtype is not supported" % w)
            self.reduce(node, kind, x, a.get("dim"), a.get("keepdim", False))
        elif kind in ("amax", "amin"):
            self.reduce(node, kind, x, a.get("dim", ()), a.get("keepdim", False))
        elif kind in ("max", "min"):  # torch.max(x), torch.max(x, dim), torch.max(a, b)
            other = a.get("dim")
            if isinstance(other, torch.fx.Node):
                self.binary(node, kind, x, other)
            elif other is None:
                self.reduce(node, "a" + kind, x, None, False)
            else:
                self.multi[node] = ("a" + kind, (x, other, a.get("keepdim", False)))
        elif kind in ("maximum", "minimum"):
            self.binary(node, kind[:3], x, a["other"])
        elif kind == "pad":
            self.pad(node, x, a["pad"], a.get("mode", "constant"), a.get("value", 0.0))
        elif kind == "interpolate":
            if a.get("antialias"):
                raise ExportError("%s: antialias is not supported" % w)
            self.upsample(node, x, a.get("size"), a.get("scale_factor"),
                          a.get("mode", "nearest"), a.get("align_corners"),
                          a.get("recompute_scale_factor"))
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
        elif kind == "rdiv":
            self.binary(node, "div", a["other"], x)
        elif kind == "pow":
            self.binary(node, "pow", x, a["exponent"])
        elif kind == "rpow":
            self.binary(node, "pow", a["other"], x)
        elif kind == "square":
            self.binary(node, "pow", x, 2)
        elif kind == "cat":
            self.cat(node, a["tensors"], a.get("dim", 0))
        elif kind == "getitem":
            self.getitem(node, x, a["idx"])
        elif kind == "getattr":
            if x in self.multi and a["name"] == "values":
                kind_, args = self.multi[x]
                self.reduce(node, kind_, *args)
            elif a["name"] == "T" and _shape(x) is not None:  # x.T: all dims reversed
                self.permute(node, x, list(range(len(_shape(x))))[::-1])
            else:
                raise ExportError("unsupported attribute '%s' (%s)" % (a["name"], w))
        elif kind == "permute":
            dims = a.get("dims")
            if dims is None:  # x.permute(0, 2, 3, 1)
                dims = list(node.args[1:])
            if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                dims = list(dims[0])
            self.permute(node, x, list(dims))
        elif kind == "transpose":
            self.transpose(node, x, a["dim0"], a["dim1"])
        elif kind == "t":
            if len(_shape(x)) < 2:
                self.alias[node] = self.src(x, node)
            else:
                self.transpose(node, x, 0, 1)
        elif kind == "chunk":
            self.split(node, x, None, a.get("dim", 0), chunks=a["chunks"])
        elif kind == "split":
            self.split(node, x, a["split_size_or_sections"], a.get("dim", 0))
        elif kind == "linear":
            self.func_linear(node, x, a["weight"], a.get("bias"))
        elif kind == "layer_norm":
            self.func_layer_norm(node, x, a["normalized_shape"], a.get("weight"),
                                 a.get("bias"), a.get("eps", 1e-5))
        else:
            raise ExportError("unsupported %s" % w)

    def run(self, names_out):
        graph = self.gm.graph
        inputs = []
        outputs = []
        for node in graph.nodes:
            if node.op == "placeholder":
                spec_name, shape = self.input_shapes[str(node.target).lstrip("*")]
                if spec_name in self.taken:
                    raise ExportError("input name '%s' is used twice" % spec_name)
                self.taken.add(spec_name)
                self.input_names.add(spec_name)
                inputs.append((spec_name, shape))
                self.alias[node] = spec_name
            elif node.op == "get_attr":
                v = _fetch_attr(self.gm, node.target)
                if not isinstance(v, torch.Tensor):
                    raise ExportError("node %s reads attribute '%s', which is not a tensor"
                                      % (node.name, node.target))
                self.consts[node] = (str(node.target), v.detach(), True)
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op in ("call_function", "call_method"):
                meta = _meta(node)
                multi = isinstance(meta, (tuple, list)) and meta and \
                    all(hasattr(m, "shape") for m in meta)
                if not _is_tensor(node) and not multi:
                    continue  # arithmetic on sizes and the like: Python values
                if self.fold_constant(node):
                    continue
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
            names = self.splits[o] if o in self.splits else [self.src(o, o)]
            for n in names:
                if n not in self.by_name:
                    raise ExportError("model output '%s' is a graph input: nothing to compute"
                                      % n)
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
        dense / linear / add / mul / sub / div / max / min used by nothing
        else (and no graph output) becomes that layer's `activation:`."""
        uses = collections.Counter(i for l in self.layers for i in l.inputs)
        fused = {}
        for l in self.layers:
            l.inputs = [fused.get(i, i) for i in l.inputs]
            if not l.fusable or len(l.inputs) != 1:
                continue
            p = self.by_name.get(l.inputs[0])
            if (p is not None and p.op in _FUSE_INTO and "activation" not in p.attrs
                    and uses[p.name] == 1 and p.name not in out_names):
                params = {k: v for k, v in l.attrs.items() if v is not None}
                p.attrs["activation"] = dict(op=l.op, **params) if params else l.op
                fused[l.name] = p.name
        self.layers = [l for l in self.layers if l.name not in fused]
        self.by_name = {n: l for l in self.layers for n in l.names()}
        out_names[:] = [fused.get(o, o) for o in out_names]

    def rename(self, out_names, new_names):
        """Gives the outputs new names.  A layer with parameters keeps its
        name (its parameters are named after it): a `dropout` (the identity)
        with the new name reads it; so does one for a part of a split."""
        if len(new_names) != len(out_names):
            raise ExportError("%d output names given for %d model outputs"
                              % (len(new_names), len(out_names)))
        mapping = {}
        for old, new in zip(out_names, new_names):
            if new == old:
                continue
            if new in self.by_name or new in self.input_names:
                raise ExportError("output name '%s' is already a layer or input name" % new)
            layer = self.by_name[old]
            if layer.params or layer.outputs:
                self.taken.add(new)
                ident = Layer(new, "dropout", [old])
                self.layers.append(ident)
                self.by_name[new] = ident
            else:
                mapping[old] = new
        for l in self.layers:
            l.name = mapping.get(l.name, l.name)
            l.inputs = [mapping.get(i, i) for i in l.inputs]
        self.by_name = {n: l for l in self.layers for n in l.names()}
        out_names[:] = list(new_names)

    def prune(self, out_names):
        """Drops layers no output depends on (e.g. dead branches)."""
        live = set(out_names)
        for l in reversed(self.layers):
            if any(n in live for n in l.names()):
                live.update(l.inputs)
        self.layers = [l for l in self.layers if any(n in live for n in l.names())]
        self.by_name = {n: l for l in self.layers for n in l.names()}


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


def _is_layernorm2d(m):
    """torchvision's LayerNorm2d (ConvNeXt): nn.LayerNorm over dim 1 of NCHW."""
    return isinstance(m, _leaf_types()) and type(m).__name__ == "LayerNorm2d"


def _is_permute(m):
    """torchvision.ops.misc.Permute (ConvNeXt, Swin): torch.permute(x, dims)."""
    return isinstance(m, _leaf_types()) and type(m).__name__ == "Permute"


# Activations without parameters: bound kind -> spec op.
_SIMPLE_ACTS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
                "hardsigmoid": "hardsigmoid", "hardswish": "hardswish", "silu": "silu",
                "selu": "selu", "exp": "exp", "abs": "abs", "sqrt": "sqrt", "erf": "erf",
                "reciprocal": "reciprocal"}

# The function word of operator.* targets in layer names.
_OPERATOR_WORDS = {operator.add: "add", operator.iadd: "add", operator.mul: "mul",
                   operator.imul: "mul", operator.sub: "sub", operator.isub: "sub",
                   operator.truediv: "div", operator.itruediv: "div", operator.neg: "neg",
                   operator.pow: "pow", operator.ipow: "pow", operator.getitem: "getitem"}


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
    F.selu: ("selu", ["input", "inplace"]),
    torch.selu: ("selu", ["input"]),
    torch.sigmoid: ("sigmoid", ["input"]),
    F.sigmoid: ("sigmoid", ["input"]),
    torch.tanh: ("tanh", ["input"]),
    F.tanh: ("tanh", ["input"]),
    F.hardsigmoid: ("hardsigmoid", ["input", "inplace"]),
    F.hardswish: ("hardswish", ["input", "inplace"]),
    F.silu: ("silu", ["input", "inplace"]),
    F.gelu: ("gelu", ["input", "approximate"]),
    F.softplus: ("softplus", ["input", "beta", "threshold"]),
    torch.exp: ("exp", ["input"]),
    torch.abs: ("abs", ["input"]),
    torch.sqrt: ("sqrt", ["input"]),
    torch.rsqrt: ("rsqrt", ["input"]),
    torch.erf: ("erf", ["input"]),
    torch.special.erf: ("erf", ["input"]),
    torch.reciprocal: ("reciprocal", ["input"]),
    torch.neg: ("neg", ["input"]),
    torch.negative: ("neg", ["input"]),
    operator.neg: ("neg", ["input"]),
    torch.pow: ("pow", ["input", "exponent"]),
    operator.pow: ("pow", ["input", "exponent"]),
    operator.ipow: ("pow", ["input", "exponent"]),
    torch.square: ("square", ["input"]),
    torch.flatten: ("flatten", ["input", "start_dim", "end_dim"]),
    F.softmax: ("softmax", ["input", "dim", "_stacklevel", "dtype"]),
    torch.softmax: ("softmax", ["input", "dim", "dtype"]),
    F.log_softmax: ("log_softmax", ["input", "dim", "_stacklevel", "dtype"]),
    torch.log_softmax: ("log_softmax", ["input", "dim", "dtype"]),
    F.dropout: ("identity", ["input", "p", "training", "inplace"]),
    F.dropout1d: ("identity", ["input", "p", "training", "inplace"]),
    F.dropout2d: ("identity", ["input", "p", "training", "inplace"]),
    F.dropout3d: ("identity", ["input", "p", "training", "inplace"]),
    F.alpha_dropout: ("identity", ["input", "p", "training", "inplace"]),
    F.feature_alpha_dropout: ("identity", ["input", "p", "training", "inplace"]),
    F.max_pool2d: ("max_pool2d", ["input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"]),
    F.avg_pool2d: ("avg_pool2d", ["input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override"]),
    F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", ["input", "output_size"]),
    F.adaptive_max_pool2d: ("adaptive_max_pool2d", ["input", "output_size", "return_indices"]),
    torch.mean: ("mean", ["input", "dim", "keepdim", "dtype"]),
    torch.sum: ("sum", ["input", "dim", "keepdim", "dtype"]),
    torch.amax: ("amax", ["input", "dim", "keepdim"]),
    torch.amin: ("amin", ["input", "dim", "keepdim"]),
    torch.max: ("max", ["input", "dim", "keepdim"]),
    torch.min: ("min", ["input", "dim", "keepdim"]),
    torch.maximum: ("maximum", ["input", "other"]),
    torch.minimum: ("minimum", ["input", "other"]),
    F.pad: ("pad", ["input", "pad", "mode", "value"]),
    F.interpolate: ("interpolate", ["input", "size", "scale_factor", "mode", "align_corners",
                                    "recompute_scale_factor", "antialias"]),
    F.upsample: ("interpolate", ["input", "size", "scale_factor", "mode", "align_corners"]),
    torch.reshape: ("reshape", ["input", "shape"]),
    torch.squeeze: ("reshape", ["input", "dim"]),
    torch.unsqueeze: ("unsqueeze", ["input", "dim"]),
    torch.permute: ("permute", ["input", "dims"]),
    torch.transpose: ("transpose", ["input", "dim0", "dim1"]),
    torch.swapaxes: ("transpose", ["input", "dim0", "dim1"]),
    torch.swapdims: ("transpose", ["input", "dim0", "dim1"]),
    torch.t: ("t", ["input"]),
    torch.chunk: ("chunk", ["input", "chunks", "dim"]),
    torch.split: ("split", ["input", "split_size_or_sections", "dim"]),
    torch.add: ("add", ["input", "other", "alpha", "out"]),
    torch.mul: ("mul", ["input", "other", "out"]),
    torch.multiply: ("mul", ["input", "other", "out"]),
    torch.sub: ("sub", ["input", "other", "alpha", "out"]),
    torch.subtract: ("sub", ["input", "other", "alpha", "out"]),
    torch.rsub: ("rsub", ["input", "other", "alpha"]),
    torch.div: ("div", ["input", "other", "rounding_mode", "out"]),
    torch.divide: ("div", ["input", "other", "rounding_mode", "out"]),
    torch.true_divide: ("div", ["input", "other", "out"]),
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
    getattr: ("getattr", ["input", "name"]),
    F.linear: ("linear", ["input", "weight", "bias"]),
    F.layer_norm: ("layer_norm", ["input", "normalized_shape", "weight", "bias", "eps"]),
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
    "exp": ("exp", ["input"]),
    "exp_": ("exp", ["input"]),
    "abs": ("abs", ["input"]),
    "abs_": ("abs", ["input"]),
    "sqrt": ("sqrt", ["input"]),
    "sqrt_": ("sqrt", ["input"]),
    "rsqrt": ("rsqrt", ["input"]),
    "rsqrt_": ("rsqrt", ["input"]),
    "erf": ("erf", ["input"]),
    "erf_": ("erf", ["input"]),
    "reciprocal": ("reciprocal", ["input"]),
    "reciprocal_": ("reciprocal", ["input"]),
    "neg": ("neg", ["input"]),
    "neg_": ("neg", ["input"]),
    "pow": ("pow", ["input", "exponent"]),
    "pow_": ("pow", ["input", "exponent"]),
    "square": ("square", ["input"]),
    "clamp": ("clamp", ["input", "min", "max"]),
    "clamp_": ("clamp", ["input", "min", "max"]),
    "clip": ("clamp", ["input", "min", "max"]),
    "flatten": ("flatten", ["input", "start_dim", "end_dim"]),
    "softmax": ("softmax", ["input", "dim", "dtype"]),
    "log_softmax": ("log_softmax", ["input", "dim", "dtype"]),
    "contiguous": ("identity", ["input", "memory_format"]),
    "view": ("reshape", ["input"]),
    "reshape": ("reshape", ["input"]),
    "squeeze": ("reshape", ["input"]),
    "unflatten": ("reshape", ["input"]),
    "unsqueeze": ("unsqueeze", ["input", "dim"]),
    "permute": ("permute", ["input"]),
    "transpose": ("transpose", ["input", "dim0", "dim1"]),
    "swapaxes": ("transpose", ["input", "dim0", "dim1"]),
    "swapdims": ("transpose", ["input", "dim0", "dim1"]),
    "t": ("t", ["input"]),
    "chunk": ("chunk", ["input", "chunks", "dim"]),
    "split": ("split", ["input", "split_size_or_sections", "dim"]),
    "mean": ("mean", ["input", "dim", "keepdim", "dtype"]),
    "sum": ("sum", ["input", "dim", "keepdim", "dtype"]),
    "amax": ("amax", ["input", "dim", "keepdim"]),
    "amin": ("amin", ["input", "dim", "keepdim"]),
    "max": ("max", ["input", "dim", "keepdim"]),
    "min": ("min", ["input", "dim", "keepdim"]),
    "maximum": ("maximum", ["input", "other"]),
    "minimum": ("minimum", ["input", "other"]),
    "add": ("add", ["input", "other", "alpha"]),
    "add_": ("add", ["input", "other", "alpha"]),
    "mul": ("mul", ["input", "other"]),
    "mul_": ("mul", ["input", "other"]),
    "sub": ("sub", ["input", "other", "alpha"]),
    "sub_": ("sub", ["input", "other", "alpha"]),
    "div": ("div", ["input", "other", "rounding_mode"]),
    "div_": ("div", ["input", "other", "rounding_mode"]),
    "__rsub__": ("rsub", ["input", "other"]),
    "__rtruediv__": ("rdiv", ["input", "other"]),
    "__rdiv__": ("rdiv", ["input", "other"]),
    "__rpow__": ("rpow", ["input", "other"]),
}

# Keyword spellings that differ from the names above.
_KW_ALIASES = {"tensor": "input", "split_size": "split_size_or_sections", "dims": "dims"}


def _bind(fn, node, method):
    entry = _METHODS.get(fn) if method else _FUNCS.get(fn)
    if entry is None:
        return None
    kind, names = entry
    a = {}
    if method and kind in ("reshape", "permute"):  # view(*shape), permute(*dims)
        a["input"] = node.args[0]
        if kind == "permute" and "dims" in node.kwargs:
            a["dims"] = node.kwargs["dims"]
        return kind, a
    if len(node.args) > len(names):
        return None
    for n, v in zip(names, node.args):
        a[n] = v
    for k, v in node.kwargs.items():
        k = _KW_ALIASES.get(k, k)
        if k not in names:
            return None
        a[k] = v
    if kind == "flatten" and method:
        a.setdefault("start_dim", 0)
    if kind == "identity" and a.get("training"):
        raise ExportError("node %s: dropout with training=True (export in eval mode)"
                          % node.name)
    return kind, a


Exported = collections.namedtuple("Exported", "yaml tensors inputs outputs")
Exported.__doc__ = """yaml: the spec text; tensors: {safetensors key: tensor}, every
parameter that is not inline in the YAML (a module's are named by its state_dict
keys); inputs: [(name, shape)]; outputs: [layer name] (graph outputs, in order)."""


def _forward_args(model):
    import inspect
    sig = inspect.signature(type(model).forward)
    names = []
    for i, (k, p) in enumerate(sig.parameters.items()):
        if i == 0:
            continue  # self
        if p.kind == p.VAR_KEYWORD:
            continue
        if p.kind == p.VAR_POSITIONAL:
            raise ExportError("%s.forward takes *%s: give the model a forward with named "
                              "arguments" % (type(model).__name__, k))
        names.append(k)
    return names


def export(model, inputs, name, weights=None, outputs=None, inline=False,
           header=None, fold_flatten=False):
    """Returns an Exported(yaml, tensors, inputs, outputs).

    inputs:  {name: shape}, one per forward argument.  When the names are the
             forward arguments' names they are matched by name; otherwise in
             order, and the given names become the spec's input names.
    outputs: optional new names for the model's outputs, in return order
             (a layer with parameters keeps its name; an identity with the
             new name reads it).
    weights: the `weights:` file name written into the YAML (relative to it).
    inline:  put every parameter into the YAML instead (no weights file).
    header:  comment lines for the top of the file."""
    if not name.isidentifier():
        raise ExportError("model name '%s' is not a C identifier" % name)
    model = model.eval()
    given = [(k, [int(d) for d in v]) for k, v in inputs.items()]
    placeholders = _forward_args(model)
    if set(placeholders) == set(k for k, _ in given):
        shapes = {k: (k, v) for k, v in given}
    elif len(given) == len(placeholders):
        shapes = {p: kv for p, kv in zip(placeholders, given)}
    else:
        raise ExportError("the model's forward takes %d input(s) (%s), %d shape(s) given"
                          % (len(placeholders), ", ".join(placeholders), len(given)))
    examples = {p: torch.randn(*shapes[p][1]) for p in placeholders}
    gm = trace(model, examples)
    with torch.no_grad():
        ShapeProp(gm).propagate(*[examples[p] for p in placeholders])
    ex = _Exporter(gm, shapes, fold_flatten)
    in_list, out_names = ex.run(outputs)
    tensors = {}
    for l in ex.layers:
        inl = set(l.inline_keys(inline))
        for pname, t in l.params.items():
            if pname in inl:
                continue
            key = "%s.%s" % (l.name, pname)
            if l.op == "constant" and pname not in l.synthetic:
                key = l.name  # an nn.Parameter or buffer: its state_dict key (cnnc also looks there)
            if key in tensors:
                raise ExportError("two parameters named '%s'" % key)
            tensors[key] = t.detach().to(torch.float32).contiguous()
    if tensors and not weights:
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
    name, dims = s.rsplit(":", 1)
    try:
        shape = [int(d) for d in dims.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("bad shape '%s'" % dims)
    if not name or not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError("bad input '%s'" % s)
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
                sd = read_safetensors(args.state_dict, keep_dtype=True)
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
