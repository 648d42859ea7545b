"""`convcalc import model.onnx`: ONNX models built here with onnx.helper, one per operator
and attribute variant, against onnxruntime (run equals its output within 1e-4 relative) and
against onnx.shape_inference (every layer's shape; the importer verifies each one)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_oracle import assert_close, convcalc_run, onnxruntime_run  # noqa: E402

from convcalc.interop import ImportFailure  # noqa: E402
from convcalc.interop.onnx_import import import_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def rand(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape).astype(np.float32)


def node(op, inputs, outputs="y", **attrs):
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    return helper.make_node(op, list(inputs), outputs, name=f"{op.lower()}_{outputs[0]}",
                            **attrs)


def build(path, nodes, shape, inits=None, opset=17, in_dims=None):
    """A model: input x of `shape` (or `in_dims`, symbolic allowed), output y."""
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims or shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.save(model, str(path))
    return path


def check(tmp_path, nodes, shape, inits=None, opset=17, kinds=None):
    """convcalc's run equals onnxruntime's; returns the imported layers' kinds."""
    path = build(tmp_path / "m.onnx", nodes, shape, inits, opset)
    x = rand(*shape)
    report, ours = convcalc_run(path, x)
    assert_close(ours, onnxruntime_run(path, x))
    found = [layer.type for layer in report.layers]
    if kinds is not None:
        assert found == kinds
    return found


W = rand(4, 3, 3, 3)
B = rand(4)

CONV = {
    "basic": ({"pads": [1, 1, 1, 1]}, W),
    "strided": ({"strides": [2, 2]}, W),
    "dilated": ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, W),
    "asymmetric": ({"pads": [0, 1, 1, 2]}, W),
    "same_upper": ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, W),
    "same_lower": ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, W),
    "valid": ({"auto_pad": "VALID"}, W),
    "grouped": ({"group": 3, "kernel_shape": [3, 3]}, rand(6, 1, 3, 3)),
}


@pytest.mark.parametrize("variant", sorted(CONV))
@pytest.mark.parametrize("opset", [9, 11, 21])
def test_conv(tmp_path, variant, opset):
    attrs, weight = CONV[variant]
    inits = {"w": weight, "b": rand(weight.shape[0])}
    assert check(tmp_path, [node("Conv", ["x", "w", "b"], **attrs)], (1, 3, 9, 10), inits,
                 opset) == ["conv2d"]


def test_conv1d_and_3d_without_bias(tmp_path):
    check(tmp_path, [node("Conv", ["x", "w"], pads=[1, 1])], (1, 3, 12), {"w": rand(5, 3, 3)},
          kinds=["conv1d"])
    check(tmp_path, [node("Conv", ["x", "w"], strides=[1, 2, 2])], (1, 2, 5, 6, 6),
          {"w": rand(3, 2, 3, 3, 3)}, kinds=["conv3d"])


