"""Pooling: maxpool / avgpool {1,2,3}d, adaptive pools, global pools and max_unpool.

Pools have no MACs. FLOPs: max-pool k-1 comparisons per output, avg-pool k adds and a
divide per output (k = window elements), adaptive pools the same over their windows.
"""

from __future__ import annotations

import math

from convcalc import arithmetic as ar
from convcalc.layers.base import (Fraction, Inference, Layer, LayerError, P, RFStep, Saved,
                                  register, register_ndim, saved_inputs)
from convcalc.layers.windows import window_output


class _Pool(Layer):
    """out = floor_or_ceil((i + 2p - d*(k-1) - 1) / s) + 1 (PyTorch, ceil clipped)."""

    def geometry(self, spatial):
        """stride, (before, after) pads for this input size, dilation; `same` is
        TensorFlow SAME at this size (timm MaxPool2dSame, AvgPool2dSame)."""
        stride = self.stride if self.stride is not None else self.kernel_size
        dilation = getattr(self, "dilation", (1,) * self.ndim)
        pads = self.padding
        if pads == "same":
            pads = tuple(ar.same_padding(i, k, s, d) for i, k, s, d
                         in zip(spatial, self.kernel_size, stride, dilation))
        return stride, pads, dilation

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        stride, pads, dilation = self.geometry(shape[1:])
        for k, (pb, pa) in zip(self.kernel_size, pads):
            if self.padding != "same" and max(pb, pa) > ar.max_pool_padding(k):
                raise LayerError("invalid-value",
                                 f"padding {max(pb, pa)} exceeds half the kernel_size {k} "
                                 f"(PyTorch rejects it, whatever the dilation)",
                                 f"use padding <= {ar.max_pool_padding(k)}")
        out_spatial, notes = window_output(self.type, shape[1:], self.kernel_size, stride, pads,
                                           dilation, ceil_mode=self.ceil_mode)
        out = (shape[0], *out_spatial)
        return Inference(out, 0, math.prod(out) * self.flops_per_output(), tuple(notes))

    def rf_steps(self, shapes, out):
        stride, pads, dilation = self.geometry(shapes[0][1:])
        return [RFStep(Fraction(ar.effective_kernel(k, d)), Fraction(s), Fraction(pb))
                for k, s, d, (pb, _pa) in zip(self.kernel_size, stride, dilation, pads)]


class MaxPool(_Pool):
    summary = "max pooling, PyTorch nn.MaxPoolNd"

    def saved_for_backward(self, shapes, out):
        """Its input and the argmax indices (int64, one per output)."""
        return (*saved_inputs(0), Saved("extra", elements=math.prod(out), itemsize=8,
                                        label="indices"))
    params = {
        "kernel_size": P("tuple", minimum=1),
        "stride": P("tuple", None, minimum=1, doc="defaults to kernel_size"),
        "padding": P("padding", 0, doc="at most half the kernel_size, or same "
                                       "(TensorFlow SAME at every input size, -inf pads)"),
        "dilation": P("tuple", 1, minimum=1),
        "ceil_mode": P("bool", False),
    }

    def flops_per_output(self) -> int:
        return math.prod(self.kernel_size) - 1

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import max_pool
        (x,) = inputs
        stride, pads, dilation = self.geometry(x.shape[1:-1])
        if "indices" in params.get("side_outputs", ()):
            out, indices = max_pool(x, self.kernel_size, stride, pads, dilation, self.ceil_mode,
                                    return_indices=True)
            return out, {"indices": indices}
        return max_pool(x, self.kernel_size, stride, pads, dilation, self.ceil_mode)


