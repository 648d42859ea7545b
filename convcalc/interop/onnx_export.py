"""A checked spec as an ONNX model: one table, EMIT, from layer kind to ONNX nodes.

The model is built with onnx.helper and passes onnx.checker with full checking. Its input is
`input`, (N, *the spec's input), N dynamic; every layer's output tensor and node carry the
layer's name (a split's parts `name.k`), so `convcalc import` gives the names back, and the
initializers are the state_dict names `convcalc run --save-weights` writes. Where ONNX has no
single operator for a kind, the kind is written with standard operators where that is exact;
where nothing is exact at the chosen opset, ExportError names the layer, the kind and why:
never a silently different network.

PyTorch's semantics are the reference (CONVENTIONS.md): pads are ONNX's [begins..., ends...];
nearest upsampling is PyTorch's legacy `asymmetric` + `floor`; a linear layer acts on the last
axis. `onnx` is imported only here, when an export is asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from convcalc.layers.base import weight_key

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Split/Squeeze/ReduceSum with axes as inputs, Resize with its current inputs


class ExportError(Exception):
    """One line: the layer, its kind and why it cannot be exported exactly; with a hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class Builder:
    """The nodes and initializers being written, and the per-sample shapes of the analysis."""

    opset: int
    weights: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    nodes: list = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    counter: int = 0
    refs: dict[str, dict[str, str]] = field(default_factory=dict)  # layer -> its refs
    indices_wanted: set[str] = field(default_factory=set)  # pools whose indices are read

    def refs_of(self, name: str) -> dict[str, str]:
        return self.refs.get(name, {})

    def weight(self, key: str) -> str:
        """A state_dict tensor as an initializer of the same name."""
        if key not in self.initializers:
            self.initializers[key] = np.asarray(self.weights[key], dtype=np.float32)
        return key

    def const(self, hint: str, value, dtype=np.float32) -> str:
        """A constant of the network's own (not a weight): `hint/const_k`."""
        self.counter += 1
        name = f"{hint}/const_{self.counter}"
        self.initializers[name] = np.asarray(value, dtype=dtype)
        return name

    def constant_node(self, hint: str, value, dtype=np.float32) -> str:
        """A Constant node, not an initializer: PyTorch's exporter writes a module's fixed
        values so, and the importer tells them from weights by it."""
        from onnx import numpy_helper
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype))
        return self.node("Constant", [], name=f"{hint}/Constant_{self.counter + 1}", value=tensor)

    def ints(self, hint: str, values) -> str:
        return self.const(hint, list(values), np.int64)

    def node(self, op: str, inputs: list[str], output: str | None = None, name: str | None = None,
             outputs: list[str] | None = None, **attrs) -> str:
        """Append one node; its output is `output` (the layer's name) or a fresh inner name."""
        from onnx import helper
        self.counter += 1
        outs = outputs or [output or f"{name or op}/{op}_{self.counter}"]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name or outs[0], **attrs))
        return outs[0]


# -- helpers shared by several kinds ---------------------------------------------------------------

def _onnx_pads(pads) -> list[int]:
    """[(before, after), ...] per spatial axis -> ONNX's [b1, b2, ..., a1, a2, ...]."""
    return [int(b) for b, _ in pads] + [int(a) for _, a in pads]


def _pad_pairs(padding, ndim: int):
    """A layer's padding value (int, per-axis list or pairs) as (before, after) pairs."""
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    pairs = []
    for p in padding:
        pairs.append(tuple(p) if isinstance(p, (tuple, list)) else (p, p))
    if len(pairs) == 1:
        pairs *= ndim
    return pairs


def _refuse(ctx: "Ctx", why: str, hint: str | None = None):
    raise ExportError(f"{ctx.name}: {ctx.type} cannot be exported to ONNX exactly: {why}", hint)


@dataclass
class Ctx:
    """What an emitter sees of one layer: its name, kind, Layer object, inputs and shapes."""

    b: Builder
    name: str
    type: str
    layer: Any
    inputs: list[str]
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]

    @property
    def tensor(self) -> str:
        """The layer's output tensor: its name, unless a weight has that name (torchvision
        CNBlock's bare `layer_scale` parameter)."""
        return self.name if self.name not in self.b.weights else f"{self.name}:out"

    def key(self, suffix: str) -> str:
        return self.b.weight(weight_key(self.name, suffix))

    def has(self, suffix: str) -> bool:
        return weight_key(self.name, suffix) in self.b.weights

    def out(self, op: str, inputs: list[str], **attrs) -> str:
        """The layer's own (final) node: its node name is the layer's name."""
        return self.b.node(op, inputs, output=self.tensor, name=self.name, **attrs)

    def inner(self, op: str, inputs: list[str], **attrs) -> str:
        return self.b.node(op, inputs, name=f"{self.name}/{op}_{self.b.counter + 1}", **attrs)

    def per_axis(self, key: str) -> list:
        value = getattr(self.layer, key)
        n = len(self.in_shapes[0]) - 1
        return list(value) * n if len(value) == 1 and n > 1 else list(value)


# -- convolutions -----------------------------------------------------------------------------------

def _conv(ctx: Ctx) -> str:
    layer = ctx.layer
    pads, _ = layer.geometry(ctx.in_shapes[0][1:])
    x = ctx.inputs[0]
    if layer.padding_mode != "zeros" and any(b or a for b, a in pads):
        x = _explicit_pad(ctx, x, pads, layer.padding_mode)
        pads = [(0, 0)] * len(pads)
    weight = ctx.key("weight")
    if layer.weight_standardization != "none":
        weight = _standardised(ctx, weight)
    inputs = [x, weight] + ([ctx.key("bias")] if layer.bias else [])
    return ctx.out("Conv", inputs, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                   pads=_onnx_pads(pads), dilations=list(layer.dilation), group=layer.groups)


def _standardised(ctx: Ctx, weight: str) -> str:
    """timm StdConv: (w - mean) / sqrt(var + eps) per filter (biased variance over
    Cin/groups * prod(k)); ScaledStdConv: times gain * gamma / sqrt(fan_in). Written out, so
    the initializer stays the stored weight."""
    layer = ctx.layer
    shape = ctx.b.weights[weight].shape
    out = _normalise(ctx, weight, list(range(1, len(shape))), layer.ws_eps)
    if layer.weight_standardization == "scaled":
        factor = ctx.b.const(ctx.name, layer.ws_gamma * math.prod(shape[1:]) ** -0.5)
        out = ctx.inner("Mul", [out, ctx.inner("Mul", [ctx.key("gain"), factor])])
    return out


def _explicit_pad(ctx: Ctx, x: str, pads, mode: str, value: float = 0.0) -> str:
    onnx_mode = {"zeros": "constant", "constant": "constant", "reflect": "reflect",
                 "replicate": "edge", "circular": "wrap"}[mode]
    if onnx_mode == "wrap" and ctx.b.opset < 19:  # Pad 'wrap' is opset 19: slices and a Concat
        for axis, (before, after) in enumerate(pads, start=2):
            parts = ([_slice_on(ctx, x, axis, -before, 2**62)] if before else []) + [x] + \
                ([_slice_on(ctx, x, axis, 0, after)] if after else [])
            if len(parts) > 1:
                x = ctx.inner("Concat", parts, axis=axis)
        return x
    full = [0, 0] + [int(b) for b, _ in pads] + [0, 0] + [int(a) for _, a in pads]
    inputs = [x, ctx.b.ints(ctx.name, full)]
    if onnx_mode == "constant":
        inputs.append(ctx.b.const(ctx.name, value))
    return ctx.inner("Pad", inputs, mode=onnx_mode)


