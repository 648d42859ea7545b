"""Element-wise arithmetic beyond add and mul: sub, div and pow of two inputs (NumPy
broadcasting, as merge.py's add) or of one input and a constant, and the reversed forms
with a constant first, which exporters and tracers emit: rsub (other - x, torch.rsub),
rdiv (other / x, Tensor.__rtruediv__) and rpow (other ** x, Tensor.__rpow__).
PyTorch semantics: true division, float results; 1 FLOP per output element.
"""

from __future__ import annotations

from convcalc.layers.base import P, register
from convcalc.layers.merge import _Broadcast

_OTHER = P("float", None, doc="a number: one input, x op other")
_REVERSED = P("float", doc="the constant before x")


@register("sub")
class Sub(_Broadcast):
    summary = "x - y of two inputs, or x - other (torch.sub)"

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    op, min_inputs, max_inputs = "sub", 2, 2
    params = {"other": _OTHER}

    @staticmethod
    def combine(a, b):
        return a - b


@register("div")
class Div(_Broadcast):
    summary = "x / y of two inputs, or x / other (torch.div, true division)"
    op, min_inputs, max_inputs = "div", 2, 2
    params = {"other": _OTHER}

    @staticmethod
    def combine(a, b):
        return a / b


@register("pow")
class Pow(_Broadcast):
    summary = "x ** y of two inputs, or x ** exponent (torch.pow)"
    op, min_inputs, max_inputs, constant = "pow", 2, 2, "exponent"
    params = {"exponent": P("float", None, doc="a number: one input, x ** exponent")}

    @staticmethod
    def combine(a, b):
        return a ** b


class _Reversed(_Broadcast):
    """other op x: one input and a required constant."""

    min_inputs = max_inputs = 1
    reverse = True
    params = {"other": _REVERSED}


@register("rsub")
class RSub(_Reversed):
    summary = "other - x (torch.rsub)"
    op = "sub"


@register("rdiv")
class RDiv(_Reversed):
    summary = "other / x (a number divided by x: Tensor.__rtruediv__, 1 / x)"
    op = "div"


@register("rpow")
class RPow(_Reversed):
    summary = "other ** x (a number to the power x: Tensor.__rpow__)"
    op = "pow"
