"""Convolutions on channels-last float32 data: conv, conv_transpose, locally_connected.

x (N, *in, Cin) with 1-3 spatial axes; weights in PyTorch layouts; results (N, *out, Cout).

Strategy (measured on the 2-core target, see benchmarks/bench_kernels.py):
- 1x1 stride-1 conv: x.reshape(N*P, Cin) @ W, no copy at all.
- other convs: one `window_view`, one copy into a contiguous (N*P, K*Cin) patch matrix
  (K = prod(kernel); patch columns ordered (*kernel, Cin), which keeps runs of k_w*Cin
  contiguous floats in channels-last data) and one BLAS matmul with a pre-transposed weight.
- groups: the same on a group-major copy of the input, with a leading group axis and one
  batched np.matmul.
- large inputs: patches are built and multiplied in cache-sized blocks of output rows.
- depthwise (groups == Cin): a multiply-accumulate over the K kernel taps.

Runners can prepare weights once per network with `conv_prepared_weight` and
`conv_transpose_prepared_weight` and pass the resulting `ConvWeight` instead of the array.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from convcalc.arithmetic import conv_output_size, transposed_output_size
from convcalc.executor.kernels_common import (
    as_float32, check_rank, pad, padding_pairs, spatial_tuple, strided_rows, taps, window_view,
)

# Patch matrices are built and multiplied in blocks of output rows (whole batch items when
# they fit) of about this size: the block is consumed by the matmul while still in cache, and
# scratch memory stays bounded. Measured with benchmarks/bench_kernels.py shapes, batch 8:
# 4 MB blocks are 1.2-2x faster than one big patch matrix; batch 1 is unchanged. A block
# keeps at least PATCH_BLOCK_MIN_ROWS patch rows so each matmul stays large enough for BLAS.
PATCH_BLOCK_BYTES = 4 * 2**20
PATCH_BLOCK_MIN_ROWS = 2048
# Depthwise convs accumulate tap by tap over blocks of output rows of this size.
DEPTHWISE_BLOCK_BYTES = 256 * 2**10


@dataclass(frozen=True, eq=False)
class ConvWeight:
    """A conv weight laid out once for the matmul (build with `conv_prepared_weight`).

    conv: `matrix` (G, K*Cin_g, Cout_g), rows ordered (*kernel, Cin_g); or, for depthwise
    convs (Cin_g == 1, groups > 1), `depthwise_taps` (K, Cin, multiplier).
    conv_transpose (`transposed`): `matrix` (G, Cin_g, K*Cout_g), columns ordered (*kernel, Cout_g).
    """

    kernel_size: tuple[int, ...]
    groups: int
    in_channels: int
    out_channels: int
    transposed: bool
    matrix: np.ndarray | None = None
    depthwise_taps: np.ndarray | None = None


def conv_prepared_weight(weight: np.ndarray, groups: int = 1) -> ConvWeight:
    """(Cout, Cin/groups, *k) PyTorch weight -> ConvWeight for `conv` (transposed once)."""
    weight = as_float32(weight)
    cout, cin_g, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])
    if cout % groups:
        raise ValueError(f"conv: out_channels {cout} must be divisible by groups {groups}")
    taps_count = prod(kernel)
    if cin_g == 1 and groups > 1:  # depthwise, channel multiplier m = Cout / Cin
        multiplier = cout // groups
        per_tap = weight.reshape(groups, multiplier, taps_count).transpose(2, 0, 1)
        return ConvWeight(kernel, groups, groups, cout, False,
                          depthwise_taps=np.ascontiguousarray(per_tap))
    grouped = weight.reshape((groups, cout // groups, cin_g) + kernel)
    order = (0,) + tuple(range(3, 3 + len(kernel))) + (2, 1)  # (G, *k, Cin_g, Cout_g)
    matrix = grouped.transpose(order).reshape(groups, taps_count * cin_g, cout // groups)
    return ConvWeight(kernel, groups, cin_g * groups, cout, False,
                      matrix=np.ascontiguousarray(matrix))


def conv_transpose_prepared_weight(weight: np.ndarray, groups: int = 1) -> ConvWeight:
    """(Cin, Cout/groups, *k) PyTorch weight -> ConvWeight for `conv_transpose`."""
    weight = as_float32(weight)
    cin, cout_g, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])
    if cin % groups:
        raise ValueError(f"conv_transpose: in_channels {cin} must be divisible by groups {groups}")
    taps_count = prod(kernel)
    grouped = weight.reshape(groups, cin // groups, cout_g, taps_count).transpose(0, 1, 3, 2)
    matrix = np.ascontiguousarray(grouped).reshape(groups, cin // groups, taps_count * cout_g)
    return ConvWeight(kernel, groups, cin, cout_g * groups, True, matrix=matrix)


def conv(x, weight, bias, stride, padding, dilation, groups=1, padding_mode="zeros") -> np.ndarray:
    """out[n, o, co] = bias[co] + sum_{t, ci} xpad[n, o*s + t*d, g*Cin_g + ci] * w[co, ci, t]

    x (N, *in, Cin); weight (Cout, Cin/groups, *k) or a ConvWeight; bias (Cout,) or None;
    stride, dilation: int or one per axis; padding ((before, after), ...);
    padding_mode zeros|reflect|replicate|circular (PyTorch). Returns (N, *out, Cout) with
    out = floor((in + p_before + p_after - d*(k-1) - 1) / s) + 1.
    """
    x = as_float32(x)
    ndim = check_rank(x, "conv")
    prepared = weight if isinstance(weight, ConvWeight) else conv_prepared_weight(weight, groups)
    if prepared.transposed or prepared.groups != groups or len(prepared.kernel_size) != ndim:
        raise ValueError(f"conv: weight prepared for groups={prepared.groups}, "
                         f"kernel {prepared.kernel_size}; called with groups={groups} on {x.shape}")
    if x.shape[-1] != prepared.in_channels:
        raise ValueError(f"conv: expected {prepared.in_channels} input channels (last axis). "
                         f"Received shape {x.shape}")
    kernel = prepared.kernel_size
    stride, dilation = spatial_tuple(stride, ndim, "stride"), spatial_tuple(dilation, ndim, "dilation")
    pairs = padding_pairs(padding, ndim)
    out_size = tuple(conv_output_size(i, k, s, b, a, d) for i, k, s, (b, a), d
                     in zip(x.shape[1:-1], kernel, stride, pairs, dilation))
    if min(out_size) <= 0:
        raise ValueError(f"conv: input {x.shape[1:-1]} with kernel {kernel}, stride {stride}, "
                         f"padding {pairs}, dilation {dilation} gives output {out_size}")
    xp = pad(x, pairs, "constant" if padding_mode == "zeros" else padding_mode)
    if prepared.depthwise_taps is not None:
        out = _depthwise(xp, prepared.depthwise_taps, kernel, stride, dilation, out_size)
    else:
        out = _patch_matmul(xp, prepared, stride, dilation, out_size)
    if bias is not None:
        out += as_float32(bias)
    return out


def _patch_matmul(xp, prepared: ConvWeight, stride, dilation, out_size) -> np.ndarray:
    """(G, N, *out, *k, Cin_g) windows -> (G, M, K*Cin_g) patches @ (G, K*Cin_g, Cout_g)."""
    kernel, groups = prepared.kernel_size, prepared.groups
    if groups > 1:  # group-major copy of the input first: the patch copy then moves runs of
        # k_w*Cin_g floats instead of Cin_g (measured 3x faster on ResNeXt's 3x3, 32 groups)
        split = xp.reshape(xp.shape[:-1] + (groups, -1))
        group_major = np.ascontiguousarray(np.moveaxis(split, -2, 0))  # (G, N, *padded, Cin_g)
        xp = group_major.reshape((-1,) + group_major.shape[2:])
    if all(k == 1 for k in kernel):  # 1x1: subsample, then a plain matmul (no copy at stride 1)
        sampled = xp[(slice(None),) + tuple(strided_rows(o, 0, s) for o, s in zip(out_size, stride))]
        windows = sampled.reshape(sampled.shape[:-1] + (1,) * len(kernel) + sampled.shape[-1:])
    else:
        windows = window_view(xp, kernel, stride, dilation, out_size)
    windows = windows.reshape((groups, -1) + windows.shape[1:])  # (G, N, *out, *k, Cin_g)
    patch_row_bytes = groups * prod(windows.shape[-1 - len(kernel):]) * 4
    limit = max(PATCH_BLOCK_BYTES, PATCH_BLOCK_MIN_ROWS * patch_row_bytes)
    blocks = list(_blocks(windows.shape[1], windows.shape[2], groups * prod(windows.shape[3:]) * 4, limit))
    out = np.empty((windows.shape[1],) + tuple(out_size) + (prepared.out_channels,), np.float32)
    if len(blocks) == 1 or (groups == 1 and windows.flags.c_contiguous):  # 1x1, stride 1: no copy
        blocks = [(slice(None),)]
    for index in blocks:  # blocks of batch items or rows: see PATCH_BLOCK_BYTES
        _block_matmul(windows[(slice(None),) + index], prepared.matrix, out[index])
    return out


def _block_matmul(windows: np.ndarray, matrix: np.ndarray, out: np.ndarray) -> None:
    """out (B, *out, G*Cout_g) = windows (G, B, *out, *k, Cin_g) @ matrix (G, K*Cin_g, Cout_g).

    `out` is a C-contiguous block of the result (whole items, or whole rows of one item).
    """
    groups, depth = matrix.shape[0], matrix.shape[1]
    rows = out.size // out.shape[-1]
    patches = windows.reshape(groups, rows, depth)  # the one copy (none for 1x1, stride 1)
    target = out.view()
    target.shape = (rows, groups, matrix.shape[2])  # raises rather than reshaping into a copy
    if groups == 1:
        np.matmul(patches[0], matrix[0], out=target[:, 0])
    else:
        target[...] = np.matmul(patches, matrix).transpose(1, 0, 2)


def _blocks(batch: int, rows: int, row_bytes: int, limit: int):
    """Index tuples splitting (N, out_0) into blocks of at most `limit` bytes (>= one row):
    whole batch items when one item fits, else rows of one item."""
    item_bytes = rows * row_bytes
    if item_bytes <= limit:
        step = max(1, limit // item_bytes)
        yield from ((slice(n, n + step),) for n in range(0, batch, step))
        return
    step = max(1, limit // row_bytes)
    for n in range(batch):
        yield from ((slice(n, n + 1), slice(r, r + step)) for r in range(0, rows, step))


def _depthwise(xp, per_tap, kernel, stride, dilation, out_size) -> np.ndarray:
    """out[n, o, c*m + j] = sum_t xpad[n, o*s + t*d, c] * w[c*m + j, 0, t] (groups == Cin).

    A loop over the K kernel taps, each one vectorized multiply-add over a block of output
    rows. Measured (112x112x32, 3x3) against a batched matmul with Cin_g == 1 and against
    one pass over the whole output: blocks of ~256 KB that stay in cache are 3x faster, and
    weights tiled along the last output axis let numpy run one long inner loop per row.
    """
    windows = window_view(xp, kernel, stride, dilation, out_size)
    channels, multiplier = per_tap.shape[1], per_tap.shape[2]
    tail = (channels,) if multiplier == 1 else (channels, multiplier)
    tiled = np.ascontiguousarray(np.broadcast_to(  # (K, out_last, C[, m])
        per_tap[:, None, :, 0] if multiplier == 1 else per_tap[:, None],
        (per_tap.shape[0], out_size[-1]) + tail))
    out = np.empty((xp.shape[0],) + tuple(out_size) + tail, np.float32)
    row_bytes = prod(out.shape[2:]) * 4
    for index in _blocks(out.shape[0], out.shape[1], row_bytes, DEPTHWISE_BLOCK_BYTES):
        _depthwise_block(windows[index], tiled, kernel, out[index], multiplier)
    return out.reshape(out.shape[:1 + len(kernel)] + (-1,))


def _depthwise_block(windows, tiled, kernel, out, multiplier) -> None:
    """out = sum_t windows[..., t, :] * tiled[t] for one block of output rows (in place)."""
    term = np.empty_like(out)
    for number, tap in taps(windows, kernel):
        source = tap if multiplier == 1 else tap[..., None]
        if number == 0:
            np.multiply(source, tiled[number], out=out)
        else:
            np.multiply(source, tiled[number], out=term)
            out += term


def conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups=1) -> np.ndarray:
    """out[n, i*s + t*d - p_before, g*Cout_g + co] += x[n, i, g*Cin_g + ci] * w[g*Cin_g + ci, co, t]

    x (N, *in, Cin); weight (Cin, Cout/groups, *k) or a transposed ConvWeight; bias (Cout,)
    or None. out = (i-1)*s - p_before - p_after + d*(k-1) + output_padding + 1 per axis.
    One matmul (M, Cin) @ (Cin, K*Cout) gives every tap's contribution; they are then
    scatter-added with a loop over the K taps (or interleaved by one reshape when s == k, d == 1).
    """
    x = as_float32(x)
    ndim = check_rank(x, "conv_transpose")
    prepared = weight if isinstance(weight, ConvWeight) else conv_transpose_prepared_weight(weight, groups)
    if not prepared.transposed or prepared.groups != groups or x.shape[-1] != prepared.in_channels:
        raise ValueError(f"conv_transpose: weight for {prepared.in_channels} input channels, groups "
                         f"{prepared.groups}; called with groups={groups} on shape {x.shape}")
    kernel, in_size = prepared.kernel_size, x.shape[1:-1]
    stride, dilation = spatial_tuple(stride, ndim, "stride"), spatial_tuple(dilation, ndim, "dilation")
    extra = spatial_tuple(output_padding, ndim, "output_padding")
    pairs = padding_pairs(padding, ndim)
    out_size = tuple(transposed_output_size(i, k, s, b, a, d, e) for i, k, s, (b, a), d, e
                     in zip(in_size, kernel, stride, pairs, dilation, extra))
    if min(out_size) <= 0:
        raise ValueError(f"conv_transpose: input {in_size} gives output {out_size}")
    columns = _transposed_columns(x, prepared)  # (N, *in, *k, Cout)
    full_size = tuple((i - 1) * s + d * (k - 1) + 1 + e
                      for i, k, s, d, e in zip(in_size, kernel, stride, dilation, extra))
    if stride == kernel and all(d == 1 for d in dilation):
        full = _interleave(columns, ndim)  # windows tile the output: no overlap, no loop
        full = pad(full, tuple((0, f - n) for f, n in zip(full_size, full.shape[1:-1])))
    else:
        full = np.zeros((x.shape[0],) + full_size + (prepared.out_channels,), np.float32)
        for offset in np.ndindex(*kernel):  # loop over taps: K strided adds of (N, *in, Cout)
            rows = tuple(strided_rows(i, t * d, s) for i, t, s, d in zip(in_size, offset, stride, dilation))
            full[(slice(None),) + rows] += columns[(slice(None),) * (1 + ndim) + offset]
    crop = tuple(slice(b, b + o) for (b, _), o in zip(pairs, out_size))
    out = np.ascontiguousarray(full[(slice(None),) + crop])
    if bias is not None:
        out += as_float32(bias)
    return out


def _transposed_columns(x: np.ndarray, prepared: ConvWeight) -> np.ndarray:
    """x (N, *in, Cin) @ W (G, Cin_g, K*Cout_g) -> (N, *in, *k, Cout)."""
    groups, kernel = prepared.groups, prepared.kernel_size
    lead, rows = x.shape[:-1], prod(x.shape[:-1])
    cout_g = prepared.out_channels // groups
    if groups == 1:
        return (x.reshape(rows, -1) @ prepared.matrix[0]).reshape(lead + kernel + (cout_g,))
    per_group = x.reshape(rows, groups, -1).transpose(1, 0, 2)  # (G, M, Cin_g)
    grouped = np.matmul(per_group, prepared.matrix).reshape(groups, rows, prod(kernel), cout_g)
    return grouped.transpose(1, 2, 0, 3).reshape(lead + kernel + (groups * cout_g,))


def _interleave(columns: np.ndarray, ndim: int) -> np.ndarray:
    """(N, *in, *k, C) -> (N, *(in*k), C) with out[n, i*k + t] = columns[n, i, t]."""
    order = (0,) + tuple(axis for a in range(ndim) for axis in (1 + a, 1 + ndim + a)) + (1 + 2 * ndim,)
    shape = (columns.shape[0],) + tuple(columns.shape[1 + a] * columns.shape[1 + ndim + a]
                                        for a in range(ndim)) + (columns.shape[-1],)
    return columns.transpose(order).reshape(shape)


def locally_connected(x, weight, bias, kernel_size, stride, padding) -> np.ndarray:
    """out[n, o, co] = bias[co, o] + sum_{t, ci} xpad[n, o*s + t, ci] * w[o, co, ci, t]

    Unshared weights: x (N, *in, Cin); weight (*out, Cout, Cin, *k); bias (Cout, *out) or
    None; zero padding ((before, after), ...). One batched matmul over the P output
    positions: (P, N, K*Cin) @ (P, K*Cin, Cout).
    """
    x = as_float32(x)
    ndim = check_rank(x, "locally_connected")
    weight = as_float32(weight)
    kernel = spatial_tuple(kernel_size, ndim, "kernel_size")
    stride = spatial_tuple(stride, ndim, "stride")
    pairs = padding_pairs(padding, ndim)
    out_size = tuple(conv_output_size(i, k, s, b, a) for i, k, s, (b, a)
                     in zip(x.shape[1:-1], kernel, stride, pairs))
    expected = out_size + (weight.shape[ndim], x.shape[-1]) + kernel
    if weight.shape != expected:
        raise ValueError(f"locally_connected: expected weight shape {expected} (*out, Cout, Cin, *k). "
                         f"Received: {weight.shape}")
    windows = window_view(pad(x, pairs), kernel, stride, (1,) * ndim, out_size)
    count, cout, batch = prod(out_size), weight.shape[ndim], x.shape[0]
    patches = np.moveaxis(windows, 0, ndim).reshape(count, batch, -1)  # (P, N, K*Cin)
    order = tuple(range(ndim)) + tuple(range(ndim + 2, 2 * ndim + 2)) + (ndim + 1, ndim)
    matrix = weight.transpose(order).reshape(count, -1, cout)  # (P, K*Cin, Cout)
    out = np.matmul(patches, matrix).transpose(1, 0, 2).reshape((batch,) + out_size + (cout,))
    if bias is not None:
        out += np.moveaxis(as_float32(bias), 0, -1)
    return out