TCONV = {
    "basic": {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
    "output_shape": {"strides": [2, 2], "output_shape": [11, 12]},
    "same_lower": {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
    "dilated_grouped": {"dilations": [2, 2], "group": 2},
    "asymmetric": {"strides": [2, 2], "pads": [1, 1, 0, 0]},
}


@pytest.mark.parametrize("variant", sorted(TCONV))
def test_conv_transpose(tmp_path, variant):
    inits = {"w": rand(4, 3, 3, 3), "b": rand(6 if variant == "dilated_grouped" else 3)}
    if variant == "dilated_grouped":
        inits["w"] = rand(4, 3, 3, 3)
    check(tmp_path, [node("ConvTranspose", ["x", "w", "b"], **TCONV[variant])],
          (1, 4, 6, 6), inits, kinds=["conv_transpose2d"])


@pytest.mark.parametrize("opset", [9, 15])
def test_batchnorm(tmp_path, opset):
    inits = {"s": rand(3), "b": rand(3), "m": rand(3), "v": rand(3, low=0.5, high=2)}
    check(tmp_path, [node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
          (1, 3, 5, 5), inits, opset, ["batchnorm2d"])


POOLS = {
    ("MaxPool", "basic"): {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ("MaxPool", "ceil"): {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    ("MaxPool", "dilated"): {"kernel_shape": [2, 2], "dilations": [2, 2]},
    ("MaxPool", "same_upper"): {"kernel_shape": [3, 3], "strides": [2, 2],
                                "auto_pad": "SAME_UPPER"},
    ("MaxPool", "stride_default_1"): {"kernel_shape": [2, 2]},
    ("AveragePool", "exclude_pad"): {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    ("AveragePool", "include_pad"): {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                     "count_include_pad": 1},
    ("AveragePool", "ceil"): {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    ("MaxPool", "wide_pads"): {"kernel_shape": [3, 3], "pads": [2, 2, 2, 1]},
    ("AveragePool", "wide_pads_include"): {"kernel_shape": [3, 3], "pads": [2, 0, 2, 2],
                                           "count_include_pad": 1},
}


@pytest.mark.parametrize("op,variant", sorted(POOLS))
def test_pools(tmp_path, op, variant):
    check(tmp_path, [node(op, ["x"], **POOLS[op, variant])], (1, 2, 9, 10), opset=12)


@pytest.mark.parametrize("op,kind", [("GlobalAveragePool", "global_avgpool"),
                                     ("GlobalMaxPool", "global_maxpool")])
def test_global_pools(tmp_path, op, kind):
    check(tmp_path, [node(op, ["x"])], (1, 3, 5, 6), kinds=[kind])


ACTIVATIONS = [
    ("Relu", {}, 9, "relu"), ("LeakyRelu", {"alpha": 0.2}, 9, "leaky_relu"),
    ("Sigmoid", {}, 9, "sigmoid"), ("Tanh", {}, 9, "tanh"),
    ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, 9, "hardsigmoid"),
    ("HardSwish", {}, 14, "hardswish"), ("Elu", {"alpha": 0.7}, 9, "elu"),
    ("Gelu", {}, 20, "gelu"), ("Gelu", {"approximate": "tanh"}, 20, "gelu"),
    ("Clip", {"min": 0.0, "max": 6.0}, 9, "relu6"), ("Dropout", {}, 9, "dropout"),
    ("Dropout", {"ratio": 0.1}, 10, "dropout"), ("Identity", {}, 9, "identity"),
]


@pytest.mark.parametrize("op,attrs,opset,kind", ACTIVATIONS,
                         ids=[f"{a[0]}{a[1] or ''}" for a in ACTIVATIONS])
def test_activations(tmp_path, op, attrs, opset, kind):
    nodes = [node("Conv", ["x", "w"], "c"), node(op, ["c"], **attrs)]
    check(tmp_path, nodes, (1, 3, 6, 6), {"w": rand(3, 3, 1, 1) * 8}, opset,
          ["conv2d"] + ([kind] if kind else []))


@pytest.mark.parametrize("high,kind", [(6.0, "relu6"), (None, "relu")])
def test_clip_inputs(tmp_path, high, kind):
    inits = {"lo": np.float32(0.0)} | ({"hi": np.float32(high)} if high else {})
    nodes = [node("Conv", ["x", "w"], "c"),
             node("Clip", ["c", "lo"] + (["hi"] if high else []))]
    check(tmp_path, nodes, (1, 3, 6, 6), {"w": rand(3, 3, 1, 1) * 8} | inits, 13,
          ["conv2d", kind])


def test_merges_and_silu(tmp_path):
    nodes = [node("Conv", ["x", "w"], "a", pads=[1, 1, 1, 1]), node("Add", ["a", "x"], "s"),
             node("GlobalAveragePool", ["s"], "g"), node("Sigmoid", ["g"], "gate"),
             node("Mul", ["s", "gate"], "m"), node("Sigmoid", ["m"], "sm"),
             node("Mul", ["m", "sm"], "y")]
    kinds = check(tmp_path, nodes, (1, 3, 6, 6), {"w": rand(3, 3, 3, 3)})
    assert kinds == ["conv2d", "add", "global_avgpool", "sigmoid", "mul", "silu"]


@pytest.mark.parametrize("inputs,kinds", [(["a", "b"], ["conv2d", "conv2d", "concat"]),
                                          (["a"], ["conv2d"])])
def test_concat(tmp_path, inputs, kinds):
    nodes = [node("Conv", ["x", "w"], "a"), node("Conv", ["x", "w"], "b"),
             node("Concat", inputs, axis=1)]
    if len(inputs) == 1:
        nodes.pop(1)
    check(tmp_path, nodes, (1, 3, 4, 4), {"w": rand(2, 3, 1, 1)}, kinds=kinds)


RESIZE = [
    (10, {"mode": "nearest"}, [1, 1, 2, 2], None),
    (11, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
          "nearest_mode": "floor"}, [1, 1, 2, 3], None),
    (13, {"mode": "nearest"}, [1, 1, 3, 2], None),
    (13, {"mode": "linear"}, [1, 1, 2, 2], None),
    (13, {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
     [1, 1, 0.5, 0.5], None),
    (13, {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None,
     [1, 3, 11, 7]),
    (19, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
          "nearest_mode": "floor"}, None, [1, 3, 15, 9]),
]


@pytest.mark.parametrize("opset,attrs,scales,sizes", RESIZE)
def test_resize(tmp_path, opset, attrs, scales, sizes):
    inits = {"scales": np.array(scales or [], np.float32)}
    names = ["x", "scales"] if opset == 10 else ["x", "roi", "scales"]
    inits["roi"] = np.array([], np.float32)
    if sizes:
        inits["sizes"] = np.array(sizes, np.int64)
        names = ["x", "roi", "", "sizes"]
        inits.pop("scales")
    check(tmp_path, [node("Resize", names, **attrs)], (1, 3, 6, 4), inits, opset,
          ["upsample"])


def test_conv_transpose_same_upper_is_refused(tmp_path):
    """SAME_UPPER crops the end only: PyTorch's padding cannot say it (never a different
    network: one error naming the node)."""
    path = build(tmp_path / "m.onnx", [node("ConvTranspose", ["x", "w"], strides=[2, 2],
                                            auto_pad="SAME_UPPER")],
                 (1, 4, 6, 6), {"w": rand(4, 3, 3, 3)})
    with pytest.raises(ImportFailure, match=r"ConvTranspose: pads 0, 1 .* x1 \(convtranspose_y\)"):
        import_onnx(path)


@pytest.mark.parametrize("opset,factor", [(9, 2), (9, 3), (10, 3)])
def test_upsample_integer_nearest(tmp_path, opset, factor):
    op, names = ("Upsample", ["x", "s"]) if opset == 9 else ("Resize", ["x", "s"])
    check(tmp_path, [node(op, names, mode="nearest")], (1, 2, 3, 4),
          {"s": np.array([1, 1, factor, 2], np.float32)}, opset, ["upsample"])


def test_upsample_opset9(tmp_path):
    check(tmp_path, [node("Upsample", ["x", "s"], mode="nearest")], (1, 2, 3, 4),
          {"s": np.array([1, 1, 2, 2], np.float32)}, 9, ["upsample"])


PADS = [(9, {"pads": [0, 0, 1, 2, 0, 0, 3, 0], "value": 0.5}, {}),
        (11, {"mode": "reflect"}, {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}),
        (13, {"mode": "edge"}, {"p": np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64)}),
        (19, {"mode": "wrap"}, {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}),
        (18, {}, {"p": np.array([1, 2, 0, 3], np.int64), "v": np.float32(-1),
                  "axes": np.array([2, 3], np.int64)})]


@pytest.mark.parametrize("opset,attrs,inits", PADS)
def test_pad(tmp_path, opset, attrs, inits):
    names = ["x"] + [k for k in ("p", "v") if k in inits]
    if "axes" in inits:
        names = ["x", "p", "v", "axes"]
    check(tmp_path, [node("Pad", names, **attrs)], (1, 2, 5, 6), inits, opset, ["pad"])


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm(tmp_path, trans_b):
    b = rand(5, 12) if trans_b else rand(12, 5)
    nodes = [node("Flatten", ["x"], "f"),
             node("Gemm", ["f", "b", "c"], transB=trans_b, alpha=0.5, beta=2.0)]
    check(tmp_path, nodes, (1, 3, 2, 2), {"b": b, "c": rand(5)}, kinds=["flatten", "linear"])


def test_matmul_add_is_linear(tmp_path):
    nodes = [node("Flatten", ["x"], "f"), node("MatMul", ["f", "w"], "mm"),
             node("Add", ["mm", "b"])]
    check(tmp_path, nodes, (1, 3, 2, 2), {"w": rand(12, 7), "b": rand(7)},
          kinds=["flatten", "linear"])


def test_pytorch_flatten_pattern(tmp_path):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as PyTorch's exporter writes
    x.view(x.size(0), -1), folds to flatten."""
    nodes = [node("Conv", ["x", "w"], "c"), node("Shape", ["c"], "shape"),
             node("Gather", ["shape", "zero"], "n", axis=0),
             node("Unsqueeze", ["n", "axes"], "n1"),
             node("Concat", ["n1", "minus"], "target", axis=0),
             node("Reshape", ["c", "target"], "r"), node("Gemm", ["r", "fw"], transB=1)]
    inits = {"w": rand(4, 3, 3, 3), "zero": np.array(0, np.int64),
             "axes": np.array([0], np.int64), "minus": np.array([-1], np.int64),
             "fw": rand(5, 64)}
    check(tmp_path, nodes, (1, 3, 6, 6), inits, 13, ["conv2d", "flatten", "linear"])


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_after_global_pool(tmp_path, opset):
    axes = {"axes": [2, 3]} if opset < 13 else {}
    names = ["g"] if opset < 13 else ["g", "a"]
    check(tmp_path, [node("GlobalAveragePool", ["x"], "g"), node("Squeeze", names, **axes)],
          (1, 3, 4, 4), {"a": np.array([2, 3], np.int64)} if opset >= 13 else {}, opset,
          ["global_avgpool", "flatten"])


@pytest.mark.parametrize("op,opset,keepdims", [("ReduceMean", 13, 1), ("ReduceMean", 18, 0),
                                               ("ReduceMax", 18, 1)])
def test_reduce_spatial(tmp_path, op, opset, keepdims):
    if opset < 18:
        nodes, inits = [node(op, ["x"], axes=[2, 3], keepdims=keepdims)], {}
    else:
        nodes = [node(op, ["x", "a"], keepdims=keepdims)]
        inits = {"a": np.array([-1, -2], np.int64)}
    check(tmp_path, nodes, (1, 3, 4, 5), inits, opset)


@pytest.mark.parametrize("opset,shape,axis", [(11, (1, 6, 1), 1), (13, (1, 3, 4, 4), 1),
                                              (13, (1, 3, 4, 4), -1), (9, (1, 5, 1, 1), 1)])
def test_softmax(tmp_path, opset, shape, axis):
    check(tmp_path, [node("Softmax", ["x"], axis=axis)], shape, opset=opset,
          kinds=["softmax"])


def test_lrn(tmp_path):
    check(tmp_path, [node("LRN", ["x"], size=5, alpha=1e-3, beta=0.7, bias=2.0)],
          (1, 7, 4, 4), kinds=["local_response_norm"])


@pytest.mark.parametrize("opset", [18, 21])
def test_group_normalization(tmp_path, opset):
    size = 2 if opset == 18 else 6
    check(tmp_path, [node("GroupNormalization", ["x", "s", "b"], num_groups=2, epsilon=1e-4)],
          (1, 6, 4, 4), {"s": rand(size), "b": rand(size)}, opset, ["groupnorm"])


def test_constant_nodes_fold(tmp_path):
    """Weights as Constant nodes, through Identity and Cast, fold to the conv's weight."""
    w = rand(2, 3, 1, 1)
    nodes = [helper.make_node("Constant", [], ["w0"], value=numpy_helper.from_array(w)),
             node("Identity", ["w0"], "w1"), node("Cast", ["w1"], "w2", to=1),
             node("Conv", ["x", "w2"])]
    check(tmp_path, nodes, (1, 3, 4, 4), kinds=["conv2d"])


def test_gelu_as_pytorch_writes_it_before_opset_20(tmp_path):
    """x * 0.5 * (1 + erf(x / sqrt(2))): Div, Erf, Add, Mul, Mul (constants as Constant
    nodes) is one gelu."""
    def constant(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
            np.array(value, np.float32)))
    nodes = [node("Conv", ["x", "w"], "c"), constant("k2", 1.4142135381698608),
             node("Div", ["c", "k2"], "d"), node("Erf", ["d"], "e"), constant("k1", 1.0),
             node("Add", ["e", "k1"], "a"), node("Mul", ["c", "a"], "m"),
             constant("kh", 0.5), node("Mul", ["m", "kh"])]
    check(tmp_path, nodes, (1, 3, 4, 4), {"w": rand(3, 3, 1, 1) * 3}, 17, ["conv2d", "gelu"])
