"""The Python API (convcalc.check, convcalc.run, convcalc.testing) against the CLI and
against PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convcalc
from convcalc.testing import assert_clean

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
BAD = """input: [3, 224, 224]
layers:
  - {type: conv2d, name: conv1, out_channels: 96, kernel_size: 11, stride: 4}
  - {type: conv2d, name: conv2, out_channels: 8, kernel_size: 3, in_channels: 5}
"""


def cli(*args, stdin=None):
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env, input=stdin, timeout=120)


def test_cli_json_is_the_api_on_every_spec():
    """What `check --format json` prints is Report.to_dict() of convcalc.check, spec by spec."""
    printed = json.loads(cli("check", "specs", "-f", "json").stdout)["files"]
    assert [f["file"] for f in printed] == [str(p.relative_to(ROOT)) for p in SPECS]
    for spec, shown in zip(SPECS, printed):
        report = convcalc.check(spec)
        assert json.loads(json.dumps(report.to_dict()))["totals"] == shown["totals"]
        assert [layer.name for layer in report.layers] == [x["name"] for x in shown["layers"]]
        assert [list(layer.output_shape) for layer in report.layers] == \
            [x["output_shape"] for x in shown["layers"]]


def test_report_fields_and_frozen():
    report = convcalc.check(ROOT / "specs" / "resnet18.yaml")
    assert report.ok and report.totals.params == 11_689_512
    assert report.totals.macs == 1_814_073_344
    conv1 = report.layer("conv1")
    assert (conv1.kind, conv1.output_shape, conv1.params) == ("conv2d", (64, 112, 112), 9408)
    assert conv1.macs == 9408 * 112 * 112 and conv1.flops == 2 * conv1.macs
    assert conv1.receptive_field["size"] == [7, 7]
    with pytest.raises(Exception):
        report.file = "x"  # frozen
    assert isinstance(report.layers, tuple) and isinstance(report.diagnostics, tuple)


def test_sources_text_dict_path_agree():
    path = ROOT / "tests" / "data" / "resnet_basic.yaml"
    text = path.read_text()
    import yaml
    by_path, by_text = convcalc.check(str(path)), convcalc.check(text)
    by_dict = convcalc.check(yaml.safe_load(text))
    for other in (by_text, by_dict):
        assert other.totals == by_path.totals
        assert [x.output_shape for x in other.layers] == [x.output_shape for x in by_path.layers]
    assert by_text.file == "<string>" and by_dict.file == "<dict>"


def test_diagnostics_have_positions():
    report = convcalc.check(BAD)
    assert not report.ok
    found = {(d.code, d.severity.value, d.line, d.column, d.layer) for d in report.diagnostics}
    assert ("invalid-stride", "warning", 3, 5, "conv1") in found
    assert ("channel-mismatch", "error", 4, 5, "conv2") in found
    assert all(d.message and d.hint for d in report.diagnostics)


def test_input_dtype_batch_options():
    spec = ROOT / "specs" / "resnet18.yaml"
    small = convcalc.check(spec, input="128x128", dtype="float16", batch=4)
    assert small.input_shape == (3, 128, 128) and small.layer("conv1").output_shape == (64, 64, 64)
    assert small.layer("conv1").output_bytes == 64 * 64 * 64 * 2 * 4
    assert convcalc.check(spec, input=(3, 128, 128)).totals == \
        convcalc.check(spec, input=[128, 128]).totals
    with pytest.raises(convcalc.InputError, match="takes 2-D inputs"):
        convcalc.check(spec, input="3x1x128x128")
    with pytest.raises(ValueError, match="dtype"):
        convcalc.check(spec, dtype="float64")
    with pytest.raises(FileNotFoundError):
        convcalc.check("no/such/spec.yaml")


def test_assert_clean_message_is_the_cli_lines(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    with pytest.raises(AssertionError) as err:
        assert_clean(bad)
    printed = cli("check", bad).stdout
    for line in str(err.value).splitlines()[:-1]:
        assert line in printed.replace("\n", "") or line in printed, line
    assert "error[channel-mismatch] conv2:" in str(err.value)
    warn_only = tmp_path / "warn.yaml"
    warn_only.write_text(BAD.splitlines(True)[0] + "layers:\n" + BAD.splitlines(True)[2])
    with pytest.raises(AssertionError, match="invalid-stride"):
        assert_clean(warn_only)
    assert assert_clean(warn_only, strict=False).totals.params == 34_944
    assert assert_clean(ROOT / "specs" / "lenet5.yaml").ok  # infos never fail


def test_run_matches_torch():
    torch = pytest.importorskip("torch")
    spec = """input: [3, 9, 9]
layers:
  - {type: conv2d, name: c1, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
  - {type: batchnorm2d, name: bn}
  - relu
  - {type: maxpool2d, name: p, kernel_size: 2}
  - {type: flatten, name: f}
  - {type: linear, name: fc, out_features: 5}
"""
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("c1", torch.nn.Conv2d(3, 4, 3, 2, 1))
    model.add_module("bn", torch.nn.BatchNorm2d(4))
    model.add_module("r", torch.nn.ReLU())
    model.add_module("p", torch.nn.MaxPool2d(2))
    model.add_module("f", torch.nn.Flatten())
    model.add_module("fc", torch.nn.Linear(16, 5))
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    model.eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32)
    result = convcalc.run(spec, x, weights=weights, keep=["c1"], verify=True)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
        want_c1 = model.c1(torch.from_numpy(x)).numpy()
    assert result.ok and result.verified and result.output.shape == (2, 5)
    np.testing.assert_allclose(result.output, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.outputs["c1"], want_c1, rtol=1e-4, atol=1e-5)
    one = convcalc.run(spec, x[0], weights=weights)  # one sample, no batch axis
    np.testing.assert_allclose(one.output[0], want[0], rtol=1e-4, atol=1e-5)


def test_run_refuses_what_cannot_run():
    from convcalc.executor.runner import RunError
    with pytest.raises(RunError, match="has errors"):
        convcalc.run(BAD, np.zeros((1, 3, 224, 224), np.float32))
    spec = ROOT / "specs" / "lenet5.yaml"
    with pytest.raises(RunError, match="does not run at input"):
        convcalc.run(spec, np.zeros((1, 1, 64, 64), np.float32))


def test_import_stays_light():
    code = "import sys, convcalc; print(sorted(m for m in ('numpy', 'yaml', 'rich', " \
           "'convcalc.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_py_typed_is_shipped():
    assert (ROOT / "convcalc" / "py.typed").exists()
    assert "py.typed" in (ROOT / "pyproject.toml").read_text()
