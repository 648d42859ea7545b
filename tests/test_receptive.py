"""Receptive fields (convcalc.receptive, `convcalc rf`), against hand-computed graphs, the
google-research VGG-16 table (CONVENTIONS.md), a brute-force index-set oracle and, with
--verify, the NumPy executor.

Notation: a field is size r / stride S / padding P per axis; unit u sees input pixels
[-P + u*S, -P + u*S + r - 1], centred at -P + u*S + (r-1)/2 (Araujo et al., Distill 2019).
"""

from __future__ import annotations

import json
import math
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc.analysis import analyze_text
from convcalc.cli import _register_commands, app
from convcalc.layers.base import RFStep, enclosing_rf
from convcalc.receptive import receptive_fields, region, seen_pixels

_register_commands()  # as main() does: check, rf, and the others present

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "convcalc" / "data" / "images" / "chelsea.png"  # bundled, CC0


def analyze(text: str):
    return analyze_text(textwrap.dedent(text).lstrip("\n"), "net.yaml")


def rf(report, name: str) -> tuple[list, list, list]:
    field = report.layer(name).receptive_field
    return field["size"], field["stride"], field["padding"]


def codes(report, code: str):
    return [d for d in report.diagnostics if d.code == code]


# -- hand-computed tiny graphs ---------------------------------------------------------------

SINGLE_PATH = """
    input: [1, 32]
    layers:
      - {type: conv1d, name: a, out_channels: 1, kernel_size: 3}
      - {type: conv1d, name: b, out_channels: 1, kernel_size: 3, stride: 2, padding: 1}
      - {type: maxpool1d, name: c, kernel_size: 2}
      - {type: relu, name: d}
    """


@pytest.mark.parametrize("name,expected", [
    ("a", ([3], [1], [0])),
    ("b", ([5], [2], [1])),   # r = 3 + (3-1)*1, S = 2, P = 0 + 1*1
    ("c", ([7], [4], [1])),   # r = 5 + (2-1)*2, S = 4, P = 1 + 0
    ("d", ([7], [4], [1])),   # element-wise: unchanged
])
def test_single_path_recurrences(name, expected):
    assert rf(analyze(SINGLE_PATH), name) == expected


