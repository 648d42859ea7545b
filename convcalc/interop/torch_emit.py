"""The PyTorch exporter's table: layer kind -> the torch code of one layer.

An emitter gets a `Site` (the layer, its input and output shapes, the names of its inputs
as Python expressions) and returns an `Emitted`: the module to create in `__init__` (a
`Ctor`, PyTorch's own class wherever one exists) and the expression its forward computes,
with `{m}` standing for the module's attribute (`self.layer1[0].conv1`). Kinds whose
PyTorch function rounds differently from convcalc's rule get the exact equivalent (an
explicit F.pad before the module); where none is exact, `NotExportable` says why, in one
line. The importer's table (torch_table.py) is the way back: every nn class named here is
one it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from convcalc import arithmetic as ar


class NotExportable(Exception):
    """This layer has no exact PyTorch equivalent (yet): the message says why."""


@dataclass(frozen=True)
class Ctor:
    """A call building a module: `callee(*args, **kwargs)`; values are Python literals,
    nested Ctors, or `Code` (an expression, such as a constructor argument's name)."""

    callee: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()  # PyTorch's: such a keyword is not written

    def shown(self) -> tuple[tuple[str, Any], ...]:
        """The keyword arguments to write: those that differ from PyTorch's defaults."""
        defaults = dict(self.defaults)
        return tuple((k, v) for k, v in self.kwargs
                     if k not in defaults or type(v) is not type(defaults[k])
                     or v != defaults[k])


@dataclass(frozen=True)
class Code:
    text: str


@dataclass
class Emitted:
    module: Ctor | None
    forward: str  # an expression; {m} is the module, the inputs are already substituted
    setup: list[str] = field(default_factory=list)  # __init__ lines after creation ({m})
    helpers: tuple[str, ...] = ()  # names of helper classes the file must define
    sides: tuple[str, ...] = ()  # side outputs the call returns after its output (a tuple)


@dataclass
class Site:
    name: str
    type: str
    layer: Any
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    xs: list[str]  # the inputs, as Python expressions
    refs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # ref param -> shape
    ref_names: dict[str, str] = field(default_factory=dict)  # ref param -> expression
    side_outputs: tuple[str, ...] = ()  # what later layers read of this one besides its output

    @property
    def x(self) -> str:
        return self.xs[0]

    @property
    def rank(self) -> int:
        return len(self.in_shapes[0]) - 1


def compact(value: Any) -> Any:
    """(3, 3) -> 3, (3, 1) -> (3, 1): per-axis values as a person writes them."""
    if isinstance(value, (tuple, list)):
        items = tuple(compact(v) for v in value)
        return items[0] if items and all(v == items[0] for v in items) else items
    return value


def kw(**values: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(values.items())


def module(callee: str, *args: Any, defaults: dict | None = None, **kwargs: Any) -> Ctor:
    """A Ctor whose keyword arguments equal to PyTorch's defaults are not written."""
    return Ctor(callee, args, kw(**kwargs), kw(**(defaults or {})))


def call(site: Site, ctor: Ctor, *, x: str | None = None) -> Emitted:
    return Emitted(ctor, f"{{m}}({x or site.x})")


def torch_pads(pairs) -> tuple[int, ...]:
    """Per-axis (before, after) pairs, first axis first -> F.pad's order, last axis first."""
    return tuple(p for pair in reversed(list(pairs)) for p in pair)


def split_pads(pairs) -> tuple[tuple[int, ...], tuple | None]:
    """(symmetric padding for the module, extra (before, after) pairs for an F.pad or None)."""
    common = tuple(min(pb, pa) for pb, pa in pairs)
    extra = tuple((pb - c, pa - c) for (pb, pa), c in zip(pairs, common))
    return common, (extra if any(p for pair in extra for p in pair) else None)


def same_pads(site: Site, kernel, stride, dilation) -> tuple:
    return tuple(ar.same_padding(i, k, s, d) for i, k, s, d
                 in zip(site.in_shapes[0][1:], kernel, stride, dilation))


def padded(x: str, pads: tuple, mode: str = "constant", value: float = 0.0) -> str:
    args = [x, str(torch_pads(pads))]
    if mode != "constant":
        args.append(f"mode={mode!r}")
    if value:
        args.append("value=float(\"-inf\")" if value == -math.inf else f"value={value!r}")
    return f"F.pad({', '.join(args)})"


# -- convolutions ------------------------------------------------------------------------------

def _conv(site: Site) -> Emitted:
    layer, n = site.layer, site.rank
    pads, x = layer.padding, site.x
    padding: Any = 0
    if pads == "same" and all(s == 1 for s in layer.stride):
        padding = "same"
    else:
        if pads == "same":  # TensorFlow SAME at this input size: the odd pad after
            pads = same_pads(site, layer.kernel_size, layer.stride, layer.dilation)
        common, extra = split_pads(pads)
        padding = compact(common)
        if extra is not None:
            mode = {"zeros": "constant"}.get(layer.padding_mode, layer.padding_mode)
            x = padded(x, extra, mode)
    options = dict(stride=compact(layer.stride), padding=padding, dilation=compact(layer.dilation),
                   groups=layer.groups, bias=layer.bias, padding_mode=layer.padding_mode)
    defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
                "padding_mode": "zeros", "eps": 1e-6, "scaled": False, "gamma": 1.0}
    callee, helpers = f"nn.Conv{n}d", ()
    if layer.weight_standardization != "none":  # timm's StdConv / ScaledStdConv
        callee = f"StdConv{n}d"
        helpers = (callee,)
        options.update(eps=layer.ws_eps, scaled=layer.weight_standardization == "scaled",
                       gamma=layer.ws_gamma)
    ctor = module(callee, site.in_shapes[0][0], layer.out_channels, compact(layer.kernel_size),
                  defaults=defaults, **options)
    emitted = call(site, ctor, x=x)
    emitted.helpers = helpers
    if layer.weights is not None:
        emitted.setup.append(f"{{m}}.weight.data[:] = torch.tensor({_kernel(layer.weights)})")
    return emitted


def _kernel(weights) -> list:
    from convcalc.layers.conv import NAMED_KERNELS
    return NAMED_KERNELS[weights] if isinstance(weights, str) else weights


def _conv_transpose(site: Site) -> Emitted:
    layer, n = site.layer, site.rank
    common, extra = split_pads(layer.padding)
    ctor = module(f"nn.ConvTranspose{n}d", site.in_shapes[0][0], layer.out_channels,
                  compact(layer.kernel_size),
                  defaults={"stride": 1, "padding": 0, "output_padding": 0, "groups": 1,
                            "bias": True, "dilation": 1},
                  stride=compact(layer.stride), padding=compact(common),
                  output_padding=compact(layer.output_padding), groups=layer.groups,
                  bias=layer.bias, dilation=compact(layer.dilation))
    emitted = call(site, ctor)
    if extra is not None:  # asymmetric padding of a transposed conv crops its output
        emitted.forward = crop(emitted.forward, [(pb, -pa if pa else None) for pb, pa in extra])
    if layer.weights is not None:
        emitted.setup.append(f"{{m}}.weight.data[:] = torch.tensor({_kernel(layer.weights)})")
    return emitted


def crop(x: str, bounds) -> str:
    """x[:, :, a:b, ...] over the spatial axes."""
    parts = [":", ":"]
    for start, stop in bounds:
        parts.append(f"{start or ''}:{'' if stop is None else stop}")
    while parts and parts[-1] == ":" and len(parts) > 2:
        parts.pop()
    return f"{x}[{', '.join(parts)}]"


# -- pooling -----------------------------------------------------------------------------------

def _pool(site: Site) -> Emitted:
    layer, n = site.layer, site.rank
    is_max = site.type.startswith("max")
    stride = layer.stride if layer.stride is not None else layer.kernel_size
    dilation = getattr(layer, "dilation", (1,) * n)
    pads, x = layer.padding, site.x
    if pads == "same":
        pads = same_pads(site, layer.kernel_size, stride, dilation)
        if not is_max and not layer.count_include_pad:
            raise NotExportable("padding same with count_include_pad false (TensorFlow's "
                                "average leaves the pads out; PyTorch's AvgPool counts explicit "
                                "pads)")
    common, extra = split_pads(pads)
    wants_indices = is_max and "indices" in site.side_outputs
    if extra is not None:
        if wants_indices:
            raise NotExportable(f"uneven padding {[list(p) for p in pads]} on a max-pool whose "
                                "indices are used (after an explicit F.pad they would count "
                                "positions in the padded input)")
        if not is_max and not layer.count_include_pad:
            raise NotExportable(f"uneven padding {[list(p) for p in pads]} with "
                                "count_include_pad false (PyTorch pads evenly)")
        if layer.ceil_mode:
            _check_ceil(site, stride, pads, dilation)
        x = padded(x, extra, value=-math.inf if is_max else 0.0)
    options = {"stride": compact(stride), "padding": compact(common), "ceil_mode": layer.ceil_mode}
    defaults = {"padding": 0, "ceil_mode": False, "dilation": 1, "count_include_pad": True,
                "divisor_override": None}
    if is_max:
        options["dilation"] = compact(dilation)
        if wants_indices:
            options["return_indices"] = True
        ctor = module(f"nn.MaxPool{n}d", compact(layer.kernel_size), defaults=defaults, **options)
        if wants_indices:  # (output, indices): `x, pool_indices = self.pool(x)`
            return Emitted(ctor, f"{{m}}({x})", sides=("indices",))
    else:
        options["count_include_pad"] = layer.count_include_pad
        if layer.divisor_override is not None:
            if n == 1:
                raise NotExportable("divisor_override on a 1-D pool (nn.AvgPool1d has none)")
            options["divisor_override"] = layer.divisor_override
        ctor = module(f"nn.AvgPool{n}d", compact(layer.kernel_size), defaults=defaults, **options)
    return call(site, ctor, x=x)


def _max_unpool(site: Site) -> Emitted:
    """nn.MaxUnpoolNd(input, indices of the max-pool named by `indices`); output_size is
    written when the spec's size is not PyTorch's default, (i - 1) * s - 2p + k."""
    layer, n = site.layer, site.rank
    stride = layer.stride or layer.kernel_size
    ctor = module(f"nn.MaxUnpool{n}d", compact(layer.kernel_size),
                  defaults={"stride": compact(layer.kernel_size), "padding": 0},
                  stride=compact(stride), padding=compact(layer.padding))
    formula = tuple(ar.unpool_output_size(i, k, s, p) for i, k, s, p in
                    zip(site.in_shapes[0][1:], layer.kernel_size, stride, layer.padding))
    size = tuple(site.out_shape[1:])
    tail = f", output_size={size}" if size != formula else ""
    return Emitted(ctor, f"{{m}}({site.x}, {site.ref_names['indices']}{tail})")


def _check_ceil(site: Site, stride, pads, dilation) -> None:
    """ceil_mode after an explicit pad: PyTorch's clip (the last window starts inside the
    input or the left padding) must keep the sizes convcalc found."""
    for i, k, s, (pb, pa), d, o in zip(site.in_shapes[0][1:], site.layer.kernel_size, stride,
                                       pads, dilation, site.out_shape[1:]):
        if ar.pool_output_size(i + pb + pa, k, s, 0, 0, d, ceil_mode=True) != o:
            raise NotExportable(f"ceil_mode with uneven padding [{pb}, {pa}] at input {i}: "
                                "PyTorch would clip another window")


def _adaptive(stem: str) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        return call(site, module(f"nn.{stem}{site.rank}d", compact(site.layer.output_size)))
    return emit


def _global(reduce: str) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        dims = tuple(range(2, site.rank + 2))
        keep = ", keepdim=True" if site.layer.keepdim else ""
        return Emitted(None, f"{site.x}.{reduce}({dims}{keep})")
    return emit


# -- normalisation, dense ----------------------------------------------------------------------

def _batchnorm(stem: str, affine: bool, track: bool) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        layer = site.layer
        ctor = module(f"nn.{stem}{int(site.type[-2])}d", site.in_shapes[0][0],
                      defaults={"eps": 1e-5, "momentum": 0.1, "affine": affine,
                                "track_running_stats": track},
                      eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                      track_running_stats=layer.track_running_stats)
        return call(site, ctor)
    return emit


def _groupnorm(site: Site) -> Emitted:
    layer = site.layer
    return call(site, module("nn.GroupNorm", layer.num_groups, site.in_shapes[0][0],
                             defaults={"eps": 1e-5, "affine": True}, eps=layer.eps,
                             affine=layer.affine))


def _layernorm(site: Site) -> Emitted:
    layer = site.layer
    shape = layer.normalized_shape
    shape = compact(tuple(shape)) if isinstance(shape, (list, tuple)) else shape
    return call(site, module("nn.LayerNorm", shape,
                             defaults={"eps": 1e-5, "elementwise_affine": True, "bias": True},
                             eps=layer.eps, elementwise_affine=layer.elementwise_affine,
                             bias=layer.bias))


def _layernorm2d(site: Site) -> Emitted:
    """nn.LayerNorm over the channels of every position (channels last, then back): the
    file's LayerNorm2d class, torchvision's, so that a Sequential holds it as one call."""
    layer = site.layer
    ctor = module("LayerNorm2d", site.in_shapes[0][0], eps=layer.eps,
                  defaults={"elementwise_affine": True}, elementwise_affine=layer.affine)
    emitted = call(site, ctor)
    emitted.helpers = ("LayerNorm2d",)
    return emitted


def _linear(site: Site) -> Emitted:
    return call(site, module("nn.Linear", site.in_shapes[0][-1], site.layer.out_features,
                             defaults={"bias": True}, bias=site.layer.bias))


def _flatten(site: Site) -> Emitted:
    layer = site.layer
    return call(site, module("nn.Flatten", defaults={"start_dim": 1, "end_dim": -1},
                             start_dim=layer.start_dim, end_dim=layer.end_dim))


# -- element-wise ------------------------------------------------------------------------------

def _plain(callee: str, **attrs: tuple[str, Any]) -> Callable[[Site], Emitted]:
    """A module whose arguments copy the layer's: attrs maps kwarg -> (param, default)."""
    def emit(site: Site) -> Emitted:
        values = {key: getattr(site.layer, param) for key, (param, _d) in attrs.items()}
        defaults = {key: default for key, (_p, default) in attrs.items()}
        return call(site, module(callee, defaults=defaults, **values))
    return emit


def _positional(callee: str, *params: str) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        return call(site, Ctor(callee, tuple(getattr(site.layer, p) for p in params)))
    return emit


def _gelu(site: Site) -> Emitted:
    return call(site, module("nn.GELU", defaults={"approximate": "none"},
                             approximate=site.layer.approximate))


def _prelu(site: Site) -> Emitted:
    return call(site, module("nn.PReLU", defaults={"num_parameters": 1, "init": 0.25},
                             num_parameters=site.layer.num_parameters, init=site.layer.init))


# -- merges and arithmetic ---------------------------------------------------------------------

def _infix(op: str) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        other = getattr(site.layer, "other", None)
        if other is None and site.type == "pow":
            other = site.layer.exponent
        terms = list(site.xs) + ([repr(other)] if other is not None and len(site.xs) == 1 else [])
        return Emitted(None, f" {op} ".join(terms))
    return emit


def _reverse(op: str) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        return Emitted(None, f"{site.layer.other!r} {op} {site.x}")
    return emit


def _concat(site: Site) -> Emitted:
    return Emitted(None, f"torch.cat([{', '.join(site.xs)}], dim={site.layer.dim})")


def _stack(site: Site) -> Emitted:
    return Emitted(None, f"torch.stack([{', '.join(site.xs)}], dim={site.layer.dim})")


def _matmul(site: Site) -> Emitted:
    return Emitted(None, f"{site.xs[0]} @ {site.xs[1]}")


# -- resampling and layout ---------------------------------------------------------------------

def _upsample(site: Site) -> Emitted:
    layer = site.layer
    options: dict[str, Any] = {}
    if layer.size is not None:
        options["size"] = compact(layer.size)
    else:
        options["scale_factor"] = compact(layer.scale_factor)
    options["mode"] = layer.mode
    if layer.align_corners is not None and layer.mode != "nearest":
        options["align_corners"] = layer.align_corners
    return call(site, module("nn.Upsample", defaults={"mode": "nearest"}, **options))


_PAD_MODULES = {"constant": "ConstantPad", "reflect": "ReflectionPad",
                "replicate": "ReplicationPad", "circular": "CircularPad"}


def _pad(site: Site) -> Emitted:
    layer, n = site.layer, site.rank
    pads = torch_pads(layer.padding)
    args: tuple = (pads,)
    if layer.mode == "constant":
        args = (pads, layer.value)
    return call(site, Ctor(f"nn.{_PAD_MODULES[layer.mode]}{n}d", args))


def _crop(site: Site) -> Emitted:
    bounds = []
    for i, o in zip(site.in_shapes[0][1:], site.out_shape[1:]):
        start = (i - o) // 2
        bounds.append((start, start + o if start + o != i else None))
    return Emitted(None, crop(site.x, bounds))


def _slice(site: Site) -> Emitted:
    layer = site.layer
    rank = len(site.in_shapes[0]) + 1
    dim = layer.dim % rank
    start = "" if layer.start is None else layer.start
    end = "" if layer.end is None else layer.end
    step = "" if layer.step == 1 else f":{layer.step}"
    return Emitted(None, f"{site.x}[{', '.join([':'] * dim + [f'{start}:{end}{step}'])}]")


def _reshape(site: Site) -> Emitted:
    return Emitted(None, f"{site.x}.reshape(-1, {', '.join(map(str, site.out_shape))})")


def _permute(site: Site) -> Emitted:
    return Emitted(None, f"{site.x}.permute{tuple(site.layer.dims)}")


def _transpose(site: Site) -> Emitted:
    return Emitted(None, f"{site.x}.transpose({site.layer.dim0}, {site.layer.dim1})")


def _unflatten(site: Site) -> Emitted:
    return call(site, Ctor("nn.Unflatten", (site.layer.dim, tuple(site.layer.sizes))))


def _reduce(method: str) -> Callable[[Site], Emitted]:
    def emit(site: Site) -> Emitted:
        dim = site.layer.dim
        dim = tuple(dim) if isinstance(dim, (list, tuple)) else dim
        keep = ", keepdim=True" if site.layer.keepdim else ""
        return Emitted(None, f"{site.x}.{method}({'' if dim is None else dim}{keep})")
    return emit


def _parts(site: Site) -> Emitted:
    """torch.split / torch.chunk give a tuple; part k (`name.k`) is its item k."""
    layer = site.layer
    if hasattr(layer, "source"):
        return Emitted(None, f"{site.x}[{layer.index}]")
    if site.type == "chunk":
        return Emitted(None, f"torch.chunk({site.x}, {layer.chunks}, dim={layer.dim})")
    size = layer.split_size_or_sections
    return Emitted(None, f"torch.split({site.x}, {size!r}, dim={layer.dim})")


# -- the kinds PyTorch has no module for: classes the file defines (torch_helpers.py) ----------

def _helper(site: Site, callee: str, *args: Any, defaults: dict | None = None,
            **kwargs: Any) -> Emitted:
    emitted = call(site, module(callee, *args, defaults=defaults, **kwargs))
    emitted.helpers = (callee,)
    return emitted


def _per_channel(callee: str, fill: Callable[[Any], float], default_name: str, op: str):
    """layer_scale (x * gamma) and channel_bias (x + bias): a helper module, or with
    `param: ""` a bare nn.Parameter named as the layer (torchvision's CNBlock.layer_scale)."""
    def emit(site: Site) -> Emitted:
        layer, c = site.layer, site.in_shapes[0][0]
        if layer.param == "":
            shape = (c, *(1,) * site.rank) if layer.keepdim else (c,)
            value = Ctor("nn.Parameter", (Code(f"torch.full({shape}, {fill(layer)!r})"),))
            view = "" if layer.keepdim or site.rank == 0 else f".reshape(-1{', 1' * site.rank})"
            return Emitted(value, f"{site.x} {op} {{m}}{view}")
        options = {"keepdim": layer.keepdim, "ndim": site.rank, "name": layer.param}
        if callee == "LayerScale":
            options["init_values"] = layer.init_values
        return _helper(site, callee, c, defaults={"init_values": 1e-5, "keepdim": False,
                                                  "ndim": 2, "name": default_name}, **options)
    return emit


def _scalar_affine(site: Site) -> Emitted:
    layer = site.layer
    return _helper(site, "ScalarAffine", defaults={"bias": True, "weight_init": 1.0, "bias_init": 0.0},
                   bias=layer.bias, weight_init=layer.weight_init, bias_init=layer.bias_init)


def _grn(site: Site) -> Emitted:
    layer = site.layer
    dim = site.in_shapes[0][-1] if layer.channels_last else site.in_shapes[0][0]
    return _helper(site, "GlobalResponseNorm", dim, defaults={"eps": 1e-6, "channels_last": False},
                   eps=layer.eps, channels_last=layer.channels_last)


def _blur_pool(site: Site) -> Emitted:
    layer = site.layer
    return _helper(site, "BlurPool2d", site.in_shapes[0][0],
                   defaults={"filt_size": 3, "stride": 2, "pad_mode": "reflect"},
                   filt_size=layer.filt_size, stride=layer.stride, pad_mode=layer.pad_mode)


def _coord_channels(site: Site) -> Emitted:
    return _helper(site, "CoordChannels", defaults={"with_r": False}, with_r=site.layer.with_r)


def _locally_connected(site: Site) -> Emitted:
    layer = site.layer
    pads = layer.geometry(site.in_shapes[0][1:])[0] if hasattr(layer, "geometry") else layer.padding
    return _helper(site, "LocallyConnected", site.in_shapes[0][0], layer.out_channels,
                   tuple(layer.kernel_size), tuple(layer.stride), torch_pads(pads),
                   tuple(site.out_shape[1:]), defaults={"bias": True}, bias=layer.bias)


EMITTERS: dict[str, Callable[[Site], Emitted]] = {
    "layer_scale": _per_channel("LayerScale", lambda layer: layer.init_values, "gamma", "*"),
    "channel_bias": _per_channel("ChannelBias", lambda layer: 0.0, "bias", "+"),
    "scalar_affine": _scalar_affine, "global_response_norm": _grn, "blur_pool2d": _blur_pool,
    "coord_channels": _coord_channels,
    **{f"locally_connected{n}d": _locally_connected for n in (1, 2, 3)},
    "split": _parts, "chunk": _parts,
    **{f"conv{n}d": _conv for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": _conv_transpose for n in (1, 2, 3)},
    **{f"{kind}{n}d": _pool for n in (1, 2, 3) for kind in ("maxpool", "avgpool")},
    **{f"adaptive_avgpool{n}d": _adaptive("AdaptiveAvgPool") for n in (1, 2, 3)},
    **{f"adaptive_maxpool{n}d": _adaptive("AdaptiveMaxPool") for n in (1, 2, 3)},
    **{f"batchnorm{n}d": _batchnorm("BatchNorm", True, True) for n in (1, 2, 3)},
    **{f"instancenorm{n}d": _batchnorm("InstanceNorm", False, False) for n in (1, 2, 3)},
    "global_avgpool": _global("mean"), "global_maxpool": _global("amax"),
    "groupnorm": _groupnorm, "layernorm": _layernorm, "layernorm2d": _layernorm2d,
    "local_response_norm": _plain("nn.LocalResponseNorm", size=("size", None),
                                  alpha=("alpha", 1e-4), beta=("beta", 0.75), k=("k", 1.0)),
    "linear": _linear, "flatten": _flatten,
    "relu": _plain("nn.ReLU"), "relu6": _plain("nn.ReLU6"), "silu": _plain("nn.SiLU"),
    "sigmoid": _plain("nn.Sigmoid"), "tanh": _plain("nn.Tanh"), "mish": _plain("nn.Mish"),
    "hardswish": _plain("nn.Hardswish"), "hardsigmoid": _plain("nn.Hardsigmoid"),
    "identity": _plain("nn.Identity"), "gelu": _gelu, "prelu": _prelu,
    "leaky_relu": _plain("nn.LeakyReLU", negative_slope=("negative_slope", 0.01)),
    "elu": _plain("nn.ELU", alpha=("alpha", 1.0)),
    "softplus": _plain("nn.Softplus", beta=("beta", 1.0), threshold=("threshold", 20.0)),
    "hardtanh": _plain("nn.Hardtanh", min_val=("min_val", -1.0), max_val=("max_val", 1.0)),
    "softmax": _positional("nn.Softmax", "dim"), "log_softmax": _positional("nn.LogSoftmax", "dim"),
    "dropout": _plain("nn.Dropout", p=("p", 0.5)),
    "channel_shuffle": _positional("nn.ChannelShuffle", "groups"),
    "pixel_shuffle": _positional("nn.PixelShuffle", "upscale_factor"),
    "depth_to_space": _positional("nn.PixelShuffle", "upscale_factor"),
    "pixel_unshuffle": _positional("nn.PixelUnshuffle", "downscale_factor"),
    "space_to_depth": _positional("nn.PixelUnshuffle", "downscale_factor"),
    "add": _infix("+"), "mul": _infix("*"), "sub": _infix("-"), "div": _infix("/"),
    "pow": _infix("**"), "rsub": _reverse("-"), "rdiv": _reverse("/"), "rpow": _reverse("**"),
    **{f"max_unpool{n}d": _max_unpool for n in (1, 2, 3)},
    "concat": _concat, "stack": _stack, "matmul": _matmul, "bmm": _matmul,
    "upsample": _upsample, "pad": _pad, "crop": _crop, "slice": _slice,
    "reshape": _reshape, "view": _reshape, "permute": _permute, "transpose": _transpose,
    "unflatten": _unflatten, "sum": _reduce("sum"), "mean": _reduce("mean"),
    "amax": _reduce("amax"), "max": _reduce("amax"), "amin": _reduce("amin"),
    "min": _reduce("amin"),
}
"""Layer kind -> emitter(site). Kinds missing here are in NOT_EXPORTED with the reason."""

NOT_EXPORTED: dict[str, str] = {}
"""Layer kind -> why it does not export (one line)."""


def emit(site: Site) -> Emitted:
    """The torch code of one layer, or NotExportable naming the kind and why."""
    emitter = EMITTERS.get(site.type)
    if emitter is None:
        reason = NOT_EXPORTED.get(site.type, "no PyTorch emitter for this kind")
        raise NotExportable(f"{site.type}: {reason}")
    return emitter(site)
