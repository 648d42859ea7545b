"""Convolutions: conv{1,2,3}d (dilated, grouped, depthwise), conv_transpose{1,2,3}d and
locally_connected{1,2,3}d (unshared weights).

MACs follow torchvision: multiply-accumulates of the weights, no bias. A transposed conv is
counted over its input: C_in * prod(i) * (C_out / groups) * prod(k).
FLOPs = 2 * MACs + one add per output element when there is a bias.
"""

from __future__ import annotations

import math

from convcalc import arithmetic as ar
from convcalc.diagnostics import diag
from convcalc.layers.base import (Fraction, Inference, Layer, LayerError, P, RFStep, Shape,
                                  Weight, register_ndim, saved_inputs)
from convcalc.layers.windows import resolve_padding, window_output

# Fixed kernels a conv may name with `weights:` (cross-correlation, as every framework does:
# a tap's place is where each output pixel takes its value from). Plain lists: the check
# path imports no numpy.
NAMED_KERNELS: dict[str, list[list[float]]] = {
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "box_blur": [[1 / 9] * 3] * 3,
    "gaussian_blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "shift_up": [[0, 1, 0], [0, 0, 0], [0, 0, 0]],  # the value of the pixel above
    "shift_down": [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
    "shift_left": [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
    "shift_right": [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
    "edge_detect": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
}
WEIGHT_NAMES = tuple(NAMED_KERNELS)


class _ChannelsMixin:
    def check_channels(self, channels: int) -> None:
        given = getattr(self, "in_channels", None)
        if given is not None and given != channels:
            raise LayerError("channel-mismatch",
                             f"in_channels is {given} but the input has {channels} channels",
                             f"set in_channels: {channels}, or remove it (it is inferred)")
        groups = getattr(self, "groups", 1)
        out = getattr(self, "out_channels")
        if channels % groups or out % groups:
            raise LayerError("channel-mismatch",
                             f"groups={groups} must divide both in_channels ({channels}) and "
                             f"out_channels ({out})",
                             _groups_hint(channels, out))


def _groups_hint(channels: int, out: int) -> str:
    """A groups value that works: a divisor of gcd(in_channels, out_channels)."""
    common = math.gcd(channels, out)
    if common == 1:
        return f"use groups: 1 ({channels} and {out} have no other common divisor)"
    return f"use groups: {common}, or another divisor of {common}"


def nested_shape(value) -> tuple[int, ...] | None:
    """The shape of nested lists of numbers, or None when ragged or not numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ()
    if not isinstance(value, list) or not value:
        return None
    inner = {nested_shape(v) for v in value}
    if len(inner) != 1 or None in inner:
        return None
    return (len(value), *inner.pop())


class Conv(_ChannelsMixin, Layer):
    """out = floor((i + p_b + p_a - d*(k-1) - 1) / s) + 1 per axis; C_out = out_channels."""

    summary = "convolution (cross-correlation), PyTorch nn.ConvNd"
    params = {
        "out_channels": P("int", minimum=1, doc="filters (output channels)"),
        "kernel_size": P("tuple", minimum=1, doc="int or per-axis list, e.g. [3, 1]"),
        "stride": P("tuple", 1, minimum=1),
        "padding": P("padding", 0, doc="int, per-axis list, [[before, after], ...], valid, same"),
        "dilation": P("tuple", 1, minimum=1, doc="1 = no dilation (PyTorch)"),
        "groups": P("int", 1, minimum=1, doc="in_channels for depthwise"),
        "bias": P("bool", True),
        "padding_mode": P("choice", "zeros", ("zeros", "reflect", "replicate", "circular")),
        "in_channels": P("int", None, minimum=1, doc="optional: checked against the input"),
        "weights": P("any", None, doc=f"fixed kernel: one of {', '.join(WEIGHT_NAMES)}, or numbers"),
        "weight_standardization": P("choice", "none", ("none", "std", "scaled"),
                                    doc="std: timm StdConv; scaled: ScaledStdConv (+ gain)"),
        "ws_eps": P("float", 1e-6, minimum=0),
        "ws_gamma": P("float", 1.0),
    }

    def geometry(self, spatial: tuple[int, ...]):
        """Concrete padding pairs for this input size, and padding notes."""
        return resolve_padding(self.padding, spatial, self.kernel_size, self.stride, self.dilation)

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        channels, spatial = shape[0], shape[1:]
        self.check_channels(channels)
        pads, notes = self.geometry(spatial)
        self._check_padding_mode(spatial, pads)
        self._check_fixed_weights(channels)
        out_spatial, fit_notes = window_output(self.type, spatial, self.kernel_size, self.stride,
                                               pads, self.dilation)
        out = (self.out_channels, *out_spatial)
        macs = math.prod(out) * (channels // self.groups) * math.prod(self.kernel_size)
        flops = 2 * macs + (math.prod(out) if self.bias else 0)
        return Inference(out, macs, flops, tuple(notes + fit_notes))

    def _check_fixed_weights(self, channels: int) -> None:
        """`weights:` names a kernel of NAMED_KERNELS, or gives the kernel's or the whole
        weight's numbers."""
        if self.weights is None:
            return
        kernel = tuple(self.kernel_size)
        whole = (self.out_channels, channels // self.groups, *kernel)
        if isinstance(self.weights, str):
            if self.weights not in NAMED_KERNELS:
                from convcalc.spec import did_you_mean
                raise LayerError("invalid-value", f"weights: unknown kernel {self.weights!r}",
                                 did_you_mean(self.weights, NAMED_KERNELS)
                                 or f"use one of {', '.join(NAMED_KERNELS)}, or give numbers")
            if kernel != (3, 3):
                raise LayerError("invalid-value", f"weights: {self.weights} is a 3x3 kernel but "
                                 f"kernel_size is {list(kernel)}", "use kernel_size: 3 on a conv2d")
            return
        shape = nested_shape(self.weights)
        if shape not in (kernel, whole):
            raise LayerError("invalid-value", f"weights: inline numbers of shape "
                             f"{list(shape) if shape is not None else 'ragged'}; expected the "
                             f"kernel {list(kernel)} or the whole weight {list(whole)}",
                             "give one kernel (applied per channel) or every filter")

    def _check_padding_mode(self, spatial, pads) -> None:
        if self.padding_mode in ("reflect", "circular"):
            for i, (pb, pa) in zip(spatial, pads):
                limit = i - 1 if self.padding_mode == "reflect" else i
                if max(pb, pa) > limit:
                    raise LayerError("invalid-value",
                                     f"padding_mode {self.padding_mode} needs padding <= {limit} "
                                     f"for an input of {i}; got {max(pb, pa)}",
                                     "use padding_mode zeros or replicate, or less padding")

    def saved_for_backward(self, shapes, out):
        """Its input (and its weight, a parameter: not counted)."""
        return saved_inputs(0)

    def backward_macs(self, macs, input_grad, weight_grad):
        """grad_input is a transposed product of the forward's size, and so is grad_weight
        (for groups g too: each group's weights meet their own channels only)."""
        return macs * (int(any(input_grad)) + int(weight_grad))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        channels = shapes[0][0]
        out = {"weight": Weight((self.out_channels, channels // self.groups, *self.kernel_size))}
        if self.bias:
            out["bias"] = Weight((self.out_channels,))
        if self.weight_standardization == "scaled":
            out["gain"] = Weight((self.out_channels, *(1,) * (1 + len(self.kernel_size))), fill=1.0)
        return out

    def effective_weight(self, weights):
        """The weight the conv applies: as given, or standardised per filter (timm
        StdConv2d: (w - mean) / sqrt(var + eps); ScaledStdConv2d: times gain * gamma /
        sqrt(fan_in)), mean and biased variance over each filter's Cin/groups * prod(k)."""
        weight = weights["weight"]
        if self.weight_standardization == "none":
            return weight
        from convcalc.executor.kernels_math import standardized_weight
        gain = None
        if self.weight_standardization == "scaled":
            fan_in = math.prod(weight.shape[1:])
            gain = weights["gain"].reshape(-1) * (self.ws_gamma * fan_in ** -0.5)
        return standardized_weight(weight, self.ws_eps, gain)

    def rf_steps(self, shapes, out) -> list[RFStep]:
        pads, _ = self.geometry(shapes[0][1:])
        return [RFStep(Fraction(ar.effective_kernel(k, d)), Fraction(s), Fraction(pb))
                for k, s, d, (pb, _pa) in zip(self.kernel_size, self.stride, self.dilation, pads)]

    def prepare(self, weights, shapes) -> dict:
        from convcalc.executor.kernels import conv_prepared_weight
        return {"weight": conv_prepared_weight(self.effective_weight(weights), self.groups),
                "bias": weights.get("bias")}

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import conv
        (x,) = inputs
        pads, _ = self.geometry(x.shape[1:-1])
        return conv(x, params["weight"], params.get("bias"), self.stride, pads, self.dilation,
                    self.groups, self.padding_mode)

    def absorb_affine(self, weights, scale, shift) -> dict | None:
        """W'[co] = W[co] * scale[co]; b' = b * scale + shift. None for a standardised
        weight: standardisation would remove the scale again."""
        if self.weight_standardization != "none":
            return None
        weight = weights["weight"].astype("float32", copy=False)  # W * scale in float32
        folded = weight * scale.astype("float32").reshape((-1,) + (1,) * (weight.ndim - 1))
        bias = weights.get("bias")
        shift = shift if bias is None else bias.astype("float64") * scale + shift
        return {"weight": folded, "bias": shift.astype("float32")}


class ConvTranspose(_ChannelsMixin, Layer):
    """out = (i-1)*s - p_b - p_a + d*(k-1) + output_padding + 1 per axis (PyTorch)."""

    summary = "transposed convolution, PyTorch nn.ConvTransposeNd"
    params = {
        "out_channels": P("int", minimum=1),
        "kernel_size": P("tuple", minimum=1),
        "stride": P("tuple", 1, minimum=1),
        "padding": P("padding", 0, doc="int, per-axis list or [[before, after], ...]"),
        "output_padding": P("tuple", 0, minimum=0, doc="< max(stride, dilation)"),
        "dilation": P("tuple", 1, minimum=1),
        "groups": P("int", 1, minimum=1),
        "bias": P("bool", True),
        "in_channels": P("int", None, minimum=1),
        "weights": P("any", None),
    }

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        channels, spatial = shape[0], shape[1:]
        self.check_channels(channels)
        if self.padding == "same":
            raise LayerError("invalid-value", "padding 'same' is not defined for a transposed conv",
                             "give explicit padding; `convcalc solve` finds one")
        sizes, notes = [], []
        for i, k, s, (pb, pa), d, op in zip(spatial, self.kernel_size, self.stride, self.padding,
                                            self.dilation, self.output_padding):
            if op >= max(s, d):
                raise LayerError("invalid-value",
                                 f"output_padding {op} must be smaller than stride {s} or "
                                 f"dilation {d}", f"use output_padding < {max(s, d)}")
            sizes.append(ar.transposed_output_size(i, k, s, pb, pa, d, op))
        if any(o <= 0 for o in sizes):
            raise LayerError("non-positive-output",
                             f"{self.type} output would be {sizes}: padding exceeds the "
                             f"upsampled extent", "use less padding")
        uneven = sorted({(k, s) for k, s in zip(self.kernel_size, self.stride) if s > 1 and k % s})
        if uneven:
            k, s = uneven[0]
            notes.append(diag("checkerboard",
                              f"kernel {k} is not divisible by stride {s}: uneven overlap "
                              f"paints some outputs more than others (Odena et al. 2016)",
                              f"use kernel_size {k + (s - k % s)} (a multiple of {s}), or "
                              f"upsample then convolve"))
        out = (self.out_channels, *sizes)
        macs = math.prod(shape) * (self.out_channels // self.groups) * math.prod(self.kernel_size)
        flops = 2 * macs + (math.prod(out) if self.bias else 0)
        return Inference(out, macs, flops, tuple(notes))

    def saved_for_backward(self, shapes, out):
        """Its input (and its weight, a parameter: not counted)."""
        return saved_inputs(0)

    def backward_macs(self, macs, input_grad, weight_grad):
        """grad_input is a transposed product of the forward's size, and so is grad_weight
        (for groups g too: each group's weights meet their own channels only)."""
        return macs * (int(any(input_grad)) + int(weight_grad))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        channels = shapes[0][0]
        out = {"weight": Weight((channels, self.out_channels // self.groups, *self.kernel_size))}
        if self.bias:
            out["bias"] = Weight((self.out_channels,))
        return out

    def rf_steps(self, shapes, out) -> list[RFStep]:
        """Zero-insertion by s (k=1, stride 1/s) composed with a conv of k_eff, pad k_eff-1-p_b."""
        steps = []
        for k, s, d, (pb, _pa) in zip(self.kernel_size, self.stride, self.dilation, self.padding):
            k_eff = ar.effective_kernel(k, d)
            steps.append(RFStep(1 + Fraction(k_eff - 1, s), Fraction(1, s),
                                Fraction(k_eff - 1 - pb, s)))
        return steps

    def prepare(self, weights, shapes) -> dict:
        from convcalc.executor.kernels import conv_transpose_prepared_weight
        return {"weight": conv_transpose_prepared_weight(weights["weight"], self.groups),
                "bias": weights.get("bias")}

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import conv_transpose
        (x,) = inputs
        return conv_transpose(x, params["weight"], params.get("bias"), self.stride, self.padding,
                              self.output_padding, self.dilation, self.groups)

    def absorb_affine(self, weights, scale, shift) -> dict:
        """W'[ci, j] = W[ci, j] * scale[g(ci)*Cout_g + j]; b' = b * scale + shift."""
        weight = weights["weight"]  # (Cin, Cout/groups, *k)
        cin, cout_g = weight.shape[:2]
        per_row = scale.reshape(self.groups, 1, cout_g).repeat(cin // self.groups, axis=1)
        factor = per_row.reshape((cin, cout_g) + (1,) * (weight.ndim - 2))
        bias = weights.get("bias")
        shift = shift if bias is None else bias.astype("float64") * scale + shift
        return {"weight": (weight.astype("float64") * factor).astype("float32"),
                "bias": shift.astype("float32")}


class LocallyConnected(Layer):
    """A conv with unshared weights: every output position has its own filter bank."""

    summary = "locally-connected layer (unshared convolution), Keras LocallyConnectedNd"
    params = {
        "out_channels": P("int", minimum=1),
        "kernel_size": P("tuple", minimum=1),
        "stride": P("tuple", 1, minimum=1),
        "padding": P("padding", 0),
        "bias": P("bool", True),
        "in_channels": P("int", None, minimum=1),
    }

    def geometry(self, spatial):
        return resolve_padding(self.padding, spatial, self.kernel_size, self.stride,
                               (1,) * self.ndim)

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.need_rank(shape, self.ndim + 1)
        if self.in_channels is not None and self.in_channels != shape[0]:
            raise LayerError("channel-mismatch",
                             f"in_channels is {self.in_channels} but the input has {shape[0]}",
                             f"set in_channels: {shape[0]}")
        pads, notes = self.geometry(shape[1:])
        out_spatial, fit_notes = window_output(self.type, shape[1:], self.kernel_size,
                                               self.stride, pads, (1,) * self.ndim)
        out = (self.out_channels, *out_spatial)
        macs = math.prod(out) * shape[0] * math.prod(self.kernel_size)
        flops = 2 * macs + (math.prod(out) if self.bias else 0)
        return Inference(out, macs, flops, tuple(notes + fit_notes))

    def _out_spatial(self, shape: Shape) -> tuple[int, ...]:
        pads, _ = self.geometry(shape[1:])
        return tuple(ar.conv_output_size(i, k, s, pb, pa) for i, k, s, (pb, pa)
                     in zip(shape[1:], self.kernel_size, self.stride, pads))

    def saved_for_backward(self, shapes, out):
        """Its input (and its weight, a parameter: not counted)."""
        return saved_inputs(0)

    def backward_macs(self, macs, input_grad, weight_grad):
        """grad_input is a transposed product of the forward's size, and so is grad_weight
        (for groups g too: each group's weights meet their own channels only)."""
        return macs * (int(any(input_grad)) + int(weight_grad))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        out_spatial = self._out_spatial(shapes[0])
        out = {"weight": Weight((*out_spatial, self.out_channels, shapes[0][0], *self.kernel_size))}
        if self.bias:
            out["bias"] = Weight((self.out_channels, *out_spatial))
        return out

    def rf_steps(self, shapes, out) -> list[RFStep]:
        pads, _ = self.geometry(shapes[0][1:])
        return [RFStep(Fraction(k), Fraction(s), Fraction(pb))
                for k, s, (pb, _pa) in zip(self.kernel_size, self.stride, pads)]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import locally_connected
        (x,) = inputs
        pads, _ = self.geometry(x.shape[1:-1])
        return locally_connected(x, params["weight"], params.get("bias"), self.kernel_size,
                                 self.stride, pads)


register_ndim("conv", Conv)
register_ndim("conv_transpose", ConvTranspose)
register_ndim("locally_connected", LocallyConnected)