def _slice_on(ctx: Ctx, x: str, axis: int, start: int, end: int, step: int = 1) -> str:
    """x[start:end:step] on one ONNX axis (the batch axis is 0)."""
    ints = ctx.b.ints
    return ctx.inner("Slice", [x, ints(ctx.name, [start]), ints(ctx.name, [end]), ints(ctx.name, [axis]),
                               ints(ctx.name, [step])])


def _conv_transpose(ctx: Ctx) -> str:
    """ConvTranspose. onnxruntime refuses an output_padding as large as the stride (PyTorch
    takes one below the stride or the dilation): there it becomes a smaller end pad, the
    rows the padding would have cropped; where output_padding exceeds the padding, the rows
    past every input's reach are PyTorch's bias alone, an explicit end Pad and then the bias."""
    layer = ctx.layer
    pads = _pad_pairs(layer.padding, len(layer.kernel_size))
    extra = list(layer.output_padding)
    weight = [ctx.inputs[0], ctx.key("weight")]
    bias = [ctx.key("bias")] if layer.bias else []
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                 dilations=list(layer.dilation), group=layer.groups)
    if all(e < s for e, s in zip(extra, layer.stride)):
        return ctx.out("ConvTranspose", weight + bias, pads=_onnx_pads(pads),
                       output_padding=extra, **attrs)
    tail = [max(e - a, 0) for (_, a), e in zip(pads, extra)]
    pads = [(b, max(a - e, 0)) for (b, a), e in zip(pads, extra)]
    if any(o - t <= 0 for o, t in zip(ctx.out_shape[1:], tail)):
        _refuse(ctx, "every output row is past the input's reach (output_padding beyond the "
                "padding, and as large as the stride): onnxruntime takes no such "
                "output_padding, and the ConvTranspose that would stand for it is empty")
    if not any(tail):
        return ctx.out("ConvTranspose", weight + bias, pads=_onnx_pads(pads), **attrs)
    out = _explicit_pad(ctx, ctx.inner("ConvTranspose", weight, pads=_onnx_pads(pads), **attrs),
                        [(0, t) for t in tail], "zeros")
    if not layer.bias:
        return ctx.out("Identity", [out])
    shape = [len(ctx.b.weights[weight_key(ctx.name, "bias")])] + [1] * len(tail)
    return ctx.out("Add", [out, ctx.inner("Reshape", [bias[0], ctx.b.ints(ctx.name, shape)])])


def _linear(ctx: Ctx) -> str:
    x = ctx.inputs[0]
    if len(ctx.in_shapes[0]) == 1:  # (N, F): Gemm, as PyTorch's exporter writes it
        inputs = [x, ctx.key("weight")] + ([ctx.key("bias")] if ctx.layer.bias else [])
        return ctx.out("Gemm", inputs, transB=1)
    # on the last axis of a larger tensor: MatMul with the transposed weight, then the bias
    wt = ctx.inner("Transpose", [ctx.key("weight")], perm=[1, 0])
    if not ctx.layer.bias:
        return ctx.out("MatMul", [x, wt])
    # the MatMul node carries the layer's name: the importer names the fused linear after it
    product = ctx.b.node("MatMul", [x, wt], output=f"{ctx.name}/MatMul", name=ctx.name)
    return ctx.b.node("Add", [product, ctx.key("bias")], output=ctx.name, name=f"{ctx.name}/Add")


# -- normalisation ----------------------------------------------------------------------------------

def _batchnorm(ctx: Ctx) -> str:
    layer = ctx.layer
    if not layer.track_running_stats:  # the batch's own statistics, as PyTorch at inference
        shape = ctx.in_shapes[0]
        normed = _normalise(ctx, ctx.inputs[0], [0, *range(2, len(shape) + 1)], layer.eps)
        return _channel_affine(ctx, normed, shape, layer.affine)
    c = ctx.in_shapes[0][0]
    scale = ctx.key("weight") if layer.affine else ctx.b.const(ctx.name, np.ones(c))
    bias = ctx.key("bias") if layer.affine else ctx.b.const(ctx.name, np.zeros(c))
    x = ctx.inputs[0]
    return ctx.out("BatchNormalization", [x, scale, bias, ctx.key("running_mean"),
                                          ctx.key("running_var")], epsilon=float(layer.eps))


def _groupnorm(ctx: Ctx) -> str:
    """GroupNormalization from opset 21 (a per-channel scale); before, as PyTorch's exporter
    writes nn.GroupNorm (ONNX's GroupNormalization of opsets 18-20 scales per group):
    Reshape to (N, G, -1), InstanceNormalization with ones and zeros, Reshape back to
    Shape(x), then the per-channel weight and bias. The importer reads both forms."""
    layer, shape, x = ctx.layer, ctx.in_shapes[0], ctx.inputs[0]
    g = layer.num_groups
    if ctx.b.opset >= 21 and layer.affine:
        return ctx.out("GroupNormalization", [x, ctx.key("weight"), ctx.key("bias")],
                       num_groups=g, epsilon=float(layer.eps))
    grouped = ctx.inner("Reshape", [x, ctx.b.ints(ctx.name, [0, g, -1])])
    normed = ctx.inner("InstanceNormalization", [grouped, ctx.b.constant_node(ctx.name, np.ones(g)),
                                                 ctx.b.constant_node(ctx.name, np.zeros(g))],
                       epsilon=float(layer.eps))
    if not layer.affine:
        return ctx.out("Reshape", [normed, ctx.inner("Shape", [x])])
    back = ctx.inner("Reshape", [normed, ctx.inner("Shape", [x])])
    return _channel_affine(ctx, back, shape, True)


def _normalise(ctx: Ctx, x: str, axes: list[int], eps: float) -> str:
    mean = _reduce(ctx, "ReduceMean", x, axes, keepdims=1)
    centred = ctx.inner("Sub", [x, mean])
    var = _reduce(ctx, "ReduceMean", ctx.inner("Mul", [centred, centred]), axes, keepdims=1)
    std = ctx.inner("Sqrt", [ctx.inner("Add", [var, ctx.b.const(ctx.name, float(eps))])])
    return ctx.inner("Div", [centred, std])


def _reduce(ctx: Ctx, op: str, x: str, axes: list[int], keepdims: int) -> str:
    """ReduceX over axes: attributes before opset 18, an input from 18 on (ReduceSum: 13)."""
    if ctx.b.opset >= 18 or op == "ReduceSum":
        return ctx.inner(op, [x, ctx.b.ints(ctx.name, axes)], keepdims=keepdims)
    return ctx.inner(op, [x], axes=axes, keepdims=keepdims)


