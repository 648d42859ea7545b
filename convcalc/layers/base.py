"""The Layer base class, parameter declarations and the registry of layer kinds.

A layer kind is one subclass of `Layer`, registered under its spec names with `@register`.
It owns its parameters (PyTorch names and defaults), its shape rule, its weights (hence its
parameter count), its MACs and FLOPs, its receptive-field step and its NumPy forward.
Shapes exclude the batch axis: `(C, *spatial)`, or `(F,)` after flatten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, ClassVar, Sequence

from convcalc.diagnostics import Diagnostic, Severity, diag

Shape = tuple[int, ...]
REQUIRED = object()
AXIS_NAMES = {1: ("positions",), 2: ("rows", "columns"), 3: ("slices", "rows", "columns")}
AXIS_ENDS = {1: ("end",), 2: ("bottom", "right"), 3: ("back", "bottom", "right")}


class LayerError(Exception):
    """A finding that stops this layer's analysis (its output shape becomes unknown)."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = diag(code, message, hint)


class InvalidValue(Exception):
    """A parameter value that does not fit its declaration."""


@dataclass(frozen=True)
class Weight:
    """One state_dict entry of a layer: its shape, and whether it is a trainable parameter."""

    shape: Shape
    trainable: bool = True
    fill: float | None = None  # the initial value when it is not PyTorch's usual one

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class RFStep:
    """A layer's receptive-field step on one axis (Araujo et al.): kernel, stride, padding.

    `whole` marks layers whose every output sees the whole input (global pooling, linear).
    Fractions carry upsampling and transposed convolution exactly.
    """

    kernel: Fraction = Fraction(1)
    stride: Fraction = Fraction(1)
    padding: Fraction = Fraction(0)
    whole: bool = False


@dataclass(frozen=True)
class Inference:
    """What a layer's shape rule finds: the output shape, its cost and any diagnostics."""

    shape: Shape
    macs: int = 0
    flops: int = 0
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class Saved:
    """A tensor PyTorch's autograd keeps for a layer's backward (train mode): input `index`,
    the `output`, or an `extra` tensor of `elements` elements (per sample when `per_sample`)
    of `itemsize` bytes (None: the network's dtype). Parameters and buffers are not listed."""

    what: str  # "input" | "output" | "extra"
    index: int = 0
    elements: int = 0
    itemsize: int | None = None
    per_sample: bool = True
    label: str = ""


def saved_inputs(*indices: int) -> tuple[Saved, ...]:
    return tuple(Saved("input", i) for i in indices)


SAVED_OUTPUT = (Saved("output"),)


@dataclass(frozen=True)
class P:
    """A parameter declaration: how to read it from the spec, its default and its meaning."""

    kind: str  # int | float | bool | str | choice | tuple | padding | size | size_or_keep | scale
    #            | ref | any
    default: Any = REQUIRED
    choices: tuple = ()
    minimum: float | None = None
    doc: str = ""


