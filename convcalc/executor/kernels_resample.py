"""Resampling and channel layout on channels-last float32 data: upsample, channel_shuffle,
coord_channels.

x (N, *in, C) with 1-3 spatial axes. Interpolation is separable: each spatial axis is
resampled in turn by a gather (np.take) and, for the linear modes, one weighted sum of two
gathers, which is exactly multilinear interpolation. Source positions use float32 arithmetic,
as PyTorch's CPU kernels do for float32 tensors, so nearest indices match bit for bit.
"""

from __future__ import annotations

import numpy as np

from convcalc.executor.kernels_common import as_float32, check_rank, spatial_tuple

_LINEAR_MODES = {"linear", "bilinear", "trilinear"}


def upsample(x, size, mode="nearest", align_corners=None, scale_factor=None):
    """Resize (N, *in, C) -> (N, *size, C), PyTorch F.interpolate semantics.

    With r = in/out, or r = 1/scale_factor when a scale factor is given (as PyTorch does):
    nearest: src = min(floor(dst * r), in-1); nearest-exact: floor((dst + 0.5) * r);
    linear/bilinear/trilinear: align_corners=True: src = dst*(in-1)/(out-1);
    otherwise src = max((dst + 0.5)*r - 0.5, 0); out = (1-l)*x[floor(src)] + l*x[floor(src)+1].
    """
    x = as_float32(x)
    ndim = check_rank(x, "upsample")
    out_size = spatial_tuple(size, ndim, "size")
    if mode not in _LINEAR_MODES | {"nearest", "nearest-exact"}:
        raise ValueError(f"upsample: unknown mode {mode!r}; expected nearest, nearest-exact, "
                         f"linear, bilinear or trilinear")
    if mode in _LINEAR_MODES and align_corners is None:
        align_corners = False
    factors = (None,) * ndim if scale_factor is None else _scale_factors(scale_factor, ndim)
    result = x
    for axis, (out, factor) in enumerate(zip(out_size, factors)):
        size_in = result.shape[1 + axis]
        ratio = (np.float32(1.0 / factor) if factor else
                 np.float32(size_in) / np.float32(out))  # PyTorch: 1/scale_factor when given
        if mode in _LINEAR_MODES:
            if out != size_in:  # PyTorch's linear kernels copy an axis whose size is unchanged
                result = _linear_axis(result, 1 + axis, size_in, out, align_corners, ratio)
        elif out != size_in or factor:
            result = np.take(result, _nearest_index(size_in, out, mode == "nearest-exact", ratio),
                             axis=1 + axis)
    return np.ascontiguousarray(result)


def _scale_factors(scale_factor, ndim: int) -> tuple[float, ...]:
    """A number or one per spatial axis -> a tuple of `ndim` floats."""
    if isinstance(scale_factor, (int, float, np.number)):
        return (float(scale_factor),) * ndim
    factors = tuple(float(f) for f in scale_factor)
    if len(factors) != ndim:
        raise ValueError(f"scale_factor: expected {ndim} values, one per spatial axis. "
                         f"Received: {scale_factor!r}")
    return factors


def _nearest_index(size_in: int, size_out: int, exact: bool, scale) -> np.ndarray:
    """PyTorch nearest_idx: src = floor((dst [+ 0.5]) * scale) in float32, clamped."""
    dst = np.arange(size_out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    return np.minimum(np.floor(dst * scale).astype(np.int64), size_in - 1)


def _linear_axis(x: np.ndarray, axis: int, size_in: int, size_out: int, align_corners: bool,
                 scale):
    """One axis of linear interpolation: (1 - l) * x[i0] + l * x[i1], i1 = min(i0 + 1, in-1)."""
    dst = np.arange(size_out, dtype=np.float32)
    if align_corners:
        scale = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
        src = dst * scale
    else:
        src = np.maximum((dst + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0))
    low = np.minimum(src.astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    weight_high = np.minimum(src - low.astype(np.float32), np.float32(1))
    shape = [1] * x.ndim
    shape[axis] = size_out
    weight_high = weight_high.reshape(shape)
    low_rows, high_rows = np.take(x, low, axis=axis), np.take(x, high, axis=axis)
    return low_rows + weight_high * (high_rows - low_rows)


def channel_shuffle(x, groups: int) -> np.ndarray:
    """out[..., j*groups + g] = x[..., g*(C/groups) + j] (ShuffleNet; PyTorch channel_shuffle)."""
    x = as_float32(x)
    channels = x.shape[-1]
    if channels % groups:
        raise ValueError(f"channel_shuffle: {channels} channels are not divisible by {groups} groups")
    split = x.reshape(x.shape[:-1] + (groups, channels // groups))
    return np.ascontiguousarray(np.swapaxes(split, -1, -2)).reshape(x.shape)


def coord_channels(x, with_r: bool = False) -> np.ndarray:
    """CoordConv: (N, *in, C) -> (N, *in, C + ndim [+ 1]).

    Appends one channel per spatial axis, in spatial order (2-D: row i, then column j), with
    coord_a = -1 + 2*i_a/(in_a - 1) in [-1, 1] (-1 on an axis of size 1); with_r appends
    r = sqrt(sum_a coord_a^2).
    """
    x = as_float32(x)
    check_rank(x, "coord_channels")
    spatial = x.shape[1:-1]
    grids = np.meshgrid(*(np.linspace(-1.0, 1.0, n, dtype=np.float32) if n > 1
                          else np.full(1, -1.0, np.float32) for n in spatial), indexing="ij")
    coords = list(grids)
    if with_r:
        coords.append(np.sqrt(sum(g * g for g in grids)))
    stacked = np.stack(coords, axis=-1)  # (*in, ndim [+1])
    extra = np.broadcast_to(stacked, (x.shape[0],) + stacked.shape)
    return np.concatenate([x, extra.astype(np.float32)], axis=-1)
