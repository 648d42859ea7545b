"""Element-wise and per-position kernels on channels-last float32 data: activations,
batch/group/local-response normalisation, linear and softmax.

x (N, *spatial, C); per-channel parameters have shape (C,) and broadcast over the last
axis. Every constant is a numpy float32, so no result is silently promoted to float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcalc.executor.kernels_common import as_float32

_F = np.float32


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), evaluated through exp(-|x|) so it never overflows."""
    x = as_float32(x)
    decay = np.exp(-np.abs(x))
    return np.where(x >= 0, _F(1) / (_F(1) + decay), decay / (_F(1) + decay))


def _erfc_nonnegative(z: np.ndarray) -> np.ndarray:
    """erfc(z) for z >= 0, Chebyshev fit (Numerical Recipes erfcc): relative error < 1.2e-7."""
    t = _F(1) / (_F(1) + _F(0.5) * z)
    poly = _F(0.17087277)
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
              0.37409196, 1.00002368, -1.26551223):
        poly = poly * t + _F(c)
    return t * np.exp(-z * z + poly)


def relu(x):
    """max(x, 0)"""
    return np.maximum(as_float32(x), _F(0))


def relu6(x):
    """min(max(x, 0), 6)"""
    return np.clip(as_float32(x), _F(0), _F(6))


def leaky_relu(x, negative_slope=0.01):
    """x if x >= 0 else negative_slope * x"""
    x = as_float32(x)
    return np.where(x >= 0, x, x * _F(negative_slope))


def elu(x, alpha=1.0):
    """x if x > 0 else alpha * (exp(x) - 1)"""
    x = as_float32(x)
    return np.where(x > 0, x, _F(alpha) * np.expm1(np.minimum(x, _F(0))))


def gelu(x, approximate="none"):
    """none: x * Phi(x) = x/2 * erfc(-x/sqrt2); tanh: x/2 * (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))"""
    x = as_float32(x)
    if approximate == "tanh":
        inner = _F(np.sqrt(2 / np.pi)) * (x + _F(0.044715) * x * x * x)
        return _F(0.5) * x * (_F(1) + np.tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh'. Received: {approximate!r}")
    tail = _F(0.5) * x * _erfc_nonnegative(np.abs(x) * _F(1 / np.sqrt(2)))  # x * Q(|x|)
    return np.where(x < 0, tail, x - tail)


def silu(x):
    """x * sigmoid(x)"""
    x = as_float32(x)
    return x * _sigmoid(x)


def hardswish(x):
    """x * relu6(x + 3) / 6"""
    x = as_float32(x)
    return x * np.clip(x + _F(3), _F(0), _F(6)) / _F(6)


def hardsigmoid(x):
    """relu6(x + 3) / 6"""
    return np.clip(as_float32(x) + _F(3), _F(0), _F(6)) / _F(6)


def sigmoid(x):
    """1 / (1 + exp(-x))"""
    return _sigmoid(x)


def tanh(x):
    """tanh(x)"""
    return np.tanh(as_float32(x))


def identity(x):
    """x"""
    return as_float32(x)


ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "relu": relu, "relu6": relu6, "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu,
    "silu": silu, "hardswish": hardswish, "hardsigmoid": hardsigmoid, "sigmoid": sigmoid,
    "tanh": tanh, "identity": identity,
}


def batch_norm(x, weight, bias, running_mean, running_var, eps=1e-5):
    """out = (x - mean) / sqrt(var + eps) * weight + bias = x * scale + shift (inference).

    x (N, *spatial, C); weight, bias, running_mean, running_var (C,); weight/bias None = 1/0.
    """
    x = as_float32(x)
    scale = _F(1) / np.sqrt(as_float32(running_var) + _F(eps))
    if weight is not None:
        scale = scale * as_float32(weight)
    shift = -as_float32(running_mean) * scale
    if bias is not None:
        shift = shift + as_float32(bias)
    return x * scale + shift


def group_norm(x, num_groups, weight, bias, eps=1e-5):
    """out = (x - mean_g) / sqrt(var_g + eps) * weight + bias, statistics per (n, group)
    over all positions and the group's C/num_groups channels (biased variance)."""
    x = as_float32(x)
    channels = x.shape[-1]
    if channels % num_groups:
        raise ValueError(f"group_norm: {channels} channels are not divisible by {num_groups} groups")
    grouped = x.reshape(x.shape[0], -1, num_groups, channels // num_groups)
    mean = grouped.mean(axis=(1, 3), keepdims=True, dtype=np.float32)
    centred = grouped - mean
    var = np.mean(centred * centred, axis=(1, 3), keepdims=True, dtype=np.float32)
    out = (centred / np.sqrt(var + _F(eps))).reshape(x.shape)
    if weight is not None:
        out *= as_float32(weight)
    if bias is not None:
        out += as_float32(bias)
    return out


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """out[c] = x[c] / (k + alpha/size * sum_{c'=c-size//2}^{c+(size-1)//2} x[c']^2)^beta

    (PyTorch F.local_response_norm: zero-padded across channels, the sum divided by size.)
    """
    x = as_float32(x)
    squares = np.pad(x * x, [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
    channels = x.shape[-1]
    window_sum = squares[..., :channels].copy()
    for offset in range(1, size):  # loop over the `size` window taps, each a whole-array add
        window_sum += squares[..., offset:offset + channels]
    return x / (window_sum * _F(alpha / size) + _F(k)) ** _F(beta)


def linear(x, weight, bias):
    """out = x @ weight.T + bias over the last axis: x (..., in), weight (out, in), bias (out,)."""
    out = np.matmul(as_float32(x), as_float32(weight).T)
    if bias is not None:
        out += as_float32(bias)
    return out


def softmax(x, axis):
    """out = exp(x - max) / sum(exp(x - max)) along `axis`."""
    x = as_float32(x)
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def log_softmax(x, axis):
    """out = (x - max) - log(sum(exp(x - max))) along `axis`."""
    x = as_float32(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
