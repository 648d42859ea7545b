"""Graph -> Report: one pass in topological order computing every layer's output shape,
parameters, MACs, FLOPs and bytes, the network's totals and peak memory, and diagnostics.

Memory: activation bytes are output elements * batch * dtype size. The peak is that of an
inference pass that keeps each tensor (the input included) until its last consumer has run
and frees it then; a layer's inputs and output are alive together. No in-place operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from convcalc.diagnostics import Diagnostic, Severity, SpecError, diag
from convcalc.graph import INPUT, Graph, Node, build_graph
from convcalc.layers.base import Inference, LayerError, Weight
from convcalc.spec import Pos, parse_spec

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass(frozen=True)
class Options:
    dtype: str = "float32"
    batch: int = 1
    input_shape: tuple[int, ...] | None = None  # overrides the spec's input
    training: bool = False  # compute the cost of a training step (convcalc.training)
    optimizer: str = "adam"

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]


@dataclass
class LayerReport:
    name: str
    type: str
    inputs: list[str]
    output_shape: tuple[int, ...] | None
    params: int = 0
    buffers: int = 0
    trainable_params: int = 0  # params minus those of a layer the spec's `frozen:` names
    macs: int = 0
    flops: int = 0
    output_bytes: int = 0
    line: int | None = None
    column: int | None = None
    weights: dict[str, Weight] = field(default_factory=dict)
    receptive_field: dict | None = None
    receptive_field_unknown: str | None = None  # why the field is unknown (moved spatial axes)

    @property
    def kind(self) -> str:
        """The layer kind as the spec names it (conv2d, relu, ...): the same as `type`."""
        return self.type


@dataclass
class Totals:
    params: int = 0
    buffers: int = 0
    trainable_params: int = 0
    macs: int = 0
    flops: int = 0
    param_bytes: int = 0
    activation_bytes: int = 0
    peak_activation_bytes: int = 0


@dataclass
class Report:
    file: str
    name: str | None
    input_shape: tuple[int, ...] | None
    layers: list[LayerReport]
    totals: Totals
    diagnostics: list[Diagnostic]
    options: Options
    graph: Graph | None = None
    training: object | None = None  # convcalc.training.Training with Options.training

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.layers[-1].output_shape if self.layers else None

    @property
    def ok(self) -> bool:
        return not any(d.severity == Severity.ERROR for d in self.diagnostics)

    def layer(self, name: str) -> LayerReport:
        return next(layer for layer in self.layers if layer.name == name)


def analyze_file(path: str | Path, options: Options = Options()) -> Report:
    """Read (convcalc.sources.read_source: a spec, or an imported .onnx), parse, build and
    analyse one network. OSError, UnicodeDecodeError and ImportFailure propagate."""
    from convcalc.sources import read_source
    return analyze_source(read_source(path, _model_input(path, options)), options)


def _model_input(path, options: Options):
    from convcalc.interop import is_model_file
    return options.input_shape if is_model_file(path) else None


def analyze_source(source, options: Options = Options()) -> Report:
    """A convcalc.sources.Source -> Report. An imported model's spec already has the input
    size it was imported at; its diagnostics name the model file and the layer (the
    node's name), without line and column, which would point into generated text."""
    if not source.imported:
        return analyze_text(source.text, source.file, options)
    return without_positions(analyze_text(source.text, source.file,
                                          replace(options, input_shape=None)))


def without_positions(report: Report) -> Report:
    """An imported model's report: diagnostics name the model file and the layer, without
    line and column, which would point into text the user never saw."""
    report.diagnostics = [replace(d, line=None, column=None) for d in report.diagnostics]
    return report


def analyze_text(text: str, file: str, options: Options = Options()) -> Report:
    try:
        spec = parse_spec(text, file)
    except SpecError as err:
        return Report(file, None, None, [], Totals(), err.diagnostics, options)
    return analyze(build_graph(spec, options.input_shape), options)


def analyze(graph: Graph, options: Options = Options()) -> Report:
    shapes: dict[str, tuple[int, ...] | None] = {INPUT: graph.input_shape}
    found = list(graph.diagnostics)
    layers = []
    first_input = {node.name: node.inputs[0] for node in graph.nodes if node.inputs}
    for node in graph.nodes:
        report, notes = _analyze_node(node, shapes, options, graph.file, first_input,
                                      graph.resized)
        shapes[node.name] = report.output_shape
        layers.append(report)
        found.extend(notes)
    for layer in layers:
        layer.trainable_params = 0 if graph.is_frozen(layer.name) else layer.params
    totals = _totals(graph, layers, options)
    found.extend(_group_expectations(graph, layers))
    found.extend(_network_expectations(graph, layers, totals))
    found.extend(_skipped_expectations(graph))
    report = Report(graph.file, graph.name, graph.input_shape, layers, totals, found, options,
                    graph)
    _add_receptive_fields(report)
    if options.training:
        from convcalc.training import training_cost
        report.training = training_cost(graph, layers, options, options.optimizer)
    report.diagnostics = _once_per_place(found)
    return report


def _once_per_place(found: list[Diagnostic]) -> list[Diagnostic]:
    """Sorted by position; a finding repeated word for word at one place (a block's layer,
    once per instance) is kept once, naming how many instances share it."""
    groups: dict[tuple, list[Diagnostic]] = {}
    for d in found:
        groups.setdefault((d.code, d.severity, d.message, d.file, d.line, d.column, d.hint),
                          []).append(d)
    kept = []
    for same in groups.values():
        first = same[0]
        if len(same) > 1:
            first = replace(first, message=f"{first.message} (also in {len(same) - 1} more "
                                           f"instance{'s' if len(same) > 2 else ''} of this block)")
        kept.append(first)
    return sorted(kept, key=lambda d: (d.line or 0, d.column or 0))


def _add_receptive_fields(report: Report) -> None:
    """Receptive fields per layer (see convcalc.receptive); absent when it is not installed."""
    try:
        from convcalc.receptive import annotate
    except ImportError:
        return
    annotate(report)


def _analyze_node(node: Node, shapes, options: Options, file: str, first_input: dict,
                  resized: bool = False):
    report = LayerReport(node.name, node.type, list(node.inputs), None, line=node.pos.line,
                         column=node.pos.column)
    ins = [shapes.get(name) for name in node.inputs]
    refs = {param: shapes.get(name) for param, name in node.refs.items()}
    # a referenced layer's own input too, as "<param>.input" (max_unpool: the pool's input)
    refs.update({f"{param}.input": shapes.get(first_input.get(name, ""))
                 for param, name in node.refs.items()})
    if (node.layer is None or any(s is None for s in ins)
            or any(refs.get(param) is None for param in node.refs)):
        return report, []  # the cause is reported where it arose: no cascade

    def place(d: Diagnostic) -> Diagnostic:
        return d.at(file, node.pos.line, node.pos.column, node.name)

    try:
        result: Inference = node.layer.infer(ins, refs)
        report.weights = node.layer.weight_shapes(ins)
    except LayerError as err:
        return report, [place(err.diagnostic)]
    report.output_shape = tuple(result.shape)
    report.params = sum(w.size for w in report.weights.values() if w.trainable)
    report.buffers = sum(w.size for w in report.weights.values() if not w.trainable)
    report.macs, report.flops = result.macs, result.flops
    report.output_bytes = math.prod(result.shape) * options.batch * options.itemsize
    notes = [place(d) for d in result.diagnostics]
    notes += [d.at(file, (node.expect_pos or node.pos).line, (node.expect_pos or node.pos).column,
                   node.name) for d in _layer_expectations(node, report, resized)]
    return report, notes


def _compare(what: str, expected, actual, pos_hint: str) -> Diagnostic | None:
    if isinstance(expected, list):
        expected = tuple(expected)
    if expected == actual:
        return None
    def show(v):
        return (list(v) if isinstance(v, tuple) else (f"{v:,}" if isinstance(v, int) else v))
    return diag("expectation-failed", f"expected {what} {show(expected)}, computed {show(actual)}",
                f"fix the {pos_hint}, or update the expectation if the change is intended")


SIZE_DEPENDENT = ("shape", "output", "macs", "flops")  # pinned to the spec's own input size


def _layer_expectations(node: Node, report: LayerReport, resized: bool) -> list[Diagnostic]:
    actual = {"shape": report.output_shape, "output": report.output_shape,
              "params": report.params, "macs": report.macs, "flops": report.flops}
    found = [_compare(key, value, actual[key], "layer") for key, value in node.expect.items()
             if key in actual and not (resized and key in SIZE_DEPENDENT)]
    return [d for d in found if d]


def _group_expectations(graph: Graph, layers: list[LayerReport]) -> list[Diagnostic]:
    """A block instance's (or repeated layer's) expect: its output shape and its summed
    params, MACs and FLOPs."""
    by_name = {layer.name: layer for layer in layers}
    found = []
    for group in graph.groups:
        members = [by_name[name] for name in group.members if name in by_name]
        if len(members) != len(group.members) or any(m.output_shape is None for m in members):
            continue  # reported where it broke
        output = by_name[group.output].output_shape if group.output in by_name else None
        actual = {"shape": output, "output": output,
                  **{key: sum(getattr(m, key) for m in members) for key in ("params", "macs",
                                                                            "flops")}}
        for key, expected in group.expect.items():
            if key in actual and not (graph.resized and key in SIZE_DEPENDENT):
                d = _compare(key, expected, actual[key], f"block instance {group.name!r}")
                if d:
                    found.append(d.at(graph.file, group.pos.line, group.pos.column, group.name))
    return found


def _skipped_expectations(graph: Graph) -> list[Diagnostic]:
    """At another input size, shape/MAC/FLOP expectations are not checked: say so once."""
    if not graph.resized:
        return []
    pinned = any(key in SIZE_DEPENDENT for expect in (
        graph.expect, *(node.expect for node in graph.nodes), *(g.expect for g in graph.groups))
        for key in expect)
    if not pinned:
        return []
    pos = graph.expect_pos or Pos(1, 1)
    return [diag("expectation-skipped",
                 f"expectations of shapes, MACs and FLOPs are pinned to the spec's input "
                 f"{list(graph.declared_input)}; not checked at {list(graph.input_shape)} "
                 f"(params still are)").at(graph.file, pos.line, pos.column)]


def _network_expectations(graph: Graph, layers: list[LayerReport], totals: Totals):
    if not graph.expect:
        return []
    pos = graph.expect_pos or Pos(1, 1)
    if any(layer.output_shape is None for layer in layers) or not layers:
        return []  # totals of a broken graph would only repeat its errors
    actual = {"shape": layers[-1].output_shape, "output": layers[-1].output_shape,
              "params": totals.params, "macs": totals.macs, "flops": totals.flops}
    found = [_compare(key, value, actual[key], "network")
             for key, value in graph.expect.items()
             if key in actual and not (graph.resized and key in SIZE_DEPENDENT)]
    return [d.at(graph.file, pos.line, pos.column) for d in found if d]


def _totals(graph: Graph, layers: list[LayerReport], options: Options) -> Totals:
    totals = Totals()
    for layer in layers:
        totals.params += layer.params
        totals.buffers += layer.buffers
        totals.trainable_params += layer.trainable_params
        totals.macs += layer.macs
        totals.flops += layer.flops
        totals.activation_bytes += layer.output_bytes
    totals.param_bytes = totals.params * options.itemsize
    input_bytes = (math.prod(graph.input_shape) * options.batch * options.itemsize
                   if graph.input_shape else 0)
    totals.peak_activation_bytes = peak_activation_bytes(graph, layers, input_bytes)
    return totals


def peak_activation_bytes(graph: Graph, layers: list[LayerReport], input_bytes: int) -> int:
    """Walk the topological order; free each tensor after its last consumer."""
    consumers = graph.consumers()
    remaining = {name: len(users) for name, users in consumers.items()}
    size = {INPUT: input_bytes, **{layer.name: layer.output_bytes for layer in layers}}
    output = layers[-1].name if layers else None
    live = input_bytes
    peak = live
    for node, layer in zip(graph.nodes, layers):
        live += layer.output_bytes
        peak = max(peak, live)
        if remaining.get(node.name, 0) == 0 and node.name != output:
            live -= layer.output_bytes  # nobody reads it
        for name in {*node.inputs, *node.refs.values()}:
            remaining[name] -= sum(1 for n in [*node.inputs, *node.refs.values()] if n == name)
            if remaining[name] == 0 and name != output:
                live -= size.get(name, 0)
    return peak
