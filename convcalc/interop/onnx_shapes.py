"""Shapes of every value of an ONNX graph at the imported input size: onnx.shape_inference,
alternated with folding the constant subgraphs of sizes (Shape -> Gather -> Div -> Concat ->
Reshape and the like) until nothing new is known. Data propagation in onnx covers some of
this arithmetic; the values folded here (onnx_fold.py) are given back to it as constants, so
that a reshape to a computed size has a known shape after it."""

from __future__ import annotations

import math

import numpy as np

from convcalc.interop import ImportFailure
from convcalc.interop.onnx_fold import fold, foldable, shape_slice

SMALL_TENSOR = 64  # constants of at most this many elements are given to shape inference
ROUNDS = 64  # inference and folding alternate at most this often (until nothing is new)


def infer_shapes(model, shape: tuple[int, ...], opset: int, source: str) -> dict:
    """Value name -> full shape (batch included) or None when it stays unknown."""
    known: dict = {}
    shapes = _infer(model, shape, source, known)
    for _ in range(ROUNDS):
        more = _folded_sizes(model.graph, shapes, opset)
        if set(more) <= set(known):
            break
        known = more
        shapes = _infer(model, shape, source, known)
    return shapes


def _folded_sizes(graph, shapes: dict, opset: int) -> dict:
    """The small constants node outputs hold once sizes are known (never weights)."""
    from convcalc.interop.onnx_lite import to_array
    consts = {t.name: None for t in graph.initializer}
    small = {t.name: to_array(t) for t in graph.initializer
             if math.prod(t.dims) <= SMALL_TENSOR}
    out = {}
    for node in graph.node:
        inputs = [i for i in node.input if i]
        try:
            if node.op_type == "Shape" and shapes.get(node.input[0]):
                values = [shape_slice(shapes[node.input[0]], node)]
            elif inputs and all(i in small for i in inputs) and foldable(node) or \
                    node.op_type == "Constant":
                values = fold(node, [small.get(i) if i else None for i in node.input], opset)
            else:
                continue
        except Exception:  # noqa: BLE001 - left for the conversion to report
            continue
        for name, value in zip(node.output, values):
            value = np.asarray(value)
            if value.size <= SMALL_TENSOR and name not in consts:
                small[name] = out[name] = value
    return out


def _infer(model, shape: tuple[int, ...], source: str, known: dict) -> dict:
    """Every value's shape (batch included) from onnx.shape_inference at batch 1."""
    from convcalc.interop.onnx_lite import infer_shapes
    try:
        inferred = infer_shapes(_without_weights(model, known), check_type=False,
                                strict_mode=False, data_prop=True)
    except Exception as err:  # noqa: BLE001 - onnx's checker errors: reported, one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImportFailure(source, f"ONNX shape inference fails at input "
                            f"{'x'.join(map(str, (1, *shape)))}: {first}",
                            "check the file with onnx.checker, or give another --input") \
            from None
    shapes: dict[str, tuple[int, ...] | None] = {}
    graph = inferred.graph
    for info in (*graph.input, *graph.value_info, *graph.output):
        dims = info.type.tensor_type.shape.dim if info.type.HasField("tensor_type") else []
        known = info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape")
        sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        shapes[info.name] = tuple(sizes) if known and None not in sizes else None
    return shapes


def _without_weights(model, known: dict):
    """The model with its large initializers as typed inputs: the same shapes for shape
    inference, without serialising the weights to it (small ones stay, for the shape
    arithmetic data propagation reads). Declared output and intermediate shapes are left
    out: they hold the file's own batch and sizes, not the ones imported at."""
    from convcalc.interop.onnx_lite import from_array, proto, value_info
    light = proto().ModelProto()
    light.ir_version, light.domain = model.ir_version, model.domain
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph, source = light.graph, model.graph
    graph.name = source.name
    graph.node.extend(n for n in source.node if not set(n.output) <= set(known))
    graph.input.extend(source.input)
    for output in source.output:  # declared at the file's batch and sizes: inferred anew
        graph.output.append(value_info(output.name, output.type.tensor_type.elem_type, None))
    graph.initializer.extend(from_array(np.asarray(v), k) for k, v in known.items())
    listed = {i.name for i in source.input}
    for tensor in source.initializer:
        if math.prod(tensor.dims) <= SMALL_TENSOR:
            graph.initializer.append(tensor)
        elif tensor.name not in listed:
            graph.input.append(value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return light