class AvgPool(_Pool):
    summary = "average pooling, PyTorch nn.AvgPoolNd"
    params = {
        "kernel_size": P("tuple", minimum=1),
        "stride": P("tuple", None, minimum=1, doc="defaults to kernel_size"),
        "padding": P("padding", 0, doc="at most half the kernel, or same (TensorFlow SAME "
                                       "at every input size: count_include_pad true counts "
                                       "the pads as timm does, false excludes them as TF)"),
        "ceil_mode": P("bool", False),
        "count_include_pad": P("bool", True),
        "divisor_override": P("int", None, minimum=1),
    }

    def flops_per_output(self) -> int:
        return math.prod(self.kernel_size)

    def infer(self, shapes, refs) -> Inference:
        # PyTorch's 3-D average pool checks the input before padding (the 1-D and 2-D ones
        # do not): avg_pool3d of a 3x3x3 input with kernel 4 is refused even with padding 1.
        if self.ndim == 3 and self.padding != "same":
            self.need_rank(shapes[0], 4)
            small = [(axis, i, k) for axis, i, k in zip(("depth", "height", "width"),
                                                         shapes[0][1:], self.kernel_size) if i < k]
            if small:
                axis, i, k = small[0]
                raise LayerError("non-positive-output",
                                 f"avgpool3d input {i} on {axis} is smaller than kernel_size {k} "
                                 f"(PyTorch's 3-D average pool checks the unpadded input)",
                                 "use a larger input or a smaller kernel_size (padding does not "
                                 "help here)")
        return super().infer(shapes, refs)

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import avg_pool
        (x,) = inputs
        stride, pads, _ = self.geometry(x.shape[1:-1])
        return avg_pool(x, self.kernel_size, stride, pads, self.ceil_mode,
                        self.count_include_pad, self.divisor_override)


class _AdaptivePool(Layer):
    """Window j on an axis: [floor(j*I/O), ceil((j+1)*I/O)) (PyTorch)."""

    params = {"output_size": P("size_or_keep", doc="int or per-axis list; null keeps that axis "
                                                   "(2-D and 3-D only, as in PyTorch)")}

    def out_spatial(self, spatial):
        return tuple(i if o is None else o for i, o in zip(spatial, self.output_size))

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        out_spatial = self.out_spatial(shape[1:])
        reads = math.prod(ar.adaptive_reads(i, o) for i, o in zip(shape[1:], out_spatial))
        # average: (window - 1) adds and a divide per output; max: (window - 1) comparisons
        flops = shape[0] * (reads - (math.prod(out_spatial) if self.kind == "max" else 0))
        return Inference((shape[0], *out_spatial), 0, flops)

    def rf_steps(self, shapes, out):
        """At a concrete size: stride I/O and the tightest (k, p) holding every window;
        k = I/O, p = 0 when O divides I (I=5, O=3: windows 2, 3, 2 give k = 3, p = 2/3);
        in closed form (arithmetic.adaptive_rf), equal to enclosing_rf over the windows."""
        return [RFStep(*ar.adaptive_rf(i, o)) for i, o in zip(shapes[0][1:], out[1:])]

    def forward(self, inputs, params, refs):
        (x,) = inputs
        return _adaptive_kernel(self.kind)(x, self.output_size)


def _adaptive_kernel(kind: str):
    """The NumPy kernel of an adaptive (or global) pool: average or max."""
    from convcalc.executor import kernels
    return kernels.adaptive_avg_pool if kind == "avg" else kernels.adaptive_max_pool


class AdaptiveAvgPool(_AdaptivePool):
    summary = "adaptive average pooling, PyTorch nn.AdaptiveAvgPoolNd"
    kind = "avg"

    def saved_for_backward(self, shapes, out):
        """Its input; nothing for output size 1, which PyTorch computes as a mean."""
        return () if all(n == 1 for n in out[1:]) else saved_inputs(0)


class AdaptiveMaxPool(_AdaptivePool):
    def saved_for_backward(self, shapes, out):
        """Its input and the argmax indices (int64, one per output)."""
        return (*saved_inputs(0), Saved("extra", elements=math.prod(out), itemsize=8,
                                        label="indices"))

    summary = "adaptive max pooling, PyTorch nn.AdaptiveMaxPoolNd"
    kind = "max"


