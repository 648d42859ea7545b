"""`--verify` references of the arithmetic and statistics kinds (layers/pointwise.py,
norm_stats.py, arith.py, and add/mul with a constant): one output position at a time, in
float64, from the definitions, as verify.py's.
"""

from __future__ import annotations

import math

import numpy as np

from convcalc.executor.layout import to_channels_first
from convcalc.layers import arith, blur, merge, norm_stats, pointwise
from convcalc.layers.norm_stats import _normalized


def _softplus(v: float, beta: float, threshold: float) -> float:
    """log(1 + exp(beta v)) / beta, v past the threshold"""
    z = beta * v
    if z > threshold:
        return v
    return (max(z, 0.0) + math.log1p(math.exp(-abs(z)))) / beta


def softplus_value(layer, inputs, refs, weights, shape, pos):
    return _softplus(float(inputs[0][pos]), layer.beta, layer.threshold)


def mish_value(layer, inputs, refs, weights, shape, pos):
    v = float(inputs[0][pos])
    return v * math.tanh(_softplus(v, 1.0, 20.0))


def hardtanh_value(layer, inputs, refs, weights, shape, pos):
    return min(max(float(inputs[0][pos]), layer.min_val), layer.max_val)


def _channel_value(vector, pos) -> float:
    """vector[c] for the position's channel (the last array axis); a single value for all."""
    flat = vector.reshape(-1)
    return float(flat[0] if flat.size == 1 else flat[pos[-1]])


def prelu_value(layer, inputs, refs, weights, shape, pos):
    v = float(inputs[0][pos])
    return v if v >= 0 else _channel_value(weights["weight"], pos) * v


def layer_scale_value(layer, inputs, refs, weights, shape, pos):
    return float(inputs[0][pos]) * _channel_value(weights[layer.param], pos)


def channel_bias_value(layer, inputs, refs, weights, shape, pos):
    return float(inputs[0][pos]) + _channel_value(weights[layer.param], pos)


def scalar_affine_value(layer, inputs, refs, weights, shape, pos):
    out = float(inputs[0][pos]) * float(weights["weight"])
    return out + float(weights["bias"]) if layer.bias else out


def _normalise(v: float, values, eps: float) -> float:
    values = values.astype(np.float64)
    return (v - values.mean()) / math.sqrt(values.var() + eps)


def _affine(out: float, weights, index) -> float:
    if weights.get("weight") is not None:
        out *= float(weights["weight"][index])
    if weights.get("bias") is not None:
        out += float(weights["bias"][index])
    return out


def layernorm_value(layer, inputs, refs, weights, shape, pos):
    """statistics over the trailing len(normalized_shape) axes of PyTorch's order"""
    first = to_channels_first(inputs[0])
    at = pos if len(shape) <= 2 else (pos[0], pos[-1], *pos[1:-1])
    lead = first.ndim - len(_normalized(layer.normalized_shape))
    out = _normalise(float(first[at]), first[at[:lead]], layer.eps)
    return _affine(out, weights, at[lead:])


def layernorm2d_value(layer, inputs, refs, weights, shape, pos):
    """statistics over the channels of the position"""
    x = inputs[0]
    out = _normalise(float(x[pos]), x[pos[:-1]], layer.eps)
    return _affine(out, weights, pos[-1])


def instancenorm_value(layer, inputs, refs, weights, shape, pos):
    """statistics over the spatial positions of (n, c), or the running ones"""
    x, c = inputs[0], pos[-1]
    v = float(x[pos])
    if layer.track_running_stats:
        mean, var = float(weights["running_mean"][c]), float(weights["running_var"][c])
        out = (v - mean) / math.sqrt(var + layer.eps)
    else:
        out = _normalise(v, x[pos[0], ..., c], layer.eps)
    return _affine(out, weights if layer.affine else {}, c)


def grn_value(layer, inputs, refs, weights, shape, pos):
    """x + b_c + w_c * x * G_c / (mean_c' G_c' + eps), G_c = sqrt(sum_positions x_c^2)"""
    sample = inputs[0][pos[0]].astype(np.float64)
    norms = np.sqrt(np.sum(sample * sample, axis=tuple(range(sample.ndim - 1))))
    c, v = pos[-1], float(inputs[0][pos])
    nx = norms[c] / (norms.mean() + layer.eps)
    return v + float(weights["bias"][c]) + float(weights["weight"][c]) * v * nx


def _divide(a: float, b: float) -> float:
    """a / b, with IEEE's inf and nan for b = 0 (as NumPy and PyTorch)"""
    if b:
        return a / b
    return math.copysign(math.inf, a) * math.copysign(1.0, b) if a else math.nan


OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
       "div": _divide, "pow": lambda a, b: _power(a, b)}


def _power(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except ValueError:  # a negative base to a fractional power
        return math.nan
    except OverflowError:
        return math.inf


def arith_value(layer, inputs, refs, weights, shape, pos):
    """x1 op x2 op ... (broadcast), x op other, or other op x (the reversed kinds)"""
    from convcalc.executor.verify import _broadcast_read
    op = OPS[layer.op]
    constant = getattr(layer, layer.constant)
    if constant is not None:
        v = float(inputs[0][pos])
        return op(constant, v) if layer.reverse else op(v, constant)
    values = [_broadcast_read(x, pos, len(shape)) for x in inputs]
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


def blur_pool_value(layer, inputs, refs, weights, shape, pos):
    """sum over taps (a, b) of C(n-1, a) C(n-1, b) / 4^(n-1) * Xpad[o*s - p + (a, b)], the
    border read by pad_mode"""
    from convcalc.executor.verify import window
    n, o, c = pos[0], pos[1:-1], pos[-1]
    starts = [oi * layer.stride - layer.pad for oi in o]
    mode = "zeros" if layer.pad_mode == "constant" else layer.pad_mode
    values, _ = window(inputs[0][n, ..., c:c + 1], starts, (layer.filt_size,) * 2, (1, 1), mode)
    taps = blur.binomial_taps(layer.filt_size)
    return float(sum(taps[a] * taps[b] * values[a, b, 0]
                     for a in range(layer.filt_size) for b in range(layer.filt_size)))


REFERENCES = {
    blur.BlurPool2d: blur_pool_value,
    pointwise.Softplus: softplus_value, pointwise.Mish: mish_value,
    pointwise.Hardtanh: hardtanh_value, pointwise.PReLU: prelu_value,
    pointwise.LayerScale: layer_scale_value, pointwise.ScalarAffine: scalar_affine_value,
    pointwise.ChannelBias: channel_bias_value,
    norm_stats.LayerNorm: layernorm_value, norm_stats.LayerNorm2d: layernorm2d_value,
    norm_stats.InstanceNorm: instancenorm_value, norm_stats.GlobalResponseNorm: grn_value,
    merge.Add: arith_value, merge.Mul: arith_value, arith.Sub: arith_value,
    arith.Div: arith_value, arith.Pow: arith_value, arith._Reversed: arith_value,
}
