"""Patterns of ONNX nodes that are one layer a person writes, found before conversion:
PyTorch's exporter writes nn.GELU before opset 20 as x * 0.5 * (1 + erf(x / sqrt(2))), five
nodes (Div, Erf, Add, Mul, Mul), which is `gelu`. (MatMul + Add -> linear and x * Sigmoid(x)
-> silu are found as the conversion meets them, in onnx_import.py.)"""

from __future__ import annotations

import math

import numpy as np


def find_gelu(nodes, consts: dict) -> dict[int, tuple[str, list[int]]]:
    """Index of the last Mul -> (the input x, the indices of the other four nodes)."""
    users: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            users.setdefault(name, []).append(index)
    found = {}
    for index, node in enumerate(nodes):
        if node.op_type == "Div" and _is(consts, node.input[1], math.sqrt(2)):
            chain = _chain(nodes, users, consts, index, node.input[0])
            if chain:
                found[chain[-1]] = (node.input[0], chain[:-1])
    return found


def _chain(nodes, users, consts, first: int, x: str) -> list[int] | None:
    """[div, erf, add, mul, mul_half] when each feeds only the next, as GELU is written."""
    steps = [first]
    for op, other in (("Erf", None), ("Add", 1.0), ("Mul", "x"), ("Mul", 0.5)):
        out = nodes[steps[-1]].output[0]
        if len(users.get(out, [])) != 1:
            return None
        nxt = users[out][0]
        node = nodes[nxt]
        rest = [i for i in node.input if i != out]
        if node.op_type != op or (other == "x" and rest != [x]) or (
                isinstance(other, float) and not (len(rest) == 1 and _is(consts, rest[0],
                                                                         other))):
            return None
        steps.append(nxt)
    return steps


def _is(consts: dict, name: str, value: float) -> bool:
    const = consts.get(name)
    return const is not None and np.size(const) == 1 and \
        math.isclose(float(np.ravel(const)[0]), value, rel_tol=1e-6)
