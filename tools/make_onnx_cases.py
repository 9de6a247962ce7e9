#!/usr/bin/python3
"""Writes cnnc's own ONNX node-test cases under tests/onnx_node/<case>/.

    /usr/bin/python3 tools/make_onnx_cases.py          # every case
    /usr/bin/python3 tools/make_onnx_cases.py conv1d   # only the named ones
    /usr/bin/python3 tools/make_onnx_cases.py --list

Each case has the layout of ONNX's backend node tests (model.onnx and
test_data_set_0/input_K.pb, output_K.pb), so tests/unit/test_onnx_node.c
runs it like those, with the same tolerance (rtol 1e-3, atol 1e-7).  Each
is a regression of a frontend bug or a form the node tests do not have;
the expected outputs are computed here with numpy in float64 from the
float32 inputs.  Needs python3-onnx (1.12) and python3-numpy.  Seeds come
from the case name: rerunning reproduces the files.
"""

import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "onnx_node")
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def vi(name, a):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, a.shape)


def save(name, nodes, inputs, outputs, inits=(), opset=13, doc=""):
    """inputs, outputs: lists of (name, float32 array)."""
    g = helper.make_graph(nodes, name, [vi(n, a) for n, a in inputs], [vi(n, a) for n, a in outputs],
                          initializer=list(inits), doc_string=doc)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_onnx_cases.py")
    onnx.checker.check_model(m)
    d = os.path.join(ROOT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        onnx.save_tensor(numpy_helper.from_array(a.astype(np.float32), n), os.path.join(d, "test_data_set_0", "input_%d.pb" % k))
    for k, (n, a) in enumerate(outputs):
        onnx.save_tensor(numpy_helper.from_array(a.astype(np.float32), n), os.path.join(d, "test_data_set_0", "output_%d.pb" % k))


def f32(r, *shape):
    return r.standard_normal(shape).astype(np.float32)


def conv2d_ref(x, w, b, stride, dil, pads):
    """x [N, C, H, W], w [M, C/g, KH, KW] (g = 1), pads top, left, bottom, right; float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    oh = (h - (dil[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd - (dil[1] * (kw - 1) + 1)) // stride[1] + 1
    y = np.zeros((n, m, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                      j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]
            y += np.einsum("nchw,mc->nmhw", patch, w[:, :, i, j].astype(np.float64))
    return y + b.astype(np.float64)[None, :, None, None]


@case
def conv1d(name):
    """Conv of [N, C, L] (computed as [N, C, 1, L]) with strides, dilations, unequal pads and a bias."""
    r = rng(name)
    x, w, b = f32(r, 2, 3, 11), f32(r, 4, 3, 3), f32(r, 4)
    y = conv2d_ref(x[:, :, None, :], w[:, :, None, :], b, (1, 2), (1, 2), (0, 1, 0, 2))[:, :, 0, :]
    save(name, [helper.make_node("Conv", ["x", "W", "B"], ["y"], strides=[2], dilations=[2], pads=[1, 2])],
         [("x", x)], [("y", y)], [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")], doc=conv1d.__doc__)


@case
def conv_transpose_unequal_pads(name):
    """ConvTranspose with explicit pads that differ at the start and the end (shape.c took 2 x the start)."""
    r = rng(name)
    x, w = f32(r, 1, 2, 4, 5), f32(r, 2, 3, 3, 3)
    stride, pads = (2, 1), (0, 1, 2, 0)
    n, c, h, wd = x.shape
    full = np.zeros((n, 3, (h - 1) * stride[0] + 3, (wd - 1) * stride[1] + 3))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride[0]:i * stride[0] + 3, j * stride[1]:j * stride[1] + 3] += np.einsum(
                "nc,cmkl->nmkl", x[:, :, i, j].astype(np.float64), w.astype(np.float64))
    y = full[:, :, pads[0]:full.shape[2] - pads[2], pads[1]:full.shape[3] - pads[3]]
    save(name, [helper.make_node("ConvTranspose", ["x", "W"], ["y"], strides=list(stride), pads=list(pads))],
         [("x", x)], [("y", y)], [numpy_helper.from_array(w, "W")], doc=conv_transpose_unequal_pads.__doc__)


@case
def constant_output(name):
    """A graph output that is a Constant node's value (it clashed with its own named copy)."""
    r = rng(name)
    x, c = f32(r, 2, 3), f32(r, 4)
    save(name, [helper.make_node("Relu", ["x"], ["y"]),
                helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(c, "c"))],
         [("x", x)], [("y", np.maximum(x, 0)), ("c", c)], doc=constant_output.__doc__)


@case
def gather_2d_run(name):
    """Gather of consecutive 2-D indices: the result has the indices' shape inside (it had the slice's)."""
    r = rng(name)
    x = f32(r, 3, 5, 2)
    idx = np.array([[1, 2, 3]], np.int64)
    save(name, [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], [("x", x)], [("y", np.take(x, idx, axis=1))],
         [numpy_helper.from_array(idx, "i")], doc=gather_2d_run.__doc__)


@case
def cast_dropout_attrs(name):
    """Cast (attribute 'to') and Dropout (attribute 'seed') on computed tensors: both were refused."""
    r = rng(name)
    x = f32(r, 2, 4)
    save(name, [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Cast", ["r"], ["c"], to=TensorProto.FLOAT),
                helper.make_node("Dropout", ["c"], ["y"], seed=3)],
         [("x", x)], [("y", np.maximum(x, 0))], doc=cast_dropout_attrs.__doc__)


def main(argv):
    if argv[1:] == ["--list"]:
        for n, fn in CASES.items():
            print("%-28s %s" % (n, fn.__doc__))
        return 0
    names = argv[1:] or list(CASES)
    for n in names:
        if n not in CASES:
            print("unknown case %s (--list)" % n, file=sys.stderr)
            return 1
        CASES[n](n)
        print("wrote", os.path.relpath(os.path.join(ROOT, n)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
