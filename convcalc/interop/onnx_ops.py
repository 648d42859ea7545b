"""The ONNX converter table: op type (and the opset it changed in) -> layer kind.

A converter gets an `OnnxNode` (attributes decoded, constant inputs as NumPy arrays, shapes
from onnx.shape_inference with the batch axis) and returns the layer ({"type": ..., ...},
with its weights under WEIGHTS), a list of layers (a pad before a pool), `SAME` when the
node passes its input through (Identity, Dropout at inference), or raises NotConvertible
with the reason. As in onnx2torch, `@converter("Pad", since=11)` registers the form an op
takes from opset 11 on; the importer picks the newest form not newer than the model's opset.
Dims are ONNX's and PyTorch's alike: batch 0, channels 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SAME = "same-as-input"
WEIGHTS = "__weights__"
TABLE: dict[str, list[tuple[int, Callable]]] = {}


class NotConvertible(Exception):
    """This node has no faithful layer: the message says which construct and why."""


@dataclass
class OnnxNode:
    """One node ready to convert: `consts[i]` is input i's value when it is a constant
    (None for a tensor computed from the network input, or an absent optional input)."""

    op: str
    name: str
    attrs: dict[str, Any]
    consts: list[Any]
    in_shapes: list[tuple[int, ...] | None]
    out_shapes: list[tuple[int, ...] | None]
    opset: int

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def const(self, i: int) -> np.ndarray | None:
        return self.consts[i] if i < len(self.consts) else None

    def need_const(self, i: int, what: str) -> np.ndarray:
        value = self.const(i)
        if value is None:
            raise NotConvertible(f"{what} is computed from the input, not a constant")
        return value

    @property
    def rank(self) -> int:
        if self.in_shapes[0] is None:
            raise NotConvertible("its input's shape is unknown to shape inference")
        return len(self.in_shapes[0])


def converter(*ops: str, since: int = 1) -> Callable:
    """Register the decorated function for `ops` from opset `since` on."""
    def register(fn: Callable) -> Callable:
        for op in ops:  # a later registration of the same form replaces it
            forms = [entry for entry in TABLE.get(op, []) if entry[0] != since]
            TABLE[op] = sorted([*forms, (since, fn)], key=lambda entry: -entry[0])
        return fn
    return register


def find(op: str, opset: int) -> Callable | None:
    """The converter of `op` for this opset: the newest registered form not after it."""
    return next((fn for since, fn in TABLE.get(op, []) if since <= opset), None)


def compact(values) -> Any:
    """[3, 3] -> 3, [3, 1] -> [3, 1]: per-axis values as a person writes them."""
    items = [int(v) for v in values]
    return items[0] if items and all(v == items[0] for v in items) else items


def without_defaults(layer: dict, **defaults: Any) -> dict:
    """Drop parameters equal to the kind's default, as a person writes them."""
    return {k: v for k, v in layer.items() if k not in defaults or defaults[k] != v}


def _floats(value) -> float:
    """The first element of a constant, as the float32 a file holds, written shortest."""
    return f32(np.asarray(value).reshape(-1)[0])


def f32(value) -> float:
    """A float32 attribute as a person writes it: 1e-05, not 9.999999747378752e-06."""
    return float(str(np.float32(value)))


# -- windows: Conv, ConvTranspose, pools -------------------------------------------------------

def _window(node: OnnxNode, kernel: list[int]) -> tuple[list[int], list[int], list]:
    """(strides, dilations, padding as convcalc writes it) from pads or auto_pad."""
    axes = len(kernel)
    strides = list(node.attr("strides", [1] * axes))
    dilations = list(node.attr("dilations", [1] * axes))
    return strides, dilations, _padding(node, kernel, strides, dilations)


