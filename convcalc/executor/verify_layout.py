"""`--verify` references of the layout, slicing, reduction, matmul and stack kinds: one output
position at a time, in float64, by index arithmetic in PyTorch's order (N, C, *spatial),
written from the definitions and independent of the fast path (no reshape or transpose of
whole arrays). Python's own slicing, range(n)[start:end:step], is the oracle of a slice.
"""

from __future__ import annotations

import math

import numpy as np

from convcalc.executor.layout import to_channels_first
from convcalc.layers import activation, layout, reduce, slicing, tensor_ops


def torch_index(pos) -> tuple[int, ...]:
    """A channels-last array position -> its PyTorch (channels-first) index."""
    pos = tuple(pos)
    return pos if len(pos) <= 2 else (pos[0], pos[-1], *pos[1:-1])


def torch_shape(array_shape) -> tuple[int, ...]:
    """The per-sample PyTorch shape of a channels-last array shape."""
    return torch_index(array_shape)[1:]


def read(x, index) -> float:
    """The element of channels-last array x at PyTorch index `index`."""
    index = tuple(int(i) for i in index)
    return float(x[index if x.ndim <= 2 else (index[0], *index[2:], index[1])])


def _axis(dim: int, rank: int) -> int:
    """PyTorch dim -> index axis of the full (batch-first) tensor of `rank` axes."""
    return dim % rank


def slice_value(layer, inputs, refs, weights, shape, pos):
    """out[..., j, ...] = x[..., range(n)[start:end:step][j], ...]"""
    x, out = inputs[0], list(torch_index(pos))
    axis = _axis(layer.dim, len(out))
    n = torch_index(x.shape)[axis]
    out[axis] = range(n)[layer.start:layer.end:layer.step][out[axis]]
    return read(x, out)


def _part_range(source, n: int, index: int) -> range:
    """The indices of part `index` of a split or chunk on an axis of n."""
    if source.type == "chunk":
        size = -(-n // source.chunks)
        return range(n)[index * size:(index + 1) * size]
    sections = source.split_size_or_sections
    if isinstance(sections, int):
        return range(n)[index * sections:(index + 1) * sections]
    offset = sum(sections[:index])
    return range(n)[offset:offset + sections[index]]


def part_value(layer, inputs, refs, weights, shape, pos):
    x, out = inputs[0], list(torch_index(pos))
    axis = _axis(layer.source.dim, len(out))
    out[axis] = _part_range(layer.source, torch_index(x.shape)[axis], layer.index)[out[axis]]
    return read(x, out)


def same_value(layer, inputs, refs, weights, shape, pos):
    """split, chunk: the output is the input."""
    return float(inputs[0][pos])


def reshape_value(layer, inputs, refs, weights, shape, pos):
    """The same row-major (PyTorch order) offset within the sample."""
    x, out = inputs[0], torch_index(pos)
    offset = np.ravel_multi_index(out[1:], torch_shape(shape))
    return read(x, (out[0], *np.unravel_index(offset, torch_shape(x.shape))))


def permute_value(layer, inputs, refs, weights, shape, pos):
    """out[i_0, ..., i_k] = x[j] with j[dims[a]] = i_a"""
    out = torch_index(pos)
    rank = len(out)
    if isinstance(layer, layout.Transpose):
        dims = list(range(rank))
        a, b = layer.dim0 % rank, layer.dim1 % rank
        dims[a], dims[b] = dims[b], dims[a]
    else:
        dims = [d % rank for d in layer.dims]
    source = [0] * rank
    for a, d in enumerate(dims):
        source[d] = out[a]
    return read(inputs[0], source)


def pixel_shuffle_value(layer, inputs, refs, weights, shape, pos):
    """out[n, c, y, x] = in[n, c*r^2 + (y % r)*r + x % r, y // r, x // r]"""
    n, c, y, x = torch_index(pos)
    r = layer.upscale_factor
    return read(inputs[0], (n, c * r * r + (y % r) * r + x % r, y // r, x // r))


def pixel_unshuffle_value(layer, inputs, refs, weights, shape, pos):
    """out[n, c*r^2 + i*r + j, h, w] = in[n, c, h*r + i, w*r + j]"""
    n, channel, h, w = torch_index(pos)
    r = layer.downscale_factor
    c, rest = divmod(channel, r * r)
    i, j = divmod(rest, r)
    return read(inputs[0], (n, c, h * r + i, w * r + j))


def reduce_value(layer, inputs, refs, weights, shape, pos):
    """The reduction, in float64, over every input index that agrees with `pos` on the axes
    that are kept."""
    x = inputs[0]
    full = torch_index(x.shape)
    reduced = (set(range(1, len(full))) if layer.dim is None else
               {d % len(full) for d in (layer.dim if isinstance(layer.dim, list) else [layer.dim])})
    out = list(torch_index(pos))
    kept = [a for a in range(len(full)) if a not in reduced]
    if layer.keepdim:
        fixed = {a: out[a] for a in kept}
    else:
        fixed = dict(zip(kept, out)) if len(kept) > 1 else {0: out[0]}
    first = to_channels_first(x)  # a view: PyTorch's axis order
    values = first[tuple(fixed.get(a, slice(None)) for a in range(len(full)))]
    values = values.astype(np.float64).ravel().tolist()
    fn = {"sum": math.fsum, "mean": lambda v: math.fsum(v) / len(v), "max": max, "min": min}
    return fn[layer.reduce](values)


def matmul_value(layer, inputs, refs, weights, shape, pos):
    """out[n, ..., m, p] = sum_k a[n, ..., m, k] * b[n, ..., k, p], size-1 leading axes of
    a and b broadcast (aligned at the end)."""
    a, b = inputs
    out = torch_index(pos)
    total = 0.0
    lead = out[1:-2]
    sa, sb = torch_shape(a.shape), torch_shape(b.shape)
    ia = [0 if n == 1 else i for i, n in zip(lead[len(lead) - len(sa) + 2:], sa[:-2])]
    ib = [0 if n == 1 else i for i, n in zip(lead[len(lead) - len(sb) + 2:], sb[:-2])]
    for k in range(sa[-1]):
        total += read(a, (out[0], *ia, out[-2], k)) * read(b, (out[0], *ib, k, out[-1]))
    return total


def stack_value(layer, inputs, refs, weights, shape, pos):
    """out[..., i, ...] (the new axis at dim) = inputs[i][..., ...]"""
    out = list(torch_index(pos))
    axis = layer.dim % len(out)
    which = out.pop(axis)
    return read(inputs[which], out)


def log_softmax_value(layer, inputs, refs, weights, shape, pos):
    """x - max - log(sum(exp(line - max))) over the line along dim"""
    x, index = inputs[0], list(torch_index(pos))
    axis = layer.dim % len(index)
    line = []
    for i in range(torch_index(x.shape)[axis]):
        index[axis] = i
        line.append(read(x, index))
    top = max(line)
    return float(x[pos]) - top - math.log(math.fsum(math.exp(v - top) for v in line))


REFERENCES = {
    slicing.Slice: slice_value, slicing.SplitPart: part_value, slicing._Parts: same_value,
    layout.Reshape: reshape_value, layout.Unflatten: reshape_value,
    layout.Permute: permute_value, layout.PixelShuffle: pixel_shuffle_value,
    layout.PixelUnshuffle: pixel_unshuffle_value, reduce._Reduce: reduce_value,
    tensor_ops.Matmul: matmul_value, tensor_ops.Stack: stack_value,
    activation.LogSoftmax: log_softmax_value,
}
