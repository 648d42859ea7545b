"""The ONNX converter table, part two: ops on whole tensors and arithmetic -> convcalc's
layout, reduction, normalisation and arithmetic kinds (reshape, permute, slice, split, sum,
mean, matmul, layernorm, instancenorm, prelu, sub, div, pow, ...). Registered into the one
table of onnx_ops.py; the forms of an op that map to an older kind stay there."""

from __future__ import annotations

import numpy as np

from convcalc.interop.onnx_ops import (
    SAME,
    WEIGHTS,
    NotConvertible,
    OnnxNode,
    _floats,
    _text,
    converter,
    f32,
    without_defaults,
)
from convcalc.interop.onnx_ops_dense import _clip, _computed_shape, linear_layer
from convcalc.interop.onnx_ops_dense import clip_inputs as _clip_bounds
from convcalc.interop.onnx_ops_resample import _reduce_axes

INT64_MAX = 2**63 - 1


def _out(node: OnnxNode, i: int = 0) -> tuple[int, ...]:
    shape = node.out_shapes[i] if i < len(node.out_shapes) else None
    if shape is None and i == 0 and node.in_shapes[0] is not None:
        shape = _computed_shape(node, node.in_shapes[0])
    if shape is None:
        raise NotConvertible("its output shape is unknown to shape inference")
    return tuple(shape)


def _batch_kept(src, out) -> None:
    if out[0] != src[0]:
        raise NotConvertible(f"{list(src)} -> {list(out)} moves data across the batch axis")


def reshape_layer(node: OnnxNode) -> dict | str:
    """(N, ...) -> (N, features) is flatten, an unchanged shape the input, anything else a
    reshape to the per-sample shape shape inference gives. Axis 0 is the batch axis
    (imported at 1): Squeeze and Unsqueeze of axis 0 are refused."""
    if node.op in ("Squeeze", "Unsqueeze"):
        axes = node.attr("axes") if node.const(1) is None else node.const(1)
        rank = node.rank + (len(np.ravel(axes)) if node.op == "Unsqueeze" and axes is not None
                            else 0)
        if axes is None or 0 in [int(a) % rank for a in np.ravel(axes)]:
            raise NotConvertible("squeezes or inserts axis 0, the batch axis")
    src, out = node.in_shapes[0], _out(node)
    if src is None:
        raise NotConvertible("its input's shape is unknown")
    if tuple(src) == out:
        return SAME
    _batch_kept(src, out)
    if len(out) == 2 and len(src) > 2:
        return {"type": "flatten"}
    return {"type": "reshape", "shape": [int(v) for v in out[1:]]}


converter("Reshape", since=5)(reshape_layer)
converter("Squeeze", "Unsqueeze")(reshape_layer)


@converter("Flatten")
def flatten(node: OnnxNode) -> dict | str:
    axis = int(node.attr("axis", 1)) % max(node.rank, 1)
    if axis == 0:
        raise NotConvertible("axis 0 (merges the batch axis)")
    return reshape_layer(node)


@converter("Transpose")
def transpose(node: OnnxNode) -> dict | str:
    perm = [int(p) for p in node.attr("perm", list(range(node.rank))[::-1])]
    if perm[0] != 0:
        raise NotConvertible(f"perm {perm} moves the batch axis")
    if perm == sorted(perm):
        return SAME
    return {"type": "permute", "dims": perm}


@converter("Slice")
def slice_attrs(node: OnnxNode) -> dict | list | str:
    starts, ends = node.attr("starts"), node.attr("ends")
    return _slices(node, starts, ends, node.attr("axes"), None)


@converter("Slice", since=10)
def slice_inputs(node: OnnxNode) -> dict | list | str:
    parts = [node.const(i) for i in range(1, 5)]
    for i, part in enumerate(parts[:2]):
        if part is None:
            raise NotConvertible(f"{('starts', 'ends')[i]} computed from the input")
    return _slices(node, *parts)


