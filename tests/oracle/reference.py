"""Loop references for the convcalc executor: an independent test oracle.

Everything here is written straight from the textbook definitions, in plain Python
loops over output positions, in CHANNELS-FIRST layout: x has shape (N, C, *spatial),
with 1, 2 or 3 spatial axes wherever PyTorch supports them.  Nothing is imported from
`convcalc`, and there are no stride tricks, no im2col, no BLAS-shaped reshapes: the
only NumPy used inside the loops is plain slicing of one window and `np.sum` of an
element-wise product, i.e. the "V[d, y, x] = sum(X[window] * W_d) + b_d" of the
definition.  Slow is fine; use tiny inputs.

Semantics are PyTorch's (torch.nn.functional) unless a docstring says otherwise.

Shared argument conventions
---------------------------
* `stride`, `dilation`, `kernel_size`, `output_padding`: an int (same on every spatial
  axis) or a tuple with one int per spatial axis.
* `padding`: an int p (p before and p after on every axis), a tuple of ints (one
  symmetric p per axis), or a tuple of (before, after) pairs, one pair per spatial axis,
  in axis order (first pair = first spatial axis).  This is NOT torch.F.pad's reversed
  flat order.  `conv` also accepts "valid" and "same".
* Spatial indices are 0-based; a padded coordinate t is "inside the input" when
  0 <= t < i; padding-before shifts window starts by -p_b.

Notation in the docstrings: i input size, k kernel, s stride, p_b/p_a padding before/
after, d dilation, k_eff = d*(k-1) + 1, o output size; o and kk run over all output and
kernel positions (multi-indices; arithmetic on them is per axis).
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "conv_transpose_output_size",
    "pad",
    "conv",
    "conv_transpose",
    "locally_connected",
    "max_pool",
    "avg_pool",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "max_unpool",
    "upsample",
    "batch_norm",
    "group_norm",
    "local_response_norm",
    "linear",
    "softmax",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "hardswish",
    "hardsigmoid",
    "sigmoid",
    "tanh",
    "activation",
    "ACTIVATIONS",
    "center_crop",
    "channel_shuffle",
    "coord_channels",
    "add",
    "mul",
    "concat",
]


# --------------------------------------------------------------------------- helpers


def _as_array(x):
    return np.asarray(x, dtype=np.float64)


def _per_axis(value, n, name):
    """An int -> (value,)*n; a sequence of n ints -> tuple."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} needs {n} values, got {value}")
    return value


def _pairs(padding, n):
    """int p / n ints / n (before, after) pairs -> tuple of n (before, after) pairs."""
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * n
    padding = list(padding)
    if len(padding) != n:
        raise ValueError(f"padding needs {n} entries, got {padding}")
    pairs = []
    for p in padding:
        if isinstance(p, (int, np.integer)):
            pairs.append((int(p), int(p)))
        else:
            b, a = p
            pairs.append((int(b), int(a)))
    return tuple(pairs)


def _positions(shape):
    """All multi-indices of an array of this shape, in row-major (C) order."""
    return product(*(range(int(s)) for s in shape))


def _window(starts, kernel, dilation):
    """Slices picking a (dilated) window: on each axis start, start+d, ..., start+d*(k-1)."""
    return tuple(slice(t, t + d * (k - 1) + 1, d) for t, k, d in zip(starts, kernel, dilation))


def _flat_index(pos, shape):
    """Row-major flat index of multi-index `pos` in an array of `shape`."""
    flat = 0
    for p, s in zip(pos, shape):
        flat = flat * s + p
    return flat


def _unflat_index(flat, shape):
    """Inverse of _flat_index."""
    pos = []
    for s in reversed(shape):
        pos.append(flat % s)
        flat //= s
    return tuple(reversed(pos))


def _source_index(t, size, mode):
    """Which input index a padded coordinate t reads, or None for a constant pad value.

    constant: None outside [0, size).  reflect: mirror about the edge pixels without
    repeating them (-1 -> 1, size -> size-2).  replicate: clamp to the edge pixel.
    circular: wrap around (t mod size).
    """
    if 0 <= t < size:
        return t
    if mode == "constant":
        return None
    if mode == "reflect":
        r = -t if t < 0 else 2 * (size - 1) - t
        if not 0 <= r < size:
            raise ValueError("reflect padding must be smaller than the input size")
        return r
    if mode == "replicate":
        return 0 if t < 0 else size - 1
    if mode == "circular":
        if t < -size or t >= 2 * size:
            raise ValueError("circular padding must not exceed the input size")
        return t % size
    raise ValueError(f"unknown padding mode {mode!r}")


# --------------------------------------------------------------------------- sizes


