"""blur_pool2d: a fixed, non-learned depthwise binomial filter with a stride (Zhang 2019,
"Making Convolutional Networks Shift-Invariant Again"), as timm's BlurPool2d.

The filter is the outer product of the binomial coefficients C(n-1, k) / 2^(n-1), n =
filt_size; the input is padded by p = ((stride - 1) + (filt_size - 1)) // 2 on every side
with `pad_mode` (reflect by default), then each channel is convolved with the filter.
out = floor((i + 2p - filt_size) / stride) + 1. No state_dict entries (timm registers the
filter as a non-persistent buffer), so no parameters. MACs: counted as the depthwise conv it
is, C * prod(out) * filt_size^2 (PyTorch runs F.conv2d); FLOPs 2 * MACs.
"""

from __future__ import annotations

import math

from convcalc import arithmetic as ar
from convcalc.layers.base import Fraction, Inference, Layer, LayerError, P, RFStep, register


def binomial_taps(size: int) -> list[float]:
    """C(size-1, k) / 2^(size-1), k = 0..size-1: the rows of Pascal's triangle, summing to 1."""
    return [math.comb(size - 1, k) / 2 ** (size - 1) for k in range(size)]


@register("blur_pool2d")
class BlurPool2d(Layer):
    """Binomial blur then subsample, per channel: timm BlurPool2d."""

    summary = "fixed binomial blur with a stride (anti-aliased downsampling, timm BlurPool2d)"
    params = {
        "filt_size": P("int", 3, minimum=2),
        "stride": P("int", 2, minimum=1),
        "pad_mode": P("choice", "reflect", ("reflect", "constant", "replicate", "circular")),
        "channels": P("int", None, minimum=1, doc="optional: checked against the input"),
    }

    @property
    def pad(self) -> int:
        """timm get_padding: ((stride - 1) + (filt_size - 1)) // 2 on every side."""
        return ((self.stride - 1) + (self.filt_size - 1)) // 2

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, 3)
        if self.channels is not None and self.channels != shape[0]:
            raise LayerError("channel-mismatch", f"channels is {self.channels} but the input "
                             f"has {shape[0]}", f"set channels: {shape[0]}, or remove it")
        if self.pad_mode == "reflect" and self.pad > min(shape[1:]) - 1:
            raise LayerError("invalid-value", f"reflect padding {self.pad} needs an input of "
                             f"at least {self.pad + 1} on every axis; got {list(shape[1:])}",
                             "use pad_mode: constant, or a larger input")
        sizes = [ar.conv_output_size(i, self.filt_size, self.stride, self.pad, self.pad)
                 for i in shape[1:]]
        if any(o <= 0 for o in sizes):
            raise LayerError("non-positive-output", f"blur_pool2d output would be {sizes}",
                             "use a larger input or a smaller filt_size")
        out = (shape[0], *sizes)
        macs = math.prod(out) * self.filt_size ** 2
        return Inference(out, macs, 2 * macs)

    def rf_steps(self, shapes, out):
        return [RFStep(Fraction(self.filt_size), Fraction(self.stride), Fraction(self.pad))
                for _ in shapes[0][1:]]

    def filter(self):
        """The (filt_size, filt_size) float32 filter: the outer product of binomial_taps."""
        import numpy as np
        taps = np.array(binomial_taps(self.filt_size), np.float64)
        return np.outer(taps, taps).astype(np.float32)

    def forward(self, inputs, params, refs):
        import numpy as np
        from convcalc.executor.kernels import conv, pad
        (x,) = inputs
        padded = pad(x, ((self.pad, self.pad),) * 2, self.pad_mode)
        weight = np.broadcast_to(self.filter(), (x.shape[-1], 1, self.filt_size, self.filt_size))
        return conv(padded, np.ascontiguousarray(weight), None, self.stride, ((0, 0),) * 2, 1,
                    x.shape[-1])
