"""Element-wise layers: activations, softmax, dropout and identity.

Each keeps its input's shape and has no parameters. FLOPs per element, the convention this
project documents (peers differ; torchvision counts none): relu 1, relu6 2, leaky_relu 2,
elu 3, gelu 8, silu 5, hardswish 4, hardsigmoid 3, sigmoid 4, tanh 5, softmax 4 (max, exp,
sum, divide), dropout and identity 0 (dropout is the identity at inference).
"""

from __future__ import annotations

import math

from convcalc.layers.base import (SAVED_OUTPUT, Inference, Layer, LayerError, P, RFStep, Saved,
                                  register, saved_inputs)

INPLACE = P("bool", False, doc="PyTorch's inplace=True: the output overwrites the input "
                               "(training memory; no effect on the numbers)")


class Elementwise(Layer):
    """y = f(x), element by element: shape unchanged.

    Saved for backward (PyTorch, train mode): `saves` is "input" (gelu, silu, leaky_relu,
    hardtanh/relu6, ...), "output" (relu, sigmoid, tanh, elu, softmax) or "none"; an
    in-place activation saves its output, which is its input's storage."""

    flops_per_element: int = 1
    saves: str = "input"

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        return Inference(shape, 0, self.flops_per_element * math.prod(shape))

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import ACTIVATIONS
        values = {k: v for k, v in self.values.items() if k != "inplace"}
        return ACTIVATIONS[self.type](inputs[0], **values)

    def saved_for_backward(self, shapes, out):
        if self.saves == "output" or self.values.get("inplace"):
            return SAVED_OUTPUT
        return saved_inputs(0) if self.saves == "input" else ()


@register("relu")
class ReLU(Elementwise):
    summary = "max(0, x)"
    params = {"inplace": INPLACE}
    flops_per_element = 1
    saves = "output"


@register("relu6")
class ReLU6(Elementwise):
    summary = "min(max(0, x), 6)"
    params = {"inplace": INPLACE}
    flops_per_element = 2

    def saved_for_backward(self, shapes, out):
        return clamp_saved(self, shapes, out)


def clamp_saved(layer, shapes, out):
    """hardtanh (relu6): its input; in place (hardtanh_), torch 2.14 keeps a copy of the
    input besides the result, so in-place costs a tensor more (measured)."""
    if layer.values.get("inplace"):
        return (Saved("extra", elements=math.prod(out), label="input copy"), *SAVED_OUTPUT)
    return saved_inputs(0)


@register("leaky_relu")
class LeakyReLU(Elementwise):
    summary = "x if x > 0 else negative_slope * x"
    params = {"negative_slope": P("float", 0.01), "inplace": INPLACE}
    flops_per_element = 2


@register("elu")
class ELU(Elementwise):
    summary = "x if x > 0 else alpha * (exp(x) - 1)"
    params = {"alpha": P("float", 1.0), "inplace": INPLACE}
    flops_per_element = 3
    saves = "output"


@register("gelu")
class GELU(Elementwise):
    summary = "x * Phi(x) (exact erf, or the tanh approximation)"
    params = {"approximate": P("choice", "none", ("none", "tanh"))}
    flops_per_element = 8


@register("silu")
class SiLU(Elementwise):
    summary = "x * sigmoid(x) (swish)"
    params = {"inplace": INPLACE}
    flops_per_element = 5


@register("hardswish")
class Hardswish(Elementwise):
    summary = "x * relu6(x + 3) / 6"
    params = {"inplace": INPLACE}
    flops_per_element = 4


@register("hardsigmoid")
class Hardsigmoid(Elementwise):
    summary = "relu6(x + 3) / 6"
    params = {"inplace": INPLACE}
    flops_per_element = 3


@register("sigmoid")
class Sigmoid(Elementwise):
    summary = "1 / (1 + exp(-x))"
    flops_per_element = 4
    saves = "output"


@register("tanh")
class Tanh(Elementwise):
    summary = "tanh(x)"
    flops_per_element = 5
    saves = "output"


@register("softmax")
class Softmax(Elementwise):
    summary = "exp(x) / sum(exp(x)) along dim (PyTorch dim, batch axis included: 1 = channels)"
    params = {"dim": P("int", 1)}
    flops_per_element = 4
    saves = "output"

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        rank = len(shape) + 1  # with the batch axis
        if not -rank <= self.dim < rank or self.dim % rank == 0:
            raise LayerError("invalid-value", f"dim {self.dim} is not a non-batch axis of "
                             f"{list(shape)} (dims count the batch axis, as in PyTorch)",
                             "use dim: 1 for channels")
        return super().infer(shapes, refs)

    def rf_steps(self, shapes, out):
        """Whole along a spatial dim (its sum spans that axis); element-wise elsewhere."""
        axis = self.dim % (len(out) + 1) - 2  # PyTorch dim (batch = 0, channels = 1) -> axis
        return [RFStep(whole=a == axis) for a in range(len(out) - 1)]

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import softmax
        from convcalc.executor.layout import channels_last_axis
        (x,) = inputs
        return softmax(x, channels_last_axis(self.dim, x.ndim))


@register("log_softmax")
class LogSoftmax(Softmax):
    summary = "log(softmax(x)) along dim (PyTorch dim, batch axis included: 1 = channels)"
    flops_per_element = 5  # max, subtract, exp, sum, log and subtract (the log once per line)

    def forward(self, inputs, params, refs):
        from convcalc.executor.kernels import log_softmax
        from convcalc.executor.layout import channels_last_axis
        (x,) = inputs
        return log_softmax(x, channels_last_axis(self.dim, x.ndim))


@register("dropout")
class Dropout(Elementwise):
    summary = "the identity at inference (p is kept for the record)"
    params = {"p": P("float", 0.5, minimum=0)}
    flops_per_element = 0

    def saved_for_backward(self, shapes, out):
        """In training, the mask scaled by 1/(1-p): PyTorch on the CPU keeps it as a tensor of
        the input's dtype (input * noise saves noise); CUDA's fused kernel keeps one byte."""
        return (Saved("extra", elements=math.prod(out), label="mask"),)

    def forward(self, inputs, params, refs):
        return inputs[0]


@register("identity")
class Identity(Elementwise):
    summary = "y = x"
    view_of_input = True
    flops_per_element = 0
    saves = "none"
