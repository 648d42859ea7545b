"""Reading an ONNX graph whose axis 0 is data, not a batch.

A convcalc spec describes one sample: its tensors carry the batch axis implicitly, and an
imported file's axis 0 is that batch axis. Some graphs use axis 0 as data: a 2-D input
(x @ W for a [M, K] matrix x), a transpose, reshape, slice, reduction or concat across it.
When such a graph's axis 0 has a fixed size and no operator in it needs a batch axis (conv,
pools, batch/instance/group norm, LRN, resize, depth/space), the whole input tensor is one
sample: the spec's input is the file's whole shape, convcalc adds its batch axis of 1, and
every ONNX axis k is convcalc's dim k + 1.

The converters of onnx_ops*.py read shapes with a batch axis at 0. So the graph is read as
if a leading axis of 1 were there: every shape gets it (`lift_shape`), and each node's
axis-bearing attributes and constant inputs are moved by one (`lift_node`), which is the
same graph with an extra leading axis of 1. An op without a rule here is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcalc.interop.onnx_ops import NotConvertible

BATCH_BOUND = frozenset({
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
    "GlobalMaxPool", "GlobalLpPool", "BatchNormalization", "InstanceNormalization",
    "GroupNormalization", "LRN", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth",
    "MaxRoiPool", "RoiAlign", "MaxUnpool"})
AXIS_FREE = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Gelu",
    "Mish", "Softplus", "Softsign", "PRelu", "Clip", "Add", "Sub", "Mul", "Div", "Pow", "Sum",
    "Max", "Min", "Mean", "Cast", "CastLike", "Identity", "Dropout", "MatMul", "Gemm", "Abs",
    "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Floor", "Ceil", "Round", "Sign"})
MIN_RANK, MAX_RANK = 2, 4  # a spec's input: [C, L], [C, H, W] or [C, D, H, W]


def possible(model, dims: list) -> bool:
    """Axis 0 can be read as data: fixed sizes, a rank a spec input has, and no operator
    that needs a batch axis."""
    return (MIN_RANK <= len(dims) <= MAX_RANK and all(isinstance(d, int) and d > 0 for d in dims)
            and not any(n.op_type in BATCH_BOUND for n in model.graph.node))


def lift_shape(shape):
    return None if shape is None else (1, *shape)


def lift_node(op: str, attrs: dict, consts: list, rank: int, opset: int,
              raw_in: tuple | None) -> tuple[dict, list]:
    """(attrs, consts) of the same node on tensors with a leading axis of 1; `rank` is the
    ONNX rank of input 0 and `raw_in` its ONNX shape."""
    if op in AXIS_FREE:
        return attrs, consts
    rule = RULES.get(op)
    if rule is None:
        raise NotConvertible("axis 0 of this graph is data (no batch axis), and convcalc has no "
                             f"rule to read {op} so")
    attrs, consts = dict(attrs), list(consts)
    rule(attrs, consts, rank, opset, raw_in)
    return attrs, consts


def _shift(axes, rank: int) -> list[int]:
    return [int(a) % rank + 1 for a in np.ravel(axes)]


def _flatten(attrs, consts, rank, opset, raw_in):
    axis = int(attrs.get("axis", 1))
    attrs["axis"] = (axis if axis >= 0 else axis + rank) + 1


def _softmax(attrs, consts, rank, opset, raw_in):
    attrs["axis"] = _shift([attrs.get("axis", -1 if opset >= 13 else 1)], rank)[0]


def _axes_list(since_input: int, default_all: bool = True) -> Callable:
    """Reduce*: `axes` an attribute before `since_input`, input 1 from it; absent = all."""
    def rule(attrs, consts, rank, opset, raw_in):
        as_input = opset >= since_input
        axes = (consts[1] if len(consts) > 1 else None) if as_input else attrs.get("axes")
        if axes is None or np.size(axes) == 0:
            if attrs.get("noop_with_empty_axes", 0):
                return
            axes = list(range(rank))
        _set_axes(attrs, consts, _shift(axes, rank), as_input)
    return rule


def _set_axes(attrs, consts, axes: list[int], as_input: bool, index: int = 1) -> None:
    if as_input:
        while len(consts) <= index:
            consts.append(None)
        consts[index] = np.asarray(axes, np.int64)
    else:
        attrs["axes"] = axes


def _squeeze(attrs, consts, rank, opset, raw_in):
    as_input = opset >= 13
    axes = (consts[1] if len(consts) > 1 else None) if as_input else attrs.get("axes")
    if axes is None:
        if raw_in is None:
            raise NotConvertible("its input's shape is unknown")
        axes = [i for i, s in enumerate(raw_in) if s == 1]
    _set_axes(attrs, consts, _shift(axes, rank), as_input)


def _unsqueeze(attrs, consts, rank, opset, raw_in):
    as_input = opset >= 13
    axes = (consts[1] if len(consts) > 1 else None) if as_input else attrs.get("axes")
    if axes is None:
        raise NotConvertible("axes computed from the input")
    _set_axes(attrs, consts, _shift(axes, rank + np.size(axes)), as_input)


def _transpose(attrs, consts, rank, opset, raw_in):
    perm = attrs.get("perm", list(range(rank))[::-1])
    attrs["perm"] = [0] + [int(p) % rank + 1 for p in perm]


def _slice(attrs, consts, rank, opset, raw_in):
    if opset < 10:
        starts, axes = attrs["starts"], attrs.get("axes")
        attrs["axes"] = _shift(axes if axes is not None else range(len(starts)), rank)
        return
    starts = consts[1] if len(consts) > 1 else None
    if starts is None:
        raise NotConvertible("starts computed from the input")
    axes = consts[3] if len(consts) > 3 else None
    _set_axes(attrs, consts, _shift(axes if axes is not None else range(np.size(starts)),
                                    rank), True, index=3)


def _reshape(attrs, consts, rank, opset, raw_in):
    target = consts[1] if len(consts) > 1 else None
    if target is None:
        raise NotConvertible("its target shape is computed from the input")
    consts[1] = np.concatenate([[1], np.ravel(target)]).astype(np.int64)


def _pad(attrs, consts, rank, opset, raw_in):
    if opset < 11:
        pads = list(attrs.get("pads", [0] * 2 * rank))
        attrs["pads"] = [0, *pads[:rank], 0, *pads[rank:]]
        return
    axes = consts[3] if len(consts) > 3 else None
    if axes is not None:
        consts[3] = np.asarray(_shift(axes, rank), np.int64)
        return
    pads = consts[1] if len(consts) > 1 else None
    if pads is None:
        raise NotConvertible("pads computed from the input")
    pads = [int(p) for p in np.ravel(pads)]
    consts[1] = np.asarray([0, *pads[:rank], 0, *pads[rank:]], np.int64)


RULES: dict[str, Callable] = {
    "Concat": lambda a, c, r, o, s: a.__setitem__("axis", _shift([a["axis"]], r)[0]),
    "Split": lambda a, c, r, o, s: a.__setitem__("axis", _shift([a.get("axis", 0)], r)[0]),
    "LayerNormalization": lambda a, c, r, o, s: a.__setitem__(
        "axis", _shift([a.get("axis", -1)], r)[0]),
    "Flatten": _flatten,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "ReduceSum": _axes_list(13),
    "ReduceMean": _axes_list(18),
    "ReduceMax": _axes_list(18),
    "ReduceMin": _axes_list(18),
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Slice": _slice,
    "Reshape": _reshape,
    "Pad": _pad,
}
