"""`convcalc graph` and the picture model: the SVG of every shipped spec is XML with one
labelled box per layer (or per block at --depth), no two boxes overlap, every data edge of
the graph is drawn, diagnostics colour their layer; DOT and Mermaid carry the same boxes.
The oracle for boxes and edges is the spec's own graph (layer names and inputs), read here
without the picture code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

from convcalc.api import check
from convcalc.picture import graph_text
from convcalc.picture.layout import FONT, lay_out
from convcalc.picture.model import picture

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"


@cache
def report(path: Path):
    return check(path)


def expected_boxes(rep, depth):
    """The names a person expects to see: each layer's first `depth` name parts."""
    names = [".".join(layer.name.split(".")[:depth]) if depth else layer.name
             for layer in rep.layers]
    return set(names) | {"input"}


def svg_nodes(text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    nodes = [g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "").split()]
    found = {g.get("data-name"): g for g in nodes}
    assert len(found) == len(nodes), "two boxes share a name"
    return found


def no_overlaps(rects) -> list:
    """Pairs of overlapping rectangles (sweep over y: the boxes come top to bottom)."""
    ordered = sorted(rects.items(), key=lambda item: item[1].y)
    clashes = []
    for i, (a, ra) in enumerate(ordered):
        for b, rb in ordered[i + 1:]:
            if rb.y >= ra.y + ra.h:
                break
            if ra.overlaps(rb):
                clashes.append((a, b))
    return clashes


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("depth", [None, 1, 2])
def test_svg_of_every_spec_has_one_labelled_box_per_layer_or_block(path, depth):
    rep = report(path)
    nodes = svg_nodes(graph_text(rep, "svg", depth))
    assert set(nodes) == expected_boxes(rep, depth)
    for name, g in nodes.items():
        texts = [t.text for t in g.iter(f"{SVG}text")]
        assert texts[0] == name  # the label is the box's name, drawn in it
        assert len(g.findall(f"{SVG}rect")) == 1


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("depth", [None, 2])
def test_no_two_boxes_overlap_and_text_fits(path, depth):
    layout = lay_out(picture(report(path), depth))
    assert not no_overlaps(layout.boxes)
    for rect in layout.boxes.values():
        assert 0 <= rect.x and rect.x + rect.w <= layout.width
        assert 0 <= rect.y and rect.y + rect.h <= layout.height


def test_overlap_check_can_fail():
    from convcalc.picture.layout import Rect
    assert no_overlaps({"a": Rect(0, 0, 10, 10), "b": Rect(5, 5, 10, 10)}) == [("a", "b")]
    assert not no_overlaps({"a": Rect(0, 0, 10, 10), "b": Rect(10, 0, 10, 10)})


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_data_edge_is_drawn(path):
    rep = report(path)
    root = ET.fromstring(graph_text(rep, "svg"))
    ids = {g.get("id")[len("node-"):]: g.get("data-name") for g in root.iter(f"{SVG}g")
           if "node" in g.get("class", "").split()}
    drawn = {(ids[g.get("data-source")], ids[g.get("data-target")])
             for g in root.iter(f"{SVG}g") if g.get("class") == "edge-group"}
    wanted = {(source, node.name) for node in rep.graph.nodes
              for source in [*node.inputs, *node.refs.values()]}
    assert drawn == wanted
    for g in root.iter(f"{SVG}g"):  # an edge is labelled with its tensor's shape
        if g.get("class") == "edge-group":
            assert re.fullmatch(r"\d+(x\d+)*(, \d+(x\d+)*)*", g.find(f"{SVG}text").text)


def test_merges_and_branches_are_visible():
    """A residual add has two incoming edges; its block input feeds two boxes."""
    rep = report(ROOT / "specs" / "resnet50.yaml")
    pic = picture(rep)
    by_name = {box.name: box.id for box in pic.boxes}
    into_add = [e for e in pic.edges if e.target == by_name["layer1.0.add"]]
    assert len(into_add) == 2
    out_of_pool = [e for e in pic.edges if e.source == by_name["maxpool"]]
    assert len(out_of_pool) == 2  # the main path and the projection shortcut


def test_folded_block_sums_its_layers():
    rep = report(ROOT / "specs" / "resnet50.yaml")
    box = next(b for b in picture(rep, 1).boxes if b.name == "layer1")
    members = [layer for layer in rep.layers if layer.name.startswith("layer1.")]
    assert box.params == sum(layer.params for layer in members) == 215_808
    assert box.shape == (256, 56, 56)
    assert len(box.members) == len(members)


BROKEN = """\
input: [3, 32, 32]
layers:
  - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}
  - {type: conv2d, name: b, out_channels: 8, kernel_size: 3, inputs: [input]}
  - {type: conv2d, name: c, out_channels: 8, kernel_size: 2, stride: 2, inputs: [input]}
  - {type: add, name: sum, inputs: [a, b]}
  - {type: add, name: bad, inputs: [sum, c]}
"""


