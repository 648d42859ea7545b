"""Receptive fields of every layer (Araujo, Norris and Sim, "Computing Receptive Fields of
Convolutional Neural Networks", Distill 2019, doi:10.23915/distill.00021).

On each spatial axis a tensor's field is three exact numbers in input pixels: `size` r,
`stride` S (the distance between neighbouring units) and `padding` P. Unit u sees

    start(u) = -P + u*S,  end(u) = start(u) + r - 1,  centre(u) = -P + u*S + (r - 1)/2.

A layer declares its step (k, s, p) per axis in `Layer.rf_steps`; stacking it on a field:

    r' = r + (k - 1)*S,   S' = s*S,   P' = P + p*S

(the article's recurrences read from the input up; its closed form r = 1 + sum (k_l - 1)
prod_{i<l} s_i follows). Fractions stay exact: upsampling and transposed convolutions have
strides 1/s. A `whole` step (global pooling, flatten, linear, group statistics) is a kernel
and stride of the layer's whole input extent n: r' = r + (n - 1)*S, S' = n*S, P' = P.
After a layer that removes the spatial axes (flatten, global pooling) the tensor is one unit
whose field stays fixed; its size is then at least the input's.

Merges (add, mul, concat) take the smallest field holding every path's: with equal strides
P = max P_i and r = max(r_i - 1 - P_i) + P + 1, which is the largest path's field when the
paths are aligned (equal S and centre offset -P + (r-1)/2); with unequal strides the largest
path's field. Misaligned paths give `misaligned-merge`. A path broadcast along an axis (size
1 against more, a squeeze-excitation gate) adds its fixed region to every unit.

After a layer that moves or mixes spatial axes (reshape, permute or transpose of spatial
axes, a partial flatten, matmul, stack, a reduction that drops some spatial axes) the field
is unknown: `Layer.rf_steps` returns None, the Field carries the reason, and every layer
that reads it, merges included, is unknown too. Nothing is guessed. A tensor already
collapsed to one unit (global pooling) stays collapsed through such layers: every element
still sees at most that unit's region.

Assumptions: zero padding (reflect, replicate and circular padding read pixels mirrored
from inside the image near its borders); a concat along a spatial axis is not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable

from convcalc.diagnostics import Diagnostic, diag
from convcalc.graph import INPUT, Node
from convcalc.layers.base import RFStep

if TYPE_CHECKING:
    from convcalc.analysis import Report

AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


Exact = int | Fraction  # an int where the value is whole: int arithmetic is ~20x Fraction's


def exact(value: Exact) -> Exact:
    """The same number, as an int when it is whole (a Fraction otherwise)."""
    if type(value) is int:
        return value
    return value.numerator if value.denominator == 1 else value


@dataclass(frozen=True)
class AxisField:
    """One axis of a receptive field, in input pixels: unit u sees [-P + u*S, ... + r - 1]."""

    size: Exact = 1
    stride: Exact = 1
    padding: Exact = 0

    def then(self, step: RFStep, extent: int) -> "AxisField":
        """r' = r + (k-1)*S, S' = s*S, P' = P + p*S; a whole step is k = s = extent, p = 0."""
        if step.whole:
            kernel, stride, padding = extent, extent, 0
        else:
            kernel, stride, padding = exact(step.kernel), exact(step.stride), exact(step.padding)
        return AxisField(exact(self.size + (kernel - 1) * self.stride),
                         exact(self.stride * stride), exact(self.padding + padding * self.stride))

    def start(self, unit: int) -> Fraction:
        return -self.padding + unit * self.stride

    def end(self, unit: int) -> Fraction:
        return self.start(unit) + self.size - 1

    def centre(self, unit: int) -> Fraction:
        """c = -P + u*S + (r - 1)/2"""
        return self.start(unit) + Fraction(self.size - 1, 2)

    @property
    def offset(self) -> Fraction:
        """The centre of unit 0: paths are aligned when they share it and the stride."""
        return self.centre(0)


@dataclass(frozen=True)
class Field:
    """A tensor's receptive field: one AxisField per spatial axis of the network input.

    `collapsed`: the tensor has no spatial axes left (after flatten or global pooling); it is
    one unit, unit 0 of `axes`."""

    axes: tuple[AxisField, ...]
    collapsed: bool = False
    unknown: str | None = None  # why the field is unknown (then `axes` is empty)

    def as_dict(self) -> dict:
        """The json form: numbers per spatial axis, fractions as floats."""
        return {"size": [number(a.size) for a in self.axes],
                "stride": [number(a.stride) for a in self.axes],
                "padding": [number(a.padding) for a in self.axes]}


