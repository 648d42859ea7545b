"""Measure a unit's receptive field by running the network (`convcalc rf --verify`).

The probe network is the spec's with every weight that has a fan-in set to 1/fan_in (all
positive), per-channel scales and running variances 1, biases and running means 0, and
every shape-preserving position-wise layer (activations, batch norm, dropout: a single
input, per-channel weights at most, and the step k = s = 1, p = 0 on every axis) run as
the identity, and every product (mul) run as a sum, which depends on the same inputs. On a zero
background every layer then maps zeros to zeros and an impulse can
only add positive amounts downstream: a set of input pixels changes a unit exactly when it
holds at least one pixel the unit depends on (no cancellation). The impulses have uneven
positive values (0.5 to 1.5, seeded), so that normalisations, which remove a uniform shift,
see them too. One batch of group tests measures the span on each axis:

    prefix(t) = hyperplane impulses on rows 0..t,  suffix(t) = on rows t..n-1;
    measured first = min t such that prefix(t) changes the unit,
    measured last  = max t such that suffix(t) changes it.

The batch holds prefix(first-1), prefix(first), suffix(last), suffix(last+1) of the
predicted clipped region per axis (plus the empty and the whole image); where a prediction
fails, a binary search over t finds the measured bound. A hyperplane impulse (the whole
row) measures the field's projection on its axis, which is what the analysis predicts.

The only thing taken from the executor is `LayerRun`: a function from an input batch
(N, *spatial, C) to the chosen layer's output (N, *out, C') or (N, F).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from convcalc.graph import INPUT
from convcalc.layers.base import RFStep
from convcalc.receptive import Region

LayerRun = Callable[[np.ndarray], np.ndarray]
CHUNK = 8  # samples per forward run: bounds the memory of a large network


@dataclass(frozen=True)
class AxisMeasure:
    """Predicted and measured [first, last] pixels on one axis (None: no pixel at all)."""

    axis: int
    predicted: tuple[int, int] | None
    measured: tuple[int, int] | None

    @property
    def status(self) -> str:
        """ok: equal; inside: the measured span lies within the predicted one (its edge
        pixels fall in holes, e.g. between the windows of a stride > kernel); differs."""
        if self.predicted == self.measured:
            return "ok"
        if self.measured is None or (self.predicted is not None
                                     and self.predicted[0] <= self.measured[0]
                                     and self.measured[1] <= self.predicted[1]):
            return "inside"
        return "differs"

    @property
    def ok(self) -> bool:
        return self.status != "differs"

    def as_dict(self) -> dict:
        return {"axis": self.axis, "ok": self.ok, "status": self.status,
                "predicted": list(self.predicted) if self.predicted else None,
                "measured": list(self.measured) if self.measured else None}


# -- the probe network ---------------------------------------------------------------------

def probe_weights(expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """state_dict name -> all-positive probe values (see the module docstring)."""
    weights = {}
    for name, shape in expected.items():
        suffix = name.rsplit(".", 1)[-1]
        if len(shape) >= 2:
            value = 1.0 / math.prod(shape[1:])
        else:
            value = 0.0 if suffix in ("bias", "running_mean") else 1.0
        weights[name] = np.full(shape, value, np.float32)
    return weights


# A product of a unit's paths (a gate: x * sigmoid(squeeze(x))) depends on both factors, but
# on a zero background it stays 0 when only the gate moves; a sum has the same dependencies.
PROBE_AS = {"mul": "add"}


def probe_report(report, upto: str | None = None):
    """A copy of the report whose position-wise layers are the identity, without
    `expectation-failed` (an --input override changes the sizes a spec expects); with
    `upto`, only that layer and the layers it depends on (VGG-16's classifier, 120 M
    weights, is neither filled nor run to measure its last pooling layer)."""
    from convcalc.layers import REGISTRY

    if upto is not None:
        report = _ancestors(report, upto)
    identity = REGISTRY["identity"]
    shapes = {INPUT: report.input_shape, **{l.name: l.output_shape for l in report.layers}}
    weights = {layer.name: layer.weights for layer in report.layers}
    nodes = []
    for node in report.graph.nodes:
        if _position_wise(node, shapes, weights[node.name]):
            node = dataclasses.replace(node, type="identity",
                                       layer=identity.cls("identity", identity.ndim, {}))
        elif node.type in PROBE_AS:  # same dependencies, but monotone and zero-preserving
            kind = REGISTRY[PROBE_AS[node.type]]
            node = dataclasses.replace(node, type=kind.name, layer=kind.cls(kind.name, kind.ndim, {}))
        nodes.append(node)
    graph = dataclasses.replace(report.graph, nodes=nodes)
    kept = [d for d in report.diagnostics if d.code != "expectation-failed"]
    return dataclasses.replace(report, graph=graph, diagnostics=kept)


def _ancestors(report, layer: str):
    """The report cut to `layer` and what it reads (inputs and refs), in the same order."""
    by_name = {node.name: node for node in report.graph.nodes}
    needed, stack = set(), [layer]
    while stack:
        name = stack.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        stack += [*by_name[name].inputs, *by_name[name].refs.values()]
    nodes = [node for node in report.graph.nodes if node.name in needed]
    layers = [entry for entry in report.layers if entry.name in needed]
    return dataclasses.replace(report, graph=dataclasses.replace(report.graph, nodes=nodes),
                               layers=layers)


def _position_wise(node, shapes, weights) -> bool:
    if len(node.inputs) != 1 or node.refs or node.layer is None:
        return False
    shape, out = shapes.get(node.inputs[0]), shapes.get(node.name)
    if shape is None or shape != out or len(out) < 2:
        return False
    if any(len(w.shape) > 1 for w in weights.values()):
        return False
    steps = node.layer.rf_steps([shape], out)
    return steps is not None and all(step == RFStep() for step in steps)


def executor_run(report, layer: str) -> LayerRun:
    """The runner of convcalc.executor on the probe network, keeping `layer`'s output."""
    from convcalc.executor.runner import Executor
    from convcalc.executor.weights import expected_weights

    probe = probe_report(report, upto=layer)
    executor = Executor(probe, probe_weights(expected_weights(probe)), keep=(layer,),
                        fold=False)
    return lambda x: executor.run(x, stats=False).kept[layer]