def conv_output_size(i, k, s=1, pb=0, pa=0, d=1):
    """Convolution output size: o = floor((i + p_b + p_a - d*(k-1) - 1) / s) + 1.

    (Dumoulin & Visin relationship 15 with asymmetric padding.)  Returns the formula's
    value even when it is < 1 (the references raise on that).
    """
    k_eff = d * (k - 1) + 1
    return (i + pb + pa - k_eff) // s + 1


def pool_output_size(i, k, s, pb=0, pa=0, d=1, ceil_mode=False):
    """PyTorch pooling output size.

    floor mode: o = floor((i + p_b + p_a - k_eff)/s) + 1 (same as conv).
    ceil mode:  o = ceil((i + p_b + p_a - k_eff)/s) + 1, then if (o-1)*s >= i + p_b
                (the last window would start in the right padding) o -= 1.
    """
    span = i + pb + pa - (d * (k - 1) + 1)
    if not ceil_mode:
        return span // s + 1
    o = -((-span) // s) + 1
    if (o - 1) * s >= i + pb:
        o -= 1
    return o


def conv_transpose_output_size(i, k, s=1, pb=0, pa=0, d=1, output_padding=0):
    """Transposed conv output size: o = (i-1)*s - p_b - p_a + d*(k-1) + output_padding + 1."""
    return (i - 1) * s - pb - pa + d * (k - 1) + output_padding + 1


# --------------------------------------------------------------------------- padding


def pad(x, padding, mode="constant", value=0.0):
    """Pad the trailing len(padding) axes of x.

    padding: a tuple of (before, after) pairs, first pair for the first padded axis (the
    axes are the LAST len(padding) axes of x, in order).  Output size per padded axis is
    i + before + after, and out[..., *t] = x[..., *src(t - before)] where src is
    `_source_index` for the mode (constant|reflect|replicate|circular); constant writes
    `value`.  Negative amounts crop (constant mode only, as in torch).
    """
    x = _as_array(x)
    pairs = _pairs(padding, len(padding))
    lead = x.ndim - len(pairs)
    in_sp = x.shape[lead:]
    out_sp = tuple(i + b + a for i, (b, a) in zip(in_sp, pairs))
    out = np.empty(x.shape[:lead] + out_sp)
    for t in _positions(out_sp):
        src = [_source_index(tj - b, i, mode) for tj, (b, a), i in zip(t, pairs, in_sp)]
        if any(s is None for s in src):
            out[(Ellipsis, *t)] = value
        else:
            out[(Ellipsis, *t)] = x[(Ellipsis, *src)]
    return out


# --------------------------------------------------------------------------- convolution


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Grouped, strided, dilated, padded N-d cross-correlation (torch.nn.functional.convNd).

    x (N, Cin, *i), weight (Cout, Cin/g, *k), bias (Cout,) or None.
    Xp = pad(x, padding, padding_mode)  (zeros|reflect|replicate|circular)
    With Cin_g = Cin/g, Cout_g = Cout/g and g(co) = co // Cout_g:
        V[n, co, *o] = b[co] + sum(Xp[n, g(co)*Cin_g : (g(co)+1)*Cin_g, *(o*s + kk*d)] * W[co])
    summed over the group's input channels and every kernel position kk.
    o per axis = floor((i + p_b + p_a - k_eff)/s) + 1.
    padding="same" (stride 1): total d*(k-1) per axis, floor half before, the rest after.
    padding="valid": no padding.  Depthwise is groups == Cin.
    """
    x = _as_array(x)
    w = _as_array(weight)
    nsp = x.ndim - 2
    kernel = w.shape[2:]
    if len(kernel) != nsp:
        raise ValueError("weight and input disagree on the number of spatial axes")
    stride = _per_axis(stride, nsp, "stride")
    dilation = _per_axis(dilation, nsp, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pairs = ((0, 0),) * nsp
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' needs stride 1")
            tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
            pairs = tuple((t // 2, t - t // 2) for t in tot)
        else:
            raise ValueError(f"unknown padding {padding!r}")
    else:
        pairs = _pairs(padding, nsp)
    mode = {"zeros": "constant"}.get(padding_mode, padding_mode)

    n_batch, cin = x.shape[:2]
    cout = w.shape[0]
    if cin % groups or cout % groups:
        raise ValueError("channels must be divisible by groups")
    cin_g, cout_g = cin // groups, cout // groups
    if w.shape[1] != cin_g:
        raise ValueError(f"weight has {w.shape[1]} input channels, expected {cin_g}")

    out_sp = tuple(
        conv_output_size(i, k, s, b, a, d)
        for i, k, s, (b, a), d in zip(x.shape[2:], kernel, stride, pairs, dilation)
    )
    if any(o < 1 for o in out_sp):
        raise ValueError(f"output size {out_sp} is empty")

    xp = pad(x, pairs, mode)
    out = np.zeros((n_batch, cout) + out_sp)
    for n in range(n_batch):
        for co in range(cout):
            g = co // cout_g
            for o in _positions(out_sp):
                starts = [oj * s for oj, s in zip(o, stride)]
                window = xp[(n, slice(g * cin_g, (g + 1) * cin_g)) + _window(starts, kernel, dilation)]
                value = np.sum(window * w[co])
                if bias is not None:
                    value += bias[co]
                out[(n, co) + o] = value
    return out


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution (torch.nn.functional.conv_transposeNd) by scatter-add.

    x (N, Cin, *i), weight (Cin, Cout/g, *k), bias (Cout,) or None.
    Each input pixel paints its kernel, scaled by its value, onto the full canvas:
        Full[n, g(ci)*Cout_g + c, *(q*s + kk*d)] += X[n, ci, *q] * W[ci, c, *kk]
    for every input position q, kernel position kk and c < Cout_g, with g(ci) = ci // Cin_g.
    The canvas has (i-1)*s + d*(k-1) + 1 + output_padding cells per axis (the
    output_padding cells at the end receive no paint).  The result is the canvas with
    p_b cells cut from the start and p_a from the end, plus bias:
        o = (i-1)*s - p_b - p_a + d*(k-1) + output_padding + 1.
    torch only supports symmetric padding and output_padding < max(s, d) (enforced here).
    """
    x = _as_array(x)
    w = _as_array(weight)
    nsp = x.ndim - 2
    kernel = w.shape[2:]
    stride = _per_axis(stride, nsp, "stride")
    dilation = _per_axis(dilation, nsp, "dilation")
    out_pad = _per_axis(output_padding, nsp, "output_padding")
    pairs = _pairs(padding, nsp)
    for op, s, d in zip(out_pad, stride, dilation):
        if not 0 <= op < max(s, d):
            raise ValueError("output_padding must be smaller than stride or dilation")

    n_batch, cin = x.shape[:2]
    if w.shape[0] != cin or cin % groups:
        raise ValueError("weight must be (Cin, Cout/groups, *k) with Cin divisible by groups")
    cin_g = cin // groups
    cout_g = w.shape[1]
    cout = cout_g * groups

    in_sp = x.shape[2:]
    canvas = tuple(
        (i - 1) * s + d * (k - 1) + 1 + op
        for i, s, d, k, op in zip(in_sp, stride, dilation, kernel, out_pad)
    )
    full = np.zeros((n_batch, cout) + canvas)
    for n in range(n_batch):
        for ci in range(cin):
            g = ci // cin_g
            for q in _positions(in_sp):
                starts = [qj * s for qj, s in zip(q, stride)]
                target = (n, slice(g * cout_g, (g + 1) * cout_g)) + _window(starts, kernel, dilation)
                full[target] += x[(n, ci) + q] * w[ci]
    crop = tuple(slice(b, L - a) for (b, a), L in zip(pairs, canvas))
    out = full[(slice(None), slice(None)) + crop].copy()
    if any(s < 1 for s in out.shape[2:]):
        raise ValueError("output is empty")
    if bias is not None:
        for co in range(cout):
            out[:, co] += bias[co]
    return out


def locally_connected(x, weight, bias=None, stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """Locally connected (unshared) layer: a convolution whose weights differ per output pixel.

    x (N, Cin, *i), weight (*o, Cout, Cin, *k), bias (Cout, *o) or None.
        V[n, co, *o] = b[co, *o] + sum(Xp[n, :, *(o*s + kk*d)] * W[*o, co])
    with Xp = pad(x, padding, padding_mode) and o sized as in `conv`.
    Parameters: prod(o) * Cout * (Cin * prod(k)) weights + Cout * prod(o) biases.
    """
    x = _as_array(x)
    w = _as_array(weight)
    nsp = x.ndim - 2
    stride = _per_axis(stride, nsp, "stride")
    dilation = _per_axis(dilation, nsp, "dilation")
    pairs = _pairs(padding, nsp)
    out_sp = tuple(w.shape[:nsp])
    cout, cin = w.shape[nsp], w.shape[nsp + 1]
    kernel = w.shape[nsp + 2:]
    if cin != x.shape[1] or len(kernel) != nsp:
        raise ValueError("weight must be (*out_spatial, Cout, Cin, *k)")
    expect = tuple(
        conv_output_size(i, k, s, b, a, d)
        for i, k, s, (b, a), d in zip(x.shape[2:], kernel, stride, pairs, dilation)
    )
    if expect != out_sp:
        raise ValueError(f"weight is laid out for output {out_sp}, the input gives {expect}")
    mode = {"zeros": "constant"}.get(padding_mode, padding_mode)
    xp = pad(x, pairs, mode)
    out = np.zeros((x.shape[0], cout) + out_sp)
    for n in range(x.shape[0]):
        for o in _positions(out_sp):
            starts = [oj * s for oj, s in zip(o, stride)]
            window = xp[(n, slice(None)) + _window(starts, kernel, dilation)]
            for co in range(cout):
                value = np.sum(window * w[o + (co,)])
                if bias is not None:
                    value += bias[(co,) + o]
                out[(n, co) + o] = value
    return out


# --------------------------------------------------------------------------- pooling


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    nsp = x.ndim - 2
    kernel = _per_axis(kernel_size, nsp, "kernel_size")
    stride = kernel if stride is None else _per_axis(stride, nsp, "stride")
    if len(stride) == 0:  # torch: stride=[] means stride = kernel
        stride = kernel
    dilation = _per_axis(dilation, nsp, "dilation")
    pairs = _pairs(padding, nsp)
    out_sp = tuple(
        pool_output_size(i, k, s, b, a, d, ceil_mode)
        for i, k, s, (b, a), d in zip(x.shape[2:], kernel, stride, pairs, dilation)
    )
    if any(o < 1 for o in out_sp):
        raise ValueError(f"output size {out_sp} is empty")
    return kernel, stride, dilation, pairs, out_sp


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling (torch.nn.functional.max_poolNd), padding counts as -inf.

    V[n, c, *o] = max over kk of X[n, c, *t] with t = o*s - p_b + kk*d, over the t
    inside the input (0 <= t < i).  stride defaults to kernel_size; sizes from
    `pool_output_size` (ceil_mode: last window must start inside input or left padding).
    Scan order is row-major over kk; a later element wins only if strictly greater or NaN,
    so ties keep the first element and NaN propagates.  Indices (if asked) are row-major
    flat indices into the input's spatial plane, as torch returns them (int64).
    A window lying wholly in padding (possible with dilation) gives -inf, and its index is
    torch's starting guess: per axis the first tap at or after 0 (which may lie past the
    input's end), flattened.
    """
    x = _as_array(x)
    kernel, stride, dilation, pairs, out_sp = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode
    )
    in_sp = x.shape[2:]
    out = np.empty(x.shape[:2] + out_sp)
    idx = np.empty(x.shape[:2] + out_sp, dtype=np.int64)
    for n, c in _positions(x.shape[:2]):
        for o in _positions(out_sp):
            first_taps = []
            for oj, s, (b, a), d in zip(o, stride, pairs, dilation):
                t0 = oj * s - b
                while t0 < 0:
                    t0 += d
                first_taps.append(t0)
            best, best_i = -math.inf, _flat_index(first_taps, in_sp)
            for kk in _positions(kernel):
                t = tuple(oj * s - b + kj * d for oj, s, (b, a), kj, d in zip(o, stride, pairs, kk, dilation))
                if not all(0 <= tj < i for tj, i in zip(t, in_sp)):
                    continue
                v = x[(n, c) + t]
                if v > best or math.isnan(v):
                    best, best_i = v, _flat_index(t, in_sp)
            out[(n, c) + o] = best
            idx[(n, c) + o] = best_i
    return (out, idx) if return_indices else out


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Average pooling (torch.nn.functional.avg_poolNd), padding counts as 0.

    For output o, per axis the window is [start, start + k) with start = o*s - p_b.
        V[n, c, *o] = sum of X[n, c, *t] over t in the window and inside [0, i)  / divisor
    divisor = divisor_override if given; else, with count_include_pad, the number of
    window cells inside the PADDED input, i.e. prod over axes of
    (min(start + k, i + p_a) - start) (a ceil_mode window running past the right padding
    does not count the cells beyond it); without count_include_pad, the number of cells
    inside the real input.  No dilation (torch has none for avg pooling).
    """
    x = _as_array(x)
    kernel, stride, dilation, pairs, out_sp = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    in_sp = x.shape[2:]
    out = np.empty(x.shape[:2] + out_sp)
    for n, c in _positions(x.shape[:2]):
        for o in _positions(out_sp):
            starts = [oj * s - b for oj, s, (b, a) in zip(o, stride, pairs)]
            padded_count = 1
            for st, k, i, (b, a) in zip(starts, kernel, in_sp, pairs):
                padded_count *= min(st + k, i + a) - st
            total, real_count = 0.0, 0
            for kk in _positions(kernel):
                t = tuple(st + kj for st, kj in zip(starts, kk))
                if all(0 <= tj < i for tj, i in zip(t, in_sp)):
                    total += x[(n, c) + t]
                    real_count += 1
            if divisor_override:
                divisor = divisor_override
            elif count_include_pad:
                divisor = padded_count
            else:
                divisor = real_count
            out[(n, c) + o] = total / divisor
    return out


def _adaptive_bounds(o, in_size, out_size):
    """start = floor(o*I/O), end = ceil((o+1)*I/O)."""
    start = (o * in_size) // out_size
    end = -((-(o + 1) * in_size) // out_size)
    return start, end


def _adaptive_sizes(x, output_size):
    nsp = x.ndim - 2
    if isinstance(output_size, (int, np.integer)):
        output_size = (int(output_size),) * nsp
    output_size = tuple(i if o is None else int(o) for o, i in zip(output_size, x.shape[2:]))
    if len(output_size) != nsp:
        raise ValueError("output_size needs one entry per spatial axis")
    return output_size


def adaptive_avg_pool(x, output_size):
    """Adaptive average pooling (torch adaptive_avg_poolNd).

    Per axis, output cell o averages input cells [floor(o*I/O), ceil((o+1)*I/O)).
    output_size: int or one int (or None = keep) per spatial axis.
    """
    x = _as_array(x)
    out_sp = _adaptive_sizes(x, output_size)
    in_sp = x.shape[2:]
    out = np.empty(x.shape[:2] + out_sp)
    for n, c in _positions(x.shape[:2]):
        for o in _positions(out_sp):
            bounds = [_adaptive_bounds(oj, i, O) for oj, i, O in zip(o, in_sp, out_sp)]
            cells = list(product(*(range(s, e) for s, e in bounds)))
            out[(n, c) + o] = sum(x[(n, c) + t] for t in cells) / len(cells)
    return out


def adaptive_max_pool(x, output_size, return_indices=False):
    """Adaptive max pooling (torch adaptive_max_poolNd).

    Per axis, output cell o takes the max over input cells [floor(o*I/O), ceil((o+1)*I/O)),
    row-major scan, first maximum wins ties, NaN propagates; indices are flat spatial.
    """
    x = _as_array(x)
    out_sp = _adaptive_sizes(x, output_size)
    in_sp = x.shape[2:]
    out = np.empty(x.shape[:2] + out_sp)
    idx = np.empty(x.shape[:2] + out_sp, dtype=np.int64)
    for n, c in _positions(x.shape[:2]):
        for o in _positions(out_sp):
            bounds = [_adaptive_bounds(oj, i, O) for oj, i, O in zip(o, in_sp, out_sp)]
            best, best_i = -math.inf, -1
            for t in product(*(range(s, e) for s, e in bounds)):
                v = x[(n, c) + t]
                if best_i == -1 or v > best or math.isnan(v):
                    best, best_i = v, _flat_index(t, in_sp)
            out[(n, c) + o] = best
            idx[(n, c) + o] = best_i
    return (out, idx) if return_indices else out


def max_unpool(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Max unpooling (torch max_unpoolNd): scatter each value to its flat spatial index.

    out = zeros(N, C, *O); out[n, c, *unflatten(indices[n, c, *q])] = x[n, c, *q].
    Default O per axis = (i-1)*s - p_b - p_a + k; output_size (spatial sizes, or the full
    shape) overrides it.  stride defaults to kernel_size.
    """
    x = _as_array(x)
    indices = np.asarray(indices)
    nsp = x.ndim - 2
    kernel = _per_axis(kernel_size, nsp, "kernel_size")
    stride = kernel if stride is None else _per_axis(stride, nsp, "stride")
    pairs = _pairs(padding, nsp)
    if output_size is None:
        out_sp = tuple((i - 1) * s - b - a + k for i, s, (b, a), k in zip(x.shape[2:], stride, pairs, kernel))
    else:
        out_sp = tuple(int(v) for v in output_size)[-nsp:]
    out = np.zeros(x.shape[:2] + out_sp)
    plane = math.prod(out_sp)
    for n, c in _positions(x.shape[:2]):
        for q in _positions(x.shape[2:]):
            flat = int(indices[(n, c) + q])
            if not 0 <= flat < plane:
                raise ValueError(f"index {flat} outside the output plane of {plane}")
            out[(n, c) + _unflat_index(flat, out_sp)] = x[(n, c) + q]
    return out


# --------------------------------------------------------------------------- upsampling


def _axis_sources(in_size, out_size, scale_factor, mode, align_corners):
    """For each destination index, a list of (source index, weight) pairs on one axis.

    ratio = 1/scale_factor when a scale factor is given (torch uses it as is, without
    recomputing in/out), otherwise in/out.
    Linear modes: an axis whose output size equals its input size is copied (src = dst),
    whatever the scale factor (torch does this in every linear kernel; with size= or
    align_corners=True the formulas give the identity anyway).
    nearest:        src = min(floor(dst * ratio), in-1)
    nearest-exact:  src = min(floor((dst + 0.5) * ratio), in-1)
    linear, align_corners=False: src = max((dst + 0.5) * ratio - 0.5, 0)
    linear, align_corners=True:  src = dst * (in-1)/(out-1)   (0 if out == 1)
    linear weights: i0 = floor(src), i1 = min(i0+1, in-1), l1 = src - i0, l0 = 1 - l1.
    """
    result = []
    for dst in range(out_size):
        if mode in ("nearest", "nearest-exact"):
            shift = 0.0 if mode == "nearest" else 0.5
            if scale_factor is None:
                # exact rational floor((dst + shift) * in / out) = floor((2 dst + 2 shift) in / (2 out))
                src = ((2 * dst + int(2 * shift)) * in_size) // (2 * out_size)
            else:
                src = math.floor((dst + shift) * (1.0 / scale_factor))
            result.append([(min(src, in_size - 1), 1.0)])
        else:
            if out_size == in_size:
                src = float(dst)
            elif align_corners:
                src = dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
            else:
                ratio = in_size / out_size if scale_factor is None else 1.0 / scale_factor
                src = max((dst + 0.5) * ratio - 0.5, 0.0)
            i0 = math.floor(src)
            i1 = min(i0 + 1, in_size - 1)
            l1 = src - i0
            result.append([(i0, 1.0 - l1), (i1, l1)])
    return result


def upsample(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resampling (torch.nn.functional.interpolate) for nearest, nearest-exact and (bi/tri)linear.

    Output size per axis: `size`, or floor(i * scale_factor).  The operator is separable:
        V[n, c, *o] = sum over one source per axis (nearest) or the 2 neighbours per axis
                      (linear) of prod(axis weights) * X[n, c, *src]
    with the per-axis source rules in `_axis_sources`.  mode "linear"/"bilinear"/
    "trilinear" are the same rule (torch insists on the name matching 1/2/3 axes; so do we).
    align_corners defaults to False for the linear modes, must be None for nearest.
    Known divergence: torch 2.13's 2-D nearest kernel alone copies an axis with out == in,
    and uses dst // 2 when out == 2*in, even for a non-integer scale_factor; this follows
    floor(dst / scale_factor) like torch's 1-D and 3-D kernels (same result with size=).
    """
    x = _as_array(x)
    nsp = x.ndim - 2
    linear_names = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in linear_names:
        if linear_names[mode] != nsp:
            raise ValueError(f"mode {mode!r} needs {linear_names[mode]} spatial axes")
        align_corners = bool(align_corners)
    elif mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners only applies to the linear modes")
    else:
        raise ValueError(f"unsupported mode {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if size is not None:
        out_sp = _per_axis(size, nsp, "size")
        factors = (None,) * nsp
    else:
        factors = (
            (float(scale_factor),) * nsp
            if isinstance(scale_factor, (int, float))
            else tuple(float(f) for f in scale_factor)
        )
        out_sp = tuple(math.floor(i * f) for i, f in zip(x.shape[2:], factors))
    sources = [
        _axis_sources(i, o, f, mode, align_corners) for i, o, f in zip(x.shape[2:], out_sp, factors)
    ]
    out = np.zeros(x.shape[:2] + out_sp)
    for o in _positions(out_sp):
        value = np.zeros(x.shape[:2])
        for corner in product(*(sources[a][o[a]] for a in range(nsp))):
            weight = math.prod(wt for _, wt in corner)
            src = tuple(s for s, _ in corner)
            value = value + weight * x[(slice(None), slice(None)) + src]
        out[(slice(None), slice(None)) + o] = value
    return out


# --------------------------------------------------------------------------- normalisation


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """Inference batch norm: y[n, c, ...] = (x - mean[c]) / sqrt(var[c] + eps) * w[c] + b[c]."""
    x = _as_array(x)
    out = np.empty_like(x)
    for pos in _positions(x.shape):
        c = pos[1]
        scale = 1.0 if weight is None else float(weight[c])
        shift = 0.0 if bias is None else float(bias[c])
        denom = math.sqrt(float(running_var[c]) + eps)
        out[pos] = (float(x[pos]) - float(running_mean[c])) / denom * scale + shift
    return out


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm: per sample n and group of C/G consecutive channels,
    mean = sum(values)/count, var = sum((v - mean)^2)/count (biased) over the group's
    channels and all spatial cells; y = (x - mean)/sqrt(var + eps) * w[c] + b[c].
    """
    x = _as_array(x)
    n_batch, channels = x.shape[:2]
    if channels % num_groups:
        raise ValueError("channels must be divisible by num_groups")
    per = channels // num_groups
    out = np.empty_like(x)
    for n in range(n_batch):
        for g in range(num_groups):
            values = [float(v) for c in range(g * per, (g + 1) * per) for v in x[n, c].ravel()]
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / len(values)
            denom = math.sqrt(var + eps)
            for c in range(g * per, (g + 1) * per):
                scale = 1.0 if weight is None else float(weight[c])
                shift = 0.0 if bias is None else float(bias[c])
                out[n, c] = (x[n, c] - mean) / denom * scale + shift
    return out


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response norm across channels, PyTorch's definition:
        b[n, c] = a[n, c] / (k + alpha/size * sum_{c'} a[n, c']^2) ** beta
    with c' running over [c - size//2, c + (size-1)//2] intersected with [0, C)
    (the divisor is always `size`, even at the channel edges).
    """
    x = _as_array(x)
    channels = x.shape[1]
    out = np.empty_like(x)
    for pos in _positions(x.shape):
        n, c, sp = pos[0], pos[1], pos[2:]
        lo, hi = max(c - size // 2, 0), min(c + (size - 1) // 2, channels - 1)
        sq = sum(float(x[(n, cc) + sp]) ** 2 for cc in range(lo, hi + 1))
        out[pos] = x[pos] / (k + alpha / size * sq) ** beta
    return out


# --------------------------------------------------------------------------- dense


def linear(x, weight, bias=None):
    """y[..., o] = sum_i x[..., i] * W[o, i] + b[o]; weight (out_features, in_features)."""
    x = _as_array(x)
    w = _as_array(weight)
    out = np.empty(x.shape[:-1] + (w.shape[0],))
    for lead in _positions(x.shape[:-1]):
        for o in range(w.shape[0]):
            total = sum(float(x[lead + (i,)]) * float(w[o, i]) for i in range(w.shape[1]))
            out[lead + (o,)] = total + (0.0 if bias is None else float(bias[o]))
    return out


def softmax(x, axis=1):
    """softmax along `axis`: exp(x_j - m) / sum_j exp(x_j - m), m = max_j x_j."""
    x = np.moveaxis(_as_array(x), axis, -1)
    out = np.empty_like(x)
    for lead in _positions(x.shape[:-1]):
        row = [float(v) for v in x[lead]]
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = sum(e)
        out[lead] = [v / s for v in e]
    return np.moveaxis(out, -1, axis)


# --------------------------------------------------------------------------- activations


def _elementwise(f, x):
    x = _as_array(x)
    out = np.empty_like(x)
    for pos in _positions(x.shape):
        out[pos] = f(float(x[pos]))
    return out


def _sigmoid1(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def relu(x):
    """max(x, 0)"""
    return _elementwise(lambda v: v if v > 0 else 0.0, x)


def relu6(x):
    """min(max(x, 0), 6)"""
    return _elementwise(lambda v: min(max(v, 0.0), 6.0), x)


def leaky_relu(x, negative_slope=0.01):
    """x if x >= 0 else negative_slope * x"""
    return _elementwise(lambda v: v if v >= 0 else negative_slope * v, x)


def elu(x, alpha=1.0):
    """x if x > 0 else alpha * (exp(x) - 1)   (computed with expm1)"""
    return _elementwise(lambda v: v if v > 0 else alpha * math.expm1(v), x)


def gelu(x, approximate="none"):
    """exact: x/2 * (1 + erf(x/sqrt(2)));
    "tanh": x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))"""
    if approximate == "none":
        return _elementwise(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))), x)
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        return _elementwise(lambda v: 0.5 * v * (1.0 + math.tanh(c * (v + 0.044715 * v**3))), x)
    raise ValueError(f"unknown approximate {approximate!r}")


def silu(x):
    """x * sigmoid(x)"""
    return _elementwise(lambda v: v * _sigmoid1(v), x)


def hardswish(x):
    """x * min(max(x + 3, 0), 6) / 6"""
    return _elementwise(lambda v: v * min(max(v + 3.0, 0.0), 6.0) / 6.0, x)


def hardsigmoid(x):
    """min(max(x + 3, 0), 6) / 6"""
    return _elementwise(lambda v: min(max(v + 3.0, 0.0), 6.0) / 6.0, x)


def sigmoid(x):
    """1 / (1 + exp(-x))  (evaluated as e^x/(1+e^x) for x < 0, to avoid overflow)"""
    return _elementwise(_sigmoid1, x)


def tanh(x):
    """tanh(x)"""
    return _elementwise(math.tanh, x)


ACTIVATIONS = {
    "relu": relu,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "gelu": gelu,
    "gelu_tanh": lambda x: gelu(x, approximate="tanh"),
    "silu": silu,
    "swish": silu,
    "hardswish": hardswish,
    "hardsigmoid": hardsigmoid,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "identity": lambda x: _as_array(x).copy(),
    "linear": lambda x: _as_array(x).copy(),
}


def activation(x, name, **kwargs):
    """Apply the activation called `name` (a key of ACTIVATIONS), passing kwargs on."""
    return ACTIVATIONS[name](x, **kwargs)


# --------------------------------------------------------------------------- structural


def center_crop(x, size):
    """Centre crop of the trailing spatial axes (x is (N, C, *spatial)).

    Per axis, keep [start, start + o) with start = floor((i - o)/2): when i - o is odd the
    extra cell is dropped at the END (after/right/bottom).  size: int or one per axis.
    """
    x = _as_array(x)
    nsp = x.ndim - 2
    out_sp = _per_axis(size, nsp, "size")
    starts = []
    for i, o in zip(x.shape[2:], out_sp):
        if o > i:
            raise ValueError("crop larger than the input")
        starts.append((i - o) // 2)
    out = np.empty(x.shape[:2] + out_sp)
    for o in _positions(out_sp):
        out[(Ellipsis,) + o] = x[(Ellipsis,) + tuple(s + oj for s, oj in zip(starts, o))]
    return out


def channel_shuffle(x, groups):
    """ShuffleNet channel shuffle (torch channel_shuffle): view channels as a (g, C/g)
    grid and read it column-major: out[:, j*g + i] = x[:, i*(C/g) + j]."""
    x = _as_array(x)
    channels = x.shape[1]
    if channels % groups:
        raise ValueError("channels must be divisible by groups")
    per = channels // groups
    out = np.empty_like(x)
    for i in range(groups):
        for j in range(per):
            out[:, j * groups + i] = x[:, i * per + j]
    return out


def coord_channels(x, with_r=False):
    """CoordConv: append one channel per spatial axis (in spatial order) holding that axis'
    coordinate linspace(-1, 1, size): value -1 + 2*t/(size-1) at index t (-1 if size == 1),
    constant along the other axes; with_r appends sqrt(sum of the squared coordinates).
    Output channels: C + nsp (+ 1)."""
    x = _as_array(x)
    nsp = x.ndim - 2
    sp = x.shape[2:]
    extra = nsp + (1 if with_r else 0)
    out = np.empty((x.shape[0], x.shape[1] + extra) + sp)
    out[:, : x.shape[1]] = x
    for pos in _positions(sp):
        coords = [(-1.0 + 2.0 * t / (s - 1)) if s > 1 else -1.0 for t, s in zip(pos, sp)]
        for a, v in enumerate(coords):
            out[(slice(None), x.shape[1] + a) + pos] = v
        if with_r:
            out[(slice(None), x.shape[1] + nsp) + pos] = math.sqrt(sum(v * v for v in coords))
    return out


def _broadcast_shape(a_shape, b_shape):
    """NumPy rule: align trailing axes; sizes must be equal or 1; the result takes the max."""
    nd = max(len(a_shape), len(b_shape))
    a_shape = (1,) * (nd - len(a_shape)) + tuple(a_shape)
    b_shape = (1,) * (nd - len(b_shape)) + tuple(b_shape)
    out = []
    for p, q in zip(a_shape, b_shape):
        if p != q and 1 not in (p, q):
            raise ValueError(f"shapes {a_shape} and {b_shape} do not broadcast")
        out.append(max(p, q) if min(p, q) != 0 else 0)
    return a_shape, b_shape, tuple(out)


def _binary(f, a, b):
    a = _as_array(a)
    b = _as_array(b)
    a_shape, b_shape, out_shape = _broadcast_shape(a.shape, b.shape)
    a = a.reshape(a_shape)
    b = b.reshape(b_shape)
    out = np.empty(out_shape)
    for pos in _positions(out_shape):
        ia = tuple(0 if s == 1 else p for p, s in zip(pos, a_shape))
        ib = tuple(0 if s == 1 else p for p, s in zip(pos, b_shape))
        out[pos] = f(float(a[ia]), float(b[ib]))
    return out


def add(a, b):
    """Element-wise a + b with NumPy broadcasting (size-1 axes are repeated)."""
    return _binary(lambda p, q: p + q, a, b)


def mul(a, b):
    """Element-wise a * b with NumPy broadcasting (size-1 axes are repeated)."""
    return _binary(lambda p, q: p * q, a, b)


def concat(xs, axis=1):
    """Concatenate along `axis`: the pieces are laid one after the other; every other
    axis must agree."""
    xs = [_as_array(v) for v in xs]
    first = xs[0]
    for v in xs[1:]:
        if v.ndim != first.ndim or any(
            p != q for j, (p, q) in enumerate(zip(v.shape, first.shape)) if j != axis % first.ndim
        ):
            raise ValueError("shapes disagree off the concatenation axis")
    axis = axis % first.ndim
    total = sum(v.shape[axis] for v in xs)
    shape = list(first.shape)
    shape[axis] = total
    out = np.empty(shape)
    offset = 0
    for v in xs:
        for pos in _positions(v.shape):
            dst = list(pos)
            dst[axis] += offset
            out[tuple(dst)] = v[pos]
        offset += v.shape[axis]
    return out
