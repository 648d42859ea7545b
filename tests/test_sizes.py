"""`convcalc sizes`: the input sizes a whole network takes cleanly.

Oracles: U-Net's published sizes (Ronneberger et al. 2015; CONVENTIONS.md): 572 works,
valid 3x3 convs and 2x2 pools make the valid sizes 16k + 12 (bottom b -> 16b + 124);
a padded ResNet reads every pixel at every size and fits exactly at 2^n k + 1; and the
slow path, `convcalc check`'s full analysis at each size, which the fast scan must match.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import convcalc.cli.calc  # noqa: F401 - registers the commands
from convcalc.analysis import Options, analyze
from convcalc.cli import app
from convcalc.graph import build_graph
from convcalc.sizes import Progression, nearest, progressions, runs, scan, spec_size
from convcalc.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
RUNNER = CliRunner()

UNET = """
name: unet
input: [1, 572, 572]
blocks:
  double:
    args: {c: 64}
    layers:
      - {type: conv2d, name: conv1, out_channels: "${c}", kernel_size: 3}
      - relu
      - {type: conv2d, name: conv2, out_channels: "${c}", kernel_size: 3}
      - relu
  up:
    args: {c: 64}
    layers:
      - {type: conv_transpose2d, name: upconv, out_channels: "${c}", kernel_size: 2, stride: 2}
      - {type: crop, name: crop, inputs: [input1], to: upconv}
      - {type: concat, name: cat, inputs: [crop, upconv]}
      - {type: double, name: conv, c: "${c}"}
layers:
  - {type: double, name: down1, c: 64}
  - {type: maxpool2d, name: pool1, kernel_size: 2}
  - {type: double, name: down2, c: 128}
  - {type: maxpool2d, name: pool2, kernel_size: 2}
  - {type: double, name: down3, c: 256}
  - {type: maxpool2d, name: pool3, kernel_size: 2}
  - {type: double, name: down4, c: 512}
  - {type: maxpool2d, name: pool4, kernel_size: 2}
  - {type: double, name: bottom, c: 1024, expect: {shape: [1024, 28, 28]}}
  - {type: up, name: up4, c: 512, inputs: [bottom, down4]}
  - {type: up, name: up3, c: 256, inputs: [up4, down3]}
  - {type: up, name: up2, c: 128, inputs: [up3, down2]}
  - {type: up, name: up1, c: 64, inputs: [up2, down1], expect: {shape: [64, 388, 388]}}
  - {type: conv2d, name: head, out_channels: 2, kernel_size: 1}
expect: {output: [2, 388, 388]}
"""

RESNET_STYLE = """
name: resnet-style
input: [3, 224, 224]
blocks:
  down:
    args: {c: 64}
    layers:
      - {type: conv2d, name: conv1, out_channels: "${c}", kernel_size: 3, stride: 2, padding: 1}
      - relu
      - {type: conv2d, name: conv2, out_channels: "${c}", kernel_size: 3, padding: 1}
      - {type: conv2d, name: proj, inputs: [input], out_channels: "${c}", kernel_size: 1, stride: 2}
      - {type: add, inputs: [conv2, proj]}
      - relu
layers:
  - {type: conv2d, name: stem, out_channels: 32, kernel_size: 7, stride: 2, padding: 3}
  - {type: maxpool2d, name: pool, kernel_size: 3, stride: 2, padding: 1}
  - {type: down, name: stage2, c: 64}
  - {type: down, name: stage3, c: 128}
  - {type: global_avgpool, name: gap}
  - {type: linear, name: fc, out_features: 10}
"""

# a residual net whose shortcut has no padding and whose main path has no padding either:
# the add lines up only when the 3x3 valid conv and the 2x2 pool agree
MISALIGNED = """
input: [3, 64, 64]
layers:
  - {type: conv2d, name: a, out_channels: 3, kernel_size: 3}
  - {type: maxpool2d, name: b, kernel_size: 2, inputs: [input]}
  - {type: add, inputs: [a, b]}
