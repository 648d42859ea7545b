"""The PyTorch converter table, part two: functions (torch.nn.functional, torch, operator)
and tensor methods -> layer kinds. Each entry is (Signature, converter): the signature binds
the call's arguments to PyTorch's parameter names, the converter is as in torch_table.

Functions whose weights are a module's attributes (F.conv2d(x, self.weight, self.bias),
F.batch_norm, F.linear, F.group_norm: what the forward of a subclass such as timm's
BatchNormAct2d or Conv2dSame calls) become that module's layer, named by its path, so its
state_dict keys still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from convcalc.interop import torch_layout
from convcalc.interop.torch_table import (
    INDICES,
    SAME,
    Call,
    NotConvertible,
    compact,
    flatten_layer,
    pad_layer,
    rank_of,
    resize_layer,
    softmax_layer,
    unpool_layer,
    without_defaults,
)


@dataclass(frozen=True)
class Signature:
    """How to bind a call's positional arguments: parameter names in order, and defaults."""

    names: tuple[str, ...]
    defaults: dict = field(default_factory=dict)

    def bind(self, args: tuple, kwargs: dict) -> dict:
        """A last name `*rest` collects the remaining positional arguments (x.view(*shape))."""
        values = dict(self.defaults)
        if self.names and self.names[-1].startswith("*"):
            fixed = len(self.names) - 1
            values[self.names[-1][1:]] = tuple(args[fixed:])
            args = args[:fixed]
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
        return {"type": f"{stem}{rank_of(call)}d", "output_size": compact(call.get("output_size"))}
    return convert


def _f_maxpool(call: Call) -> dict:
    stride = call.get("stride") or call.get("kernel_size")
    layer = {"type": f"maxpool{rank_of(call)}d", "kernel_size": compact(call.get("kernel_size")),
             "stride": compact(stride), "padding": compact(call.get("padding")),
             "dilation": compact(call.get("dilation")), "ceil_mode": bool(call.get("ceil_mode"))}
    layer = without_defaults(layer, padding=0, dilation=1, ceil_mode=False)
    if call.get("return_indices"):  # F.max_poolNd_with_indices: (output, indices)
        layer[INDICES] = True
    return layer


def _f_max_unpool(call: Call) -> dict:
    return unpool_layer(call, call.get("kernel_size"), call.get("stride"), call.get("padding"))


def _f_avgpool(call: Call) -> dict:
    stride = call.get("stride") or call.get("kernel_size")
    layer = {"type": f"avgpool{rank_of(call)}d", "kernel_size": compact(call.get("kernel_size")),
             "stride": compact(stride), "padding": compact(call.get("padding")),
             "ceil_mode": bool(call.get("ceil_mode")),
             "count_include_pad": bool(call.get("count_include_pad")),
             "divisor_override": call.get("divisor_override")}
    return without_defaults(layer, padding=0, ceil_mode=False, count_include_pad=True,
                             divisor_override=None)


def _f_dropout(call: Call) -> dict:
    if call.get("training"):
        raise NotConvertible("dropout with training=True at inference")
    return {"type": "dropout", "p": call.get("p")}


def _f_interpolate(call: Call) -> dict:
    if call.get("recompute_scale_factor") or call.get("antialias"):
        raise NotConvertible("recompute_scale_factor or antialias")
    return resize_layer(call, call.get("size"), call.get("scale_factor"), call.get("mode"),
                   call.get("align_corners"))


def _f_flatten(call: Call) -> dict:
    return flatten_layer(call, call.get("start_dim"), call.get("end_dim"))


def _cat(call: Call) -> dict | str:
    tensors = call.get("tensors")
    if call.get("dim") % (len(call.in_shapes[0]) + 1) == 0:
        raise NotConvertible("concatenating along the batch axis")
    if len(tensors) == 1:
        return SAME
    return without_defaults({"type": "concat", "dim": call.get("dim")}, dim=1)


def _same(call: Call) -> str:
    return SAME


def _f_stochastic_depth(call: Call) -> str:
    if call.get("training") and call.get("p"):
        raise NotConvertible("stochastic depth with training=True")
    return SAME


def _f_conv(call: Call) -> dict:
    weight = call.get("weight")
    padding = call.get("padding")
    layer = {"type": f"conv{weight.dim() - 2}d", "_owner": call.owner("weight", "bias"),
             "out_channels": weight.shape[0], "kernel_size": compact(tuple(weight.shape[2:])),
             "stride": compact(call.get("stride")),
             "padding": padding if isinstance(padding, str) else compact(padding),
             "dilation": compact(call.get("dilation")), "groups": call.get("groups"),
             "bias": call.get("bias") is not None}
    return without_defaults(layer, stride=1, padding=0, dilation=1, groups=1, bias=True)


def _f_batch_norm(call: Call) -> dict:
    tracked = call.get("running_mean") is not None
    if call.get("training") and tracked:
        raise NotConvertible("batch_norm with training=True (batch statistics at inference)")
    layer = {"type": f"batchnorm{max(rank_of(call), 1)}d",
             "_owner": call.owner("running_mean", "running_var", "weight", "bias"),
             "eps": call.get("eps"), "affine": call.get("weight") is not None,
             "track_running_stats": tracked}
    return without_defaults(layer, eps=1e-5, affine=True, track_running_stats=True)


def _f_linear(call: Call) -> dict:
    return without_defaults({"type": "linear", "_owner": call.owner("weight", "bias"),
                             "out_features": call.get("weight").shape[0],
                             "bias": call.get("bias") is not None}, bias=True)


