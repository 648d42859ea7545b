"""`--verify`: recompute a sample of every layer's output positions directly, and compare.

The fast path (each layer's forward, through the vectorised kernels) is checked against
references written here as plainly as possible, one output position at a time, in float64,
from the definitions. For a convolution that is the seeds' formula

    V[d, y, x] = sum(X[window(y, x)] * W_d) + b_d

with the window cut from the input by index (padding modes map an outside index back in, or
read zero). A BatchNorm folded into its conv is checked as what it replaces: the conv's
reference, then (v - mean) / sqrt(var + eps) * weight + bias.

Positions index the channels-last output: (n, *spatial, c), or (n, f) for flat tensors.

How large an error is allowed: the float32 fast path and the float64 reference differ by
rounding, and rounding errors scale with what the layer reads, not with what it writes.
For a layer y = W x + b (a conv, a linear, and with W of norm <= 1 every average, pool,
interpolation and normalisation's mean), the normwise bound is
|y_hat - y| <= gamma_n * (||W||_inf * max|x| + max|b|), gamma_n ~ n * 2^-24 (Higham,
"Accuracy and Stability of Numerical Algorithms", 2nd ed., sections 3.1 and 3.5). So the
relative error is the largest absolute error over

    scale = max(max|expected|, max|output|, max|x| * max(1, ||W||_inf) + max|b|)

where ||W||_inf is the largest sum of |w| feeding one output channel. An output that cancels
to ~0 (a global average of a GroupNorm's output, whose mean is 0 by construction) is then
judged against the magnitude of its inputs, as numerical libraries do, instead of against
3e-8; the tolerance stays 1e-4 of that scale.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np

from convcalc.executor.layout import channels_last_axis, to_channels_first
from convcalc.layers import activation, channels, conv, dense, merge, norm, pool, resample

SAMPLES = 48
TOLERANCE = 1e-4  # largest error allowed, relative to the output's largest magnitude


def verifier(executor, samples: int = SAMPLES, seed: int = 0):
    """A `check(step, inputs, refs, output) -> (absolute, relative)` for Executor.run."""
    rng = np.random.default_rng(seed)

    def check(step, inputs, refs, out):
        if not np.all(np.isfinite(out)):  # NaN or inf (from the weights or an overflow)
            return math.inf, math.inf
        positions = sample_positions(out.shape, samples, rng)
        first = step.nodes[0]
        reference = reference_for(first.layer)
        weights = executor.layer_weights(first.name)
        expected = [reference(first.layer, inputs, refs, weights, out.shape, pos)
                    for pos in positions]
        for node in step.nodes[1:]:  # a BatchNorm folded into the conv before it
            folded = executor.layer_weights(node.name)
            expected = [batchnorm_formula(node.layer, folded, value, pos[-1])
                        for value, pos in zip(expected, positions)]
        got = np.array([float(out[pos]) for pos in positions])
        expected = np.array(expected, dtype=np.float64)
        absolute = float(np.max(np.abs(got - expected))) if positions else 0.0
        scale = max(float(np.max(np.abs(expected), initial=0.0)),
                    float(np.max(np.abs(out), initial=0.0)),
                    input_scale(inputs, weights, [(node.layer, executor.layer_weights(node.name))
                                                  for node in step.nodes[1:]]))
        return absolute, (absolute / scale if scale > 0 else absolute)

    return check


def input_scale(inputs, weights: dict, folded: list) -> float:
    """max|x| * max(1, ||W||_inf) + max|b| (see the module doc), times the largest
    |weight / sqrt(running_var + eps)| of a BatchNorm folded after the layer."""
    largest = max((float(np.max(np.abs(x), initial=0.0)) for x in inputs
                   if isinstance(x, np.ndarray) and x.size and np.all(np.isfinite(x))),
                  default=0.0)
    weight = weights.get("weight")
    norm = 1.0
    if isinstance(weight, np.ndarray) and weight.ndim >= 2 and weight.size:
        magnitude = np.abs(weight.astype(np.float64))
        per_output = magnitude.reshape(weight.shape[0], -1).sum(axis=1).max()  # conv, linear
        per_column = magnitude.sum(axis=tuple(a for a in range(weight.ndim) if a != 1)).max()
        norm = max(1.0, float(per_output), float(per_column))  # transposed convs: axis 1 out
    bias = weights.get("bias")
    shift = float(np.max(np.abs(bias), initial=0.0)) if isinstance(bias, np.ndarray) else 0.0
    scale = largest * norm + shift
    for layer, bn in folded:  # (layer, weights) of each BatchNorm folded into the step
        if "running_var" in bn:
            var = bn["running_var"].astype(np.float64) + layer.eps
            gain = np.abs(bn.get("weight", 1.0)) / np.sqrt(np.maximum(var, 1e-30))
            scale = scale * max(1.0, float(np.max(gain))) + float(np.max(np.abs(bn.get("bias", 0.0))))
    return scale if math.isfinite(scale) else 0.0


def sample_positions(shape, count: int, rng) -> list[tuple[int, ...]]:
    """The first and last positions (borders meet padding there) and `count` random ones."""
    total = math.prod(shape)
    if total == 0:
        return []
    flat = {0, total - 1, *rng.integers(0, total, size=min(count, total)).tolist()}
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in sorted(flat)]


def reference_for(layer):
    for cls in type(layer).__mro__:
        if cls in REFERENCES:
            return REFERENCES[cls]
    raise KeyError(f"no reference for {type(layer).__name__}")


# -- windows ---------------------------------------------------------------------------------

def source_index(t: int, size: int, mode: str) -> int | None:
    """Where padded index t reads from: inside as is; zeros/constant: nowhere (None);
    reflect: mirrored without the edge; replicate: the edge; circular: wrapped."""
    if 0 <= t < size:
        return t
    if mode in ("zeros", "constant"):
        return None
    if mode == "replicate":
        return min(max(t, 0), size - 1)
    if mode == "circular":
        return t % size
    period = 2 * (size - 1)  # reflect
    t = abs(t) % period if period else 0
    return t if t < size else period - t


def window(sample, starts, kernel, dilation, mode="zeros"):
    """(values (*kernel, C), inside (*kernel,)) of one window of a (*spatial, C) sample;
    tap t of an axis reads start + t*d, mapped by `mode`; outside taps read 0."""
    spatial = sample.shape[:-1]
    rows, inside = [], []
    for start, k, d, size in zip(starts, kernel, dilation, spatial):
        sources = [source_index(start + t * d, size, mode) for t in range(k)]
        rows.append([0 if s is None else s for s in sources])
        inside.append([s is not None for s in sources])
    values = sample[np.ix_(*rows, range(sample.shape[-1]))].astype(np.float64)
    mask = np.ones(tuple(kernel), bool)
    for axis, flags in enumerate(inside):
        shape = [1] * len(kernel)
        shape[axis] = len(flags)
        mask = mask & np.array(flags).reshape(shape)
    return values * mask[..., None], mask


# -- the conv family -------------------------------------------------------------------------

def conv_value(layer, inputs, refs, weights, shape, pos):
    """V[n, o, co] = sum(Xpad[n, window(o), group(co)] * W[co]) + b[co]"""
    x = inputs[0]
    n, o, co = pos[0], pos[1:-1], pos[-1]
    weight = _filters(layer, weights)  # (Cout, Cin/groups, *k)
    cin_g = weight.shape[1]
    group = co // (weight.shape[0] // layer.groups)
    pads, _ = layer.geometry(x.shape[1:-1])
    starts = [oi * s - pb for oi, s, (pb, _) in zip(o, layer.stride, pads)]
    values, _ = window(x[n, ..., group * cin_g:(group + 1) * cin_g], starts, layer.kernel_size,
                       layer.dilation, layer.padding_mode)
    kernel = np.moveaxis(weight[co], 0, -1).astype(np.float64)  # (*k, Cin/groups)
    return float(np.sum(values * kernel)) + _bias(weights, co)


def _filters(layer, weights):
    """The conv's weight, standardised per filter in float64 when the conv says so:
    (w - mean) / sqrt(var + eps) * gain * gamma / sqrt(fan_in) (scaled)."""
    weight = weights["weight"]
    if getattr(layer, "weight_standardization", "none") == "none":
        return weight
    flat = weight.reshape(weight.shape[0], -1).astype(np.float64)
    out = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + layer.ws_eps)
    if layer.weight_standardization == "scaled":
        out *= weights["gain"].reshape(-1, 1) * layer.ws_gamma / math.sqrt(flat.shape[1])
    return out.reshape(weight.shape)


def conv_transpose_value(layer, inputs, refs, weights, shape, pos):
    """V[n, o, co] = b[co] + sum over taps t and inputs q with q*s + t*d - p_b = o of
    X[n, q, ci] * W[ci, co, t], ci in co's group."""
    x = inputs[0]
    n, o, co = pos[0], pos[1:-1], pos[-1]
    weight = weights["weight"]  # (Cin, Cout/groups, *k)
    cin_g, cout_g = weight.shape[0] // layer.groups, weight.shape[1]
    group = co // cout_g
    total = _bias(weights, co)
    for taps in product(*(range(k) for k in layer.kernel_size)):
        source = []
        for oi, t, s, d, (pb, _), size in zip(o, taps, layer.stride, layer.dilation,
                                              layer.padding, x.shape[1:-1]):
            reach = oi + pb - t * d
            if reach % s or not 0 <= reach // s < size:
                break
            source.append(reach // s)
        else:
            pixel = x[(n, *source, slice(group * cin_g, (group + 1) * cin_g))].astype(np.float64)
            total += float(np.sum(pixel * weight[group * cin_g:(group + 1) * cin_g,
                                                 co - group * cout_g][(slice(None), *taps)]))
    return total


def locally_connected_value(layer, inputs, refs, weights, shape, pos):
    """V[n, o, co] = sum(Xpad[n, window(o), :] * W[o, co]) + b[co, o]"""
    x = inputs[0]
    n, o, co = pos[0], pos[1:-1], pos[-1]
    pads, _ = layer.geometry(x.shape[1:-1])
    starts = [oi * s - pb for oi, s, (pb, _) in zip(o, layer.stride, pads)]
    values, _ = window(x[n], starts, layer.kernel_size, (1,) * len(o))
    kernel = np.moveaxis(weights["weight"][(*o, co)], 0, -1).astype(np.float64)
    bias = float(weights["bias"][(co, *o)]) if "bias" in weights else 0.0
    return float(np.sum(values * kernel)) + bias


def linear_value(layer, inputs, refs, weights, shape, pos):
    """y[..., f] = sum_i x[..., i] * W[f, i] + b[f], over PyTorch's last axis."""
    x = inputs[0]
    if x.ndim == 2:
        row, feature = x[pos[0]], pos[1]
    else:  # channels-last: PyTorch's last axis is the array's axis -2
        row, feature = x[(*pos[:-2], slice(None), pos[-1])], pos[-2]
    total = float(np.sum(row.astype(np.float64) * weights["weight"][feature]))
    return total + _bias(weights, feature)


def _bias(weights, channel) -> float:
    return float(weights["bias"][channel]) if weights.get("bias") is not None else 0.0


# -- pooling ---------------------------------------------------------------------------------

def _pool_window(layer, x, pos):
    n, o, c = pos[0], pos[1:-1], pos[-1]
    stride, pads, dilation = layer.geometry(x.shape[1:-1])
    starts = [oi * s - pb for oi, s, (pb, _) in zip(o, stride, pads)]
    values, inside = window(x[n, ..., c:c + 1], starts, layer.kernel_size, dilation)
    return values[..., 0], inside, starts, pads


def max_pool_value(layer, inputs, refs, weights, shape, pos):
    """max over the window's real pixels (padding is -inf)."""
    values, inside, _, _ = _pool_window(layer, inputs[0], pos)
    return float(np.max(values[inside])) if inside.any() else -math.inf


def avg_pool_value(layer, inputs, refs, weights, shape, pos):
    """sum of the window's real pixels / divisor (PyTorch's count_include_pad rules)."""
    x = inputs[0]
    values, inside, starts, pads = _pool_window(layer, x, pos)
    if layer.divisor_override:
        return float(np.sum(values)) / layer.divisor_override
    if not layer.count_include_pad:
        return float(np.sum(values)) / int(inside.sum())
    divisor = 1
    for start, k, size, (_, pa) in zip(starts, layer.kernel_size, x.shape[1:-1], pads):
        divisor *= min(start + k, size + pa) - start  # cells inside the padded input
    return float(np.sum(values)) / divisor


def adaptive_pool_value(layer, inputs, refs, weights, shape, pos):
    """mean or max over [floor(o*I/O), ceil((o+1)*I/O)) per axis."""
    x = inputs[0]
    n, o, c = pos[0], pos[1:-1], pos[-1]
    region = tuple(slice(oi * size // out, -(-(oi + 1) * size // out))
                   for oi, size, out in zip(o, x.shape[1:-1], shape[1:-1]))
    values = x[(n, *region, c)].astype(np.float64)
    return float(values.mean() if layer.kind == "avg" else values.max())


def global_pool_value(layer, inputs, refs, weights, shape, pos):
    values = inputs[0][pos[0], ..., pos[-1]].astype(np.float64)
    return float(values.mean() if layer.kind == "avg" else values.max())


def max_unpool_value(layer, inputs, refs, weights, shape, pos):
    """The pooled value whose index is this position's flat index, else 0."""
    x, indices = inputs[0], refs["indices"]
    n, o, c = pos[0], pos[1:-1], pos[-1]
    flat = int(np.ravel_multi_index(o, shape[1:-1]))
    hits = np.argwhere(indices[n, ..., c] == flat)
    return float(x[(n, *hits[-1], c)]) if len(hits) else 0.0


# -- normalisation ---------------------------------------------------------------------------

def batchnorm_formula(layer, weights, value: float, channel: int, mean=None, var=None) -> float:
    """(v - mean) / sqrt(var + eps) * weight + bias"""
    mean = float(weights["running_mean"][channel]) if mean is None else mean
    var = float(weights["running_var"][channel]) if var is None else var
    out = (value - mean) / math.sqrt(var + layer.eps)
    if layer.affine:
        out = out * float(weights["weight"][channel]) + float(weights["bias"][channel])
    return out


def batchnorm_value(layer, inputs, refs, weights, shape, pos):
    x = inputs[0]
    mean = var = None
    if not layer.track_running_stats:  # the batch's own statistics
        values = x[..., pos[-1]].astype(np.float64)
        mean, var = float(values.mean()), float(values.var())
    return batchnorm_formula(layer, weights, float(x[pos]), pos[-1], mean, var)


def groupnorm_value(layer, inputs, refs, weights, shape, pos):
    """statistics over the sample's group of C/G channels and every position"""
    x = inputs[0]
    per = x.shape[-1] // layer.num_groups
    group = pos[-1] // per
    values = x[pos[0], ..., group * per:(group + 1) * per].astype(np.float64)
    out = (float(x[pos]) - values.mean()) / math.sqrt(values.var() + layer.eps)
    if layer.affine:
        out = out * float(weights["weight"][pos[-1]]) + float(weights["bias"][pos[-1]])
    return out


def lrn_value(layer, inputs, refs, weights, shape, pos):
    """b_c = a_c / (k + alpha/size * sum_{c' = c - size//2 .. c + (size-1)//2} a_c'^2)^beta"""
    x = inputs[0]
    c = pos[-1]
    lo, hi = max(c - layer.size // 2, 0), min(c + (layer.size - 1) // 2, x.shape[-1] - 1)
    squares = sum(float(x[(*pos[:-1], j)]) ** 2 for j in range(lo, hi + 1))
    return float(x[pos]) / (layer.k + layer.alpha / layer.size * squares) ** layer.beta


# -- element-wise ----------------------------------------------------------------------------

def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


FORMULAS = {
    "relu": lambda v, p: max(v, 0.0),
    "relu6": lambda v, p: min(max(v, 0.0), 6.0),
    "leaky_relu": lambda v, p: v if v >= 0 else p["negative_slope"] * v,
    "elu": lambda v, p: v if v > 0 else p["alpha"] * math.expm1(v),
    "gelu": lambda v, p: (0.5 * v * (1 + math.erf(v / math.sqrt(2))) if p["approximate"] == "none"
                          else 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                        * (v + 0.044715 * v ** 3)))),
    "silu": lambda v, p: v * _sigmoid(v),
    "hardswish": lambda v, p: v * min(max(v + 3, 0.0), 6.0) / 6,
    "hardsigmoid": lambda v, p: min(max(v + 3, 0.0), 6.0) / 6,
    "sigmoid": lambda v, p: _sigmoid(v),
    "tanh": lambda v, p: math.tanh(v),
    "identity": lambda v, p: v,
    "dropout": lambda v, p: v,
}


def elementwise_value(layer, inputs, refs, weights, shape, pos):
    return FORMULAS[layer.type](float(inputs[0][pos]), layer.values)


def softmax_value(layer, inputs, refs, weights, shape, pos):
    x = inputs[0]
    axis = channels_last_axis(layer.dim, x.ndim)
    line = x[pos[:axis] + (slice(None),) + pos[axis + 1:]].astype(np.float64)
    top = line.max()
    return math.exp(float(x[pos]) - top) / float(np.sum(np.exp(line - top)))


# -- layout and merges -----------------------------------------------------------------------

def flatten_value(layer, inputs, refs, weights, shape, pos):
    """Channels-first (PyTorch) order: the merged index unravels over the merged axes."""
    first = to_channels_first(inputs[0])
    start, end = layer.start_dim % first.ndim, layer.end_dim % first.ndim
    out_first = pos if len(shape) <= 2 else (pos[0], pos[-1], *pos[1:-1])
    merged = np.unravel_index(out_first[start], first.shape[start:end + 1])
    return float(first[(*out_first[:start], *merged, *out_first[start + 1:])])


def _broadcast_read(array, pos, rank):
    """array's element at output position pos, size-1 axes repeated (NumPy's rule on the
    channels-first per-sample shapes, aligned at the end)."""
    first = to_channels_first(array)
    per_sample = (1,) * (rank - array.ndim) + first.shape[1:]
    out_first = pos if rank <= 2 else (pos[0], pos[-1], *pos[1:-1])
    index = [out_first[0]] + [0 if size == 1 else i for i, size
                              in zip(out_first[1:], per_sample)]
    return float(first.reshape((array.shape[0],) + per_sample)[tuple(index)])


def add_value(layer, inputs, refs, weights, shape, pos):
    return sum(_broadcast_read(x, pos, len(shape)) for x in inputs)


def mul_value(layer, inputs, refs, weights, shape, pos):
    return math.prod(_broadcast_read(x, pos, len(shape)) for x in inputs)


def concat_value(layer, inputs, refs, weights, shape, pos):
    axis = channels_last_axis(layer.dim, len(shape))
    offset = pos[axis]
    for x in inputs:
        if offset < x.shape[axis]:
            return float(x[pos[:axis] + (offset,) + pos[axis + 1:]])
        offset -= x.shape[axis]
    raise IndexError(pos)


def channel_shuffle_value(layer, inputs, refs, weights, shape, pos):
    """out channel j*groups + g reads in channel g*(C/groups) + j"""
    per = shape[-1] // layer.groups
    j, g = divmod(pos[-1], layer.groups)
    return float(inputs[0][(*pos[:-1], g * per + j)])


def coord_channels_value(layer, inputs, refs, weights, shape, pos):
    """the input's channels, then -1 + 2*i/(size-1) per spatial axis, then their radius"""
    x = inputs[0]
    c, spatial = pos[-1], x.shape[1:-1]
    if c < x.shape[-1]:
        return float(x[pos])
    coords = [-1 + 2 * i / (size - 1) if size > 1 else -1.0 for i, size in zip(pos[1:-1], spatial)]
    extra = c - x.shape[-1]
    return coords[extra] if extra < len(coords) else math.sqrt(sum(v * v for v in coords))


def upsample_value(layer, inputs, refs, weights, shape, pos):
    """PyTorch: ratio = 1/scale_factor when given, else in/out; nearest src = floor(dst*ratio);
    linear src = dst*(in-1)/(out-1) (align_corners) or max((dst + 0.5)*ratio - 0.5, 0),
    weights 1 - frac and frac of floor(src) and the next pixel."""
    x = inputs[0]
    n, o, c = pos[0], pos[1:-1], pos[-1]
    factors = (layer.per_axis("scale_factor", len(o)) if layer.scale_factor is not None
               else (None,) * len(o))
    per_axis = []
    for dst, size, out, factor in zip(o, x.shape[1:-1], shape[1:-1], factors):
        ratio = 1 / factor if factor else size / out
        if layer.mode == "nearest":
            per_axis.append([(min(math.floor(dst * ratio), size - 1), 1.0)])
            continue
        if out == size:
            src = float(dst)
        elif layer.align_corners:
            src = dst * (size - 1) / (out - 1) if out > 1 else 0.0
        else:
            src = max((dst + 0.5) * ratio - 0.5, 0.0)
        low = min(math.floor(src), size - 1)
        per_axis.append([(low, 1 - (src - low)), (min(low + 1, size - 1), src - low)])
    return sum(math.prod(w for _, w in corner) * float(x[(n, *(i for i, _ in corner), c)])
               for corner in product(*per_axis))


def pad_value(layer, inputs, refs, weights, shape, pos):
    x = inputs[0]
    pads = layer.pads(x.shape[1:])
    sources = [source_index(t - pb, size, layer.mode)
               for t, (pb, _), size in zip(pos[1:-1], pads, x.shape[1:-1])]
    return layer.value if None in sources else float(x[(pos[0], *sources, pos[-1])])


def crop_value(layer, inputs, refs, weights, shape, pos):
    x = inputs[0]
    starts = [(size - out) // 2 for size, out in zip(x.shape[1:-1], shape[1:-1])]
    return float(x[(pos[0], *(o + s for o, s in zip(pos[1:-1], starts)), pos[-1])])


REFERENCES = {
    conv.Conv: conv_value, conv.ConvTranspose: conv_transpose_value,
    conv.LocallyConnected: locally_connected_value, dense.Linear: linear_value,
    dense.Flatten: flatten_value, pool.MaxPool: max_pool_value, pool.AvgPool: avg_pool_value,
    pool._AdaptivePool: adaptive_pool_value, pool._GlobalPool: global_pool_value,
    pool.MaxUnpool: max_unpool_value, norm.BatchNorm: batchnorm_value,
    norm.GroupNorm: groupnorm_value, norm.LocalResponseNorm: lrn_value,
    activation.Elementwise: elementwise_value, activation.Softmax: softmax_value,
    merge.Add: add_value, merge.Mul: mul_value, merge.Concat: concat_value,
    channels.ChannelShuffle: channel_shuffle_value, channels.CoordChannels: coord_channels_value,
    resample.Upsample: upsample_value, resample.Pad: pad_value, resample.Crop: crop_value,
}


def _kind_family_references() -> None:
    """The layout, slicing, reduction, matmul and stack kinds' references, and the
    arithmetic and statistics kinds' (add and mul there also take a constant operand):
    each in its module."""
    from convcalc.executor.verify_layout import REFERENCES as LAYOUT
    from convcalc.executor.verify_math import REFERENCES as MATH
    REFERENCES.update(LAYOUT)
    REFERENCES.update(MATH)


_kind_family_references()