"""


def graph_of(text: str, name: str = "inline.yaml"):
    return build_graph(parse_spec(text, name))


def cli(*args):
    result = RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def flat(result) -> str:
    return " ".join(result.stdout.split())


# -- the scan against the slow path (`check`'s analysis at each size) -----------------------

def slow_verdict(text: str, size: int, axis: int | None = None) -> tuple[bool, bool]:
    graph = graph_of(text)
    shape = list(graph.input_shape)
    for a in range(1, len(shape)):
        if axis is None or a == axis + 1:
            shape[a] = size
    report = analyze(build_graph(parse_spec(text, "x.yaml"), tuple(shape)), Options())
    found = [d for d in report.diagnostics if d.code != "expectation-failed"]
    clean = not any(d.severity.value == "error" or (
        d.severity.value == "warning" and d.code in ("invalid-stride", "skipped-input"))
        for d in found)
    exact = clean and not any(d.code == "invalid-stride" for d in found)
    return clean, exact


@pytest.mark.parametrize("text", [UNET, RESNET_STYLE, MISALIGNED])
def test_scan_agrees_with_the_full_analysis(text):
    sizes = range(1, 700, 7) if text is UNET else range(1, 300)
    result = scan(graph_of(text), sizes)
    for verdict in result.verdicts[:: 3 if text is UNET else 1]:
        assert (verdict.clean, verdict.exact) == slow_verdict(text, verdict.size), verdict


def test_scan_agrees_on_one_axis():
    result = scan(graph_of(UNET), range(540, 600), axis=1)
    for verdict in result.verdicts:
        assert (verdict.clean, verdict.exact) == slow_verdict(UNET, verdict.size, axis=1)


# -- U-Net ----------------------------------------------------------------------------------

def test_unet_572_and_its_neighbours():
    result = scan(graph_of(UNET), range(1, 2049))
    assert 572 in result.clean and result.verdict(572).exact
    assert nearest(result.clean, 572) == (556, 588)
    found = progressions(result.clean)
    assert (found.modulus, found.residues) == (16, (12,)) and found.text() == "16k + 12"
    assert all(size % 16 == 12 for size in result.clean)
    assert result.clean[0] == 188  # bottom 4: 16*4 + 124; bottom 3 empties the up path
    assert result.verdict(571).layer == "pool1" and result.verdict(571).code == "invalid-stride"


def test_unet_cli(tmp_path):
    spec = tmp_path / "unet.yaml"
    spec.write_text(UNET)
    result = cli("sizes", spec)
    assert result.exit_code == 0
    out = flat(result)
    assert "16k + 12: 117 sizes from 188 to 2044" in out
    assert "572: clean and exact" in out and "clean 556 and 588" in out
    data = json.loads(cli("sizes", spec, "--format", "json").stdout)
    assert data["clean"]["progression"] == {"modulus": 16, "residues": [12], "first": 188,
                                            "last": 2044}
    assert data["clean"]["nearest"] == [556, 588] and data["spec_input"]["size"] == 572
    assert data["failures"][0]["layer"] == "pool1"


def test_unet_one_axis(tmp_path):
    spec = tmp_path / "unet.yaml"
    spec.write_text(UNET)
    data = json.loads(cli("sizes", spec, "--axis", "width", "--range", "500..700",
                          "-f", "json").stdout)
    assert data["axis"] == "width" and data["clean"]["sizes"][:3] == [508, 524, 540]


# -- ResNet style ---------------------------------------------------------------------------

def test_resnet_style_reads_every_pixel_and_fits_exactly_at_16k_plus_1():
    result = scan(graph_of(RESNET_STYLE), range(1, 1025))
    assert result.clean == list(range(1, 1025))  # padding absorbs every remainder
    found = progressions(result.exact)
    assert found.text() == "16k + 1"
    verdict = result.verdict(224)
    assert verdict.clean and not verdict.exact and verdict.layer == "stem"


def test_projection_shortcut_skips_are_info_not_failures():
    result = scan(graph_of(RESNET_STYLE), range(200, 260))
    assert all(v.clean for v in result.verdicts)
    assert any(v.exact for v in result.verdicts)  # 209, 225, 241, 257 = 16k + 1


def test_merges_that_do_not_line_up_fail():
    result = scan(graph_of(MISALIGNED), range(1, 200))
    assert result.clean == [4]  # 3x3 valid gives i - 2, the 2x2 pool i/2: equal only at 4
    assert result.verdict(6).code == "shape-mismatch"
    assert result.verdict(7).code == "invalid-stride"  # the pool drops a row first


def test_no_clean_size_exits_1_and_errors_are_reported(tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text(MISALIGNED)
    result = cli("sizes", spec, "--range", "5..100")
    assert result.exit_code == 1 and "clean none" in flat(result)
    broken = tmp_path / "broken.yaml"
    broken.write_text("input: [3, 32, 32]\nlayers:\n  - {type: conv2d, kernel_size: 3}\n")
    result = cli("sizes", broken)
    assert result.exit_code == 1 and "convcalc check" in result.stderr


@pytest.mark.parametrize("args", [["--range", "0..10"], ["--range", "9..3"], ["--axis", "time"]])
def test_sizes_usage_errors(tmp_path, args):
    spec = tmp_path / "u.yaml"
    spec.write_text(UNET)
    result = cli("sizes", spec, *args)
    assert result.exit_code == 2 and result.stderr.startswith("convcalc: error:")


# -- the shipped specs ----------------------------------------------------------------------

def shipped(name: str):
    path = SPECS / name
    assert path.exists(), f"{path} is part of the spec library"
    return build_graph(parse_spec(path.read_text(), str(path)))


def test_shipped_unet_572_and_the_sizes_a_designer_would_use():
    result = scan(shipped("unet.yaml"), range(1, 2049))
    assert spec_size(result.graph, None) == 572 and result.verdict(572).exact
    assert progressions(result.clean).text() == "16k + 12"
    assert nearest(result.clean, 572) == (556, 588)
    assert result.clean[0] == 188
    # the inline U-Net above is the same network: the same verdicts at every size
    inline = scan(graph_of(UNET), range(1, 2049))
    assert inline.clean == result.clean


def test_shipped_unet_cli():
    result = cli("sizes", SPECS / "unet.yaml")
    assert result.exit_code == 0
    out = flat(result)
    assert "16k + 12: 117 sizes from 188 to 2044" in out
    assert "572: clean and exact" in out and "nearest clean 556 and 588" in out


def test_yolov3_tiny_needs_multiples_of_32():
    result = scan(shipped("yolov3_tiny.yaml"), range(1, 2049))
    assert progressions(result.clean).text() == "32k"
    assert result.verdict(416).exact and nearest(result.clean, 416) == (384, 448)


def test_lenet5_needs_multiples_of_4():
    result = scan(shipped("lenet5.yaml"), range(1, 257))
    assert progressions(result.clean).text() == "4k" and result.verdict(32).exact


def test_resnet50_every_size_is_clean_and_32k_plus_1_is_exact():
    result = scan(shipped("resnet50.yaml"), range(1, 2049))
    assert result.clean == list(range(1, 2049))
    found = progressions(result.exact)
    assert (found.text(), found.first, found.last) == ("32k + 1", 1, 2017)
    verdict = result.verdict(224)
    assert verdict.clean and not verdict.exact and verdict.layer == "conv1"
    assert nearest(result.exact, 224) == (193, 225)


def test_resnet50_cli():
    result = cli("sizes", SPECS / "resnet50.yaml")
    assert result.exit_code == 0
    out = flat(result)
    assert "every size from 1 to 2048 (2048 sizes)" in out
    assert "32k + 1: 64 sizes from 1 to 2017" in out
    assert "224: clean, not exact (conv1:" in out and "exact 193 and 225" in out


def test_vgg16_needs_multiples_of_32():
    result = scan(shipped("vgg16.yaml"), range(1, 2049))
    assert progressions(result.clean).text() == "32k" and result.clean[0] == 32
    assert result.verdict(224).exact and nearest(result.clean, 224) == (192, 256)
    assert result.verdict(225).layer == "features.4"  # the first 2x2 pool drops a row


def test_alexnet_sizes_around_a_multiple_of_32():
    result = scan(shipped("alexnet.yaml"), range(1, 2049))
    assert progressions(result.clean).text() == "32k - 1 to 32k + 1"
    assert 224 in result.clean and 227 not in result.clean  # torchvision's padding 2


@pytest.mark.parametrize("name", ["resnet18.yaml", "mobilenet_v2.yaml"])
def test_padded_nets_fit_exactly_at_32k_plus_1(name):
    result = scan(shipped(name), range(1, 1025))
    assert result.clean == list(range(1, 1025))
    assert progressions(result.exact).text() == "32k + 1"


def test_spec_size_is_the_specs_own_input():
    assert spec_size(shipped("resnet50.yaml"), None) == 224


# -- progressions ---------------------------------------------------------------------------

def test_progressions():
    assert progressions(list(range(5, 100))) == Progression(1, (0,), 5, 99, 95)
    assert progressions([12 + 16 * k for k in range(3, 20)]).text() == "16k + 12"
    four = sorted(32 * k + r for k in range(1, 20) for r in (1, 2, 3, 4))
    assert progressions(four).text() == "32k + 1 to 32k + 4"
    wrap = sorted(32 * k + r for k in range(2, 20) for r in (-1, 0, 1))
    assert progressions(wrap).text() == "32k - 1 to 32k + 1"
    assert progressions([8 * k + r for k in range(1, 9) for r in (1, 5)]).text() == "4k + 1"
    assert progressions([3, 50, 51, 400]) is None  # scattered: listed, not summarised
    assert progressions([]) is None


def test_runs_and_nearest():
    assert runs([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert nearest([1, 5, 9], 5) == (1, 9) and nearest([1, 5, 9], 0) == (None, 1)


ONE_D = """
input: [1, 100]
layers:
  - {type: conv1d, out_channels: 4, kernel_size: 5, stride: 2}
  - {type: maxpool1d, kernel_size: 2}
