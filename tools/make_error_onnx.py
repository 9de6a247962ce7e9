#!/usr/bin/python3
"""Writes the broken ONNX files that tests/errors/onnx_*.onnx hold.

    /usr/bin/python3 tools/make_error_onnx.py

Each file is built with onnx.helper (python3-onnx) so that it is exactly
as wrong as its name says, and nothing else; the expected diagnostics are
in the committed NAME.onnx.expect beside it (tests/unit/test_errors.c),
written by hand, not by this script.  The files are small (a few hundred
bytes) and committed; this script documents how they were made and
rewrites them byte for byte.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "errors")
F = TensorProto.FLOAT


def vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, shape, dtype=np.float32, value=0.25):
    return numpy_helper.from_array(np.full(shape, value, dtype=dtype), name)


def model(nodes, inputs, outputs, inits=(), opset=13, domain_opsets=(), ir_version=8):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domain_opsets]
    return helper.make_model(g, opset_imports=ops, ir_version=ir_version, producer_name="make_error_onnx")


def conv(name, x, y, w="w", cout=4):
    return helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def files():
    x = vi("x", [1, 4, 8, 8])
    w = init("w", [4, 4, 3, 3])

    # Every unsupported node of a model in one run, at its node.
    yield "unsupported", model([
        conv("conv", "x", "c"),
        helper.make_node("LSTM", ["c", "c", "c"], ["l"], name="lstm", hidden_size=4),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Resize", ["r", "", "scales"], ["u"], name="up", mode="cubic"),
        helper.make_node("TopK", ["u", "k"], ["t", "ti"], name="topk"),
        helper.make_node("NonZero", ["r"], ["nz"], name=""),
        helper.make_node("Conv", ["u", "w"], ["y"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ], [x], [vi("y", [1, 4, 16, 16])],
        [w, numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
         numpy_helper.from_array(np.array([2], np.int64), "k")])

    # Attributes and values that cnnc cannot take, each named.
    yield "bad_attrs", model([
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv_kernel", kernel_shape=[5, 5]),
        helper.make_node("MaxPool", ["x"], ["b", "bi"], name="pool_indices", kernel_shape=[2, 2]),
        helper.make_node("LeakyRelu", ["x"], ["c"], name="leaky", alpha=0.1, beta=2.0),
        helper.make_node("Transpose", ["x"], ["d"], name="perm", perm=[0, 1, 2]),
        helper.make_node("Concat", ["x", "x"], ["e"], name="cat", axis=4),
        helper.make_node("Conv", ["x", "w"], ["f"], name="conv_auto", auto_pad="BOGUS", kernel_shape=[3, 3]),
        helper.make_node("Add", ["x", "x"], ["y"], name="ok"),
    ], [x], [vi("y", [1, 4, 8, 8]), vi("bi", [1, 4, 7, 7], TensorProto.INT64)], [w])

    # A dynamic dimension without --input-shape; --input-shape mistakes.
    dyn = model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                [vi("x", ["batch", 4, "h", 8])], [vi("y", ["batch", 4, "h", 8])])
    yield "dynamic_dim", dyn
    yield "input_shape_rank", dyn
    yield "input_shape_fixed", dyn

    # Weights that are not constants, data types cnnc does not compute in.
    yield "not_constant", model([
        helper.make_node("Conv", ["x", "wx"], ["a"], name="conv_input_weight", kernel_shape=[3, 3]),
        helper.make_node("MatMul", ["x", "x"], ["b"], name="matmul_two_inputs"),
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
    ], [x, vi("wx", [4, 4, 3, 3])], [vi("y", [1, 4, 8, 8])])
    yield "dtypes", model([
        helper.make_node("Conv", ["x", "w8"], ["a"], name="conv_int8", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["xi"], ["b"], name="relu_int"),
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
    ], [x, vi("xi", [1, 4], TensorProto.INT64)], [vi("y", [1, 4, 8, 8])],
        [init("w8", [4, 4, 3, 3], np.int8, 1)])

    # Graph structure: a name nobody makes, a tensor made twice, an output
    # nobody makes.
    yield "structure", model([
        helper.make_node("Relu", ["nope"], ["a"], name="reads_nothing"),
        helper.make_node("Relu", ["x"], ["b"], name="first_b"),
        helper.make_node("Sigmoid", ["x"], ["b"], name="second_b"),
    ], [x], [vi("b", [1, 4, 8, 8]), vi("missing", [1, 4, 8, 8])])

    # Nothing to compute from: the only graph input is also an initializer.
    yield "no_inputs", model([helper.make_node("Relu", ["w"], ["y"], name="relu")],
                             [vi("w", [4, 4, 3, 3])], [vi("y", [4, 4, 3, 3])], [w])

    # Shape arithmetic on constants whose sizes overflow, or are not sizes.
    yield "fold_shapes", model([
        helper.make_node("Reshape", ["c", "huge"], ["r1"], name="reshape_overflow"),
        helper.make_node("Reshape", ["c", "neg"], ["r2"], name="reshape_negative"),
        # steps of +-2^63 (fine: one element each; fuzz_onnx_graph found
        # the stride overflowing), then an axis listed twice (an error)
        helper.make_node("Slice", ["c8", "s_lo", "s_hi", "s_ax", "s_max"], ["sl1"], name="slice_step_max"),
        helper.make_node("Slice", ["c8", "s_hi1", "s_lo1", "s_ax", "s_min"], ["sl2"], name="slice_step_min"),
        helper.make_node("Slice", ["c8", "s_lo2", "s_hi2", "s_ax2"], ["sl3"], name="slice_axis_twice"),
        # a required input with an empty name (fuzz_onnx_graph: a NULL read)
        helper.make_node("Reshape", ["", "s_ax"], ["r3"], name="reshape_no_data"),
        helper.make_node("Add", ["x", "x"], ["y"], name="add"),
    ], [x], [vi("y", [1, 4, 8, 8]), vi("r1", [2]), vi("r2", [2]), vi("sl1", [1]), vi("sl2", [1]),
             vi("sl3", [1]), vi("r3", [1])],
        [init("c", [2]), numpy_helper.from_array(np.array([1 << 62, 4, -1], np.int64), "huge"),
         numpy_helper.from_array(np.array([-2, -1], np.int64), "neg"), init("c8", [8]),
         numpy_helper.from_array(np.array([1], np.int64), "s_lo"),
         numpy_helper.from_array(np.array([8], np.int64), "s_hi"),
         numpy_helper.from_array(np.array([7], np.int64), "s_hi1"),
         numpy_helper.from_array(np.array([-9], np.int64), "s_lo1"),
         numpy_helper.from_array(np.array([0], np.int64), "s_ax"),
         numpy_helper.from_array(np.array([(1 << 63) - 1], np.int64), "s_max"),
         numpy_helper.from_array(np.array([-(1 << 63)], np.int64), "s_min"),
         numpy_helper.from_array(np.array([0, 1], np.int64), "s_lo2"),
         numpy_helper.from_array(np.array([1, 2], np.int64), "s_hi2"),
         numpy_helper.from_array(np.array([0, -1], np.int64), "s_ax2")])

    # Integer arithmetic on constants past int64 (fuzz_onnx_graph: a Mul
    # overflowing in the folder, undefined behaviour before): every op.
    big = (1 << 62)
    yield "fold_int_overflow", model([
        helper.make_node("Add", ["i_big", "i_big"], ["a1"], name="add_overflow"),
        helper.make_node("Sub", ["i_min", "i_one"], ["a2"], name="sub_overflow"),
        helper.make_node("Mul", ["i_big", "i_four"], ["a3"], name="mul_overflow"),
        helper.make_node("Div", ["i_min", "i_m1"], ["a4"], name="div_overflow"),
        helper.make_node("Neg", ["i_min"], ["a5"], name="neg_overflow"),
        helper.make_node("Add", ["x", "x"], ["y"], name="add"),
    ], [x], [vi("y", [1, 4, 8, 8])] + [vi("a%d" % k, [1]) for k in range(1, 6)],
        [numpy_helper.from_array(np.array([big], np.int64), "i_big"),
         numpy_helper.from_array(np.array([-(1 << 63)], np.int64), "i_min"),
         numpy_helper.from_array(np.array([1], np.int64), "i_one"),
         numpy_helper.from_array(np.array([4], np.int64), "i_four"),
         numpy_helper.from_array(np.array([-1], np.int64), "i_m1")])

    # A constant with no elements (Shape's start past its end, opset 15) as
    # a graph output: fuzz_onnx_graph found it reaching verify.c's assertion.
    yield "empty_constant", model([
        helper.make_node("Shape", ["x"], ["s"], name="shape_empty", start=3, end=1),
        helper.make_node("Cast", ["s"], ["sf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
    ], [x], [vi("y", [1, 4, 8, 8]), vi("sf", [0])], opset=15)

    # The model level: an opset too old, a node of another domain.
    yield "opset_old", model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x],
                             [vi("y", [1, 4, 8, 8])], opset=5)
    yield "domain", model([
        helper.make_node("FusedConv", ["x", "w"], ["y"], name="fused", domain="com.microsoft"),
    ], [x], [vi("y", [1, 4, 8, 8])], [w], domain_opsets=[("com.microsoft", 1)])

    # External data that is not there or points outside the model's directory.
    def external(name, location, offset=0, length=None):
        t = init(name, [4, 4, 3, 3])
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in [("location", location), ("offset", str(offset))] + \
                ([("length", str(length))] if length is not None else []):
            e = t.external_data.add()
            e.key, e.value = k, v
        return t
    yield "external", model([
        helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], name="c2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w3"], ["y"], name="c3", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ], [x], [vi("y", [1, 4, 8, 8])],
        [external("w1", "no_such_file.bin"), external("w2", "../secret.bin"),
         external("w3", "/etc/passwd")])


def truncated():
    """A real model (the opset 13 ResNet golden case) cut in the middle."""
    with open(os.path.join(ROOT, "tests", "golden", "onnx_resnet_op13", "model.onnx"), "rb") as f:
        data = f.read()
    return data[:len(data) // 2]


def main():
    # A good model whose file name gives a model name of the runtime's.
    with open(os.path.join(OUT, "cnnrt_named.onnx"), "wb") as f:
        f.write(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1, 4])],
                      [vi("y", [1, 4])]).SerializeToString())
    for name, m in files():
        path = os.path.join(OUT, "onnx_%s.onnx" % name)
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        print("wrote", os.path.relpath(path))
    # torch.save's zip, named as if it were ONNX (users do that).
    with open(os.path.join(OUT, "onnx_torch_zip.onnx"), "wb") as f:
        f.write(b"PK\x03\x04" + bytes(60))
    path = os.path.join(OUT, "onnx_truncated.onnx")
    with open(path, "wb") as f:
        f.write(truncated())
    print("wrote", os.path.relpath(path))


if __name__ == "__main__":
    main()