@pytest.mark.parametrize("spec,name,expected", [
    # dilation: k_eff = d*(k-1) + 1 = 5, then 9: r = 5 + 8, P = 2 + 4
    ("""
    input: [1, 32, 32]
    layers:
      - {type: conv2d, name: a, out_channels: 1, kernel_size: 3, dilation: 2, padding: 2}
      - {type: conv2d, name: b, out_channels: 1, kernel_size: 3, dilation: 4, padding: 4}
    """, "b", ([13, 13], [1, 1], [6, 6])),
    # per-axis kernel, stride and asymmetric padding: only the padding before counts
    ("""
    input: [1, 16, 16]
    layers:
      - {type: conv2d, name: a, out_channels: 1, kernel_size: [3, 1], stride: [2, 1],
         padding: [[2, 0], [0, 3]]}
    """, "a", ([3, 1], [2, 1], [2, 0])),
    # TensorFlow SAME, k=4, s=2 on 9: total pad 3 = 1 before + 2 after
    ("""
    input: [1, 9, 9]
    layers:
      - {type: conv2d, name: a, out_channels: 1, kernel_size: 4, stride: 2, padding: same}
    """, "a", ([4, 4], [2, 2], [1, 1])),
    # transposed conv k=4, s=2, p=1: r = 1 + 3/2, S = 1/2, P = (3 - 1)/2; then a 3x1 conv
    ("""
    input: [1, 8]
    layers:
      - {type: conv_transpose1d, name: t, out_channels: 1, kernel_size: 4, stride: 2, padding: 1}
      - {type: conv1d, name: c, out_channels: 1, kernel_size: 3, padding: 1}
    """, "c", ([3.5], [0.5], [1.5])),
    # nearest x2 = a transposed conv k=2, s=2: r = 3/2, S = 1/2, P = 1/2
    ("""
    input: [1, 8, 8]
    layers:
      - {type: upsample, name: up, scale_factor: 2}
    """, "up", ([1.5, 1.5], [0.5, 0.5], [0.5, 0.5])),
    # bilinear x2 = a transposed conv k=4, s=2, p=1 (the bilinear kernel 1/4 3/4 3/4 1/4)
    ("""
    input: [1, 8, 8]
    layers:
      - {type: upsample, name: up, scale_factor: 2, mode: bilinear}
    """, "up", ([2.5, 2.5], [0.5, 0.5], [1, 1])),
    # align_corners 4 -> 7: src = j/2, reads floor and ceil: r = 2, S = 1/2, P = 1/2
    ("""
    input: [1, 4, 4]
    layers:
      - {type: upsample, name: up, size: 7, mode: bilinear, align_corners: true}
    """, "up", ([2, 2], [0.5, 0.5], [0.5, 0.5])),
    # align_corners from one pixel: every unit reads pixel 0; S = 1/3 keeps it sound
    ("""
    input: [1, 1, 1]
    layers:
      - {type: upsample, name: up, size: 3, mode: bilinear, align_corners: true}
    """, "up", ([5 / 3, 5 / 3], [1 / 3, 1 / 3], [2 / 3, 2 / 3])),
    # adaptive 5 -> 3: windows [0,1] [1,3] [3,4]: S = 5/3, P = 2/3, r = 3
    ("""
    input: [1, 5, 5]
    layers:
      - {type: adaptive_avgpool2d, name: ad, output_size: 3}
    """, "ad", ([3, 3], [5 / 3, 5 / 3], [2 / 3, 2 / 3])),
    # max_unpool k=2, s=2 puts each value in its pool window: as nearest x2
    ("""
    input: [1, 8, 8]
    layers:
      - {type: maxpool2d, name: p, kernel_size: 2}
      - {type: max_unpool2d, name: u, kernel_size: 2, indices: p}
    """, "u", ([3, 3], [1, 1], [1, 1])),
    # pad moves the origin by its before-padding; crop by minus its offset (10 -> 6: 2)
    ("""
    input: [1, 10, 10]
    layers:
      - {type: pad, name: p, padding: [[2, 0], [1, 1]]}
      - {type: crop, name: c, size: [6, 6]}
    """, "c", ([1, 1], [1, 1], [-1, -2])),
    # global pooling: a kernel and stride of the whole 8x8 map: r = 3 + 7, S = 8
    ("""
    input: [1, 8, 8]
    layers:
      - {type: conv2d, name: c, out_channels: 4, kernel_size: 3, padding: 1}
      - {type: global_avgpool, name: g}
      - {type: linear, name: fc, out_features: 2}
    """, "fc", ([10, 10], [8, 8], [1, 1])),
])
def test_layer_kinds(spec, name, expected):
    report = analyze(spec)
    assert report.ok, [d.format() for d in report.diagnostics]
    size, stride, padding = rf(report, name)
    for got, want in zip((size, stride, padding), expected):  # approx takes flat sequences
        assert got == pytest.approx(want)
    assert all(isinstance(v, int) for v in size if v == int(v))  # whole numbers stay ints


def test_fractions_stay_exact_until_json():
    report = analyze("""
        input: [1, 5, 5]
        layers:
          - {type: adaptive_avgpool2d, name: ad, output_size: 3}
          - {type: conv2d, name: c, out_channels: 1, kernel_size: 3}
        """)
    axis = receptive_fields(report)[0]["c"].axes[0]
    assert (axis.size, axis.stride, axis.padding) == (Fraction(19, 3), Fraction(5, 3),
                                                      Fraction(2, 3))


def test_group_norm_and_spatial_softmax_see_the_whole_axis():
    report = analyze("""
        input: [4, 8, 8]
        layers:
          - {type: groupnorm, name: gn, num_groups: 2}
          - {type: softmax, name: sm, dim: 3, inputs: [input]}
          - {type: softmax, name: channels, dim: 1, inputs: [input]}
        """)
    assert rf(report, "gn")[0] == [8, 8]
    assert rf(report, "sm")[0] == [1, 8]        # dim 3 = width
    assert rf(report, "channels")[0] == [1, 1]  # across channels only


