"""`convcalc import MODULE:CALLABLE` through torch.fx, against PyTorch itself.

Oracles nobody here wrote: torchvision's published weight metadata (num_params and _ops, the
GMACs of conv + linear, CONVENTIONS.md), each module's output shape as forward hooks see it
in PyTorch's own forward, and the model's output for the model's own state_dict (random
initialisation, non-trivial BatchNorm statistics) saved as .npz and loaded unchanged by
`run --weights`. A few models here; the rest of torchvision's classifiers are marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from convcalc.analysis import analyze_text  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402
from convcalc.executor.weights import load_weights  # noqa: E402
from convcalc.interop.spec_text import to_yaml  # noqa: E402
from convcalc.interop.torch_import import import_module  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402

# name -> published GMACs, exactly where CONVENTIONS.md gives them (else torchvision's
# 3-decimal _ops figure is compared); inception_v3 is measured at its own 299x299.
EXACT_MACS = {"alexnet": 714_188_480, "vgg16": 15_470_264_320, "resnet18": 1_814_073_344,
              "resnet50": 4_089_184_256}
FAST = ["resnet18", "mobilenet_v3_large", "squeezenet1_0"]
SLOW = ["resnet50", "vgg16", "alexnet", "mobilenet_v2", "densenet121", "efficientnet_b0",
        "regnet_y_400mf", "resnext50_32x4d", "googlenet", "inception_v3", "mnasnet0_5",
        "shufflenet_v2_x1_0", "convnext_tiny"]
NEEDS = {"shufflenet_v2_x1_0": {"chunk"}, "convnext_tiny": {"layernorm", "layernorm2d",
                                                            "layer_scale", "permute"}}
INPUTS = {"inception_v3": (3, 299, 299)}
# torchvision publishes GoogLeNet's figures without its auxiliary heads, and Inception-v3's
# with them (AuxLogits: 3,326,696 parameters the eval-mode forward never runs, so the
# imported spec leaves them out and says so).
KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
          "inception_v3": {"init_weights": False}}


def build(name: str):
    """torchvision's model (weights=None: nothing is downloaded) with non-trivial
    BatchNorm statistics and affine parameters, in eval mode."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **KWARGS.get(name, {}))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.2)
    return model.eval()


def hooked_shapes(model, shape) -> dict[str, list[tuple[int, ...]]]:
    """Module path -> the per-sample output shape of each call, from PyTorch's own forward."""
    seen: dict[str, list] = {}
    handles = [module.register_forward_hook(
        lambda m, i, out, path=path: seen.setdefault(path, []).append(tuple(out.shape[1:])))
        for path, module in model.named_modules() if path and not list(module.children())]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for handle in handles:
        handle.remove()
    return seen


def check_model(name: str, tmp_path) -> None:
    if not NEEDS.get(name, set()) <= set(REGISTRY):
        pytest.skip(f"{name} needs the kinds {sorted(NEEDS[name])}")
    model = build(name)
    shape = INPUTS.get(name, (3, 224, 224))
    imported = import_module(model, shape, f"torchvision.models:{name}")
    report = analyze_text(to_yaml(imported.spec), name)
    assert report.ok

    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    unused = sum(p.numel() for key, p in model.named_parameters() if key not in imported.weights)
    assert report.totals.params + unused == meta["num_params"]
    assert round(report.totals.macs / 1e9, 3) == meta["_ops"]
    if name in EXACT_MACS:
        assert report.totals.macs == EXACT_MACS[name] and unused == 0

    layers = {layer.name: layer for layer in report.layers}
    checked = 0
    for path, shapes in hooked_shapes(model, shape).items():
        for i, seen in enumerate(shapes):
            layer = layers.get(path if i == 0 else f"{path}_{i}")
            if layer is not None:
                assert layer.output_shape == seen, (path, i)
                checked += 1
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert checked >= convs > 0

    path = tmp_path / f"{name}.npz"
    np.savez(path, **{k: t.detach().numpy() for k, t in model.state_dict().items()
                      if k in imported.weights})
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    result = Executor(report, load_weights(path, report)).run(
        np.ascontiguousarray(np.moveaxis(x, 1, -1)), report)
    assert result.ok
    scale = float(np.abs(theirs).max())
    assert scale > 0 and float(np.abs(result.output - theirs).max()) <= 1e-4 * scale


