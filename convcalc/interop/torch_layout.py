"""The PyTorch converter table, part three: slicing, splitting, layout, reductions, matmul and
arithmetic with constants -> layer kinds. Entries as in torch_functions: (Signature,
converter). Dims are PyTorch's, batch axis included; a call that touches the batch axis is
refused (a spec describes one sample).

- `x[:, a:b]` is a `slice` per sliced axis; `torch.split`/`chunk` a `split`/`chunk` layer
  whose parts later layers read as `name.k`;
- `x.view(N, ...)`/`reshape` a `reshape` to the per-sample shape (`flatten` for
  `x.view(N, -1)`), `permute`, `transpose`, `unflatten`;
- `x * 0.5`, `1 - x`, `x ** 2` the kinds with a constant `other` (`exponent` for pow);
- `x * self.gamma` with a per-channel parameter `layer_scale`, `x + self.beta` a
  `channel_bias`, named by the parameter so its state_dict key loads.
"""

from __future__ import annotations

import math
import operator
from typing import Callable

from convcalc.interop.torch_table import Call, NotConvertible, without_defaults

PARTS = "_parts"  # a converter's marker: this layer yields parts name.0, name.1, ...


def _dims(value) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


def _not_batch(call: Call, *dims: int) -> None:
    rank = len(call.in_shapes[0]) + 1
    if any(d % rank == 0 for d in dims):
        raise NotConvertible(f"dim {list(dims)} includes the batch axis")


def getitem(call: Call) -> list[dict]:
    """x[:, a:b, ..., c:d] -> one slice layer per sliced axis (the batch axis untouched)."""
    index = call.get("index")
    items = index if isinstance(index, tuple) else (index,)
    rank = len(call.in_shapes[0]) + 1
    if any(item is None or isinstance(item, (int, list)) or hasattr(item, "op")
           for item in items):
        raise NotConvertible("indexing with an integer, None, a list or a tensor (only slices)")
    if items.count(Ellipsis) > 1:
        raise NotConvertible("more than one ... in an index")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (rank - len(items) + 1) + items[at + 1:]
    if items and items[0] != slice(None):
        raise NotConvertible("slicing the batch axis")
    layers, shape = [], list(call.in_shapes[0])
    for dim, item in enumerate(items):
        if item != slice(None):
            if (item.step or 1) < 1:
                raise NotConvertible("a negative step")
            shape[dim - 1] = len(range(*item.indices(shape[dim - 1])))
            layers.append(without_defaults({"type": "slice", "dim": dim, "start": item.start,
                                            "end": item.stop, "step": item.step or 1,
                                            "_shape": tuple(shape)},
                                           start=None, end=None, step=1))
    return layers or [{"type": "identity"}]


def _split(call: Call) -> dict:
    dim = call.get("dim")
    _not_batch(call, dim)
    sizes = call.get("split_size_or_sections")
    return {"type": "split", "split_size_or_sections": list(sizes) if isinstance(
        sizes, (list, tuple)) else sizes, "dim": dim, PARTS: True}


def _chunk(call: Call) -> dict:
    dim = call.get("dim")
    _not_batch(call, dim)
    return {"type": "chunk", "chunks": call.get("chunks"), "dim": dim, PARTS: True}


def _reshape(call: Call) -> dict:
    """The target shape with its batch entry dropped; (N, -1) reads as flatten."""
    target = call.get("shape")
    if len(target) == 1 and isinstance(target[0], (tuple, list)):
        target = tuple(target[0])
    out = call.out_shape
    if not target or target[0] not in (-1, 1) or out is None:
        raise NotConvertible("a reshape that does not keep the batch axis first")
    if target[0] == -1 and (-1 in target[1:] or math.prod(target[1:]) != math.prod(
            call.in_shapes[0])):
        raise NotConvertible("a reshape that merges the batch axis with others")
    if len(target) == 2 and target[1] == -1:
        return {"type": "flatten"}
    shape = [-1 if t == -1 else o for t, o in zip(target[1:], out)]
    return {"type": "reshape", "shape": shape}