"""

THREE_D = """
input: [3, 16, 112, 112]
layers:
  - {type: conv3d, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: maxpool3d, kernel_size: [1, 2, 2]}
  - {type: conv3d, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: maxpool3d, kernel_size: 2}
"""


def test_one_d_and_three_d_networks():
    # 1-D: (i - 5) even for the conv, then an even length for the pool: i = 4k + 3
    result = scan(graph_of(ONE_D), range(1, 201))
    assert progressions(result.clean).text() == "4k + 3" and result.clean[0] == 7
    assert not result.verdict(100).clean and result.verdict(100).layer == "conv1d_0"
    for verdict in result.verdicts[::5]:
        assert (verdict.clean, verdict.exact) == slow_verdict(ONE_D, verdict.size)
    # 3-D: depth is pooled once (2k), height and width twice (4k)
    cube = scan(graph_of(THREE_D), range(1, 101))
    assert progressions(cube.clean).text() == "4k"
    assert spec_size(cube.graph, None) is None  # 16x112x112 is no cube
    depth = scan(graph_of(THREE_D), range(1, 65), axis=0)
    assert progressions(depth.clean).text() == "2k" and spec_size(depth.graph, 0) == 16
    for verdict in depth.verdicts[::3]:
        assert (verdict.clean, verdict.exact) == slow_verdict(THREE_D, verdict.size, axis=0)


def test_list_prints_every_clean_size():
    # LeNet-5: two 2x2 stride-2 pools (multiples of 4) and a 5x5 valid conv after them
    # (32 -> 28 -> 14 -> 10 -> 5 -> 1): 32, 36, ..., 64 in 1..64
    result = cli("sizes", SPECS / "lenet5.yaml", "--range", "1..64", "--list")
    assert result.exit_code == 0
    last = result.stdout.rstrip("\n").splitlines()[-1]
    assert last == "clean sizes: " + ", ".join(str(v) for v in range(32, 65, 4))
    assert "clean sizes:" not in cli("sizes", SPECS / "lenet5.yaml", "--range", "1..64").stdout