class _GlobalPool(Layer):
    """[C, *spatial] -> [C] (or [C, 1, ...] with keepdim): one value per channel."""

    params = {"keepdim": P("bool", False, doc="keep spatial axes of size 1 (PyTorch's "
                                                  "AdaptiveAvgPool2d(1) shape)")}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, (2, 3, 4))
        out = (shape[0], *(1,) * (len(shape) - 1)) if self.keepdim else (shape[0],)
        # average: (n - 1) adds and a divide per channel; max: (n - 1) comparisons
        return Inference(out, 0, math.prod(shape) - (shape[0] if self.kind == "max" else 0))

    def rf_steps(self, shapes, out):
        return [RFStep(whole=True) for _ in shapes[0][1:]]

    def forward(self, inputs, params, refs):
        (x,) = inputs
        out = _adaptive_kernel(self.kind)(x, (1,) * (x.ndim - 2))  # (N, 1, ..., 1, C)
        return out if self.keepdim else out.reshape(x.shape[0], x.shape[-1])


class GlobalAvgPool(_GlobalPool):
    summary = "global average pooling (mean over all spatial positions)"
    kind = "avg"

    def saved_for_backward(self, shapes, out):
        """Nothing: a mean's gradient needs only the input's size."""
        return ()


class GlobalMaxPool(_GlobalPool):
    summary = "global max pooling (max over all spatial positions)"
    kind = "max"

    def saved_for_backward(self, shapes, out):
        """amax keeps its input and its result."""
        return (*saved_inputs(0), Saved("output"))


class MaxUnpool(Layer):
    """out = (i-1)*s - 2p + k per axis (PyTorch nn.MaxUnpoolNd), or output_size."""

    summary = "max unpooling with the indices of a max-pool layer"
    ref_outputs = {"indices": "indices"}
    params = {
        "kernel_size": P("tuple", minimum=1),
        "stride": P("tuple", None, minimum=1, doc="defaults to kernel_size"),
        "padding": P("tuple", 0, minimum=0),
        "indices": P("ref", doc="the maxpool layer whose argmax positions are used"),
        "output_size": P("size", None, doc="defaults to the formula; often the pool's input"),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        pooled = refs.get("indices")
        if pooled is not None and tuple(pooled) != tuple(shape):
            raise LayerError("shape-mismatch",
                             f"input {list(shape)} differs from the shape of the indices' "
                             f"layer {self.indices!r} {list(pooled)}",
                             "unpool the output of the same max-pool (or a same-shaped tensor)")
        stride = self.stride or self.kernel_size
        formula = tuple(ar.unpool_output_size(i, k, s, p) for i, k, s, p
                        in zip(shape[1:], self.kernel_size, stride, self.padding))
        out_spatial = self.output_size or formula
        source = refs.get("indices.input")
        if source is not None and tuple(out_spatial) != tuple(source[1:]):
            raise LayerError("shape-mismatch",
                             f"output {list(out_spatial)} differs from the input of max-pool "
                             f"{self.indices!r} {list(source[1:])}: its indices are flat "
                             f"positions in that size, so values would land in wrong places",
                             f"set output_size: {list(source[1:])}")
        return Inference((shape[0], *out_spatial), 0, 0)

    def rf_steps(self, shapes, out):
        """Input i lands in its pool window [i*s - p, i*s - p + k - 1]: a transposed conv's
        step, k' = 1 + (k-1)/s, s' = 1/s, p' = (k-1-p)/s."""
        stride = self.stride or self.kernel_size
        return [RFStep(1 + Fraction(k - 1, s), Fraction(1, s), Fraction(k - 1 - p, s))
                for k, s, p in zip(self.kernel_size, stride, self.padding)]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import max_unpool
        (x,) = inputs
        stride = self.stride or self.kernel_size
        formula = [ar.unpool_output_size(i, k, s, p) for i, k, s, p
                   in zip(x.shape[1:-1], self.kernel_size, stride, self.padding)]
        size = tuple(f if o is None else o for f, o in zip(formula, self.output_size or formula))
        return max_unpool(x, refs["indices"], size)


register_ndim("maxpool", MaxPool)
register_ndim("avgpool", AvgPool)
register_ndim("adaptive_avgpool", AdaptiveAvgPool)
register_ndim("adaptive_maxpool", AdaptiveMaxPool)
register_ndim("max_unpool", MaxUnpool)
register("global_avgpool")(GlobalAvgPool)
register("global_maxpool")(GlobalMaxPool)
