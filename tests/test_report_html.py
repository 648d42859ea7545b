"""The HTML report without a browser: one file, under 1 MB for ResNet-50, nothing to fetch
(no http(s) URL in any src, href or CSS url(), a Content-Security-Policy that forbids it),
every layer and diagnostic in its data, and feature maps when an image is given."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from convcalc.api import check
from convcalc.picture.report import render_report, rf_layers

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "convcalc" / "data" / "images" / "chelsea.png"


def page_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_resnet50_report_is_small_and_self_contained():
    rep = check(ROOT / "specs" / "resnet50.yaml")
    html = render_report(rep)
    assert len(html.encode("utf-8")) < 1_000_000
    assert "default-src 'none'" in html
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html) + re.findall(r"url\(([^)#]*)\)", html)
    assert all(not re.match(r"\s*(https?:|//)", link) for link in links), links
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html
    data = page_data(html)
    assert [row["name"] for row in data["layers"]] == [layer.name for layer in rep.layers]
    assert sum(row["params"] for row in data["layers"]) == 25_557_032
    assert len(data["diagnostics"]) == len(rep.diagnostics)
    assert data["backdrop"].startswith("data:image/jpeg;base64,")


def test_receptive_field_layers_are_stage_ends():
    """VGG-16's stage ends, from google-research/receptive_field's published end points
    (CONVENTIONS.md): conv1_1 3/1 -> conv1_2 5/1; conv2_1 10/2 -> conv2_2 14/2; conv3_2 32/4
    -> conv3_3 40/4; conv4_2 76/8 -> conv4_3 92/8; conv5_2 164/16 -> conv5_3 196/16 (each
    3x3 conv adds 2 strides); pool5 212/32 (avgpool keeps its 7x7 grid)."""
    fields = [(e["size"][0], e["stride"][0]) for e in rf_layers(check(ROOT / "specs" / "vgg16.yaml"))]
    assert fields == [(5, 1), (14, 2), (40, 4), (92, 8), (196, 16), (212, 32)]


def test_cli_report_with_an_image_shows_feature_maps(tmp_path):
    out = tmp_path / "edges.html"
    done = subprocess.run([sys.executable, "-m", "convcalc", "report", str(ROOT / "specs" / "edges.yaml"),
                           "-o", str(out), "--image", str(PHOTO), "--layers", "blur,energy"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    data = page_data(out.read_text())
    assert [f["name"] for f in data["features"]] == ["blur", "energy"]
    assert all(f["uri"].startswith("data:image/png;base64,") for f in data["features"])


def test_cli_report_errors_are_one_line(tmp_path):
    for extra in (["--image", str(tmp_path / "none.png")], ["--layers", "nosuch", "--image", str(PHOTO)]):
        done = subprocess.run([sys.executable, "-m", "convcalc", "report", str(ROOT / "specs" / "edges.yaml"),
                               "-o", str(tmp_path / "r.html"), *extra], capture_output=True, text=True,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_report_shows_the_cost_of_a_training_step(tmp_path):
    """The desk issue's training totals, as `check --training` computes them (whose figures
    are tested against PyTorch in tests/test_training_torch.py)."""
    out = tmp_path / "lenet.html"
    spec = ROOT / "specs" / "lenet5.yaml"
    done = subprocess.run([sys.executable, "-m", "convcalc", "report", str(spec), "-o", str(out)],
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    shown = page_data(out.read_text())["summary"]["training"]
    expected = check(spec, training=True).training.totals_dict()
    assert {k: shown[k] for k in expected} == expected and shown["batch"] == 1
    assert render_report(check(spec)) and page_data(render_report(check(spec)))["summary"]["training"] is None
