"""An ONNX file -> the spec a person would write, through the `onnx` package.

`import_onnx(path, input)` loads the file (external data only from the model's own folder;
nothing in an ONNX file runs code), fixes the input at batch 1 x the declared size (or
`input`, which also sets symbolic sizes), runs onnx.shape_inference, folds the constant
subgraphs that make weights and shapes (onnx_fold.py), and converts node by node through
the table in onnx_ops.py. Layers with weights are named by their initializers
(`layer1.0.conv1.weight` -> `layer1.0.conv1`) or by the module path in the node name
(`/layer1/layer1.0/conv1/Conv`); others by their node names, made safe.

Nothing is guessed: every node the table cannot convert is listed in one error; the spec is
then analysed by convcalc, and each layer's shape must equal shape inference's, and its
weights the file's, or the import fails naming the layer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from convcalc.interop import Imported, ImportFailure, Unsupported, fixed_reshape_note
from convcalc.interop import onnx_data_axis as data_axis
from convcalc.interop import onnx_ops as ops
from convcalc.interop.onnx_data_axis import lift_shape
from convcalc.interop.onnx_fold import fold, foldable
from convcalc.interop.onnx_load import load_model
from convcalc.interop.onnx_ops_dense import hardsigmoid, matmul
from convcalc.interop.onnx_patterns import (find_gelu, find_groupnorm, find_layernorm,
                                            find_layernorm2d)
from convcalc.interop.onnx_shapes import infer_shapes
from convcalc.interop.spec_text import safe_name
from convcalc.interop.verify import verify

INPUT = "input"


def import_onnx(path: Path, input: tuple[int, ...] | None = None) -> Imported:
    """An .onnx file, input (C, *spatial), spatial sizes only, or None -> Imported.

    Axis 0 is the batch axis; when the graph cannot be read so and uses it as data (a 2-D
    input, a reshape or transpose across it, ...), the whole input is one sample
    (onnx_data_axis.py) if its sizes are fixed and no operator needs a batch axis."""
    source = str(path)
    model, opset = load_model(path)
    declared = _declared_dims(model, source)
    try:
        return _import(model, opset, path, input, data_axis=False)
    except ImportFailure as batch_error:
        if input is not None or not data_axis.possible(model, declared):
            raise
        _set_dims(model, declared)
        try:
            return _import(model, opset, path, None, data_axis=True)
        except ImportFailure as data_error:
            raise (data_error if isinstance(batch_error, _RankError) else batch_error) from None


def _import(model, opset: int, path: Path, input, data_axis: bool) -> Imported:
    source = str(path)
    if data_axis:
        shape = tuple(_declared_dims(model, source))
        name = _graph_input(model, source).name
        note = (f"axis 0 of {name} is data, not a batch (the graph uses it so): the whole "
                f"{'x'.join(map(str, shape))} tensor is one sample")
        values = {k: lift_shape(v) for k, v in infer_shapes(model, shape[1:], opset,
                                                             source).items()}
    else:
        shape, note = _input_shape(model, input, source)
        values = infer_shapes(model, shape, opset, source)
    converted = _Conversion(model.graph, values, opset, source, data_axis).run()
    spec = {"name": safe_name(Path(path).stem, set()),
            "description": f"imported from {Path(path).name} (ONNX opset {opset})",
            "input": list(shape), "layers": converted.layers}
    verify(spec, converted.shapes, converted.weights, source, "ONNX shape inference")
    fixed = fixed_reshape_note(converted.layers, "x".join(map(str, shape)))
    notes = tuple(n for n in (note, fixed) if n)
    return Imported(spec, converted.weights, source, notes, batch_axis=not data_axis)


class _RankError(ImportFailure):
    """An input with fewer than 3 axes, read with a batch axis."""


def _declared_dims(model, source: str) -> list:
    tensor = _graph_input(model, source).type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim]


def _set_dims(model, dims: list) -> None:
    for d, size in zip(_graph_input(model, "").type.tensor_type.shape.dim, dims):
        d.Clear()
        d.dim_value = size


def _graph_input(model, source: str):
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ImportFailure(source, f"the graph has {len(inputs)} inputs "
                            f"({', '.join(i.name for i in inputs)})",
                            "convcalc networks have one input")
    return inputs[0]


def _input_shape(model, input: tuple[int, ...] | None, source: str):
    """(C, *spatial) from the declared dims and `input`: C x H x W replaces them, H x W (or
    one size for every spatial axis) keeps the file's channels."""
    graph_input = _graph_input(model, source)
    tensor = graph_input.type.tensor_type
    if graph_input.type.WhichOneof("value") != "tensor_type" or tensor.elem_type != 1:
        raise ImportFailure(source, f"input {graph_input.name} is not a float32 tensor")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim]
    if len(dims) < 3:
        raise _RankError(source, f"input {graph_input.name} has shape {dims}; convcalc "
                            "networks take (batch, channels, *spatial), at least one spatial "
                            "axis", "a vector input [N, F] can be given as [N, F, 1]")
    declared = dims[1:]
    if input is not None:
        if len(input) == len(declared) - 1:
            input = (declared[0], *input)
        elif len(input) == 1 and len(declared) > 2:
            input = (declared[0], *input * (len(declared) - 1))
        if len(input) != len(declared):
            raise ImportFailure(source, f"--input {'x'.join(map(str, input))}: the input "
                                f"{graph_input.name} is {declared}")
        if not isinstance(input[0], int):
            raise ImportFailure(source, f"the channel count of {graph_input.name} is "
                                f"symbolic ({input[0]})", "give --input CxHxW")
        shape = tuple(int(v) for v in input)
        if any(v >= 2**63 for v in shape):  # ONNX dims are int64
            raise ImportFailure(source, f"--input {'x'.join(map(str, shape))}: an ONNX size "
                                "holds at most 2^63 - 1", "give the size the model takes")
    else:
        if any(not isinstance(d, int) or d <= 0 for d in declared):
            example = "x".join(str(d) if isinstance(d, int) and d > 0 else "224"
                               for d in declared)
            raise ImportFailure(source, f"input {graph_input.name} has symbolic sizes "
                                f"{declared}", f"give them with --input, e.g. --input {example}")
        shape = tuple(declared)
    batch = dims[0]
    note = f"batch axis {batch!r} of {graph_input.name} read as 1" if batch != 1 else ""
    for d, size in zip(tensor.shape.dim, (1, *shape)):
        d.Clear()
        d.dim_value = size
    return shape, note


