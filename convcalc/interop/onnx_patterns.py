"""Patterns of ONNX nodes that are one layer a person writes, found before conversion:
PyTorch's exporter writes nn.GELU before opset 20 as x * 0.5 * (1 + erf(x / sqrt(2))), five
nodes (Div, Erf, Add, Mul, Mul), which is `gelu`. A LayerNorm over the channels of an NCHW
map (torchvision's and timm's LayerNorm2d: permute, F.layer_norm, permute back) is written
Transpose, LayerNormalization(axis -1), Transpose: `layernorm2d`. (MatMul + Add -> linear and
x * Sigmoid(x) -> silu are found as the conversion meets them, in onnx_import.py.)"""

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


def find_layernorm2d(nodes, consts: dict) -> dict[int, tuple[int, list[int]]]:
    """Index of the closing Transpose -> (the LayerNormalization's index, the indices of the
    other nodes), for Transpose(0, 2, .., 1) -> LayerNormalization(axis -1, constant scale)
    -> Transpose back, each feeding only the next."""
    users: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            users.setdefault(name, []).append(index)

    def only_user(index: int) -> int | None:
        found = users.get(nodes[index].output[0], [])
        return found[0] if len(found) == 1 else None

    found = {}
    for index, node in enumerate(nodes):
        perm = _perm(node)
        if node.op_type != "Transpose" or perm is None or len(perm) < 3 or \
                perm != [0, *range(2, len(perm)), 1]:
            continue
        norm = only_user(index)
        if norm is None or nodes[norm].op_type != "LayerNormalization" or \
                len(nodes[norm].output) > 1 and any(nodes[norm].output[1:]) or \
                _attr(nodes[norm], "axis", -1) not in (-1, len(perm) - 1) or \
                nodes[norm].input[1] not in consts:
            continue
        back = only_user(norm)
        if back is None or _perm(nodes[back]) != [0, len(perm) - 1, *range(1, len(perm) - 1)]:
            continue
        found[back] = (norm, [index, norm])
    return found


def _perm(node) -> list[int] | None:
    if node.op_type != "Transpose":
        return None
    value = _attr(node, "perm", None)
    return list(value) if value is not None else None


def _attr(node, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return list(attribute.ints) if attribute.ints else attribute.i
    return default
