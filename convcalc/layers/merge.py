"""Merges: add and mul (NumPy broadcasting, for residuals, gates and squeeze-excitation) and
concat (channel axis by default). FLOPs: n - 1 adds or multiplies per output element.

add and mul also take one input and a constant `other` (x + 2.0, x * 0.17: torch.add and
torch.mul with a number); sub, div, pow and their reversed forms are in arith.py."""

from __future__ import annotations

import math

from convcalc.layers.base import Inference, Layer, LayerError, P, RFStep, register, saved_inputs

def _axis_word(shape_len: int, axis: int) -> str:
    spatial = {2: ("length",), 3: ("height", "width"), 4: ("depth", "height", "width")}
    return "channels" if axis == 0 else spatial.get(shape_len, ("axis",) * 4)[axis - 1]


def _differences(shapes, axes, rank: int, broadcast: bool = False) -> str:
    """'height and width differ by 27 (27 vs 54)', grouping axes that differ alike."""
    found: dict[tuple, list[str]] = {}
    for axis in axes:
        sizes = tuple(sorted({s[axis] for s in shapes} - ({1} if broadcast else set())))
        if len(sizes) > 1:
            found.setdefault(sizes, []).append(_axis_word(rank, axis))
    parts = [f"{' and '.join(words)} differ{'s' if words != ['channels'] and len(words) == 1 else ''} by "
             f"{sizes[-1] - sizes[0]} ({' vs '.join(map(str, sizes))})"
             for sizes, words in found.items()]
    return "; ".join(parts)


class _Broadcast(Layer):
    """out = broadcast(x1, x2, ...) under NumPy's rules on the per-sample shapes; with a
    constant `other`, out = x op other (one input)."""

    min_inputs = 2
    max_inputs = None
    op = ""  # the name of kernels_math.BINARY's function
    constant = "other"  # the parameter holding the constant operand
    reverse = False  # other op x (rsub, rdiv, rpow)
    params = {"other": P("float", None, doc="a number: one input, x op other")}

    def arity(self) -> tuple[int, int | None]:
        if getattr(self, self.constant, None) is not None:
            return 1, 1
        return self.min_inputs, self.max_inputs

    def infer(self, shapes, refs) -> Inference:
        if getattr(self, self.constant, None) is not None:
            return Inference(shapes[0], 0, math.prod(shapes[0]))
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
        sizes = [{s[axis] for s in padded} - {1} for axis in range(rank)]
        if any(len(found) > 1 for found in sizes):
            self._mismatch(shapes, padded, rank)
        out = tuple(found.pop() if found else 1 for found in sizes)
        return Inference(out, 0, (len(shapes) - 1) * math.prod(out))

    def _mismatch(self, shapes, padded, rank):
        """One error naming every axis that differs, with a hint that would fix them all."""
        listed = ", ".join(str(list(s)) for s in shapes)
        if len({len(s) for s in shapes}) > 1:  # e.g. [C] against [C, H, W]: NumPy aligns right
            raise LayerError("shape-mismatch", f"{self.type} of {listed}: shapes of different "
                             f"ranks broadcast from the last axis (NumPy's rule), so these do "
                             f"not line up", "keep the axes: a global pool with keepdim: true "
                             "gives [C, 1, 1]")
        channels = len({s[0] for s in padded} - {1}) > 1
        spatial = _differences(padded, range(1, rank), rank, broadcast=True)
        fix_channels = "project one input with a 1x1 conv to the other's channel count"
        fix_spatial = ("crop the larger input ({type: crop, to: <smaller layer>}) or pad the "
                       "smaller one; check strides and paddings on each path")
        if channels:
            differs = "channels differ (" + " vs ".join(
                map(str, sorted({s[0] for s in padded} - {1}))) + ")"
            raise LayerError("channel-mismatch",
                             f"{self.type} of {listed}: " + "; ".join(filter(None, (differs, spatial))),
                             fix_channels + (f", and {fix_spatial}" if spatial else ""))
        raise LayerError("shape-mismatch", f"{self.type} of {listed}: {spatial}", fix_spatial)

    def forward(self, inputs, params, refs):
        from convcalc.executor.layout import broadcastable
        if getattr(self, self.constant, None) is not None:
            from convcalc.executor.kernels_math import with_constant
            return with_constant(inputs[0], self.op, getattr(self, self.constant), self.reverse)
        arrays = broadcastable(inputs)
        out = self.combine(arrays[0], arrays[1])
        for other in arrays[2:]:
            out = self.combine(out, other)
        return out


@register("add")
class Add(_Broadcast):
    summary = "element-wise sum of 2+ inputs (residual connections), or x + other"
    op = "add"

    def saved_for_backward(self, shapes, out):
        """Nothing: the gradient passes through (broadcast ones are summed back)."""
        return ()

    @staticmethod
    def combine(a, b):
        return a + b


@register("mul")
class Mul(_Broadcast):
    summary = "element-wise product of 2+ inputs (gates, squeeze-excitation), or x * other"
    op = "mul"

    def saved_for_backward(self, shapes, out):
        """Each factor, for the other's gradient."""
        return saved_inputs(*range(len(shapes)))

    @staticmethod
    def combine(a, b):
        return a * b


@register("concat")
class Concat(Layer):
    """Join along `dim` (PyTorch dims with the batch axis: 1 = channels); others must match."""

    summary = "concatenation along an axis (channels by default); one input is torch.cat([x])"
    params = {"dim": P("int", 1)}
    min_inputs = 1
    max_inputs = None

    def saved_for_backward(self, shapes, out):
        """Nothing: the gradient is sliced back to each input."""
        return ()

    def infer(self, shapes, refs) -> Inference:
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise LayerError("rank-mismatch", "concat of tensors with different numbers of axes: "
                             + ", ".join(str(list(s)) for s in shapes))
        if not -rank - 1 <= self.dim <= rank or self.dim % (rank + 1) == 0:
            raise LayerError("invalid-value", f"dim {self.dim} is not a non-batch axis of a "
                             f"{rank + 1}-axis tensor (dims count the batch axis)", "use dim: 1")
        axis = self.dim % (rank + 1) - 1
        others = [a for a in range(rank) if a != axis and len({s[a] for s in shapes}) > 1]
        if others:
            listed = ", ".join(str(list(s)) for s in shapes)
            crop = ("crop the larger input to the smaller ({type: crop, to: <layer>}), as U-Net "
                    "does, or pad the smaller")
            spatial = [a for a in others if a != 0]
            fixes = (["project one input with a 1x1 conv to the other's channel count"]
                     if 0 in others else []) + ([crop] if spatial else [])
            raise LayerError("channel-mismatch" if 0 in others else "shape-mismatch",
                             f"concat of {listed}: " + _differences(shapes, others, rank),
                             ", and ".join(fixes))
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return Inference(tuple(out), 0, 0)

    def rf_steps(self, shapes, out):
        return [RFStep() for _ in out[1:]]

    def forward(self, inputs, params, refs):
        import numpy as np
        from convcalc.executor.layout import channels_last_axis
        return np.concatenate(inputs, axis=channels_last_axis(self.dim, inputs[0].ndim))