class Layer:
    """Base of all layer kinds. Subclasses declare `params`; instances hold validated values."""

    params: ClassVar[dict[str, P]] = {}
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    summary: ClassVar[str] = ""
    yields_parts: ClassVar[bool] = False  # split, chunk: other layers read `<name>.<k>`

    def __init__(self, type_name: str, ndim: int | None, values: dict[str, Any]):
        self.type = type_name
        self.ndim = ndim
        self.values = values
        for key, value in values.items():
            setattr(self, key, value)

    # -- the rules each kind may override ---------------------------------------------------
    def infer(self, shapes: list[Shape], refs: dict[str, Shape]) -> Inference:
        """Output shape, MACs and FLOPs of this layer for input shapes `shapes`."""
        raise NotImplementedError

    def weight_shapes(self, shapes: list[Shape]) -> dict[str, Weight]:
        """state_dict suffix -> Weight (PyTorch names: weight, bias, running_mean, ...)."""
        return {}

    def rf_steps(self, shapes: list[Shape], out: Shape) -> list[RFStep] | None:
        """Receptive-field step per spatial axis; element-wise layers keep k = s = 1.
        None: the field is unknown after this layer (it moves or mixes spatial axes)."""
        return [RFStep() for _ in out[1:]]

    def arity(self) -> tuple[int, int | None]:
        """(fewest, most) inputs of this layer; kinds whose count depends on a parameter
        (add with a constant `other`) override it."""
        return self.min_inputs, self.max_inputs

    def ref_params(self) -> dict[str, str]:
        """Parameters that name other layers (param -> layer name), such as crop's `to`."""
        return {name: getattr(self, name) for name, p in self.params.items()
                if p.kind == "ref" and getattr(self, name, None) is not None}

    # -- the cost of training (convcalc.training) --------------------------------------------
    view_of_input: ClassVar[bool] = False
    """The output is a view of input 0 (flatten, slice, crop): no new storage."""

    def aliases_input(self) -> bool:
        """Whether the output shares input 0's storage: a view, or an in-place activation."""
        return self.view_of_input or bool(self.values.get("inplace", False))

    def saved_for_backward(self, shapes: list[Shape], out: Shape) -> tuple[Saved, ...]:
        """What PyTorch's autograd saves for this layer's backward in train mode. The default,
        for kinds that do not say, is every input (what most differentiable ops keep)."""
        return saved_inputs(*range(len(shapes)))

    def backward_macs(self, macs: int, input_grad: Sequence[bool], weight_grad: bool) -> int:
        """MACs of the backward pass; only kinds whose forward is a convolution or a matrix
        product have any (the convention of torch.utils.flop_counter)."""
        return 0

    # -- the NumPy forward (convcalc.executor; numpy is imported there, never at import) ----
    ref_outputs: ClassVar[dict[str, str]] = {}
    """ref param -> the side output it reads from the layer it names (max_unpool: indices)."""

    def prepare(self, weights: dict, shapes: list[Shape]) -> dict:
        """state_dict suffix -> array, laid out once per network for `forward`."""
        return dict(weights)

    def forward(self, inputs: list, params: dict, refs: dict):
        """Channels-last float32 arrays (N, *spatial, C), or (N, F) -> the output array.

        params: from `prepare` (plus "side_outputs", the names a consumer asked for; a layer
        then returns (output, {name: array})); refs: ref param -> the named layer's output,
        or the side output `ref_outputs` names.
        """
        raise NotImplementedError(f"{self.type} has no NumPy forward")

    def channel_affine(self, weights: dict):
        """(scale, shift) per channel when this layer is y = x * scale + shift, else None."""
        return None

    def absorb_affine(self, weights: dict, scale, shift) -> dict | None:
        """This layer's raw weights with y * scale + shift (per output channel) folded in,
        or None when it cannot fold (BatchNorm into a preceding conv at inference)."""
        return None

    # -- helpers for subclasses ------------------------------------------------------------
    def need_rank(self, shape: Shape, rank: int | Sequence[int], what: str = "input") -> None:
        ranks = (rank,) if isinstance(rank, int) else tuple(rank)
        if len(shape) not in ranks:
            want = " or ".join(_rank_words(r) for r in ranks)
            raise LayerError("rank-mismatch",
                             f"{self.type} expects {what} of {want}; got {list(shape)}",
                             "check the spec's input, or the layers before this one")

    def per_axis(self, name: str, axes: int) -> tuple:
        """A per-axis parameter of a rank-agnostic kind, broadcast to `axes` spatial axes."""
        value = getattr(self, name)
        if isinstance(value, tuple) and len(value) == 1 and axes != 1:
            return value * axes
        if isinstance(value, tuple) and len(value) != axes:
            raise LayerError("invalid-value", f"{name} has {len(value)} entries but the input "
                             f"has {axes} spatial axes", f"give {axes} values, or one for all")
        return value


