"""GroupNorm and InstanceNorm through ONNX, both ways.

PyTorch's exporter (the oracle for the form real files have) writes nn.InstanceNorm as
InstanceNormalization, its scale and bias initializers when affine and Constant nodes of ones
and zeros when not, and nn.GroupNorm before opset 18 as Reshape, InstanceNormalization,
Reshape, Mul, Add. Each imports as the one PyTorch layer, with PyTorch's parameter count and
PyTorch's output; convcalc's own export of them runs in onnxruntime to `run`'s numbers and
imports back to the same layer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import convcalc

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from convcalc.api import export_onnx  # noqa: E402
from convcalc.interop import import_model  # noqa: E402

MODULES = {
    "groupnorm": (lambda: torch.nn.GroupNorm(2, 4), (4, 5, 6)),
    "groupnorm-plain": (lambda: torch.nn.GroupNorm(4, 4, affine=False), (4, 5, 6)),
    "groupnorm-1d": (lambda: torch.nn.GroupNorm(3, 6, eps=1e-3), (6, 7)),
    "instancenorm2d": (lambda: torch.nn.InstanceNorm2d(4), (4, 5, 6)),
    "instancenorm2d-affine": (lambda: torch.nn.InstanceNorm2d(4, affine=True), (4, 5, 6)),
    "instancenorm1d-affine": (lambda: torch.nn.InstanceNorm1d(3, affine=True, eps=1e-3), (3, 9)),
    "instancenorm3d": (lambda: torch.nn.InstanceNorm3d(2), (2, 3, 4, 5)),
}
KINDS = {"groupnorm": "groupnorm", "groupnorm-plain": "groupnorm", "groupnorm-1d": "groupnorm",
         "instancenorm2d": "instancenorm2d", "instancenorm2d-affine": "instancenorm2d",
         "instancenorm1d-affine": "instancenorm1d", "instancenorm3d": "instancenorm3d"}


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("case", sorted(MODULES))
def test_pytorch_exported_norm_imports_as_one_layer(case, opset, tmp_path):
    factory, shape = MODULES[case]
    module = factory().eval()
    with torch.no_grad():  # trained-looking weights, not the ones and zeros of a fresh module
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter))
    path = tmp_path / "norm.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, *shape), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], dynamic_axes={"x": {0: "N"}})
    layers = import_model(str(path)).spec["layers"]
    assert [layer["type"] for layer in layers] == [KINDS[case]], layers
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    assert np.allclose(convcalc.run(str(path), x).output, expected, atol=1e-5)
    assert convcalc.check(str(path)).totals.params == sum(p.numel() for p in module.parameters())


SPECS = [
    ([4, 5, 6], {"type": "groupnorm", "num_groups": 2}),
    ([4, 5, 6], {"type": "groupnorm", "num_groups": 2, "affine": False}),
    ([6, 7], {"type": "groupnorm", "num_groups": 3, "eps": 1e-3}),
    ([4, 5, 6], {"type": "instancenorm2d"}),
    ([4, 5, 6], {"type": "instancenorm2d", "affine": True}),
    ([3, 9], {"type": "instancenorm1d", "affine": True}),
    ([2, 3, 4, 5], {"type": "instancenorm3d"}),
]


@pytest.mark.parametrize("opset", [17, 18, 21])
@pytest.mark.parametrize("shape,layer", SPECS)
def test_exported_norm_runs_and_imports_back(shape, layer, opset, tmp_path):
    spec = {"input": shape, "layers": [{**layer, "name": "norm"}]}
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    ours = convcalc.run(spec, x, seed=4).output
    path = tmp_path / "norm.onnx"
    onnx.save(export_onnx(spec, seed=4, opset=opset), str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {session.get_inputs()[0].name: x})[0], ours, atol=1e-5)
    (back,) = import_model(str(path)).spec["layers"]
    assert back["type"] == layer["type"] and back["name"] == "norm"
    assert bool(back.get("affine", layer["type"] == "groupnorm")) == \
        bool(layer.get("affine", layer["type"] == "groupnorm"))
    report, again = convcalc.check(spec), convcalc.check(str(path))
    assert (again.totals.params, again.totals.macs) == (report.totals.params, report.totals.macs)


class _TwoNorms(torch.nn.Module):
    """Two fresh LayerNorms: equal weights, which PyTorch's exporter writes once (each use an
    Identity of the one initializer)."""

    def __init__(self, shape, **kwargs):
        super().__init__()
        self.a = torch.nn.LayerNorm(shape, **kwargs)
        self.b = torch.nn.LayerNorm(shape, **kwargs)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


LAYERNORMS = {
    "last-axis": (lambda: torch.nn.LayerNorm(6), (3, 6), False),
    "two-axes": (lambda: torch.nn.LayerNorm([4, 6], eps=1e-3), (3, 4, 6), False),
    "no-affine": (lambda: torch.nn.LayerNorm(6, elementwise_affine=False), (3, 5, 6), False),
    "no-bias": (lambda: torch.nn.LayerNorm(6, bias=False), (3, 6), False),
    "shared": (lambda: _TwoNorms(6), (3, 6), True),
}


@pytest.mark.parametrize("opset", [11, 13, 16])
@pytest.mark.parametrize("case", sorted(LAYERNORMS))
def test_layernorm_written_out_before_opset_17_imports_as_layernorm(case, opset, tmp_path):
    """Before opset 17 PyTorch writes nn.LayerNorm as ReduceMean, Sub, Pow, ReduceMean, Add,
    Sqrt, Div, Mul, Add: one `layernorm` layer again, with PyTorch's output and count."""
    factory, shape, fresh = LAYERNORMS[case]
    module = factory().eval()
    if not fresh:
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.copy_(torch.randn_like(parameter))
    path = tmp_path / "ln.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, *shape), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], dynamic_axes={"x": {0: "N"}})
    kinds = [layer["type"] for layer in import_model(str(path)).spec["layers"]]
    assert kinds.count("layernorm") == (2 if case == "shared" else 1), kinds
    assert set(kinds) <= {"layernorm", "relu"}, kinds
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    assert np.allclose(convcalc.run(str(path), x).output, expected, atol=1e-5)
    assert convcalc.check(str(path)).totals.params == sum(p.numel() for p in module.parameters())
