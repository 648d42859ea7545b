"""Layout kinds that move elements without computing: reshape (view), unflatten, permute,
transpose, pixel_shuffle and pixel_unshuffle. No MACs, no FLOPs.

They act on PyTorch's order, (N, C, *spatial) (the executor converts from its channels-last
arrays and back), so a spec reads as the PyTorch code it describes. Dims count the batch
axis (1 = channels); the batch axis cannot move. Receptive field: unknown after a kind that
moves or mixes spatial axes (a reshape that changes the shape, a permutation of spatial
axes), unless the input is a single unit (every spatial size 1, after global pooling);
pixel_shuffle and pixel_unshuffle keep exact fields.
"""

from __future__ import annotations

import math

from convcalc import arithmetic as ar

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


def moved_rf(shapes, out) -> list[RFStep] | None:
    """Unknown (None) after spatial axes move, unless the input is one unit (all spatial
    sizes 1): then every element still sees that unit's region. A reshape to a vector [F]
    is flatten: the whole input, one unit, as flatten's field."""
    (shape,) = shapes
    if out is not None and tuple(shape) == tuple(out):  # a reshape to the same shape
        return [RFStep() for _ in shape[1:]]
    if all(n == 1 for n in shape[1:]) or (out is not None and len(out) == 1):
        return [RFStep(whole=True) for _ in shape[1:]]
    return None


def in_torch_order(x, fn):
    """fn applied to the channels-first (PyTorch) view of a channels-last array; the result
    back in channels-last. Views where NumPy can; reshape copies when it must."""
    from convcalc.executor.layout import to_channels_first, to_channels_last
    return to_channels_last(fn(to_channels_first(x)))


