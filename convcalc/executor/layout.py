"""The executor's data layout: channels-last arrays, and how PyTorch's dims map onto them.

A tensor the analysis describes as (C, *spatial) (PyTorch: (N, C, *spatial)) is held as an
array (N, *spatial, C); a flat tensor (F,) is (N, F) in both layouts. Channels-last keeps a
pixel's channels contiguous, so a conv's patch rows are long runs of memory and a 1x1 conv
is a plain matmul. Layers whose parameters name PyTorch dims (flatten, softmax, concat,
linear over the last axis) translate them here.
"""

from __future__ import annotations


def channels_last_axis(dim: int, ndim: int) -> int:
    """The array axis of PyTorch dim `dim` (batch axis included) of an `ndim`-axis tensor."""
    dim %= ndim
    if ndim <= 2 or dim == 0:
        return dim
    return ndim - 1 if dim == 1 else dim - 1


def to_channels_first(x):
    """(N, *spatial, C) -> (N, C, *spatial), a view; (N, F) unchanged."""
    if x.ndim <= 2:
        return x
    return x.transpose((0, x.ndim - 1, *range(1, x.ndim - 1)))


def to_channels_last(x):
    """(N, C, *spatial) -> (N, *spatial, C), a view; (N, F) unchanged."""
    if x.ndim <= 2:
        return x
    return x.transpose((0, *range(2, x.ndim), 1))


def sample_shape(x) -> tuple[int, ...]:
    """The analysis' per-sample shape of an array: (C, *spatial), or (F,)."""
    if x.ndim <= 2:
        return tuple(x.shape[1:])
    return (x.shape[-1], *x.shape[1:-1])


def broadcastable(arrays: list) -> list:
    """Arrays reshaped so that NumPy broadcasting in channels-last equals broadcasting of the
    per-sample channels-first shapes (aligned at the end, as the analysis does)."""
    rank = max(a.ndim for a in arrays)
    if all(a.ndim == rank for a in arrays):
        return arrays  # the same axis permutation applied to all: broadcasting is unchanged
    out = []
    for a in arrays:
        if a.ndim == rank:
            out.append(a)
            continue
        first = to_channels_first(a)
        padded = first.reshape((a.shape[0],) + (1,) * (rank - a.ndim) + first.shape[1:])
        out.append(to_channels_last(padded))
    return out