def _padding(node: OnnxNode, kernel, strides, dilations) -> Any:
    auto = node.attr("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    axes = len(kernel)
    if auto in ("NOTSET", ""):
        pads = list(node.attr("pads", [0] * 2 * axes))
        pairs = [[pads[i], pads[i + axes]] for i in range(axes)]
    elif auto == "VALID":
        pairs = [[0, 0]] * axes
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for i, k, s, d in zip(node.in_shapes[0][2:], kernel, strides, dilations):
            total = max((-(-i // s) - 1) * s + (k - 1) * d + 1 - i, 0)
            small, large = total // 2, total - total // 2
            pairs.append([small, large] if auto == "SAME_UPPER" else [large, small])
    else:
        raise NotConvertible(f"auto_pad {auto!r}")
    if any(p < 0 for pair in pairs for p in pair):
        raise NotConvertible("negative pads (a crop)")
    if all(a == b for a, b in pairs):
        return compact([a for a, _ in pairs])
    return [list(map(int, pair)) for pair in pairs]


def _kernel(node: OnnxNode, weight: np.ndarray | None = None) -> list[int]:
    kernel = node.attr("kernel_shape")
    if kernel is None and weight is not None:
        kernel = weight.shape[2:]
    if kernel is None:
        raise NotConvertible("no kernel_shape")
    return [int(k) for k in kernel]


@converter("Conv")
def conv(node: OnnxNode) -> dict:
    weight = node.need_const(1, "the weight")
    kernel = _kernel(node, weight)
    strides, dilations, padding = _window(node, kernel)
    bias = node.const(2)
    layer = {"type": f"conv{len(kernel)}d", "out_channels": int(weight.shape[0]),
             "kernel_size": compact(kernel), "stride": compact(strides), "padding": padding,
             "dilation": compact(dilations), "groups": int(node.attr("group", 1)),
             "bias": bias is not None, WEIGHTS: {"weight": weight}}
    if bias is not None:
        layer[WEIGHTS]["bias"] = bias
    return without_defaults(layer, stride=1, padding=0, dilation=1, groups=1, bias=True)


@converter("ConvTranspose")
def conv_transpose(node: OnnxNode) -> dict:
    weight = node.need_const(1, "the weight")
    kernel = _kernel(node, weight)
    axes = len(kernel)
    strides = list(node.attr("strides", [1] * axes))
    dilations = list(node.attr("dilations", [1] * axes))
    extra = list(node.attr("output_padding", [0] * axes))
    pads = _transpose_pads(node, kernel, strides, dilations, extra)
    padding, extra = [], list(extra)
    for i, (before, after) in enumerate(pads):
        if after > before or extra[i] + before - after >= max(strides[i], dilations[i]):
            raise NotConvertible(f"pads {before}, {after} on axis {i} (PyTorch's padding "
                                 "crops both sides alike; output_padding adds at the end)")
        padding.append(before)
        extra[i] += before - after
    groups = int(node.attr("group", 1))
    bias = node.const(2)
    layer = {"type": f"conv_transpose{axes}d", "out_channels": int(weight.shape[1]) * groups,
             "kernel_size": compact(kernel), "stride": compact(strides),
             "padding": compact(padding), "output_padding": compact(extra),
             "dilation": compact(dilations), "groups": groups, "bias": bias is not None,
             WEIGHTS: {"weight": weight}}
    if bias is not None:
        layer[WEIGHTS]["bias"] = bias
    return without_defaults(layer, stride=1, padding=0, output_padding=0, dilation=1,
                            groups=1, bias=True)


def _transpose_pads(node: OnnxNode, kernel, strides, dilations, extra) -> list[list[int]]:
    """[before, after] per axis; output_shape (or auto_pad SAME) sets the total as ONNX says:
    total = s*(i-1) + output_padding + (k-1)*d + 1 - out."""
    axes = len(kernel)
    auto = node.attr("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    shape = node.attr("output_shape")
    if shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        shape = [i * s for i, s in zip(node.in_shapes[0][2:], strides)]
    if shape is None:
        if auto == "VALID":
            return [[0, 0]] * axes
        pads = list(node.attr("pads", [0] * 2 * axes))
        return [[pads[i], pads[i + axes]] for i in range(axes)]
    shape = list(shape)[-axes:]
    pairs = []
    for i, k, s, d, e, o in zip(node.in_shapes[0][2:], kernel, strides, dilations, extra, shape):
        total = s * (i - 1) + e + (k - 1) * d + 1 - o
        if total < 0:  # a larger output_shape adds output padding at the end
            pairs.append([0, total])
            continue
        half = total // 2
        pairs.append([half, total - half] if auto == "SAME_UPPER" else [total - half, half])
    return pairs


@converter("MaxPool")
def maxpool(node: OnnxNode) -> dict:
    if len(node.out_shapes) > 1 and node.out_shapes[1] is not None:
        raise NotConvertible("the indices output is used")
    if node.attr("storage_order", 0):
        raise NotConvertible("storage_order 1")
    kernel = _kernel(node)
    strides, dilations, padding = _window(node, kernel)
    layer = {"type": f"maxpool{len(kernel)}d", "kernel_size": compact(kernel),
             "stride": compact(strides), "padding": padding,
             "dilation": compact(dilations), "ceil_mode": bool(node.attr("ceil_mode", 0))}
    layer = without_defaults(layer, padding=0, dilation=1, ceil_mode=False)
    return _wide_pads(layer, kernel, dilations, float("-inf"))


def _wide_pads(layer: dict, kernel, dilations, fill: float) -> dict | list[dict]:
    """PyTorch's pools take at most half the (dilated) kernel as padding; ONNX takes any.
    Wider pads become a pad layer filled with `fill` (-inf for max, 0 for an average that
    counts padding) before the pool: the same windows, the same values."""
    pads = layer.get("padding", 0)
    pairs = pads if isinstance(pads, list) and isinstance(pads[0], list) else [
        [p, p] for p in (pads if isinstance(pads, list) else [pads] * len(kernel))]
    if all(max(pair) <= ((k - 1) * d + 1) // 2 for pair, k, d in zip(pairs, kernel, dilations)):
        return layer
    if fill is None:
        raise NotConvertible("pads wider than half the kernel without count_include_pad "
                             "(PyTorch's pools refuse them)")
    if layer.get("ceil_mode"):
        raise NotConvertible("pads wider than half the kernel with ceil_mode")
    pad = {"type": "pad", "padding": pads, "value": fill}
    return [without_defaults(pad, value=0.0), {k: v for k, v in layer.items()
                                               if k != "padding"}]


@converter("AveragePool")
def avgpool(node: OnnxNode) -> dict:
    kernel = _kernel(node)
    strides, dilations, padding = _window(node, kernel)
    if any(d != 1 for d in dilations):
        raise NotConvertible("dilations (PyTorch's AvgPool has none)")
    layer = {"type": f"avgpool{len(kernel)}d", "kernel_size": compact(kernel),
             "stride": compact(strides), "padding": padding,
             "ceil_mode": bool(node.attr("ceil_mode", 0)),
             "count_include_pad": bool(node.attr("count_include_pad", 0))}
    layer = without_defaults(layer, padding=0, ceil_mode=False, count_include_pad=True)
    return _wide_pads(layer, kernel, dilations,
                      0.0 if layer.get("count_include_pad", True) else None)


@converter("GlobalAveragePool")
def global_avgpool(node: OnnxNode) -> dict:
    return {"type": "global_avgpool", "keepdim": True}


@converter("GlobalMaxPool")
def global_maxpool(node: OnnxNode) -> dict:
    return {"type": "global_maxpool", "keepdim": True}


# -- norms ---------------------------------------------------------------------------------------

@converter("BatchNormalization")
def batchnorm(node: OnnxNode) -> dict:
    if any(shape is not None for shape in node.out_shapes[1:]) or node.attr("training_mode"):
        raise NotConvertible("training mode (running statistics as outputs)")
    names = ("weight", "bias", "running_mean", "running_var")
    weights = {n: node.need_const(i + 1, n) for i, n in enumerate(names)}
    layer = {"type": f"batchnorm{max(node.rank - 2, 1)}d",
             "eps": f32(node.attr("epsilon", 1e-5)), WEIGHTS: weights}
    return without_defaults(layer, eps=1e-5)


@converter("GroupNormalization", since=18)
def groupnorm(node: OnnxNode) -> dict:
    groups = int(node.attr("num_groups"))
    channels = node.in_shapes[0][1]
    scale, bias = node.need_const(1, "the scale"), node.need_const(2, "the bias")
    if node.opset < 21 and scale.size == groups != channels:  # opset 18: one per group
        scale, bias = np.repeat(scale, channels // groups), np.repeat(bias, channels // groups)
    layer = {"type": "groupnorm", "num_groups": groups,
             "eps": f32(node.attr("epsilon", 1e-5)),
             WEIGHTS: {"weight": scale, "bias": bias}}
    return without_defaults(layer, eps=1e-5)


@converter("LRN")
def lrn(node: OnnxNode) -> dict:
    size = int(node.attr("size"))
    if size % 2 == 0:
        raise NotConvertible(f"even size {size} (ONNX centres the window one channel later "
                             "than PyTorch's LocalResponseNorm)")
    return {"type": "local_response_norm", "size": size,
            "alpha": f32(node.attr("alpha", 1e-4)), "beta": f32(node.attr("beta", 0.75)),
            "k": f32(node.attr("bias", 1.0))}


# -- dense ---------------------------------------------------------------------------------------

@converter("Gemm")
def gemm(node: OnnxNode) -> dict:
    if node.attr("transA", 0):
        raise NotConvertible("transA 1 (transposes the batch axis)")
    b = node.need_const(1, "B")
    weight = (b if node.attr("transB", 0) else b.T) * np.float32(node.attr("alpha", 1.0))
    bias = node.const(2)
    if bias is not None:
        bias = np.broadcast_to(bias * np.float32(node.attr("beta", 1.0)),
                               (weight.shape[0],)).copy() if bias.size in (1, weight.shape[0]) \
            else None
        if bias is None:
            raise NotConvertible("C is not one value per output feature")
    return linear_layer(weight, bias)


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


# -- resampling, padding, reductions ---------------------------------------------------------

def _text(value, default: str) -> str:
    value = default if value is None else value
    return value.decode() if isinstance(value, bytes) else value


@converter("Upsample")
def upsample(node: OnnxNode) -> dict:
    scales = node.attr("scales")
    if scales is None:
        scales = node.need_const(1, "scales")
    return _resample(node, _text(node.attr("mode"), "nearest"), "asymmetric", "integer",
                     [float(s) for s in np.asarray(scales).reshape(-1)], None)


@converter("Resize", since=10)
def resize(node: OnnxNode) -> dict:
    scales = node.const(1) if node.opset < 11 else node.const(2)
    sizes = node.const(3) if node.opset >= 11 else None
    if node.opset >= 18 and node.attr("antialias", 0):
        raise NotConvertible("antialias 1")
    if node.opset >= 18 and node.attr("axes") is not None:
        raise NotConvertible("axes")
    mode = _text(node.attr("mode"), "nearest")
    ctm = _text(node.attr("coordinate_transformation_mode"),
                "half_pixel" if node.opset >= 11 else "asymmetric")
    nearest = _text(node.attr("nearest_mode"), "round_prefer_floor" if node.opset >= 11
                    else "integer")
    scales = None if scales is None or scales.size == 0 else [float(s) for s in scales]
    sizes = None if sizes is None or sizes.size == 0 else [int(s) for s in sizes]
    return _resample(node, mode, ctm, nearest, scales, sizes)


def _resample(node: OnnxNode, mode: str, ctm: str, nearest: str, scales, sizes) -> dict:
    """ONNX's resize modes as PyTorch's interpolate: nearest is asymmetric + floor (or any
    rounding of half_pixel at integer up-scaling, which picks the same pixels); linear is
    half_pixel (align_corners false) or align_corners."""
    src = node.in_shapes[0]
    if (scales is None) == (sizes is None):
        raise NotConvertible("neither scales nor sizes is a constant")
    factors = scales or [o / i for o, i in zip(sizes, src)]
    if factors[0] != 1 or factors[1] != 1:
        raise NotConvertible(f"resizes the batch or channel axis ({factors[:2]})")
    axes = len(src) - 2
    if mode == "nearest":
        upscale = all(f >= 1 and float(f).is_integer() for f in factors[2:])
        if nearest == "integer" and not upscale:  # Upsample, Resize-10: repeats only
            raise NotConvertible(f"nearest by {factors[2:]} (repeats by whole factors are "
                                 "modelled)")
        rounds = nearest in ("round_prefer_floor", "round_prefer_ceil")
        if not ((ctm == "asymmetric" and nearest in ("floor", "integer")) or (
                upscale and ctm in ("half_pixel", "pytorch_half_pixel") and rounds)):
            raise NotConvertible(f"nearest with {ctm} and {nearest} (PyTorch's nearest is "
                                 "asymmetric + floor)")
        layer = {"type": "upsample", "mode": "nearest"}
    elif mode == "linear":
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise NotConvertible(f"linear with {ctm} (PyTorch's is half_pixel or "
                                 "align_corners)")
        if ctm == "pytorch_half_pixel" and 1 in node.out_shapes[0][2:]:
            raise NotConvertible("pytorch_half_pixel to a size of 1 (it reads pixel 0; "
                                 "PyTorch reads the centre)")
        if ctm == "align_corners" and scales is not None and any(
                not float(i * f).is_integer() for i, f in zip(src[2:], factors[2:])):
            raise NotConvertible("align_corners with scales that give fractional sizes "
                                 "(ONNX divides by the fractional size, PyTorch by the "
                                 "rounded one)")
        layer = {"type": "upsample", "mode": {1: "linear", 2: "bilinear", 3: "trilinear"}
                 .get(axes, "linear"), "align_corners": ctm == "align_corners"}
    else:
        raise NotConvertible(f"mode {mode} (upsample has nearest and linear)")
    if sizes is not None or ctm == "align_corners":
        layer["size"] = compact(node.out_shapes[0][2:])
    else:
        spatial = factors[2:]
        layer["scale_factor"] = spatial[0] if len(set(spatial)) == 1 else spatial
    return layer


@converter("Pad")
def pad_attrs(node: OnnxNode) -> dict:
    return _pad(node, node.attr("pads"), _text(node.attr("mode"), "constant"),
                f32(node.attr("value", 0.0)), None)


@converter("Pad", since=11)
def pad_inputs(node: OnnxNode) -> dict:
    value = node.const(2)
    axes = node.const(3)
    return _pad(node, node.need_const(1, "pads"), _text(node.attr("mode"), "constant"),
                0.0 if value is None or value.size == 0 else _floats(value),
                None if axes is None else [int(a) for a in axes])


def _pad(node: OnnxNode, pads, mode: str, value: float, axes) -> dict:
    rank = node.rank
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = [a % rank for a in axes] if axes is not None else list(range(rank))
    pairs = {a: [pads[i], pads[i + len(axes)]] for i, a in enumerate(axes)}
    if any(pairs.get(a, [0, 0]) != [0, 0] for a in (0, 1)):
        raise NotConvertible("pads the batch or channel axis")
    spatial = [pairs.get(a, [0, 0]) for a in range(2, rank)]
    if any(p < 0 for pair in spatial for p in pair):
        raise NotConvertible("negative pads (a crop)")
    kinds = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
             "wrap": "circular"}
    if mode not in kinds:
        raise NotConvertible(f"mode {mode}")
    padding = compact([a for a, _ in spatial]) if all(a == b for a, b in spatial) \
        else spatial
    layer = {"type": "pad", "padding": padding, "mode": kinds[mode], "value": value}
    return without_defaults(layer, mode="constant", value=0.0)


def _reduce_axes(node: OnnxNode, since_input: int) -> list[int] | None:
    if node.opset >= since_input:
        axes = node.const(1)
        if axes is None and len(node.in_shapes) > 1 and node.in_shapes[1] is not None:
            raise NotConvertible("axes computed from the input")
        axes = None if axes is None or axes.size == 0 else list(axes)
        if axes is None and node.attr("noop_with_empty_axes", 0):
            return []
    else:
        axes = node.attr("axes")
    return None if axes is None else sorted(int(a) % node.rank for a in axes)


@converter("ReduceMean", "ReduceMax")
def reduce(node: OnnxNode) -> dict | str:
    """A mean or max over all spatial axes is a global pool; other reductions have no kind
    yet."""
    axes = _reduce_axes(node, 18)
    if axes == []:
        return SAME
    if axes != list(range(2, node.rank)):
        raise NotConvertible(f"reduction over axes {axes} (only all spatial axes, a global "
                             "pool, is modelled)")
    kind = "global_avgpool" if node.op == "ReduceMean" else "global_maxpool"
    return {"type": kind, "keepdim": bool(node.attr("keepdims", 1))}
