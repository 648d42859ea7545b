"""Graph + weights + input -> arrays: the network run forward at inference, in NumPy.

Data are channels-last float32, (N, *spatial, C), or (N, F) once flat (see layout.py).
Each layer kind's forward lives in its class (convcalc/layers); this module only plans and
drives them:

- the plan is made once per network: weights are laid out by each layer's `prepare`, and a
  BatchNorm whose input is a conv read by nothing else is folded into that conv
  (W' = W * scale, b' = b * scale + shift), so it costs nothing at run time;
- tensors are freed as soon as their last consumer has run (graph.consumers(), the liveness
  the analysis' peak-memory walk uses);
- every layer's produced shape is compared with the analysis' prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Callable

import numpy as np

from convcalc.analysis import Report
from convcalc.graph import INPUT, Node
from convcalc.executor.layout import sample_shape
from convcalc.layers.base import weight_key
from convcalc.render.common import bytes_text

SCRATCH_BYTES = 64 * 2**20  # a conv's patch matrix is built in blocks of at most this size


class RunError(Exception):
    """A user-facing failure of a run: one line, with a hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class Step:
    """One forward call: a node, or a conv and the BatchNorm folded into it."""

    nodes: list[Node]
    params: dict  # what the first node's forward takes (its prepared weights)
    refs: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # param -> (layer, side)

    @property
    def layer(self):
        return self.nodes[0].layer

    @property
    def inputs(self) -> list[str]:
        return self.nodes[0].inputs

    @property
    def output(self) -> str:
        return self.nodes[-1].name


@dataclass
class LayerRun:
    """What one layer produced, beside what the analysis predicted (per-sample shapes)."""

    name: str
    type: str
    predicted: tuple[int, ...] | None
    produced: tuple[int, ...]
    seconds: float
    low: float | None = None
    mean: float | None = None
    high: float | None = None
    folded_into: str | None = None
    error: tuple[float, float] | None = None  # --verify: largest absolute, relative error

    @property
    def ok(self) -> bool:
        return self.predicted == self.produced


@dataclass
class RunResult:
    output: np.ndarray
    kept: dict[str, np.ndarray]
    layers: list[LayerRun]
    peak_bytes: int = 0  # largest sum of live tensors (a step's inputs and output together)

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers)


Check = Callable[[Step, list, dict, np.ndarray], tuple[float, float]]


class Executor:
    """A network ready to run: its plan, with weights prepared once.

    `report` is the analysis at the spec's input size (Report.graph is the graph run);
    `weights` maps state_dict names to arrays; `keep` names layers whose outputs the caller
    wants back (they are never folded away nor freed); `fold` folds BatchNorm into convs.
    """

    def __init__(self, report: Report, weights: dict[str, np.ndarray], keep=(), fold=True):
        if blocking_errors(report) or report.graph is None:
            raise RunError(f"{report.file} has errors", f"run convcalc check {report.file}")
        self.report = report
        self.graph = report.graph
        self.weights = weights
        self.keep = tuple(keep)
        self.suffixes = {layer.name: tuple(layer.weights) for layer in report.layers}
        self.steps = self._plan(fold)

    # -- planning -----------------------------------------------------------------------------
    def layer_weights(self, name: str) -> dict[str, np.ndarray]:
        return {suffix: self.weights[weight_key(name, suffix)] for suffix in self.suffixes[name]
                if weight_key(name, suffix) in self.weights}

    def _plan(self, fold: bool) -> list[Step]:
        """One step per node, BatchNorms folded into their convs; then every step's
        weights are laid out once (prepare), folded ones included."""
        consumers = self.graph.consumers()
        steps: list[Step] = []
        by_output: dict[str, Step] = {}
        for node in self.graph.nodes:
            if fold and self._fold(node, by_output, consumers):
                by_output[node.name] = by_output.pop(node.inputs[0])
                continue
            refs = {param: (target, node.layer.ref_outputs.get(param))
                    for param, target in node.refs.items()}
            step = Step([node], self.layer_weights(node.name), refs)
            steps.append(step)
            by_output[node.name] = step
        shapes = {INPUT: self.report.input_shape,
                  **{layer.name: layer.output_shape for layer in self.report.layers}}
        wanted = self._side_outputs()
        for step in steps:
            step.params = step.layer.prepare(step.params, [shapes[n] for n in step.inputs])
            if step.nodes[0].name in wanted:
                step.params["side_outputs"] = tuple(sorted(wanted[step.nodes[0].name]))
        return steps

    def _side_outputs(self) -> dict[str, set[str]]:
        wanted: dict[str, set[str]] = {}
        for node in self.graph.nodes:
            for param, side in node.layer.ref_outputs.items():
                if param in node.refs:
                    wanted.setdefault(node.refs[param], set()).add(side)
        return wanted

    def _fold(self, node: Node, by_output, consumers) -> bool:
        """Fold a per-channel affine layer (BatchNorm) into the step before it, when that
        step's output is read by this layer alone and its kind can absorb the affine."""
        if len(node.inputs) != 1 or node.refs:
            return False
        source = node.inputs[0]
        step = by_output.get(source)
        if (step is None or len(step.nodes) != 1 or consumers.get(source) != [node.name]
                or source in self.keep or step.refs):
            return False
        affine = node.layer.channel_affine(self.layer_weights(node.name))
        folded = step.layer.absorb_affine(step.params, *affine) if affine else None
        if folded is None:
            return False
        step.params = folded  # raw weights until _plan prepares them
        step.nodes.append(node)
        return True

    # -- running ------------------------------------------------------------------------------
    def run(self, x: np.ndarray, report: Report | None = None, stats: bool = True,
            check: Check | None = None, observe=None) -> RunResult:
        """x: (N, *spatial, C) float32. `report`: the analysis at x's size (default: the
        spec's); `stats`: min/mean/max of every output; `check(step, inputs, refs, output)`
        returns (absolute, relative) errors of a step's output (--verify); `observe(name,
        output)` sees every step's output (data-set statistics)."""
        report = report or self.report
        predicted = {layer.name: layer.output_shape for layer in report.layers}
        remaining = {name: len(users) for name, users in self.graph.consumers().items()}
        final = self.graph.output.name
        values: dict[str, np.ndarray] = {INPUT: np.asarray(x, np.float32)}
        sides: dict[str, dict] = {}
        rows: list[LayerRun] = []
        peak = 0
        for step in self.steps:
            inputs = [values[name] for name in step.inputs]
            refs = {param: sides[target][side] if side else values[target]
                    for param, (target, side) in step.refs.items()}
            start = perf_counter()
            out = self._forward(step, inputs, refs)
            seconds = perf_counter() - start
            if isinstance(out, tuple):
                out, sides[step.output] = out
            values[step.output] = out
            peak = max(peak, _live_bytes(values, sides))
            error = check(step, inputs, refs, out) if check else None
            if observe is not None:
                observe(step.output, out)
            rows.extend(self._rows(step, out, seconds, predicted, stats, error))
            del inputs, refs
            self._release(step, values, sides, remaining, final)
        return RunResult(values[final], {name: values[name] for name in self.keep}, rows, peak)

    @staticmethod
    def _forward(step: Step, inputs: list, refs: dict):
        node = step.nodes[0]
        try:
            return node.layer.forward(inputs, step.params, refs)
        except MemoryError:
            raise RunError(f"out of memory in layer {node.name} ({node.type})",
                           "use a smaller --batch-size or --resize")
        except (ValueError, IndexError) as err:
            raise RunError(f"layer {node.name} ({node.type}) failed: {err}",
                           "check the layer's parameters against its input shapes "
                           "(convcalc check shows them)")

    def _release(self, step: Step, values: dict, sides: dict, remaining: dict, final: str):
        """Free every tensor whose last consumer has now run."""
        done = [step.output] if remaining.get(step.output, 0) == 0 else []
        for node in step.nodes:
            for name in [*node.inputs, *node.refs.values()]:
                remaining[name] -= 1
                if remaining[name] == 0:
                    done.append(name)
        for name in done:
            if name != final and name not in self.keep:
                values.pop(name, None)
                sides.pop(name, None)

    @staticmethod
    def _rows(step: Step, out, seconds, predicted, stats, error) -> list[LayerRun]:
        produced = sample_shape(out)
        low = mean = high = None
        if stats and out.size:
            low, mean, high = summary(out)
        rows = []
        for index, node in enumerate(step.nodes):
            last = index == len(step.nodes) - 1
            rows.append(LayerRun(
                node.name, node.type, predicted.get(node.name), produced,
                seconds if index == 0 else 0.0,
                *((low, mean, high) if last else (None, None, None)),
                folded_into=None if last else step.output, error=error))
        return rows