def sample_axis(dim: int, shape: Shape, param: str = "dim", extra: int = 0) -> int:
    """PyTorch dim (batch axis included: 0 = batch, 1 = channels; negatives count from the
    end) -> the axis of the per-sample shape: dim % (len(shape) + 1 + extra) - 1.

    `extra` widens the range by new axes (stack and unflatten insert one). Dim 0 is refused:
    convcalc shapes are per sample."""
    rank = len(shape) + 1 + extra
    if not -rank <= dim < rank:
        raise LayerError("invalid-value", f"{param} {dim} is out of range for a {rank}-axis "
                         f"tensor (dims count the batch axis, as in PyTorch: the per-sample "
                         f"shape is {list(shape)})", f"use {param}: 1 .. {rank - 1}, or "
                         f"-1 .. -{rank - 1}")
    if dim % rank == 0:
        raise LayerError("invalid-value", f"{param} {dim} is the batch axis; convcalc shapes "
                         f"are per sample, so an operation along the batch is not described",
                         "dims count the batch axis: 1 is channels, 2 the first spatial axis")
    return dim % rank - 1


def _rank_words(rank: int) -> str:
    return {1: "[C] or [F]", 2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"}.get(rank, f"{rank} axes")


def weight_key(layer: str, suffix: str) -> str:
    """The state_dict key of a layer's weight: `layer.suffix`, or the layer's own name when
    the suffix is empty (a bare nn.Parameter such as torchvision CNBlock's `layer_scale`)."""
    return f"{layer}.{suffix}" if suffix else layer


def numel(shape: Shape) -> int:
    return math.prod(shape)


# -- the registry ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    name: str
    cls: type[Layer]
    ndim: int | None
    fixed: dict = field(default_factory=dict)


REGISTRY: dict[str, Kind] = {}


def register(*names: str, ndim: int | None = None, **fixed: Any) -> Callable[[type], type]:
    """Register a Layer subclass under spec names; `fixed` are values the name implies."""
    def deco(cls: type[Layer]) -> type[Layer]:
        for name in names:
            if name in REGISTRY:
                raise ValueError(f"layer kind {name!r} registered twice")
            REGISTRY[name] = Kind(name, cls, ndim, dict(fixed))
        return cls
    return deco


def register_ndim(stem: str, cls: type[Layer], dims: Sequence[int] = (1, 2, 3), **fixed: Any) -> None:
    """Register `stem1d`, `stem2d`, `stem3d` for one class."""
    for n in dims:
        register(f"{stem}{n}d", ndim=n, **fixed)(cls)


# -- reading values ------------------------------------------------------------------------

def read_value(p: P, value: Any, ndim: int | None) -> Any:
    """Validate and normalise one parameter value; raise InvalidValue with the reason."""
    reader = _READERS.get(p.kind)
    if reader is None:
        return value
    if ndim is None:  # a kind for any rank: a list sets the axes, a scalar is broadcast later
        try:
            out = reader(p, value, len(value) if isinstance(value, list) else 1)
        except InvalidValue:
            raise InvalidValue(f"expected {_ANY_RANK.get(p.kind, 'a valid value')}; "
                               f"got {value!r}") from None
    else:
        out = reader(p, value, ndim)
    if p.minimum is not None and out is not None:
        for item in (out if isinstance(out, tuple) else (out,)):
            if isinstance(item, (int, float)) and item < p.minimum:
                raise InvalidValue(f"must be >= {p.minimum:g}; got {value!r}")
    return out


_ANY_RANK = {  # what a kind for any rank takes, the number of axes not known yet
    "padding": "'same', 'valid', a non-negative integer, or a list with one entry per "
               "spatial axis, each a non-negative integer or a [before, after] pair",
    "tuple": "an integer, or a list with one integer per spatial axis",
    "size": "a positive integer, or a list with one per spatial axis",
    "scale": "a positive number, or a list with one per spatial axis",
}


def _int(p: P, value: Any, ndim: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"expected an integer; got {value!r}")
    return value


def _float(p: P, value: Any, ndim: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"expected a number; got {value!r}")
    return float(value)


def _bool(p: P, value: Any, ndim: int) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"expected true or false; got {value!r}")
    return value


def _str(p: P, value: Any, ndim: int) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"expected a string; got {value!r}")
    return value


