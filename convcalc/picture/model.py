"""Report -> the graph a person looks at: one box per layer, or per block once folded to a
depth (block names are dot-scoped, as PyTorch's module names: `layer1.0.conv1` lies in
`layer1.0`, which lies in `layer1`), edges labelled with the tensor's shape, and each box
marked with its worst diagnostic."""

from __future__ import annotations

from dataclasses import dataclass, field

from convcalc.graph import INPUT

SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}


@dataclass(frozen=True)
class Box:
    """A node of the picture: a layer, a folded block (`members` > 1) or the input."""

    id: str
    name: str
    kind: str
    shape: tuple[int, ...] | None
    params: int
    macs: int
    members: tuple[str, ...]
    severity: str | None = None  # the worst diagnostic of its layers
    group: tuple[str, ...] = ()  # enclosing blocks, outermost first (clusters)

    @property
    def folded(self) -> bool:
        return len(self.members) > 1 or self.kind == "block"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Picture:
    title: str
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    depth: int | None
    clusters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # block -> box ids


def shape_text(shape) -> str:
    return "x".join(map(str, shape)) if shape else "?"


def si(value: int) -> str:
    """12,345,678 -> '12.3M' (1000s: K, M, G)."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def group_of(name: str, depth: int | None) -> str:
    """The box a layer is drawn in at `depth`: its own name, or its first `depth` parts."""
    parts = name.split(".")
    if depth is None or len(parts) <= depth:
        return name
    return ".".join(parts[:depth])


def _enclosing(name: str) -> tuple[str, ...]:
    """layer1.0.conv1 -> ('layer1', 'layer1.0')."""
    parts = name.split(".")
    return tuple(".".join(parts[:i]) for i in range(1, len(parts)))


def _layer_severity(report) -> dict[str, str]:
    graph = report.graph
    worst: dict[str, str] = {}
    for d in report.diagnostics:
        if not d.layer:
            continue
        name = graph.output_of(d.layer) if graph else d.layer
        level = d.severity.value
        if SEVERITY_RANK[level] > SEVERITY_RANK.get(worst.get(name, ""), 0):
            worst[name] = level
    return worst


def layer_inputs(report) -> dict[str, list[str]]:
    """layer -> the tensors it reads (inputs and references), in the graph's order."""
    if report.graph is None:
        return {layer.name: list(layer.inputs) for layer in report.layers}
    return {node.name: list(dict.fromkeys([*node.inputs, *node.refs.values()]))
            for node in report.graph.nodes}


def picture(report, depth: int | None = None) -> Picture:
    """The boxes and edges of `report` at `depth` (None: every layer)."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth {depth}: expected 1 or more")
    severity = _layer_severity(report)
    members: dict[str, list] = {}
    for layer in report.layers:
        members.setdefault(group_of(layer.name, depth), []).append(layer)
    layer_names = {layer.name for layer in report.layers}
    ids = {INPUT: "n0"}
    boxes = [Box("n0", "input", "input", report.input_shape, 0, 0, (), None)]
    for i, (key, layers) in enumerate(members.items(), start=1):
        ids[key] = f"n{i}"
        boxes.append(_box(f"n{i}", key, layers, severity, key not in layer_names))
    box_of = {layer.name: ids[group_of(layer.name, depth)] for layer in report.layers}
    box_of[INPUT] = "n0"
    shapes = {layer.name: layer.output_shape for layer in report.layers}
    shapes[INPUT] = report.input_shape
    edges: dict[tuple[str, str], list[str]] = {}
    for target, sources in layer_inputs(report).items():
        for source in sources:
            a, b = box_of.get(source), box_of.get(target)
            if a is None or b is None or a == b:
                continue
            labels = edges.setdefault((a, b), [])
            text = shape_text(shapes.get(source))
            if text not in labels:
                labels.append(text)
    clusters: dict[str, list[str]] = {}
    for box in boxes:
        for block in box.group:
            clusters.setdefault(block, []).append(box.id)
    return Picture(report.name or report.file, tuple(boxes),
                   tuple(Edge(a, b, ", ".join(labels)) for (a, b), labels in edges.items()),
                   depth, {k: tuple(v) for k, v in clusters.items() if len(v) > 1})


def _box(id: str, key: str, layers, severity: dict[str, str], folded: bool) -> Box:
    worst = max((severity[layer.name] for layer in layers if layer.name in severity),
                key=SEVERITY_RANK.get, default=None)
    if folded or len(layers) > 1:
        kind = "block"
    else:
        kind = layers[0].type
    return Box(id, key, kind, layers[-1].output_shape, sum(layer.params for layer in layers),
               sum(layer.macs for layer in layers), tuple(layer.name for layer in layers),
               worst, _enclosing(key))


def box_lines(box: Box) -> list[str]:
    """What a box says: name; kind (or the layer count of a block); shape; params or MACs."""
    kind = f"block of {len(box.members)} layers" if box.folded else box.kind
    cost = []
    if box.params:
        cost.append(f"{si(box.params)} params")
    if box.macs:
        cost.append(f"{si(box.macs)} MACs")
    return [box.name, kind, shape_text(box.shape), " · ".join(cost)] if cost else \
        [box.name, kind, shape_text(box.shape)]