@dataclass(frozen=True)
class Region:
    """What one output unit sees: [start, end] per axis (may reach into the padding), its
    centre, and the pixels [first, last] of the image inside it (first > last: none)."""

    unit: tuple[int, ...]
    start: tuple[Fraction, ...]
    end: tuple[Fraction, ...]
    centre: tuple[Fraction, ...]
    first: tuple[int, ...]
    last: tuple[int, ...]

    @property
    def empty(self) -> bool:
        """True when the unit sees only padding."""
        return any(f > l for f, l in zip(self.first, self.last))

    def as_dict(self) -> dict:
        return {"unit": list(self.unit), "start": [number(v) for v in self.start],
                "end": [number(v) for v in self.end],
                "centre": [number(v) for v in self.centre],
                "clipped": None if self.empty else {"first": list(self.first),
                                                    "last": list(self.last)}}


def number(value: Fraction) -> int | float:
    """An exact Fraction as json wants it: an int when whole, else a float."""
    return int(value) if value.denominator == 1 else float(value)


def text(value: Fraction) -> str:
    return f"{float(value):g}"


# -- the pass over the graph ---------------------------------------------------------------

def annotate(report: "Report") -> None:
    """Set every layer's `receptive_field` and add the receptive-field diagnostics."""
    fields, notes = receptive_fields(report)
    for layer in report.layers:
        field = fields.get(layer.name)
        known = field is not None and field.unknown is None
        layer.receptive_field = field.as_dict() if known else None
        layer.receptive_field_unknown = field.unknown if field is not None else None
    report.diagnostics.extend(notes)


def receptive_fields(report: "Report") -> tuple[dict[str, Field], list[Diagnostic]]:
    """layer name -> Field (absent where a shape is unknown), and the diagnostics
    `misaligned-merge` and `rf-exceeds-input` (once, at the first layer that covers)."""
    graph, input_shape = report.graph, report.input_shape
    if graph is None or not input_shape or len(input_shape) < 2:
        return {}, []
    image = tuple(input_shape[1:])
    shapes = {INPUT: tuple(input_shape), **{layer.name: layer.output_shape
                                            for layer in report.layers}}
    fields: dict[str, Field] = {INPUT: Field((AxisField(),) * len(image))}
    notes: list[Diagnostic] = []
    covered = False
    for node in graph.nodes:
        field, found = node_field(node, shapes, fields, len(image))
        notes += [d.at(graph.file, node.pos.line, node.pos.column, node.name) for d in found]
        if field is None:
            continue
        fields[node.name] = field
        if field.unknown:
            continue
        unit = None if covered else covering_unit(field, shapes[node.name], image)
        if unit is not None:
            covered = True
            notes.append(_exceeds(field, unit, image)
                         .at(graph.file, node.pos.line, node.pos.column, node.name))
    del fields[INPUT]
    return fields, notes


def node_field(node: Node, shapes: dict, fields: dict, ndim: int):
    """The field of one node's output from its inputs' fields, and merge findings."""
    ins = [shapes.get(name) for name in node.inputs]
    out = shapes.get(node.name)
    paths = [fields.get(name) for name in node.inputs]
    if node.layer is None or out is None or None in ins or None in paths:
        return None, []
    lost = next((p for p in paths if p.unknown), None)
    if lost is not None:  # unknown upstream: unknown here, for the same reason
        return lost, []
    found = _linear_on_map(node, ins[0], paths[0], ndim)
    steps = None
    if not all(p.collapsed for p in paths):
        try:
            steps = node.layer.rf_steps(ins, out)
        except Exception:  # noqa: BLE001 - a rule that cannot run leaves the field unknown
            return None, []
        if steps is None:
            return Field((), unknown=f"unknown after {node.type} {node.name!r}, which moves "
                                     f"or mixes spatial axes"), []
        if len(steps) != ndim:
            return None, []
    stacked = [p if p.collapsed else
               Field(tuple(a.then(step, shape[1 + i]) for i, (a, step) in
                           enumerate(zip(p.axes, steps))))
               for p, shape in zip(paths, ins)]
    collapsed = len(out) - 1 != ndim
    if len(stacked) == 1:
        return Field(stacked[0].axes, collapsed or stacked[0].collapsed), found
    return merge(node, stacked, ins, out, collapsed)


def _linear_on_map(node: Node, shape, path: Field, ndim: int) -> list[Diagnostic]:
    """`linear` straight on a [C, H, W] map whose axes are still where the input had them acts
    on the width, as PyTorch does; almost always a missing flatten. Not after a permute (the
    field is unknown there: ConvNeXt's channels-last MLP) nor after a flatten (collapsed)."""
    if node.type != "linear" or path.collapsed or ndim < 1 or len(shape) != ndim + 1:
        return []
    out = [*shape[:-1], node.layer.out_features]
    size = "x".join(map(str, shape))
    return [diag("linear-on-map",
                 f"linear acts on the last axis ({shape[-1]} wide) of the {size} map, as PyTorch "
                 f"does: the output is {'x'.join(map(str, out))}",
                 "add a `flatten` (or a global pool) before it if this is a classifier head")]