def summary(out: np.ndarray) -> tuple[float, float, float]:
    """min, mean, max of a float array. The mean is a float32 pairwise sum (NumPy's, on the
    flat array: relative error ~ log2(n) * 6e-8), a third of the time of a float64 one."""
    flat = out.reshape(-1)
    total = np.add.reduce(flat, dtype=np.float32) if flat.dtype == np.float32 else \
        np.add.reduce(flat, dtype=np.float64)
    return float(flat.min()), float(total) / flat.size, float(flat.max())


def _live_bytes(values: dict, sides: dict) -> int:
    """Bytes held by live tensors; a view (dropout, crop) counts with the array it views."""
    arrays = [*values.values(), *(a for side in sides.values() for a in side.values())]
    owners = {id(a.base if a.base is not None else a): a.base if a.base is not None else a
              for a in arrays}
    return sum(owner.nbytes for owner in owners.values())


def blocking_errors(report: Report) -> list:
    """Errors that stop a run: all but failed `expect`s, which pin figures at the spec's own
    input size and say nothing about whether the network runs."""
    from convcalc.diagnostics import Severity
    return [d for d in report.diagnostics
            if d.severity == Severity.ERROR and d.code != "expectation-failed"]


# -- memory ----------------------------------------------------------------------------------

def estimate_bytes(report: Report, batch: int, weights: dict[str, np.ndarray]) -> int:
    """Peak activation bytes (the analysis' liveness walk, per sample) * batch, the weights
    twice (as given and as prepared) and a conv's patch-matrix scratch."""
    per_sample = report.totals.peak_activation_bytes // max(report.options.batch, 1)
    return per_sample * batch + 2 * sum(a.nbytes for a in weights.values()) + SCRATCH_BYTES


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_max_memory() -> int:
    """Half the available memory: the rest for the system and the other programs."""
    available = available_memory()
    return available // 2 if available else 2 * 2**30


def check_memory(report: Report, batch: int, weights: dict, limit: int) -> int:
    """The estimate, or a RunError when it exceeds `limit`."""
    need = estimate_bytes(report, batch, weights)
    if need > limit:
        per_sample = max(report.totals.peak_activation_bytes // max(report.options.batch, 1), 1)
        fits = max((limit - need + per_sample * batch) // per_sample, 0)
        hint = (f"use --batch-size {fits}" if 0 < fits < batch else
                "use --resize to a smaller size") + ", or raise --max-memory"
        raise RunError(f"the run needs about {bytes_text(need)} (batch {batch}: activations "
                       f"at their peak + weights), more than --max-memory {bytes_text(limit)}",
                       hint)
    return need