def _f_group_norm(call: Call) -> dict:
    return without_defaults({"type": "groupnorm", "_owner": call.owner("weight", "bias"),
                             "num_groups": call.get("num_groups"), "eps": call.get("eps"),
                             "affine": call.get("weight") is not None}, eps=1e-5, affine=True)


def _f_layer_norm(call: Call) -> dict:
    return without_defaults({"type": "layernorm", "_owner": call.owner("weight", "bias"),
                             "normalized_shape": compact(list(call.get("normalized_shape"))),
                             "eps": call.get("eps"),
                             "elementwise_affine": call.get("weight") is not None,
                             "bias": call.get("bias") is not None},
                            eps=1e-5, elementwise_affine=True, bias=True)


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
        F.mish: (unary, _activation("mish")),
        F.hardtanh: (Signature(("input", "min_val", "max_val", "inplace"),
                               {"min_val": -1.0, "max_val": 1.0}),
                     _activation("hardtanh", min_val="min_val", max_val="max_val")),
        F.softplus: (Signature(("input", "beta", "threshold"), {"beta": 1.0, "threshold": 20.0}),
                     _activation("softplus", beta="beta", threshold="threshold")),
        F.log_softmax: (Signature(("input", "dim")), lambda call: {
            **softmax_layer(call, call.get("dim")), "type": "log_softmax"}),
        F.gelu: (Signature(("input",), {"approximate": "none"}),
                 _activation("gelu", approximate="approximate")),
        F.softmax: (Signature(("input", "dim")), lambda call: softmax_layer(call, call.get("dim"))),
        torch.softmax: (Signature(("input", "dim")),
                        lambda call: softmax_layer(call, call.get("dim"))),
        F.adaptive_avg_pool1d: (Signature(("input", "output_size")),
                                _f_adaptive("adaptive_avgpool")),
        F.adaptive_avg_pool2d: (Signature(("input", "output_size")),
                                _f_adaptive("adaptive_avgpool")),
        F.adaptive_avg_pool3d: (Signature(("input", "output_size")),
                                _f_adaptive("adaptive_avgpool")),
        F.adaptive_max_pool2d: (Signature(("input", "output_size", "return_indices")),
                                _f_adaptive("adaptive_maxpool")),
        **{pool: (Signature(("input", "kernel_size", "stride", "padding", "dilation",
                             "ceil_mode", "return_indices"),
                            {"stride": None, "padding": 0, "dilation": 1,
                             "return_indices": with_indices}), _f_maxpool)
           for n in (1, 2, 3)
           for pool, with_indices in ((getattr(F, f"max_pool{n}d"), False),
                                      (getattr(F, f"max_pool{n}d_with_indices"), True))},
        **{getattr(F, f"max_unpool{n}d"): (
            Signature(("input", "indices", "kernel_size", "stride", "padding", "output_size"),
                      {"stride": None, "padding": 0, "output_size": None}), _f_max_unpool)
           for n in (1, 2, 3)},
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
                lambda call: pad_layer(call, call.get("pad"), call.get("mode"), call.get("value"))),
        torch.flatten: (Signature(("input", "start_dim", "end_dim"),
                                  {"start_dim": 0, "end_dim": -1}), _f_flatten),
        torch.cat: (Signature(("tensors", "dim"), {"dim": 0}), _cat),
        torch.concat: (Signature(("tensors", "dim"), {"dim": 0}), _cat),
    })
    conv = Signature(("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                     {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
    for fn in (F.conv1d, F.conv2d, F.conv3d):
        table[fn] = (conv, _f_conv)
    table[F.batch_norm] = (Signature(("input", "running_mean", "running_var", "weight", "bias",
                                      "training", "momentum", "eps"),
                                     {"weight": None, "bias": None, "training": False,
                                      "eps": 1e-5}), _f_batch_norm)
    table[F.layer_norm] = (Signature(("input", "normalized_shape", "weight", "bias", "eps"),
                                     {"weight": None, "bias": None, "eps": 1e-5}),
                           _f_layer_norm)
    table[F.linear] = (Signature(("input", "weight", "bias"), {"bias": None}), _f_linear)
    table[F.group_norm] = (Signature(("input", "num_groups", "weight", "bias", "eps"),
                                     {"weight": None, "bias": None, "eps": 1e-5}),
                           _f_group_norm)
    for fn in (F.max_pool1d, F.max_pool3d):
        table[fn] = table[F.max_pool2d]
    for fn in (F.avg_pool1d, F.avg_pool3d):
        table[fn] = (Signature(("input", "kernel_size", "stride", "padding", "ceil_mode",
                                "count_include_pad"),
                               {"stride": None, "padding": 0, "count_include_pad": True}),
                     _f_avgpool)
    _third_party(table)
    table.update(torch_layout.functions(torch, F))
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
    "softmax": (Signature(("input", "dim")), lambda call: softmax_layer(call, call.get("dim"))),
    "log_softmax": (Signature(("input", "dim")),
                    lambda call: {**softmax_layer(call, call.get("dim")), "type": "log_softmax"}),
}
METHODS.update(torch_layout.methods())
"""Tensor method name -> (signature, converter); the tensor itself binds to `input`."""

_FUNCTIONS: dict | None = None


def function_table() -> dict[Any, tuple[Signature, Callable]]:
    global _FUNCTIONS
    if _FUNCTIONS is None:
        _FUNCTIONS = _functions()
    return _FUNCTIONS
