"""Per-element kinds with parameters or learned values: softplus, mish, hardtanh, prelu,
layer_scale (a learned per-channel scale) and scalar_affine (a learned scalar scale and
bias). Shape unchanged; receptive field k = s = 1.

FLOPs per element: softplus 4 (multiply, exp, log1p, divide), mish 10 (softplus 4, tanh 5,
a multiply), hardtanh 2, prelu 2, layer_scale 1, scalar_affine 2 (1 without bias).
"""

from __future__ import annotations

import math

from convcalc.layers.activation import INPLACE, Elementwise, clamp_saved
from convcalc.layers.base import Inference, Layer, LayerError, P, Weight, register


def _kernel(name: str):
    from convcalc.executor import kernels_math
    return getattr(kernels_math, name)


@register("softplus")
class Softplus(Elementwise):
    summary = "log(1 + exp(beta*x)) / beta, x where beta*x > threshold (nn.Softplus)"
    params = {"beta": P("float", 1.0), "threshold": P("float", 20.0)}
    flops_per_element = 4

    def infer(self, shapes, refs) -> Inference:
        if self.beta == 0:
            raise LayerError("invalid-value", "softplus beta 0 divides by zero",
                             "use a non-zero beta (PyTorch's default is 1)")
        return super().infer(shapes, refs)

    def forward(self, inputs, params, refs):
        return _kernel("softplus")(inputs[0], self.beta, self.threshold)


@register("mish")
class Mish(Elementwise):
    summary = "x * tanh(softplus(x)) (nn.Mish)"
    params = {"inplace": INPLACE}
    flops_per_element = 10

    def forward(self, inputs, params, refs):
        return _kernel("mish")(inputs[0])


@register("hardtanh")
class Hardtanh(Elementwise):
    summary = "min(max(x, min_val), max_val) (nn.Hardtanh)"
    params = {"min_val": P("float", -1.0), "max_val": P("float", 1.0), "inplace": INPLACE}
    flops_per_element = 2

    def infer(self, shapes, refs) -> Inference:
        if self.min_val > self.max_val:
            raise LayerError("invalid-value", f"hardtanh min_val {self.min_val:g} exceeds "
                             f"max_val {self.max_val:g}", "swap them")
        return super().infer(shapes, refs)

    def forward(self, inputs, params, refs):
        return _kernel("hardtanh")(inputs[0], self.min_val, self.max_val)

    def saved_for_backward(self, shapes, out):
        return clamp_saved(self, shapes, out)


class _PerChannel(Layer):
    """A layer with one learned value per channel (PyTorch dim 1, the first axis of the
    per-sample shape): `count` checks the given number against the channels."""

    def channels(self, shape, given: int | None, name: str) -> int:
        if given not in (None, 1, shape[0]):
            raise LayerError("channel-mismatch", f"{name} is {given} but the input has "
                             f"{shape[0]} channels", f"use {name}: 1 or {shape[0]}")
        return shape[0] if given is None else given


@register("prelu")
class PReLU(_PerChannel):
    """x if x >= 0 else a * x, a learned: one value, or one per channel (nn.PReLU)."""

    summary = "x if x >= 0 else weight * x, weight learned (nn.PReLU)"
    params = {"num_parameters": P("int", 1, minimum=1, doc="1, or the channels"),
              "init": P("float", 0.25)}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.channels(shape, self.num_parameters, "num_parameters")
        return Inference(shape, 0, 2 * math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        return {"weight": Weight((self.num_parameters,), fill=self.init)}

    def forward(self, inputs, params, refs):
        return _kernel("prelu")(inputs[0], params["weight"])


class _ChannelParameter(_PerChannel):
    """One learned value per channel applied element-wise (one FLOP each): `param` names it
    in the state_dict, `keepdim` gives it PyTorch's broadcast shape (C, 1, ...)."""

    def fill(self) -> float:
        return 0.0

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        return Inference(shape, 0, math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        shape = shapes[0]
        dims = (shape[0], *(1,) * (len(shape) - 1)) if self.keepdim else (shape[0],)
        return {self.param: Weight(dims, fill=self.fill())}


@register("layer_scale")
class LayerScale(_ChannelParameter):
    """y = x * gamma[c]: timm LayerScale/LayerScale2d (`gamma`, shape (C,)), torchvision
    CNBlock's `layer_scale` (shape (C, 1, 1): `param: ""`, `keepdim: true`)."""

    summary = "learned per-channel scale x * gamma (timm LayerScale, ConvNeXt layer_scale)"
    params = {
        "param": P("str", "gamma", doc="state_dict name under the layer; \"\": the layer's "
                                       "own name (torchvision CNBlock.layer_scale)"),
        "keepdim": P("bool", False, doc="shape (C, 1, ...) as torchvision, not (C,)"),
        "init_values": P("float", 1e-5, doc="the value a fresh model starts from"),
    }

    def fill(self) -> float:
        return self.init_values

    def forward(self, inputs, params, refs):
        return inputs[0] * params[self.param].reshape(-1)


@register("channel_bias")
class ChannelBias(_ChannelParameter):
    """y = x + bias[c]: a learned per-channel bias on its own, the additive twin of
    layer_scale (a bias-free conv's bias added apart, ConvNeXt-V2's GRN `beta`, a per-channel
    constant Add of an ONNX graph)."""

    summary = "learned per-channel bias x + bias (an ONNX per-channel Add)"
    params = {
        "param": P("str", "bias", doc="state_dict name under the layer; \"\": the layer's "
                                      "own name (a bare nn.Parameter)"),
        "keepdim": P("bool", False, doc="shape (C, 1, ...), not (C,)"),
    }

    def forward(self, inputs, params, refs):
        return inputs[0] + params[self.param].reshape(-1)


@register("scalar_affine")
class ScalarAffine(Layer):
    """y = x * weight + bias with learned scalars (0-d tensors), as NFNet's skipinit gain."""

    summary = "learned scalar scale and bias, x * weight + bias"
    params = {"bias": P("bool", True), "weight_init": P("float", 1.0),
              "bias_init": P("float", 0.0)}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        return Inference(shape, 0, (2 if self.bias else 1) * math.prod(shape))

    def weight_shapes(self, shapes) -> dict[str, Weight]:
        out = {"weight": Weight((), fill=self.weight_init)}
        if self.bias:
            out["bias"] = Weight((), fill=self.bias_init)
        return out

    def forward(self, inputs, params, refs):
        out = inputs[0] * params["weight"]
        return out + params["bias"] if self.bias else out