class _Conversion:
    """The ONNX graph, node by node, -> layers (with names and inputs) and weights."""

    def __init__(self, graph, shapes: dict, opset: int, source: str, data_axis: bool = False):
        self.graph, self.shapes_of, self.opset, self.source = graph, shapes, opset, source
        self.data_axis = data_axis  # axis 0 is data: shapes and nodes read with a leading 1
        self.consts: dict[str, np.ndarray] = {t.name: _array(t, source)
                                              for t in graph.initializer}
        self.stored = set(self.consts)  # initializers (weights), not Constant nodes
        self.names: dict[str, str] = {_graph_input_name(graph, self.consts): INPUT}
        self.layers: list[dict] = []
        self.weights: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}  # layer -> shape inference's (no batch)
        self.unsupported = Unsupported()
        self.taken: set[str] = set()
        self.consumers = Counter(i for n in graph.node for i in n.input if i)
        self.consumers.update(o.name for o in graph.output)
        self.scopes = Counter(p for n in graph.node if n.op_type != "Constant"
                              for p in _scopes(n.name))
        self.skipped: set[int] = set()
        self.fused: dict[int, tuple[str, Any]] = {}

    def run(self) -> _Conversion:
        nodes = list(self.graph.node)
        scalars = self._scalars(nodes)
        for last, (x, inner) in find_gelu(nodes, scalars).items():
            self.fused[last] = ("gelu", x)
            self.skipped.update(inner)
        for last, (norm, inner) in find_layernorm2d(nodes, scalars).items():
            self.fused[last] = ("layernorm2d", nodes[norm])
            self.skipped.update(inner)
        for last, (x, fields, inner) in find_groupnorm(nodes, scalars, self.stored).items():
            self.fused[last] = ("groupnorm", (x, fields))
            self.skipped.update(inner)
        for last, (x, fields, inner) in find_layernorm(nodes, scalars).items():
            self.fused[last] = ("layernorm", (x, fields))
            self.skipped.update(inner)
        for index, node in enumerate(nodes):
            if index in self.skipped:
                dynamic = [i for i in node.input if i in self.names]
                for output in node.output[:1] if dynamic else ():
                    self.names.setdefault(output, self.names[dynamic[0]])
                continue
            dynamic = [i for i in node.input if i in self.names]
            if not dynamic and foldable(node):
                self._fold(node)
            elif not dynamic and node.op_type == "Shape":
                self._fold(node)
            elif node.op_type == "Shape" and self.shapes_of.get(node.input[0]):
                self._shape_of(node)
            else:
                self._find_fusion(index, nodes)
                if index not in self.skipped:
                    self._convert(index, node)
        self.unsupported.raise_if_any(self.source)
        self._output()
        return self

    # -- constants ---------------------------------------------------------------------------

    def _fold(self, node) -> None:
        try:
            results = fold(node, [self.consts.get(i) if i else None for i in node.input],
                           self.opset)
        except Exception as err:  # noqa: BLE001 - a constant the folder cannot compute
            self.unsupported.add(f"{node.op_type} (constant: {type(err).__name__})",
                                 node.name or node.op_type)
            return
        for name, value in zip(node.output, results):
            self.consts[name] = value

    def _shape_of(self, node) -> None:
        """Shape of a network tensor: a constant once the input size is fixed."""
        from convcalc.interop.onnx_fold import shape_slice
        shape = self.shapes_of[node.input[0]]
        self.consts[node.output[0]] = shape_slice(shape[1:] if self.data_axis else shape, node)

    # -- patterns ----------------------------------------------------------------------------

    def _scalars(self, nodes) -> dict:
        """Initializers, Constant nodes' values and Identity copies of them (PyTorch's exporter
        writes equal initializers once, each use an Identity of it), for the patterns found
        before converting."""
        found = dict(self.consts)
        for node in nodes:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
                found[node.output[0]] = _array(node.attribute[0].t, self.source)
            elif node.op_type == "Identity" and node.input and node.input[0] in found:
                found[node.output[0]] = found[node.input[0]]  # PyTorch's shared initializers
        return found

    def _find_fusion(self, index: int, nodes) -> None:
        """MatMul(x, W) + Add(b) -> linear; x * Sigmoid(x) -> silu; x * HardSigmoid(x)
        (1/6, 1/2) -> hardswish: fused into the node that ends the pattern."""
        node = nodes[index]
        if node.op_type not in ("MatMul", "Sigmoid", "HardSigmoid") \
                or self.consumers[node.output[0]] != 1:
            return
        after = next((j for j in range(index + 1, len(nodes))
                      if node.output[0] in nodes[j].input), None)
        if after is None:
            return
        nxt = nodes[after]
        others = [i for i in nxt.input if i != node.output[0]]
        if node.op_type == "MatMul" and nxt.op_type == "Add" and len(others) == 1 \
                and others[0] in self.consts and self.consts[others[0]].ndim <= 1 \
                and node.input[1] in self.consts:
            self.fused[after] = ("linear", (node, self.consts[others[0]]))
            self.skipped.add(index)
            self.names[node.output[0]] = self.names[node.input[0]]  # until the fused layer
        elif node.op_type != "MatMul" and nxt.op_type == "Mul" and others == [node.input[0]]:
            kind = "silu" if node.op_type == "Sigmoid" else "hardswish"
            if kind == "hardswish":
                try:
                    hardsigmoid(self._node(node))
                except ops.NotConvertible:
                    return
            self.fused[after] = (kind, node)
            self.skipped.add(index)
            self.names[node.output[0]] = self.names[node.input[0]]

    # -- conversion --------------------------------------------------------------------------

    def _node(self, node) -> ops.OnnxNode:
        from convcalc.interop.onnx_lite import attribute_value
        attrs = {a.name: attribute_value(a) for a in node.attribute}
        consts = [self.consts.get(i) if i else None for i in node.input]
        in_shapes = [self.shapes_of.get(i) if i else None for i in node.input]
        if self.data_axis and in_shapes and in_shapes[0] is not None:
            raw = in_shapes[0][1:]
            attrs, consts = data_axis.lift_node(node.op_type, attrs, consts, len(raw),
                                                self.opset, raw)
        return ops.OnnxNode(node.op_type, node.name, attrs, consts, in_shapes,
                            [self.shapes_of.get(o) if o and self.consumers[o] else None
                             for o in node.output], self.opset,
                            tuple(i in self.stored for i in node.input))

    def _convert(self, index: int, node) -> None:
        label = node.name or f"{node.op_type}_{index}"
        try:
            if node.domain not in ("", "ai.onnx"):
                raise ops.NotConvertible(f"domain {node.domain}")
            result, sources = self._layer(index, node)
        except ops.NotConvertible as err:
            self.unsupported.add(f"{node.op_type}: {err}", label)
            result, sources = ops.SAME, [i for i in node.input if i in self.names]
        except Exception as err:  # noqa: BLE001 - malformed attributes of a hostile file
            self.unsupported.add(f"{node.op_type}: malformed ({type(err).__name__})", label)
            result, sources = ops.SAME, [i for i in node.input if i in self.names]
        if result is None:
            self.unsupported.add(node.op_type, label)
            result = ops.SAME
        if result == ops.SAME:  # (or unsupported: its outputs still depend on the input,
            if sources:        # so that what follows is converted and listed for itself)
                for output in node.output:
                    self.names[output] = self.names[sources[0]]
            return
        layers = result if isinstance(result, list) else [result]
        missing = next((m for m in map(_missing, layers) if m), "")
        if missing:
            self.unsupported.add(f"{node.op_type}: convcalc has no {missing}", label)
            for output in node.output:
                self.names[output] = self.names[sources[0]]
            return
        named_by = self.fused[index][1][0] if self.fused.get(index, ("",))[0] == "linear" \
            else None
        name = self._layer_name(named_by or node, layers[-1].get(ops.WEIGHTS), layers[-1]["type"])
        for layer in layers[:-1]:  # a pad before a pool: named after the pool
            self._emit(node, layer, sources, safe_name(f"{name}.{layer['type']}", self.taken))
            sources = [node.output[0]]
        kind = layers[-1]["type"]
        self._emit(node, layers[-1], sources, name, last=True)
        if kind in ("split", "chunk"):  # parts name.0, name.1, ...
            for i, output in enumerate(node.output):
                self.names[output] = f"{name}.{i}"
                if self.shapes_of.get(output):
                    self.shapes[f"{name}.{i}"] = tuple(self.shapes_of[output][1:])
            self.shapes.pop(name, None)

    def _layer(self, index: int, node):
        sources = [i for i in node.input if i in self.names]
        if index in self.fused:
            kind, first = self.fused[index]
            if kind == "linear":
                matmul_node, bias = first
                layer = matmul(self._node(matmul_node), bias)
                return layer, [i for i in matmul_node.input if i in self.names]
            if kind == "layernorm2d":  # the LayerNormalization between the two Transposes
                norm = self._node(first)
                layer = ops.find("LayerNormalization", self.opset)(norm)
                eps = layer.get("eps", 1e-5)
                return {"type": "layernorm2d", "eps": eps, ops.WEIGHTS: layer[ops.WEIGHTS]}, \
                    [i for i in nodes_input(first) if i in self.names]
            if kind == "groupnorm":  # Reshape, InstanceNormalization, Reshape, Mul, Add
                x, fields = first
                layer = {"type": "groupnorm", **{k: v for k, v in fields.items() if k != "weights"}}
                if "weights" in fields:
                    layer[ops.WEIGHTS] = fields["weights"]
                layer["eps"] = ops.f32(layer["eps"])
                return ops.without_defaults(layer, eps=1e-5, affine=True), [x]
            if kind == "layernorm":  # written out before opset 17
                return _layernorm(*first, self.shapes_of.get(first[0])), [first[0]]
            return {"type": kind}, [first if isinstance(first, str) else first.input[0]]
        converter = ops.find(node.op_type, self.opset)
        if converter is None:
            return None, sources
        if not sources:
            raise ops.NotConvertible("its inputs are constants the folder cannot compute")
        return converter(self._node(node)), sources

    def _emit(self, node, layer: dict, sources: list[str], name: str, last: bool = False):
        weights = layer.pop(ops.WEIGHTS, {})
        entry = {"type": layer.pop("type"), "name": name}
        inputs = [self.names[s] for s in sources]
        previous = self.layers[-1]["name"] if self.layers else INPUT
        if inputs != [previous]:
            entry["inputs"] = inputs[0] if len(inputs) == 1 else inputs
        entry.update(layer)
        self.layers.append(entry)
        self.names[node.output[0]] = name
        for suffix, value in weights.items():
            self.weights[f"{name}.{suffix}"] = np.ascontiguousarray(value, dtype=np.float32)
        shape = self.shapes_of.get(node.output[0])
        if shape is not None and last:
            self.shapes[name] = tuple(shape[1:])

    def _layer_name(self, node, weights: dict | None, kind: str) -> str:
        """The initializer's module path, else the node name's scope path, else the node
        name, else the kind: made safe and unique."""
        for suffix in (".weight", ".bias"):
            held = [i for i in node.input if i in self.consts and i.endswith(suffix)]
            candidate = held[0].removesuffix(suffix) if weights and held else ""
            if candidate and candidate not in self.taken:
                self.taken.add(candidate)
                return candidate
        scopes = _scopes(node.name)
        if scopes:
            path = _module_path(scopes)
            leaf = self.scopes[scopes[-1]] == 1  # the scope holds this node alone
            op = node.name.rsplit("/", 1)[-1].lower()
            return safe_name(path if leaf else f"{path}.{op}", self.taken)
        return safe_name(node.name or kind, self.taken)

    def _output(self) -> None:
        outputs = [o.name for o in self.graph.output]
        if len(outputs) != 1:
            raise ImportFailure(self.source, f"the graph has {len(outputs)} outputs "
                                f"({', '.join(outputs)})", "convcalc networks have one output")
        if outputs[0] not in self.names:
            raise ImportFailure(self.source, f"the output {outputs[0]} does not depend on "
                                "the input")
        name = self.names[outputs[0]]
        if name == INPUT:  # every node passes the input through: the network is y = x
            self.layers.append({"type": "identity", "name": safe_name(outputs[0], self.taken)})
            return
        last = self.layers[-1]
        if last["type"] in ("split", "chunk") and name.rsplit(".", 1)[0] == last["name"]:
            self.layers.append({"type": "identity", "inputs": name,  # a part is the output
                                "name": safe_name(f"{outputs[0]}", self.taken)})
            return
        if last["name"] != name:
            raise ImportFailure(self.source, f"the output ({name}) is not the last layer")


