"""The PyTorch converter table: nn module classes, functions and tensor methods -> layer kinds.

A converter gets a `Call` (the fx node with its arguments bound, constants evaluated, and the
per-sample shapes ShapeProp saw) and returns the layer's parameters ({"type": ..., ...}),
`SAME` when the node is its input unchanged (x.contiguous(), torch.cat([x])), or raises
`NotConvertible` with the reason. The importer (torch_import.py) names the layers, wires
their inputs and checks every shape against ShapeProp's. Dims are PyTorch's, batch axis
included (1 = channels), as in convcalc's own kinds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SAME = "same-as-input"


class NotConvertible(Exception):
    """This node has no faithful layer: the message says which construct and why."""


@dataclass
class Call:
    """One fx node, ready to convert: `values` binds each parameter name to its argument,
    with tensors kept as fx nodes and everything else evaluated; `in_shapes` are the
    per-sample shapes of its data inputs, `out_shape` of its output (no batch axis)."""

    node: Any
    values: dict[str, Any]
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...] | None
    constants: dict[str, Any] = field(default_factory=dict)  # name -> tensor (weights)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def compact(value: Any) -> Any:
    """(3, 3) -> 3, (3, 1) -> [3, 1]: per-axis values as a person writes them."""
    if isinstance(value, (tuple, list)):
        items = [compact(v) for v in value]
        return items[0] if items and all(v == items[0] for v in items) else items
    return value


def _rank(call: Call) -> int:
    return len(call.in_shapes[0]) - 1


# -- modules: nn class name -> (kind or converter) ----------------------------------------------

def _conv(module, call: Call) -> dict:
    padding = module.padding if isinstance(module.padding, str) else compact(module.padding)
    layer = {"type": f"conv{len(module.kernel_size)}d", "out_channels": module.out_channels,
             "kernel_size": compact(module.kernel_size), "stride": compact(module.stride),
             "padding": padding, "dilation": compact(module.dilation), "groups": module.groups,
             "bias": module.bias is not None}
    if module.padding_mode != "zeros":
        layer["padding_mode"] = module.padding_mode
    return _without_defaults(layer, stride=1, padding=0, dilation=1, groups=1, bias=True)


def _conv_transpose(module, call: Call) -> dict:
    layer = {"type": f"conv_transpose{len(module.kernel_size)}d",
             "out_channels": module.out_channels, "kernel_size": compact(module.kernel_size),
             "stride": compact(module.stride), "padding": compact(module.padding),
             "output_padding": compact(module.output_padding),
             "dilation": compact(module.dilation), "groups": module.groups,
             "bias": module.bias is not None}
    return _without_defaults(layer, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1, bias=True)


def _batchnorm(module, call: Call) -> dict:
    layer = {"type": f"batchnorm{_norm_rank(module, call)}d", "eps": module.eps,
             "affine": module.affine, "track_running_stats": module.track_running_stats}
    return _without_defaults(layer, eps=1e-5, affine=True, track_running_stats=True)


def _norm_rank(module, call: Call) -> int:
    name = type(module).__name__
    return int(name[-2]) if name[-2].isdigit() else max(_rank(call), 1)


def _groupnorm(module, call: Call) -> dict:
    return _without_defaults({"type": "groupnorm", "num_groups": module.num_groups,
                              "eps": module.eps, "affine": module.affine},
                             eps=1e-5, affine=True)


def _linear(module, call: Call) -> dict:
    return _without_defaults({"type": "linear", "out_features": module.out_features,
                              "bias": module.bias is not None}, bias=True)


def _maxpool(module, call: Call) -> dict:
    if module.return_indices:
        raise NotConvertible("return_indices=True (the indices are a second output)")
    rank = _rank(call)
    layer = {"type": f"maxpool{rank}d", "kernel_size": compact(module.kernel_size),
             "stride": compact(module.stride), "padding": compact(module.padding),
             "dilation": compact(module.dilation), "ceil_mode": module.ceil_mode}
    return _without_defaults(layer, padding=0, dilation=1, ceil_mode=False)


def _avgpool(module, call: Call) -> dict:
    layer = {"type": f"avgpool{_rank(call)}d", "kernel_size": compact(module.kernel_size),
             "stride": compact(module.stride), "padding": compact(module.padding),
             "ceil_mode": module.ceil_mode, "count_include_pad": module.count_include_pad,
             "divisor_override": module.divisor_override}
    return _without_defaults(layer, padding=0, ceil_mode=False, count_include_pad=True,
                             divisor_override=None)


def _adaptive(stem: str) -> Callable:
    def convert(module, call: Call) -> dict:
        if getattr(module, "return_indices", False):
            raise NotConvertible("return_indices=True (the indices are a second output)")
        return {"type": f"{stem}{_rank(call)}d", "output_size": compact(module.output_size)}
    return convert


def _upsample(module, call: Call) -> dict:
    mode = {"UpsamplingBilinear2d": "bilinear", "UpsamplingNearest2d": "nearest"}.get(
        type(module).__name__, module.mode)
    align = True if type(module).__name__ == "UpsamplingBilinear2d" else module.align_corners
    return _resize(call, module.size, module.scale_factor, mode, align)


def _resize(call: Call, size, scale_factor, mode: str, align_corners) -> dict:
    if mode not in ("nearest", "linear", "bilinear", "trilinear"):
        raise NotConvertible(f"mode {mode!r} (convcalc's upsample has nearest, linear, "
                             "bilinear, trilinear)")
    layer = {"type": "upsample", "mode": mode}
    if size is not None:
        layer["size"] = compact(size)
    else:
        layer["scale_factor"] = compact(scale_factor)
    if align_corners is not None and mode != "nearest":
        layer["align_corners"] = bool(align_corners)
    return layer


def _pad_module(module, call: Call) -> dict:
    mode = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect",
            "Replication": "replicate", "Circular": "circular"}
    stem = next(k for k in mode if type(module).__name__.startswith(k))
    return _pad(call, module.padding, mode[stem], getattr(module, "value", 0.0))


def _pad(call: Call, pads, mode: str, value) -> dict:
    """F.pad's (left, right, top, bottom, ...) from the last axis -> per-axis [before, after]."""
    axes = _rank(call)
    if len(pads) % 2 or len(pads) // 2 > axes:
        raise NotConvertible(f"padding {list(pads)} pads the channel or batch axis")
    pairs = [[0, 0] for _ in range(axes)]
    for i in range(len(pads) // 2):
        pairs[axes - 1 - i] = [pads[2 * i], pads[2 * i + 1]]
    if any(p < 0 for pair in pairs for p in pair):
        raise NotConvertible(f"negative padding {list(pads)} (a crop)")
    layer = {"type": "pad", "padding": compact([compact(p) for p in pairs]), "mode": mode}
    if mode == "constant" and value:
        layer["value"] = float(value)
    return layer


def _simple(kind: str, **attrs: str) -> Callable:
    """A module whose attributes copy to the kind's parameters: attrs maps param -> attr."""
    def convert(module, call: Call) -> dict:
        layer = {"type": kind}
        layer.update({param: getattr(module, attr) for param, attr in attrs.items()})
        return layer
    return convert


def _softmax(module, call: Call) -> dict:
    return _softmax_dim(call, module.dim)


def _softmax_dim(call: Call, dim) -> dict:
    if dim is None:
        raise NotConvertible("softmax without dim (PyTorch's implicit choice is deprecated)")
    return {"type": "softmax", "dim": dim}


def _flatten_module(module, call: Call) -> dict:
    return _flatten(call, module.start_dim, module.end_dim)


def _flatten(call: Call, start: int, end: int) -> dict:
    rank = len(call.in_shapes[0]) + 1
    if start % rank == 0:
        raise NotConvertible(f"flatten from dim {start} merges the batch axis")
    return _without_defaults({"type": "flatten", "start_dim": start, "end_dim": end},
                             start_dim=1, end_dim=-1)


def _dropout_module(module, call: Call) -> dict:
    return {"type": "dropout", "p": module.p}


def _hardtanh(module, call: Call) -> dict:
    if (module.min_val, module.max_val) == (0.0, 6.0):
        return {"type": "relu6"}
    raise NotConvertible(f"hardtanh({module.min_val}, {module.max_val})")


def _without_defaults(layer: dict, **defaults: Any) -> dict:
    return {k: v for k, v in layer.items() if k not in defaults or defaults[k] != v}


MODULES: dict[str, Callable] = {
    **{f"Conv{n}d": _conv for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": _conv_transpose for n in (1, 2, 3)},
    **{f"BatchNorm{n}d": _batchnorm for n in (1, 2, 3)},
    **{f"MaxPool{n}d": _maxpool for n in (1, 2, 3)},
    **{f"AvgPool{n}d": _avgpool for n in (1, 2, 3)},
    **{f"AdaptiveAvgPool{n}d": _adaptive("adaptive_avgpool") for n in (1, 2, 3)},
    **{f"AdaptiveMaxPool{n}d": _adaptive("adaptive_maxpool") for n in (1, 2, 3)},
    **{name: _dropout_module for name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                                          "AlphaDropout", "FeatureAlphaDropout")},
    **{f"{stem}Pad{n}d": _pad_module for n in (1, 2, 3)
       for stem in ("Zero", "Constant", "Reflection", "Replication", "Circular")},
    "Linear": _linear, "GroupNorm": _groupnorm, "Flatten": _flatten_module,
    "Upsample": _upsample, "UpsamplingNearest2d": _upsample, "UpsamplingBilinear2d": _upsample,
    "ReLU": _simple("relu"), "ReLU6": _simple("relu6"), "Hardtanh": _hardtanh,
    "LeakyReLU": _simple("leaky_relu", negative_slope="negative_slope"),
    "ELU": _simple("elu", alpha="alpha"), "GELU": _simple("gelu", approximate="approximate"),
    "SiLU": _simple("silu"), "Hardswish": _simple("hardswish"),
    "Hardsigmoid": _simple("hardsigmoid"), "Sigmoid": _simple("sigmoid"),
    "Tanh": _simple("tanh"), "Softmax": _softmax, "Identity": _simple("identity"),
    "LocalResponseNorm": _simple("local_response_norm", size="size", alpha="alpha",
                                 beta="beta", k="k"),
    "ChannelShuffle": _simple("channel_shuffle", groups="groups"),
}
"""torch.nn class name -> converter(module, call). Keyed by the classes of torch.nn only
(see `module_converter`): a subclass with its own forward is traced into instead."""


def module_converter(module) -> Callable | None:
    """The converter of an nn module of exactly a torch.nn class in the table, else None."""
    cls = type(module)
    if not cls.__module__.startswith("torch.nn."):
        return None
    return MODULES.get(cls.__name__)


# -- functions and tensor methods ------------------------------------------------------------

@dataclass(frozen=True)
class Signature:
    """How to bind a call's positional arguments: parameter names in order, and defaults."""

    names: tuple[str, ...]
    defaults: dict = field(default_factory=dict)

    def bind(self, args: tuple, kwargs: dict) -> dict:
        values = dict(self.defaults)
        values.update(zip(self.names, args))
        values.update(kwargs)
        return values


def _activation(kind: str, **params: str) -> Callable:
    def convert(call: Call) -> dict:
        layer = {"type": kind}
        layer.update({param: call.get(arg) for param, arg in params.items()})
        return layer
    return convert


def _f_adaptive(stem: str) -> Callable:
    def convert(call: Call) -> dict:
        if call.get("return_indices"):
            raise NotConvertible("return_indices=True")
        return {"type": f"{stem}{_rank(call)}d", "output_size": compact(call.get("output_size"))}
    return convert


def _f_maxpool(call: Call) -> dict:
    if call.get("return_indices"):
        raise NotConvertible("return_indices=True")
    stride = call.get("stride") or call.get("kernel_size")
    layer = {"type": f"maxpool{_rank(call)}d", "kernel_size": compact(call.get("kernel_size")),
             "stride": compact(stride), "padding": compact(call.get("padding")),
             "dilation": compact(call.get("dilation")), "ceil_mode": bool(call.get("ceil_mode"))}
    return _without_defaults(layer, padding=0, dilation=1, ceil_mode=False)


def _f_avgpool(call: Call) -> dict:
    stride = call.get("stride") or call.get("kernel_size")
    layer = {"type": f"avgpool{_rank(call)}d", "kernel_size": compact(call.get("kernel_size")),
             "stride": compact(stride), "padding": compact(call.get("padding")),
             "ceil_mode": bool(call.get("ceil_mode")),
             "count_include_pad": bool(call.get("count_include_pad")),
             "divisor_override": call.get("divisor_override")}
    return _without_defaults(layer, padding=0, ceil_mode=False, count_include_pad=True,
                             divisor_override=None)


def _f_dropout(call: Call) -> dict:
    if call.get("training"):
        raise NotConvertible("dropout with training=True at inference")
    return {"type": "dropout", "p": call.get("p")}


def _f_interpolate(call: Call) -> dict:
    if call.get("recompute_scale_factor") or call.get("antialias"):
        raise NotConvertible("recompute_scale_factor or antialias")
    return _resize(call, call.get("size"), call.get("scale_factor"), call.get("mode"),
                   call.get("align_corners"))


def _f_flatten(call: Call) -> dict:
    return _flatten(call, call.get("start_dim"), call.get("end_dim"))


def _merge(kind: str) -> Callable:
    def convert(call: Call) -> dict:
        tensors = [v for k, v in call.values.items() if k in ("input", "other") and _is_node(v)]
        if len(tensors) < 2:
            raise NotConvertible(f"{kind} with a constant (needs a kind for constant arithmetic)")
        if call.get("alpha", 1) != 1:
            raise NotConvertible("add with alpha != 1")
        return {"type": kind}
    return convert


def _cat(call: Call) -> dict | str:
    tensors = call.get("tensors")
    if len(tensors) == 1:
        return SAME
    return _without_defaults({"type": "concat", "dim": call.get("dim")}, dim=1)


def _mean(call: Call) -> dict:
    """x.mean([2, 3]) over every spatial axis -> global_avgpool."""
    return _global_pool(call, "global_avgpool", call.get("dim"), call.get("keepdim"))


def _amax(call: Call) -> dict:
    return _global_pool(call, "global_maxpool", call.get("dim"), call.get("keepdim"))


def _global_pool(call: Call, kind: str, dims, keepdim) -> dict:
    rank = len(call.in_shapes[0]) + 1
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    spatial = set(range(2, rank))
    if not spatial or {d % rank for d in dims} != spatial:
        raise NotConvertible(f"a reduction over dims {list(dims)} (not every spatial axis)")
    return _without_defaults({"type": kind, "keepdim": bool(keepdim)}, keepdim=False)


def _same(call: Call) -> str:
    return SAME


def _f_stochastic_depth(call: Call) -> str:
    if call.get("training") and call.get("p"):
        raise NotConvertible("stochastic depth with training=True")
    return SAME


def _is_node(value: Any) -> bool:
    return hasattr(value, "op") and hasattr(value, "users")


ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
               "silu": "silu", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid"}


def _functions() -> dict[Any, tuple[Signature, Callable]]:
    """Callable -> (signature, converter); built when torch is imported."""
    import torch
    import torch.nn.functional as F
    unary = Signature(("input", "inplace"))
    table: dict[Any, tuple[Signature, Callable]] = {}
    for name, kind in ACTIVATIONS.items():
        for owner in (F, torch):
            if hasattr(owner, name):
                table[getattr(owner, name)] = (unary, _activation(kind))
    table.update({
        F.leaky_relu: (Signature(("input", "negative_slope", "inplace"),
                                 {"negative_slope": 0.01}),
                       _activation("leaky_relu", negative_slope="negative_slope")),
        F.elu: (Signature(("input", "alpha", "inplace"), {"alpha": 1.0}),
                _activation("elu", alpha="alpha")),
        F.gelu: (Signature(("input",), {"approximate": "none"}),
                 _activation("gelu", approximate="approximate")),
        F.softmax: (Signature(("input", "dim")), lambda call: _softmax_dim(call, call.get("dim"))),
        torch.softmax: (Signature(("input", "dim")),
                        lambda call: _softmax_dim(call, call.get("dim"))),
        F.adaptive_avg_pool1d: (Signature(("input", "output_size")),
                                _f_adaptive("adaptive_avgpool")),
        F.adaptive_avg_pool2d: (Signature(("input", "output_size")),
                                _f_adaptive("adaptive_avgpool")),
        F.adaptive_avg_pool3d: (Signature(("input", "output_size")),
                                _f_adaptive("adaptive_avgpool")),
        F.adaptive_max_pool2d: (Signature(("input", "output_size", "return_indices")),
                                _f_adaptive("adaptive_maxpool")),
        F.max_pool2d: (Signature(("input", "kernel_size", "stride", "padding", "dilation",
                                  "ceil_mode", "return_indices"),
                                 {"stride": None, "padding": 0, "dilation": 1}), _f_maxpool),
        F.avg_pool2d: (Signature(("input", "kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override"),
                                 {"stride": None, "padding": 0, "count_include_pad": True}),
                       _f_avgpool),
        F.dropout: (Signature(("input", "p", "training", "inplace"),
                              {"p": 0.5, "training": True}), _f_dropout),
        F.interpolate: (Signature(("input", "size", "scale_factor", "mode", "align_corners",
                                   "recompute_scale_factor", "antialias"),
                                  {"mode": "nearest"}), _f_interpolate),
        F.pad: (Signature(("input", "pad", "mode", "value"), {"mode": "constant", "value": 0.0}),
                lambda call: _pad(call, call.get("pad"), call.get("mode"), call.get("value"))),
        torch.flatten: (Signature(("input", "start_dim", "end_dim"),
                                  {"start_dim": 0, "end_dim": -1}), _f_flatten),
        torch.cat: (Signature(("tensors", "dim"), {"dim": 0}), _cat),
        torch.concat: (Signature(("tensors", "dim"), {"dim": 0}), _cat),
        operator.add: (Signature(("input", "other")), _merge("add")),
        operator.iadd: (Signature(("input", "other")), _merge("add")),
        torch.add: (Signature(("input", "other")), _merge("add")),
        operator.mul: (Signature(("input", "other")), _merge("mul")),
        operator.imul: (Signature(("input", "other")), _merge("mul")),
        torch.mul: (Signature(("input", "other")), _merge("mul")),
        torch.mean: (Signature(("input", "dim", "keepdim"), {"keepdim": False}), _mean),
        torch.amax: (Signature(("input", "dim", "keepdim"), {"keepdim": False}), _amax),
    })
    for fn in (F.max_pool1d, F.max_pool3d):
        table[fn] = table[F.max_pool2d]
    for fn in (F.avg_pool1d, F.avg_pool3d):
        table[fn] = (Signature(("input", "kernel_size", "stride", "padding", "ceil_mode",
                                "count_include_pad"),
                               {"stride": None, "padding": 0, "count_include_pad": True}),
                     _f_avgpool)
    _third_party(table)
    return table


def _third_party(table: dict) -> None:
    """Wrapped functions of libraries that fx keeps as calls (torchvision's stochastic depth)."""
    try:
        from torchvision.ops.stochastic_depth import stochastic_depth
    except ImportError:
        return
    table[stochastic_depth] = (Signature(("input", "p", "mode", "training"),
                                         {"training": True}), _f_stochastic_depth)


METHODS: dict[str, tuple[Signature, Callable]] = {
    **{name: (Signature(("input",)), _activation(kind)) for name, kind in ACTIVATIONS.items()
       if name in ("relu", "sigmoid", "tanh")},
    **{f"{name}_": (Signature(("input",)), _activation(kind)) for name, kind in
       ACTIVATIONS.items() if name in ("relu", "sigmoid", "tanh")},
    "contiguous": (Signature(("input",)), _same),
    "flatten": (Signature(("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1}),
                _f_flatten),
    "mean": (Signature(("input", "dim", "keepdim"), {"keepdim": False}), _mean),
    "amax": (Signature(("input", "dim", "keepdim"), {"keepdim": False}), _amax),
    "add": (Signature(("input", "other")), _merge("add")),
    "add_": (Signature(("input", "other")), _merge("add")),
    "mul": (Signature(("input", "other")), _merge("mul")),
    "mul_": (Signature(("input", "other")), _merge("mul")),
    "softmax": (Signature(("input", "dim")), lambda call: _softmax_dim(call, call.get("dim"))),
}
"""Tensor method name -> (signature, converter); the tensor itself binds to `input`."""

_FUNCTIONS: dict | None = None


def function_table() -> dict[Any, tuple[Signature, Callable]]:
    global _FUNCTIONS
    if _FUNCTIONS is None:
        _FUNCTIONS = _functions()
    return _FUNCTIONS
