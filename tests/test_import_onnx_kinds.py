"""ONNX ops that map onto the layout, reduction, normalisation and arithmetic kinds
(reshape, permute, slice, split, sum/mean/amax/amin, matmul, depth_to_space, layernorm,
instancenorm, prelu, mish, softplus, hardtanh, sub/div/pow and constants), built with
onnx.helper and run against onnxruntime within 1e-4 relative."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_import_onnx import check, node, rand  # noqa: E402

from convcalc.layers import REGISTRY  # noqa: E402

if not {"reshape", "layernorm", "sub"} <= set(REGISTRY):
    pytest.skip("the layout and arithmetic kinds are not in this tree", allow_module_level=True)

W = {"w": rand(6, 3, 1, 1)}
CONV = node("Conv", ["x", "w"], "c")


def i64(*values):
    return np.array(values, np.int64)


@pytest.mark.parametrize("target,kinds", [((0, 3, 2, -1), ["conv2d", "reshape"]),
                                          ((1, -1), ["conv2d", "flatten"]),
                                          ((0, 6, 4, 4), ["conv2d"])])
def test_reshape(tmp_path, target, kinds):
    check(tmp_path, [CONV, node("Reshape", ["c", "t"])], (1, 3, 4, 4), W | {"t": i64(*target)},
          13, kinds)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze(tmp_path, opset):
    axes = {"axes": [2]} if opset < 13 else {}
    names = ["c"] if opset < 13 else ["c", "a"]
    inits = W | ({"a": i64(2)} if opset >= 13 else {})
    check(tmp_path, [CONV, node("Unsqueeze", names, **axes)], (1, 3, 4, 4), inits, opset,
          ["conv2d", "reshape"])


def test_transpose(tmp_path):
    check(tmp_path, [CONV, node("Transpose", ["c"], perm=[0, 2, 3, 1])], (1, 3, 4, 5), W,
          kinds=["conv2d", "permute"])


@pytest.mark.parametrize("opset,args", [
    (9, {"starts": [1, 0], "ends": [5, -1], "axes": [1, 3]}),
    (13, {"s": i64(1, 0), "e": i64(5, -1), "a": i64(1, 3), "st": i64(2, 1)}),
    (13, {"s": i64(-3), "e": i64(2**62), "a": i64(2), "st": i64(1)})])
def test_slice(tmp_path, opset, args):
    if opset < 10:
        nodes = [CONV, node("Slice", ["c"], **args)]
        inits = W
    else:
        nodes = [CONV, node("Slice", ["c", "s", "e", "a", "st"])]
        inits = W | args
    check(tmp_path, nodes, (1, 3, 6, 5), inits, opset)


@pytest.mark.parametrize("opset,sizes", [(11, [2, 4]), (13, [3, 3]), (18, None)])
def test_split_and_merge(tmp_path, opset, sizes):
    inits = dict(W)
    if opset < 13:
        split = node("Split", ["c"], ["p0", "p1"], axis=1, split=sizes)
    elif opset < 18:
        split = node("Split", ["c", "sz"], ["p0", "p1"], axis=1)
        inits["sz"] = i64(*sizes)
    else:
        split = node("Split", ["c"], ["p0", "p1"], axis=1, num_outputs=2)
    nodes = [CONV, split, node("Relu", ["p0"], "r"), node("Concat", ["p1", "r"], axis=1)]
    kinds = check(tmp_path, nodes, (1, 3, 4, 4), inits, opset)
    assert "split" in kinds


@pytest.mark.parametrize("op,axes,keep", [("ReduceSum", [1], 1), ("ReduceMean", [1], 0),
                                          ("ReduceMax", [3], 1), ("ReduceMin", [1, 2], 0),
                                          ("ReduceMean", [2, 3], 1)])
def test_reductions(tmp_path, op, axes, keep):
    check(tmp_path, [CONV, node(op, ["c", "a"], keepdims=keep)], (1, 3, 4, 5),
          W | {"a": i64(*axes)}, 18)


def test_attention_matmul(tmp_path):
    """q @ k^T -> softmax -> @ v over spatial positions, the blocks of hybrid CNNs."""
    nodes = [CONV, node("Reshape", ["c", "t"], "f"), node("Transpose", ["f"], "ft",
                                                           perm=[0, 2, 1]),
             node("MatMul", ["ft", "f"], "att"), node("Softmax", ["att"], "sm", axis=-1),
             node("MatMul", ["f", "sm"])]
    check(tmp_path, nodes, (1, 3, 4, 4), W | {"t": i64(0, 6, 16)}, 13)


@pytest.mark.parametrize("op,mode", [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"),
                                     ("SpaceToDepth", None)])
def test_depth_space(tmp_path, op, mode):
    attrs = {"blocksize": 2} | ({"mode": mode} if mode else {})
    check(tmp_path, [node("Conv", ["x", "w"], "c"), node(op, ["c"], **attrs)], (1, 3, 4, 6),
          {"w": rand(8, 3, 1, 1)}, 13)


@pytest.mark.parametrize("axis", [-1, 1])
def test_layernorm(tmp_path, axis):
    shape = [5] if axis == -1 else [6, 4, 5]
    check(tmp_path, [CONV, node("LayerNormalization", ["c", "s", "b"], axis=axis,
                                epsilon=1e-4)], (1, 3, 4, 5),
          W | {"s": rand(*shape), "b": rand(*shape)}, 17, ["conv2d", "layernorm"])


def test_instancenorm(tmp_path):
    check(tmp_path, [CONV, node("InstanceNormalization", ["c", "s", "b"])], (1, 3, 4, 5),
          W | {"s": rand(6), "b": rand(6)}, 13, ["conv2d", "instancenorm2d"])


@pytest.mark.parametrize("slope", [rand(1), rand(6, 1, 1)])
def test_prelu(tmp_path, slope):
    check(tmp_path, [CONV, node("PRelu", ["c", "s"])], (1, 3, 4, 4), W | {"s": slope},
          13, ["conv2d", "prelu"])


@pytest.mark.parametrize("op,opset,attrs,kind", [("Mish", 18, {}, "mish"),
                                                 ("Softplus", 13, {}, "softplus"),
                                                 ("Clip", 9, {"min": -0.5, "max": 0.7},
                                                  "hardtanh"),
                                                 ("LogSoftmax", 13, {"axis": 1},
                                                  "log_softmax")])
def test_activations(tmp_path, op, opset, attrs, kind):
    check(tmp_path, [CONV, node(op, ["c"], **attrs)], (1, 3, 4, 4), W, opset,
          ["conv2d", kind])


@pytest.mark.parametrize("op,first,kind", [("Add", False, "add"), ("Sub", False, "sub"),
                                           ("Sub", True, "rsub"), ("Mul", True, "mul"),
                                           ("Div", False, "div"), ("Div", True, "rdiv"),
                                           ("Pow", False, "pow")])
def test_scalar_constants(tmp_path, op, first, kind):
    value = np.float32(2.0 if op == "Pow" else 0.37)
    nodes = [CONV, node("Sigmoid", ["c"], "sg"), node(op, ["sg" if op == "Pow" else "c",
                                                          "k"] if not first else
                                                     ["k", "sg"])]
    kinds = check(tmp_path, nodes, (1, 3, 4, 4), W | {"k": value}, 13)
    assert kinds[-1] == kind


def test_tensor_sub_div_and_layer_scale(tmp_path):
    nodes = [CONV, node("Sigmoid", ["c"], "s"), node("Sub", ["c", "s"], "d"),
             node("Add", ["s", "one"], "s1"), node("Div", ["d", "s1"], "q"),
             node("Mul", ["q", "gamma"])]
    kinds = check(tmp_path, nodes, (1, 3, 4, 4),
                  W | {"one": np.float32(1.0), "gamma": rand(6, 1, 1)}, 13)
    assert kinds == ["conv2d", "sigmoid", "sub", "add", "div", "layer_scale"]


def test_layer_scale_with_the_constant_first(tmp_path):
    """torchvision's CNBlock writes `layer_scale * x`: the constant is the Mul's first input,
    and its (C, 1, 1) shape is read against the network tensor's rank, not its own."""
    nodes = [CONV, node("Sigmoid", ["c"], "s"), node("Mul", ["gamma", "s"])]
    kinds = check(tmp_path, nodes, (1, 3, 4, 4), W | {"gamma": rand(6, 1, 1)}, 13)
    assert kinds == ["conv2d", "sigmoid", "layer_scale"]


@pytest.mark.parametrize("op,first", [("Add", False), ("Add", True), ("Sub", False)])
def test_per_channel_bias(tmp_path, op, first):
    """A per-channel constant added (or subtracted) is channel_bias, its weight the constant
    (negated for Sub): ConvNeXt-V2's GRN beta, a bias-free conv's bias added apart."""
    nodes = [CONV, node("Sigmoid", ["c"], "s"), node(op, ["beta", "s"] if first else ["s", "beta"])]
    kinds = check(tmp_path, nodes, (1, 3, 4, 4), W | {"beta": rand(1, 6, 1, 1)}, 13)
    assert kinds == ["conv2d", "sigmoid", "channel_bias"]
