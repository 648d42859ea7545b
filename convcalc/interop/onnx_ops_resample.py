"""The ONNX converter table, resampling part: Upsample and Resize in their modes, Pad in its
opset forms, and reductions over every spatial axis (global pools); see onnx_ops.py."""

from __future__ import annotations

import numpy as np

from convcalc.interop.onnx_ops import (
    SAME,
    NotConvertible,
    OnnxNode,
    _floats,
    _text,
    compact,
    converter,
    f32,
    without_defaults,
)

# -- resampling, padding, reductions ---------------------------------------------------------

@converter("Upsample")
def upsample(node: OnnxNode) -> dict:
    scales = node.attr("scales")
    if scales is None:
        scales = node.need_const(1, "scales")
    return _resample(node, _text(node.attr("mode"), "nearest"), "asymmetric", "integer",
                     [float(s) for s in np.asarray(scales).reshape(-1)], None)


@converter("Resize", since=10)
def resize(node: OnnxNode) -> dict:
    scales = node.const(1) if node.opset < 11 else node.const(2)
    sizes = node.const(3) if node.opset >= 11 else None
    if node.opset >= 18 and node.attr("antialias", 0):
        raise NotConvertible("antialias 1")
    if node.opset >= 18 and node.attr("axes") is not None:
        raise NotConvertible("axes")
    mode = _text(node.attr("mode"), "nearest")
    ctm = _text(node.attr("coordinate_transformation_mode"),
                "half_pixel" if node.opset >= 11 else "asymmetric")
    nearest = _text(node.attr("nearest_mode"), "round_prefer_floor" if node.opset >= 11
                    else "integer")
    scales = None if scales is None or scales.size == 0 else [float(s) for s in scales]
    sizes = None if sizes is None or sizes.size == 0 else [int(s) for s in sizes]
    return _resample(node, mode, ctm, nearest, scales, sizes)


def _resample(node: OnnxNode, mode: str, ctm: str, nearest: str, scales, sizes) -> dict:
    """ONNX's resize modes as PyTorch's interpolate: nearest is asymmetric + floor (or any
    rounding of half_pixel at integer up-scaling, which picks the same pixels); linear is
    half_pixel (align_corners false) or align_corners."""
    src = node.in_shapes[0]
    if (scales is None) == (sizes is None):
        raise NotConvertible("neither scales nor sizes is a constant")
    factors = scales or [o / i for o, i in zip(sizes, src)]
    if factors[0] != 1 or factors[1] != 1:
        raise NotConvertible(f"resizes the batch or channel axis ({factors[:2]})")
    axes = len(src) - 2
    if mode == "nearest":
        upscale = all(f >= 1 and float(f).is_integer() for f in factors[2:])
        if nearest == "integer" and not upscale:  # Upsample, Resize-10: repeats only
            raise NotConvertible(f"nearest by {factors[2:]} (repeats by whole factors are "
                                 "modelled)")
        rounds = nearest in ("round_prefer_floor", "round_prefer_ceil")
        if not ((ctm == "asymmetric" and nearest in ("floor", "integer")) or (
                upscale and ctm in ("half_pixel", "pytorch_half_pixel") and rounds)):
            raise NotConvertible(f"nearest with {ctm} and {nearest} (PyTorch's nearest is "
                                 "asymmetric + floor)")
        layer = {"type": "upsample", "mode": "nearest"}
    elif mode == "linear":
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise NotConvertible(f"linear with {ctm} (PyTorch's is half_pixel or "
                                 "align_corners)")
        if ctm == "pytorch_half_pixel" and 1 in node.out_shapes[0][2:]:
            raise NotConvertible("pytorch_half_pixel to a size of 1 (it reads pixel 0; "
                                 "PyTorch reads the centre)")
        if ctm == "align_corners" and scales is not None and any(
                not float(i * f).is_integer() for i, f in zip(src[2:], factors[2:])):
            raise NotConvertible("align_corners with scales that give fractional sizes "
                                 "(ONNX divides by the fractional size, PyTorch by the "
                                 "rounded one)")
        layer = {"type": "upsample", "mode": {1: "linear", 2: "bilinear", 3: "trilinear"}
                 .get(axes, "linear"), "align_corners": ctm == "align_corners"}
    else:
        raise NotConvertible(f"mode {mode} (upsample has nearest and linear)")
    if sizes is not None or ctm == "align_corners":
        layer["size"] = compact(node.out_shapes[0][2:])
    else:
        spatial = factors[2:]
        layer["scale_factor"] = spatial[0] if len(set(spatial)) == 1 else spatial
    return layer


@converter("Pad")
def pad_attrs(node: OnnxNode) -> dict:
    return _pad(node, node.attr("pads"), _text(node.attr("mode"), "constant"),
                f32(node.attr("value", 0.0)), None)


@converter("Pad", since=11)
def pad_inputs(node: OnnxNode) -> dict:
    value = node.const(2)
    axes = node.const(3)
    return _pad(node, node.need_const(1, "pads"), _text(node.attr("mode"), "constant"),
                0.0 if value is None or value.size == 0 else _floats(value),
                None if axes is None else [int(a) for a in axes])


def _pad(node: OnnxNode, pads, mode: str, value: float, axes) -> dict:
    rank = node.rank
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = [a % rank for a in axes] if axes is not None else list(range(rank))
    pairs = {a: [pads[i], pads[i + len(axes)]] for i, a in enumerate(axes)}
    if any(pairs.get(a, [0, 0]) != [0, 0] for a in (0, 1)):
        raise NotConvertible("pads the batch or channel axis")
    spatial = [pairs.get(a, [0, 0]) for a in range(2, rank)]
    if any(p < 0 for pair in spatial for p in pair):
        raise NotConvertible("negative pads (a crop)")
    kinds = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
             "wrap": "circular"}
    if mode not in kinds:
        raise NotConvertible(f"mode {mode}")
    padding = compact([a for a, _ in spatial]) if all(a == b for a, b in spatial) \
        else spatial
    layer = {"type": "pad", "padding": padding, "mode": kinds[mode], "value": value}
    return without_defaults(layer, mode="constant", value=0.0)


def _reduce_axes(node: OnnxNode, since_input: int) -> list[int] | None:
    if node.opset >= since_input:
        axes = node.const(1)
        if axes is None and len(node.in_shapes) > 1 and node.in_shapes[1] is not None:
            raise NotConvertible("axes computed from the input")
        axes = None if axes is None or axes.size == 0 else list(axes)
        if axes is None and node.attr("noop_with_empty_axes", 0):
            return []
    else:
        axes = node.attr("axes")
    return None if axes is None else sorted(int(a) % node.rank for a in axes)


@converter("ReduceMean", "ReduceMax")
def reduce(node: OnnxNode) -> dict | str:
    """A mean or max over all spatial axes is a global pool; other reductions have no kind
    yet."""
    axes = _reduce_axes(node, 18)
    if axes == []:
        return SAME
    if axes != list(range(2, node.rank)):
        raise NotConvertible(f"reduction over axes {axes} (only all spatial axes, a global "
                             "pool, is modelled)")
    kind = "global_avgpool" if node.op == "ReduceMean" else "global_maxpool"
    return {"type": kind, "keepdim": bool(node.attr("keepdims", 1))}
