"""flatten and linear.

linear applies to the last axis, as in PyTorch (any leading axes are positions):
MACs = in_features * out_features * positions; FLOPs = 2 * MACs + bias adds.
"""

from __future__ import annotations

import math

from convcalc.layers.base import (Inference, Layer, LayerError, P, RFStep, Weight, register,
                                  saved_inputs)


@register("flatten")
class Flatten(Layer):
    """Merge axes start_dim..end_dim (PyTorch dims, batch axis included: 1 = channels)."""

    summary = "flatten axes into one, PyTorch nn.Flatten"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()
    params = {"start_dim": P("int", 1), "end_dim": P("int", -1)}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        full = (1, *shape)  # with the batch axis, so the dims read as in PyTorch
        start = self.start_dim % len(full)
        end = self.end_dim % len(full)
        if start == 0 or start > end or self.start_dim >= len(full) or self.end_dim >= len(full):
            raise LayerError("invalid-value", f"start_dim {self.start_dim} .. end_dim "
                             f"{self.end_dim} is not a range of non-batch axes of {list(shape)}",
                             "use the defaults start_dim: 1, end_dim: -1")
        out = (*full[1:start], math.prod(full[start:end + 1]), *full[end + 1:])
        return Inference(tuple(out), 0, 0)

    def rf_steps(self, shapes, out):
        """Whole (one unit) when it flattens to a vector [F]; unknown when spatial axes are
        merged but others kept ([C, H*W]); unchanged when it merges nothing."""
        if tuple(shapes[0]) == tuple(out):
            return [RFStep() for _ in shapes[0][1:]]
        if len(out) == 1 or all(n == 1 for n in shapes[0][1:]):
            return [RFStep(whole=True) for _ in shapes[0][1:]]
        return None

    def forward(self, inputs, params, refs):
        """Through channels-first, so the order is PyTorch's and linear weights load as is."""
        from convcalc.executor.layout import to_channels_first, to_channels_last
        first = to_channels_first(inputs[0])
        start, end = self.start_dim % first.ndim, self.end_dim % first.ndim
        merged = first.reshape(first.shape[:start] + (-1,) + first.shape[end + 1:])
        return to_channels_last(merged)


@register("linear")
class Linear(Layer):
    """y = x W^T + b over the last axis."""

    summary = "fully connected layer, PyTorch nn.Linear"
    params = {
        "out_features": P("int", minimum=1),
        "in_features": P("int", None, minimum=1, doc="optional: checked against the input"),
        "bias": P("bool", True),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        features = shape[-1]
        if self.in_features is not None and self.in_features != features:
            raise LayerError("channel-mismatch", f"in_features is {self.in_features} but the "
                             f"input {list(shape)} has {features} features on its last axis",
                             f"set in_features: {features}" + (
                                 ", or add a flatten before it" if len(shape) > 1 else ""))
        out = (*shape[:-1], self.out_features)
        macs = math.prod(shape) * self.out_features
        return Inference(out, macs, 2 * macs + (math.prod(out) if self.bias else 0))

    def saved_for_backward(self, shapes, out):
        """Its input (and its weight, a parameter: not counted)."""
        return saved_inputs(0)

    def backward_macs(self, macs, input_grad, weight_grad):
        """grad_input is a transposed product of the forward's size, and so is grad_weight
        (for groups g too: each group's weights meet their own channels only)."""
        return macs * (int(any(input_grad)) + int(weight_grad))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        out = {"weight": Weight((self.out_features, shapes[0][-1]))}
        if self.bias:
            out["bias"] = Weight((self.out_features,))
        return out

    def rf_steps(self, shapes, out):
        """Whole along the last axis (the features); other axes are positions."""
        spatial = shapes[0][1:]
        return [RFStep() for _ in spatial[:-1]] + [RFStep(whole=True)] if spatial else []

    def forward(self, inputs, params, refs):
        """Over the last axis of PyTorch's layout: the channels-last array's axis -2 when the
        input has spatial axes, (N, F)'s last otherwise."""
        from convcalc.executor.kernels import linear
        (x,) = inputs
        if x.ndim == 2:
            return linear(x, params["weight"], params.get("bias"))
        moved = linear(x.swapaxes(-1, -2), params["weight"], params.get("bias"))
        return moved.swapaxes(-1, -2)