def _channel_affine(ctx: Ctx, x: str, shape, affine: bool, weight="weight", bias="bias") -> str:
    """x * w[c] + b[c] over axis 1 (the weights reshaped to (C, 1, ...))."""
    if not affine:
        return ctx.out("Identity", [x])
    ones = [1] * (len(shape) - 1)
    w = ctx.inner("Reshape", [ctx.key(weight), ctx.b.ints(ctx.name, [shape[0], *ones])])
    scaled = ctx.inner("Mul", [x, w])
    if not ctx.has(bias):
        return ctx.out("Identity", [scaled])
    b = ctx.inner("Reshape", [ctx.key(bias), ctx.b.ints(ctx.name, [shape[0], *ones])])
    return ctx.out("Add", [scaled, b])


def _instancenorm(ctx: Ctx) -> str:
    """InstanceNormalization (PyTorch's statistics: per sample and channel, the biased
    variance); without affine, a scale of ones and a bias of zeros as Constant nodes, as
    PyTorch's exporter writes them, which the importer reads back as `affine: false`."""
    layer = ctx.layer
    if layer.track_running_stats:  # PyTorch at eval: the running statistics, as BatchNorm
        return _batchnorm(ctx)
    c = ctx.in_shapes[0][0]
    if layer.affine:
        scale, bias = ctx.key("weight"), ctx.key("bias")
    else:
        scale, bias = ctx.b.constant_node(ctx.name, np.ones(c)), ctx.b.constant_node(ctx.name, np.zeros(c))
    return ctx.out("InstanceNormalization", [ctx.inputs[0], scale, bias], epsilon=float(layer.eps))


def _layernorm(ctx: Ctx) -> str:
    layer = ctx.layer
    count = len(layer.normalized_shape) if isinstance(layer.normalized_shape, (list, tuple)) else 1
    rank = len(ctx.in_shapes[0]) + 1
    if ctx.b.opset >= 17:  # ONNX's own LayerNormalization, as PyTorch's exporter writes it
        shape = list(ctx.in_shapes[0][-count:])
        scale = ctx.key("weight") if layer.elementwise_affine else ctx.b.const(ctx.name, np.ones(shape))
        bias = [ctx.key("bias")] if layer.elementwise_affine and ctx.has("bias") else []
        return ctx.out("LayerNormalization", [ctx.inputs[0], scale, *bias], axis=-count,
                       epsilon=float(layer.eps))
    normed = _normalise(ctx, ctx.inputs[0], list(range(rank - count, rank)), layer.eps)
    if not layer.elementwise_affine:
        return ctx.out("Identity", [normed])
    scaled = ctx.inner("Mul", [normed, ctx.key("weight")])
    if not ctx.has("bias"):
        return ctx.out("Identity", [scaled])
    return ctx.out("Add", [scaled, ctx.key("bias")])


def _layernorm2d(ctx: Ctx) -> str:
    """timm LayerNorm2d: over the channels of an NCHW map. From opset 17 as PyTorch's exporter
    writes it: Transpose to channels-last, LayerNormalization, Transpose back."""
    shape = ctx.in_shapes[0]
    if ctx.b.opset >= 17:
        rank = len(shape) + 1
        last = ctx.inner("Transpose", [ctx.inputs[0]], perm=[0, *range(2, rank), 1])
        scale = ctx.key("weight") if ctx.layer.affine else ctx.b.const(ctx.name, np.ones(shape[0]))
        bias = [ctx.key("bias")] if ctx.layer.affine and ctx.has("bias") else []
        normed = ctx.inner("LayerNormalization", [last, scale, *bias], axis=-1,
                           epsilon=float(ctx.layer.eps))
        return ctx.out("Transpose", [normed], perm=[0, rank - 1, *range(1, rank - 1)])
    normed = _normalise(ctx, ctx.inputs[0], [1], ctx.layer.eps)
    return _channel_affine(ctx, normed, shape, ctx.layer.affine)


def _lrn(ctx: Ctx) -> str:
    """ONNX LRN's window is PyTorch's for odd sizes; for even ones PyTorch puts the larger
    half before the channel (size // 2 before, (size - 1) // 2 after), ONNX after: the sum of
    squares is then written out from shifted slices."""
    layer = ctx.layer
    size = int(layer.size)
    if size % 2 == 0:
        x, c, rank = ctx.inputs[0], ctx.in_shapes[0][0], len(ctx.in_shapes[0]) + 1
        pads = [0] * (2 * rank)
        pads[1], pads[rank + 1] = size // 2, (size - 1) // 2
        squares = ctx.inner("Pad", [ctx.inner("Mul", [x, x]), ctx.b.ints(ctx.name, pads)], mode="constant")
        total = _slice_on(ctx, squares, 1, 0, c)
        for j in range(1, size):
            total = ctx.inner("Add", [total, _slice_on(ctx, squares, 1, j, j + c)])
        scaled = ctx.inner("Mul", [total, ctx.b.const(ctx.name, layer.alpha / size)])
        base = ctx.inner("Add", [scaled, ctx.b.const(ctx.name, float(layer.k))])
        return ctx.out("Div", [x, ctx.inner("Pow", [base, ctx.b.const(ctx.name, float(layer.beta))])])
    return ctx.out("LRN", [ctx.inputs[0]], size=int(layer.size), alpha=float(layer.alpha),
                   beta=float(layer.beta), bias=float(layer.k))


# -- activations ------------------------------------------------------------------------------------

def _unary(op: str, **fixed) -> Callable[[Ctx], str]:
    def emit(ctx: Ctx) -> str:
        return ctx.out(op, [ctx.inputs[0]], **fixed)
    return emit


def _clip(low: float | None, high: float | None):
    def emit(ctx: Ctx) -> str:
        lo = ctx.b.const(ctx.name, low if low is not None else -np.inf)
        hi = ctx.b.const(ctx.name, high if high is not None else np.inf)
        return ctx.out("Clip", [ctx.inputs[0], lo, hi])
    return emit


def _hardtanh(ctx: Ctx) -> str:
    return _clip(ctx.layer.min_val, ctx.layer.max_val)(ctx)


def _leaky(ctx: Ctx) -> str:
    return ctx.out("LeakyRelu", [ctx.inputs[0]], alpha=float(ctx.layer.negative_slope))


def _elu(ctx: Ctx) -> str:
    return ctx.out("Elu", [ctx.inputs[0]], alpha=float(ctx.layer.alpha))


def _silu(ctx: Ctx) -> str:
    return ctx.out("Mul", [ctx.inputs[0], ctx.inner("Sigmoid", [ctx.inputs[0]])])


def _mish(ctx: Ctx) -> str:
    soft = ctx.inner("Softplus", [ctx.inputs[0]])
    return ctx.out("Mul", [ctx.inputs[0], ctx.inner("Tanh", [soft])])


