"""Pooling on channels-last float32 data, with PyTorch semantics.

x (N, *in, C) with 1-3 spatial axes -> (N, *out, C). Window sizes follow
`convcalc.arithmetic.pool_output_size` (ceil_mode included: a last window that would start
in the right padding is dropped). Max and average windows are boxes, so without indices
they are reduced one spatial axis at a time (k taps per axis instead of prod(k)); each step
is one vectorized np.maximum / np.add over the whole array.
"""

from __future__ import annotations

from math import prod

import numpy as np

from convcalc.arithmetic import adaptive_window, effective_kernel, pool_output_size
from convcalc.executor.kernels_common import (
    as_float32, check_rank, pad, padding_pairs, spatial_tuple, strided_rows, taps, window_view,
)


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, name):
    """Normalised (kernel, stride, pairs, dilation, out_size) of a pooling call."""
    ndim = check_rank(x, name)
    kernel = spatial_tuple(kernel_size, ndim, "kernel_size")
    stride = kernel if stride is None or stride == () else spatial_tuple(stride, ndim, "stride")
    dilation = spatial_tuple(dilation, ndim, "dilation")
    pairs = padding_pairs(padding, ndim)
    out_size = tuple(pool_output_size(i, k, s, b, a, d, ceil_mode) for i, k, s, (b, a), d
                     in zip(x.shape[1:-1], kernel, stride, pairs, dilation))
    if min(out_size) <= 0:
        raise ValueError(f"{name}: input {x.shape[1:-1]} with kernel {kernel}, stride {stride}, "
                         f"padding {pairs} gives output {out_size}")
    return kernel, stride, pairs, dilation, out_size


def _window_padding(in_size, kernel, stride, pairs, dilation, out_size):
    """(before, after) so the padded input holds exactly the rows the windows read."""
    return tuple((b, (o - 1) * s + effective_kernel(k, d) - i - b)
                 for i, k, s, (b, _), d, o in zip(in_size, kernel, stride, pairs, dilation, out_size))


def _reduce_axes(xp, kernel, stride, dilation, out_size, reduce):
    """Box reduction, one axis at a time: y = reduce_t xp[..., o*s + t*d, ...] per axis."""
    result = xp
    for axis, (k, s, d, o) in enumerate(zip(kernel, stride, dilation, out_size)):
        index = [slice(None)] * result.ndim
        acc = None
        for tap in range(k):  # loop over the k taps of this axis, each a whole-array op
            index[1 + axis] = strided_rows(o, tap * d, s)
            view = result[tuple(index)]
            acc = view.copy() if acc is None else reduce(acc, view, out=acc)
        result = acc
    return result


def max_pool(x, kernel_size, stride, padding, dilation=1, ceil_mode=False, return_indices=False):
    """out[n, o, c] = max_t xpad[n, o*s + t*d, c], padding = -inf (PyTorch max_pool1d/2d/3d).

    x (N, *in, C) -> (N, *out, C). With return_indices, also int64 indices (N, *out, C): the
    flat position sum_a pos_a * prod(in[a+1:]) of the maximum in the unpadded input (the first
    maximum in window order; a NaN wins, as in PyTorch).
    """
    x = as_float32(x)
    kernel, stride, pairs, dilation, out_size = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool")
    window_pad = _window_padding(x.shape[1:-1], kernel, stride, pairs, dilation, out_size)
    xp = pad(x, window_pad, "constant", -np.inf)
    if not return_indices:
        return _reduce_axes(xp, kernel, stride, dilation, out_size, np.maximum)
    windows = window_view(xp, kernel, stride, dilation, out_size)
    best = np.full((x.shape[0],) + out_size + (x.shape[-1],), -np.inf, np.float32)
    index = np.broadcast_to(_flat_positions(x.shape[1:-1], stride, pairs, dilation, out_size,
                                            None), best.shape).copy()
    for number, tap in taps(windows, kernel):  # loop over taps: a compare-and-select each
        better = (tap > best) | np.isnan(tap)
        np.copyto(best, tap, where=better)
        offset = np.unravel_index(number, kernel)
        np.copyto(index, _flat_positions(x.shape[1:-1], stride, pairs, dilation, out_size, offset),
                  where=better)
    return best, index


