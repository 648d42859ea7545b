"""Normalisations that compute statistics at inference: layernorm (nn.LayerNorm over
trailing axes), layernorm2d (over the channels at every position: timm/torchvision
LayerNorm2d, ConvNeXt), instancenorm{1,2,3}d and global_response_norm (ConvNeXt-V2 GRN).

FLOPs per element: statistics and normalisation as groupnorm (mean 1, variance 3,
normalise and affine 4: 8); instance norm with running statistics folds to a scale and a
shift (2); GRN 6 (square and sum 2, x * Nx, * weight, + bias, + x).
Receptive field: statistics over a spatial axis make every output depend on all of it
(`whole`); over the channels only, k = s = 1.
"""

from __future__ import annotations

import math

from convcalc.layers.base import (Inference, Layer, LayerError, P, RFStep, Weight, register,
                                  register_ndim)
from convcalc.layers.norm import BatchNorm, _check_features, single_value_statistics


def _normalized(value) -> tuple[int, ...]:
    """normalized_shape: an int or a list of positive ints (nn.LayerNorm)."""
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(items, list) or not items
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items)):
        raise LayerError("invalid-value", f"normalized_shape must be a positive integer or a "
                         f"list of them; got {value!r}", "e.g. normalized_shape: 96")
    return tuple(items)


@register("layernorm")
class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing axes that
    normalized_shape names (PyTorch's order: (C, H, W) per sample)."""

    summary = "layer normalization over trailing axes, PyTorch nn.LayerNorm"
    params = {
        "normalized_shape": P("any", doc="int or list: the trailing axes' sizes"),
        "eps": P("float", 1e-5, minimum=0),
        "elementwise_affine": P("bool", True),
        "bias": P("bool", True),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        wanted = _normalized(self.normalized_shape)
        if len(wanted) > len(shape) or tuple(shape[len(shape) - len(wanted):]) != wanted:
            raise LayerError("shape-mismatch", f"normalized_shape {list(wanted)} is not the "
                             f"trailing axes of the input {list(shape)}",
                             f"use normalized_shape: {shape[-1]} (the last axis), or put a "
                             "permute before it; for channels at every position use layernorm2d")
        return Inference(shape, 0, 8 * math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        dims = _normalized(self.normalized_shape)
        if not self.elementwise_affine:
            return {}
        out = {"weight": Weight(dims)}
        if self.bias:
            out["bias"] = Weight(dims)
        return out

    def rf_steps(self, shapes, out):
        """Whole along every spatial axis among the normalised ones."""
        rank, count = len(shapes[0]), len(_normalized(self.normalized_shape))
        return [RFStep(whole=axis >= rank - count) for axis in range(1, rank)]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels_math import layer_norm
        from convcalc.executor.layout import to_channels_first, to_channels_last
        first = to_channels_first(inputs[0])
        axes = tuple(range(first.ndim - len(_normalized(self.normalized_shape)), first.ndim))
        return to_channels_last(layer_norm(first, axes, params.get("weight"),
                                           params.get("bias"), self.eps))


@register("layernorm2d")
class LayerNorm2d(Layer):
    """y = (x - mean_c) / sqrt(var_c + eps) * weight + bias, statistics over the channels
    of each position (timm and torchvision LayerNorm2d; ConvNeXt)."""

    summary = "layer normalization over the channels at every position (LayerNorm2d)"
    params = {
        "num_channels": P("int", None, minimum=1, doc="optional: checked against the input"),
        "eps": P("float", 1e-6, minimum=0),
        "affine": P("bool", True),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        _check_features(self, self.num_channels, shape[0], "num_channels")
        return Inference(shape, 0, 8 * math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        c = shapes[0][0]
        return {"weight": Weight((c,)), "bias": Weight((c,))} if self.affine else {}

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels_math import layer_norm
        return layer_norm(inputs[0], -1, params.get("weight"), params.get("bias"), self.eps)


class InstanceNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics per sample and channel
    over the spatial axes; the running ones when track_running_stats (PyTorch at eval)."""

    summary = "instance normalization, PyTorch nn.InstanceNormNd"
    params = {**BatchNorm.params, "affine": P("bool", False),  # BatchNorm's, other defaults
              "track_running_stats": P("bool", False)}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        _check_features(self, self.num_features, shape[0], "num_features")
        if not self.track_running_stats:  # statistics of the sample itself, even at inference
            single_value_statistics(self, math.prod(shape[1:]),
                                    "Expected more than 1 spatial element when training")
        return Inference(shape, 0, (2 if self.track_running_stats else 8) * math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        return BatchNorm.weight_shapes(self, shapes)

    def rf_steps(self, shapes, out):
        return [RFStep(whole=not self.track_running_stats) for _ in shapes[0][1:]]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import batch_norm
        from convcalc.executor.kernels_math import layer_norm
        (x,) = inputs
        if self.track_running_stats:
            return batch_norm(x, params.get("weight"), params.get("bias"),
                              params["running_mean"], params["running_var"], self.eps)
        spatial = tuple(range(1, x.ndim - 1))
        return layer_norm(x, spatial, params.get("weight"), params.get("bias"), self.eps)


@register("global_response_norm")
class GlobalResponseNorm(Layer):
    """y = x + bias + weight * x * Gx / (mean_c Gx + eps), Gx = ||x||_2 over the spatial
    axes per channel (ConvNeXt-V2; timm GlobalResponseNorm, weight and bias (C,)); with
    `channels_last` the channels are the last axis ([H, W, C], timm's default inside the
    permuted MLP of ConvNeXt-V2)."""

    summary = "global response normalization (ConvNeXt-V2 GRN, timm GlobalResponseNorm)"
    params = {
        "dim": P("int", None, minimum=1, doc="optional: the channels, checked"),
        "eps": P("float", 1e-6, minimum=0),
        "channels_last": P("bool", False, doc="channels on the last axis ([H, W, C]), as "
                           "timm's GlobalResponseNorm(channels_last=True)"),
    }

    def _channels(self, shape) -> int:
        return shape[-1] if self.channels_last else shape[0]

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        _check_features(self, self.dim, self._channels(shape), "dim")
        return Inference(shape, 0, 6 * math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        c = self._channels(shapes[0])
        return {"weight": Weight((c,), fill=0.0), "bias": Weight((c,), fill=0.0)}

    def rf_steps(self, shapes, out):
        return [RFStep(whole=True) for _ in shapes[0][1:]]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels_math import global_response_norm
        return global_response_norm(inputs[0], params["weight"], params["bias"], self.eps,
                                    self.channels_last)


register_ndim("instancenorm", InstanceNorm)
