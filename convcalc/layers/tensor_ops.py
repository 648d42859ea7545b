"""Kinds of two or more tensor inputs that are not element-wise: matmul (torch.matmul, batched,
broadcasting over the leading axes) and stack (torch.stack along a new axis).

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only


matmul: per-sample shapes [..., M, K] @ [..., K, P] -> [broadcast(...), M, P]; MACs =
M * K * P per broadcast matrix, FLOPs = 2 * MACs (the linear convention). Both inputs need
at least two per-sample axes: a [K] vector per sample is a batch of rows, (N, K), which
torch.matmul would treat as one matrix across the batch. stack: 0 FLOPs.
Receptive field: unknown after either (they move or mix spatial axes), unless every input
is already one unit (after global pooling).
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


def one_unit_rf(shapes) -> list[RFStep] | None:
    """Whole steps when every input is a single unit (spatial sizes 1), else unknown."""
    if all(all(n == 1 for n in shape[1:]) for shape in shapes):
        return [RFStep(whole=True) for _ in shapes[0][1:]]
    return None


def broadcast_shapes(a, b, what: str) -> tuple[int, ...]:
    """NumPy's rule on two shapes aligned at the end."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise LayerError("shape-mismatch", f"{what}: the leading axes {list(a)} and {list(b)} "
                         f"do not broadcast", "sizes must match or be 1")
    return tuple(max(x, y) for x, y in zip(a, b))


@register("matmul", "bmm")
class Matmul(Layer):
    """torch.matmul(a, b) per sample: [..., M, K] @ [..., K, P] -> [..., M, P]."""

    summary = "torch.matmul / bmm of two inputs: [..., M, K] @ [..., K, P], leading axes broadcast"
    min_inputs = 2
    max_inputs = 2

    def backward_macs(self, macs, input_grad, weight_grad):
        """One product of the forward's size per input that needs a gradient."""
        return macs * sum(map(bool, input_grad))

    def infer(self, shapes, refs) -> Inference:
        a, b = shapes
        if len(a) < 2 or len(b) < 2:
            raise LayerError("rank-mismatch", f"matmul needs a matrix per sample on both inputs; "
                             f"got {list(a)} and {list(b)}",
                             "unflatten or reshape a vector to [1, K] or [K, 1] first")
        if a[-1] != b[-2]:
            raise LayerError("shape-mismatch", f"matmul of {list(a)} and {list(b)}: {a[-1]} "
                             f"columns against {b[-2]} rows", "transpose one of the inputs")
        out = (*broadcast_shapes(a[:-2], b[:-2], "matmul"), a[-2], b[-1])
        macs = math.prod(out) * a[-1]
        return Inference(out, macs, 2 * macs)

    def rf_steps(self, shapes, out):
        return one_unit_rf(shapes)

    def forward(self, inputs, params, refs):
        import numpy as np

        from convcalc.executor.layout import to_channels_first, to_channels_last
        a, b = (to_channels_first(x) for x in inputs)
        rank = max(a.ndim, b.ndim)
        a, b = (x.reshape((x.shape[0],) + (1,) * (rank - x.ndim) + x.shape[1:]) for x in (a, b))
        return to_channels_last(np.matmul(a, b))


@register("stack")
class Stack(Layer):
    """torch.stack(inputs, dim): a new axis at `dim` (default 1; PyTorch's 0 is the batch)."""

    summary = "torch.stack along a new axis dim (PyTorch dims, 1 = before channels)"
    params = {"dim": P("int", 1, doc="PyTorch dim of the new axis, batch axis included")}
    min_inputs = 1
    max_inputs = None

    def infer(self, shapes, refs) -> Inference:
        if len({tuple(s) for s in shapes}) > 1:
            raise LayerError("shape-mismatch", "stack of different shapes: " +
                             ", ".join(str(list(s)) for s in shapes), "stack equal shapes")
        axis = sample_axis(self.dim, shapes[0], extra=1)
        shape = list(shapes[0])
        shape.insert(axis, len(shapes))
        return Inference(tuple(shape), 0, 0)

    def rf_steps(self, shapes, out):
        return one_unit_rf(shapes)

    def forward(self, inputs, params, refs):
        import numpy as np

        from convcalc.executor.layout import to_channels_first, to_channels_last
        axis = sample_axis(self.dim, _sample_shape(inputs[0]), extra=1)
        return to_channels_last(np.stack([to_channels_first(x) for x in inputs], axis=axis + 1))


def _sample_shape(x):
    from convcalc.executor.layout import sample_shape
    return sample_shape(x)
