"""global_response_norm with `channels_last` against timm's own GlobalResponseNorm (an oracle
nobody here wrote), as ConvNeXt-V2 uses it: on [N, H, W, C] inside its permuted MLP. The
kind on a [H, W, C] sample, the torch import of timm's module in both layouts, and
timm's convnextv2_atto imported whole: its parameters, and run against its logits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from timm.layers.grn import GlobalResponseNorm  # noqa: E402

from convcalc.analysis import analyze_text  # noqa: E402
from convcalc.executor.layout import to_channels_first, to_channels_last  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402
from convcalc.interop.spec_text import to_yaml  # noqa: E402
from convcalc.interop.torch_import import import_module  # noqa: E402


class Block(torch.nn.Module):
    """A 1x1 conv, then GRN in timm's layout (permuted to NHWC when channels_last)."""

    def __init__(self, channels_last: bool):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 1)
        self.grn = GlobalResponseNorm(8, channels_last=channels_last)
        self.channels_last = channels_last

    def forward(self, x):
        x = self.conv(x)
        if self.channels_last:
            return self.grn(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.grn(x)


def run(imported, x: np.ndarray) -> np.ndarray:
    report = analyze_text(to_yaml(imported.spec), "m")
    assert report.ok, [d.format() for d in report.diagnostics]
    out = Executor(report, imported.weights).run(to_channels_last(x), report).output
    return to_channels_first(out)


@pytest.mark.parametrize("channels_last", [True, False])
def test_timm_grn_imports_and_runs_as_timm(channels_last):
    torch.manual_seed(0)
    model = Block(channels_last).eval()
    with torch.no_grad():
        model.grn.weight.normal_(0, 1)
        model.grn.bias.normal_(0, 1)
    imported = import_module(model, (3, 6, 5))
    kinds = {layer["type"]: layer for layer in imported.spec["layers"]}
    assert kinds["global_response_norm"].get("channels_last", False) == channels_last
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    ours = run(imported, x)
    assert np.abs(ours - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.slow
def test_convnextv2_atto_imports_with_timms_params_and_logits():
    torch.manual_seed(0)
    model = timm.create_model("convnextv2_atto", pretrained=False).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, GlobalResponseNorm):
                module.weight.normal_(0, 0.5)
                module.bias.normal_(0, 0.5)
    imported = import_module(model, (3, 64, 64))
    report = analyze_text(to_yaml(imported.spec), "m")
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    ours = run(imported, x)
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()
