"""Patterns of ONNX nodes that are one layer a person writes, found before conversion:
PyTorch's exporter writes nn.GELU before opset 20 as x * 0.5 * (1 + erf(x / sqrt(2))), five
nodes (Div, Erf, Add, Mul, Mul), which is `gelu`. A LayerNorm over the channels of an NCHW
map (torchvision's and timm's LayerNorm2d: permute, F.layer_norm, permute back) is written
Transpose, LayerNormalization(axis -1), Transpose: `layernorm2d`. Before opset 18 (and 21
for a per-channel scale) it writes nn.GroupNorm as Reshape to (N, G, -1),
InstanceNormalization with a scale of ones and a bias of zeros, Reshape back to Shape(x),
Mul by the weight, Add the bias: `groupnorm`. Before opset 17 it writes nn.LayerNorm out:
ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, then Mul by the weight and Add the
bias: `layernorm`. (MatMul + Add -> linear and x * Sigmoid(x) -> silu are found as the
conversion meets them, in onnx_import.py.)"""

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


def find_groupnorm(nodes, consts: dict, stored: set) -> dict[int, tuple[str, dict, list[int]]]:
    """Index of the pattern's last node -> (the input x, the groupnorm layer's fields, the
    indices of the other nodes). `stored` holds the initializers' names: PyTorch writes an
    affine GroupNorm's weight and bias as initializers, a non-affine one's ones and zeros
    as Constant nodes."""
    users: dict[str, list[int]] = {}
    producer: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            users.setdefault(name, []).append(index)
        for name in node.output:
            producer[name] = index

    def only_user(index: int, op: str) -> int | None:
        found = users.get(nodes[index].output[0], [])
        return found[0] if len(found) == 1 and nodes[found[0]].op_type == op else None

    found = {}
    for index, node in enumerate(nodes):
        shape = consts.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 \
            else None
        if shape is None or np.ndim(shape) != 1 or len(shape) != 3 or shape[0] != 0 or \
                shape[2] != -1 or shape[1] < 1:
            continue
        groups, x = int(shape[1]), node.input[0]
        norm = only_user(index, "InstanceNormalization")
        if norm is None:
            continue
        scale, shift = (consts.get(name) for name in nodes[norm].input[1:3])
        if scale is None or shift is None or np.shape(scale) != (groups,) or \
                np.any(scale != 1) or np.any(shift != 0):
            continue
        back = only_user(norm, "Reshape")
        target = producer.get(nodes[back].input[1]) if back is not None else None
        if target is None or nodes[target].op_type != "Shape" or nodes[target].input[0] != x:
            continue
        inner, last, fields = [index, norm], back, {"num_groups": groups,
                                                    "eps": _attr_float(nodes[norm], "epsilon", 1e-5)}
        mul, add = only_user(back, "Mul"), None
        weight = _channel_const(nodes, mul, nodes[back].output[0], consts, producer)
        if weight is not None:
            add = only_user(mul, "Add")
            bias = _channel_const(nodes, add, nodes[mul].output[0], consts, producer)
            if bias is not None:
                inner += [back, mul]
                last = add
                names = set().union(*(_sources(nodes, n, producer)
                                      for n in [*nodes[mul].input, *nodes[add].input]))
                if np.all(weight == 1) and np.all(bias == 0) and not stored & set(names):
                    fields["affine"] = False
                else:
                    fields["weights"] = {"weight": weight.reshape(-1), "bias": bias.reshape(-1)}
        if last == back:
            fields["affine"] = False
        found[last] = (x, fields, inner)
    return found