@pytest.mark.parametrize("name", FAST)
def test_torchvision_model(name, tmp_path):
    check_model(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_torchvision_model_slow(name, tmp_path):
    check_model(name, tmp_path)


def test_state_dict_loads_unchanged(tmp_path):
    """The whole state_dict (num_batches_tracked included) under the module paths."""
    model = build("resnet18")
    imported = import_module(model)
    report = analyze_text(to_yaml(imported.spec), "r18")
    path = tmp_path / "r18.npz"
    np.savez(path, **{k: t.numpy() for k, t in model.state_dict().items()})
    loaded = load_weights(path, report)
    assert set(model.state_dict()) == set(imported.weights)
    assert np.array_equal(loaded["layer3.1.bn2.running_var"],
                          model.layer3[1].bn2.running_var.numpy())


class _BatchNormAct(torch.nn.BatchNorm2d):
    """As timm's BatchNormAct2d: a torch.nn subclass whose forward calls F.batch_norm."""

    def forward(self, x):
        x = torch.nn.functional.batch_norm(x, self.running_mean, self.running_var,
                                           self.weight, self.bias, False, 0.1, self.eps)
        return torch.nn.functional.relu(x)


class _ConvSame(torch.nn.Conv2d):
    """As timm's Conv2dSame: padding in forward (TensorFlow SAME at 15x20), then F.conv2d."""

    def forward(self, x):
        x = torch.nn.functional.pad(x, [0, 1, 1, 1])
        return torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, 0,
                                          self.dilation, self.groups)


class _Head(torch.nn.Linear):
    def forward(self, x):
        return torch.nn.functional.linear(x.mean((2, 3)), self.weight, self.bias)


def test_subclasses_calling_functionals_keep_their_module_names(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(_ConvSame(3, 8, 3, stride=2), _BatchNormAct(8),
                                _Head(8, 5)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2)
    imported = import_module(model, (3, 15, 20))
    layers = {layer["name"]: layer["type"] for layer in imported.spec["layers"]}
    assert layers == {"0.pad": "pad", "0": "conv2d", "1": "batchnorm2d", "1.relu": "relu",
                      "2.mean": "global_avgpool", "2": "linear"}
    report = analyze_text(to_yaml(imported.spec), "sub")
    assert report.layer("0").output_shape == (8, 8, 10)
    path = tmp_path / "sub.npz"
    np.savez(path, **{k: t.numpy() for k, t in model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 15, 20)).astype(np.float32)
    result = Executor(report, load_weights(path, report)).run(np.moveaxis(x, 1, -1).copy(), report)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    assert np.abs(result.output - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_shared_weights_are_refused():
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    with pytest.raises(Exception, match="shared weights"):
        import_module(torch.nn.Sequential(conv, torch.nn.ReLU(), conv), (3, 8, 8))


class _Overwrites(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.relu = torch.nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv(x)
        z = self.relu(y)  # overwrites y, which the add below reads: eager adds relu(y) twice
        return z + y


def test_in_place_op_read_again_is_refused():
    with pytest.raises(Exception, match="in place, on a tensor that is read again") as err:
        import_module(_Overwrites(), (3, 4, 4))
    assert "relu" in str(err.value)


def test_a_converter_disagreeing_with_pytorch_is_an_error_naming_the_layer(monkeypatch):
    """The importer's own check: a converter that lost ceil_mode gives another shape than
    ShapeProp's, and the import fails on that layer instead of writing it."""
    from convcalc.interop import ImportFailure, torch_table
    careless = torch_table.MODULES["MaxPool2d"]
    monkeypatch.setitem(torch_table.MODULES, "MaxPool2d", lambda module, call: {
        k: v for k, v in careless(module, call).items() if k != "ceil_mode"})
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2, ceil_mode=True))
    with pytest.raises(ImportFailure, match=r"layer 1: convcalc computes output \[4, 3, 3\] "
                                            r"but PyTorch gives \[4, 4, 4\]"):
        import_module(model, (3, 9, 9))