# -- the measurement -----------------------------------------------------------------------

def measure(run: LayerRun, input_shape: tuple[int, ...], region: Region,
            collapsed: bool = False) -> list[AxisMeasure]:
    """Measured [first, last] per axis of the pixels that change `region.unit`."""
    return measure_units(run, input_shape, [region], collapsed)[0]


def measure_units(run: LayerRun, input_shape: tuple[int, ...], regions: list[Region],
                  collapsed: bool = False) -> list[list[AxisMeasure]]:
    """`measure` for several units of one layer at once: one probe, each distinct sample run
    once (units that share a row or a column share its tests: VGG-16's five units need 25
    samples, not 50), every sample's output read at all the units."""
    channels, image = input_shape[0], tuple(input_shape[1:])
    probe = _Probe(run, channels, image, [() if collapsed else r.unit for r in regions])
    plans = []
    for region in regions:
        predicted = [None if region.empty else (f, l) for f, l in zip(region.first, region.last)]
        planned = [("whole", 0, 0)]
        for axis, bounds in enumerate(predicted):
            if bounds is not None:
                first, last = bounds
                planned += [("prefix", axis, first - 1), ("prefix", axis, first),
                            ("suffix", axis, last), ("suffix", axis, last + 1)]
        plans.append((predicted, planned))
    probe.changes([test for _, planned in plans for test in planned])  # one batch, cached
    return [_bounds(probe, i, image, predicted) for i, (predicted, _) in enumerate(plans)]


def _bounds(probe: "_Probe", i: int, image: tuple[int, ...], predicted) -> list[AxisMeasure]:
    """Unit i's measured span per axis: the planned tests when the prediction holds, else a
    binary search."""
    def changes(test) -> bool:
        return probe.changes([test])[0][i]

    if not changes(("whole", 0, 0)):
        return [AxisMeasure(a, p, None) for a, p in enumerate(predicted)]
    found = []
    for axis, bounds in enumerate(predicted):
        n = image[axis]
        if (bounds is not None and not changes(("prefix", axis, bounds[0] - 1))
                and changes(("prefix", axis, bounds[0]))):
            first = bounds[0]
        else:
            first = _smallest(lambda t: changes(("prefix", axis, t)), n)
        if (bounds is not None and not changes(("suffix", axis, bounds[1] + 1))
                and changes(("suffix", axis, bounds[1]))):
            last = bounds[1]
        else:
            last = n - 1 - _smallest(lambda t: changes(("suffix", axis, n - 1 - t)), n)
        found.append(AxisMeasure(axis, bounds, (first, last)))
    return found


def _smallest(predicate: Callable[[int], bool], n: int) -> int:
    """The smallest t in [0, n) with predicate(t), for a predicate monotone in t that holds
    at n - 1 (binary search)."""
    low, high = 0, n - 1
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return low


class _Probe:
    """Runs impulse samples and tells, per unit, whether each changes it (against zero
    input). Each distinct sample runs once; its answers are kept."""

    def __init__(self, run: LayerRun, channels: int, image: tuple[int, ...], units: list):
        self.run, self.channels, self.image = run, channels, image
        self.units = [tuple(unit) for unit in units]
        # positive and uneven: a normalisation cannot remove an uneven change (a uniform
        # shift of a whole group it can: GroupNorm, a softmax over positions)
        self.values = np.random.default_rng(0).uniform(
            0.5, 1.5, (*image, channels)).astype(np.float32)
        self.base = self._outputs([self._sample(None)])[0]
        self.known: dict[tuple, list[bool]] = {}

    def _sample(self, test) -> np.ndarray:
        x = np.zeros((*self.image, self.channels), np.float32)
        if test is None:
            return x
        kind, axis, t = test
        index = [slice(None)] * len(self.image)
        if kind == "prefix":
            index[axis] = slice(0, max(t + 1, 0))
        elif kind == "suffix":
            index[axis] = slice(min(max(t, 0), self.image[axis]), None)
        x[tuple(index)] = self.values[tuple(index)]
        return x

    def _outputs(self, samples: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Per sample, the output at each unit (the whole output of a collapsed layer)."""
        found = []
        for start in range(0, len(samples), CHUNK):
            out = self.run(np.stack(samples[start:start + CHUNK]))
            found += [[sample[unit] if out.ndim > 2 else sample for unit in self.units]
                      for sample in out]
        return found

    def changes(self, tests) -> list[list[bool]]:
        """Per test, per unit: does the sample change the unit's output."""
        new = list(dict.fromkeys(t for t in tests if t not in self.known))
        for test, outs in zip(new, self._outputs([self._sample(t) for t in new])):
            self.known[test] = [bool(np.any(np.abs(o - b) > 1e-5 * np.abs(b)))
                                for o, b in zip(outs, self.base)]
        return [self.known[t] for t in tests]
