"""The ONNX converter table, dense and element-wise part: Gemm, MatMul, Flatten and the
flatten-like reshapes, Concat, Softmax, Add/Mul/Sum of tensors and the activations (see
onnx_ops.py for the table and its conventions)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcalc.interop.onnx_ops import (
    SAME,
    WEIGHTS,
    NotConvertible,
    OnnxNode,
    _floats,
    converter,
    f32,
    without_defaults,
)

# -- dense ---------------------------------------------------------------------------------------

@converter("Gemm")
def gemm(node: OnnxNode) -> dict | list:
    """alpha * A' @ B' + beta * C -> linear (alpha and beta folded into the weights); transA
    is a permute before it when A's axis 0 is data (a graph read without a batch axis)."""
    transpose_a = bool(node.attr("transA", 0))
    if transpose_a and node.rank != 3:
        raise NotConvertible("transA 1 (transposes the batch axis)")
    b = node.need_const(1, "B")
    weight = (b if node.attr("transB", 0) else b.T) * np.float32(node.attr("alpha", 1.0))
    bias, out = node.const(2), weight.shape[0]
    if bias is not None:
        bias = np.asarray(bias, np.float32) * np.float32(node.attr("beta", 1.0))
        if bias.size == 1:
            bias = np.full(out, bias.reshape(-1)[0], np.float32)
        elif bias.size == out and bias.shape[-1] == out:  # (N,) or (1, N)
            bias = bias.reshape(-1)
        else:
            raise NotConvertible(f"C of shape {list(bias.shape)} is not one value per output "
                                 "feature")
    layer = linear_layer(weight, bias)
    return [{"type": "permute", "dims": [0, 2, 1]}, layer] if transpose_a else layer


def linear_layer(weight: np.ndarray, bias: np.ndarray | None) -> dict:
    """nn.Linear: weight (out, in), bias (out,)."""
    layer = {"type": "linear", "out_features": int(weight.shape[0]), "bias": bias is not None,
             WEIGHTS: {"weight": np.ascontiguousarray(weight)}}
    if bias is not None:
        layer[WEIGHTS]["bias"] = bias.reshape(-1)
    return without_defaults(layer, bias=True)


@converter("MatMul")
def matmul(node: OnnxNode, bias: np.ndarray | None = None) -> dict:
    """x @ W with W a constant (K, M) -> linear (weight W.T), with the bias of a following
    Add when the importer folds MatMul + Add."""
    w = node.need_const(1, "the second operand")
    if node.const(0) is not None or w.ndim != 2:
        raise NotConvertible("a product other than input @ constant matrix")
    return linear_layer(w.T, bias)


@converter("Flatten")
def flatten(node: OnnxNode) -> dict:
    axis = int(node.attr("axis", 1)) % max(node.rank, 1)
    if axis != 1:
        raise NotConvertible(f"axis {node.attr('axis')} (only axis 1 keeps the batch axis "
                             "alone)")
    return {"type": "flatten"}


@converter("Reshape", since=5)
def reshape(node: OnnxNode) -> dict | str:
    return _flatten_like(node)


@converter("Squeeze", "Unsqueeze")
def squeeze(node: OnnxNode) -> dict | str:
    return _flatten_like(node)


def _flatten_like(node: OnnxNode) -> dict | str:
    """A reshape that gives (N, features) from (N, ...) is flatten; (N, ...) unchanged is the
    input. Other reshapes have no kind yet."""
    src, out = node.in_shapes[0], node.out_shapes[0]
    if out is None and src is not None:  # shape inference stops at folded shapes
        out = _computed_shape(node, src)
    if src is None or out is None:
        raise NotConvertible("shapes unknown to shape inference")
    if tuple(src) == tuple(out):
        return SAME
    if len(out) == 2 and out[0] == src[0] and len(src) > 2:
        return {"type": "flatten"}
    raise NotConvertible(f"reshape {list(src[1:])} -> {list(out[1:])} (only flatten is "
                         "modelled)")


def _computed_shape(node: OnnxNode, src) -> tuple[int, ...] | None:
    """The output shape from a folded target shape (Reshape) or axes (Squeeze/Unsqueeze)."""
    from convcalc.interop.onnx_fold import FAST
    consts = [np.zeros(src, np.float32), *node.consts[1:]]
    if node.op not in FAST or any(c is None for c in consts[1:]):
        return None
    try:
        return tuple(np.asarray(FAST[node.op](node.attrs, *consts)).shape)
    except ValueError as err:
        raise NotConvertible(f"its target does not fit the input {list(src)} (the batch "
                             f"axis read as 1): {err}") from None


@converter("Concat")
def concat(node: OnnxNode) -> dict | str:
    if len(node.consts) == 1:
        return SAME
    if any(c is not None for c in node.consts):
        raise NotConvertible("a constant among the concatenated tensors")
    axis = int(node.attr("axis")) % node.rank
    if axis == 0:
        raise NotConvertible("concatenation along the batch axis")
    return without_defaults({"type": "concat", "dim": axis}, dim=1)


