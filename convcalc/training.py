"""Report -> the cost of one training step: backward MACs, the activations autograd saves for
backward, gradients, optimizer state and the peak memory of the step.

What each kind saves and how many backward MACs it costs is the kind's own rule
(Layer.saved_for_backward, Layer.backward_macs in convcalc/layers/); this module walks the
graph once and adds them up, as PyTorch's autograd would see a train-mode step:

- a layer is in the autograd graph when one of its inputs needs a gradient or it has
  trainable parameters; the network input needs none, so the first conv computes no
  gradient for its input, and layers before the first trainable one save nothing;
- saved tensors are counted once per storage: a view (flatten, crop, split parts) and an
  in-place activation share their input's storage; parameters and buffers are not counted;
- backward MACs are those of the whole step (the batch included), unlike `macs`, per sample;
- gradients: one per trainable parameter, of its size; optimizer state after one step
  (torch.optim): sgd none, momentum one buffer per parameter, adam and adamw two plus a
  float32 `step` per parameter tensor;
- peak: weights (parameters and buffers) + gradients + optimizer state, held throughout,
  plus the activations alive at the worst moment of the step (see `_activation_peak`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from convcalc.graph import INPUT

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
STATE_PER_PARAM = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
STEP_BYTES = {"sgd": 0, "momentum": 0, "adam": 4, "adamw": 4}  # torch's float32 step tensor


@dataclass(frozen=True)
class LayerTraining:
    """One layer's share: backward MACs, bytes it saves first for backward (a storage saved
    by several layers counts at the first), its parameters' gradients and optimizer state."""

    name: str
    backward_macs: int = 0
    saved_bytes: int = 0
    gradient_bytes: int = 0
    optimizer_bytes: int = 0
    needs_grad: bool = False


@dataclass(frozen=True)
class Training:
    optimizer: str
    layers: tuple[LayerTraining, ...]
    backward_macs: int
    saved_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    weight_bytes: int
    activation_peak_bytes: int

    @property
    def peak_bytes(self) -> int:
        """weights + gradients + optimizer state + activations at their largest."""
        return (self.weight_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.activation_peak_bytes)

    def totals_dict(self) -> dict:
        """The json contract `totals.training` (keys pinned)."""
        return {"optimizer": self.optimizer, "backward_macs": self.backward_macs,
                "saved_bytes": self.saved_bytes, "gradient_bytes": self.gradient_bytes,
                "optimizer_bytes": self.optimizer_bytes, "peak_bytes": self.peak_bytes}


def training_cost(graph, layers, options, optimizer: str = "adam") -> Training | None:
    """The cost of one training step of an analysed graph; None when a layer's shape is
    unknown (the errors say why)."""
    if not layers or any(layer.output_shape is None for layer in layers) or not graph.input_shape:
        return None
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    walk = _Walk(graph, layers, options)
    rows = [walk.layer(node, layer, optimizer) for node, layer in zip(graph.nodes, layers)]
    weights = sum(layer.params + layer.buffers for layer in layers) * options.itemsize
    return Training(optimizer, tuple(rows), sum(r.backward_macs for r in rows),
                    sum(r.saved_bytes for r in rows), sum(r.gradient_bytes for r in rows),
                    sum(r.optimizer_bytes for r in rows), weights, walk.activation_peak())


