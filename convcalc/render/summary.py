"""The rows a table or CSV shows: every layer, or blocks at a depth of the names (torchinfo's
`depth`), sorted and cut to the top N, with the columns asked for.

A row is the sum of its layers' params, MACs, bytes and training costs; its output, receptive
field and kind are those of its last layer (a block's: "block of n layers").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

LONG = 60  # more layers than this: the default view folds to blocks
SHOWN = 32  # the deepest depth whose rows are at most this many is the default
SORT_KEYS = ("macs", "params", "memory")
EXTRA_COLUMNS = ("input", "kernel", "stride", "trainable", "flops", "share", "bytes", "rf")
# (the training columns come with --training, not --columns)


@dataclass
class Row:
    name: str
    type: str
    index: int  # of its first layer
    layers: list = field(default_factory=list)
    training: list = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(getattr(x, key) for x in self.layers)

    def train_total(self, key: str) -> int:
        return sum(getattr(x, key) for x in self.training)

    @property
    def last(self):
        return self.layers[-1]


def depth_of(name: str) -> int:
    return name.count(".") + 1


def default_depth(report) -> int | None:
    """None (every layer) for short networks; else the deepest depth with at most SHOWN rows."""
    if len(report.layers) <= LONG:
        return None
    deepest = max(depth_of(x.name) for x in report.layers)
    for depth in range(deepest, 0, -1):
        if len(_group(report, depth)) <= SHOWN:
            return depth
    return 1


def rows(report, depth: int | None = None, sort: str | None = None, top: int | None = None):
    """The rows of the view: depth None or 0 is every layer."""
    found = _group(report, depth)
    if sort:
        key = {"macs": lambda r: r.total("macs"), "params": lambda r: r.total("params"),
               "memory": lambda r: r.total("output_bytes")}[sort]
        found = sorted(found, key=key, reverse=True)
    return found[:top] if top else found


def _group(report, depth: int | None) -> list[Row]:
    training = getattr(report, "training", None)
    per_layer = list(training.layers) if training is not None else [None] * len(report.layers)
    out: list[Row] = []
    by_name: dict[str, Row] = {}
    for index, (layer, cost) in enumerate(zip(report.layers, per_layer)):
        parts = layer.name.split(".")
        key = ".".join(parts[:depth]) if depth else layer.name
        row = by_name.get(key)
        if row is None or (out and out[-1] is not row and not depth):
            row = by_name[key] = Row(key, layer.type, index)
            out.append(row)
        row.layers.append(layer)
        if cost is not None:
            row.training.append(cost)
    for row in out:
        if len(row.layers) > 1:
            row.type = f"{len(row.layers)} layers"
    return out


def input_shape(report, row: Row):
    """The shape entering a row: its first layer's first input."""
    first = row.layers[0]
    if not first.inputs:
        return None
    source = first.inputs[0]
    if source == "input":
        return report.input_shape
    try:
        return report.layer(source).output_shape
    except (KeyError, StopIteration):
        return None


_NODES: dict[int, tuple] = {}


def _nodes_by_name(graph) -> dict:
    """name -> node, built once per graph (a search per row made long tables quadratic)."""
    cached = _NODES.get(id(graph))
    if cached is None or cached[0] is not graph:
        if len(_NODES) > 8:
            _NODES.clear()
        mapping: dict = {}
        for node in graph.nodes:
            mapping.setdefault(node.name, node)
        cached = _NODES[id(graph)] = (graph, mapping)
    return cached[1]


def kernel_stride(report, row: Row) -> tuple[str, str]:
    """A single layer's kernel_size and stride (3x3, 2x2); blank for blocks and kinds
    without a window."""
    if len(row.layers) != 1 or report.graph is None:
        return "", ""
    node = _nodes_by_name(report.graph).get(row.name)
    kernel = getattr(node.layer, "kernel_size", None) if node and node.layer else None
    if kernel is None:
        return "", ""
    stride = getattr(node.layer, "stride", None) or kernel
    return "x".join(map(str, kernel)), "x".join(map(str, stride))


def share(row: Row, total: int) -> str:
    return f"{100 * row.total('macs') / total:.1f}%" if total else ""


def batch_shape(shape, batch: int, show: bool):
    return (batch, *shape) if shape is not None and show else shape


def elements(shape) -> int:
    return math.prod(shape) if shape else 0
