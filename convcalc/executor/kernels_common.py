"""Shared pieces of the kernels: argument normalisation, padding and the one window primitive.

Layout: an activation is channels-last, `x` of shape (N, *spatial, C), float32, with 1, 2 or
3 spatial axes. Padding is a tuple of (before, after) pairs, one per spatial axis.

`window_view` is the only place that builds sliding windows; conv, locally-connected and the
pools all read their inputs through it (tinygrad's "one window primitive"):

    window_view(xp)[n, o_1..o_d, t_1..t_d, c] = xp[n, o_1*s_1 + t_1*d_1, ..., o_d*s_d + t_d*d_d, c]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import numpy as np
from numpy.lib.stride_tricks import as_strided

Padding = tuple[tuple[int, int], ...]

# PyTorch padding-mode names (conv `padding_mode` and F.pad `mode`) -> numpy.pad mode.
_NUMPY_PAD_MODE = {
    "constant": "constant", "zeros": "constant",
    "reflect": "reflect", "replicate": "edge", "circular": "wrap",
}


def as_float32(x) -> np.ndarray:
    """The array as float32 (no copy when it already is)."""
    return np.asarray(x, dtype=np.float32)


def spatial_tuple(value, ndim: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of `ndim` ints -> a tuple of `ndim` ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * ndim
    values = tuple(int(v) for v in value)
    if len(values) != ndim:
        raise ValueError(f"{name}: expected {ndim} values, one per spatial axis. Received: {value!r}")
    return values


def padding_pairs(padding, ndim: int) -> Padding:
    """((before, after), ...) per spatial axis; an int or a flat tuple means symmetric padding."""
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * ndim
    pairs = tuple(padding)
    if len(pairs) != ndim:
        raise ValueError(f"padding: expected {ndim} (before, after) pairs. Received: {padding!r}")
    return tuple((int(p), int(p)) if isinstance(p, (int, np.integer)) else (int(p[0]), int(p[1]))
                 for p in pairs)


def check_rank(x: np.ndarray, name: str) -> int:
    """Number of spatial axes of a channels-last activation (N, *spatial, C); must be 1 to 3."""
    if not 3 <= x.ndim <= 5:
        raise ValueError(f"{name}: expected a channels-last array (N, *spatial, C) with 1 to 3 "
                         f"spatial axes. Received shape {x.shape}")
    return x.ndim - 2


def pad(x: np.ndarray, padding, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """out[n, p_1+i_1, ..., c] = x[n, i_1, ..., c]; the border filled per `mode` (PyTorch F.pad).

    x (N, *spatial, C) -> (N, *(spatial_a + before_a + after_a), C). Modes: constant (with
    `value`), reflect (mirror without repeating the edge), replicate (repeat the edge),
    circular (wrap around); "zeros" is an alias of constant 0. Negative padding crops.
    """
    x = as_float32(x)
    pairs = padding_pairs(padding, check_rank(x, "pad"))
    if mode not in _NUMPY_PAD_MODE:
        raise ValueError(f"pad: unknown mode {mode!r}; expected one of {sorted(_NUMPY_PAD_MODE)}")
    if any(b < 0 or a < 0 for b, a in pairs):
        crop = tuple(slice(max(-b, 0), x.shape[1 + i] - max(-a, 0)) for i, (b, a) in enumerate(pairs))
        x = x[(slice(None),) + crop]
        pairs = tuple((max(b, 0), max(a, 0)) for b, a in pairs)
    if not any(b or a for b, a in pairs):
        return x
    if _NUMPY_PAD_MODE[mode] != "constant":
        return np.pad(x, ((0, 0),) + pairs + ((0, 0),), mode=_NUMPY_PAD_MODE[mode])
    shape = (x.shape[0],) + tuple(n + b + a for n, (b, a) in zip(x.shape[1:-1], pairs)) + (x.shape[-1],)
    out = np.empty(shape, dtype=np.float32)
    out.fill(0.0 if mode == "zeros" else value)
    out[(slice(None),) + tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pairs))] = x
    return out


def window_view(xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                dilation: Sequence[int], out_size: Sequence[int]) -> np.ndarray:
    """view[n, *o, *t, c] = xp[n, *(o*s + t*d), c]: (N, *out, *kernel, C), no copy.

    `xp` is the already padded input; it must hold (o-1)*s + d*(k-1) + 1 rows on each axis.
    """
    spatial_strides = xp.strides[1:-1]
    for axis, (o, k, s, d) in enumerate(zip(out_size, kernel, stride, dilation)):
        need = (o - 1) * s + d * (k - 1) + 1
        if need > xp.shape[1 + axis]:
            raise ValueError(f"window_view: axis {axis} needs {need} rows, has {xp.shape[1 + axis]}")
    shape = (xp.shape[0],) + tuple(out_size) + tuple(kernel) + (xp.shape[-1],)
    strides = ((xp.strides[0],) + tuple(st * s for st, s in zip(spatial_strides, stride))
               + tuple(st * d for st, d in zip(spatial_strides, dilation)) + (xp.strides[-1],))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def taps(window: np.ndarray, kernel: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(tap number, view (N, *out, C)) for each kernel offset of a `window_view`, row-major."""
    lead = (slice(None),) * (1 + len(kernel))
    for number, offset in enumerate(np.ndindex(*kernel)):
        yield number, window[lead + offset]


def strided_rows(length: int, start: int, stride: int) -> slice:
    """The slice start, start+s, ..., start+(length-1)*s."""
    return slice(start, start + (length - 1) * stride + 1, stride)