class _Walk:
    """Storages and gradient needs, in topological order."""

    def __init__(self, graph, layers, options):
        self.graph, self.options = graph, options
        self.shapes = {INPUT: graph.input_shape, **{x.name: x.output_shape for x in layers}}
        self.storage = {INPUT: INPUT}
        self.bytes = {INPUT: self._bytes(graph.input_shape)}
        self.needs_grad = {INPUT: False}
        self.saved: dict[str, int] = {}  # storage -> bytes, in the order first saved
        self.savers: dict[str, list[str]] = {}  # storage -> layers that save it

    def _bytes(self, shape, itemsize=None) -> int:
        return math.prod(shape) * self.options.batch * (itemsize or self.options.itemsize)

    def layer(self, node, layer, optimizer: str) -> LayerTraining:
        ins = [self.shapes[name] for name in node.inputs]
        input_grad = [self.needs_grad[name] for name in node.inputs]
        trainable = [w for w in layer.weights.values() if w.trainable] if layer.trainable_params else []
        needs = any(input_grad) or bool(trainable)
        self.needs_grad[node.name] = needs
        if node.layer.aliases_input() and node.inputs:
            self.storage[node.name] = self.storage[node.inputs[0]]
        else:
            self.storage[node.name] = node.name
            self.bytes[node.name] = self._bytes(layer.output_shape)
        if not needs:
            return LayerTraining(node.name)
        saved = sum(self._save(node, item, ins, layer.output_shape)
                    for item in node.layer.saved_for_backward(ins, layer.output_shape))
        grads = sum(w.size for w in trainable) * self.options.itemsize
        state = (STATE_PER_PARAM[optimizer] * grads + STEP_BYTES[optimizer] * len(trainable))
        macs = node.layer.backward_macs(layer.macs, input_grad, bool(trainable)) * self.options.batch
        return LayerTraining(node.name, macs, saved, grads, state, True)

    def _save(self, node, item, ins, out) -> int:
        """Bytes newly saved by `item` (0 when its storage is already saved)."""
        if item.what == "extra":
            key = f"{node.name}#{item.label}"
            size = item.elements * (self.options.batch if item.per_sample else 1) * (
                item.itemsize or self.options.itemsize)
            self.bytes[key] = size
        else:
            tensor = node.inputs[item.index] if item.what == "input" else node.name
            key = self.storage[tensor]
            size = self.bytes[key]
        self.savers.setdefault(key, []).append(node.name)
        if key in self.saved:
            return 0
        self.saved[key] = size
        return size

    def activation_peak(self) -> int:
        return _activation_peak(self)


def _activation_peak(walk: _Walk) -> int:
    """Activation bytes alive at the worst moment of a training step.

    Forward, in topological order: a storage is allocated by the layer that makes it and
    freed after its last reader, unless it is saved for backward; saved tensors stay.
    Backward, in reverse order: a layer's output gradient exists from the backward of its
    first-run reader until its own backward; its input gradients appear then; a saved
    storage is freed after the backward of the earliest layer that saved it."""
    graph = walk.graph
    nodes = graph.nodes
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.inputs:
            readers.setdefault(walk.storage[name], []).append(index)
    saved = set(walk.saved)
    extras = {key for key in walk.saved if "#" in key}
    last = nodes[-1].name
    live = {INPUT: walk.bytes[INPUT]}
    peak = sum(live.values())
    for index, node in enumerate(nodes):
        own = walk.storage[node.name]
        if own not in live:
            live[own] = walk.bytes[own]
        for key in extras:
            if key.startswith(node.name + "#"):
                live[key] = walk.bytes[key]
        peak = max(peak, sum(live.values()))
        for name in {walk.storage[n] for n in node.inputs}:
            if max(readers[name]) == index and name not in saved and name != walk.storage[last]:
                live.pop(name, None)
    # backward
    grads: dict[str, int] = {last: walk.bytes[walk.storage[last]]}
    first_saver = _first_saver(walk, nodes)
    for index in range(len(nodes) - 1, -1, -1):
        node = nodes[index]
        if not walk.needs_grad.get(node.name):
            continue
        for name in node.inputs:
            if walk.needs_grad.get(name):
                grads.setdefault(name, _elements_bytes(walk, name))
        peak = max(peak, sum(live.values()) + sum(grads.values()))
        grads.pop(node.name, None)
        for key, first in first_saver.items():
            if first == index:
                live.pop(key, None)
    return peak


def _first_saver(walk: _Walk, nodes) -> dict[str, int]:
    order = {node.name: i for i, node in enumerate(nodes)}
    return {key: min(order[n] for n in names) for key, names in walk.savers.items()}


def _elements_bytes(walk: _Walk, name: str) -> int:
    return walk._bytes(walk.shapes[name])


__all__ = ["OPTIMIZERS", "LayerTraining", "Training", "training_cost"]
