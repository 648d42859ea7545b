"""The fx graph of a traced PyTorch model, node by node, -> layers and weights.

Each node is converted through the tables (torch_table: modules; torch_functions: functions
and tensor methods) after the idioms of torch_patterns are folded. Layers holding weights are
named by their module paths (state_dict keys load unchanged), other layers by the module that
calls them and the operation (`layer1.0.add`). Constants (x.size(), weights) are not layers:
their values are read by the nodes that use them. Every node that cannot be converted is
collected, so that one error lists them all.
"""

from __future__ import annotations

import inspect
import operator
import re
from typing import Any

from convcalc.interop import ImportFailure, Unsupported
from convcalc.interop.spec_text import safe_name
from convcalc.interop.torch_functions import METHODS, function_table
from convcalc.interop.torch_layout import PARTS
from convcalc.interop.torch_patterns import find_folds, overwritten_inputs
from convcalc.interop.torch_table import (
    INDICES,
    SAME,
    UNPOOLS,
    Call,
    NotConvertible,
    module_converter,
)
from convcalc.layers import REGISTRY

VIEWS = {"view", "reshape", "unsqueeze", "expand", "flatten", "squeeze"}


class Conversion:
    """The fx graph, node by node, -> layers (with names and inputs) and weights."""

    def __init__(self, traced, values: dict, source: str):
        import torch
        self.torch = torch
        self.traced, self.values, self.source = traced, values, source
        self.modules = dict(traced.named_modules())
        self.layers: list[dict] = []
        self.weights: dict[str, Any] = {}
        self.names: dict[Any, str] = {}  # fx node -> the layer name that holds its value
        self.shapes: dict[str, tuple[int, ...]] = {}  # layer name -> ShapeProp's shape
        self.unsupported = Unsupported()
        self.dynamic: set = set()  # nodes whose value depends on the input
        self.taken: set[str] = set()
        self.owners: set[str] = set()  # modules whose weights a layer holds
        self.parts: dict = {}  # fx node of a split/chunk -> its layer name (parts name.k)
        self.pools: dict = {}  # fx node of a max-pool returning (output, indices) -> its layer
        self.indices: dict = {}  # fx node of such a pool's indices -> that pool's layer name

    def run(self) -> Conversion:
        nodes = list(self.traced.graph.nodes)
        self.taken.update(n.target for n in nodes if n.op == "call_module"
                          and self._has_weights(n.target))
        self._attr_nodes = {n.target: n for n in nodes if n.op == "get_attr"}
        self.taken.update(n.target.rpartition(".")[0] for n in nodes if n.op == "get_attr")
        self.taken.update(self._attr_nodes)
        folds = {fold.last: fold for fold in find_folds(nodes, self.values)}
        self.overwritten = overwritten_inputs(nodes, self.modules)
        inner = {n for fold in folds.values() for n in fold.inner}
        output = None
        for node in nodes:
            if node in inner:
                self.dynamic.add(node)
                self.names[node] = node.name
            elif node in folds:
                self.dynamic.add(node)
                self._emit(node, dict(folds[node].layer), [folds[node].source])
            elif node.op == "placeholder":
                self._placeholder(node)
            elif node.op == "output":
                output = node
            elif node.op == "get_attr" or not self._depends_on_input(node) \
                    or not self._holds_tensors(node):
                continue  # constants (weights, x.size() and sums of sizes): read by users
            else:
                self.dynamic.add(node)
                self._convert(node)
        self.unsupported.raise_if_any(self.source, "construct")
        self._output(output)
        return self

    def _placeholder(self, node) -> None:
        if self.dynamic:
            raise ImportFailure(self.source, f"forward takes more than one input ({node.name})",
                                "convcalc networks have one input; wrap the model")
        self.dynamic.add(node)
        self.names[node] = "input"

    def _depends_on_input(self, node) -> bool:
        return any(n in self.dynamic for n in node.all_input_nodes)

    def _holds_tensors(self, node) -> bool:
        value = self.values.get(node)
        items = value if isinstance(value, (tuple, list)) else (value,)
        return any(isinstance(item, self.torch.Tensor) for item in items)

    def _has_weights(self, target: str) -> bool:
        module = self.modules.get(target)
        return module is not None and bool(module.state_dict())

    def _convert(self, node) -> None:
        self.names[node] = node.name  # until converted: lets later nodes be checked too
        try:
            if node in self.overwritten:
                raise NotConvertible("in place, on a tensor that is read again afterwards")
            if self._tuple_item(node):
                return
            converter, call = self._prepare(node)
            layer = converter(call)
            if layer is None:
                self.unsupported.add(self._what(node), node.name)
            elif layer == SAME:
                self.names[node] = self._data_inputs(node)[0]
            elif isinstance(layer, list):  # x[:, a:b, c:d]: one slice per axis, in a chain
                for step in layer[:-1]:
                    self._emit(node, step, final=False)
                self._emit(node, layer[-1])
            else:
                self._emit(node, layer)
        except NotConvertible as err:
            self.unsupported.add(f"{self._what(node)}: {err}", node.name)

    def _tuple_item(self, node) -> bool:
        """parts[k] of a split or chunk layer is its part `name.k`; the items of a tuple whose
        producer is unsupported are left out (the producer is reported)."""
        if node.target is not operator.getitem or not isinstance(
                self.values.get(node.args[0]), (tuple, list)):
            return False
        source, index = node.args[0], node.args[1]
        if source in self.pools and isinstance(index, int):  # (output, indices)
            pool = self.pools[source]
            if index % 2:
                self.indices[node] = pool
            else:
                self.names[node] = pool
            return True
        if source in self.parts and isinstance(index, int):
            count = len(self.values[source])
            self.names[node] = f"{self.parts[source]}.{index % count}"
            self.shapes[self.names[node]] = self._shape(node)
        return True

    def _prepare(self, node):
        if node.op == "call_module":
            module = self.modules[node.target]
            convert = module_converter(module)
            if convert is None:
                return (lambda call: None), self._call(node, {})
            return (lambda call: convert(module, call)), self._call(node, {
                "input": None, **_forward_arguments(module, node)})
        if node.op == "call_function":
            entry = function_table().get(node.target)
        else:
            entry = METHODS.get(node.target)
        if entry is None:
            return (lambda call: None), self._call(node, {})
        signature, convert = entry
        bound = signature.bind(tuple(node.args), dict(node.kwargs))
        return convert, self._call(node, bound)

    def _call(self, node, bound: dict) -> Call:
        values = {k: self._evaluate(v) for k, v in bound.items()}
        inputs = [n for n in node.all_input_nodes if n in self.dynamic]
        in_shapes = [self._shape(n) for n in inputs]
        origins = {k: origin for k, v in bound.items()
                   if (origin := self._attribute(v)) is not None}
        return Call(node, values, in_shapes, self._shape(node),
                    {k: v.target for k, v in origins.items()},
                    {k: self.values.get(v) for k, v in origins.items()})

    def _attribute(self, value):
        """The get_attr node a constant argument is, or is a reshape of (self.gamma.view(...))."""
        while getattr(value, "op", None) in ("call_method", "call_function") \
                and getattr(value.target, "__name__", value.target) in VIEWS \
                and value not in self.dynamic:
            value = value.args[0]
        return value if getattr(value, "op", None) == "get_attr" else None

    def _evaluate(self, value):
        """Tensor nodes stay nodes; everything else (sizes, lists of them) becomes its value."""
        from torch import fx
        if isinstance(value, fx.Node):
            return value if value in self.dynamic else self.values.get(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self._evaluate(v) for v in value)
        if isinstance(value, slice):
            return slice(*(self._evaluate(v) for v in (value.start, value.stop, value.step)))
        return value

    def _shape(self, node) -> tuple[int, ...] | None:
        value = self.values.get(node)
        if isinstance(value, self.torch.Tensor) and value.dim() >= 1:
            return tuple(value.shape[1:])
        return None

    def _data_inputs(self, node) -> list[str]:
        """The data inputs in argument order, a repeated one repeated (x * x has two)."""
        from torch.fx.node import map_arg
        found: list = []
        map_arg((node.args, node.kwargs), found.append)
        return [self.names[n] for n in found if n in self.dynamic and n not in self.indices]

    def _what(self, node) -> str:
        if node.op == "call_module":
            cls = type(self.modules[node.target])
            return f"module {cls.__module__}.{cls.__qualname__}"
        if node.op == "call_method":
            return f"method Tensor.{node.target}"
        if node.target is operator.getitem:
            return "indexing or slicing a tensor (x[...])"
        target = node.target
        module = {"_operator": "operator", None: "torch"}.get(
            getattr(target, "__module__", None), getattr(target, "__module__", None))
        return f"function {module}.{getattr(target, '__name__', target)}"

    def _emit(self, node, layer: dict, sources: list | None = None, final: bool = True) -> None:
        """One layer for `node` (final=False: a step of a chain whose last layer is node's)."""
        if layer["type"] not in REGISTRY:
            raise NotConvertible(f"needs the layer kind {layer['type']}, which this convcalc "
                                 "does not have")
        owner = node.target if node.op == "call_module" else layer.pop("_owner", None)
        attr, parts = layer.pop("_attr", None), layer.pop(PARTS, False)
        expected = layer.pop("_shape", None)
        with_indices, unpools = layer.pop(INDICES, False), layer.pop(UNPOOLS, None)
        if unpools is not None and unpools not in self.indices:
            raise NotConvertible("its indices are not the second output of a max-pool")
        read = [n for n in node.all_input_nodes if n in self.indices and n is not unpools]
        if read:
            raise NotConvertible(f"reads the indices of max-pool {self.indices[read[0]]}, "
                                 "which only a max_unpool can read")
        if with_indices:
            value = self.values.get(node)
            expected = tuple(value[0].shape[1:])
        name = self._layer_name(node, owner, attr)
        entry = {"type": layer.pop("type"), "name": name}
        if unpools is not None:
            layer["indices"] = self.indices[unpools]
        inputs = [self.names[n] for n in sources] if sources else self._data_inputs(node)
        if node in self.names and self.names[node] != node.name:  # a chain's next step
            inputs = [self.names[node]]
        previous = self.layers[-1]["name"] if self.layers else "input"
        if inputs != [previous]:
            entry["inputs"] = inputs[0] if len(inputs) == 1 else inputs
        entry.update(layer)
        if parts:  # the split layer itself is its input unchanged; its parts are checked
            shape = self._shape(next(n for n in node.all_input_nodes if n in self.dynamic))
        else:
            shape = expected or self._shape(node)
        if shape is None:
            raise NotConvertible("its value is not a batched tensor")
        self.layers.append(entry)
        self.names[node] = name
        self.shapes[name] = shape
        if parts:
            self.parts[node] = name
        if with_indices:
            self.pools[node] = name
        if owner is not None:
            self.weights.update((f"{name}.{key}", _array(tensor))
                                for key, tensor in self._own_weights(owner).items())
        if attr is not None:
            self.weights[name] = _array(self.values[self._attr_nodes[attr]])

    def _own_weights(self, owner: str) -> dict:
        """A module's own parameters and persistent buffers (not its children's)."""
        return {k: v for k, v in self.modules[owner].state_dict().items() if "." not in k}

    def _layer_name(self, node, owner: str | None, attr: str | None = None) -> str:
        if attr is not None:  # a parameter used as a layer's weight: named by its own path
            if attr in self.owners:
                raise NotConvertible(f"the parameter {attr} used twice (shared weights)")
            self.owners.add(attr)
            return attr
        if owner is not None and self._own_weights(owner):
            if owner in self.owners:
                raise NotConvertible("a module with weights used twice (shared weights)")
            self.owners.add(owner)
            return owner
        if node.op == "call_module":
            return safe_name(node.target, self.taken)
        stack = node.meta.get("nn_module_stack") or {}
        path = next(reversed(stack.values()))[0] if stack else ""
        path = path if isinstance(path, str) else ""
        op = re.sub(r"_\d+$", "", node.name)
        return safe_name(f"{path}.{op}" if path else op, self.taken)

    def _output(self, node) -> None:
        results = [n for n in node.all_input_nodes if n in self.dynamic]
        if len(results) != 1:
            raise ImportFailure(self.source, f"the model returns {len(results)} tensors; "
                                "convcalc networks have one output",
                                "wrap the model so that forward returns one tensor")
        name = self.names[results[0]]
        if not self.layers or self.layers[-1]["name"] != name:
            raise ImportFailure(self.source, f"the output ({name}) is not the last layer")


def _forward_arguments(module, node) -> dict:
    """A module call's arguments after its input, by the names of its forward
    (MaxUnpool2d: indices, output_size); {} for the usual one-argument call."""
    if len(node.args) < 2 and not node.kwargs:
        return {}
    try:
        bound = inspect.signature(module.forward).bind(*node.args, **node.kwargs)
    except (TypeError, ValueError):
        return {}
    return dict(list(bound.arguments.items())[1:])


def _array(tensor):
    """A weight as NumPy: floating point as float32 (bfloat16 has no NumPy type), integers
    (num_batches_tracked) as they are."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()
