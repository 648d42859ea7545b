"""Resampling and framing: upsample, pad, crop. They work on 1-, 2- and 3-D inputs.

upsample: out = floor(i * scale_factor), or `size`. FLOPs: nearest 0; (bi/tri)linear
3 per linear interpolation, 2^n - 1 of them per output element on n axes.
pad and crop move no arithmetic (0 FLOPs).
"""

from __future__ import annotations

import math

from convcalc import arithmetic as ar
from convcalc.layers.base import (Fraction, Inference, Layer, LayerError, P, RFStep, register,
                                  saved_inputs)

LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


@register("upsample")
class Upsample(Layer):
    """out = floor(i * scale_factor) per axis (PyTorch nn.Upsample), or the given size."""

    summary = "upsampling, PyTorch nn.Upsample (nearest, linear, bilinear, trilinear)"
    params = {
        "scale_factor": P("scale", None, doc="number or per-axis list"),
        "size": P("size", None, doc="output size, int or per-axis list"),
        "mode": P("choice", "nearest", ("nearest", "linear", "bilinear", "trilinear")),
        "align_corners": P("bool", None, doc="linear modes only; PyTorch default false"),
    }

    def saved_for_backward(self, shapes, out):
        """Nothing: the gradient needs the sizes only."""
        return ()

    def out_spatial(self, shape):
        axes = len(shape) - 1
        if (self.scale_factor is None) == (self.size is None):
            raise LayerError("invalid-value", "upsample needs exactly one of scale_factor and size",
                             "give scale_factor: 2, or size: [H, W]")
        if self.size is not None:
            return self.per_axis("size", axes)
        return tuple(ar.upsample_output_size(i, f) for i, f
                     in zip(shape[1:], self.per_axis("scale_factor", axes)))

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        axes = len(shape) - 1
        if self.mode in LINEAR_MODES and LINEAR_MODES[self.mode] != axes:
            raise LayerError("invalid-value", f"mode {self.mode} is for {LINEAR_MODES[self.mode]}-D "
                             f"inputs; this one is {axes}-D",
                             f"use mode {next(m for m, n in LINEAR_MODES.items() if n == axes)}")
        if self.align_corners is not None and self.mode == "nearest":
            raise LayerError("invalid-value", "align_corners applies to linear modes only",
                             "remove align_corners, or use mode bilinear")
        out = (shape[0], *self.out_spatial(shape))
        per_element = 0 if self.mode == "nearest" else 3 * (2 ** axes - 1)
        return Inference(out, 0, per_element * math.prod(out))

    def rf_steps(self, shapes, out):
        """The tightest step holding each output's source pixels (enclosing_rf), stride I/O.

        nearest reads floor(j*I/O): x2 gives k = 3/2, s = 1/2, p = 1/2, a transposed conv
        with k = s = 2. Linear modes read floor(src) and ceil(src), src = (j + 1/2)*I/O - 1/2
        (align_corners: j*(I-1)/(O-1)): bilinear x2 gives k = 5/2, s = 1/2, p = 1, the
        transposed conv k = 4, s = 2, p = 1. Unit centres land on src (half-pixel exact)."""
        return [RFStep(*self._step(i, o)) for i, o in zip(shapes[0][1:], out[1:])]

    def _step(self, size_in: int, size_out: int):
        """(k, s, p) enclosing each output j's source pixels, in closed form
        (arithmetic.sampled_rf: the same as enclosing_rf over the O windows)."""
        if self.mode == "nearest":  # source floor(j*I/O)
            return ar.sampled_rf(Fraction(size_in, size_out), Fraction(0), size_out, True)
        if self.align_corners and size_out > 1:
            step = Fraction(size_in - 1, size_out - 1)
            if not step:  # in = 1: every output reads pixel 0; stride I/O
                stride = Fraction(size_in, size_out)
                return 1 + (size_out - 1) * stride, stride, (size_out - 1) * stride
            return ar.sampled_rf(step, Fraction(0), size_out, False)
        stride = Fraction(size_in, size_out)  # source (j + 1/2)*I/O - 1/2
        return ar.sampled_rf(stride, stride / 2 - Fraction(1, 2), size_out, False)

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import upsample
        from convcalc.executor.layout import sample_shape
        (x,) = inputs
        shape = sample_shape(x)
        factors = None if self.size is not None else self.per_axis("scale_factor", len(shape) - 1)
        return upsample(x, self.out_spatial(shape), self.mode, self.align_corners, factors)