def _softplus(ctx: Ctx) -> str:
    """PyTorch: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    x, beta = ctx.inputs[0], float(ctx.layer.beta)
    scaled = x if beta == 1 else ctx.inner("Mul", [x, ctx.b.const(ctx.name, beta)])
    soft = ctx.inner("Softplus", [scaled])
    if beta != 1:
        soft = ctx.inner("Div", [soft, ctx.b.const(ctx.name, beta)])
    above = ctx.inner("Greater", [scaled, ctx.b.const(ctx.name, float(ctx.layer.threshold))])
    return ctx.out("Where", [above, x, soft])


def _gelu(ctx: Ctx) -> str:
    x = ctx.inputs[0]
    if ctx.b.opset >= 20:
        return ctx.out("Gelu", [x], approximate=ctx.layer.approximate)
    c = ctx.b.const
    if ctx.layer.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = ctx.inner("Mul", [ctx.inner("Mul", [x, x]), x])
        inner = ctx.inner("Add", [x, ctx.inner("Mul", [cube, c(ctx.name, 0.044715)])])
        t = ctx.inner("Tanh", [ctx.inner("Mul", [inner, c(ctx.name, math.sqrt(2 / math.pi))])])
    else:  # x * (1 + erf(x / sqrt 2)) * 0.5, PyTorch's exporter's five nodes (the importer
        # reads them back as gelu)
        t = ctx.inner("Erf", [ctx.inner("Div", [x, c(ctx.name, math.sqrt(2))])])
        return ctx.out("Mul", [ctx.inner("Mul", [x, ctx.inner("Add", [t, c(ctx.name, 1.0)])]),
                               c(ctx.name, 0.5)])
    half = ctx.inner("Mul", [x, c(ctx.name, 0.5)])
    return ctx.out("Mul", [half, ctx.inner("Add", [t, c(ctx.name, 1.0)])])


def _hardsigmoid(ctx: Ctx) -> str:
    return ctx.out("HardSigmoid", [ctx.inputs[0]], alpha=1 / 6, beta=0.5)


def _prelu(ctx: Ctx) -> str:
    shape = ctx.in_shapes[0]
    slope = ctx.key("weight")
    if ctx.layer.num_parameters > 1:  # one per channel: (C, 1, ...) to broadcast on axis 1
        slope = ctx.inner("Reshape", [slope, ctx.b.ints(ctx.name, [shape[0], *[1] * (len(shape) - 1)])])
    return ctx.out("PRelu", [ctx.inputs[0], slope])


def _softmax(op: str):
    def emit(ctx: Ctx) -> str:
        return ctx.out(op, [ctx.inputs[0]], axis=int(ctx.layer.dim))
    return emit


# -- pools ------------------------------------------------------------------------------------------

def _maxpool(ctx: Ctx) -> str:
    """MaxPool, ceil mode as extra end pads. onnxruntime takes no pad as wide as the kernel,
    and gives a window of padding alone the lowest float where PyTorch gives -inf (a dilated
    pool can have one): there the padding is an explicit Pad of -inf and the pool pads none."""
    layer = ctx.layer
    x = ctx.inputs[0]
    stride, pads, dilation = layer.geometry(ctx.in_shapes[0][1:])
    pads = _ceil_pads(ctx, layer.kernel_size, stride, pads, dilation)
    if any(max(pair) >= k or _padding_only_window(i, k, s, d, pair[0], o) for i, k, s, d, pair, o in
           zip(ctx.in_shapes[0][1:], layer.kernel_size, stride, dilation, pads, ctx.out_shape[1:])):
        if ctx.name in ctx.b.indices_wanted:
            _refuse(ctx, "its indices would count the explicit padding onnxruntime needs here "
                    "(a pad as wide as the kernel, or a window of padding alone)")
        x = _explicit_pad(ctx, x, pads, "constant", float("-inf"))
        pads = [(0, 0)] * len(pads)
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(stride), pads=_onnx_pads(pads),
                 dilations=list(dilation))
    if ctx.name not in ctx.b.indices_wanted:
        return ctx.out("MaxPool", [x], **attrs)
    # ONNX's indices count over the whole (N, C, *spatial) tensor, PyTorch's within each
    # plane; MaxUnpool reads ONNX's, so the pair is exact end to end
    return ctx.b.node("MaxPool", [x], outputs=[ctx.tensor, f"{ctx.name}/indices"],
                      name=ctx.name, **attrs)


def _padding_only_window(size: int, k: int, s: int, d: int, before: int, outputs: int) -> bool:
    """Whether one of the `outputs` windows along an axis reads padding alone."""
    taps = np.arange(outputs)[:, None] * s - before + np.arange(k)[None, :] * d
    return bool((~((taps >= 0) & (taps < size)).any(axis=1)).any())


def _max_unpool(ctx: Ctx) -> str:
    layer = ctx.layer
    pool = ctx.b.refs_of(ctx.name)["indices"]
    n = len(layer.kernel_size)
    stride = layer.stride if layer.stride is not None else layer.kernel_size
    pads = _pad_pairs(layer.padding, n)
    inputs = [ctx.inputs[0], f"{pool}/indices"]
    if layer.output_size is not None:
        head = ctx.inner("Slice", [ctx.inner("Shape", [ctx.inputs[0]]), ctx.b.ints(ctx.name, [0]),
                                   ctx.b.ints(ctx.name, [2])])
        inputs.append(ctx.inner("Concat", [head, ctx.b.ints(ctx.name, list(ctx.out_shape[1:]))], axis=0))
    return ctx.out("MaxUnpool", inputs, kernel_shape=list(layer.kernel_size), strides=list(stride),
                   pads=_onnx_pads(pads))


def _stack(ctx: Ctx) -> str:
    rank = len(ctx.in_shapes[0]) + 2  # the output's rank, batch included
    axis = ctx.layer.dim % rank
    parts = [ctx.inner("Unsqueeze", [x, ctx.b.ints(ctx.name, [axis])]) for x in ctx.inputs]
    return ctx.out("Concat", parts, axis=axis)


def _scalar_affine(ctx: Ctx) -> str:
    scaled = ctx.inner("Mul", [ctx.inputs[0], ctx.key("weight")])
    if not ctx.layer.bias:
        return ctx.out("Identity", [scaled])
    return ctx.out("Add", [scaled, ctx.key("bias")])


def _global_response_norm(ctx: Ctx) -> str:
    """x + bias + weight * x * Nx, Nx = Gx / (mean_c Gx + eps), Gx = ||x||_2 over the spatial
    axes (timm GlobalResponseNorm, channels first, or last with `channels_last`)."""
    x, shape = ctx.inputs[0], ctx.in_shapes[0]
    last = bool(getattr(ctx.layer, "channels_last", False))
    channel = len(shape) if last else 1
    spatial = [a for a in range(1, len(shape) + 1) if a != channel]
    gx = ctx.inner("Sqrt", [_reduce(ctx, "ReduceSum", ctx.inner("Mul", [x, x]), spatial, keepdims=1)])
    mean = _reduce(ctx, "ReduceMean", gx, [channel], keepdims=1)
    nx = ctx.inner("Div", [gx, ctx.inner("Add", [mean, ctx.b.const(ctx.name, float(ctx.layer.eps))])])
    if last:  # (C,) broadcasts along the last axis as it is
        w, b = ctx.key("weight"), ctx.key("bias")
    else:
        ones = [1] * (len(shape) - 1)
        w = ctx.inner("Reshape", [ctx.key("weight"), ctx.b.ints(ctx.name, [shape[0], *ones])])
        b = ctx.inner("Reshape", [ctx.key("bias"), ctx.b.ints(ctx.name, [shape[0], *ones])])
    gated = ctx.inner("Mul", [w, ctx.inner("Mul", [x, nx])])
    return ctx.out("Add", [x, ctx.inner("Add", [b, gated])])


def _blur_pool(ctx: Ctx) -> str:
    """timm BlurPool2d: pad, then the fixed binomial filter per channel (a grouped conv)."""
    layer = ctx.layer
    c = ctx.in_shapes[0][0]
    padded = _explicit_pad(ctx, ctx.inputs[0], [(layer.pad, layer.pad)] * 2, layer.pad_mode)
    weight = np.ascontiguousarray(np.broadcast_to(layer.filter(), (c, 1, layer.filt_size, layer.filt_size)))
    return ctx.out("Conv", [padded, ctx.b.const(ctx.name, weight)], kernel_shape=[layer.filt_size] * 2,
                   strides=[layer.stride] * 2, group=c)


def _coord_channels(ctx: Ctx) -> str:
    """The coordinate channels are constants at this size: the executor's own values, expanded
    over the batch and concatenated after the input's channels."""
    from convcalc.executor.kernels import coord_channels
    spatial = ctx.in_shapes[0][1:]
    coords = coord_channels(np.zeros((1, *spatial, 0), np.float32), ctx.layer.with_r)
    coords = np.moveaxis(coords, -1, 1)  # (1, k, *spatial)
    head = ctx.inner("Slice", [ctx.inner("Shape", [ctx.inputs[0]]), ctx.b.ints(ctx.name, [0]),
                               ctx.b.ints(ctx.name, [1])])
    shape = ctx.inner("Concat", [head, ctx.b.ints(ctx.name, list(coords.shape[1:]))], axis=0)
    grid = ctx.inner("Expand", [ctx.b.const(ctx.name, coords), shape])
    return ctx.out("Concat", [ctx.inputs[0], grid], axis=1)


