"""Reductions over axes (torch.sum, torch.mean, torch.amax, torch.amin, with keepdim), and
matmul and stack, the kinds attention blocks of hybrid CNNs are made of.

Dims count the batch axis (1 = channels); `dim: -` reduces every per-sample axis (PyTorch's
dim=None then also reduces the batch; convcalc reduces per sample). FLOPs per output
element, over the n elements it reduces: sum n - 1 adds, mean n (adds and a divide),
amax / amin n - 1 comparisons. `max` and `min` are amax and amin: the values only (torch.max
with a dim also returns indices, which convcalc does not model).
Receptive field: whole on every reduced spatial axis; with keepdim false the tensor
collapses when every spatial axis is reduced, and is unknown when only some are.
"""

from __future__ import annotations

import math

from convcalc.layers.base import (
    Inference,
    Layer,
    LayerError,
    P,
    RFStep,
    register,
    sample_axis,
)


class _Reduce(Layer):
    """out = reduce(x) over `dim` (one dim or a list), keeping size-1 axes with keepdim."""

    params = {
        "dim": P("any", None, doc="a PyTorch dim or a list of them (batch axis included: "
                                  "1 = channels); - = every per-sample axis"),
        "keepdim": P("bool", False),
    }
    extra_flops = 0  # per output: mean's divide
    reduce = ""  # the NumPy method: sum, mean, max, min

    def axes(self, shape) -> tuple[int, ...]:
        dims = self.dim
        if dims is None:
            return tuple(range(len(shape)))
        dims = dims if isinstance(dims, list) else [dims]
        if not dims or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            raise LayerError("invalid-value", f"dim must be an integer or a list of them; got "
                             f"{self.dim!r}", "e.g. dim: [2, 3] for height and width")
        axes = [sample_axis(d, shape) for d in dims]
        if len(set(axes)) != len(axes):
            raise LayerError("invalid-value", f"dim {self.dim} names an axis twice",
                             "list each axis once")
        return tuple(sorted(axes))

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        axes = self.axes(shape)
        out = tuple(1 if a in axes else n for a, n in enumerate(shape)) if self.keepdim else \
            tuple(n for a, n in enumerate(shape) if a not in axes)
        if not out:
            out = (1,)  # every axis reduced: one value per sample, kept as [1]
        n = math.prod(shape[a] for a in axes)
        return Inference(out, 0, math.prod(out) * (n - 1 + self.extra_flops))

    def rf_steps(self, shapes, out):
        (shape,) = shapes
        axes = self.axes(shape)
        spatial = range(1, len(shape))
        if not self.keepdim and any(a in axes for a in spatial) and \
                not all(a in axes for a in spatial):
            return None  # some spatial axes gone, others kept: they no longer line up
        return [RFStep(whole=a in axes) for a in spatial]

    def forward(self, inputs, params, refs):
        """In PyTorch's order, the reduced axes kept, then reshaped to the analysed shape."""
        from convcalc.executor.layout import sample_shape
        from convcalc.layers.layout import in_torch_order
        shape = sample_shape(inputs[0])
        axes = tuple(a + 1 for a in self.axes(shape))
        out = self.infer([shape], {}).shape
        return in_torch_order(inputs[0], lambda a: _keep(self.reduce, a, axes)
                              .reshape((a.shape[0], *out)))


@register("sum")
class Sum(_Reduce):
    summary = "torch.sum over dim (a list of PyTorch dims), keepdim"

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only


    reduce = "sum"


@register("mean")
class Mean(_Reduce):
    summary = "torch.mean over dim (a list of PyTorch dims), keepdim"

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    extra_flops = 1

    reduce = "mean"


@register("amax", "max")
class Amax(_Reduce):
    summary = "torch.amax over dim (max: the values of torch.max), keepdim"

    reduce = "max"


@register("amin", "min")
class Amin(_Reduce):
    summary = "torch.amin over dim (min: the values of torch.min), keepdim"

    reduce = "min"


def _keep(method: str, x, axes):
    """x.<method>(axis=axes) with the reduced axes kept (size 1), in float32."""
    import numpy as np
    return np.asarray(getattr(x, method)(axis=axes, keepdims=True), dtype=np.float32)