def find_layernorm(nodes, consts: dict) -> dict[int, tuple[str, dict, list[int]]]:
    """Index of the pattern's last node -> (the input x, {"axes", "eps", "weight", "bias"},
    the indices of the other nodes), for nn.LayerNorm as PyTorch writes it before opset 17.
    The axes are as written (negative or not); the conversion checks they are the trailing
    ones against x's rank."""
    users: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            users.setdefault(name, []).append(index)

    def user(name: str, op: str, only: bool = True) -> int | None:
        found = [i for i in users.get(name, []) if nodes[i].op_type == op]
        return found[0] if len(found) == 1 and (not only or len(users[name]) == 1) else None

    found = {}
    for index, node in enumerate(nodes):
        if node.op_type != "ReduceMean" or len(node.input) != 1 or _attr(node, "keepdims", 1) != 1:
            continue
        axes, x = _attr(node, "axes", None), node.input[0]
        centre = user(node.output[0], "Sub")
        if not axes or centre is None or list(nodes[centre].input) != [x, node.output[0]]:
            continue
        d = nodes[centre].output[0]
        if len(users.get(d, [])) != 2:
            continue
        square, divide = user(d, "Pow", only=False), user(d, "Div", only=False)
        if square is None or divide is None or not _is(consts, nodes[square].input[1], 2.0):
            continue
        var = user(nodes[square].output[0], "ReduceMean")
        if var is None or _attr(nodes[var], "axes", None) != axes or len(nodes[var].input) != 1:
            continue
        add = user(nodes[var].output[0], "Add")
        other = [i for i in nodes[add].input if i != nodes[var].output[0]] if add is not None else []
        eps = consts.get(other[0]) if len(other) == 1 else None
        if eps is None or np.size(eps) != 1:
            continue
        root = user(nodes[add].output[0], "Sqrt")
        if root is None or list(nodes[divide].input) != [d, nodes[root].output[0]] or \
                user(nodes[root].output[0], "Div") != divide:
            continue
        inner, last, fields = [index, centre, square, var, add, root], divide, \
            {"axes": list(axes), "eps": float(np.ravel(eps)[0]), "weight": None, "bias": None}
        mul = user(nodes[divide].output[0], "Mul")
        weight = _other_const(nodes, mul, nodes[divide].output[0], consts)
        if weight is not None:
            inner.append(divide)
            last, fields["weight"] = mul, weight
            plus = user(nodes[mul].output[0], "Add")
            bias = _other_const(nodes, plus, nodes[mul].output[0], consts)
            if bias is not None:
                inner.append(mul)
                last, fields["bias"] = plus, bias
        found[last] = (x, fields, inner)
    return found


def _other_const(nodes, index, x: str, consts: dict):
    if index is None:
        return None
    other = [name for name in nodes[index].input if name != x]
    return np.asarray(consts[other[0]], np.float32) if len(other) == 1 and other[0] in consts \
        else None


def _channel_const(nodes, index, x: str, consts: dict, producer: dict):
    """The other operand of a binary node on x when it is a (C, 1, ...) constant (stored so,
    or a stored (C,) reshaped), else None."""
    if index is None:
        return None
    other = [name for name in nodes[index].input if name != x]
    value = _const_through_reshape(nodes, other[0], consts, producer) if len(other) == 1 else None
    if value is None or np.ndim(value) < 1 or any(d != 1 for d in np.shape(value)[1:]):
        return None
    return np.asarray(value, np.float32)


def _const_through_reshape(nodes, name: str, consts: dict, producer: dict):
    if name in consts:
        return consts[name]
    node = nodes[producer[name]] if name in producer else None
    if node is not None and node.op_type == "Reshape" and all(i in consts for i in node.input[:2]):
        return np.reshape(consts[node.input[0]], [int(d) for d in consts[node.input[1]]])
    return None


def _sources(nodes, name: str, producer: dict) -> set:
    """The name, or the data input of the Reshape that made it (a weight reshaped)."""
    node = nodes[producer[name]] if name in producer else None
    return {name, node.input[0]} if node is not None and node.op_type == "Reshape" else {name}


def _attr_float(node, name: str, default: float) -> float:
    for attribute in node.attribute:
        if attribute.name == name:
            return float(attribute.f)
    return default


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