def resolved_shape(sizes, total: int, what: str) -> tuple[int, ...]:
    """A shape with at most one -1, which takes what the others leave of `total`."""
    if not isinstance(sizes, list) or not sizes or not all(
            isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1) for v in sizes):
        raise LayerError("invalid-value", f"{what} must be a list of positive sizes with at "
                         f"most one -1; got {sizes!r}", "e.g. [4, -1, 7]")
    if sizes.count(-1) > 1:
        raise LayerError("invalid-value", f"{what} {sizes} has more than one -1",
                         "only one size can be inferred")
    known = math.prod(v for v in sizes if v != -1)
    if (-1 in sizes and total % known) or (-1 not in sizes and known != total):
        raise LayerError("shape-mismatch", f"{what} {sizes} does not hold the input's {total} "
                         f"elements", "the sizes must multiply to the input's size")
    return tuple(total // known if v == -1 else v for v in sizes)


@register("reshape", "view")
class Reshape(Layer):
    """x.reshape(N, *shape): `shape` is the per-sample shape (no batch axis), one -1 allowed."""
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only


    summary = "x.reshape(N, *shape) / x.view: shape per sample (no batch axis), one -1"
    params = {"shape": P("any", doc="the per-sample shape, without the batch axis: [4, -1]")}

    def infer(self, shapes, refs) -> Inference:
        return Inference(resolved_shape(self.shape, math.prod(shapes[0]), "shape"), 0, 0)

    def rf_steps(self, shapes, out):
        return moved_rf(shapes, out)

    def forward(self, inputs, params, refs):
        x = inputs[0]
        out = resolved_shape(self.shape, math.prod(x.shape[1:]), "shape")
        return in_torch_order(x, lambda a: a.reshape((a.shape[0], *out)))


@register("unflatten")
class Unflatten(Layer):
    """x.unflatten(dim, sizes): axis `dim` becomes `sizes` (one -1 allowed)."""
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only


    summary = "x.unflatten(dim, sizes), PyTorch nn.Unflatten"
    params = {"dim": P("int", doc="PyTorch dim, batch axis included: 1 = channels"),
              "sizes": P("any", doc="the sizes the axis becomes, one -1 allowed")}

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        axis = sample_axis(self.dim, shape)
        sizes = resolved_shape(self.sizes, shape[axis], "sizes")
        return Inference((*shape[:axis], *sizes, *shape[axis + 1:]), 0, 0)

    def rf_steps(self, shapes, out):
        return moved_rf(shapes, out)

    def forward(self, inputs, params, refs):
        from convcalc.executor.layout import sample_shape
        out = self.infer([sample_shape(inputs[0])], {}).shape
        return in_torch_order(inputs[0], lambda a: a.reshape((a.shape[0], *out)))


@register("permute")
class Permute(Layer):
    """x.permute(*dims): `dims` lists every axis, the batch axis first (it stays at 0)."""

    summary = "x.permute(dims): dims with the batch axis, which stays first: [0, 1, 3, 2]"
    view_of_input = True

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {"dims": P("any", doc="a permutation of 0 .. rank-1 (batch axis included) "
                                   "starting with 0")}

    def order(self, shape) -> tuple[int, ...]:
        """The per-sample axes in output order."""
        rank = len(shape) + 1
        dims = self.dims
        if (not isinstance(dims, list) or len(dims) != rank or not all(
                isinstance(d, int) and not isinstance(d, bool) and -rank <= d < rank
                for d in dims) or sorted(d % rank for d in dims) != list(range(rank))):
            raise LayerError("invalid-value", f"dims {dims!r} is not a permutation of the "
                             f"{rank} axes of [N, {', '.join(map(str, shape))}] (the batch "
                             f"axis included)", f"e.g. dims: {[0, *range(1, rank)]}")
        if dims[0] % rank != 0:
            raise LayerError("invalid-value", f"dims {dims} moves the batch axis; convcalc "
                             f"shapes are per sample", "keep 0 first")
        return tuple(d % rank - 1 for d in dims[1:])

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        return Inference(tuple(shape[a] for a in self.order(shape)), 0, 0)

    def rf_steps(self, shapes, out):
        if self.order(shapes[0]) == tuple(range(len(shapes[0]))):
            return [RFStep() for _ in shapes[0][1:]]
        return moved_rf(shapes, None)

    def forward(self, inputs, params, refs):
        from convcalc.executor.layout import sample_shape
        order = self.order(sample_shape(inputs[0]))
        return in_torch_order(inputs[0], lambda a: a.transpose((0, *(o + 1 for o in order))))


@register("transpose")
class Transpose(Permute):
    """x.transpose(dim0, dim1): swap two axes (neither the batch axis)."""

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only


    summary = "x.transpose(dim0, dim1): swap two axes (PyTorch dims, 1 = channels)"
    params = {"dim0": P("int", doc="PyTorch dim, batch axis included"),
              "dim1": P("int", doc="PyTorch dim, batch axis included")}

    def order(self, shape) -> tuple[int, ...]:
        a, b = sample_axis(self.dim0, shape, "dim0"), sample_axis(self.dim1, shape, "dim1")
        order = list(range(len(shape)))
        order[a], order[b] = order[b], order[a]
        return tuple(order)


class _PixelShuffle(Layer):
    """[C, H, W] <-> [C / r^2, H*r, W*r]; channel c*r^2 + i*r + j <-> (c, h*r + i, w*r + j)."""

    factor_name = ""

    @property
    def factor(self) -> int:
        return getattr(self, self.factor_name)

    def check(self, shape) -> None:
        if len(shape) != 3:
            raise LayerError("rank-mismatch", f"{self.type} expects [C, H, W]; got "
                             f"{list(shape)}", "it rearranges the two spatial axes of a 2-D map")


@register("pixel_shuffle", "depth_to_space")
class PixelShuffle(_PixelShuffle):
    """out[c, h*r + i, w*r + j] = x[c*r^2 + i*r + j, h, w] (ONNX DepthToSpace mode CRD)."""

    summary = "[C*r^2, H, W] -> [C, H*r, W*r], PyTorch nn.PixelShuffle (ONNX DepthToSpace CRD)"

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {"upscale_factor": P("int", minimum=1)}
    factor_name = "upscale_factor"

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.check(shape)
        r = self.factor
        if shape[0] % (r * r):
            raise LayerError("channel-mismatch", f"{shape[0]} channels are not divisible by "
                             f"upscale_factor^2 = {r * r}", f"use a multiple of {r * r} channels")
        return Inference((shape[0] // (r * r), shape[1] * r, shape[2] * r), 0, 0)

    def rf_steps(self, shapes, out):
        """Output row y reads input row floor(y / r): stride 1/r, the enclosing step."""
        r = self.factor
        return [RFStep(*ar.sampled_rf(Fraction(1, r), Fraction(0), n, nearest=True))
                for n in out[1:]]

    def forward(self, inputs, params, refs):
        x = inputs[0]  # (N, H, W, C*r*r) -> (N, H, W, C, r, r) -> (N, H, r, W, r, C)
        n, h, w, c = x.shape
        r = self.factor
        split = x.reshape(n, h, w, c // (r * r), r, r)
        return split.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, c // (r * r))


@register("pixel_unshuffle", "space_to_depth")
class PixelUnshuffle(_PixelShuffle):
    """out[c*r^2 + i*r + j, h, w] = x[c, h*r + i, w*r + j] (ONNX SpaceToDepth's order is
    (i, j, c), which differs: see docs/spec.md)."""

    summary = "[C, H*r, W*r] -> [C*r^2, H, W], PyTorch nn.PixelUnshuffle"

    def saved_for_backward(self, shapes, out):
        return ()  # the gradient needs sizes only

    params = {"downscale_factor": P("int", minimum=1)}
    factor_name = "downscale_factor"

    def infer(self, shapes, refs) -> Inference:
        (shape,) = shapes
        self.check(shape)
        r = self.factor
        if shape[1] % r or shape[2] % r:
            raise LayerError("shape-mismatch", f"height and width {shape[1]}x{shape[2]} are not "
                             f"divisible by downscale_factor {r}", "crop or pad the input")
        return Inference((shape[0] * r * r, shape[1] // r, shape[2] // r), 0, 0)

    def rf_steps(self, shapes, out):
        r = Fraction(self.factor)
        return [RFStep(r, r, Fraction(0)) for _ in out[1:]]

    def forward(self, inputs, params, refs):
        x = inputs[0]  # (N, H*r, W*r, C) -> (N, H, r, W, r, C) -> (N, H, W, C, r, r)
        n, hr, wr, c = x.shape
        r = self.factor
        split = x.reshape(n, hr // r, r, wr // r, r, c)
        return split.transpose(0, 1, 3, 5, 2, 4).reshape(n, hr // r, wr // r, c * r * r)