def _layernorm(x: str, fields: dict, shape) -> dict:
    """nn.LayerNorm over x's trailing axes, from the written-out pattern's fields."""
    if shape is None:
        raise ops.NotConvertible("LayerNorm written out, on an input of unknown shape")
    rank = len(shape)
    axes = sorted(int(a) % rank for a in fields["axes"])
    if axes != list(range(rank - len(axes), rank)) or axes[0] == 0:
        raise ops.NotConvertible(f"a LayerNorm over axes {fields['axes']}, not the trailing ones")
    normalized = [int(d) for d in shape[axes[0]:]]
    weight, bias = fields["weight"], fields["bias"]
    layer = {"type": "layernorm", "normalized_shape": normalized[0] if len(normalized) == 1
             else normalized, "eps": ops.f32(fields["eps"])}
    if weight is None:
        layer["elementwise_affine"] = False
    else:
        layer[ops.WEIGHTS] = {"weight": np.broadcast_to(weight, normalized).copy()}
        layer["bias"] = bias is not None
        if bias is not None:
            layer[ops.WEIGHTS]["bias"] = np.broadcast_to(bias, normalized).copy()
    return ops.without_defaults(layer, eps=1e-5, bias=True)


def _array(tensor, source: str) -> np.ndarray:
    """onnx_lite.to_array, its failures (a string tensor, an undefined type) one line."""
    from convcalc.interop.onnx_lite import to_array
    try:
        return to_array(tensor)
    except Exception as err:  # noqa: BLE001 - a tensor the file declares but cannot hold
        raise ImportFailure(source, f"tensor {tensor.name or '(unnamed)'} cannot be read: "
                            f"{_first_line(err)}", "the file is damaged; export it again") from None


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _missing(layer: dict) -> str:
    """'' when this convcalc has the layer's kind with its parameters, else what is missing
    (a kind another version of convcalc adds)."""
    from convcalc.layers import REGISTRY
    kind = REGISTRY.get(layer["type"])
    if kind is None:
        return f"kind {layer['type']!r}"
    unknown = [k for k in layer if k not in ("type", ops.WEIGHTS) and k not in kind.cls.params]
    return f"parameter {unknown[0]!r} of {layer['type']}" if unknown else ""


def _graph_input_name(graph, consts: dict) -> str:
    return next(i.name for i in graph.input if i.name not in consts)


def _scopes(name: str) -> list[str]:
    """'/layer1/layer1.0/conv1/Conv' -> ['/layer1', '/layer1/layer1.0', ...conv1']: the
    module scopes of PyTorch's exporter (node names without '/' have none)."""
    if not name.startswith("/"):
        return []
    parts = name.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def _module_path(scopes: list[str]) -> str:
    """['/features', '/features/features.1', .../conv', .../conv.0'] -> 'features.1.conv.0':
    a scope that extends the one before (conv -> conv.0) is named from the same parent."""
    full, base, previous = "", "", ""
    for scope in scopes:
        part = scope.rsplit("/", 1)[-1]
        if not (previous and part.startswith(previous + ".")):
            base = f"{full}." if full else ""
        full, previous = base + part, part
    return full


def nodes_input(node) -> list[str]:
    return list(node.input[:1])
