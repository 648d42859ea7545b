"""Which input sizes does a network take cleanly? Graph -> a Verdict per candidate size.

A size is *clean* when every layer's output is positive, every merge lines up and no
window leaves real input unread (no `invalid-stride` or `skipped-input` warning: the
1-wide subsampling of ResNet's projection shortcuts is an info, not a failure). It is
*exact* when, besides, every strided window fits exactly: no `invalid-stride` at all, not
even over padding (the "32k + 1" sizes of a padded ResNet).

The graph is built once; each size re-runs only the layer kinds' `infer`, memoised per
layer on its input shapes: deep layers see few distinct shapes (a stride-32 stage sees
2048 / 32 of them), and a size stops at its first failing layer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from convcalc.graph import INPUT, Graph
from convcalc.layers.base import LayerError

CLEAN, INEXACT, FAILED = 0, 1, 2
LOSSY_CODES = ("invalid-stride", "skipped-input")
MAX_CLASSES = 8  # more residues than this is a list, not a progression


@dataclass(frozen=True)
class Verdict:
    size: int
    clean: bool
    exact: bool
    layer: str | None = None  # the first layer that fails, or (when clean) breaks exactness
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Progression:
    """The sizes modulus*k + r for r in residues, from first to last (inclusive)."""

    modulus: int
    residues: tuple[int, ...]
    first: int
    last: int
    count: int

    def text(self) -> str:
        """'every size from 1 to 2048', '16k + 12', '32k - 1 to 32k + 1', '8k + 1, 8k + 5'."""
        if self.modulus == 1:
            return f"every size from {self.first} to {self.last}"
        offsets = _centred(self.residues, self.modulus)
        terms = [f"{self.modulus}k" + (f" {'-' if r < 0 else '+'} {abs(r)}" if r else "")
                 for r in offsets]
        if len(terms) > 2 and offsets == list(range(offsets[0], offsets[-1] + 1)):
            return f"{terms[0]} to {terms[-1]}"
        return ", ".join(terms)


def _centred(residues: tuple[int, ...], modulus: int) -> list[int]:
    """Residues as offsets, wrapping a run that crosses a multiple: (0, 1, 31) mod 32 ->
    [-1, 0, 1]; otherwise the residues themselves."""
    for start in residues:
        offsets = sorted((r - start) % modulus for r in residues)
        if offsets == list(range(len(residues))) and start > residues[0]:
            return [o + start - modulus for o in offsets]
    return list(residues)


@dataclass
class Scan:
    graph: Graph
    sizes: range
    axis: int | None  # None: every spatial axis at once (square inputs)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def clean(self) -> list[int]:
        return [v.size for v in self.verdicts if v.clean]

    @property
    def exact(self) -> list[int]:
        return [v.size for v in self.verdicts if v.exact]

    def verdict(self, size: int) -> Verdict | None:
        index = size - self.sizes.start
        return self.verdicts[index] if 0 <= index < len(self.verdicts) else None

    def failures(self, top: int = 3) -> list[tuple[str, str, int]]:
        """(layer, code, sizes it stops first) of the most frequent first failures."""
        counts = Counter((v.layer, v.code) for v in self.verdicts if not v.clean)
        return [(layer, code, n) for (layer, code), n in counts.most_common(top)]


def spec_size(graph: Graph, axis: int | None) -> int | None:
    """The spec's own size on the scanned axis; for a square scan, its size if its input is
    square (None if it is not: a cube scan has no one size to compare with 16x112x112)."""
    if not graph.input_shape or len(graph.input_shape) < 2:
        return None
    spatial = graph.input_shape[1:]
    if axis is None:
        return spatial[0] if len(set(spatial)) == 1 else None
    return spatial[axis]


def input_for(graph: Graph, size: int, axis: int | None) -> tuple[int, ...]:
    shape = list(graph.input_shape)
    for a in range(1, len(shape)):
        if axis is None or a == axis + 1:
            shape[a] = size
    return tuple(shape)


def scan(graph: Graph, sizes: range, axis: int | None = None) -> Scan:
    """A Verdict for every size; the graph must be free of errors (`convcalc check`).

    Sizes travel in groups that share the shapes of every tensor still needed: once two
    sizes agree there (221..224 after ResNet's stride-4 stem), the rest of the pass is done
    once for them all."""
    plan = _plan(graph)
    memo: list[dict] = [{} for _ in graph.nodes]
    groups: dict[tuple, list[int]] = {}
    for size in sizes:
        groups.setdefault((input_for(graph, size, axis),), []).append(size)
    failed: dict[int, tuple] = {}
    inexact: dict[int, tuple] = {}
    for node, (in_pos, ref_pos, after_pos), cache in zip(graph.nodes, plan, memo):
        moved: dict[tuple, list[int]] = {}
        for state, members in groups.items():
            ins = tuple(state[p] for p in in_pos)
            key = (ins, tuple(state[p] for p in ref_pos.values())) if ref_pos else ins
            found = cache.get(key)
            if found is None:
                refs = {param: state[p] for param, p in ref_pos.items()}
                found = cache[key] = _infer(node, ins, refs)
            out, status, code, message = found
            if status == FAILED:
                failed.update((m, (node.name, code, message)) for m in members)
                continue
            if status == INEXACT:
                for m in members:
                    inexact.setdefault(m, (node.name, code, message))
            extended = state + (out,)
            moved.setdefault(tuple(extended[p] for p in after_pos), []).extend(members)
        groups = moved
    result = Scan(graph, sizes, axis)
    for size in sizes:
        if size in failed:
            result.verdicts.append(Verdict(size, False, False, *failed[size]))
        elif size in inexact:
            result.verdicts.append(Verdict(size, True, False, *inexact[size]))
        else:
            result.verdicts.append(Verdict(size, True, True))
    return result


def _plan(graph: Graph) -> list[tuple[tuple[int, ...], dict[str, int], tuple[int, ...]]]:
    """Per node: where its inputs and refs sit in the live state before it, and which slots
    of (state + its output) stay live after it (read later, or the network's output)."""
    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        for name in (*node.inputs, *node.refs.values()):
            last_use[name] = index
    if graph.nodes:
        last_use[graph.nodes[-1].name] = len(graph.nodes)
    live = [INPUT]
    plan = []
    for index, node in enumerate(graph.nodes):
        slot = {name: p for p, name in enumerate(live)}
        in_pos = tuple(slot[name] for name in node.inputs)
        ref_pos = {param: slot[name] for param, name in node.refs.items()}
        extended = [*live, node.name]
        keep = tuple(p for p, name in enumerate(extended) if last_use.get(name, -1) > index)
        plan.append((in_pos, ref_pos, keep))
        live = [extended[p] for p in keep]
    return plan


def _infer(node, ins, refs):
    """(output shape, CLEAN | INEXACT | FAILED, code, message) of one layer at these shapes."""
    try:
        result = node.layer.infer(list(ins), refs)
    except LayerError as err:
        return None, FAILED, err.diagnostic.code, err.diagnostic.message
    status, code, message = CLEAN, None, None
    for d in result.diagnostics:
        if d.code in LOSSY_CODES and d.severity.value in ("warning", "error"):
            return None, FAILED, d.code, d.message
        if d.code == "invalid-stride" and status == CLEAN:
            status, code, message = INEXACT, d.code, d.message
    return tuple(result.shape), status, code, message


# -- summaries ------------------------------------------------------------------------------

def progressions(values: list[int]) -> Progression | None:
    """The smallest modulus m under which each residue class of `values` is one unbroken run
    (v, v + m, v + 2m, ...), with at most MAX_CLASSES classes; None if there is none."""
    if not values:
        return None
    values = sorted(values)
    span = values[-1] - values[0] + 1
    for modulus in range(1, min(span, 1024) + 1):
        last: dict[int, int] = {}
        for v in values:
            r = v % modulus
            if (r in last and v - last[r] != modulus) or (r not in last and len(last) == MAX_CLASSES):
                break
            last[r] = v
        else:
            if modulus > 1 and len(values) < 3 * len(last):
                continue  # classes of one or two points: not a progression yet
            return Progression(modulus, tuple(sorted(last)), values[0], values[-1], len(values))
    return None


def runs(values: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs: [1, 2, 3, 7, 9, 10] -> [(1, 3), (7, 7), (9, 10)]."""
    out: list[tuple[int, int]] = []
    for v in sorted(values):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def nearest(values: list[int], target: int) -> tuple[int | None, int | None]:
    """The largest value below target and the smallest above it."""
    below = [v for v in values if v < target]
    above = [v for v in values if v > target]
    return (max(below) if below else None), (min(above) if above else None)
