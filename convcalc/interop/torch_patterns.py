"""Known PyTorch idioms folded into one layer before the node-by-node conversion, as a person
would write them (the ONNX importer folds its exporters' idioms the same way).

- channel shuffle, as torchvision's ShuffleNetV2 writes it:
  x.view(b, g, c // g, h, w) -> transpose(1, 2) [-> contiguous()] -> view(b, c, h, w)
  is channel_shuffle(groups=g).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESHAPES = {"view", "reshape"}


@dataclass(frozen=True)
class Fold:
    """`last` computes `layer` from `source`; `inner` nodes belong to the fold."""

    last: Any
    source: Any
    inner: tuple
    layer: dict


def find_folds(nodes, values: dict) -> list[Fold]:
    """Every channel-shuffle idiom in the graph whose intermediate values have no other use."""
    folds = []
    for node in nodes:
        fold = _channel_shuffle(node, values)
        if fold is not None:
            folds.append(fold)
    return folds


def _op(node) -> str:
    if node.op in ("call_method", "call_function"):
        return getattr(node.target, "__name__", node.target)
    return ""


def _channel_shuffle(last, values: dict) -> Fold | None:
    if _op(last) not in RESHAPES or not last.args:
        return None
    chain = [last]
    current = last.args[0]
    if _op(current) == "contiguous":
        chain.append(current)
        current = current.args[0]
    if _op(current) != "transpose" or tuple(current.args[1:3]) not in ((1, 2), (2, 1)):
        return None
    chain.append(current)
    split = current.args[0]
    if _op(split) not in RESHAPES:
        return None
    chain.append(split)
    source = split.args[0]
    shape_in, shape_split, shape_out = (_shape(values, n) for n in (source, split, last))
    if None in (shape_in, shape_split, shape_out) or len(shape_in) != len(shape_split) - 1:
        return None
    groups, per_group = shape_split[1:3]
    if (shape_out != shape_in or shape_split[0] != shape_in[0]
            or groups * per_group != shape_in[1] or shape_split[3:] != shape_in[2:]):
        return None
    if any(len(n.users) != 1 for n in chain[1:]):
        return None
    return Fold(last, source, tuple(chain[1:]), {"type": "channel_shuffle", "groups": groups})


def _shape(values: dict, node) -> tuple | None:
    shape = getattr(values.get(node), "shape", None)
    return tuple(shape) if shape is not None else None


IN_PLACE_OPERATORS = {"iadd", "isub", "imul", "itruediv"}


def overwritten_inputs(nodes, modules: dict) -> set:
    """In-place nodes (nn.ReLU(inplace=True), F.relu(x, inplace=True), x.add_(y), x += y)
    whose input is read again after them: PyTorch's later readers see the overwritten value,
    a graph of values would not. Those are refused, never imported as a different network."""
    order = {node: i for i, node in enumerate(nodes)}
    found = set()
    for node in nodes:
        if not _in_place(node, modules) or not node.args or not hasattr(node.args[0], "users"):
            continue
        target = node.args[0]
        if any(order[user] > order[node] for user in target.users if user is not node):
            found.add(node)
    return found


def _in_place(node, modules: dict) -> bool:
    if node.op == "call_module":
        return bool(getattr(modules.get(node.target), "inplace", False))
    if node.op == "call_method":
        return node.target.endswith("_") and not node.target.endswith("__")
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return node.kwargs.get("inplace") is True or name in IN_PLACE_OPERATORS
    return False
