"""blur_pool2d, weight-standardised conv and pools with `padding: same` against timm's own
modules (BlurPool2d, StdConv2d, ScaledStdConv2d, MaxPool2dSame, AvgPool2dSame): state_dict
names and shapes, parameter counts, and outputs at several input sizes of one spec (the
SAME pads follow `--input`, never one size's)."""

from __future__ import annotations

import numpy as np
import pytest

from convcalc.analysis import Options, analyze_text
from test_executor import assert_close

torch = pytest.importorskip("torch")
timm_layers = pytest.importorskip("timm.layers")


def _run(layer: str, module, shape, weights=None):
    text = f"input: [{shape[0]}, 8, 8]\nlayers:\n  - {layer}\n"
    report = analyze_text(text, "t.yaml", Options(input_shape=tuple(shape)))
    assert not [d.format() for d in report.diagnostics if d.severity.value == "error"]
    from convcalc.executor.runner import Executor
    state = {f"l.{k}": v.detach().numpy() for k, v in module.state_dict().items()}
    x = np.random.default_rng(sum(shape)).standard_normal((2, *shape)).astype(np.float32)
    out = Executor(report, state).run(np.moveaxis(x, 1, -1)).output
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    assert_close(np.moveaxis(out, -1, 1), expected, layer)
    (entry,) = report.layers
    assert {f"l.{k}": tuple(w.shape) for k, w in entry.weights.items()} == \
        {k: tuple(v.shape) for k, v in state.items()}
    assert entry.params == sum(p.numel() for p in module.parameters())
    return entry


SIZES = [(4, 9, 8), (4, 7, 12), (4, 16, 15)]


@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("filt,stride,mode", [(3, 2, "reflect"), (5, 2, "reflect"),
                                              (4, 1, "constant"), (3, 2, "replicate")])
def test_blur_pool2d_equals_timm(shape, filt, stride, mode):
    module = timm_layers.BlurPool2d(shape[0], filt, stride, pad_mode=mode)
    assert not module.state_dict()  # the filter is a non-persistent buffer
    entry = _run(f"{{type: blur_pool2d, name: l, filt_size: {filt}, stride: {stride}, "
                 f"pad_mode: {mode}}}", module, shape)
    assert entry.macs == int(np.prod(entry.output_shape)) * filt * filt


@pytest.mark.parametrize("shape", SIZES[:2], ids=str)
def test_std_convs_equal_timm(shape):
    torch.manual_seed(0)
    std = timm_layers.StdConv2d(4, 6, 3, stride=2, bias=True)
    entry = _run("{type: conv2d, name: l, out_channels: 6, kernel_size: 3, stride: 2, "
                 "padding: 1, weight_standardization: std}", std, shape)
    plain = analyze_text(f"input: {list(shape)}\nlayers:\n  - {{type: conv2d, out_channels: 6, "
                         "kernel_size: 3, stride: 2, padding: 1}\n", "p.yaml", Options())
    assert (entry.params, entry.macs) == (plain.layers[0].params, plain.layers[0].macs)
    scaled = timm_layers.ScaledStdConv2d(4, 8, 3, groups=2, gamma=1.5)
    with torch.no_grad():
        scaled.gain.copy_(torch.rand(scaled.gain.shape) + 0.5)
    _run("{type: conv2d, name: l, out_channels: 8, kernel_size: 3, padding: 1, groups: 2, "
         "weight_standardization: scaled, ws_gamma: 1.5}", scaled, shape)


@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (3, 1), (4, 3)])
def test_same_pools_equal_timm(shape, kernel, stride):
    same = pytest.importorskip("timm.layers.pool2d_same")
    _run(f"{{type: maxpool2d, name: l, kernel_size: {kernel}, stride: {stride}, "
         "padding: same}", same.MaxPool2dSame(kernel, stride), shape)
    entry = _run(f"{{type: avgpool2d, name: l, kernel_size: {kernel}, stride: {stride}, "
                 "padding: same}", same.AvgPool2dSame(kernel, stride), shape)
    assert entry.output_shape[1:] == tuple(-(-n // stride) for n in shape[1:])
