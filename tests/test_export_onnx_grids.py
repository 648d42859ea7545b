"""Pools and transposed convs through ONNX, over whole small grids (pools: ceil mode,
count_include_pad, padding, dilation, divisor_override; transposed convs: stride, padding,
output_padding, dilation, bias), each exported, run in onnxruntime against PyTorch's own
functional ops (the oracle), and imported back to the same shapes, parameters and MACs.

The grid holds the cases a first property campaign found (a ceil-mode average without
count_include_pad exported as a conv of ones and a divisor that did not import back; a
dilated max pool whose window reads padding alone, -inf in PyTorch and the lowest float in
onnxruntime; a ceil-mode overhang as wide as the kernel, which onnxruntime refuses; a
transposed conv's output_padding as large as the stride, which PyTorch takes below the
dilation and onnxruntime refuses)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import convcalc

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from convcalc.api import export_onnx  # noqa: E402
from convcalc.interop import ImportFailure  # noqa: E402
from convcalc.interop.onnx_export import ExportError  # noqa: E402

SIZES = (1, 2, 3, 5, 7)


def _avg_cases():
    for h, k, s, p, ceil, cip, div in itertools.product(SIZES, (1, 2, 3), (1, 2, 3), (0, 1),
                                                       (False, True), (False, True), (None, 3)):
        if p <= k // 2:
            yield h, {"type": "avgpool2d", "kernel_size": k, "stride": s, "padding": p,
                      "ceil_mode": ceil, "count_include_pad": cip,
                      **({"divisor_override": div} if div else {})}


def _max_cases():
    for h, k, s, p, ceil, d in itertools.product(SIZES, (1, 2, 3), (1, 2, 3), (0, 1),
                                                 (False, True), (1, 2)):
        if p <= k // 2:
            yield h, {"type": "maxpool2d", "kernel_size": k, "stride": s, "padding": p,
                      "ceil_mode": ceil, "dilation": d}


def _transposed_cases():
    for h, k, s, p, op, d, bias in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 3), (0, 1, 2),
                                                     (0, 1, 2), (1, 2, 3), (False, True)):
        if op < max(s, d):  # PyTorch's own limit
            yield h, {"type": "conv_transpose2d", "out_channels": 2, "kernel_size": k, "stride": s,
                      "padding": p, "output_padding": op, "dilation": d, "bias": bias}


def _torch(layer: dict, x: np.ndarray, weights: dict) -> np.ndarray:
    t = torch.from_numpy(x)
    f = torch.nn.functional
    if layer["type"] == "conv_transpose2d":
        bias = torch.from_numpy(weights["pool.bias"]) if layer["bias"] else None
        return f.conv_transpose2d(t, torch.from_numpy(weights["pool.weight"]), bias,
                                  layer["stride"], layer["padding"], layer["output_padding"], 1,
                                  layer["dilation"]).numpy()
    if layer["type"] == "maxpool2d":
        return f.max_pool2d(t, layer["kernel_size"], layer["stride"], layer["padding"],
                            layer["dilation"], layer["ceil_mode"]).numpy()
    return f.avg_pool2d(t, layer["kernel_size"], layer["stride"], layer["padding"],
                        layer["ceil_mode"], layer["count_include_pad"],
                        layer.get("divisor_override")).numpy()


def _round_trip(cases, tmp_path) -> tuple[int, list, list]:
    tried, failures, refused = 0, [], []
    for h, layer in cases:
        spec = {"input": [2, h, h + 1], "layers": [{**layer, "name": "pool"}]}  # any kind
        report = convcalc.check(spec)
        if not report.ok:  # PyTorch refuses these too (tests/test_pool_sizes_torch.py)
            continue
        tried += 1
        x = np.random.default_rng(h).standard_normal((1, 2, h, h + 1)).astype(np.float32)
        path = tmp_path / f"pool{tried}.onnx"
        try:
            model = export_onnx(spec)
        except ExportError as err:  # named, one line; counted so the grid stays honest
            refused.append(str(err))
            continue
        onnx.save(model, str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
        weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        expected = _torch(layer, x, weights)
        if theirs.shape != expected.shape or not np.allclose(theirs, expected, atol=1e-6):
            failures.append(("onnxruntime", h, layer))
            continue
        try:
            back = convcalc.check(str(path))
        except ImportFailure as err:
            failures.append(("import", h, layer, str(err)))
            continue
        if not back.ok or back.output_shape != report.output_shape or \
                (back.totals.params, back.totals.macs) != (report.totals.params, report.totals.macs):
            failures.append(("import", h, layer, [d.format() for d in back.diagnostics]))
            continue
        if not np.allclose(convcalc.run(str(path), x).output, expected, atol=1e-6):
            failures.append(("run of the import", h, layer))
    return tried, failures, refused


@pytest.mark.parametrize("kind,cases", [("avgpool2d", _avg_cases), ("maxpool2d", _max_cases)])
def test_pool_grid_round_trips(kind, cases, tmp_path):
    tried, failures, refused = _round_trip(cases(), tmp_path)
    assert tried > 250, tried  # the grid is not vacuous
    assert not failures and not refused, (failures[:5], refused[:5])


def test_transposed_conv_grid(tmp_path):
    """Every case exports exactly and imports back, or is refused in one line; the refusals
    are only the output_padding past the padding, as large as the stride, where the
    ConvTranspose that stands for it would be empty. (The bias-only rows past the input's
    reach come back as a pad and a channel_bias: the same parameters and MACs.)"""
    tried, failures, refused = _round_trip(_transposed_cases(), tmp_path)
    assert tried > 500, tried
    assert all("past the input's reach" in why for why in refused), refused[:3]
    assert len(refused) < 10, refused
    assert not failures, failures[:5]