# -- VGG-16: google-research/receptive_field, as CONVENTIONS.md lists it ---------------------

VGG16_TABLE = {  # end-point: (rf, stride, padding)
    "conv1_1": (3, 1, 1), "pool1": (6, 2, 2), "conv2_1": (10, 2, 4), "pool2": (16, 4, 6),
    "conv3_1": (24, 4, 10), "conv3_2": (32, 4, 14), "pool3": (44, 8, 18),
    "conv4_1": (60, 8, 26), "conv4_2": (76, 8, 34), "pool4": (100, 16, 42),
    "conv5_1": (132, 16, 58), "conv5_2": (164, 16, 74), "pool5": (212, 32, 90),
}


def vgg16_features() -> str:
    lines = ["input: [3, 224, 224]", "layers:"]
    for stage, (convs, channels) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512),
                                               (3, 512)], start=1):
        for i in range(1, convs + 1):
            lines.append(f"  - {{type: conv2d, name: conv{stage}_{i}, out_channels: {channels}, "
                         f"kernel_size: 3, padding: 1}}")
            lines.append("  - relu")
        lines.append(f"  - {{type: maxpool2d, name: pool{stage}, kernel_size: 2, stride: 2}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("end_point", VGG16_TABLE)
def test_vgg16_end_points_match_google_research(end_point):
    report = analyze_text(vgg16_features(), "vgg16.yaml")
    size, stride, padding = VGG16_TABLE[end_point]
    assert rf(report, end_point) == ([size] * 2, [stride] * 2, [padding] * 2)


def test_vgg16_spec_pool5_and_the_classifier_sees_everything():
    path = ROOT / "specs" / "vgg16.yaml"
    if not path.exists():
        pytest.skip("specs/vgg16.yaml not in this tree")
    report = analyze_text(path.read_text(), str(path))
    assert rf(report, "features.30") == ([212, 212], [32, 32], [90, 90])
    # flatten: a kernel of the whole 7x7 map: 212 + 6*32 = 404, stride 7*32 = 224
    assert rf(report, report.layers[-1].name) == ([404, 404], [224, 224], [90, 90])
    (info,) = codes(report, "rf-exceeds-input")
    assert info.layer == "flatten" and info.severity.value == "info"


# -- graphs: merges ------------------------------------------------------------------------

RESNET_BLOCKS = """
    input: [3, 64, 64]
    layers:
      - {type: conv2d, name: stem, out_channels: 8, kernel_size: 7, stride: 2, padding: 3}
      - {type: conv2d, name: conv1, out_channels: 8, kernel_size: 3, padding: 1}
      - {type: batchnorm2d, name: bn1}
      - {type: relu, name: relu1}
      - {type: conv2d, name: conv2, out_channels: 8, kernel_size: 3, padding: 1}
      - {type: batchnorm2d, name: bn2}
      - {type: add, name: add, inputs: [bn2, stem]}
      - {type: conv2d, name: down1, out_channels: 16, kernel_size: 3, stride: 2, padding: 1}
      - {type: conv2d, name: down2, out_channels: 16, kernel_size: 3, padding: 1}
      - {type: conv2d, name: shortcut, inputs: [add], out_channels: 16, kernel_size: 1, stride: 2}
      - {type: add, name: add_down, inputs: [down2, shortcut]}
    """


def test_residual_block_field_is_the_largest_paths():
    report = analyze(RESNET_BLOCKS)
    assert rf(report, "stem") == ([7, 7], [2, 2], [3, 3])
    assert rf(report, "bn2") == ([15, 15], [2, 2], [7, 7])   # 7 + 2*2 + 2*2
    assert rf(report, "add") == rf(report, "bn2")
    # down1 k3 s2 p1: r = 15 + 2*2, P = 7 + 1*2; down2 k3 p1: r = 19 + 2*4, P = 9 + 1*4
    assert rf(report, "add_down") == rf(report, "down2") == ([27, 27], [4, 4], [13, 13])
    assert rf(report, "shortcut")[0] == [15, 15]
    assert codes(report, "misaligned-merge") == []  # ResNet's paths are aligned


def test_misaligned_centres_warn_and_take_the_union():
    report = analyze("""
        input: [1, 16, 16]
        layers:
          - {type: conv2d, name: even, out_channels: 1, kernel_size: 2, stride: 2}
          - {type: conv2d, name: point, inputs: [input], out_channels: 1, kernel_size: 1, stride: 2}
          - {type: add, name: add, inputs: [even, point]}
        """)
    (d,) = codes(report, "misaligned-merge")
    assert d.severity.value == "warning" and d.layer == "add" and d.line == 5
    assert "height and width" in d.message
    assert "'even' (stride 2, centre offset 0.5) and 'point' (stride 2, centre offset 0)" \
        in d.message
    assert "0.5 input pixels apart" in d.message
    assert rf(report, "add") == ([2, 2], [2, 2], [0, 0])


def test_misaligned_union_is_larger_than_each_path():
    report = analyze("""
        input: [1, 16]
        layers:
          - {type: conv1d, name: left, out_channels: 1, kernel_size: 3, padding: [[2, 0]]}
          - {type: conv1d, name: right, inputs: [input], out_channels: 1, kernel_size: 3,
             padding: [[0, 2]]}
          - {type: concat, name: cat, inputs: [left, right]}
        """)
    assert len(codes(report, "misaligned-merge")) == 1
    assert rf(report, "cat") == ([5], [1], [2])  # [u-2, u] and [u, u+2]: [u-2, u+2]


def test_nearest_upsampling_after_a_stride_is_half_a_pixel_off():
    report = analyze("""
        input: [1, 8, 8]
        layers:
          - {type: conv2d, name: sub, out_channels: 1, kernel_size: 1, stride: 2}
          - {type: upsample, name: up, scale_factor: 2}
          - {type: add, name: add, inputs: [up, input]}
        """)
    (d,) = codes(report, "misaligned-merge")
    assert "'up' (stride 1, centre offset -0.5) and 'input' (stride 1, centre offset 0)" \
        in d.message


def test_different_strides_warn_and_keep_the_largest_path():
    report = analyze("""
        input: [1, 8, 8]
        layers:
          - {type: conv2d, name: strided, out_channels: 1, kernel_size: 3, stride: 2, padding: 1}
          - {type: crop, name: cropped, inputs: [input], size: 4}
          - {type: add, name: add, inputs: [strided, cropped]}
        """)
    (d,) = codes(report, "misaligned-merge")
    assert "strides differ" in d.message
    assert rf(report, "add") == rf(report, "strided")


def test_broadcast_gate_widens_to_the_whole_input_without_a_warning():
    report = analyze("""
        input: [4, 8, 8]
        layers:
          - {type: conv2d, name: c, out_channels: 4, kernel_size: 3, padding: 1}
          - {type: global_avgpool, name: squeeze, keepdim: true}
          - {type: conv2d, name: excite, out_channels: 4, kernel_size: 1}
          - {type: sigmoid, name: gate}
          - {type: mul, name: se, inputs: [c, gate]}
        """)
    assert codes(report, "misaligned-merge") == []
    fields = receptive_fields(report)[0]
    for unit in ((0, 0), (7, 7), (3, 5)):
        r = region(fields["se"], unit, (8, 8))
        assert r.first == (0, 0) and r.last == (7, 7)  # the gate saw the whole input


def test_rf_exceeds_input_once_at_the_first_covering_layer():
    report = analyze("""
        input: [1, 9, 9]
        layers:
          - {type: conv2d, name: a, out_channels: 1, kernel_size: 5}
          - {type: conv2d, name: b, out_channels: 1, kernel_size: 5}
          - {type: global_maxpool, name: g}
        """)
    (d,) = codes(report, "rf-exceeds-input")
    assert d.layer == "b" and d.line == 4 and d.severity.value == "info"
    assert "(9x9)" in d.message and "9x9 input" in d.message and "unit [0, 0]" in d.message


def test_unknown_shapes_leave_the_field_unset():
    report = analyze("""
        input: [1, 4, 4]
        layers:
          - {type: conv2d, name: a, out_channels: 1, kernel_size: 7}
          - {type: relu, name: b}
        """)
    assert report.layer("a").receptive_field is None
    assert report.layer("b").receptive_field is None


def test_check_renders_columns_and_json(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [1, 16, 16]\nlayers:\n  - {type: conv2d, name: a, out_channels: 1, "
                    "kernel_size: [3, 1], stride: [2, 1]}\n")
    result = CliRunner().invoke(app, ["check", "-f", "markdown", str(spec)])
    assert result.exit_code == 0, result.output
    assert "| RF | RF stride |" in result.output and "| 3x1 | 2x1 |" in result.output
    spec.write_text("input: [1, 8]\nlayers:\n  - {type: upsample, name: u, scale_factor: 2}\n")
    result = CliRunner().invoke(app, ["check", "-f", "json", str(spec)])
    layer = json.loads(result.output)["files"][0]["layers"][0]
    assert layer["receptive_field"] == {"size": [1.5], "stride": [0.5], "padding": [0.5]}


# -- the layer steps against their exact windows ---------------------------------------------

def test_enclosing_rf_is_the_plain_step_when_one_exists():
    windows = [(j * 3 - 1, j * 3 - 1 + 4) for j in range(6)]  # k=5, s=3, p=1
    assert enclosing_rf(windows, Fraction(3)) == RFStep(Fraction(5), Fraction(3), Fraction(1))


# -- a brute-force oracle: explicit index sets through random 1-D chains ----------------------

def conv_layers():
    return st.builds(lambda k, s, pb, pa, d: ("conv1d", dict(kernel_size=k, stride=s, dilation=d,
                                                              padding=[[pb, pa]])),
                     st.integers(1, 5), st.integers(1, 3), st.integers(0, 3),
                     st.integers(0, 3), st.integers(1, 3))


def pool_layers():
    def build(kind, k, s, d, ceil, pad_share):
        d * (k - 1) + 1
        params = dict(kernel_size=k, stride=s, padding=min(pad_share, k // 2),
                      ceil_mode=ceil)
        if kind == "maxpool1d":
            params["dilation"] = d
        return kind, params
    return st.builds(build, st.sampled_from(["maxpool1d", "avgpool1d"]), st.integers(1, 4),
                     st.integers(1, 3), st.integers(1, 2), st.booleans(), st.integers(0, 2))


def windows_of(kind: str, params: dict, size_in: int, size_out: int):
    """unit v of the layer's output -> the set of its input indices (any integer v)."""
    if kind in ("conv1d", "maxpool1d", "avgpool1d"):
        k, s, d = params["kernel_size"], params["stride"], params.get("dilation", 1)
        pad = params["padding"]
        before = pad[0][0] if isinstance(pad, list) else pad
        return lambda v: {v * s - before + t * d for t in range(k)}
    if kind == "conv_transpose1d":
        k, s, d, before = (params["kernel_size"], params["stride"], params["dilation"],
                           params["padding"])
        return lambda v: {(v + before - t * d) // s for t in range(k)
                          if (v + before - t * d) % s == 0}
    if kind == "upsample":
        ratio = Fraction(size_in, size_out)
        if params["mode"] == "nearest":
            return lambda v: {math.floor(v * ratio)}
        if params.get("align_corners") and size_out > 1:
            step = Fraction(size_in - 1, size_out - 1)
            return lambda v: {math.floor(v * step), math.ceil(v * step)}
        src = lambda v: (v + Fraction(1, 2)) * ratio - Fraction(1, 2)  # noqa: E731
        return lambda v: {math.floor(src(v)), math.ceil(src(v))}
    if kind == "adaptive_avgpool1d":
        return lambda v: set(range(math.floor(v * Fraction(size_in, size_out)),
                                   math.ceil((v + 1) * Fraction(size_in, size_out))))
    raise AssertionError(kind)


def chain_spec(size: int, chain) -> str:
    lines = [f"input: [1, {size}]", "layers:"]
    for i, (kind, params) in enumerate(chain):
        extra = {} if kind in ("upsample", "adaptive_avgpool1d") or "pool" in kind else {
            "out_channels": 1}
        body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in {**extra, **params}.items())
        lines.append(f"  - {{type: {kind}, name: l{i}, {body}}}")
    return "\n".join(lines) + "\n"


def oracle_sets(report, chain, unit: int, clip: bool) -> set[int]:
    """The input indices unit `unit` of the last layer depends on: plain index sets, walked
    down the chain; with clip, only units that exist at each layer (padding is no unit)."""
    sizes = [report.input_shape[1]] + [layer.output_shape[1] for layer in report.layers]
    units = {unit}
    for i in reversed(range(len(chain))):
        if clip:
            units = {v for v in units if 0 <= v < sizes[i + 1]}
        window = windows_of(*chain[i], sizes[i], sizes[i + 1])
        units = set().union(*(window(v) for v in units)) if units else set()
    return {v for v in units if 0 <= v < sizes[0]} if clip else units


def check_against_oracle(size, chain, exact: bool):
    report = analyze_text(chain_spec(size, chain), "chain.yaml")
    assume(report.ok)
    name = report.layers[-1].name
    field = receptive_fields(report)[0][name]
    axis = field.axes[0]
    for unit in range(report.layers[-1].output_shape[1]):
        unclipped = oracle_sets(report, chain, unit, clip=False)
        clipped = oracle_sets(report, chain, unit, clip=True)
        (first, last), = seen_pixels(report, name, (unit,))
        if not unclipped:  # a transposed conv's inserted zero: no input at all
            assert not exact and not clipped
            continue
        if exact:
            assert (min(unclipped), max(unclipped)) == (axis.start(unit), axis.end(unit))
            assert axis.centre(unit) == (min(unclipped) + max(unclipped)) / Fraction(2)
        else:
            assert axis.start(unit) <= min(unclipped) and max(unclipped) <= axis.end(unit)
        assert all(first <= v <= last for v in clipped)
        holes = any(p.get("dilation", 1) > 1 or p.get("stride", 1) > p.get("kernel_size", 1)
                    for _, p in chain)
        if exact and not holes:
            assert (first, last) == (min(clipped), max(clipped)) if clipped else first > last


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(size=st.integers(12, 60), chain=st.lists(st.one_of(conv_layers(), pool_layers()),
                                                min_size=1, max_size=5))
def test_random_conv_pool_chains_match_the_index_set_oracle(size, chain):
    check_against_oracle(size, chain, exact=True)


def fractional_layers():
    tconv = st.builds(lambda k, s, p, d: ("conv_transpose1d", dict(
        kernel_size=k, stride=s, padding=min(p, d * (k - 1)), dilation=d)),
        st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2))
    up = st.builds(lambda size, mode, corners: ("upsample", dict(
        size=size, mode=mode, **({"align_corners": corners} if mode == "linear" else {}))),
        st.integers(2, 40), st.sampled_from(["nearest", "linear"]), st.booleans())
    adaptive = st.builds(lambda o: ("adaptive_avgpool1d", dict(output_size=o)),
                         st.integers(1, 12))
    return st.one_of(tconv, up, adaptive, conv_layers(), pool_layers())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(size=st.integers(6, 30), chain=st.lists(fractional_layers(), min_size=1, max_size=4))
def test_fractional_chains_stay_inside_the_field(size, chain):
    """Upsampling, transposed convs, adaptive pools: every dependency lies in the field."""
    check_against_oracle(size, chain, exact=False)


# -- `convcalc rf` ---------------------------------------------------------------------------

NET = """
input: [3, 32, 32]
layers:
  - {type: conv2d, name: c1, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: batchnorm2d, name: bn}
  - {type: relu, name: r1}
  - {type: maxpool2d, name: p1, kernel_size: 2}
  - {type: conv2d, name: c2, out_channels: 4, kernel_size: 3, stride: 2}
  - {type: conv2d, name: skip, inputs: [p1], out_channels: 4, kernel_size: 3, stride: 2}
  - {type: add, name: add, inputs: [c2, skip]}
  - {type: upsample, name: up, scale_factor: 2, mode: bilinear}
  - {type: global_avgpool, name: gap}
  - {type: linear, name: fc, out_features: 3}
"""


@pytest.fixture()
def net(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(NET)
    return path


def invoke(*args):
    return CliRunner(env={"COLUMNS": "160"}).invoke(app, ["rf", *map(str, args)],
                                                    catch_exceptions=False)


def test_rf_defaults_to_the_last_spatial_layer_corners_and_centre(net):
    result = invoke(net, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["layer"] == "up" and data["output_shape"] == [4, 14, 14]
    assert [u["unit"] for u in data["units"]] == [[0, 0], [0, 13], [13, 0], [13, 13], [6, 6]]
    table = invoke(net)
    assert "rows (unclipped)" in table.output and "13,13" in table.output


def test_rf_one_unit_json(net):
    data = json.loads(invoke(net, "--layer", "c2", "--unit", "0,6", "-f", "json").output)
    # c1 (3/1/1) -> p1 (4/2/1) -> c2 k3 s2: r = 4 + 2*2 = 8, S = 4, P = 1
    assert data["receptive_field"] == {"size": [8, 8], "stride": [4, 4], "padding": [1, 1]}
    (unit,) = data["units"]
    assert unit == {"unit": [0, 6], "start": [-1, 23], "end": [6, 30], "centre": [2.5, 26.5],
                    "clipped": {"first": [0, 23], "last": [6, 30]}}


def test_rf_collapsed_layer_is_one_unit_seeing_everything(net):
    data = json.loads(invoke(net, "--layer", "fc", "-f", "json").output)
    assert data["collapsed"] is True
    (unit,) = data["units"]
    # c2 (k3, s2, no padding) never reads p1's last row 15 (input rows 30-31), but c1 reads
    # row 30 for p1's row 14: the classifier depends on rows and columns 0..30
    assert unit["clipped"] == {"first": [0, 0], "last": [30, 30]}
    # add 8/4/1; bilinear x2 (k 5/2, s 1/2, p 1): r = 8 + 4*3/2, S = 2, P = 1 + 4*1;
    # global pooling over 14: r = 14 + 13*2 = 40, P = 5: [-5, 34]
    assert unit["start"] == [-5, -5] and unit["end"] == [34, 34]


@pytest.mark.parametrize("args,message", [
    (["--layer", "skp"], "did you mean 'skip'?"),
    (["--layer", "c2", "--unit", "7,0"], "outside the layer's units 7x7"),
    (["--unit", "1"], "expected 2 integer(s)"),
    (["--out", "x.png"], "--out names the picture of --image"),
    (["--image", "missing.png"], "missing.png"),
])
def test_rf_usage_errors(net, args, message):
    result = CliRunner().invoke(app, ["rf", str(net), *args])
    assert result.exit_code == 2 and message in result.output


def test_rf_draws_the_field_on_a_photo_atomically(net, tmp_path):
    from PIL import Image

    out = tmp_path / "rf.png"
    result = invoke(net, "--layer", "c2", "--unit", "3,3", "--image", PHOTO, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml", "rf.png"]  # no temp left
    picture = Image.open(out).convert("RGB")
    zoom = 15  # ceil(480 / 32); unit (3, 3) sees [11, 18] on both axes: no padding margin
    assert picture.width == 32 * zoom and picture.height > 32 * zoom
    assert picture.getpixel((11 * zoom + 20, 11 * zoom)) == (255, 200, 0)  # the field's edge
    inside = picture.getpixel((14 * zoom + 3, 13 * zoom))
    outside = picture.getpixel((2 * zoom, 28 * zoom))
    assert sum(inside) > sum(outside)  # the rest is dimmed


def test_rf_draws_the_padding_margin_for_a_corner_unit(net, tmp_path):
    from PIL import Image

    photo = tmp_path / "grey.png"
    Image.new("RGB", (64, 48), (200, 200, 200)).save(photo)
    out = tmp_path / "corner.png"
    result = invoke(net, "--layer", "c2", "--unit", "0,0", "--image", photo, "--out", out)
    assert result.exit_code == 0, result.output
    picture = Image.open(out)
    assert picture.width == 33 * 15  # one column of padding before the image


def test_rf_verify_agrees_with_the_executor(net):
    pytest.importorskip("convcalc.executor.runner")
    result = invoke(net, "--verify", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert all(v["ok"] for v in data["verify"])
    assert {a["status"] for v in data["verify"] for a in v["axes"]} == {"ok"}


def test_rf_verify_catches_a_wrong_step(net, monkeypatch):
    pytest.importorskip("convcalc.executor.runner")
    from convcalc.layers.pool import MaxPool

    monkeypatch.setattr(MaxPool, "rf_steps", lambda self, shapes, out: [
        RFStep(Fraction(1), Fraction(2), Fraction(0))] * 2)  # pretends a 1-wide window
    result = invoke(net, "--layer", "c2", "--verify")
    assert result.exit_code == 1
    assert "DIFFERS" in result.output and "differs from the analysis" in result.output


def test_rf_verify_measures_group_norm_as_whole(tmp_path):
    pytest.importorskip("convcalc.executor.runner")
    spec = tmp_path / "gn.yaml"
    spec.write_text("input: [4, 12, 12]\nlayers:\n"
                    "  - {type: conv2d, name: c, out_channels: 4, kernel_size: 3}\n"
                    "  - {type: groupnorm, name: gn, num_groups: 2}\n"
                    "  - {type: relu, name: r}\n")
    result = invoke(spec, "--unit", "0,0", "--verify", "-f", "json")
    assert result.exit_code == 0, result.output
    (check,) = json.loads(result.output)["verify"]
    assert [a["measured"] for a in check["axes"]] == [[0, 11], [0, 11]]


def test_rf_input_override_ignores_the_specs_expected_sizes(tmp_path):
    spec = tmp_path / "expect.yaml"
    spec.write_text("input: [1, 32, 32]\nlayers:\n"
                    "  - {type: conv2d, name: c, out_channels: 1, kernel_size: 3, stride: 2,\n"
                    "     expect: {shape: [1, 15, 15]}}\n")
    data = json.loads(invoke(spec, "--input", "9x9", "-f", "json").output)
    assert data["output_shape"] == [1, 4, 4] and data["units"][-1]["unit"] == [1, 1]


def test_rf_verify_sees_through_a_gate(tmp_path):
    # squeeze-excitation: scale = c * sigmoid(fc(mean(c))): every unit depends on the whole
    # image through the gate (a torch gradient shows it); a product on a zero background
    # would hide that, so the probe runs it as a sum
    pytest.importorskip("convcalc.executor.runner")
    spec = tmp_path / "se.yaml"
    spec.write_text("input: [4, 16, 16]\nlayers:\n"
                    "  - {type: conv2d, name: c, out_channels: 4, kernel_size: 3, padding: 1}\n"
                    "  - {type: global_avgpool, name: squeeze, keepdim: true}\n"
                    "  - {type: conv2d, name: fc, out_channels: 4, kernel_size: 1}\n"
                    "  - {type: sigmoid, name: gate}\n"
                    "  - {type: mul, name: scale, inputs: [c, gate]}\n")
    result = invoke(spec, "--layer", "scale", "--unit", "0,0", "--verify", "-f", "json")
    assert result.exit_code == 0, result.output
    (check,) = json.loads(result.output)["verify"]
    assert [a["measured"] for a in check["axes"]] == [[0, 15], [0, 15]]
