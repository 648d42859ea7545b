"""Normalization: batchnorm{1,2,3}d, groupnorm, local_response_norm.

BatchNorm's weight and bias are parameters; its running mean and variance (and
num_batches_tracked) are buffers, as in PyTorch. FLOPs at inference: BatchNorm folds into a
scale and a shift (2 per element); GroupNorm computes statistics (mean: 1, variance: 3,
normalise and affine: 4 per element, 8 in all); LRN sums `size` squares and scales
(2*size + 3 per element).
"""

from __future__ import annotations

import math

from convcalc.layers.base import (Inference, Layer, LayerError, P, RFStep, Saved, Weight,
                                  register, register_ndim, saved_inputs)


def _check_features(layer: Layer, given: int | None, channels: int, name: str) -> None:
    if given is not None and given != channels:
        raise LayerError("channel-mismatch", f"{name} is {given} but the input has {channels} "
                         f"channels", f"set {name}: {channels}, or remove it (it is inferred)")


def single_value_statistics(layer: Layer, values: int, torch_says: str) -> None:
    """PyTorch refuses statistics over one value per channel (at batch 1, even at eval) where
    a layer normalises with the sample's own statistics: BatchNorm without running
    statistics, InstanceNorm without track_running_stats (GroupNorm checks its groups)."""
    if values == 1:
        raise LayerError("invalid-value",
                         f"{layer.type} normalises each channel over one value: its variance "
                         f"is 0, so the output is the bias alone; PyTorch refuses it at batch 1 "
                         f"(\"{torch_says}\")",
                         "normalise a larger map (before the global pool), or use running "
                         "statistics (track_running_stats: true)")


class BatchNorm(Layer):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel."""

    summary = "batch normalization (inference), PyTorch nn.BatchNormNd"
    params = {
        "num_features": P("int", None, minimum=1, doc="optional: checked against the input"),
        "eps": P("float", 1e-5, minimum=0),
        "momentum": P("float", 0.1, minimum=0),
        "affine": P("bool", True),
        "track_running_stats": P("bool", True),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (1, 2) if self.ndim == 1 else self.ndim + 1)
        _check_features(self, self.num_features, shape[0], "num_features")
        if not self.track_running_stats:  # the batch's statistics, even at inference
            single_value_statistics(self, math.prod(shape[1:]),
                                    "Expected more than 1 value per channel when training")
        return Inference(shape, 0, 2 * math.prod(shape))

    def saved_for_backward(self, shapes, out):
        """In training: its input, and the batch mean and inverse deviation per channel
        (float32; its weight and running statistics are parameters and buffers)."""
        return (*saved_inputs(0), Saved("extra", elements=2 * shapes[0][0], itemsize=4,
                                        per_sample=False, label="batch statistics"))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        channels = shapes[0][0]
        out = {}
        if self.affine:
            out["weight"] = Weight((channels,))
            out["bias"] = Weight((channels,))
        if self.track_running_stats:
            out["running_mean"] = Weight((channels,), trainable=False)
            out["running_var"] = Weight((channels,), trainable=False)
            out["num_batches_tracked"] = Weight((), trainable=False)
        return out

    def channel_affine(self, weights):
        """scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale."""
        if not self.track_running_stats:
            return None  # PyTorch normalises with the batch's own statistics then
        scale = (weights["running_var"].astype("float64") + self.eps) ** -0.5
        shift = -weights["running_mean"].astype("float64") * scale
        if self.affine:
            scale = scale * weights["weight"]
            shift = shift * weights["weight"] + weights["bias"]
        return scale, shift

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import batch_norm
        (x,) = inputs
        if self.track_running_stats:
            mean, var = params["running_mean"], params["running_var"]
        else:  # batch statistics over every axis but the channels (biased variance)
            axes = tuple(range(x.ndim - 1))
            mean, var = x.mean(axis=axes), x.var(axis=axes)
        return batch_norm(x, params.get("weight"), params.get("bias"), mean, var, self.eps)


@register("groupnorm")
class GroupNorm(Layer):
    """y = (x - mean_g) / sqrt(var_g + eps) * weight + bias, statistics per group of channels."""

    summary = "group normalization, PyTorch nn.GroupNorm"
    params = {
        "num_groups": P("int", minimum=1),
        "num_channels": P("int", None, minimum=1),
        "eps": P("float", 1e-5, minimum=0),
        "affine": P("bool", True),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        _check_features(self, self.num_channels, shape[0], "num_channels")
        if shape[0] % self.num_groups:
            raise LayerError("channel-mismatch", f"num_groups {self.num_groups} does not divide "
                             f"{shape[0]} channels", f"use a divisor of {shape[0]}")
        if math.prod(shape) == self.num_groups:  # PyTorch: "Expected more than 1 value per channel"
            raise LayerError("invalid-value",
                             f"each of the {self.num_groups} groups holds one value "
                             f"({list(shape)}): its variance is 0 and the output is the bias "
                             f"alone; PyTorch refuses it (at batch 1)",
                             "use fewer groups, or normalise a larger map")
        return Inference(shape, 0, 8 * math.prod(shape))

    def saved_for_backward(self, shapes, out):
        """Its input, and the mean and reciprocal deviation of each group (per sample)."""
        return (*saved_inputs(0), Saved("extra", elements=2 * self.num_groups, label="statistics"))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        c = shapes[0][0]
        return {"weight": Weight((c,)), "bias": Weight((c,))} if self.affine else {}

    def rf_steps(self, shapes, out):
        """Whole: the mean and variance of a group span every position, even at inference."""
        return [RFStep(whole=True) for _ in shapes[0][1:]]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import group_norm
        (x,) = inputs
        return group_norm(x, self.num_groups, params.get("weight"), params.get("bias"), self.eps)


@register("local_response_norm")
class LocalResponseNorm(Layer):
    """b_c = a_c / (k + alpha/size * sum_{c' in window(c)} a_c'^2)^beta (PyTorch)."""

    summary = "local response normalization across channels (AlexNet)"
    params = {
        "size": P("int", minimum=1),
        "alpha": P("float", 1e-4),
        "beta": P("float", 0.75),
        "k": P("float", 1.0),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        return Inference(shape, 0, (2 * self.size + 3) * math.prod(shape))

    def saved_for_backward(self, shapes, out):
        """F.local_response_norm is composite: x*x (keeps x), the squares padded by size-1
        channels (kept by avg_pool), the pooled sum plus k (kept by pow) and its power
        (kept by the division with x)."""
        channels, spatial = shapes[0][0], math.prod(shapes[0][1:])
        return (*saved_inputs(0),
                Saved("extra", elements=(channels + self.size - 1) * spatial, label="padded"),
                Saved("extra", elements=channels * spatial, label="k + sum"),
                Saved("extra", elements=channels * spatial, label="power"))

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import local_response_norm
        (x,) = inputs
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)


register_ndim("batchnorm", BatchNorm)
