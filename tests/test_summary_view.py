"""The summary view of issue 12: blocks at a depth, the default fold of long networks, infos
counted, extra columns, hotspots, CSV, units and the batch axis. Sums are checked against
the per-layer json (an independent path through the report), and the torchinfo figure the
issue quotes (102.23 MB for ResNet-50's parameters) against --units si."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import convcalc
from convcalc.render.summary import rows
from convcalc.render.text import View, render_table
from test_cli_check import run
from test_table_fit import boxed_columns, rendered

ROOT = Path(__file__).resolve().parents[1]
RESNET50 = ROOT / "specs" / "resnet50.yaml"


@pytest.fixture(scope="module")
def resnet50():
    return convcalc.check(RESNET50)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_depth_rows_sum_the_layers(resnet50, depth):
    layers = resnet50.to_dict()["layers"]
    found = rows(resnet50, depth)
    assert sum(len(r.layers) for r in found) == len(layers)
    for row in found:
        mine = [x for x in layers if x["name"] == row.name or x["name"].startswith(row.name + ".")]
        assert row.total("params") == sum(x["params"] for x in mine)
        assert row.total("macs") == sum(x["macs"] for x in mine)
    names = [r.name for r in found]
    if depth == 1:
        assert names[:8] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                             "layer4"]
        assert found[4].total("params") == 215_808  # torchvision resnet50.layer1 parameters


@pytest.mark.parametrize("width", [60, 80, 120])
def test_default_view_of_resnet50_fits_a_screen(resnet50, width):
    lines = rendered(render_table(resnet50), width)
    assert len(lines) <= 42
    assert all(len(line) <= width for line in lines if line[:1] in "┏┃┡│└")
    text = "\n".join(lines)
    assert "--all shows every layer" in text
    assert "25,557,032" in text and "4,089,184,256" in text  # the totals, whole
    assert "12 infos (--verbose lists the infos)" in text and "info[" not in text
    columns = boxed_columns(lines)
    if "MACs" in columns:
        assert "372,506,624" in columns["MACs"]  # layer2.0 (a bottleneck with a projection)


def test_verbose_lists_infos(resnet50):
    text = "\n".join(rendered(render_table(resnet50, View(verbose=True)), 120))
    assert text.count("info[") == 12


def test_all_shows_every_layer(resnet50):
    lines = rendered(render_table(resnet50, View(depth=0)), 240)
    assert sum(1 for line in lines if line.startswith("│")) == len(resnet50.layers)


def test_sort_and_top_are_the_hotspots(resnet50):
    top = rows(resnet50, None, "macs", 5)
    ranked = sorted(resnet50.layers, key=lambda x: x.macs, reverse=True)[:5]
    assert [r.total("macs") for r in top] == [x.macs for x in ranked]
    memory = rows(resnet50, 2, "memory", 3)
    assert memory[0].total("output_bytes") >= memory[1].total("output_bytes")


def test_units_si_is_torchinfo_megabytes(resnet50):
    """torchinfo prints 'Params size (MB): 102.23' for resnet50: 25,557,032 * 4 bytes."""
    text = "\n".join(rendered(render_table(resnet50, View(units="si")), 200))
    assert "102.23 MB as float32" in text
    assert "97.49 MiB" in "\n".join(rendered(render_table(resnet50), 200))


def test_columns_share_and_kernel(resnet50):
    lines = rendered(render_table(resnet50, View(depth=0, columns=("kernel", "stride", "share",
                                                                   "input"))), 240)
    columns = boxed_columns(lines)
    assert columns["kernel"][0] == "7x7" and columns["stride"][0] == "2x2"
    assert columns["input"][0] == "3x224x224"
    shares = [float(c.rstrip("%")) for c in columns["MACs %"]]
    assert sum(shares) == pytest.approx(100, abs=0.05 * len(shares))  # each rounded to 0.1


def test_batch_axis_shown():
    report = convcalc.check(RESNET50, batch=8)
    columns = boxed_columns(rendered(render_table(report), 200))
    header = next(h for h in columns if h.startswith("output"))
    assert header == "output (N=8)" and columns[header][0] == "8x64x112x112"


def test_csv_rows_and_training_columns():
    proc = run("check", RESNET50, "--format", "csv", "--training", "--depth", "1")
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["name"] for r in table][:5] == ["conv1", "bn1", "relu", "maxpool", "layer1"]
    assert sum(int(r["params"]) for r in table) == 25_557_032
    report = convcalc.check(RESNET50, training=True)
    assert sum(int(r["backward_macs"]) for r in table) == report.training.backward_macs


def test_cli_training_table_and_json():
    proc = run("check", ROOT / "specs" / "lenet5.yaml", "--training", "--optimizer", "sgd",
               "--batch", "4")
    assert proc.returncode == 0, proc.stderr
    assert "backward" in proc.stdout and "sgd state 0 B" in proc.stdout
    data = json.loads(run("check", ROOT / "specs" / "lenet5.yaml", "--training",
                          "--format", "json").stdout)
    assert set(data["files"][0]["totals"]["training"]) >= {
        "backward_macs", "saved_bytes", "gradient_bytes", "optimizer_bytes", "peak_bytes"}


def test_bad_column_is_a_usage_error():
    proc = run("check", RESNET50, "--columns", "kernal")
    assert proc.returncode == 2 and "kernal" in proc.stderr


def test_frozen_totals_and_bad_frozen():
    text = RESNET50.read_text() + "\nfrozen: [conv1, bn1, layer1]\n"
    report = convcalc.check(text)
    assert report.totals.params - report.totals.trainable_params == 9_408 + 128 + 215_808
    table = "\n".join(rendered(render_table(report), 200))
    assert "frozen 225,344" in table
    broken = convcalc.check(RESNET50.read_text() + "\nfrozen: {a: 1}\n")
    assert any(d.code == "invalid-value" and "frozen" in d.message for d in broken.diagnostics)


def test_frozen_name_of_no_layer_is_an_error():
    report = convcalc.check(RESNET50.read_text() + "\nfrozen: [layer9]\n")
    found = [d for d in report.diagnostics if "layer9" in d.message]
    assert found and found[0].code == "unknown-reference" and found[0].line