def _permute(call: Call) -> dict:
    dims = call.get("dims")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    rank = len(dims)
    dims = [d % rank for d in dims]
    if dims[0] != 0:
        raise NotConvertible("a permutation that moves the batch axis")
    return {"type": "permute", "dims": dims}


def _transpose(call: Call) -> dict:
    _not_batch(call, call.get("dim0"), call.get("dim1"))
    return {"type": "transpose", "dim0": call.get("dim0"), "dim1": call.get("dim1")}


def _unflatten(call: Call) -> dict:
    _not_batch(call, call.get("dim"))
    return {"type": "unflatten", "dim": call.get("dim"), "sizes": list(call.get("sizes"))}


def reduction(kind: str, global_kind: str | None = None) -> Callable:
    """x.mean((2, 3)) is global_avgpool (so is amax a global max pool); other dims `mean`."""
    def convert(call: Call) -> dict:
        dims = call.get("dim")
        if dims is None:
            raise NotConvertible("a reduction over every axis, the batch's too")
        dims = _dims(dims)
        _not_batch(call, *dims)
        rank = len(call.in_shapes[0]) + 1
        keepdim = bool(call.get("keepdim"))
        if global_kind and rank > 2 and {d % rank for d in dims} == set(range(2, rank)):
            return without_defaults({"type": global_kind, "keepdim": keepdim}, keepdim=False)
        return without_defaults({"type": kind, "dim": dims[0] if len(dims) == 1 else list(dims),
                                 "keepdim": keepdim}, keepdim=False)
    return convert


def _stack(call: Call) -> dict:
    if call.get("dim") % (len(call.in_shapes[0]) + 2) == 0:
        raise NotConvertible("stacking along the batch axis")
    return without_defaults({"type": "stack", "dim": call.get("dim")}, dim=1)


def _matmul(call: Call) -> dict:
    if len(call.in_shapes) != 2 or any(len(s) < 2 for s in call.in_shapes):
        raise NotConvertible("matmul needs two tensors of at least two axes per sample")
    return {"type": "matmul"}


def _is_node(value) -> bool:
    return hasattr(value, "op") and hasattr(value, "users")


def arithmetic(kind: str, reverse: str | None = None) -> Callable:
    """x op y of two tensors; x op c and c op x with a number c; x * per-channel parameter."""
    def convert(call: Call) -> dict:
        first, second = call.get("input"), call.get("other")
        if call.get("alpha", 1) != 1:
            raise NotConvertible(f"{kind} with alpha != 1")
        if _is_node(first) and _is_node(second):
            return {"type": kind}
        constant = second if _is_node(first) else first
        if hasattr(constant, "shape") and hasattr(constant, "dim"):  # a constant tensor
            if kind in ("mul", "add") and constant.dim() != 0:
                return _layer_scale(call, "other" if _is_node(first) else "input", constant,
                                    "layer_scale" if kind == "mul" else "channel_bias")
            if constant.dim() != 0:
                raise NotConvertible(f"{kind} with a constant tensor")
            constant = constant.item()
        if not isinstance(constant, (int, float)) or isinstance(constant, bool):
            raise NotConvertible(f"{kind} with {type(constant).__name__}")
        name = "exponent" if kind == "pow" and _is_node(first) else "other"
        if _is_node(first) or kind in ("add", "mul"):
            return {"type": kind, name: float(constant)}
        if reverse is None:
            raise NotConvertible(f"{kind} with the constant first")
        return {"type": reverse, "other": float(constant)}
    return convert


def _layer_scale(call: Call, which: str, gamma, kind: str = "layer_scale") -> dict:
    """x * gamma (layer_scale) or x + beta (channel_bias), the constant a module's parameter
    of (C,) broadcast as (C, 1, ...) per channel."""
    attr = call.attrs.get(which)
    shape = call.in_shapes[0]
    per_channel = (shape[0],) + (1,) * (len(shape) - 1)
    broadcast = tuple(gamma.shape)
    while broadcast and broadcast[0] == 1 and len(broadcast) > len(shape):
        broadcast = broadcast[1:]
    if attr is None or broadcast != per_channel or len(shape) < 2:
        raise NotConvertible(f"{'mul' if kind == 'layer_scale' else 'add'} by a constant tensor "
                             "that is not a per-channel parameter")
    keepdim = call.attr_values[which].dim() > 1  # torchvision's (C, 1, 1), timm's (C,)
    return {"type": kind, "param": "", "keepdim": keepdim, "_attr": attr}