def _slices(node: OnnxNode, starts, ends, axes, steps) -> dict | list | str:
    """One slice layer per sliced axis (in order); x[a:b:s] as PyTorch reads it."""
    rank = node.rank
    starts, ends = [int(v) for v in np.ravel(starts)], [int(v) for v in np.ravel(ends)]
    axes = [int(a) % rank for a in np.ravel(axes)] if axes is not None else \
        list(range(len(starts)))
    steps = [int(v) for v in np.ravel(steps)] if steps is not None else [1] * len(starts)
    layers = []
    for axis, start, end, step in zip(axes, starts, ends, steps):
        size = node.in_shapes[0][axis]
        if step < 1:
            raise NotConvertible(f"step {step} (a reversed slice)")
        if axis == 0:
            raise NotConvertible("slices the batch axis")
        start = max(start + size, 0) if start < 0 else min(start, size)
        end = max(end + size, 0) if end < 0 else min(end, size)
        if (start, end, step) == (0, size, 1):
            continue
        if end <= start:
            raise NotConvertible(f"an empty slice {start}:{end} of an axis of {size}")
        layer = {"type": "slice", "dim": axis, "start": start, "end": end, "step": step}
        layers.append(without_defaults(layer, step=1))
    return layers or SAME


@converter("Split")
def split_attrs(node: OnnxNode) -> dict:
    return _split(node, node.attr("split"))


@converter("Split", since=13)
def split_inputs(node: OnnxNode) -> dict:
    sizes = node.const(1)
    return _split(node, None if sizes is None or sizes.size == 0 else sizes)


def _split(node: OnnxNode, sizes) -> dict:
    axis = int(node.attr("axis", 0)) % node.rank
    if axis == 0:
        raise NotConvertible("splits the batch axis")
    outs = [_out(node, i) if node.out_shapes[i] is not None else None
            for i in range(len(node.out_shapes))]
    if sizes is None:  # equal parts, the last one smaller when they do not divide evenly
        count, size = len(node.out_shapes), node.in_shapes[0][axis]
        chunk = -(-size // count)
        sizes = [chunk] * (count - 1) + [size - chunk * (count - 1)]
        if sizes[-1] <= 0 or any(o is not None and o[axis] != s for o, s in zip(outs, sizes)):
            raise NotConvertible(f"{count} parts of an axis of {size}")
    sizes = [int(s) for s in np.ravel(sizes)]
    even = len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0] and len(sizes) > 1
    value = sizes[0] if even and len(range(0, sum(sizes), sizes[0])) == len(sizes) else sizes
    return {"type": "split", "split_size_or_sections": value, "dim": axis}


REDUCE_KINDS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "amax",
                "ReduceMin": "amin"}


@converter("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum")
def reduce(node: OnnxNode) -> dict | str:
    """Over every spatial axis: a global pool for mean and max (what a person writes);
    otherwise the reduction kind over the axes, keepdim as keepdims."""
    axes = _reduce_axes(node, 13 if node.op == "ReduceSum" else 18)
    if axes == []:
        return SAME
    axes = axes if axes is not None else list(range(node.rank))
    if 0 in axes:
        raise NotConvertible("reduces the batch axis")
    keep = bool(node.attr("keepdims", 1))
    pool = {"ReduceMean": "global_avgpool", "ReduceMax": "global_maxpool"}.get(node.op)
    if pool and axes == list(range(2, node.rank)) and node.rank > 2:
        return {"type": pool, "keepdim": keep}
    layer = {"type": REDUCE_KINDS[node.op], "dim": axes[0] if len(axes) == 1 else axes,
             "keepdim": keep}
    return without_defaults(layer, keepdim=False)


@converter("ReduceL2", "ReduceSumSquare")
def reduce_squares(node: OnnxNode) -> list:
    """sqrt(sum(x^2)) / sum(x^2) over the axes: x ** 2, sum, (** 0.5): ONNX computes them so
    (ConvNeXt-V2's GRN is x.norm(p=2) over the spatial axes, ReduceL2 in PyTorch's export)."""
    axes = _reduce_axes(node, 18)
    if axes == []:
        raise NotConvertible("noop_with_empty_axes")
    axes = axes if axes is not None else list(range(node.rank))
    if 0 in axes:
        raise NotConvertible("reduces the batch axis")
    layer = without_defaults({"type": "sum", "dim": axes[0] if len(axes) == 1 else axes,
                              "keepdim": bool(node.attr("keepdims", 1))}, keepdim=False)
    layers = [{"type": "pow", "exponent": 2.0}, layer]
    return layers + ([{"type": "pow", "exponent": 0.5}] if node.op == "ReduceL2" else [])


