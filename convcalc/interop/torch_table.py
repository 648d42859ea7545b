"""The PyTorch converter table, part one: torch.nn module classes -> layer kinds (part two,
functions and tensor methods, is torch_functions.py).

A converter gets a `Call` (the fx node with its arguments bound, constants evaluated, and the
per-sample shapes ShapeProp saw) and returns the layer's parameters ({"type": ..., ...}),
`SAME` when the node is its input unchanged (x.contiguous(), torch.cat([x])), or raises
`NotConvertible` with the reason. The importer (torch_import.py) names the layers, wires
their inputs and checks every shape against ShapeProp's. Dims are PyTorch's, batch axis
included (1 = channels), as in convcalc's own kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SAME = "same-as-input"
INDICES = "_indices"  # a max-pool layer whose node's value is (output, indices)
UNPOOLS = "_unpools"  # a max_unpool layer: the fx node of the indices it reads


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
    attrs: dict[str, str] = field(default_factory=dict)  # parameter -> get_attr target
    attr_values: dict[str, Any] = field(default_factory=dict)  # parameter -> that tensor

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def owner(self, *weights: str) -> str | None:
        """The module whose attributes the weight parameters are (`layer1.0.bn1` for
        F.batch_norm(x, self.running_mean, ...)): the layer takes its name and weights."""
        if all(self.get(w) is None for w in weights):
            return None
        owners = {self.attrs[w].rpartition(".")[0] for w in weights if self.get(w) is not None}
        plain = all(w in self.attrs for w in weights if self.get(w) is not None)
        if len(owners) != 1 or not plain:
            raise NotConvertible("weights that are not one module's attributes (computed in "
                                 "forward, or shared)")
        return owners.pop()


def compact(value: Any) -> Any:
    """(3, 3) -> 3, (3, 1) -> [3, 1]: per-axis values as a person writes them."""
    if isinstance(value, (tuple, list)):
        items = [compact(v) for v in value]
        return items[0] if items and all(v == items[0] for v in items) else items
    return value


def rank_of(call: Call) -> int:
    """The number of spatial axes of the first input."""
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
    return without_defaults(layer, stride=1, padding=0, dilation=1, groups=1, bias=True)


def _conv_transpose(module, call: Call) -> dict:
    layer = {"type": f"conv_transpose{len(module.kernel_size)}d",
             "out_channels": module.out_channels, "kernel_size": compact(module.kernel_size),
             "stride": compact(module.stride), "padding": compact(module.padding),
             "output_padding": compact(module.output_padding),
             "dilation": compact(module.dilation), "groups": module.groups,
             "bias": module.bias is not None}
    return without_defaults(layer, stride=1, padding=0, output_padding=0, dilation=1,
                             groups=1, bias=True)


def _batchnorm(module, call: Call) -> dict:
    layer = {"type": f"batchnorm{_norm_rank(module, call)}d", "eps": module.eps,
             "affine": module.affine, "track_running_stats": module.track_running_stats}
    return without_defaults(layer, eps=1e-5, affine=True, track_running_stats=True)


def _norm_rank(module, call: Call) -> int:
    name = type(module).__name__
    return int(name[-2]) if name[-2].isdigit() else max(rank_of(call), 1)


def _groupnorm(module, call: Call) -> dict:
    return without_defaults({"type": "groupnorm", "num_groups": module.num_groups,
                              "eps": module.eps, "affine": module.affine},
                             eps=1e-5, affine=True)


def _linear(module, call: Call) -> dict:
    return without_defaults({"type": "linear", "out_features": module.out_features,
                              "bias": module.bias is not None}, bias=True)


def _maxpool(module, call: Call) -> dict:
    rank = rank_of(call)
    layer = {"type": f"maxpool{rank}d", "kernel_size": compact(module.kernel_size),
             "stride": compact(module.stride), "padding": compact(module.padding),
             "dilation": compact(module.dilation), "ceil_mode": module.ceil_mode}
    layer = without_defaults(layer, padding=0, dilation=1, ceil_mode=False)
    if module.return_indices:
        layer[INDICES] = True
    return layer


def _max_unpool(module, call: Call) -> dict:
    return unpool_layer(call, module.kernel_size, module.stride, module.padding)


def unpool_layer(call: Call, kernel, stride, padding) -> dict:
    """max_unpoolNd(input, indices, output_size): the indices must be a max-pool's second
    output (the importer names that pool in `indices`); output_size may hold N and C too."""
    rank = rank_of(call)
    layer = {"type": f"max_unpool{rank}d", "kernel_size": compact(kernel),
             "stride": compact(stride if stride is not None else kernel),
             "padding": compact(padding), UNPOOLS: call.get("indices")}
    size = call.get("output_size")
    if size is not None:
        size = [int(v) for v in size][-rank:]
        layer["output_size"] = size
    return without_defaults(layer, padding=0)


def _avgpool(module, call: Call) -> dict:
    layer = {"type": f"avgpool{rank_of(call)}d", "kernel_size": compact(module.kernel_size),
             "stride": compact(module.stride), "padding": compact(module.padding),
             "ceil_mode": module.ceil_mode, "count_include_pad": module.count_include_pad,
             "divisor_override": module.divisor_override}
    return without_defaults(layer, padding=0, ceil_mode=False, count_include_pad=True,
                             divisor_override=None)


def _adaptive(stem: str) -> Callable:
    def convert(module, call: Call) -> dict:
        if getattr(module, "return_indices", False):
            raise NotConvertible("return_indices=True (the indices are a second output)")
        return {"type": f"{stem}{rank_of(call)}d", "output_size": compact(module.output_size)}
    return convert


def _upsample(module, call: Call) -> dict:
    mode = {"UpsamplingBilinear2d": "bilinear", "UpsamplingNearest2d": "nearest"}.get(
        type(module).__name__, module.mode)
    align = True if type(module).__name__ == "UpsamplingBilinear2d" else module.align_corners
    return resize_layer(call, module.size, module.scale_factor, mode, align)


def resize_layer(call: Call, size, scale_factor, mode: str, align_corners) -> dict:
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
    return pad_layer(call, module.padding, mode[stem], getattr(module, "value", 0.0))


def pad_layer(call: Call, pads, mode: str, value) -> dict:
    """F.pad's (left, right, top, bottom, ...) from the last axis -> per-axis [before, after]."""
    axes = rank_of(call)
    if len(pads) % 2 or len(pads) // 2 > axes:
        raise NotConvertible(f"padding {list(pads)} pads the channel or batch axis")
    pairs = [[0, 0] for _ in range(axes)]
    for i in range(len(pads) // 2):
        pairs[axes - 1 - i] = [pads[2 * i], pads[2 * i + 1]]
    if any(p < 0 for pair in pairs for p in pair):
        raise NotConvertible(f"negative padding {list(pads)} (a crop)")
    per_axis = [compact(p) for p in pairs]  # [[0, 1], [0, 1]] stays pairs, not [0, 1]
    padding = compact(per_axis) if all(isinstance(p, int) for p in per_axis) else per_axis
    layer = {"type": "pad", "padding": padding, "mode": mode}
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
    return softmax_layer(call, module.dim)


def softmax_layer(call: Call, dim) -> dict:
    if dim is None:
        raise NotConvertible("softmax without dim (PyTorch's implicit choice is deprecated)")
    return {"type": "softmax", "dim": dim}


def _flatten_module(module, call: Call) -> dict:
    return flatten_layer(call, module.start_dim, module.end_dim)


def flatten_layer(call: Call, start: int, end: int) -> dict:
    rank = len(call.in_shapes[0]) + 1
    if start % rank == 0:
        raise NotConvertible(f"flatten from dim {start} merges the batch axis")
    return without_defaults({"type": "flatten", "start_dim": start, "end_dim": end},
                             start_dim=1, end_dim=-1)


def _dropout_module(module, call: Call) -> dict:
    return {"type": "dropout", "p": module.p}


def _hardtanh(module, call: Call) -> dict:
    if (module.min_val, module.max_val) == (0.0, 6.0):
        return {"type": "relu6"}
    return {"type": "hardtanh", "min_val": module.min_val, "max_val": module.max_val}


def _layernorm(module, call: Call) -> dict:
    return without_defaults({"type": "layernorm",
                             "normalized_shape": compact(list(module.normalized_shape)),
                             "eps": module.eps, "elementwise_affine": module.elementwise_affine,
                             "bias": module.bias is not None},
                            eps=1e-5, elementwise_affine=True, bias=True)


def _layernorm2d(module, call: Call) -> dict:
    """torchvision's and timm's LayerNorm2d: nn.LayerNorm over the channels of each position."""
    return without_defaults({"type": "layernorm2d", "eps": module.eps,
                             "affine": module.weight is not None}, eps=1e-6, affine=True)


def _global_response_norm(module, call: Call) -> dict:
    """timm's GlobalResponseNorm: channels last (its default, [N, H, W, C] inside the
    permuted MLP of ConvNeXt-V2) or first, by the axis it normalises over."""
    channels_last = module.channel_dim == -1
    return without_defaults({"type": "global_response_norm", "eps": module.eps,
                             "channels_last": channels_last}, eps=1e-6, channels_last=False)


def _instancenorm(module, call: Call) -> dict:
    layer = {"type": f"instancenorm{_norm_rank(module, call)}d", "eps": module.eps,
             "affine": module.affine, "track_running_stats": module.track_running_stats}
    return without_defaults(layer, eps=1e-5, affine=False, track_running_stats=False)


def _prelu(module, call: Call) -> dict:
    return without_defaults({"type": "prelu", "num_parameters": module.num_parameters},
                            num_parameters=1)


def without_defaults(layer: dict, **defaults: Any) -> dict:
    return {k: v for k, v in layer.items() if k not in defaults or defaults[k] != v}


MODULES: dict[str, Callable] = {
    **{f"Conv{n}d": _conv for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": _conv_transpose for n in (1, 2, 3)},
    **{f"BatchNorm{n}d": _batchnorm for n in (1, 2, 3)},
    **{f"MaxPool{n}d": _maxpool for n in (1, 2, 3)},
    **{f"MaxUnpool{n}d": _max_unpool for n in (1, 2, 3)},
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
    "LayerNorm": _layernorm, "PReLU": _prelu, "Mish": _simple("mish"),
    "Softplus": _simple("softplus", beta="beta", threshold="threshold"),
    "PixelShuffle": _simple("pixel_shuffle", upscale_factor="upscale_factor"),
    "PixelUnshuffle": _simple("pixel_unshuffle", downscale_factor="downscale_factor"),
    "Unflatten": lambda module, call: {"type": "unflatten", "dim": module.dim,
                                       "sizes": list(module.unflattened_size)},
    "LogSoftmax": lambda module, call: {**softmax_layer(call, module.dim), "type": "log_softmax"},
    **{f"InstanceNorm{n}d": _instancenorm for n in (1, 2, 3)},
}
"""torch.nn class name -> converter(module, call). Keyed by the classes of torch.nn only
(see `module_converter`): a subclass with its own forward is traced into instead."""


THIRD_PARTY: dict[str, Callable] = {
    "torchvision.models.convnext.LayerNorm2d": _layernorm2d,
    "timm.layers.norm.LayerNorm2d": _layernorm2d,
    "timm.layers.grn.GlobalResponseNorm": _global_response_norm,
}
"""Classes of other libraries that are one kind, by module and class name (their forward
permutes around F.layer_norm: one layernorm2d layer, as a person writes it)."""


def _from_pads(pads) -> list[list[int]]:
    """F.pad's order (last axis first, before/after) -> (before, after) per axis."""
    pairs = [list(pads[i:i + 2]) for i in range(0, len(pads), 2)]
    return pairs[::-1]


EXPORTED: dict[str, Callable] = {
    "layernorm2d": _layernorm2d, "global_response_norm": _global_response_norm,
    "layer_scale": lambda m, call: without_defaults(
        {"type": "layer_scale", "param": m.name, "keepdim": getattr(m, m.name).dim() > 1},
        param="gamma", keepdim=False),
    "channel_bias": lambda m, call: without_defaults(
        {"type": "channel_bias", "param": m.name, "keepdim": getattr(m, m.name).dim() > 1},
        param="bias", keepdim=False),
    "scalar_affine": lambda m, call: without_defaults(
        {"type": "scalar_affine", "bias": m.bias is not None}, bias=True),
    "blur_pool2d": lambda m, call: without_defaults(
        {"type": "blur_pool2d", "filt_size": m.filt_size, "stride": m.stride,
         "pad_mode": m.pad_mode}, filt_size=3, stride=2, pad_mode="reflect"),
    "coord_channels": lambda m, call: without_defaults(
        {"type": "coord_channels", "with_r": m.with_r}, with_r=False),
    "locally_connected": lambda m, call: without_defaults(
        {"type": f"locally_connected{len(m.kernel_size)}d", "out_channels": m.out_channels,
         "kernel_size": compact(list(m.kernel_size)), "stride": compact(list(m.stride)),
         "padding": _from_pads(m.padding), "bias": m.bias is not None}, stride=1, bias=True),
    "std_conv": lambda m, call: {
        **_conv(m, call), "weight_standardization": "scaled" if m.scale is not None else "std",
        **without_defaults({"ws_eps": m.eps, "ws_gamma": m.gamma}, ws_eps=1e-6, ws_gamma=1.0)},
}
"""The classes `convcalc export --to pytorch` writes into a file (torch_helpers.py), by
their `convcalc_kind`: the way back of the export, one layer each."""


def module_converter(module) -> Callable | None:
    """The converter of an nn module of exactly a class in the tables (or a class that
    convcalc's export wrote), else None."""
    cls = type(module)
    kind = cls.__dict__.get("convcalc_kind")
    if isinstance(kind, str):
        return EXPORTED.get(kind)
    if cls.__module__.startswith("torch.nn."):
        return MODULES.get(cls.__name__)
    return THIRD_PARTY.get(f"{cls.__module__}.{cls.__qualname__}")
