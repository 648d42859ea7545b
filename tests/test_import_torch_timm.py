"""timm CNNs (pretrained=False) imported through torch.fx, against PyTorch itself: params
against sum(p.numel()), MACs against torch.utils.flop_counter.FlopCounterMode / 2 (conv,
linear and matmul multiply-accumulates, torchvision's convention), and `run`'s output with
the model's own weights against the model's. benchmarks/measure_timm.py measures more models,
and says why the others do not import yet."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcalc.analysis import analyze_text  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402
from convcalc.interop.spec_text import to_yaml  # noqa: E402
from convcalc.interop.torch_import import import_module  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402

MODELS = ["efficientnet_b0", "mobilenetv3_large_100", "dla34", "regnetx_002"]
# channel slicing and splits (GhostNet, ReXNet, DPN, MixNet, Res2Net, CSPDarkNet), split
# attention (ResNeSt, SKNet), LayerNorm2d and layer scale (ConvNeXt)
LAYOUT = ["ghostnet_100", "rexnet_100", "dpn68", "mixnet_s", "res2net50_26w_4s",
          "cspdarknet53", "resnest14d", "skresnet18", "convnext_atto"]
LAYOUT_KINDS = {"slice", "split", "chunk", "reshape", "sum", "stack", "softmax", "layernorm2d",
                "layer_scale", "permute", "transpose"}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS + LAYOUT)
def test_timm_model(name):
    if name in LAYOUT and not LAYOUT_KINDS <= set(REGISTRY):
        pytest.skip("needs the layout and math kinds")
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    imported = import_module(model, (3, 160, 160), f"timm:{name}")
    report = analyze_text(to_yaml(imported.spec), name)
    assert report.ok
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        theirs = model(x).numpy()
    assert report.totals.macs * 2 * 2 == counter.get_total_flops()  # batch 2
    result = Executor(report, imported.weights).run(np.moveaxis(x.numpy(), 1, -1).copy(), report)
    assert result.ok
    assert np.abs(result.output - theirs).max() <= 1e-4 * np.abs(theirs).max()