@converter("DepthToSpace")
def depth_to_space(node: OnnxNode) -> dict | list:
    """CRD is pixel_shuffle; DCR (the default) reads channel (i*r + j)*C + c: the reshape,
    permute, reshape ONNX defines it by."""
    r = int(node.attr("blocksize"))
    if _text(node.attr("mode"), "DCR") == "CRD":
        return {"type": "pixel_shuffle", "upscale_factor": r}
    _, c, h, w = node.in_shapes[0]
    return [{"type": "reshape", "shape": [r, r, c // (r * r), h, w]},
            {"type": "permute", "dims": [0, 3, 4, 1, 5, 2]},
            {"type": "reshape", "shape": [c // (r * r), h * r, w * r]}]


@converter("SpaceToDepth")
def space_to_depth(node: OnnxNode) -> list:
    """DCR (the default): out channel (i*r + j)*C + c, as ONNX defines it; CRD (opset 25's
    mode) is pixel_unshuffle's c*r^2 + i*r + j."""
    r = int(node.attr("blocksize"))
    if _text(node.attr("mode"), "DCR") == "CRD":
        return {"type": "pixel_unshuffle", "downscale_factor": r}
    _, c, h, w = node.in_shapes[0]
    return [{"type": "reshape", "shape": [c, h // r, r, w // r, r]},
            {"type": "permute", "dims": [0, 3, 5, 1, 2, 4]},
            {"type": "reshape", "shape": [c * r * r, h // r, w // r]}]


@converter("MatMul")
def matmul(node: OnnxNode, bias: np.ndarray | None = None) -> dict:
    """x @ W with W a constant matrix -> linear (weight W.T, the bias of a following Add);
    two network tensors -> matmul."""
    if all(c is None for c in node.consts[:2]):
        return {"type": "matmul"}
    w = node.need_const(1, "the second operand")
    if node.const(0) is not None or w.ndim != 2:
        raise NotConvertible("a product with a constant other than input @ matrix")
    return linear_layer(w.T, bias)


@converter("LayerNormalization", since=17)
def layernorm(node: OnnxNode) -> dict:
    if any(s is not None for s in node.out_shapes[1:]):
        raise NotConvertible("mean or inverse deviation outputs")
    axis = int(node.attr("axis", -1)) % node.rank
    if axis == 0:
        raise NotConvertible("normalises over the batch axis")
    shape = [int(v) for v in node.in_shapes[0][axis:]]
    scale, bias = node.need_const(1, "the scale"), node.const(2)
    weights = {"weight": np.broadcast_to(scale, shape).copy()}
    if bias is not None:
        weights["bias"] = np.broadcast_to(bias, shape).copy()
    layer = {"type": "layernorm", "normalized_shape": shape[0] if len(shape) == 1 else shape,
             "eps": f32(node.attr("epsilon", 1e-5)), "bias": bias is not None,
             WEIGHTS: weights}
    return without_defaults(layer, eps=1e-5, bias=True)


@converter("PRelu")
def prelu(node: OnnxNode) -> dict:
    slope = node.need_const(1, "the slope")
    channels = node.in_shapes[0][1]
    shape = (1,) * (node.rank - 1 - slope.ndim) + slope.shape  # per-sample axes, right-aligned
    if slope.size != 1 and not (slope.size == channels and shape[0] == channels):
        raise NotConvertible(f"slope of shape {list(slope.shape)} (one, or one per channel)")
    layer = {"type": "prelu", "num_parameters": int(slope.size),
             WEIGHTS: {"weight": slope.reshape(-1)}}
    return without_defaults(layer, num_parameters=1)


@converter("Mish", since=18)
def mish(node: OnnxNode) -> dict:
    return {"type": "mish"}


@converter("Softplus")
def softplus(node: OnnxNode) -> dict:
    """ONNX's log(1 + exp(x)) has no threshold; PyTorch's returns x past 20, where the two
    differ by less than exp(-20) (under float32's resolution of x)."""
    return {"type": "softplus"}


@converter("LogSoftmax", since=13)
def log_softmax(node: OnnxNode) -> dict:
    axis = int(node.attr("axis", -1)) % node.rank
    if axis == 0:
        raise NotConvertible("along the batch axis")
    return {"type": "log_softmax", "dim": axis}


ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}
REVERSED = {"Sub": "rsub", "Div": "rdiv", "Pow": "rpow"}


@converter("Add", "Sub", "Mul", "Div", "Pow", "Sum")
def arithmetic(node: OnnxNode) -> dict | str:
    """Two network tensors -> add/sub/mul/div/pow; a scalar constant -> the same kind with
    `other` (or rsub/rdiv/rpow when the constant comes first); a per-channel constant factor
    -> layer_scale, a per-channel constant added (or subtracted) -> channel_bias."""
    if all(c is None for c in node.consts):
        return {"type": ARITH.get(node.op, "add")}
    if len(node.consts) != 2:
        raise NotConvertible("a constant among several inputs")
    first = node.consts[0] is not None
    constant = np.asarray(node.consts[0] if first else node.consts[1], np.float32)
    if _out(node) != next(s for s, c in zip(node.in_shapes, node.consts) if c is None):
        raise NotConvertible(f"a constant of shape {list(constant.shape)} that broadcasts "
                             "the network tensor")
    per_channel = node.op in ("Mul", "Add", "Sub") and _per_channel(node, constant) and \
        not (node.op == "Sub" and first)
    # one value is a number, unless it is shaped (1, 1, ...) per channel of a one-channel map
    # (a layer_scale or channel_bias exported from such a map): then it stays a weight
    if constant.size == 1 and not (per_channel and constant.ndim >= 2):
        return _scalar(node, float(constant.reshape(-1)[0]), first)
    if per_channel:
        rank = len(node.in_shapes[1] if first else node.in_shapes[0])
        value = constant.reshape(-1, *[1] * (rank - 2))
        if node.op == "Mul":
            return {"type": "layer_scale", "keepdim": True, WEIGHTS: {"gamma": value}}
        return {"type": "channel_bias", "keepdim": True,
                WEIGHTS: {"bias": value if node.op == "Add" else -value}}
    raise NotConvertible(f"{node.op} with a constant of shape {list(constant.shape)} (a "
                         "number, or a per-channel factor or bias, is modelled)")


def _scalar(node: OnnxNode, value: float, first: bool) -> dict | str:
    neutral = {"Add": 0.0, "Sub": 0.0, "Mul": 1.0, "Div": 1.0, "Pow": 1.0}[node.op]
    if value == neutral and not (first and node.op in REVERSED):
        return SAME
    value = f32(value)
    if first and node.op in REVERSED:
        return {"type": REVERSED[node.op], "other": value}
    if node.op == "Pow":
        return {"type": "pow", "exponent": value}
    return {"type": ARITH[node.op], "other": value}


def _per_channel(node: OnnxNode, constant: np.ndarray) -> bool:
    """A (C, 1, ...) factor of the network tensor, whichever input the constant is
    (torchvision's CNBlock writes `layer_scale * x`)."""
    tensor = node.in_shapes[0] if node.consts[0] is None else node.in_shapes[1]
    if tensor is None or len(tensor) < 2 or constant.ndim > len(tensor):
        return False
    channels = tensor[1]
    shape = (1,) * (len(tensor) - constant.ndim) + constant.shape
    return shape[1] == channels and all(s == 1 for i, s in enumerate(shape) if i != 1)


@converter("Clip")
def clip(node: OnnxNode) -> dict:
    return _clip_or_hardtanh(node, node.attr("min"), node.attr("max"), _clip)


@converter("Clip", since=11)
def clip_inputs(node: OnnxNode) -> dict:
    try:
        return _clip_bounds(node)
    except NotConvertible:
        low, high = node.const(1), node.const(2)
        return _clip_or_hardtanh(node, None if low is None else _floats(low),
                                 None if high is None else _floats(high), _clip)


def _clip_or_hardtanh(node: OnnxNode, low, high, relu_like) -> dict:
    try:
        return relu_like(node, low, high)
    except NotConvertible:
        if low is None or high is None:
            raise
        return {"type": "hardtanh", "min_val": f32(low), "max_val": f32(high)}
