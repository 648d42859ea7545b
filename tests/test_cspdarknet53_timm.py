"""specs/cspdarknet53.yaml against timm's own `cspdarknet53` (timm/models/cspnet.py), an
oracle nobody here wrote: the same parameter count and state_dict keys, the MACs
torch's FlopCounterMode counts (convs and the classifier; 2 FLOPs per MAC), and, run by the
executor with timm's weights (BatchNorm statistics randomised so that a wrong fold or
split shows), timm's logits within 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from convcalc.analysis import Options, analyze_file  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "cspdarknet53.yaml"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = timm.create_model("cspdarknet53", pretrained=False).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return net


def test_params_keys_and_macs_equal_timms(model):
    report = analyze_file(SPEC)
    assert report.totals.params == sum(p.numel() for p in model.parameters()) == 27642184
    weights = {f"{layer.name}.{suffix}": tuple(w.shape) for layer in report.layers
               for suffix, w in layer.weights.items()}
    assert weights == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 256, 256))
    assert 2 * report.totals.macs == counter.get_total_flops()


def test_run_with_timms_weights_gives_timms_logits(model):
    report = analyze_file(SPEC, Options(input_shape=(3, 32, 32)))
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    result = Executor(report, weights).run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    assert result.ok
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    scale = float(np.abs(expected).max())
    assert float(np.abs(result.output - expected).max()) <= 1e-4 * scale
