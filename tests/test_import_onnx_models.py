"""torchvision models exported to ONNX by torch.onnx.export (the legacy exporter, BatchNorm
kept), imported: params and MACs equal torchvision's published figures, every conv's shape
equals PyTorch's own (forward hooks), names are PyTorch's module paths (the state_dict
loads unchanged), and run equals onnxruntime within 1e-4 relative."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_oracle import assert_close, convcalc_run, onnxruntime_run  # noqa: E402
from test_import_torch import build, hooked_shapes  # noqa: E402

FAST = ["resnet18", "mobilenet_v2"]
SLOW = ["resnet50", "vgg16", "alexnet", "mobilenet_v3_large", "squeezenet1_0", "vgg11",
        "densenet121",
        "efficientnet_b0", "regnet_y_400mf", "googlenet", "mnasnet0_5", "shufflenet_v2_x1_0"]
KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False}}


def export(name: str, path, opset: int = 17):
    model = build(name) if name not in KWARGS else torchvision.models.get_model(
        name, weights=None, **KWARGS[name]).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), dynamo=False,
                      opset_version=opset, input_names=["x"], dynamic_axes={"x": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return model


def check_model(name: str, tmp_path, opset: int = 17) -> None:
    path = tmp_path / f"{name}.onnx"
    model = export(name, path, opset)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    report, ours = convcalc_run(path, x)
    assert_close(ours, onnxruntime_run(path, x))

    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    assert report.totals.params == meta["num_params"]
    assert round(report.totals.macs / 1e9, 3) == meta["_ops"]
    layers = {layer.name: layer for layer in report.layers}
    convs = {path for path, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    seen = hooked_shapes(model, (3, 224, 224))
    assert convs <= set(layers)
    for conv in convs:
        assert layers[conv].output_shape == seen[conv][0], conv


@pytest.mark.parametrize("name", FAST)
def test_torchvision_onnx(name, tmp_path):
    check_model(name, tmp_path)


@pytest.mark.slow
def test_old_opset(tmp_path):
    check_model("resnet18", tmp_path, opset=9)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_torchvision_onnx_slow(name, tmp_path):
    check_model(name, tmp_path)
