"""Slicing along one axis: slice (x[..., start:end:step] along dim), and split / chunk,
which yield parts that other layers name `<split>.0`, `<split>.1`, ... in `inputs:`.

Dims are PyTorch's, the batch axis included (1 = channels, 2 = the first spatial axis,
negatives count from the end; dim 0 is refused). No MACs, no FLOPs: a slice is a view.
Receptive field: a slice along a spatial axis with start s and step t is the step
(k = 1, stride t, padding -s): output unit j reads input unit s + j*t.
"""

from __future__ import annotations

from dataclasses import dataclass

from convcalc.layers.base import (
    Fraction,
    Inference,
    Layer,
    LayerError,
    P,
    RFStep,
    register,
    sample_axis,
)

MAX_INDEX = 2**63 - 1  # ONNX and exporters write "to the end" as INT64_MAX


def slice_bounds(start: int | None, end: int | None, step: int, size: int) -> tuple[int, int]:
    """PyTorch's x[start:end:step] on an axis of `size`: negatives count from the end, then
    both are clamped to [0, size] -> (start, length), length = max(0, ceil((end - start)/step))."""
    first = 0 if start is None else (start + size if start < 0 else start)
    last = size if end is None else (end + size if end < 0 else end)
    first, last = min(max(first, 0), size), min(max(last, 0), size)
    return first, max(0, -(-(last - first) // step))


def along(shape, axis: int, size: int) -> tuple[int, ...]:
    out = list(shape)
    out[axis] = size
    return tuple(out)


def slice_rf(shape, axis: int, start: int, step: int) -> list[RFStep]:
    """k = 1, stride `step`, padding -start on the sliced spatial axis; identity elsewhere."""
    return [RFStep(Fraction(1), Fraction(step), Fraction(-start)) if a + 1 == axis
            else RFStep() for a in range(len(shape) - 1)]


def slice_array(x, dim: int, start: int, length: int, step: int):
    """x[..., start:start + length*step:step] along PyTorch dim `dim` of a channels-last array."""
    from convcalc.executor.layout import channels_last_axis
    axis = channels_last_axis(dim, x.ndim)
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, start + (length - 1) * step + 1, step)
    return x[tuple(index)]


@register("slice")
class Slice(Layer):
    """x[..., start:end:step] along `dim` (PyTorch: negatives from the end, bounds clamped)."""

    summary = "x[start : end : step] along dim (PyTorch slicing; torch.narrow, ONNX Slice)"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {
        "dim": P("int", 1, doc="PyTorch dim, batch axis included: 1 = channels"),
        "start": P("int", None, doc="first index; negative counts from the end; - = 0"),
        "end": P("int", None, doc="one past the last index, clamped; - = to the end"),
        "step": P("int", 1, minimum=1),
    }

    def bounds(self, shape) -> tuple[int, int, int]:
        """(axis, start, length) on the per-sample shape; an empty slice is an error."""
        axis = sample_axis(self.dim, shape)
        start, length = slice_bounds(self.start, self.end, self.step, shape[axis])
        if length == 0:
            raise LayerError("non-positive-output", f"slice {self.start}:{self.end}:{self.step}"
                             f" of an axis of {shape[axis]} is empty", "check start and end")
        return axis, start, length

    def infer(self, shapes, refs) -> Inference:
        axis, _, length = self.bounds(shapes[0])
        return Inference(along(shapes[0], axis, length), 0, 0)

    def rf_steps(self, shapes, out):
        axis, start, _ = self.bounds(shapes[0])
        return slice_rf(shapes[0], axis, start, self.step)

    def forward(self, inputs, params, refs):
        axis, start, length = self.bounds(_sample_shape(inputs[0]))
        return slice_array(inputs[0], axis + 1, start, length, self.step)


def _sample_shape(x) -> tuple[int, ...]:
    from convcalc.executor.layout import sample_shape
    return sample_shape(x)


@dataclass(frozen=True)
class Parts:
    """The parts of an axis of `total` positions: equal parts of `each` (the last smaller:
    ceil(total / each) of them, computed, never listed), or the `listed` sizes."""

    total: int
    each: int = 0
    listed: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.listed) if self.listed else -(-self.total // self.each)

    def offset(self, index: int) -> int:
        return sum(self.listed[:index]) if self.listed else index * self.each

    def size(self, index: int) -> int:
        return self.listed[index] if self.listed else min(self.each, self.total - index * self.each)


class _Parts(Layer):
    """A layer that yields parts: its own output is its input unchanged (nothing is copied),
    and `<name>.<k>` names part k, a slice [offset_k, offset_k + size_k) along `dim`."""

    yields_parts = True

    def sizes(self, n: int) -> Parts:
        raise NotImplementedError

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        axis = sample_axis(self.dim, shape)
        sizes = self.sizes(shape[axis])
        if sizes.total != shape[axis]:
            raise LayerError("shape-mismatch", f"split sizes {list(sizes.listed)} add up to {sizes.total}, "
                             f"but the axis has {shape[axis]}",
                             f"give sizes that add up to {shape[axis]}")
        return Inference(tuple(shape), 0, 0)

    def forward(self, inputs, params, refs):
        return inputs[0]

    def part(self, index: int) -> SplitPart:
        return SplitPart(self.type, None, {"source": self, "index": index})


@register("split")
class Split(_Parts):
    """torch.split(x, split_size_or_sections, dim): parts of split_size (the last smaller),
    or one part per listed size."""

    summary = "torch.split: parts name.0, name.1, ... of a size, or of listed sizes"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {
        "split_size_or_sections": P("any", doc="an int (the size of every part, the last one "
                                               "smaller) or a list of sizes"),
        "dim": P("int", 1, doc="PyTorch dim, batch axis included: 1 = channels"),
    }

    def sizes(self, n: int) -> list[int]:
        value = self.split_size_or_sections
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return Parts(n, value)
        if isinstance(value, list) and value and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            return Parts(sum(value), listed=tuple(value))
        raise LayerError("invalid-value", f"split_size_or_sections must be a positive integer "
                         f"or a list of them; got {value!r}", "e.g. 32, or [16, 16, 32]")


@register("chunk")
class Chunk(_Parts):
    """torch.chunk(x, chunks, dim): parts of ceil(n / chunks); fewer than `chunks` parts when
    that size divides n sooner (torch.chunk's rule)."""

    summary = "torch.chunk: parts name.0, name.1, ... of ceil(n / chunks)"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {"chunks": P("int", minimum=1),
              "dim": P("int", 1, doc="PyTorch dim, batch axis included: 1 = channels")}

    def sizes(self, n: int) -> Parts:
        return Parts(n, -(-n // self.chunks))


class SplitPart(Layer):
    """Part `index` of a split or chunk: a slice of its input (not written in specs: made by
    the graph when `<split>.<index>` is named)."""

    summary = "one part of a split or chunk"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only


    def geometry(self, shape) -> tuple[int, int, int]:
        """(axis, offset, size) of this part on the per-sample shape."""
        source = self.source
        axis = sample_axis(source.dim, shape)
        sizes = source.sizes(shape[axis])
        if self.index >= len(sizes):
            raise LayerError("unknown-reference", f"this {source.type} yields {len(sizes)} "
                             f"parts (.0 to .{len(sizes) - 1}); there is no part {self.index}",
                             "name an existing part")
        return axis, sizes.offset(self.index), sizes.size(self.index)

    def infer(self, shapes, refs) -> Inference:
        axis, _, size = self.geometry(shapes[0])
        return Inference(along(shapes[0], axis, size), 0, 0)

    def rf_steps(self, shapes, out):
        axis, offset, _ = self.geometry(shapes[0])
        return slice_rf(shapes[0], axis, offset, 1)

    def forward(self, inputs, params, refs):
        axis, offset, size = self.geometry(_sample_shape(inputs[0]))
        return slice_array(inputs[0], axis + 1, offset, size, 1)


def part_count(layer: Layer, shape) -> int:
    """How many parts a split or chunk yields on `shape`."""
    return len(layer.sizes(shape[sample_axis(layer.dim, shape)]))


__all__ = ["Chunk", "Slice", "Split", "SplitPart", "part_count", "slice_bounds"]
