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
    stored: tuple[bool, ...] = ()  # input i is an initializer (a weight), not a Constant node

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


def _text(value, default: str) -> str:
    value = default if value is None else value
    return value.decode() if isinstance(value, bytes) else value


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
    kernel = _kernel(node)
    strides, dilations, padding = _window(node, kernel)
    layer = {"type": f"maxpool{len(kernel)}d", "kernel_size": compact(kernel),
             "stride": compact(strides), "padding": padding,
             "dilation": compact(dilations), "ceil_mode": bool(node.attr("ceil_mode", 0))}
    layer = _as_ceil_mode(node, layer, kernel, strides, dilations)
    layer = without_defaults(layer, padding=0, dilation=1, ceil_mode=False)
    return _wide_pads(layer, kernel, dilations, float("-inf"))


def _as_ceil_mode(node: OnnxNode, layer: dict, kernel, strides, dilations) -> dict:
    """ONNX has no PyTorch ceil mode: exporters (torch.onnx, convcalc) write it as extra pads
    at the end. Where the pads are not counted (a max pool, an average without
    count_include_pad) and asymmetric pads are symmetric ones plus such an overhang, the pool
    is PyTorch's with that padding and the ceil mode whose output count is ONNX's: the same
    windows over the same real elements, so the same values."""
    pairs = layer.get("padding")
    if layer.get("ceil_mode") or not (isinstance(pairs, list) and isinstance(pairs[0], list)):
        return layer
    modes = {False, True}
    for i, k, s, d, (before, after) in zip(node.in_shapes[0][2:], kernel, strides, dilations, pairs):
        span = (k - 1) * d + 1
        if before > k // 2 or not isinstance(i, int):
            return layer
        theirs = (i + before + after - span) // s + 1
        floor = (i + 2 * before - span) // s + 1
        ceil = -(-(i + 2 * before - span) // s) + 1
        ceil -= (ceil - 1) * s >= i + before  # PyTorch: the last window starts inside
        modes &= {mode for mode, count in ((False, floor), (True, ceil)) if count == theirs}
    if not modes:
        return layer
    return {**layer, "padding": compact([before for before, _ in pairs]), "ceil_mode": min(modes)}


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
    if not layer["count_include_pad"]:
        layer = _as_ceil_mode(node, layer, kernel, strides, dilations)
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


@converter("InstanceNormalization")
def instancenorm(node: OnnxNode) -> dict:
    """-> instancenorm{1,2,3}d. PyTorch writes a non-affine InstanceNorm's scale and bias as
    Constant nodes of ones and zeros, an affine one's as initializers (its weights): ones and
    zeros from Constant nodes are `affine: false`."""
    scale, bias = node.need_const(1, "the scale"), node.need_const(2, "the bias")
    layer = {"type": f"instancenorm{max(node.rank - 2, 1)}d", "eps": f32(node.attr("epsilon", 1e-5))}
    stored = any(node.stored[1:3]) if len(node.stored) >= 3 else True
    if stored or np.any(scale != 1) or np.any(bias != 0):
        layer.update(affine=True, **{WEIGHTS: {"weight": scale, "bias": bias}})
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


# The table's other parts register themselves (in this order: a later form of an op replaces
# an earlier one of the same opset).
from convcalc.interop import onnx_ops_dense, onnx_ops_resample, onnx_ops_tensor  # noqa: E402,F401,I001