def _locally_connected(ctx: Ctx) -> str:
    """Unshared weights with standard operators: the patches by a grouped conv with one-hot
    kernels (an exact copy of each tap), then a per-position product summed over the patch:
    out[n, co, l] = sum_j patch[n, j, l] * w[l, co, j] + b[co, l]."""
    layer = ctx.layer
    cin, *spatial = ctx.in_shapes[0]
    cout, *out = ctx.out_shape
    kernel = list(layer.kernel_size)
    taps, positions = math.prod(kernel), math.prod(out)
    pads, _ = layer.geometry(tuple(spatial))
    onehot = np.zeros((cin * taps, 1, *kernel), np.float32)
    for c in range(cin):
        for t in range(taps):
            onehot[(c * taps + t, 0, *np.unravel_index(t, kernel))] = 1.0
    patches = ctx.inner("Conv", [ctx.inputs[0], ctx.b.const(ctx.name, onehot)], kernel_shape=kernel,
                        strides=list(layer.stride), pads=_onnx_pads(pads), group=cin)
    patches = ctx.inner("Reshape", [patches, ctx.b.ints(ctx.name, [0, 1, cin * taps, positions])])
    w = ctx.inner("Reshape", [ctx.key("weight"), ctx.b.ints(ctx.name, [positions, cout, cin * taps])])
    w = ctx.inner("Transpose", [w], perm=[1, 2, 0])  # (Cout, Cin*K, L)
    summed = _reduce(ctx, "ReduceSum", ctx.inner("Mul", [patches, w]), [2], keepdims=0)
    shaped = [0, cout, *out]
    if not layer.bias:
        return ctx.out("Reshape", [summed, ctx.b.ints(ctx.name, shaped)])
    return ctx.out("Add", [ctx.inner("Reshape", [summed, ctx.b.ints(ctx.name, shaped)]), ctx.key("bias")])


def _ceil_pads(ctx: Ctx, kernel, stride, pads, dilation) -> list:
    """ceil_mode written as padding: the pads, with the rows after the right padding that
    PyTorch's last ceil-mode window reads added to it (none when no window reaches past).
    A window PyTorch drops (one starting in the right padding) is already gone from the
    analysed output size, so floor mode on these pads gives exactly PyTorch's windows."""
    out = []
    for i, k, s, d, (pb, pa), o in zip(ctx.in_shapes[0][1:], kernel, stride, dilation, pads,
                                       ctx.out_shape[1:]):
        extra = max(0, (o - 1) * s + d * (k - 1) + 1 - (i + pb + pa))
        out.append((pb, pa + extra))
    return out


def _avgpool(ctx: Ctx) -> str:
    """AveragePool where its windows and divisors are PyTorch's, in native ONNX nodes only (so
    the export imports back as the same pool). ONNX's count_include_pad=0 divides by the real
    elements of a window, as PyTorch without count_include_pad does, so a ceil-mode window past
    the padding is an extra end pad. PyTorch with count_include_pad counts its padding but not
    that overhang: the padding becomes an explicit Pad of zeros (then real to ONNX) before a
    pool that pads only the overhang, uncounted. divisor_override: the sum (the mean of full
    windows, overhang counted) times k / divisor."""
    layer = ctx.layer
    spatial = ctx.in_shapes[0][1:]
    n = len(spatial)
    stride, pads, _ = layer.geometry(spatial)
    kernel = list(layer.kernel_size)
    pads = [tuple(p) for p in pads]
    wide = _ceil_pads(ctx, kernel, stride, pads, [1] * n)
    overhang = [(0, wa - a) for (_, a), (_, wa) in zip(pads, wide)]
    x = ctx.inputs[0]
    if layer.divisor_override is None and (not layer.count_include_pad or wide == pads):
        return ctx.out("AveragePool", [x], kernel_shape=kernel, strides=list(stride),
                       pads=_onnx_pads(wide), count_include_pad=int(layer.count_include_pad))
    if any(b or a for b, a in pads):
        x = _explicit_pad(ctx, x, pads, "zeros")
    if layer.divisor_override is None:
        return ctx.out("AveragePool", [x], kernel_shape=kernel, strides=list(stride),
                       pads=_onnx_pads(overhang), count_include_pad=0)
    mean = ctx.inner("AveragePool", [x], kernel_shape=kernel, strides=list(stride),
                     pads=_onnx_pads(overhang), count_include_pad=1)
    factor = math.prod(kernel) / float(layer.divisor_override)
    return ctx.out("Mul", [mean, ctx.b.const(ctx.name, factor)])


