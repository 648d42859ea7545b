"""specs/convnext_tiny.yaml against torchvision's own `convnext_tiny` (weights=None), an
oracle nobody here wrote: the published parameter count (28,589,128), the same state_dict
keys and shapes, the MACs torch's FlopCounterMode counts (2 FLOPs per MAC), and, run by the
executor with the model's own state_dict (layer scales and norms randomised, so that a
wrong permute, norm axis or scale shows), torchvision's logits within 1e-4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from convcalc.analysis import Options, analyze_file  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "convnext_tiny.yaml"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = torchvision.models.convnext_tiny(weights=None).eval()
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith("layer_scale"):
                param.uniform_(0.5, 1.5)
        for module in net.modules():  # LayerNorm and torchvision's LayerNorm2d
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 0.2)
    return net


def _key(layer: str, suffix: str) -> str:
    return f"{layer}.{suffix}" if suffix else layer


def test_params_keys_and_macs_equal_torchvisions(model):
    report = analyze_file(SPEC)
    assert report.ok, [d.format() for d in report.diagnostics]
    published = torchvision.models.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.meta
    assert report.totals.params == sum(p.numel() for p in model.parameters()) \
        == published["num_params"]
    weights = {_key(layer.name, suffix): tuple(w.shape) for layer in report.layers
               for suffix, w in layer.weights.items()}
    assert weights == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    assert 2 * report.totals.macs == counter.get_total_flops()
    assert round(report.totals.macs / 1e9, 3) == published["_ops"]


@pytest.mark.slow
def test_run_with_the_models_state_dict_gives_its_logits(model):
    report = analyze_file(SPEC, Options(input_shape=(3, 64, 64)))
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    result = Executor(report, weights).run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    assert result.ok
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    scale = float(np.abs(expected).max())
    assert float(np.abs(result.output - expected).max()) <= 1e-4 * scale