@register("pad")
class Pad(Layer):
    """out = i + p_before + p_after per axis (axes in spatial order, not F.pad's reverse)."""

    summary = "explicit padding (constant, reflect, replicate, circular)"
    params = {
        "padding": P("padding", doc="int, per-axis list or [[before, after], ...]"),
        "mode": P("choice", "constant", ("constant", "reflect", "replicate", "circular")),
        "value": P("float", 0.0, doc="fill value for mode constant"),
    }

    def saved_for_backward(self, shapes, out):
        """Nothing for constant padding; the input for reflect, replicate and circular."""
        return () if self.mode == "constant" else saved_inputs(0)

    def pads(self, shape):
        if self.padding == "same":
            raise LayerError("invalid-value", "pad takes explicit padding, not 'same'",
                             "give padding as an int, a list or [before, after] pairs")
        return self.per_axis("padding", len(shape) - 1)

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        pads = self.pads(shape)
        if self.mode in ("reflect", "circular"):
            limit = {"reflect": -1, "circular": 0}[self.mode]
            for i, (pb, pa) in zip(shape[1:], pads):
                if max(pb, pa) > i + limit:
                    raise LayerError("invalid-value", f"{self.mode} padding {max(pb, pa)} needs "
                                     f"an input larger than {i}", "use mode replicate or constant")
        return Inference((shape[0], *(i + pb + pa for i, (pb, pa) in zip(shape[1:], pads))))

    def rf_steps(self, shapes, out):
        return [RFStep(Fraction(1), Fraction(1), Fraction(pb)) for pb, _ in self.pads(shapes[0])]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import pad
        (x,) = inputs
        return pad(x, self.pads(x.shape[1:]), self.mode, self.value)


@register("crop")
class Crop(Layer):
    """Centre crop: offset before = (i - o) // 2 (U-Net's skip connections)."""

    summary = "centre crop to a size, or to another layer's size (`to: layer`)"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()
    params = {
        "size": P("size", None, doc="int or per-axis list"),
        "to": P("ref", None, doc="crop to this layer's spatial size"),
    }

    def target(self, shape, refs):
        if (self.size is None) == (self.to is None):
            raise LayerError("invalid-value", "crop needs exactly one of size and to",
                             "give size: [H, W] or to: <layer name>")
        if self.size is not None:
            return self.per_axis("size", len(shape) - 1)
        other = refs.get("to")
        if other is None:
            raise LayerError("missing-input", f"the shape of {self.to!r} is unknown")
        if len(other) != len(shape):
            raise LayerError("rank-mismatch", f"cannot crop {list(shape)} to the size of "
                             f"{self.to!r} {list(other)}")
        return tuple(other[1:])

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        target = self.target(shape, refs)
        if any(o > i for i, o in zip(shape[1:], target)):
            raise LayerError("shape-mismatch", f"cannot crop {list(shape[1:])} to the larger "
                             f"{list(target)}", "crop the larger tensor, or pad this one")
        return Inference((shape[0], *target))

    def offsets(self, shape, refs):
        return tuple((i - o) // 2 for i, o in zip(shape[1:], self.target(shape, refs)))

    def rf_steps(self, shapes, out):
        return [RFStep(Fraction(1), Fraction(1), Fraction(-((i - o) // 2)))
                for i, o in zip(shapes[0][1:], out[1:])]

    def forward(self, inputs, params, refs):
        """Centre crop; `to` reads the named layer's output size."""
        (x,) = inputs
        spatial = x.shape[1:-1]
        target = (self.per_axis("size", len(spatial)) if self.size is not None
                  else refs["to"].shape[1:-1])
        starts = [(i - o) // 2 for i, o in zip(spatial, target)]
        return x[(slice(None), *(slice(s, s + o) for s, o in zip(starts, target)), slice(None))]