def merge(node: Node, stacked: list[Field], ins, out, collapsed: bool):
    """Per axis: the union of the aligned paths' fields (the largest when strides differ),
    widened by broadcast paths; `misaligned-merge` when the paths disagree."""
    axes, disagreements = [], []
    for axis in range(len(stacked[0].axes)):
        units = 1 if collapsed else out[1 + axis]
        moving, fixed = [], []
        for name, field, shape in zip(node.inputs, stacked, ins):
            broadcast = field.collapsed or (not collapsed and shape[1 + axis] == 1 < units)
            (fixed if broadcast else moving).append((name, field.axes[axis]))
        if not moving:
            moving, fixed = fixed[:1], fixed[1:]
        merged = union([a for _, a in moving])
        for _, a in fixed:
            merged = widen(merged, a.start(0), a.end(0), units)
        axes.append(merged)
        if len({(a.stride, a.offset) for _, a in moving}) > 1:
            disagreements.append((axis, tuple((n, a.stride, a.offset) for n, a in moving)))
    notes = [_misaligned(node, group, len(axes)) for group in _grouped(disagreements)]
    return Field(tuple(axes), collapsed), notes


def union(paths: list[AxisField]) -> AxisField:
    """Equal strides: P = max P_i, r = max(r_i - 1 - P_i) + P + 1. Else the largest r_i."""
    if len({a.stride for a in paths}) > 1:
        return max(paths, key=lambda a: a.size)
    padding = max(a.padding for a in paths)
    reach = max(a.size - 1 - a.padding for a in paths)
    return AxisField(exact(reach + padding + 1), paths[0].stride, exact(padding))


def widen(field: AxisField, first: Fraction, last: Fraction, units: int) -> AxisField:
    """The smallest field that also holds [first, last] for every unit 0..units-1."""
    padding = max(field.padding, (units - 1) * field.stride - first)
    reach = max(field.size - 1 - field.padding, last)
    return AxisField(exact(reach + padding + 1), field.stride, exact(padding))


def covering_unit(field: Field, out, image) -> tuple[int, ...] | None:
    """A unit whose region holds the whole input on every axis: u with u*S <= P and
    u*S >= I - r + P; None when there is none."""
    unit = []
    for axis, (a, size) in enumerate(zip(field.axes, image)):
        units = 1 if field.collapsed else out[1 + axis]
        low = max(0, math.ceil(Fraction(size - a.size + a.padding) / a.stride))
        high = min(units - 1, math.floor(Fraction(a.padding) / a.stride))
        if low > high:
            return None
        unit.append(low)
    return tuple(unit)


# -- units and regions -------------------------------------------------------------------

def unit_grid(field: Field, out) -> tuple[int, ...]:
    """How many units the tensor has per input axis (1 per axis once collapsed)."""
    return (1,) * len(field.axes) if field.collapsed else tuple(out[1:])


def region(field: Field, unit: Iterable[int], image, seen: Box | None = None) -> Region:
    """The input region of one unit: unclipped (the field's), and the image pixels it sees:
    `seen` (from seen_pixels) when given, else the region clipped to the image."""
    unit = tuple(unit)
    start = tuple(a.start(u) for a, u in zip(field.axes, unit))
    end = tuple(a.end(u) for a, u in zip(field.axes, unit))
    if seen is None:
        seen = tuple((max(0, math.ceil(s)), min(size - 1, math.floor(e)))
                     for s, e, size in zip(start, end, image))
    return Region(unit, start, end, tuple(a.centre(u) for a, u in zip(field.axes, unit)),
                  tuple(f for f, _ in seen), tuple(l for _, l in seen))


