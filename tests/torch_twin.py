"""A PyTorch twin of an analysed convcalc spec, for the training oracles: one torch module or
function per layer, in the graph's order, written with torch.nn as a person would write the
network (nn.Conv2d, nn.BatchNorm2d, nn.ReLU(inplace=...), F.max_pool2d, torch.cat, slicing).

It covers the kinds of the shipped specs; `twin()` raises NotImplementedError for others.
Everything the oracles measure (FLOPs of backward, saved tensors, .grad, optimizer state) is
PyTorch's own; convcalc only supplies the architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convcalc.graph import INPUT


def _pads(pairs):
    """((before, after), ...) per spatial axis -> symmetric padding, or None."""
    if all(b == a for b, a in pairs):
        return tuple(b for b, _ in pairs)
    return None


class Twin(nn.Module):
    def __init__(self, report):
        super().__init__()
        self.report = report
        self.graph = report.graph
        self.mods = nn.ModuleDict()
        self.calls = {}
        shapes = {INPUT: report.input_shape, **{x.name: x.output_shape for x in report.layers}}
        for node in self.graph.nodes:
            ins = [shapes[n] for n in node.inputs]
            self.calls[node.name] = self._build(node, ins, shapes[node.name])
        for layer in report.layers:  # the spec's `frozen:`
            if layer.params and not layer.trainable_params:
                key = _key(layer.name)
                if key in self.mods:
                    self.mods[key].requires_grad_(False)

    def _module(self, node, module):
        self.mods[_key(node.name)] = module
        return lambda xs, refs: module(xs[0])

    def _build(self, node, ins, out):
        layer, kind = node.layer, node.type
        values = layer.values
        if kind in ("conv2d", "conv1d", "conv3d"):
            pads, _ = layer.geometry(ins[0][1:])
            sym = _pads(pads)
            conv = nn.Conv2d if kind == "conv2d" else nn.Conv1d if kind == "conv1d" else nn.Conv3d
            mod = conv(ins[0][0], layer.out_channels, layer.kernel_size, layer.stride,
                       sym if sym is not None else 0, layer.dilation, layer.groups, layer.bias)
            self.mods[_key(node.name)] = mod
            if sym is not None:
                return lambda xs, refs: mod(xs[0])
            flat = [p for pair in reversed(pads) for p in pair]
            return lambda xs, refs: mod(F.pad(xs[0], flat))
        if kind == "conv_transpose2d":
            pads = layer.padding
            return self._module(node, nn.ConvTranspose2d(
                ins[0][0], layer.out_channels, layer.kernel_size, layer.stride,
                tuple(b for b, _ in pads), layer.output_padding, layer.groups, layer.bias,
                layer.dilation))
        if kind in ("batchnorm2d", "batchnorm1d"):
            bn = nn.BatchNorm2d if kind == "batchnorm2d" else nn.BatchNorm1d
            return self._module(node, bn(ins[0][0], layer.eps, layer.momentum, layer.affine,
                                         layer.track_running_stats))
        if kind == "linear":
            return self._module(node, nn.Linear(ins[0][-1], layer.out_features, layer.bias))
        inplace = bool(values.get("inplace", False))
        simple = {
            "relu": lambda: nn.ReLU(inplace), "relu6": lambda: nn.ReLU6(inplace),
            "leaky_relu": lambda: nn.LeakyReLU(layer.negative_slope, inplace),
            "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "dropout": lambda: nn.Dropout(layer.p),
            "identity": nn.Identity, "mish": lambda: nn.Mish(inplace),
            "silu": lambda: nn.SiLU(inplace), "gelu": nn.GELU,
            "local_response_norm": lambda: nn.LocalResponseNorm(layer.size, layer.alpha,
                                                                layer.beta, layer.k),
        }
        if kind in simple:
            return self._module(node, simple[kind]())
        if kind == "maxpool2d":
            stride, pads, dilation = layer.geometry(ins[0][1:])
            if _pads(pads) is not None:
                return lambda xs, refs: F.max_pool2d(xs[0], layer.kernel_size, stride,
                                                     _pads(pads), dilation, layer.ceil_mode)
            flat = [p for pair in reversed(pads) for p in pair]  # Darknet's pad after
            return lambda xs, refs: F.max_pool2d(F.pad(xs[0], flat, value=float("-inf")),
                                                 layer.kernel_size, stride, 0, dilation,
                                                 layer.ceil_mode)
        if kind == "avgpool2d":
            stride, pads, _ = layer.geometry(ins[0][1:])
            return lambda xs, refs: F.avg_pool2d(xs[0], layer.kernel_size, stride, _pads(pads),
                                                 layer.ceil_mode, layer.count_include_pad)
        if kind == "adaptive_avgpool2d":
            return self._module(node, nn.AdaptiveAvgPool2d(out[1:]))
        if kind == "global_avgpool":
            dims = tuple(range(2, len(ins[0]) + 1))
            return lambda xs, refs: xs[0].mean(dims, keepdim=layer.keepdim)
        if kind == "flatten":
            return self._module(node, nn.Flatten(layer.start_dim, layer.end_dim))
        if kind == "add":
            return lambda xs, refs: _fold(torch.add, xs, values.get("other"))
        if kind == "mul":
            return lambda xs, refs: _fold(torch.mul, xs, values.get("other"))
        if kind == "concat":
            return lambda xs, refs: torch.cat(xs, layer.dim)
        if kind == "crop":
            def crop(xs, refs):
                x = xs[0]
                target = refs["to"].shape[2:] if layer.to else layer.per_axis("size", x.dim() - 2)
                index = [slice(None), slice(None)] + [
                    slice((i - o) // 2, (i - o) // 2 + o) for i, o in zip(x.shape[2:], target)]
                return x[tuple(index)]
            return crop
        if kind == "upsample":
            size = tuple(out[1:])
            return lambda xs, refs: F.interpolate(xs[0], size=size, mode=layer.mode,
                                                  align_corners=layer.align_corners)
        if type(layer).__name__ == "SplitPart":
            axis, offset, size = layer.geometry(ins[0])
            return lambda xs, refs: xs[0].narrow(axis + 1, offset, size)
        if kind in ("split", "chunk"):
            return lambda xs, refs: xs[0]
        raise NotImplementedError(f"no torch twin for {kind}")

    def forward(self, x):
        values = {INPUT: x}
        for node in self.graph.nodes:
            refs = {param: values[name] for param, name in node.refs.items()}
            values[node.name] = self.calls[node.name]([values[n] for n in node.inputs], refs)
        read = {name for node in self.graph.nodes for name in [*node.inputs, *node.refs.values()]}
        sinks = [n.name for n in self.graph.nodes if n.name not in read]  # YOLO's two heads
        return tuple(values[name] for name in sinks)


def _fold(op, xs, other):
    out = xs[0] if other is None else op(xs[0], other)
    for x in xs[1:]:
        out = op(out, x)
    return out


def _key(name: str) -> str:
    return name.replace(".", "__")


def twin(report) -> Twin:
    torch.manual_seed(0)
    return Twin(report)


# -- the oracles ------------------------------------------------------------------------------

def corrected_conv_backward():
    """torch.utils.flop_counter's convolution_backward formula, with the weight gradient of a
    grouped convolution counted per group (torch 2.14 counts it as if groups were 1)."""
    from torch.utils.flop_counter import conv_flop_count, get_shape

    def t(shape):
        return [shape[1], shape[0], *shape[2:]]

    def formula(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                output_padding, groups, output_mask, out_shape=None, **kwargs):
        count = 0
        if output_mask[0]:  # as torch 2.14
            count += conv_flop_count(grad_out_shape, w_shape, get_shape(out_shape[0]),
                                     not transposed)
        if output_mask[1]:  # torch 2.14's count, then divided by the groups
            grad_weight = t(get_shape(out_shape[1]))
            if transposed:
                whole = conv_flop_count(t(grad_out_shape), t(x_shape), grad_weight, False)
            else:
                whole = conv_flop_count(t(x_shape), t(grad_out_shape), grad_weight, False)
            count += whole // groups
        return count
    return formula


def measure(model: nn.Module, input_shape, batch: int, optimizer: str = "adam") -> dict:
    """One train-mode step: backward MACs (FlopCounterMode / 2 with the grouped-conv fix),
    bytes saved for backward (each storage once, parameters and buffers excluded), gradient
    bytes and optimizer-state bytes after the step."""
    from torch.utils.flop_counter import FlopCounterMode
    model.train()
    torch.manual_seed(1)
    x = torch.randn(batch, *input_shape)
    state = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in state:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    loss = sum(o.float().sum() for o in out)
    counter = FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten.convolution_backward: corrected_conv_backward()})
    with counter:
        loss.backward()
    grads = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.01),
           "momentum": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9),
           "adam": lambda: torch.optim.Adam(params), "adamw": lambda: torch.optim.AdamW(params),
           }[optimizer]()
    opt.step()
    state_bytes = sum(v.nbytes for entry in opt.state_dict()["state"].values()
                      for v in entry.values() if torch.is_tensor(v))
    return {"backward_macs": counter.get_total_flops() // 2, "saved_bytes": sum(saved.values()),
            "gradient_bytes": grads, "optimizer_bytes": state_bytes}