def test_diagnostics_colour_their_layer():
    rep = check(BROKEN)
    levels = {d.layer: d.severity.value for d in rep.diagnostics}
    assert levels["bad"] == "error"
    nodes = svg_nodes(graph_text(rep, "svg"))
    assert "error" in nodes["bad"].get("class").split()
    assert nodes["a"].get("class") == "node"
    mermaid = graph_text(rep, "mermaid")
    bad_id = nodes["bad"].get("id")[len("node-"):]
    assert f"class {bad_id} error" in mermaid


@pytest.mark.parametrize("depth", [None, 1, 2])
def test_mermaid_declares_every_box_and_edge(depth):
    rep = report(ROOT / "specs" / "resnet50.yaml")
    text = graph_text(rep, "mermaid", depth)
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    labels = re.findall(r'^\s*n\d+\["([^"<]*)<br/>', text, re.MULTILINE)
    assert set(labels) == expected_boxes(rep, depth)
    assert sum(line.strip().startswith("subgraph ") for line in lines) == \
        sum(line.strip() == "end" for line in lines)
    assert len(re.findall(r"-->\|", text)) == len(picture(rep, depth).edges)


def test_dot_is_balanced_and_renders_where_graphviz_is():
    rep = report(ROOT / "specs" / "unet.yaml")
    text = graph_text(rep, "dot", 1)
    assert text.count("{") == text.count("}")
    assert len(re.findall(r"^\s*n\d+ \[label=", text, re.MULTILINE)) == len(expected_boxes(rep, 1))
    if shutil.which("dot") is None:
        pytest.skip("Graphviz dot is not installed: the DOT text is checked, not drawn")
    out = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=True)
    assert len(svg_nodes_dot(out.stdout)) == len(expected_boxes(rep, 1))


def svg_nodes_dot(text: str):
    root = ET.fromstring(text)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


@pytest.mark.parametrize("name, limit", [("resnet152", 520), ("densenet121", 440)])
def test_deep_networks_stay_legible(name, limit):
    """Measured, not assumed: at full depth the picture stays a few columns wide, so that
    shown 1200 px wide its 12 px text is drawn at 9 px or more (a scroll, not a shrink); at
    --depth 1 and 2 it is folded to a few dozen boxes."""
    rep = report(ROOT / "specs" / f"{name}.yaml")
    full = lay_out(picture(rep))
    assert len(full.boxes) == len(rep.layers) + 1 <= limit
    assert FONT * 1200 / full.width >= 9, f"{full.width:.0f} px wide"
    for depth, most in ((1, 20), (2, 70)):
        folded = lay_out(picture(rep, depth))
        assert len(folded.boxes) <= most
        assert FONT * 1200 / folded.width >= 12


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_cli_graph_writes_each_format(tmp_path):
    spec = ROOT / "specs" / "resnet18.yaml"
    for suffix, start in ((".svg", "<svg"), (".dot", "digraph"), (".mmd", "flowchart TB"),
                          (".md", "```mermaid")):
        out = tmp_path / f"net{suffix}"
        done = run_cli("graph", spec, "-o", out, "--depth", "2")
        assert done.returncode == 0, done.stderr
        assert out.read_text().startswith(start)
    done = run_cli("graph", spec, "--format", "mermaid")
    assert done.stdout.startswith("flowchart TB")
    done = run_cli("graph", spec, "-o", tmp_path / "net.png")  # not SVG under a bitmap's name
    assert done.returncode == 2 and ".png" in done.stderr and "--format" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "net.png").exists()
    done = run_cli("graph", spec, "-o", tmp_path / "net")
    assert done.returncode == 0 and (tmp_path / "net").read_text().startswith("<svg")


def test_cli_graph_errors(tmp_path):
    done = run_cli("graph", tmp_path / "missing.yaml", "-o", tmp_path / "x.svg")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "missing.yaml" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("graph", ROOT / "specs" / "lenet5.yaml", "--depth", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN)
    done = run_cli("graph", spec, "-o", tmp_path / "broken.svg")
    assert done.returncode == 1  # the picture is written, the error still fails the command
    assert "error" in svg_nodes((tmp_path / "broken.svg").read_text())["bad"].get("class")


@pytest.mark.parametrize("picture_file", sorted((ROOT / "docs" / "images").glob("graph_*_depth*.svg")),
                         ids=lambda p: p.stem)
def test_committed_pictures_are_current(picture_file, monkeypatch):
    """docs/make_pictures.py made them; a change to the specs or the drawing must remake them."""
    name, depth = re.fullmatch(r"graph_(.+)_depth(\d+)", picture_file.stem).groups()
    monkeypatch.chdir(ROOT)
    made = graph_text(check(f"specs/{name}.yaml"), "svg", int(depth))
    assert picture_file.read_text() == made, "run python docs/make_pictures.py"
    assert 'src="docs/images/graph_resnet50_depth2.svg"' in (ROOT / "README.md").read_text()