def seen_pixels(report: "Report", name: str, unit: tuple[int, ...]) -> Box:
    """[first, last] per axis of the input pixels that can reach `unit` of layer `name`.

    The unit's box is walked back through the graph: each layer's step maps its units
    [a, b] to [ceil(a*s - p), floor(b*s - p + k - 1)] of its input, a whole step to the
    whole input, and every box is clipped to its tensor's extent. So rows a stride drops
    and the rounding of fractional steps are accounted for, unlike in the field's region
    clipped once at the end. A span: holes between windows inside it are not removed.
    first > last on every axis when only padding reaches the unit."""
    ndim = len(report.input_shape) - 1
    shapes = {INPUT: tuple(report.input_shape),
              **{layer.name: layer.output_shape for layer in report.layers}}
    boxes: dict[str, Box | None] = {name: tuple((u, u) for u in unit)}
    nodes = report.graph.nodes
    for node in reversed(nodes[:next(i for i, n in enumerate(nodes) if n.name == name) + 1]):
        box = boxes.pop(node.name, None)
        out = shapes[node.name]
        if box is None or out is None:
            continue
        if len(out) - 1 == ndim:
            box = tuple((max(a, 0), min(b, n - 1)) for (a, b), n in zip(box, out[1:]))
            if any(a > b for a, b in box):
                continue
        for source, box_in in zip(node.inputs, _back(node, box, shapes, ndim)):
            boxes[source] = _span(boxes.get(source), box_in)
    found = boxes.get(INPUT)
    if found is None:
        return tuple((1, 0) for _ in range(ndim))
    return tuple((max(a, 0), min(b, n - 1)) for (a, b), n in zip(found, shapes[INPUT][1:]))


Box = tuple[tuple[int, int], ...]


def _back(node: Node, box: Box, shapes: dict, ndim: int) -> list[Box]:
    """The boxes of a node's inputs that reach `box` of its output."""
    ins = [shapes[name] for name in node.inputs]
    out = shapes[node.name]
    if any(len(shape) - 1 != ndim for shape in ins):  # no spatial axes left: all of it
        return [tuple((0, n - 1) for n in shape[1:]) if len(shape) - 1 == ndim else box
                for shape in ins]
    steps = node.layer.rf_steps(ins, out)
    found = []
    for shape in ins:
        axes = []
        for (a, b), step, n, n_out in zip(box, steps, shape[1:], out[1:] if len(out) - 1 ==
                                          ndim else [1] * ndim):
            if step.whole:
                axes.append((0, n - 1))
            elif n == 1 < n_out and len(ins) > 1:  # a merge broadcasting this input
                axes.append((0, 0))
            else:
                axes.append((math.ceil(a * step.stride - step.padding),
                             math.floor(b * step.stride - step.padding + step.kernel - 1)))
        found.append(tuple(axes))
    return found


def _span(old: Box | None, new: Box) -> Box:
    if old is None:
        return new
    return tuple((min(a, c), max(b, d)) for (a, b), (c, d) in zip(old, new))


def corner_and_centre_units(grid: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The 2^n corners of the unit grid and its centre unit (n-1)//2, without repeats."""
    corners = [()]
    for n in grid:
        corners = [c + (u,) for c in corners for u in dict.fromkeys((0, n - 1))]
    centre = tuple((n - 1) // 2 for n in grid)
    return corners + ([centre] if centre not in corners else [])


# -- diagnostics ---------------------------------------------------------------------------

def _grouped(disagreements):
    """Axes that disagree alike share one finding."""
    groups: dict[tuple, list[int]] = {}
    for axis, paths in disagreements:
        groups.setdefault(paths, []).append(axis)
    return [(axes, paths) for paths, axes in groups.items()]


def _misaligned(node: Node, group, ndim: int) -> Diagnostic:
    axes, paths = group
    names = AXES.get(ndim, tuple(f"axis {a}" for a in range(ndim)))
    where = " and ".join(names[a] for a in axes)
    described = [f"{name!r} (stride {text(s)}, centre offset {text(c)})" for name, s, c in paths]
    listed = ", ".join(described[:-1]) + " and " + described[-1]
    strides = {s for _, s, _ in paths}
    if len(strides) > 1:
        effect = ("their strides differ, so the offset between paths grows with the unit "
                  "index; the largest path's field is used")
    else:
        offsets = [c for _, _, c in paths]
        effect = (f"one position mixes features whose centres are "
                  f"{text(max(offsets) - min(offsets))} input pixels apart; the union of "
                  f"the paths' fields is used")
    return diag("misaligned-merge",
                f"{node.type} of misaligned paths on {where}: {listed} (unit u is centred "
                f"at offset + u*stride in input pixels); {effect}",
                "give every path the same total stride and centred padding (odd kernels with "
                "padding (k-1)/2; an even kernel, or 'same' padding with a stride, shifts the "
                "centre by half a pixel)")


def _exceeds(field: Field, unit, image) -> Diagnostic:
    sizes = "x".join(text(a.size) for a in field.axes)
    seen = " x ".join(f"[{text(a.start(u))}, {text(a.end(u))}]"
                      for a, u in zip(field.axes, unit))
    return diag("rf-exceeds-input",
                f"the receptive field ({sizes}) first covers the whole "
                f"{'x'.join(map(str, image))} input here: unit {list(unit)} sees {seen}")
