"""`convcalc check` as a user runs it: a subprocess, its output and its exit status.

The golden files in tests/golden/ were read line by line when they were made (the issue's
example spec: 158,026 parameters; layer1.0.conv1 = 64*64*9 = 36,864 weights and
56*56*36,864 = 115,605,504 MACs); regenerate them with CONVCALC_UPDATE_GOLDEN=1 and review
the diff."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SPEC = HERE / "data" / "resnet_basic.yaml"
GOLDEN = HERE / "golden"


def run(*args, cwd=HERE):
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CONVCALC_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("fmt,name", [("table", "resnet_basic.table.txt"),
                                      ("json", "resnet_basic.json"),
                                      ("markdown", "resnet_basic.md")])
def test_golden_output(fmt, name):
    proc = run("check", "data/resnet_basic.yaml", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    golden(name, proc.stdout)


def test_json_contract_fields():
    data = json.loads(run("check", "data/resnet_basic.yaml", "-f", "json").stdout)
    assert data["version"] == 1
    (f,) = data["files"]
    assert {"file", "ok", "input", "output_shape", "layers", "totals", "diagnostics"} <= set(f)
    assert f["ok"] is True and f["input"] == [3, 224, 224] and f["output_shape"] == [10, 56, 56]
    for layer in f["layers"]:
        assert {"name", "type", "inputs", "output_shape", "params", "macs", "flops",
                "output_bytes", "line"} <= set(layer)
    assert {"params", "macs", "flops", "param_bytes", "activation_bytes",
            "peak_activation_bytes"} <= set(f["totals"])
    # totals are the column sums (torchinfo's lesson)
    for key in ("params", "macs", "flops"):
        assert f["totals"][key] == sum(layer[key] for layer in f["layers"])
    assert f["totals"]["activation_bytes"] == sum(l["output_bytes"] for l in f["layers"])
    assert f["totals"]["params"] == 158_026
    stem = f["layers"][0]
    assert (stem["name"], stem["line"], stem["output_shape"]) == ("conv1", 15, [64, 112, 112])
    assert stem["macs"] == 64 * 3 * 49 * 112 * 112 and stem["params"] == 64 * 3 * 49
    names = [layer["name"] for layer in f["layers"]]
    assert "layer1.1.bn2" in names and names[-1] == "head"
    d = f["diagnostics"][0]
    assert {"severity", "code", "message", "layer", "file", "line", "column", "hint"} <= set(d)


def test_memory_options_scale_bytes():
    base = json.loads(run("check", SPEC, "-f", "json").stdout)["files"][0]["totals"]
    half = json.loads(run("check", SPEC, "-f", "json", "--dtype", "float16", "--batch", "8")
                      .stdout)["files"][0]["totals"]
    assert half["param_bytes"] * 2 == base["param_bytes"] == 158_026 * 4
    assert half["activation_bytes"] == base["activation_bytes"] * 8 // 2
    assert half["peak_activation_bytes"] == base["peak_activation_bytes"] * 4


def test_peak_activation_by_hand():
    # the largest moment: the pool reading conv1's 64x112x112 while writing 64x56x56 (the
    # 3x224x224 input, 150,528 values, was freed after conv1), float32
    totals = json.loads(run("check", SPEC, "-f", "json").stdout)["files"][0]["totals"]
    assert totals["peak_activation_bytes"] == (64 * 112 * 112 + 64 * 56 * 56) * 4


def test_input_override(tmp_path):
    data = json.loads(run("check", SPEC, "-f", "json", "--input", "256x256").stdout)
    f = data["files"][0]
    assert f["input"] == [3, 256, 256] and f["output_shape"] == [10, 64, 64]
    # the spec's expect pins [10, 56, 56] at its own input: not checked at 256, and said so
    assert f["ok"]
    skipped = [d for d in f["diagnostics"] if d["code"] == "expectation-skipped"]
    assert len(skipped) == 1 and skipped[0]["severity"] == "info"
    assert "[3, 224, 224]" in skipped[0]["message"] and "[3, 256, 256]" in skipped[0]["message"]


def test_exit_status(tmp_path):
    warn = tmp_path / "warn.yaml"
    warn.write_text("input: [3, 10, 10]\nlayers:\n  - {type: conv2d, out_channels: 4, "
                    "kernel_size: 3, stride: 2}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 10, 10]\nlayers:\n  - {type: conv2d, out_channels: 4}\n")
    assert run("check", SPEC).returncode == 0
    assert run("check", warn).returncode == 0
    assert run("check", "--strict", warn).returncode == 1
    assert run("check", bad).returncode == 1
    assert run("check", SPEC, bad).returncode == 1  # any failing file fails the run
    bogus = run("check", "--bogus", SPEC)
    assert bogus.returncode == 2 and bogus.stderr.strip().count("\n") == 0  # one line
    assert bogus.stderr.startswith("convcalc: error: No such option '--bogus'")
    assert run("check", "--batch", "0", SPEC).returncode == 2
    assert run("--version").stdout.startswith("convcalc ")
    missing = run("check", tmp_path / "nope.yaml")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert run("check", binary).returncode == 2


def test_warning_line_is_greppable(tmp_path):
    warn = tmp_path / "warn.yaml"
    warn.write_text("input: [3, 10, 10]\nlayers:\n  - {type: conv2d, out_channels: 4, "
                    "kernel_size: 3, stride: 2}\n")
    out = run("check", warn).stdout
    line = next(l for l in out.splitlines() if "invalid-stride" in l)
    assert line.startswith(f"{warn}:3:5: warning[invalid-stride] conv2d_0: (10 + 0 + 0 - 3) = 7")
    github = run("check", warn, "-f", "github").stdout
    assert github.startswith(f"::warning file={warn},line=3,col=5,title=invalid-stride::")


def test_kinds_lists_every_registered_kind():
    from convcalc.layers import REGISTRY
    out = run("kinds").stdout
    for name in REGISTRY:
        assert name in out


def test_input_of_another_rank_is_a_usage_error(tmp_path):
    spec = tmp_path / "net3d.yaml"
    spec.write_text("input: [1, 8, 16, 16]\nlayers:\n  - {type: conv3d, out_channels: 2, "
                    "kernel_size: 3}\n")
    wrong = run("check", spec, "--input", "64x64")
    assert wrong.returncode == 2 and "give DxHxW or CxDxHxW" in wrong.stderr
    ok = json.loads(run("check", spec, "--input", "4x32x32", "-f", "json").stdout)["files"][0]
    assert ok["ok"] and ok["output_shape"] == [2, 2, 30, 30]
