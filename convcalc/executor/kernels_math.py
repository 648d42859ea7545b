"""Kernels of the arithmetic and statistics kinds, on channels-last float32 data
(N, *spatial, C), or (N, F): parametrised activations (softplus, mish, hardtanh, prelu),
layer and instance normalisation, global response normalisation, arithmetic with a
constant. Each follows its PyTorch (or timm) definition; per-channel vectors broadcast over
the last axis, which holds PyTorch's dim 1 in this layout.
"""

from __future__ import annotations

import numpy as np

from convcalc.executor.kernels_common import as_float32

_F = np.float32


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta*x)) / beta; x where beta*x > threshold (PyTorch F.softplus)."""
    x = as_float32(x)
    scaled = x * _F(beta)
    return np.where(scaled > _F(threshold), x, np.logaddexp(_F(0), scaled) / _F(beta))


def mish(x):
    """x * tanh(softplus(x)) (Misra 2019; PyTorch F.mish)."""
    x = as_float32(x)
    return x * np.tanh(softplus(x))


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """min(max(x, min_val), max_val)"""
    return np.clip(as_float32(x), _F(min_val), _F(max_val))


def prelu(x, weight):
    """x if x >= 0 else weight[c] * x; weight (1,) or (C,) on PyTorch's dim 1."""
    x = as_float32(x)
    return np.where(x >= 0, x, x * as_float32(weight))


def layer_norm(x, axes, weight, bias, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics over `axes` (biased
    variance); weight and bias broadcast against x (None: 1 and 0)."""
    x = as_float32(x)
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float32)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True, dtype=np.float32)
    out = centred / np.sqrt(var + _F(eps))
    if weight is not None:
        out = out * as_float32(weight)
    if bias is not None:
        out = out + as_float32(bias)
    return out


def global_response_norm(x, weight, bias, eps=1e-6, channels_last=False):
    """x + bias + weight * x * Nx, Nx = Gx / (mean_c Gx + eps), Gx = ||x||_2 over the
    spatial axes per (n, c) (ConvNeXt-V2; timm GlobalResponseNorm).

    x is stored channels-last: a sample (L0, L1, ..., L_{r-1}) is held as (N, L1, ...,
    L_{r-1}, L0). Channels first (L0 = C): the channels are the last stored axis. With
    `channels_last` (L_{r-1} = C, a [H, W, C] sample) they are stored axis r - 1, and the
    spatial axes are every other stored axis."""
    x = as_float32(x)
    channel = x.ndim - 2 if channels_last and x.ndim > 2 else x.ndim - 1
    spatial = tuple(a for a in range(1, x.ndim) if a != channel)
    gx = np.sqrt(np.sum(x * x, axis=spatial, keepdims=True, dtype=np.float32))
    nx = gx / (gx.mean(axis=channel, keepdims=True) + _F(eps))
    shape = [1] * x.ndim
    shape[channel] = -1
    weight, bias = as_float32(weight).reshape(shape), as_float32(bias).reshape(shape)
    return x + (bias + weight * (x * nx))


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "pow": np.power,
}


def with_constant(x, op: str, other: float, reverse: bool = False):
    """x op other, or other op x when `reverse` (rsub, rdiv, rpow), in float32."""
    x, c = as_float32(x), _F(other)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return BINARY[op](c, x) if reverse else BINARY[op](x, c)


def standardized_weight(weight, eps=1e-6, gain=None):
    """(w - mean) / sqrt(var + eps) per output filter (axis 0), biased variance over the
    rest, times gain[co] when given (timm StdConv2d, ScaledStdConv2d: F.batch_norm of the
    weight reshaped to (1, Cout, -1) in training mode)."""
    w = as_float32(weight)
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(axis=1, keepdims=True, dtype=np.float32)
    centred = flat - mean
    var = np.mean(centred * centred, axis=1, keepdims=True, dtype=np.float32)
    out = centred / np.sqrt(var + _F(eps))
    if gain is not None:
        out = out * as_float32(gain).reshape(-1, 1)
    return out.reshape(w.shape)
