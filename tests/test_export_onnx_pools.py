"""Pools through ONNX, over the whole small grid: ceil mode, count_include_pad, padding,
dilation and divisor_override, each exported, run in onnxruntime against PyTorch's own
functional pools (the oracle), and imported back to the same shapes, parameters and MACs.

The grid holds the cases a first property campaign found (a ceil-mode average without
count_include_pad exported as a conv of ones and a divisor that did not import back; a
dilated max pool whose window reads padding alone, -inf in PyTorch and the lowest float in
onnxruntime; a ceil-mode overhang as wide as the kernel, which onnxruntime refuses)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import convcalc

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from convcalc.api import export_onnx  # noqa: E402

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


def _torch(layer: dict, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x)
    f = torch.nn.functional
    if layer["type"] == "maxpool2d":
        return f.max_pool2d(t, layer["kernel_size"], layer["stride"], layer["padding"],
                            layer["dilation"], layer["ceil_mode"]).numpy()
    return f.avg_pool2d(t, layer["kernel_size"], layer["stride"], layer["padding"],
                        layer["ceil_mode"], layer["count_include_pad"],
                        layer.get("divisor_override")).numpy()


def _round_trip(cases, tmp_path) -> tuple[int, list]:
    tried, failures = 0, []
    for h, layer in cases:
        spec = {"input": [2, h, h + 1], "layers": [{**layer, "name": "pool"}]}
        report = convcalc.check(spec)
        if not report.ok:  # PyTorch refuses these too (tests/test_pool_sizes_torch.py)
            continue
        tried += 1
        x = np.random.default_rng(h).standard_normal((1, 2, h, h + 1)).astype(np.float32)
        path = tmp_path / f"pool{tried}.onnx"
        onnx.save(export_onnx(spec), str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
        expected = _torch(layer, x)
        if theirs.shape != expected.shape or not np.allclose(theirs, expected, atol=1e-6):
            failures.append(("onnxruntime", h, layer))
            continue
        back = convcalc.check(str(path))
        if not back.ok or back.output_shape != report.output_shape or \
                (back.totals.params, back.totals.macs) != (report.totals.params, report.totals.macs):
            failures.append(("import", h, layer, [d.format() for d in back.diagnostics]))
            continue
        if not np.allclose(convcalc.run(str(path), x).output, expected, atol=1e-6):
            failures.append(("run of the import", h, layer))
    return tried, failures


@pytest.mark.parametrize("kind,cases", [("avgpool2d", _avg_cases), ("maxpool2d", _max_cases)])
def test_pool_grid_round_trips(kind, cases, tmp_path):
    tried, failures = _round_trip(cases(), tmp_path)
    assert tried > 250, tried  # the grid is not vacuous
    assert not failures, failures[:5]


def test_ceil_mode_comes_back_as_ceil_mode(tmp_path):
    """The importer reads an overhang of uncounted pads as PyTorch's ceil mode, not as pads."""
    spec = {"input": [2, 7, 8], "layers": [
        {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "ceil_mode": True, "name": "m"},
        {"type": "avgpool2d", "kernel_size": 2, "stride": 2, "ceil_mode": True,
         "count_include_pad": False, "name": "a"}]}
    path = tmp_path / "ceil.onnx"
    onnx.save(export_onnx(spec), str(path))
    from convcalc.interop import import_model
    layers = {layer["name"]: layer for layer in import_model(str(path)).spec["layers"]}
    assert layers["m"].get("ceil_mode") is True and "padding" not in layers["m"]
    assert layers["a"].get("ceil_mode") is True and "padding" not in layers["a"]