@converter("Softmax", since=13)
def softmax(node: OnnxNode) -> dict:
    return {"type": "softmax", "dim": _softmax_axis(node, int(node.attr("axis", -1)))}


@converter("Softmax", since=1)
def softmax_coerced(node: OnnxNode) -> dict:
    """Before opset 13, Softmax flattens the axes from `axis` (default 1) into one: it is a
    softmax along one axis when all the others after it are 1."""
    axis = int(node.attr("axis", 1)) % node.rank
    sizes = node.in_shapes[0][axis:]
    wide = [i for i, s in enumerate(sizes) if s != 1]
    if len(wide) > 1:
        raise NotConvertible(f"opset {node.opset} Softmax over axes {axis}.. of "
                             f"{list(node.in_shapes[0])} (several axes as one)")
    return {"type": "softmax", "dim": _softmax_axis(node, axis + (wide[0] if wide else 0))}


def _softmax_axis(node: OnnxNode, axis: int) -> int:
    axis %= node.rank
    if axis == 0:
        raise NotConvertible("softmax along the batch axis")
    return axis


# -- element-wise ---------------------------------------------------------------------------

@converter("Add", "Mul", "Sum")
def merge(node: OnnxNode) -> dict | str:
    if all(c is None for c in node.consts):
        return {"type": "mul" if node.op == "Mul" else "add"}
    constant = next(c for c in node.consts if c is not None)
    neutral = 1.0 if node.op == "Mul" else 0.0
    if np.all(constant == neutral) and node.out_shapes[0] == _dynamic_shape(node):
        return SAME
    raise NotConvertible(f"{node.op} with a constant (no kind for constant arithmetic yet)")


def _dynamic_shape(node: OnnxNode):
    return next(s for s, c in zip(node.in_shapes, node.consts) if c is None)


def _simple(kind: str) -> Callable:
    def convert(node: OnnxNode) -> dict:
        return {"type": kind}
    return convert


for _op, _kind in {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
                   "HardSwish": "hardswish"}.items():
    converter(_op)(_simple(_kind))


@converter("LeakyRelu")
def leaky_relu(node: OnnxNode) -> dict:
    slope = f32(node.attr("alpha", 0.01))
    return without_defaults({"type": "leaky_relu", "negative_slope": slope},
                            negative_slope=0.01)


@converter("Elu")
def elu(node: OnnxNode) -> dict:
    return without_defaults({"type": "elu", "alpha": f32(node.attr("alpha", 1.0))}, alpha=1.0)


@converter("Gelu", since=20)
def gelu(node: OnnxNode) -> dict:
    approximate = node.attr("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    return without_defaults({"type": "gelu", "approximate": approximate}, approximate="none")


@converter("HardSigmoid")
def hardsigmoid(node: OnnxNode) -> dict:
    alpha, beta = node.attr("alpha", 0.2), node.attr("beta", 0.5)
    if not (np.isclose(alpha, 1 / 6, rtol=1e-6) and np.isclose(beta, 0.5)):
        raise NotConvertible(f"alpha {alpha:g}, beta {beta:g} (hardsigmoid is relu6(x+3)/6: "
                             "alpha 1/6, beta 0.5)")
    return {"type": "hardsigmoid"}


@converter("Clip")
def clip(node: OnnxNode) -> dict:
    return _clip(node, node.attr("min"), node.attr("max"))


@converter("Clip", since=11)
def clip_inputs(node: OnnxNode) -> dict:
    low, high = node.const(1), node.const(2)
    for i, what in ((1, "min"), (2, "max")):
        if node.const(i) is None and len(node.in_shapes) > i and node.in_shapes[i] is not None:
            raise NotConvertible(f"{what} is computed from the input")
    return _clip(node, None if low is None else _floats(low),
                 None if high is None else _floats(high))


def _clip(node: OnnxNode, low, high) -> dict:
    low = None if low is None or low <= -3.4e38 else float(low)
    high = None if high is None or high >= 3.4e38 else float(high)
    if low == 0 and high == 6:
        return {"type": "relu6"}
    if low == 0 and high is None:
        return {"type": "relu"}
    raise NotConvertible(f"clip to [{low}, {high}] (relu6 is [0, 6], relu [0, inf])")


@converter("Identity")
def identity(node: OnnxNode) -> dict:
    return {"type": "identity"}


@converter("Dropout")
def dropout(node: OnnxNode) -> dict:
    """The identity at inference; p is kept for the record (attribute, then input at 12)."""
    if len(node.out_shapes) > 1 and node.out_shapes[1] is not None:
        raise NotConvertible("the mask output is used")
    training = node.const(2)
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise NotConvertible("training_mode true")
    ratio = node.const(1) if node.opset >= 12 else node.attr("ratio")
    p = 0.5 if ratio is None else _floats(ratio)
    return without_defaults({"type": "dropout", "p": p}, p=0.5)


@converter("Cast")
def cast(node: OnnxNode) -> str:
    if int(node.attr("to")) not in (1,):  # FLOAT
        raise NotConvertible("a cast to a type other than float32")
    return SAME
