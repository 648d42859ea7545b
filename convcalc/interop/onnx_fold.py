"""Folding the constant subgraphs exporters emit (weights stored as Constant nodes, and the
Shape -> Gather -> Unsqueeze -> Concat arithmetic of sizes): the common ops in NumPy, any
other deterministic op through onnx's reference evaluator on that one node."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RANDOM = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
          "Multinomial", "Bernoulli")
NOT_FOLDED = RANDOM + ("If", "Loop", "Scan")


def foldable(node) -> bool:
    """A deterministic op of the default domain: its value is known when its inputs are."""
    return node.domain in ("", "ai.onnx") and node.op_type not in NOT_FOLDED


def fold(node, inputs: list, opset: int) -> list[np.ndarray]:
    """The node's outputs from its constant inputs (None for absent optional inputs)."""
    from convcalc.interop.onnx_lite import attribute_value
    attrs = {a.name: attribute_value(a) for a in node.attribute}
    fast = FAST.get(node.op_type)
    if fast is not None and (node.op_type not in AXES_AS_INPUT or opset >= 13
                             or "axes" in attrs or len(inputs) > 1):
        return [np.asarray(fast(attrs, *inputs))]
    return _reference(node, inputs, opset)


def shape_slice(shape: tuple[int, ...], node) -> np.ndarray:
    """Shape's output for a known shape, with opset 15's start and end."""
    from convcalc.interop.onnx_lite import attribute_value
    attrs = {a.name: attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.asarray(shape[start:end], dtype=np.int64)


def _constant(attrs: dict) -> np.ndarray:
    from convcalc.interop.onnx_lite import to_array
    if "value" in attrs:
        return to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64),
                       ("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise ValueError("a Constant without a supported value")


def _axes(attrs: dict, axes) -> list[int]:
    return [int(a) for a in (attrs.get("axes") if axes is None else axes)]


def _unsqueeze(attrs: dict, data, axes=None):
    axes = _axes(attrs, axes)
    rank = data.ndim + len(axes)
    return np.expand_dims(data, tuple(sorted(a % rank for a in axes)))


def _squeeze(attrs: dict, data, axes=None):
    if axes is None and "axes" not in attrs:
        return np.squeeze(data)
    return np.squeeze(data, tuple(a % data.ndim for a in _axes(attrs, axes)))


def _cast(attrs: dict, data):
    from convcalc.interop.onnx_lite import np_dtype
    return data.astype(np_dtype(attrs["to"]))


def _gather(attrs: dict, data, indices):
    return np.take(data, indices.astype(np.int64), axis=attrs.get("axis", 0))


def _concat(attrs: dict, *parts):
    return np.concatenate(parts, axis=attrs["axis"])


def _reshape(attrs: dict, data, shape):
    target = [int(s) for s in shape]
    if not attrs.get("allowzero", 0):
        target = [data.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return data.reshape(target)


def _div(a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):
        return np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))
    return np.true_divide(a, b)


FAST: dict[str, Callable] = {
    "Constant": lambda attrs: _constant(attrs),
    "Identity": lambda attrs, x: x,
    "Cast": _cast,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Reshape": _reshape,
    "Transpose": lambda attrs, x: np.transpose(x, attrs.get("perm")),  # none: axes reversed
    "Add": lambda attrs, a, b: np.add(a, b),
    "Sub": lambda attrs, a, b: np.subtract(a, b),
    "Mul": lambda attrs, a, b: np.multiply(a, b),
    "Div": lambda attrs, a, b: _div(a, b),
}
AXES_AS_INPUT = ("Unsqueeze", "Squeeze")  # attributes before opset 13


def _reference(node, inputs: list, opset: int) -> list[np.ndarray]:
    """One node through onnx.reference.ReferenceEvaluator (pure NumPy, no code from the
    file)."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    feeds, names, initializers = {}, [], []
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        feeds[name] = value
    copy = helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))],
                            domain=node.domain)
    copy.attribute.extend(node.attribute)
    graph = helper.make_graph([copy], "fold", [], [helper.make_tensor_value_info(
        f"out{i}", 0, None) for i in range(len(node.output))], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, {})]
