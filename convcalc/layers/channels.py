"""Channel rearrangements: channel_shuffle (ShuffleNet) and coord_channels (CoordConv)."""

from __future__ import annotations

from convcalc.layers.base import Inference, Layer, LayerError, P, register


@register("channel_shuffle")
class ChannelShuffle(Layer):
    """[C, ...] viewed as [groups, C/groups, ...], transposed to [C/groups, groups, ...]."""

    summary = "channel shuffle, PyTorch nn.ChannelShuffle"

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {"groups": P("int", minimum=1)}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        if shape[0] % self.groups:
            raise LayerError("channel-mismatch", f"groups {self.groups} does not divide "
                             f"{shape[0]} channels", f"use a divisor of {shape[0]}")
        return Inference(shape)

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import channel_shuffle
        return channel_shuffle(inputs[0], self.groups)


@register("coord_channels")
class CoordChannels(Layer):
    """Append one coordinate channel per spatial axis, in [-1, 1] (Liu et al. 2018), and the
    radius sqrt(sum of squares) with with_r."""

    summary = "CoordConv: append coordinate channels"
    params = {"with_r": P("bool", False)}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        extra = len(shape) - 1 + (1 if self.with_r else 0)
        return Inference((shape[0] + extra, *shape[1:]))

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import coord_channels
        return coord_channels(inputs[0], self.with_r)