def _choice(p: P, value: Any, ndim: int) -> Any:
    if value not in p.choices:
        raise InvalidValue(f"expected one of {', '.join(map(str, p.choices))}; got {value!r}")
    return value


def _tuple(p: P, value: Any, ndim: int) -> tuple[int, ...]:
    """An int for every axis, or a list with one int per axis."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * ndim
    if isinstance(value, list) and len(value) == ndim and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise InvalidValue(f"expected an integer or a list of {ndim} integers; got {value!r}")


def _padding(p: P, value: Any, ndim: int) -> str | tuple[tuple[int, int], ...]:
    """int | [per-axis ints] | [[before, after], ...] | 'valid' | 'same'."""
    if value == "valid":
        return ((0, 0),) * ndim
    if value == "same":
        return "same"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return ((value, value),) * ndim
    if isinstance(value, list) and len(value) == ndim:
        pairs = []
        for v in value:
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                pairs.append((v, v))
            elif (isinstance(v, list) and len(v) == 2
                  and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)):
                pairs.append((v[0], v[1]))
            else:
                break
        else:
            return tuple(pairs)
    raise InvalidValue(f"expected 'same', 'valid', a non-negative integer, a list of {ndim} "
                       f"of them, or {ndim} [before, after] pairs; got {value!r}")


def size_keeps_axes(kind: str, ndim: int | None) -> bool:
    """Whether a size may hold null for "keep this axis": PyTorch's adaptive pools take None
    in 2-D and 3-D only (adaptive_avg_pool1d refuses it); other sizes never do."""
    return kind == "size_or_keep" and (ndim or 0) >= 2


def _size(p: P, value: Any, ndim: int) -> tuple[int | None, ...]:
    """An output size: int or per-axis list (null keeps that axis where PyTorch allows it)."""
    keep = size_keeps_axes(p.kind, ndim)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value,) * ndim
    if isinstance(value, list) and len(value) == ndim and all(
            (v is None and keep) or (isinstance(v, int) and not isinstance(v, bool) and v > 0)
            for v in value):
        return tuple(value)
    what = "integers or null (keep that axis)" if keep else "positive integers"
    raise InvalidValue(f"expected a positive integer or a list of {ndim} {what}; got {value!r}")


def _scale(p: P, value: Any, ndim: int) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return (float(value),) * ndim
    if isinstance(value, list) and len(value) == ndim and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value):
        return tuple(float(v) for v in value)
    raise InvalidValue(f"expected a positive number or a list of {ndim}; got {value!r}")


_READERS: dict[str, Callable[[P, Any, int], Any]] = {
    "int": _int, "float": _float, "bool": _bool, "str": _str, "ref": _str, "choice": _choice,
    "tuple": _tuple, "padding": _padding, "size": _size, "size_or_keep": _size, "scale": _scale,
}


def elementwise_rf(out: Shape) -> list[RFStep]:
    return [RFStep() for _ in out[1:]]


def enclosing_rf(windows: Sequence[tuple[int, int]], stride: Fraction) -> RFStep:
    """p = max_j (j*s - first_j), k = max_j (last_j - j*s) + p + 1: the tightest step whose
    region [j*s - p, j*s - p + k - 1] holds every output j's input window (first_j, last_j).

    For layers whose windows are not an exact affine function of j at this size (adaptive
    pooling, interpolation); equals the plain (k, s, p) whenever that exists."""
    padding = max(j * stride - first for j, (first, _last) in enumerate(windows))
    reach = max(last - j * stride for j, (_first, last) in enumerate(windows))
    return RFStep(Fraction(reach + padding + 1), Fraction(stride), Fraction(padding))


__all__ = [
    "Shape", "REQUIRED", "AXIS_NAMES", "AXIS_ENDS", "LayerError", "InvalidValue", "Weight",
    "RFStep", "Inference", "P", "Layer", "Kind", "REGISTRY", "register", "register_ndim",
    "read_value", "numel", "weight_key", "Severity", "diag", "Fraction", "enclosing_rf",
    "sample_axis", "Saved", "saved_inputs", "SAVED_OUTPUT",
]
