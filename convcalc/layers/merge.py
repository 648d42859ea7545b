"""Merges: add and mul (NumPy broadcasting, for residuals, gates and squeeze-excitation) and
concat (channel axis by default). FLOPs: n - 1 adds or multiplies per output element."""

from __future__ import annotations

import math

from convcalc.layers.base import Inference, Layer, LayerError, P, RFStep, register

AXIS_WORDS = ("channels", "axis 1", "axis 2", "axis 3")


def _axis_word(shape_len: int, axis: int) -> str:
    spatial = {2: ("length",), 3: ("height", "width"), 4: ("depth", "height", "width")}
    return "channels" if axis == 0 else spatial.get(shape_len, ("axis",) * 4)[axis - 1]


class _Broadcast(Layer):
    """out = broadcast(x1, x2, ...) under NumPy's rules on the per-sample shapes."""

    min_inputs = 2
    max_inputs = None

    def infer(self, shapes, refs) -> Inference:
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
        out = []
        for axis in range(rank):
            sizes = {s[axis] for s in padded} - {1}
            if len(sizes) > 1:
                self._mismatch(shapes, padded, axis, rank)
            out.append(sizes.pop() if sizes else 1)
        return Inference(tuple(out), 0, (len(shapes) - 1) * math.prod(out))

    def _mismatch(self, shapes, padded, axis, rank):
        listed = ", ".join(str(list(s)) for s in shapes)
        if axis == 0:
            raise LayerError("channel-mismatch", f"{self.type} of {listed}: channels differ",
                             "project one input with a 1x1 conv to the other's channel count")
        sizes = sorted({s[axis] for s in padded})
        word = _axis_word(rank, axis)
        raise LayerError("shape-mismatch",
                         f"{self.type} of {listed}: {word} differ by {sizes[-1] - sizes[0]} "
                         f"({' vs '.join(map(str, sizes))})",
                         "crop the larger input ({type: crop, to: <smaller layer>}) or pad the "
                         "smaller one; check strides and paddings on each path")


@register("add")
class Add(_Broadcast):
    summary = "element-wise sum of 2+ inputs (residual connections)"


@register("mul")
class Mul(_Broadcast):
    summary = "element-wise product of 2+ inputs (gates, squeeze-excitation)"


@register("concat")
class Concat(Layer):
    """Join along `dim` (PyTorch dims with the batch axis: 1 = channels); others must match."""

    summary = "concatenation along an axis (channels by default)"
    params = {"dim": P("int", 1)}
    min_inputs = 2
    max_inputs = None

    def infer(self, shapes, refs) -> Inference:
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise LayerError("rank-mismatch", "concat of tensors with different numbers of axes: "
                             + ", ".join(str(list(s)) for s in shapes))
        if not -rank - 1 <= self.dim <= rank or self.dim % (rank + 1) == 0:
            raise LayerError("invalid-value", f"dim {self.dim} is not a non-batch axis of a "
                             f"{rank + 1}-axis tensor (dims count the batch axis)", "use dim: 1")
        axis = self.dim % (rank + 1) - 1
        for other in range(rank):
            sizes = sorted({s[other] for s in shapes})
            if other != axis and len(sizes) > 1:
                listed = ", ".join(str(list(s)) for s in shapes)
                raise LayerError(
                    "shape-mismatch",
                    f"concat of {listed}: {_axis_word(rank, other)} differ by "
                    f"{sizes[-1] - sizes[0]} ({' vs '.join(map(str, sizes))})",
                    "crop the larger input to the smaller ({type: crop, to: <layer>}), as U-Net "
                    "does, or pad the smaller")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return Inference(tuple(out), 0, 0)

    def rf_steps(self, shapes, out):
        return [RFStep() for _ in out[1:]]