def functions(torch, F) -> dict:
    """Callable -> (signature, converter) for the table (Signature given by the caller)."""
    from convcalc.interop.torch_functions import Signature
    split = Signature(("input", "split_size_or_sections", "dim"), {"dim": 0})
    two = Signature(("input", "other"), {"alpha": 1})
    reduce = Signature(("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
    table = {
        operator.getitem: (Signature(("input", "index")), getitem),
        torch.split: (split, _split),
        torch.chunk: (Signature(("input", "chunks", "dim"), {"dim": 0}), _chunk),
        torch.reshape: (Signature(("input", "shape")), _reshape),
        torch.permute: (Signature(("input", "dims")), _permute),
        torch.transpose: (Signature(("input", "dim0", "dim1")), _transpose),
        torch.unflatten: (Signature(("input", "dim", "sizes")), _unflatten),
        torch.stack: (Signature(("tensors", "dim"), {"dim": 0}), _stack),
        torch.matmul: (Signature(("input", "other")), _matmul),
        torch.bmm: (Signature(("input", "other")), _matmul),
        operator.matmul: (Signature(("input", "other")), _matmul),
        torch.sum: (reduce, reduction("sum")),
        torch.mean: (reduce, reduction("mean", "global_avgpool")),
        torch.amax: (reduce, reduction("amax", "global_maxpool")),
        torch.amin: (reduce, reduction("amin")),
        F.pixel_shuffle: (Signature(("input", "upscale_factor")),
                          lambda call: {"type": "pixel_shuffle",
                                        "upscale_factor": call.get("upscale_factor")}),
        F.pixel_unshuffle: (Signature(("input", "downscale_factor")),
                            lambda call: {"type": "pixel_unshuffle",
                                          "downscale_factor": call.get("downscale_factor")}),
    }
    for fns, kind, reverse in (((operator.add, operator.iadd, torch.add), "add", None),
                               ((operator.mul, operator.imul, torch.mul), "mul", None),
                               ((operator.sub, operator.isub, torch.sub), "sub", "rsub"),
                               ((operator.truediv, operator.itruediv, torch.div), "div", "rdiv"),
                               ((operator.pow, torch.pow), "pow", "rpow")):
        for fn in fns:
            table[fn] = (two, arithmetic(kind, reverse))
    table[torch.rsub] = (two, lambda call: arithmetic("sub", "rsub")(
        Call(call.node, {"input": call.get("other"), "other": call.get("input")},
             call.in_shapes, call.out_shape)))
    return table


def methods() -> dict:
    from convcalc.interop.torch_functions import Signature
    reduce = Signature(("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
    two = Signature(("input", "other"), {"alpha": 1})
    table = {
        "split": (Signature(("input", "split_size_or_sections", "dim"), {"dim": 0}), _split),
        "chunk": (Signature(("input", "chunks", "dim"), {"dim": 0}), _chunk),
        "view": (Signature(("input", "*shape")), _reshape),
        "reshape": (Signature(("input", "*shape")), _reshape),
        "permute": (Signature(("input", "*dims")), _permute),
        "transpose": (Signature(("input", "dim0", "dim1")), _transpose),
        "unflatten": (Signature(("input", "dim", "sizes")), _unflatten),
        "sum": (reduce, reduction("sum")),
        "mean": (reduce, reduction("mean", "global_avgpool")),
        "amax": (reduce, reduction("amax", "global_maxpool")),
        "amin": (reduce, reduction("amin")),
        "matmul": (Signature(("input", "other")), _matmul),
    }
    for names, kind, reverse in ((("add", "add_"), "add", None), (("mul", "mul_"), "mul", None),
                                 (("sub", "sub_"), "sub", "rsub"), (("div", "div_"), "div", "rdiv"),
                                 (("pow", "pow_"), "pow", "rpow")):
        for name in names:
            table[name] = (two, arithmetic(kind, reverse))
    return table