def _adaptive(op: str, global_op: str):
    def emit(ctx: Ctx) -> str:
        spatial, out = ctx.in_shapes[0][1:], ctx.out_shape[1:]
        if all(o == 1 for o in out):
            return ctx.out(global_op, [ctx.inputs[0]])
        if any(i % o for i, o in zip(spatial, out)):
            return _adaptive_windows(ctx, "ReduceMax" if op == "MaxPool" else "ReduceMean")
        kernel = [i // o for i, o in zip(spatial, out)]
        return ctx.out(op, [ctx.inputs[0]], kernel_shape=kernel, strides=kernel)
    return emit


MAX_WINDOWS = 4096  # Slice + Reduce pairs an adaptive pool may take in the exported model


def _adaptive_windows(ctx: Ctx, reducer: str) -> str:
    """PyTorch's adaptive windows [floor(j*I/O), ceil((j+1)*I/O)) one axis at a time (mean
    and max over a box are separable): a Slice and a Reduce per window, concatenated."""
    x = ctx.inputs[0]
    axes = [(axis, i, o) for axis, (i, o) in enumerate(zip(ctx.in_shapes[0][1:], ctx.out_shape[1:]), 2)
            if i != o]
    windows = sum(o for _, _, o in axes)
    if windows > MAX_WINDOWS:
        _refuse(ctx, f"{windows:,} uneven windows: ONNX has no adaptive pool, and one Slice "
                     f"and Reduce per window past {MAX_WINDOWS:,} is no model a runtime loads",
                "an output size dividing the input is one pooling node")
    for step, (axis, i, o) in enumerate(axes):
        parts = [_reduce(ctx, reducer, _slice_on(ctx, x, axis, j * i // o, -(-(j + 1) * i // o)), [axis], 1)
                 for j in range(o)]
        last = step == len(axes) - 1
        x = (ctx.out if last else ctx.inner)("Concat", parts, axis=axis) if len(parts) > 1 else \
            (ctx.out("Identity", parts) if last else parts[0])
    return x


def _global(op: str):
    def emit(ctx: Ctx) -> str:
        pooled = ctx.inner(op, [ctx.inputs[0]])
        if ctx.layer.keepdim:
            return ctx.out("Identity", [pooled])
        return ctx.out("Flatten", [pooled], axis=1)
    return emit


# -- merges and arithmetic -------------------------------------------------------------------------

def _aligned(ctx: Ctx) -> list[str]:
    """Inputs of a broadcasting merge, with a lower-rank input given leading 1s after the
    batch axis: per sample, [C] against [C, H, W] aligns from the right (NumPy), but with the
    batch axis in front ONNX would align N with H."""
    rank = max(len(s) for s in ctx.in_shapes)
    out = []
    for name, shape in zip(ctx.inputs, ctx.in_shapes):
        if len(shape) < rank:
            name = ctx.inner("Unsqueeze", [name, ctx.b.ints(ctx.name, list(range(1, 1 + rank - len(shape))))])
        out.append(name)
    return out


def _binary(op: str, constant: str = "other", reverse: bool = False):
    def emit(ctx: Ctx) -> str:
        value = getattr(ctx.layer, constant, None)
        if value is not None:
            const = ctx.b.const(ctx.name, float(value))
            pair = [const, ctx.inputs[0]] if reverse else [ctx.inputs[0], const]
            return ctx.out(op, pair)
        names = _aligned(ctx)
        acc = names[0]
        for i, other in enumerate(names[1:]):
            acc = (ctx.out if i == len(names) - 2 else ctx.inner)(op, [acc, other])
        return acc
    return emit


def _concat(ctx: Ctx) -> str:
    return ctx.out("Concat", ctx.inputs, axis=int(ctx.layer.dim))


def _flatten(ctx: Ctx) -> str:
    layer = ctx.layer
    rank = len(ctx.in_shapes[0]) + 1
    if layer.start_dim == 1 and layer.end_dim in (-1, rank - 1):
        return ctx.out("Flatten", [ctx.inputs[0]], axis=1)
    return ctx.out("Reshape", [ctx.inputs[0], ctx.b.ints(ctx.name, [0, *ctx.out_shape])])


def _reshape(ctx: Ctx) -> str:
    return ctx.out("Reshape", [ctx.inputs[0], ctx.b.ints(ctx.name, [0, *ctx.out_shape])])


def _permute(ctx: Ctx) -> str:
    rank = len(ctx.in_shapes[0]) + 1
    return ctx.out("Transpose", [ctx.inputs[0]], perm=[d % rank for d in ctx.layer.dims])


def _transpose(ctx: Ctx) -> str:
    rank = len(ctx.in_shapes[0]) + 1
    perm = list(range(rank))
    a, b = ctx.layer.dim0 % rank, ctx.layer.dim1 % rank
    perm[a], perm[b] = perm[b], perm[a]
    return ctx.out("Transpose", [ctx.inputs[0]], perm=perm)


def _identity(ctx: Ctx) -> str:
    return ctx.out("Identity", [ctx.inputs[0]])


def _upsample(ctx: Ctx) -> str:
    layer = ctx.layer
    spatial, out = ctx.in_shapes[0][1:], ctx.out_shape[1:]
    if layer.mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        attrs = dict(mode="linear", coordinate_transformation_mode=(
            "align_corners" if layer.align_corners else "half_pixel"))
    roi = ctx.b.const(ctx.name, [])
    if layer.scale_factor is not None:  # PyTorch maps coordinates by 1/scale_factor
        factors = list(layer.scale_factor) * (len(spatial) if len(layer.scale_factor) == 1 else 1)
        # ONNX's scales are float32 and its sizes floor(input x scale): at a size where that
        # rounds elsewhere, the sizes input is exact when the factor is (out = in x factor)
        rounded = [math.floor(i * float(np.float32(f))) for i, f in zip(spatial, factors)]
        if rounded == list(out):
            scales = ctx.b.const(ctx.name, [1.0, 1.0, *map(float, factors)])
            return ctx.out("Resize", [ctx.inputs[0], roi, scales], **attrs)
        if any(i * f != o for i, f, o in zip(spatial, factors, out)):
            _refuse(ctx, f"scale_factor {factors} at input {list(spatial)}: ONNX's float32 "
                         f"scales give {rounded}, not {list(out)}",
                    "give the upsample a size: instead, or a scale exact in float32")
    # by size: (N, C) from the input's shape, the spatial sizes fixed
    head = ctx.inner("Slice", [ctx.inner("Shape", [ctx.inputs[0]]), ctx.b.ints(ctx.name, [0]),
                               ctx.b.ints(ctx.name, [2])])
    sizes = ctx.inner("Concat", [head, ctx.b.ints(ctx.name, list(out))], axis=0)
    return ctx.out("Resize", [ctx.inputs[0], roi, "", sizes], **attrs)


def _slice_axes(ctx: Ctx, starts, ends, axes) -> str:
    return ctx.out("Slice", [ctx.inputs[0], ctx.b.ints(ctx.name, starts), ctx.b.ints(ctx.name, ends),
                             ctx.b.ints(ctx.name, axes)])


def _crop(ctx: Ctx) -> str:
    spatial, out = ctx.in_shapes[0][1:], ctx.out_shape[1:]
    starts = [(i - o) // 2 for i, o in zip(spatial, out)]
    return _slice_axes(ctx, starts, [s + o for s, o in zip(starts, out)], list(range(2, 2 + len(out))))


def _slice(ctx: Ctx) -> str:
    layer = ctx.layer
    rank = len(ctx.in_shapes[0]) + 1
    axis = layer.dim % rank
    size = ctx.in_shapes[0][axis - 1]
    start, end, step = slice(layer.start, layer.end, layer.step).indices(size)
    return ctx.out("Slice", [ctx.inputs[0], ctx.b.ints(ctx.name, [start]), ctx.b.ints(ctx.name, [end]),
                             ctx.b.ints(ctx.name, [axis]), ctx.b.ints(ctx.name, [step])])


def _pad(ctx: Ctx) -> str:
    pads = ctx.layer.pads(ctx.in_shapes[0])
    out = _explicit_pad(ctx, ctx.inputs[0], pads, ctx.layer.mode, float(ctx.layer.value))
    return ctx.out("Identity", [out])


def _split(ctx: Ctx) -> str:
    """A split's own output is its input; each part `name.k` is a Slice along the axis."""
    from convcalc.layers.slicing import SplitPart
    if not isinstance(ctx.layer, SplitPart):
        return ctx.out("Identity", [ctx.inputs[0]])
    axis, offset, size = ctx.layer.geometry(ctx.in_shapes[0])
    return ctx.out("Slice", [ctx.inputs[0], ctx.b.ints(ctx.name, [offset]),
                             ctx.b.ints(ctx.name, [offset + size]), ctx.b.ints(ctx.name, [axis + 1])])


def _reduce_kind(op: str):
    def emit(ctx: Ctx) -> str:
        rank = len(ctx.in_shapes[0]) + 1
        dims = ctx.layer.dim
        dims = list(range(1, rank)) if dims is None else ([dims] if isinstance(dims, int) else list(dims))
        reduced = _reduce(ctx, op, ctx.inputs[0], [d % rank for d in dims], int(bool(ctx.layer.keepdim)))
        # every axis reduced without keepdim leaves one value per sample, analysed as [1]
        return ctx.out("Reshape", [reduced, ctx.b.ints(ctx.name, [-1, *ctx.out_shape])])
    return emit


def _pixel_shuffle(ctx: Ctx) -> str:
    return ctx.out("DepthToSpace", [ctx.inputs[0]], blocksize=int(ctx.layer.upscale_factor), mode="CRD")


def _pixel_unshuffle(ctx: Ctx) -> str:
    """PyTorch's pixel_unshuffle orders channels (c, dy, dx): reshape and transpose, as
    ONNX's SpaceToDepth orders them (dy, dx, c)."""
    c, h, w = ctx.in_shapes[0]
    r = int(ctx.layer.downscale_factor)
    x = ctx.inner("Reshape", [ctx.inputs[0], ctx.b.ints(ctx.name, [0, c, h // r, r, w // r, r])])
    x = ctx.inner("Transpose", [x], perm=[0, 1, 3, 5, 2, 4])
    return ctx.out("Reshape", [x, ctx.b.ints(ctx.name, [0, *ctx.out_shape])])


def _channel_shuffle(ctx: Ctx) -> str:
    c, *spatial = ctx.in_shapes[0]
    g = int(ctx.layer.groups)
    x = ctx.inner("Reshape", [ctx.inputs[0], ctx.b.ints(ctx.name, [0, g, c // g, *spatial])])
    x = ctx.inner("Transpose", [x], perm=[0, 2, 1, *range(3, 3 + len(spatial))])
    return ctx.out("Reshape", [x, ctx.b.ints(ctx.name, [0, *ctx.out_shape])])


def _matmul(ctx: Ctx) -> str:
    return ctx.out("MatMul", _aligned(ctx))


def _layer_scale(ctx: Ctx) -> str:
    return ctx.out("Mul", [ctx.inputs[0], _per_channel_weight(ctx)])


def _channel_bias(ctx: Ctx) -> str:
    return ctx.out("Add", [ctx.inputs[0], _per_channel_weight(ctx)])


def _per_channel_weight(ctx: Ctx) -> str:
    """layer_scale's gamma or channel_bias's bias, as (C, 1, ...) over axis 1."""
    shape = ctx.in_shapes[0]
    value = ctx.key(ctx.layer.param)
    if not ctx.layer.keepdim and len(shape) > 1 and ctx.b.weights[weight_key(ctx.name, ctx.layer.param)].ndim == 1:
        value = ctx.inner("Reshape", [value, ctx.b.ints(ctx.name, [shape[0], *[1] * (len(shape) - 1)])])
    return value


EMIT: dict[str, Callable[[Ctx], Any]] = {
    **{f"conv{n}d": _conv for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": _conv_transpose for n in (1, 2, 3)},
    "linear": _linear,
    **{f"batchnorm{n}d": _batchnorm for n in (1, 2, 3)},
    **{f"instancenorm{n}d": _instancenorm for n in (1, 2, 3)},
    "groupnorm": _groupnorm, "layernorm": _layernorm, "layernorm2d": _layernorm2d,
    "local_response_norm": _lrn,
    "relu": _unary("Relu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"),
    "relu6": _clip(0.0, 6.0), "hardtanh": _hardtanh, "leaky_relu": _leaky, "elu": _elu,
    "silu": _silu, "mish": _mish, "softplus": _softplus, "gelu": _gelu,
    "hardsigmoid": _hardsigmoid, "hardswish": _unary("HardSwish"), "prelu": _prelu,
    "softmax": _softmax("Softmax"), "log_softmax": _softmax("LogSoftmax"),
    "dropout": _identity, "identity": _identity,
    **{f"maxpool{n}d": _maxpool for n in (1, 2, 3)},
    **{f"avgpool{n}d": _avgpool for n in (1, 2, 3)},
    **{f"adaptive_avgpool{n}d": _adaptive("AveragePool", "GlobalAveragePool") for n in (1, 2, 3)},
    **{f"adaptive_maxpool{n}d": _adaptive("MaxPool", "GlobalMaxPool") for n in (1, 2, 3)},
    "global_avgpool": _global("GlobalAveragePool"), "global_maxpool": _global("GlobalMaxPool"),
    "add": _binary("Add"), "mul": _binary("Mul"), "sub": _binary("Sub"), "div": _binary("Div"),
    "pow": _binary("Pow", constant="exponent"),
    "rsub": _binary("Sub", reverse=True), "rdiv": _binary("Div", reverse=True),
    "rpow": _binary("Pow", reverse=True),
    "concat": _concat, "flatten": _flatten, "reshape": _reshape, "view": _reshape,
    "unflatten": _reshape, "permute": _permute, "transpose": _transpose,
    "upsample": _upsample, "crop": _crop, "slice": _slice, "pad": _pad,
    "split": _split, "chunk": _split,
    "sum": _reduce_kind("ReduceSum"), "mean": _reduce_kind("ReduceMean"),
    "amax": _reduce_kind("ReduceMax"), "amin": _reduce_kind("ReduceMin"),
    "max": _reduce_kind("ReduceMax"), "min": _reduce_kind("ReduceMin"),
    "pixel_shuffle": _pixel_shuffle, "depth_to_space": _pixel_shuffle,
    "pixel_unshuffle": _pixel_unshuffle, "channel_shuffle": _channel_shuffle,
    "matmul": _matmul, "bmm": _matmul, "layer_scale": _layer_scale, "channel_bias": _channel_bias,
    **{f"max_unpool{n}d": _max_unpool for n in (1, 2, 3)},
    **{f"locally_connected{n}d": _locally_connected for n in (1, 2, 3)},
    "coord_channels": _coord_channels, "stack": _stack, "scalar_affine": _scalar_affine,
    "global_response_norm": _global_response_norm, "blur_pool2d": _blur_pool,
    "space_to_depth": _pixel_unshuffle,
}

# Kinds with no exact export yet, and why (one line each, as the error says it): none today;
# a new kind lands here or in EMIT (tests/test_export_onnx.py holds every registered kind to it).
NOT_EXPORTED: dict[str, str] = {}


def export_onnx(report, weights: dict[str, np.ndarray], opset: int = DEFAULT_OPSET,
                name: str = "convcalc", data: Any = None, location: str | None = None):
    """The ModelProto of an analysed, error-free network with these weights, checked with
    onnx.checker (full check). With `data` (a binary stream) and `location` (its file name
    beside the model), the tensors of 1 KiB or more are written to the stream instead (ONNX
    external data) and the model is not checked here: `save_model` checks it on disk. Without
    them, weights past protobuf's 2 GiB are an ExportError saying so."""
    import onnx
    from onnx import TensorProto, helper

    newest = onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: convcalc writes opset {MIN_OPSET} or newer",
                          f"use --opset {DEFAULT_OPSET}")
    if opset > newest:  # a model claiming an opset no runtime defines
        raise ExportError(f"opset {opset} does not exist: the installed onnx {onnx.__version__} "
                          f"knows opsets up to {newest}", f"use --opset {DEFAULT_OPSET} "
                          f"(any of {MIN_OPSET} to {newest})")
    graph = report.graph
    shapes = {layer.name: tuple(layer.output_shape) for layer in report.layers}
    for name, shape in [("input", tuple(report.input_shape)), *shapes.items()]:
        if any(size > INT64_MAX for size in shape):
            raise ExportError(f"{name}: its output {'x'.join(map(str, shape))} has a size "
                              "past ONNX's 64-bit integers (2^63 - 1)",
                              "check the spec's sizes: a runtime could not hold this either")
    b = Builder(opset, dict(weights), shapes)
    for key, array in weights.items():  # every state_dict entry, num_batches_tracked too
        array = np.asarray(array)
        b.initializers[key] = array if array.dtype == np.int64 else \
            array.astype(np.float32, copy=False)
    b.refs = {node.name: dict(node.refs) for node in graph.nodes}
    b.indices_wanted = {ref for node in graph.nodes for key, ref in node.refs.items() if key == "indices"}
    tensors = {"input": "input"}
    shapes["input"] = tuple(report.input_shape)
    for node in graph.nodes:
        emit = EMIT.get(node.type)
        if emit is None:
            why = NOT_EXPORTED.get(node.type, "no ONNX form is written for this kind")
            raise ExportError(f"{node.name}: {node.type} cannot be exported to ONNX: {why}",
                              "export stops here: `convcalc check` and `run` still take it")
        in_shapes = [_shape_of(shapes, n) for n in node.inputs]
        ctx = Ctx(b, node.name, node.type, node.layer, [tensors[n] if n in tensors else n
                                                         for n in node.inputs],
                  in_shapes, shapes.get(node.name, ()))
        tensors[node.name] = emit(ctx)
    last = graph.output
    out_name = tensors[last.name]
    out_shape = shapes[last.name]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *report.input_shape])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *out_shape])
    if data is None and too_large(b.initializers):
        size = sum(a.nbytes for a in b.initializers.values())
        raise ExportError(f"the weights take {size / 2**30:.2f} GiB, past protobuf's 2 GiB: "
                          "such a model keeps them in a file beside it (ONNX external data)",
                          "`convcalc export --to onnx -o OUT.onnx` writes OUT.onnx.data too; "
                          "from Python, convcalc.api.save_onnx(spec, OUT.onnx)")
    inits = [_initializer(key, array, data, location) for key, array in b.initializers.items()]
    onnx_graph = helper.make_graph(b.nodes, name, [x], [y], inits)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="convcalc")
    model.ir_version = min(model.ir_version, 8) if opset <= 17 else model.ir_version
    if data is None:
        onnx.checker.check_model(model, full_check=True)
    return model


INT64_MAX = 2**63 - 1  # ONNX's dimensions and integer attributes

PROTOBUF_LIMIT = 2**31 - 1
"""Bytes of one serialized protobuf message: a model whose weights come near it keeps them in a
file beside it (ONNX external data, as torch.onnx.export does past 2 GiB)."""

EXTERNAL_FROM = 1024  # bytes: smaller tensors stay in the model (onnx.save_model's default)


def too_large(arrays: dict) -> bool:
    """Weights too large for one protobuf (1/32 of it left for the graph and constants)."""
    return sum(np.asarray(a).nbytes for a in arrays.values()) > PROTOBUF_LIMIT - PROTOBUF_LIMIT // 32


def _initializer(key: str, array: np.ndarray, data, location: str | None):
    """A TensorProto: the values inside, or (with a data stream) written to it and referred
    to by location, offset and length, never copied into a protobuf."""
    from onnx import TensorProto, helper, numpy_helper
    if data is None or array.nbytes < EXTERNAL_FROM:
        return numpy_helper.from_array(array, key)
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    tensor = TensorProto()
    tensor.name = key
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    offset = data.tell()
    data.write(memoryview(little).cast("B"))
    tensor.data_location = TensorProto.EXTERNAL
    for field_name, value in (("location", location), ("offset", offset),
                              ("length", little.nbytes)):
        entry = tensor.external_data.add()
        entry.key, entry.value = field_name, str(value)
    return tensor


def data_file(path) -> Path:
    """Where the weights of a model too large for one file go: OUT.onnx.data beside it."""
    path = Path(path)
    return path.with_name(path.name + ".data")


def save_model(report, weights: dict[str, np.ndarray], path, opset: int = DEFAULT_OPSET,
               name: str = "convcalc"):
    """Export to `path`, whole or not at all: a temporary file renamed over it. Weights past
    protobuf's 2 GiB go to `data_file(path)` as they are written (ONNX external data, one
    file named relative to the model), and the model is checked there, full check, before
    either file is moved into place. Returns (the ModelProto, the files written)."""
    import os
    import shutil
    import tempfile

    import onnx

    from convcalc.files import usual_permissions, write_whole

    path = Path(path)
    if not too_large(weights):
        model = export_onnx(report, weights, opset, name)
        write_whole(path, lambda stream: stream.write(model.SerializeToString()))
        return model, [path]
    data = data_file(path)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent)
                                   else "."))
    try:
        with open(folder / data.name, "wb") as stream:
            model = export_onnx(report, weights, opset, name, data=stream, location=data.name)
        staged = folder / path.name
        staged.write_bytes(model.SerializeToString())
        onnx.checker.check_model(str(staged), full_check=True)
        for file in (data.name, path.name):
            usual_permissions(folder / file)
        os.replace(folder / data.name, data)  # the weights first: the model names them
        os.replace(staged, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return model, [path, data]


def _shape_of(shapes: dict, name: str) -> tuple[int, ...]:
    return shapes[name]
