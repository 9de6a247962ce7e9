#!/usr/bin/env python3
"""Writes the ONNX models of tests/emit/onnx/ for tests/emit_yaml.sh.

Each model puts the ONNX operators cnnc translates, and their attributes,
through `--emit-yaml`: the spec written for it must compile to the same
object as the ONNX file.  The models are small (weights of a few values,
seeded), so the files stay a few KB; error_*.onnx hold what the YAML
format cannot say, which --emit-yaml must refuse without writing anything.

Needs the onnx and numpy Python packages (Debian: python3-onnx,
python3-numpy); the tests only read the files written here.

    tools/make_emit_onnx.py [OUTDIR]     (default: tests/emit/onnx)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

rng = np.random.default_rng(1234)


def const(name, shape):
    return nh.from_array(rng.uniform(-1, 1, shape).astype(np.float32), name)


def ints(name, values):
    return nh.from_array(np.array(values, dtype=np.int64), name)


def floats(name, values):
    return nh.from_array(np.array(values, dtype=np.float32), name)


def model(name, opset, nodes, inputs, outputs, inits):
    g = h.make_graph(nodes, name,
                     [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs],
                     [h.make_tensor_value_info(n, T.FLOAT, None) for n in outputs], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="tools/make_emit_onnx.py")
    m.ir_version = 7
    return m


def conv():
    """Conv, ConvTranspose, pools, BatchNormalization, Clip, Gemm, Softmax."""
    n = h.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 2, 0, 3], strides=[2, 1], dilations=[1, 2], group=2),
        n("Relu", ["c1"], ["r1"]),
        n("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        n("LeakyRelu", ["c2"], ["l2"], alpha=0.2),
        n("MaxPool", ["l2"], ["p1"], kernel_shape=[2, 2], strides=[1, 1], auto_pad="SAME_LOWER"),
        n("AveragePool", ["p1"], ["p2"], kernel_shape=[3, 3], pads=[2, 2, 2, 2], ceil_mode=1, strides=[2, 2]),
        n("AveragePool", ["p1"], ["p3"], kernel_shape=[2, 3], pads=[1, 0, 0, 1], count_include_pad=1),
        n("MaxPool", ["p1"], ["p4"], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1]),
        n("ConvTranspose", ["p2", "w3", "b3"], ["t1"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
        n("ConvTranspose", ["p2", "w4"], ["t2"], strides=[3, 2], dilations=[1, 2], group=2, pads=[0, 1, 0, 1]),
        n("BatchNormalization", ["t1", "s", "bb", "m", "v"], ["bn"], epsilon=1e-3),
        n("Clip", ["bn", "lo", "hi"], ["cl"]),
        n("GlobalAveragePool", ["cl"], ["gp"]),
        n("GlobalMaxPool", ["t2"], ["gm"]),
        n("Flatten", ["gp"], ["fl"]),
        n("Gemm", ["fl", "gw", "gb"], ["ge"], alpha=0.5, beta=2.0, transB=1),
        n("Softmax", ["ge"], ["y"], axis=-1),
    ]
    inits = [const("w1", [6, 2, 3, 2]), const("b1", [6]), const("w2", [4, 6, 3, 3]), const("w3", [4, 3, 3, 3]),
             const("b3", [3]), const("w4", [4, 2, 2, 3]), const("s", [3]), const("bb", [3]), const("m", [3]),
             floats("v", [0.5, 1.0, 2.0]), floats("lo", [0.0]), floats("hi", [6.0]), const("gw", [5, 3]),
             const("gb", [5])]
    return model("conv", 13, nodes, [("x", [1, 4, 11, 10])], ["y", "p3", "p4", "gm"], inits)


def resize():
    """Resize's modes (opset 13) and Upsample (opset 9 in upsample9)."""
    n = h.make_node
    nodes = [
        n("Resize", ["x", "", "sc2"], ["r1"], mode="nearest"),
        n("Resize", ["x", "", "", "sz1"], ["r2"], mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
        n("Resize", ["x", "", "sc3"], ["r3"], mode="linear", coordinate_transformation_mode="align_corners"),
        n("Resize", ["x", "", "", "sz2"], ["r4"], mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn",
          nearest_mode="round_prefer_ceil"),
        n("Resize", ["x", "", "sc4"], ["r5"], mode="nearest", coordinate_transformation_mode="asymmetric",
          nearest_mode="floor"),
        n("Resize", ["x", "", "sc4"], ["r6"], mode="linear", coordinate_transformation_mode="asymmetric"),
    ]
    inits = [floats("sc2", [1, 1, 2, 2]), ints("sz1", [1, 2, 6, 5]), floats("sc3", [1, 1, 1.5, 1.5]),
             ints("sz2", [1, 2, 3, 7]), floats("sc4", [1, 1, 0.75, 2.5])]
    return model("resize", 13, nodes, [("x", [1, 2, 4, 4])], ["r1", "r2", "r3", "r4", "r5", "r6"], inits)


def upsample9():
    n = h.make_node
    nodes = [n("Upsample", ["x", "sc"], ["u1"], mode="nearest"), n("Upsample", ["x", "sc"], ["u2"], mode="linear")]
    return model("upsample9", 9, nodes, [("x", [1, 2, 3, 4])], ["u1", "u2"], [floats("sc", [1, 1, 2, 3])])


def norms():
    """LayerNormalization (with and without B), InstanceNormalization, BatchNormalization of rank 3."""
    n = h.make_node
    nodes = [
        n("LayerNormalization", ["x", "ls", "lb"], ["ln1"], axis=-2, epsilon=1e-6),
        n("LayerNormalization", ["ln1", "ls2"], ["ln2"]),
        n("InstanceNormalization", ["ln2", "is", "ib"], ["in1"], epsilon=1e-4),
        n("Reshape", ["in1", "shp"], ["r3"]),
        n("BatchNormalization", ["r3", "s", "b", "m", "v"], ["bn3"]),
    ]
    inits = [const("ls", [5, 6]), const("lb", [5, 6]), const("ls2", [6]), const("is", [3]), const("ib", [3]),
             ints("shp", [2, 3, 30]), const("s", [3]), const("b", [3]), const("m", [3]), floats("v", [1, 2, 3])]
    return model("norms", 17, nodes, [("x", [2, 3, 5, 6])], ["bn3"], inits)


def slices():
    """Slice (negative steps, ends past the end, negative axes), Split, Gather, Squeeze, Unsqueeze,
    Transpose, Concat, Reshape, Pad (negative pads crop; reflect, edge, constant)."""
    n = h.make_node
    nodes = [
        n("Slice", ["x", "st", "en", "ax", "sp"], ["s1"]),
        n("Slice", ["x", "st2", "en2"], ["s2"]),
        n("Split", ["x", "parts"], ["a", "b", "c"], axis=1),
        n("Split", ["x"], ["d", "e"], axis=-1),
        n("Gather", ["x", "i0"], ["g0"], axis=2),
        n("Gather", ["x", "i12"], ["g1"], axis=3),
        n("Unsqueeze", ["g0", "uax"], ["u"]),
        n("Squeeze", ["u", "uax"], ["q"]),
        n("Transpose", ["b"], ["tr"]),
        n("Transpose", ["c"], ["tr2"], perm=[0, 2, 3, 1]),
        n("Concat", ["a", "c"], ["cat"], axis=-3),
        n("Reshape", ["cat", "shape"], ["rs"]),
        n("Pad", ["x", "pads1", "pv"], ["pd1"], mode="constant"),
        n("Pad", ["x", "pads2"], ["pd2"], mode="reflect"),
        n("Pad", ["x", "pads3"], ["pd3"], mode="edge"),
    ]
    big = 2**63 - 1
    inits = [ints("st", [-1, 1]), ints("en", [-big, big]), ints("ax", [-1, 1]), ints("sp", [-2, 1]),
             ints("st2", [0, 1, 2, 1]), ints("en2", [1, 5, 4, 3]), ints("parts", [1, 3, 2]), ints("i0", 2),
             ints("i12", [1, 2]), ints("uax", [0]), ints("shape", [0, -1, 5]), ints("pads1", [0, 0, 1, -1, 0, 0, 2, 1]),
             floats("pv", [-0.5]), ints("pads2", [0, 0, 2, 1, 0, 0, 1, 3]), ints("pads3", [0, 0, 0, 2, 0, 0, 3, 0])]
    outs = ["s1", "s2", "d", "e", "g1", "q", "tr", "tr2", "rs", "pd1", "pd2", "pd3"]
    return model("slices", 13, nodes, [("x", [2, 6, 5, 4])], outs, inits)


def elementwise():
    """Binary ops with constant operands (exact `scale` activations), n-ary ones, unary ones, PRelu, Pow, Clip."""
    n = h.make_node
    nodes = [
        n("Add", ["x", "k2"], ["a1"]),
        n("Sub", ["k3", "a1"], ["a2"]),
        n("Mul", ["a2", "kneg0"], ["a3"]),
        n("Div", ["a2", "x"], ["a4"]),
        n("Max", ["a1", "a2", "a4"], ["a5"]),
        n("Min", ["a5", "x"], ["a6"]),
        n("Sum", ["a6", "a1", "x"], ["a7"]),
        n("Sub", ["a7", "vec"], ["a8"]),
        n("Abs", ["a8"], ["u1"]),
        n("Sqrt", ["u1"], ["u2"]),
        n("Pow", ["u2", "k3"], ["u3"]),
        n("Exp", ["u3"], ["u4"]),
        n("Neg", ["u4"], ["u5"]),
        n("Reciprocal", ["u5"], ["u6"]),
        n("Erf", ["u6"], ["u7"]),
        n("Tanh", ["u7"], ["u8"]),
        n("Sigmoid", ["u8"], ["u9"]),
        n("HardSigmoid", ["u9"], ["u10"]),
        n("HardSigmoid", ["u10"], ["u11"], alpha=1.0 / 6, beta=0.5),
        n("HardSwish", ["u11"], ["u12"]),
        n("Selu", ["u12"], ["u13"]),
        n("Elu", ["u13"], ["u14"], alpha=0.5),
        n("Softplus", ["u14"], ["u15"]),
        n("PRelu", ["u15", "slope"], ["u16"]),
        n("PRelu", ["u16", "slope1"], ["u17"]),
        n("Clip", ["u17", "lo"], ["u18"]),
        n("Clip", ["u18", "", "hi"], ["u19"]),
        n("Identity", ["u19"], ["y"]),
    ]
    inits = [floats("k2", [2.0]), floats("k3", [3.0]), floats("kneg0", [-0.0]), const("vec", [4, 1, 1]),
             const("slope", [4, 1, 1]), floats("slope1", [0.25]), floats("lo", [-1.0]), floats("hi", [1e30])]
    return model("elementwise", 13, nodes, [("x", [1, 4, 3, 3])], ["y"], inits)


def reduce():
    n = h.make_node
    nodes = [
        n("ReduceMean", ["x"], ["m1"], axes=[2, 3], keepdims=0),
        n("ReduceSum", ["x", "ax"], ["m2"], keepdims=1),
        n("ReduceMax", ["x"], ["m3"]),
        n("ReduceMin", ["x"], ["m4"], axes=[-1], keepdims=0),
        n("ReduceSum", ["x"], ["m5"], keepdims=0),
    ]
    return model("reduce", 13, nodes, [("x", [2, 3, 4, 5])], ["m1", "m2", "m3", "m4", "m5"], [ints("ax", [-3, 2])])


def matmul11():
    """Softmax before opset 13 (through reshapes), Gemm with a matrix C and transA, MatMul by a matrix and a vector."""
    n = h.make_node
    nodes = [
        n("Softmax", ["x"], ["sm"], axis=1),
        n("LogSoftmax", ["x"], ["lsm"], axis=3),
        n("Flatten", ["sm"], ["fl"], axis=1),
        n("Gemm", ["fl", "w", "c"], ["ge"], beta=0.5),
        n("Transpose", ["ge"], ["tt"], perm=[1, 0]),
        n("Gemm", ["tt", "w2"], ["ge2"], transA=1),
        n("MatMul", ["lsm", "mm"], ["mm1"]),
        n("MatMul", ["mm1", "mv"], ["mv1"]),
    ]
    inits = [const("w", [24, 5]), const("c", [2, 5]), const("w2", [5, 3]), const("mm", [4, 3]), const("mv", [3])]
    return model("matmul11", 11, nodes, [("x", [2, 3, 2, 4])], ["ge2", "mv1"], inits)


def names():
    """Tensor names that need quoting; an output that is an input; a Constant node."""
    n = h.make_node
    nodes = [
        n("Conv", ["input.1", "onnx::Conv_1", "onnx::Conv_2"], ["/conv1/Conv_output_0"]),
        n("Relu", ["/conv1/Conv_output_0"], ['a "quoted": name']),
        n("Relu", ['a "quoted": name'], ["ü # not a comment"]),
        n("Relu", ["ü # not a comment"], [" lead\ttab"]),
        n("Relu", [" lead\ttab"], ["0"]),
        n("Identity", ["input.1"], ["copy"]),
        n("Constant", [], ["const: k"], value=floats("cv", [1.5, -2.0])),
        n("Add", ["copy", "const: k"], ["sum \u2028 out"]),
    ]
    inits = [const("onnx::Conv_1", [2, 3, 1, 1]), const("onnx::Conv_2", [2])]
    return model("names", 13, nodes, [("input.1", [1, 3, 2, 2])], ["0", "copy", "sum \u2028 out"], inits)


def error_clip():
    n = h.make_node
    return model("error_clip", 13, [n("Relu", ["x"], ["r"]), n("Clip", ["r"], ["y"])], [("x", [1, 4])], ["y"], [])


def error_convt_same():
    n = h.make_node
    nodes = [n("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")]
    return model("error_convt_same", 13, nodes, [("x", [1, 1, 3, 3])], ["y"], [const("w", [1, 1, 3, 3])])


def error_nan():
    n = h.make_node
    nodes = [n("LeakyRelu", ["x"], ["y"], alpha=float("nan"))]
    return model("error_nan", 13, nodes, [("x", [1, 4])], ["y"], [])


# libonnx-testdata's node tests whose weights are graph inputs (which cnnc
# cannot compile): written as node_<test>.onnx with every input but the
# first an initializer holding test_data_set_0's values (and without
# LayerNormalization's outputs Mean and InvStdDev, which cnnc does not compute).
NODE_DIR = "/usr/share/libonnx-testdata/data/node"
NODE_TESTS = """test_conv_with_strides_padding test_conv_with_strides_and_asymmetric_padding test_conv_with_autopad_same
test_convtranspose_pads test_convtranspose_dilations test_batchnorm_epsilon test_instancenorm_epsilon
test_layer_normalization_4d_axis1 test_layer_normalization_3d_axis_negative_2_epsilon
test_layer_normalization_default_axis test_resize_upsample_scales_nearest test_resize_upsample_scales_linear_align_corners
test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn
test_resize_upsample_sizes_nearest_floor_align_corners test_resize_downsample_sizes_linear_pytorch_half_pixel
test_upsample_nearest test_split_variable_parts_2d test_slice_neg_steps test_slice_end_out_of_bounds
test_slice_negative_axes test_constant_pad test_gemm_all_attributes test_matmul_2d test_clip_splitbounds""".split()


def node_test(name):
    d = os.path.join(NODE_DIR, name)
    m = onnx.load(os.path.join(d, "model.onnx"))
    g = m.graph
    inits = {i.name for i in g.initializer}
    for k, vi in enumerate([i for i in g.input if i.name not in inits][1:], 1):
        t = onnx.TensorProto()
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "rb") as f:
            t.ParseFromString(f.read())
        t.name = vi.name
        g.initializer.append(t)
        g.input.remove(vi)
    for node in g.node:
        if node.op_type == "LayerNormalization":
            del node.output[1:]
    made = {o for node in g.node for o in node.output}
    for o in [o for o in g.output if o.name not in made]:
        g.output.remove(o)
    return m


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "emit", "onnx")
    os.makedirs(out, exist_ok=True)
    models = [(make.__name__, make) for make in [conv, resize, upsample9, norms, slices, elementwise, reduce, matmul11,
                                                 names, error_clip, error_convt_same, error_nan]]
    if os.path.isdir(NODE_DIR):
        models += [("node_" + t[len("test_"):], lambda t=t: node_test(t)) for t in NODE_TESTS]
    else:
        print("no %s: node_*.onnx not written" % NODE_DIR)
    for name, make in models:
        path = os.path.join(out, name + ".onnx")
        onnx.save(make(), path)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
