"""`convcalc diff` and convcalc.compare: ResNet-18 -> ResNet-34 against torchvision's own
models (parameters counted by PyTorch, MACs by forward hooks on conv and linear layers), and
a spec with one layer changed, whose deltas are worked out by hand; thresholds and formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convcalc
from convcalc.diff import parse_threshold

ROOT = Path(__file__).resolve().parents[1]
R18, R34 = ROOT / "specs" / "resnet18.yaml", ROOT / "specs" / "resnet34.yaml"


def cli(*args, cwd=ROOT):
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "convcalc", "diff", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def torch_figures(factory):
    """(params, MACs of conv and linear layers, names of modules with weights) at 224."""
    torch = pytest.importorskip("torch")
    model = factory().to("meta").eval()
    macs = []

    def hook(module, inputs, out):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs.append(out.numel() * module.in_channels // module.groups * k)
        elif isinstance(module, torch.nn.Linear):
            macs.append(out.numel() * module.in_features)
    for module in model.modules():
        module.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    weighted = {name for name, m in model.named_modules() if list(m.parameters(recurse=False))}
    return sum(p.numel() for p in model.parameters()), sum(macs), weighted


def test_resnet18_to_resnet34_equals_torchvision():
    models = pytest.importorskip("torchvision.models")
    p18, m18, w18 = torch_figures(models.resnet18)
    p34, m34, w34 = torch_figures(models.resnet34)
    assert (p34, m34) == (21_797_672, 3_663_761_408)  # the figures specs/resnet34.yaml pins
    d = convcalc.compare(R18, R34)
    assert (d.totals["params"].old, d.totals["params"].new) == (p18, p34)
    assert d.totals["params"].delta == p34 - p18 == 10_108_160
    assert d.totals["macs"].delta == m34 - m18
    assert d.totals["params"].percent == pytest.approx(100 * (p34 - p18) / p18)
    added = {r.name for r in d.layers if r.status == "added"}
    assert {n for n in added if d.new.layer(n).params} == w34 - w18  # the new weighted layers
    assert not [r for r in d.layers if r.status == "removed"]
    assert all(r.changed == ("rf",) for r in d.layers if r.status == "changed")


ONE_CHANGE = R18.read_text().replace("out_features: 1000, expect: {params: 513000}",
                                     "out_features: 10").replace(
    "expect: {params: 11689512, macs: 1814073344, output: [1000]}", "")


@pytest.fixture
def changed(tmp_path):
    path = tmp_path / "resnet18_10.yaml"
    path.write_text(ONE_CHANGE)
    return path


def test_one_layer_changed(changed):
    d = convcalc.compare(R18, changed)
    rows = {r.name: r for r in d.layers}
    assert [r.name for r in d.layers if r.status != "same"] == ["fc"]
    assert rows["fc"].changed == ("output_shape", "params", "macs")
    # fc: 512*1000 + 1000 -> 512*10 + 10 parameters; 512*1000 -> 512*10 MACs
    assert d.totals["params"].delta == (512 * 10 + 10) - (512 * 1000 + 1000) == -507_870
    assert d.totals["macs"].delta == 512 * 10 - 512 * 1000
    assert d.totals["params"].percent == pytest.approx(-507_870 / 11_689_512 * 100)
    assert d.totals["rf"].delta == 0


def test_thresholds_exit_status(changed):
    # params fall by 4.34%: -4% is crossed, -5% is not, a rise never is
    assert cli(R18, changed, "--fail-on", "params>+5%").returncode == 0
    proc = cli(R18, changed, "--fail-on", "params<-4%", "--fail-on", "params<-5%")
    assert proc.returncode == 1
    assert "FAILED: params<-4%" in proc.stdout and "ok: params<-5%" in proc.stdout
    assert cli(R18, changed, "--fail-on", "macs<-500k").returncode == 1   # -506,880
    assert cli(R18, changed, "--fail-on", "macs<-600k").returncode == 0
    assert cli(R18, R34, "--fail-on", "memory>0").returncode == 0         # same peak
    assert cli(R18, R34, "--fail-on", "rf>=+464").returncode == 1
    bad = cli(R18, changed, "--fail-on", "weights>5%")
    assert bad.returncode == 2 and "expected METRIC OP VALUE" in bad.stderr


def test_threshold_parsing():
    t = parse_threshold("params > +5%")
    assert (t.metric, t.op, t.value, t.percent) == ("params", ">", 5.0, True)
    assert parse_threshold("memory>64MiB").value == 64 * 2**20
    assert parse_threshold("macs<=-1.5G").value == -1.5e9
    with pytest.raises(ValueError):
        parse_threshold("params=5%")


def test_json_and_markdown(changed):
    data = json.loads(cli(R18, changed, "-f", "json", "--fail-on", "params<-4%").stdout)
    assert data["version"] == 1 and data["ok"] is False
    assert data["totals"]["params"] == {"old": 11_689_512, "new": 11_181_642,
                                        "delta": -507_870, "percent": -4.3447}
    assert set(data["totals"]) == {"params", "macs", "flops", "memory", "rf"}
    (fc,) = [row for row in data["layers"] if row["status"] != "same"]
    assert fc["name"] == "fc" and fc["old"]["output_shape"] == [1000]
    assert fc["new"] == {"type": "linear", "output_shape": [10], "params": 5130,
                         "macs": 5120, "rf": 627}
    md = cli(R18, changed, "-f", "markdown").stdout
    assert "| params | 11,689,512 | 11,181,642 | -507,870 | -4.34% |" in md
    assert "| `fc` | changed | linear | 1000 → 10 | 513,000 → 5,130 | 512,000 → 5,120 | 627 |" in md


def test_spec_with_errors_stops_the_diff(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4}\n")
    proc = cli(R18, bad)
    assert proc.returncode == 1 and "has errors" in proc.stderr and "bad.yaml:3:5" in proc.stderr