def _flat_positions(in_size, stride, pairs, dilation, out_size, offset):
    """Flat input index (1, *out, 1) of tap `offset` in each window, or, for offset None, of the
    window's first real (non-padding) element, which PyTorch reports when all values are -inf."""
    flat = np.zeros((1,) * (len(in_size) + 2), np.int64)
    for axis, (i, s, (b, _), d, o) in enumerate(zip(in_size, stride, pairs, dilation, out_size)):
        start = np.arange(o, dtype=np.int64) * s - b
        if offset is None:
            start = np.where(start < 0, start + (-start + d - 1) // d * d, start)
        else:
            start = start + offset[axis] * d
        shape = [1] * flat.ndim
        shape[1 + axis] = o
        flat = flat * i + start.reshape(shape)
    return flat


def avg_pool(x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    """out[n, o, c] = sum_t xpad[n, o*s + t, c] / divisor (PyTorch avg_pool1d/2d/3d).

    divisor = divisor_override, else the window's size clipped to the padded input
    (count_include_pad) or to the real input (not count_include_pad), per axis multiplied.
    """
    x = as_float32(x)
    kernel, stride, pairs, dilation, out_size = _pool_geometry(
        x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool")
    window_pad = _window_padding(x.shape[1:-1], kernel, stride, pairs, dilation, out_size)
    sums = _reduce_axes(pad(x, window_pad), kernel, stride, dilation, out_size, np.add)
    if divisor_override:
        return sums / np.float32(divisor_override)
    divisor = np.ones((1,) * sums.ndim, np.float32)
    for axis, (i, k, s, (b, a), o) in enumerate(zip(x.shape[1:-1], kernel, stride, pairs, out_size)):
        start = np.arange(o) * s - b
        end = np.minimum(start + k, i + a)
        size = end - start if count_include_pad else np.minimum(end, i) - np.maximum(start, 0)
        shape = [1] * sums.ndim
        shape[1 + axis] = o
        divisor = divisor * np.maximum(size, 1).astype(np.float32).reshape(shape)
    return sums / divisor


def adaptive_avg_pool(x, output_size):
    """out[n, o, c] = mean of x[n, floor(o*I/O) : ceil((o+1)*I/O), c] per axis (PyTorch).

    x (N, *in, C) -> (N, *output_size, C); a None entry keeps that axis. Separable: each
    axis is one matmul with an (O, I) averaging matrix.
    """
    x = as_float32(x)
    out_size = _adaptive_size(x, output_size, "adaptive_avg_pool")
    if all(o == 1 for o in out_size):
        return x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=True, dtype=np.float32)
    result = x
    for axis, o in enumerate(out_size):
        size = result.shape[1 + axis]
        if o == size:
            continue
        averaging = np.zeros((o, size), np.float32)
        for row in range(o):  # builds the small (O, I) matrix, not a loop over data
            start, end = adaptive_window(row, size, o)
            averaging[row, start:end] = 1.0 / (end - start)
        moved = np.tensordot(averaging, result, axes=([1], [1 + axis]))  # (O, N, ...)
        result = np.moveaxis(moved, 0, 1 + axis)
    return np.ascontiguousarray(result)


def adaptive_max_pool(x, output_size):
    """out[n, o, c] = max of x[n, floor(o*I/O) : ceil((o+1)*I/O), c] per axis (PyTorch)."""
    x = as_float32(x)
    out_size = _adaptive_size(x, output_size, "adaptive_max_pool")
    result = x
    for axis, o in enumerate(out_size):
        size = result.shape[1 + axis]
        if o == size:
            continue
        bounds = np.array([adaptive_window(row, size, o) for row in range(o)], np.int64)
        longest = int((bounds[:, 1] - bounds[:, 0]).max())
        index = np.minimum(bounds[:, :1] + np.arange(longest), bounds[:, 1:] - 1)  # (O, longest)
        gathered = np.take(result, index, axis=1 + axis)  # (..., O, longest, ...)
        result = gathered.max(axis=2 + axis)
    return np.ascontiguousarray(result)


def _adaptive_size(x, output_size, name):
    ndim = check_rank(x, name)
    if isinstance(output_size, (int, np.integer)):
        output_size = (int(output_size),) * ndim
    if len(output_size) != ndim:
        raise ValueError(f"{name}: expected {ndim} output sizes. Received: {output_size!r}")
    return tuple(i if o is None else int(o) for i, o in zip(x.shape[1:-1], output_size))


def max_unpool(x, indices, output_size):
    """out[n, indices[n, p, c], c] = x[n, p, c], zeros elsewhere (PyTorch max_unpool).

    x, indices (N, *in, C) (indices flat over the output's spatial positions, as max_pool
    returns them); output_size: the spatial shape of the result (N, *output_size, C).
    """
    x = as_float32(x)
    ndim = check_rank(x, "max_unpool")
    out_size = spatial_tuple(output_size, ndim, "output_size")
    batch, channels = x.shape[0], x.shape[-1]
    flat_index = np.asarray(indices, np.int64).reshape(batch, -1, channels)
    if flat_index.size and (flat_index.min() < 0 or flat_index.max() >= prod(out_size)):
        raise ValueError(f"max_unpool: an index is outside the output {out_size}")
    out = np.zeros((batch, prod(out_size), channels), np.float32)
    np.put_along_axis(out, flat_index, x.reshape(batch, -1, channels), axis=1)
    return out.reshape((batch,) + out_size + (channels,))
