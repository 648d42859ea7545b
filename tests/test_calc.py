"""`convcalc conv | pool | tconv | solve` through the CLI, against the formulas of the papers
evaluated here, their worked numbers, and the framework conventions of CONVENTIONS.md.

Oracles: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (arXiv
1603.07285), relationships 1-15 and the sizes of their figures; CS231n (seed 002): W=10,
F=3, S=2 is "invalid", AlexNet's 224 gives 54.25, 227 gives 55; PyTorch itself (torch is
installed here) for the PyTorch convention; CONVENTIONS.md for the others.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import convcalc.cli.calc  # noqa: F401 - registers conv, pool, tconv, solve, sizes
from convcalc.cli import app

RUNNER = CliRunner()


def cli(*args: object):
    result = RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def text(result) -> str:
    """stdout with rich's line wrapping undone."""
    return " ".join(result.stdout.split())


def data(*args: object) -> dict:
    result = cli(*args, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def out1(kind: str, i: int, k: int, s: int = 1, p=0, d: int = 1, **extra) -> int:
    """The CLI's output size on a 1-D axis (and a check that its formula says the same)."""
    args = [kind, "--input", i, "--kernel", k, "--stride", s, "--padding", p, "--dilation", d,
            "--ndim", 1]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    (axis,) = data(*args)["axes"]
    assert formula_value(axis["formula"]) == axis["output"]
    return axis["output"]


def formula_value(text: str) -> int:
    """Evaluate the written formula 'o = floor((224 + 1 + 1 - 3) / 2) + 1 = 112' and check
    its stated result."""
    match = re.fullmatch(r"o = (.+) = (-?\d+)", text)
    assert match, text
    expression = match.group(1)
    assert re.fullmatch(r"[\d\s()+\-*/a-z,]+", expression), expression
    value = eval(expression, {"__builtins__": {}},  # noqa: S307 - digits and floor/ceil only
                 {"floor": math.floor, "ceil": math.ceil, "max": max})
    assert value == int(match.group(2)), text
    return int(value)


# -- Dumoulin & Visin: relationships 1-15, the paper's formulas evaluated here --------------

def conv_formula(i, k, s=1, p=0, d=1):  # relationship 15 (1-6 are its special cases)
    return math.floor((i + 2 * p - k - (k - 1) * (d - 1)) / s) + 1


SMALL = [(i, k) for i in (4, 5, 6, 7, 10, 31) for k in (1, 2, 3, 4, 5) if k <= i]


@pytest.mark.parametrize("i,k", SMALL)
def test_relationship_1_unit_stride_no_padding(i, k):
    assert out1("conv", i, k) == i - k + 1


@pytest.mark.parametrize("i,k", SMALL)
@pytest.mark.parametrize("p", [1, 2, 3])
def test_relationship_2_zero_padding(i, k, p):
    assert out1("conv", i, k, p=p) == i - k + 2 * p + 1


@pytest.mark.parametrize("i", [4, 5, 9, 224])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_relationship_3_half_padding_keeps_the_size(i, n):
    k = 2 * n + 1
    assert out1("conv", i, k, p=k // 2) == i
    assert out1("conv", i, k, p="same") == i  # PyTorch 'same' at stride 1


@pytest.mark.parametrize("i,k", SMALL)
def test_relationship_4_full_padding(i, k):
    assert out1("conv", i, k, p=k - 1) == i + k - 1


@pytest.mark.parametrize("i,k", SMALL)
@pytest.mark.parametrize("s", [2, 3, 4])
def test_relationship_5_strides_no_padding(i, k, s):
    assert out1("conv", i, k, s) == math.floor((i - k) / s) + 1


@pytest.mark.parametrize("i,k", SMALL)
@pytest.mark.parametrize("s,p", [(2, 1), (3, 1), (2, 2), (4, 3)])
def test_relationship_6_general(i, k, s, p):
    assert out1("conv", i, k, s, p) == math.floor((i + 2 * p - k) / s) + 1


@pytest.mark.parametrize("i,k", SMALL)
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("pool_type", ["max", "avg"])
def test_relationship_7_pooling(i, k, s, pool_type):
    assert out1("pool", i, k, s, type=pool_type) == math.floor((i - k) / s) + 1


@pytest.mark.parametrize("i,k", SMALL)
def test_relationship_8_transposed_of_unit_stride(i, k):
    o = conv_formula(i, k)  # the conv maps i -> o; its transpose maps o back to i
    assert out1("tconv", o, k) == o + (k - 1) == i


@pytest.mark.parametrize("i,k", SMALL)
@pytest.mark.parametrize("p", [1, 2])
def test_relationship_9_transposed_zero_padding(i, k, p):
    o = conv_formula(i, k, p=p)
    if o + (k - 1) - 2 * p > 0:
        assert out1("tconv", o, k, p=p) == o + (k - 1) - 2 * p == i


@pytest.mark.parametrize("i", [5, 7, 12])
@pytest.mark.parametrize("n", [1, 2])
def test_relationship_10_transposed_half_padding(i, n):
    k = 2 * n + 1
    assert out1("tconv", i, k, p=n) == i


@pytest.mark.parametrize("i", [5, 7, 12])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_relationship_11_transposed_full_padding(i, k):
    o = conv_formula(i, k, p=k - 1)
    assert out1("tconv", o, k, p=k - 1) == o - (k - 1) == i


@pytest.mark.parametrize("s,k,n", [(2, 3, 2), (2, 2, 5), (3, 4, 4), (4, 4, 7)])
def test_relationship_12_transposed_strided(s, k, n):
    i = k + n * s  # (i - k) a multiple of s
    o = conv_formula(i, k, s)
    assert out1("tconv", o, k, s) == s * (o - 1) + k == i


@pytest.mark.parametrize("s,k,p,n", [(2, 3, 1, 2), (2, 4, 1, 3), (3, 3, 1, 4), (2, 5, 2, 6)])
def test_relationship_13_transposed_strided_padded(s, k, p, n):
    i = k - 2 * p + n * s  # (i + 2p - k) a multiple of s
    o = conv_formula(i, k, s, p)
    assert out1("tconv", o, k, s, p) == s * (o - 1) + k - 2 * p == i


@pytest.mark.parametrize("i", [6, 7, 8, 9, 10, 11, 224, 225])
@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (3, 3, 1), (5, 4, 2), (4, 2, 1)])
def test_relationship_14_transposed_general(i, k, s, p):
    a = (i + 2 * p - k) % s
    o = conv_formula(i, k, s, p)
    assert out1("tconv", o, k, s, p, output_padding=a) == s * (o - 1) + a + k - 2 * p == i


@pytest.mark.parametrize("i", [7, 9, 16, 224])
@pytest.mark.parametrize("k,d,s,p", [(3, 2, 1, 0), (3, 2, 1, 2), (3, 4, 2, 1), (5, 3, 1, 6)])
def test_relationship_15_dilation(i, k, d, s, p):
    assert out1("conv", i, k, s, p, d) == conv_formula(i, k, s, p, d)


@pytest.mark.parametrize("args,o", [
    (("conv", 4, 3), 2),            # figure 2.1: 4x4 input, 3x3 kernel -> 2x2
    (("conv", 5, 4, 1, 2), 6),      # figure 2.2: 5x5, 4x4, padding 2 -> 6x6
    (("conv", 5, 3, 1, 1), 5),      # figure 2.3: half padding
    (("conv", 5, 3, 1, 2), 7),      # figure 2.4: full padding
    (("conv", 5, 3, 2, 0), 2),      # figure 2.5: stride 2
    (("conv", 5, 3, 2, 1), 3),      # figure 2.6: stride 2, padding 1
    (("conv", 6, 3, 2, 1), 3),      # figure 2.7: 6x6 gives 3x3 too, a row left out
    (("pool", 5, 3, 1), 3),         # figures 1.5/1.6: 3x3 pooling of a 5x5 input
    (("tconv", 2, 3), 4),           # figure 4.1: transpose of figure 2.1
    (("tconv", 6, 4, 1, 2), 5),     # figure 4.2: transpose of figure 2.2
    (("tconv", 5, 3, 1, 1), 5),     # figure 4.3: half padding
    (("tconv", 7, 3, 1, 2), 5),     # figure 4.4: full padding
    (("tconv", 2, 3, 2, 0), 5),     # figure 4.5: transpose of figure 2.5
    (("tconv", 3, 3, 2, 1), 5),     # figure 4.6: transpose of figure 2.6
    (("conv", 7, 3, 1, 0, 2), 3),   # figure 5.1: 7x7, 3x3 dilated by 2 -> 3x3
])
def test_the_papers_figures(args, o):
    assert out1(*args) == o


def test_relationship_14_figure_4_7_needs_output_padding_1():
    # figure 4.7: the transpose of figure 2.7 (6x6, k=3, s=2, p=1) needs a = 1 to give 6
    assert out1("tconv", 3, 3, 2, 1) == 5
    assert out1("tconv", 3, 3, 2, 1, output_padding=1) == 6


@settings(max_examples=60, deadline=None)
@given(i=st.integers(1, 300), k=st.integers(1, 11), s=st.integers(1, 6), p=st.integers(0, 5),
       d=st.integers(1, 4))
def test_conv_matches_pytorch(i, k, s, p, d):
    torch = pytest.importorskip("torch")
    k_eff = d * (k - 1) + 1
    if i + 2 * p < k_eff:
        return
    conv = torch.nn.Conv1d(1, 1, k, s, p, d, bias=False)
    expected = conv(torch.zeros(1, 1, i)).shape[-1]
    assert out1("conv", i, k, s, p, d) == expected


@settings(max_examples=60, deadline=None)
@given(i=st.integers(2, 300), k=st.integers(2, 7), s=st.integers(1, 4),
       ceil=st.booleans(), data=st.data())
def test_maxpool_matches_pytorch(i, k, s, ceil, data):
    torch = pytest.importorskip("torch")
    p = data.draw(st.integers(0, k // 2))
    if i + 2 * p < k:
        return
    pool = torch.nn.MaxPool1d(k, s, p, ceil_mode=ceil)
    expected = pool(torch.zeros(1, 1, i)).shape[-1]
    args = ["pool", "--input", i, "--kernel", k, "--stride", s, "--padding", p, "--ndim", 1]
    args += ["--ceil-mode"] if ceil else []
    assert data_output(*args) == expected


@settings(max_examples=60, deadline=None)
@given(i=st.integers(1, 100), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3),
       d=st.integers(1, 3), data=st.data())
def test_tconv_matches_pytorch(i, k, s, p, d, data):
    torch = pytest.importorskip("torch")
    op = data.draw(st.integers(0, max(s, d) - 1))
    tconv = torch.nn.ConvTranspose1d(1, 1, k, s, p, op, dilation=d, bias=False)
    expected = (i - 1) * s - 2 * p + d * (k - 1) + op + 1
    if expected <= 0:
        return
    assert tconv(torch.zeros(1, 1, i)).shape[-1] == expected
    assert out1("tconv", i, k, s, p, d, output_padding=op) == expected


def data_output(*args) -> int:
    (axis,) = data(*args)["axes"]
    assert formula_value(axis["formula"]) == axis["output"]
    return axis["output"]


# -- the seeds' worked numbers and the fit analysis ------------------------------------------

def test_cs231n_examples():
    assert data("conv", "-i", 7, "-k", 3)["output"] == [5, 5]
    assert data("conv", "-i", 7, "-k", 3, "-s", 2)["output"] == [3, 3]
    assert [out1("conv", 5, 3, s, 1) for s in (1, 2)] == [5, 3]


def test_cs231n_invalid_stride_drops_a_real_row_exit_1():
    # (W - F + 2P)/S + 1 = (10 - 3 + 0)/2 + 1 = 4.5: "invalid"
    result = cli("conv", "-i", 10, "-k", 3, "-s", 2)
    assert result.exit_code == 1
    assert "4.5 unrounded" in text(result) and "never read" in text(result)
    assert "o = floor((10 + 0 + 0 - 3) / 2) + 1 = 4" in text(result)


def test_stride_3_on_5_with_padding_1_only_loses_padding():
    # W=5, F=3, P=1, S=3 "does not fit": (5 + 2 - 3) = 4 is not a multiple of 3, but the
    # row left out is the padding: no input pixel is lost (exit 0, an info)
    d = data("conv", "-i", 5, "-k", 3, "-s", 3, "-p", 1, "--ndim", 1)
    (axis,) = d["axes"]
    assert axis["fit"] == {"remainder": 1, "dropped_rows": 0, "dropped_padding": 1,
                           "skipped_rows": 0}
    assert d["clean"] is True
    assert [x["severity"] for x in d["diagnostics"]] == ["info"]


def test_alexnet_224_drops_pixels_227_fits():
    result = cli("conv", "-i", "224x224", "-k", 11, "-s", 4)
    assert result.exit_code == 1
    assert "54.25 unrounded" in text(result)
    assert "input 227 (or 223)" in text(result)
    d = data("conv", "-i", "3x227x227", "-k", 11, "-s", 4, "--ndim", 2)  # channels first
    assert d["output"] == [55, 55] and d["clean"] and d["channels"] == 3
    assert d["axes"][0]["fit"]["remainder"] == 0


def test_formula_written_out_as_in_the_issue():
    result = cli("conv", "--input", 224, "--kernel", 3, "--stride", 2, "--padding", 1)
    assert result.exit_code == 0
    assert "o = floor((224 + 1 + 1 - 3) / 2) + 1 = 112" in text(result)
    assert "height and width" in text(result)
    assert "r_in = 2*r_out + 1" in text(result)  # the receptive-field step (Araujo et al.)


def test_receptive_field_step_is_the_layer_kinds():
    (axis,) = data("conv", "-i", 224, "-k", 3, "-s", 2, "-p", 1, "-d", 2, "--ndim", 1)["axes"]
    assert axis["receptive_field"] == {"kernel": 5, "stride": 2, "padding": 1}
    (axis,) = data("tconv", "-i", 112, "-k", 4, "-s", 2, "-p", 1, "--ndim", 1)["axes"]
    assert axis["receptive_field"] == {"kernel": "5/2", "stride": "1/2", "padding": 1}


def test_skipped_input_of_a_strided_1x1_is_info_but_of_k2_s3_fails():
    assert cli("conv", "-i", 57, "-k", 1, "-s", 2).exit_code == 0
    d = data("conv", "-i", 57, "-k", 1, "-s", 2)
    assert any(x["code"] == "skipped-input" and x["severity"] == "info" for x in d["diagnostics"])
    result = cli("conv", "-i", 8, "-k", 2, "-s", 3)
    assert result.exit_code == 1 and "skipped-input" in text(result)


def test_non_positive_output_exit_1():
    result = cli("conv", "-i", 2, "-k", 5)
    assert result.exit_code == 1 and "non-positive-output" in text(result)


def test_per_axis_and_asymmetric_options():
    d = data("conv", "-i", "224x100", "-k", "3x1", "-s", 2, "-p", "1:1,0:1")
    assert d["output"] == [112, 51]  # width: floor((100 + 0 + 1 - 1) / 2) + 1
    assert [a["padding"] for a in d["axes"]] == [[1, 1], [0, 1]]
    assert data("conv", "-i", "16x112x112", "-k", "3x3x3", "-p", 1)["output"] == [16, 112, 112]
    assert data("conv", "-i", "3x16x112x112", "-k", "3x3x3", "-s", "1x2x2",
                "-p", 1)["output"] == [16, 56, 56]


# -- conventions: CONVENTIONS.md's rules on its worked numbers ------------------------------

def test_tensorflow_same_at_224_k3_s2_pads_0_1():
    d = data("conv", "-i", 224, "-k", 3, "-s", 2, "-p", "same", "-c", "tensorflow")
    assert d["output"] == [112, 112]
    assert [a["padding"] for a in d["axes"]] == [[0, 1], [0, 1]]
    assert d["axes"][0]["formula"] == "o = ceil(224 / 2) = 112"
    assert "max((112 - 1)*2 + 3 - 224, 0) = 1" in d["axes"][0]["padding_formula"]
    # VALID: o = ceil((i - k + 1) / s)
    (axis,) = data("conv", "-i", 224, "-k", 3, "-s", 2, "-p", "valid", "-c", "tensorflow",
                   "--ndim", 1)["axes"]
    assert axis["formula"] == "o = ceil((224 - 3 + 1) / 2) = 111"
    assert formula_value(axis["formula"]) == 111


def test_onnx_same_upper_and_lower():
    upper = data("conv", "-i", 224, "-k", 3, "-s", 2, "-p", "same_upper", "-c", "onnx",
                 "--ndim", 1)
    lower = data("conv", "-i", 224, "-k", 3, "-s", 2, "-p", "same_lower", "-c", "onnx",
                 "--ndim", 1)
    assert upper["axes"][0]["padding"] == [0, 1] and lower["axes"][0]["padding"] == [1, 0]
    assert upper["output"] == lower["output"] == [112]


def test_pytorch_same_rejects_stride_2_with_one_line():
    result = cli("conv", "-i", 224, "-k", 3, "-s", 2, "-p", "same")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "stride 1" in result.stderr


def test_pytorch_same_puts_the_odd_pad_after():
    (axis,) = data("conv", "-i", 10, "-k", 4, "-p", "same", "--ndim", 1)["axes"]
    assert axis["padding"] == [1, 2] and axis["output"] == 10


def test_darknet_maxpool_2x2_stride_1_keeps_13():
    d = data("pool", "-i", 13, "-k", 2, "-s", 1, "-c", "darknet")
    assert d["output"] == [13, 13] and d["axes"][0]["padding"] == [0, 1]
    assert data("pool", "-i", 13, "-k", 2, "-s", 1)["output"] == [12, 12]  # PyTorch
    # yolov3-tiny: max 2x2/2 416 -> 208 ... 26 -> 13, then 2x2/1 13 -> 13
    for i, o in ((416, 208), (52, 26), (26, 13)):
        assert data("pool", "-i", i, "-k", 2, "-s", 2, "-c", "darknet")["output"] == [o, o]


def test_darknet_conv_pad_1_means_half_the_size():
    d = data("conv", "-i", 416, "-k", 3, "-s", 1, "-p", "same", "-c", "darknet")
    assert d["output"] == [416, 416] and d["axes"][0]["padding"] == [1, 1]
    d = data("conv", "-i", 416, "-k", 3, "-s", 2, "-p", "same", "-c", "darknet")
    assert d["output"] == [208, 208]


@pytest.mark.parametrize("i,torch_o,caffe_o", [(112, 55, 56), (56, 27, 28), (28, 13, 14),
                                               (14, 6, 7), (113, 56, 56)])
def test_caffe_pooling_rounds_up(i, torch_o, caffe_o):
    # Caffe: ceil((i - 3) / 2) + 1; GoogLeNet's pools give 28 where PyTorch gives 27
    assert data("pool", "-i", i, "-k", 3, "-s", 2)["output"] == [torch_o] * 2
    d = data("pool", "-i", i, "-k", 3, "-s", 2, "-c", "caffe")
    assert d["output"] == [caffe_o] * 2
    assert d["axes"][0]["formula"] == f"o = ceil(({i} + 0 + 0 - 3) / 2) + 1 = {caffe_o}"


def test_caffe_clips_only_when_it_pads():
    # i=6, k=2, s=3: ceil(4/3) + 1 = 3 windows; the third would start at 6 = i: PyTorch's
    # ceil_mode drops it, Caffe keeps it because it does not pad
    torch_ceil = data("pool", "-i", 6, "-k", 2, "-s", 3, "--ceil-mode", "--ndim", 1)
    caffe = data("pool", "-i", 6, "-k", 2, "-s", 3, "-c", "caffe", "--ndim", 1)
    assert torch_ceil["output"] == [2] and caffe["output"] == [3]
    # with padding both clip: i=5, k=2, s=2, p=1 -> ceil(5/2) + 1 = 4, clipped to 3
    for convention in ("torch", "caffe"):
        d = data("pool", "-i", 5, "-k", 2, "-s", 2, "-p", 1, "--ceil-mode", "-c", convention,
                 "--ndim", 1)
        assert d["output"] == [3]
        assert d["axes"][0]["formula"] == "o = ceil((5 + 1 + 1 - 2) / 2) + 1 - 1 = 3"


def test_keras_transposed_same_and_valid():
    same = data("tconv", "-i", 7, "-k", 3, "-s", 2, "-p", "same", "-c", "tensorflow")
    valid = data("tconv", "-i", 7, "-k", 3, "-s", 2, "-c", "tensorflow")
    assert same["output"] == [14, 14] and valid["output"] == [15, 15]


def test_compare_marks_where_conventions_disagree():
    d = data("pool", "-i", 112, "-k", 3, "-s", 2, "--compare")
    rows = {row["convention"]: row for row in d["compare"]}
    assert rows["torch"]["output"] == [55, 55] and rows["torch"]["agrees"]
    assert rows["caffe"]["output"] == [56, 56] and not rows["caffe"]["agrees"]
    assert rows["darknet"]["output"] == [56, 56] and not rows["darknet"]["agrees"]
    assert rows["tensorflow"]["agrees"] and rows["onnx"]["agrees"]
    result = cli("pool", "-i", 112, "-k", 3, "-s", 2, "--compare")
    assert "caffe, darknet disagree" in text(result) and "≠" in text(result)


def test_compare_same_padding_shows_onnx_upper_and_lower():
    d = data("conv", "-i", 224, "-k", 3, "-s", 2, "-p", "same", "--compare")
    rows = {row["convention"]: row for row in d["compare"]}
    assert rows["torch"]["unsupported"] and rows["caffe"]["unsupported"]
    assert rows["tensorflow"]["padding"] == [[0, 1], [0, 1]]
    assert rows["onnx SAME_UPPER"]["padding"] == [[0, 1], [0, 1]]
    assert rows["onnx SAME_LOWER"]["padding"] == [[1, 0], [1, 0]]
    assert rows["darknet"]["padding"] == [[1, 1], [1, 1]]
    assert {tuple(r["output"]) for r in d["compare"] if r["output"]} == {(112, 112)}


@pytest.mark.parametrize("kind", ["conv", "pool", "tconv"])
@pytest.mark.parametrize("padding", ["0", "1", "same", "valid", "0:1"])
def test_every_formula_evaluates_to_its_output(kind, padding):
    d = data(kind, "-i", 33, "-k", 3, "-s", 2, "-p", padding, "--compare", "--ndim", 1)
    for row in d["compare"]:
        for formula in row["formula"] or []:
            assert formula_value(formula) == row["output"][0]


# -- exit codes and usage errors -----------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["conv", "-i", "224x", "-k", 3],
    ["conv", "-i", 224, "-k", 0],
    ["conv", "-i", 224, "-k", 3, "-p", "lots"],
    ["conv", "-i", "1x2x3x4x5", "-k", 3],
    ["conv", "-i", 224, "-k", "3x3", "-s", "1x2x3"],
    ["pool", "-i", 224, "-k", 3, "-c", "tensorflow", "--ceil-mode"],
    ["tconv", "-i", 7, "-k", 3, "-s", 2, "--output-padding", 2],
    ["solve", "-i", 224, "-k", 3],
    ["solve", "-i", 224, "-O", 112, "--kind", "deconv"],
    ["solve", "-i", 224, "-O", 112, "-k", "9-3"],
    ["sizes", "no/such/spec.yaml"],
])
def test_usage_errors_exit_2_with_one_line(args):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("convcalc: error:") or "Usage" in result.stderr
    if result.stderr.startswith("convcalc: error:"):
        assert result.stderr.count("\n") == 1


def test_subprocess_exit_codes_and_no_traceback():
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    for args, code in ((["conv", "-i", 224, "-k", 3, "-s", 2, "-p", 1], 0),
                       (["conv", "-i", 224, "-k", 11, "-s", 4], 1),
                       (["conv", "-i", "oops", "-k", 3], 2),
                       (["solve", "-i", 224, "-O", 100, "-k", 3, "-s", 2], 1)):
        proc = subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr


# -- solve: what it proposes, `conv` confirms ----------------------------------------------

def confirm(solution: dict) -> dict:
    """Run the solution's own `convcalc ...` line (JSON) and return what it says."""
    argv = solution["command"].split()[1:]
    return data(*argv)


@pytest.mark.parametrize("args", [
    ["-i", 224, "-O", 112, "-k", 3, "-s", 2],
    ["-i", 112, "-O", 112, "-k", 3, "-s", 1],
    ["-i", 224, "-O", 55, "-k", 11, "-s", 4],
    ["-i", 225, "-O", 113, "-k", "3,5", "-s", 2],
    ["-i", 224, "-O", 14, "-k", 16, "-s", 16],
    ["-i", 64, "-O", 32, "-d", "1-3", "-k", 3, "-s", 2],
    ["-i", 224, "-O", 112, "-k", 3, "-s", 2, "-c", "tensorflow"],
    ["-i", 56, "-O", 28, "--kind", "pool", "-k", 3, "-s", 2],
    ["-i", 112, "-O", 56, "--kind", "pool", "-k", 3, "-s", 2, "-c", "caffe"],
    ["-i", 13, "-O", 13, "--kind", "pool", "-k", 2, "-s", 1, "-c", "darknet"],
    ["-i", 112, "-O", 224, "--kind", "tconv", "-k", 4, "-s", 2],
])
def test_solve_round_trips_through_conv(args):
    d = data("solve", *args, "--limit", 0)
    (answer,) = d["answers"]
    assert answer["solutions"], answer
    for solution in answer["solutions"][:12]:
        confirmed = confirm(solution)
        assert confirmed["output"] == [answer["output"]] * 2
        assert confirmed["clean"] == (not solution["loses_pixels"])
        assert formula_value(solution["formula"]) == answer["output"]


def test_solve_ranks_symmetric_then_exact_then_lossy():
    (answer,) = data("solve", "-i", 224, "-O", 112, "-k", 3, "-s", 2)["answers"]
    ranked = [(s["padding"], s["exact"], s["loses_pixels"]) for s in answer["solutions"]]
    assert ranked[0] == ([1, 1], False, False)          # PyTorch's usual choice first
    assert ([0, 1], True, False) in ranked[1:3]           # TF SAME's split: an exact fit
    assert ranked[-1][2] is True                          # (2, 0) drops the last real row


def test_solve_alexnet_224_no_symmetric_exact_fit():
    # 213 + 2P is odd: no symmetric padding fits exactly; a total of 3 split 1/2 does
    (answer,) = data("solve", "-i", 224, "-O", 55, "-k", 11, "-s", 4, "--limit", 0)["answers"]
    exact = [s["padding"] for s in answer["solutions"] if s["exact"]]
    assert exact and all(sum(p) == 3 and p[0] != p[1] for p in exact)
    assert [1, 2] in exact
    assert answer["solutions"][0]["padding"] == [2, 2]  # torchvision's AlexNet: padding 2


def test_solve_what_padding_keeps_112():
    (answer,) = data("solve", "-i", 112, "-O", 112, "-k", 3, "-s", 1)["answers"]
    first = answer["solutions"][0]
    assert first["padding"] == [1, 1] and first["named_padding"] == "same" and first["exact"]


def test_solve_nothing_fits_says_so_exit_1():
    result = cli("solve", "-i", 224, "-O", 100, "-k", 3, "-s", 2)
    assert result.exit_code == 1
    assert "nothing gives 100 from 224" in text(result)
    assert "111 to 113" in text(result) and "inputs 199 to 200" in text(result)


@pytest.mark.parametrize("i,k,s,p", [(224, 3, 2, 1), (225, 3, 2, 1), (224, 4, 2, 1),
                                     (227, 11, 4, 0), (572, 2, 2, 0), (6, 3, 2, 1)])
def test_solve_invert_gives_relationship_14(i, k, s, p):
    (answer,) = data("solve", "--invert", "-i", i, "-k", k, "-s", s, "-p", p)["answers"]
    first = answer["solutions"][0]
    a = (i + 2 * p - k) % s
    assert first["aligned"] and first["padding"] == [p, p] and first["output_padding"] == a
    assert answer["output"] == i
    back = confirm(first)
    assert back["output"] == [i, i]
    assert f"mod {s} = {a}" in back["axes"][0]["inverse"]


@settings(max_examples=40, deadline=None)
@given(i=st.integers(8, 400), k=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3))
def test_solve_finds_every_conv_it_is_shown(i, k, s, p):
    from convcalc.conventions import Axis, outcome
    from convcalc.solve import Problem, solve
    if p > k - 1:
        return
    o = outcome("conv", "torch", Axis(i, k, s, 1, (p, p))).output
    if o <= 0:
        return
    answer = solve(Problem("conv", i, o, kernels=(k,), strides=(s,)))
    assert any(sol.pads == (p, p) for sol in answer.solutions)
    for sol in answer.solutions:
        assert outcome("conv", "torch", sol.axis).output == o


@settings(max_examples=80, deadline=None)
@given(i=st.integers(1, 120), k=st.integers(1, 7), s=st.integers(1, 5), pb=st.integers(0, 4),
       pa=st.integers(0, 4), d=st.integers(1, 3))
def test_the_calculator_and_the_conv2d_kind_agree(i, k, s, pb, pa, d):
    """What `convcalc conv` says of one layer is what `convcalc check` says of it in a spec:
    the same output and the same fit findings at the same severities."""
    from convcalc.conventions import Axis
    from convcalc.layers.base import LayerError
    from convcalc.single_layer import Query, _layer, evaluate
    result = evaluate(Query("conv", (Axis(i, k, s, d, (pb, pa)),) * 2))
    layer = _layer("conv2d", out_channels=1, kernel_size=(k, k), stride=(s, s),
                   padding=((pb, pa), (pb, pa)), dilation=(d, d))
    try:
        inference = layer.infer([(1, i, i)], {})
    except LayerError as err:
        assert not result.positive and err.diagnostic.code == "non-positive-output"
        return
    assert result.output == inference.shape[1:]
    assert ([(x.code, x.severity, x.message) for x in result.diagnostics]
            == [(x.code, x.severity, x.message) for x in inference.diagnostics])


VALUES = st.sampled_from(["1", "2", "3", "0", "3x3", "1,2", "0:1", "2:0", "same", "valid",
                          "same_lower", "1-3", "any", "7", "16", "x", "-1", "3x3x3", "[[0,1]]"])


@settings(max_examples=150, deadline=None)
@given(command=st.sampled_from(["conv", "pool", "tconv", "solve"]),
       convention=st.sampled_from(["torch", "tensorflow", "caffe", "onnx", "darknet"]),
       size=st.sampled_from(["1", "5", "13", "224", "3x32x32", "8x9", "0"]),
       options=st.lists(st.tuples(st.sampled_from(["--kernel", "--stride", "--padding",
                                                   "--dilation", "--output-padding"]), VALUES),
                        max_size=4, unique_by=lambda t: t[0]),
       flags=st.lists(st.sampled_from(["--compare", "--ceil-mode", "--invert"]), max_size=2,
                      unique=True),
       as_json=st.booleans())
def test_no_traceback_whatever_the_options(command, convention, size, options, flags, as_json):
    args = [command, "--input", size, "--convention", convention]
    if command == "solve":
        args += ["--output", "4"]
    for name, value in options:
        if (name == "--output-padding" and command == "conv") or (
                name == "--output-padding" and command == "pool"):
            continue
        args += [name, value]
    if not any(name == "--kernel" for name, _ in options) and command != "solve":
        args += ["--kernel", "3"]
    for flag in flags:
        if (flag == "--compare" and command != "solve") or (
                flag == "--ceil-mode" and command in ("pool", "solve")) or (
                flag == "--invert" and command == "solve"):
            args.append(flag)
    if as_json:
        args += ["--format", "json"]
    result = RUNNER.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.exception)
    assert result.exit_code in (0, 1, 2), (args, result.output)
    if as_json and result.exit_code in (0, 1):
        json.loads(result.stdout)


def test_three_sizes_are_a_3d_input():
    # the issue's form: --input 16x224x224 is depth x height x width
    d = data("conv", "-i", "16x224x224", "-k", 3, "-p", 1)
    assert d["output"] == [16, 224, 224] and d["channels"] is None


# -- the review's findings: every fit described, wording that follows the real fit ----------

def windows_oracle(i: int, k: int, s: int, pb: int, pa: int, o: int, d: int = 1) -> dict:
    """A loop over the taps j*s + t*d (j < o, t < k) of the padded axis (rows pb .. pb+i-1
    are real): the real rows after the last tap, the real rows before it that no tap reads
    (between windows, or in a dilation's holes), the padding rows after the last tap (the
    ones a window could have used), and how far the last window hangs past the padded axis."""
    read = {j * s + t * d for j in range(o) for t in range(k)}
    last = (o - 1) * s + d * (k - 1)
    real = range(pb, pb + i)
    return {"tail": sum(1 for x in real if x not in read and x > last),
            "between": sum(1 for x in real if x not in read and x < last),
            "padding": sum(1 for x in range(pb + i, pb + i + pa) if x > last),
            "overhang": max(0, last + 1 - (pb + i + pa))}


def check_fit_words(fit: str, truth: dict) -> None:
    """The solve table's fit column says exactly what the loop oracle counts."""
    assert fit, "every row says what the setting does"
    said = {"tail": re.search(r"drops the last (\d+) input row", fit),
            "between": re.search(r"skips (\d+) input rows? (between windows|in the dil)", fit),
            "padding": re.search(r"(\d+) padding rows? never read", fit),
            "overhang": re.search(r"hangs (\d+) rows? past the (padded )?input", fit)}
    for key, match in said.items():
        assert (int(match.group(1)) if match else 0) == truth[key], (key, fit, truth)
    assert ("exact fit" in fit) == (not any(truth.values())), (fit, truth)


@pytest.mark.parametrize("args", [
    ["-i", 8, "-O", 4, "--kind", "pool"],
    ["-i", 8, "-O", 3, "--kind", "pool", "-k", 2, "-s", 3],
    ["-i", 5, "-O", 3, "--kind", "pool", "--ceil-mode", "-k", "1-3"],
    ["-i", 112, "-O", 56, "--kind", "pool", "-k", 3, "-s", 2, "-c", "caffe"],
    ["-i", 224, "-O", 112, "-k", "1-3", "-s", 2],
    ["-i", 57, "-O", 29, "-k", 1, "-s", 2],
    ["-i", 32, "-O", 8, "-k", 3, "-s", "3-4", "-d", "1-3"],
])
def test_solve_every_row_says_what_it_reads(args):
    (answer,) = data("solve", *args, "--limit", 0)["answers"]
    assert answer["solutions"]
    for s in answer["solutions"]:
        pb, pa = s["padding"]
        truth = windows_oracle(answer["input"], s["kernel"], s["stride"], pb, pa,
                               answer["output"], s["dilation"])
        check_fit_words(s["fit"], truth)
        # a 1-wide window's skips are an info (ResNet's projection shortcuts), not a loss
        if s["kernel"] == 1 and (truth["tail"] or truth["between"]):
            assert s["fit"].startswith("1-wide subsampling") and not s["loses_pixels"]


def test_solve_pool_kernel_1_stride_2_says_it_skips_half_the_rows():
    # 8 rows, windows at 0, 2, 4, 6 (o = floor((8 - 1) / 2) + 1 = 4): rows 1, 3, 5 lie
    # between windows and row 7 after the last one
    (answer,) = data("solve", "-i", 8, "-O", 4, "--kind", "pool", "--limit", 0)["answers"]
    (s,) = [s for s in answer["solutions"] if (s["kernel"], s["stride"]) == (1, 2)]
    assert "skips 3 input rows between windows" in s["fit"]
    assert "drops the last 1 input row" in s["fit"]
    table = text(cli("solve", "-i", 8, "-O", 4, "--kind", "pool", "-k", 1))
    assert "skips 3 input rows between windows" in table


def test_solve_ranks_settings_that_read_every_row_before_a_subsampling():
    (answer,) = data("solve", "-i", 8, "-O", 4, "--kind", "pool", "-k", "1-3", "-s", 2,
                     "--limit", 0)["answers"]
    ranked = [windows_oracle(8, s["kernel"], 2, *s["padding"], 4) for s in answer["solutions"]]
    reads_all = [not (r["tail"] or r["between"]) for r in ranked]
    lossless = [not s["loses_pixels"] for s in answer["solutions"]]
    first_unread = reads_all.index(False)
    assert all(reads_all[:first_unread]) and not any(reads_all[first_unread:])
    assert lossless[first_unread]  # the 1-wide subsampling (an info) comes before the losses
    # transposed convs: an even overlap (k a multiple of s) before a checkerboard
    (answer,) = data("solve", "-i", 112, "-O", 224, "--kind", "tconv", "-k", "3-4", "-s", 2,
                     "--limit", 0)["answers"]
    kernels = [s["kernel"] for s in answer["solutions"]]
    assert kernels == sorted(kernels, key=lambda k: k % 2 != 0)


@pytest.mark.parametrize("i,o,k,s", [(112, 224, 4, 2), (112, 224, 3, 2), (7, 15, 3, 2),
                                     (10, 12, 3, 1), (16, 64, 8, 4)])
def test_solve_tconv_rows_say_which_conv_they_undo(i, o, k, s):
    (answer,) = data("solve", "-i", i, "-O", o, "--kind", "tconv", "-k", k, "-s", s,
                     "--limit", 0)["answers"]
    assert answer["solutions"]
    for sol in answer["solutions"]:
        pb, pa = sol["padding"]
        # the conv with the same numbers on the tconv's output gives back its input
        back = math.floor((o + pb + pa - k) / s) + 1
        assert back == i
        assert sol["fit"].startswith(f"undoes conv {o} -> {i}"), sol["fit"]
        uneven = s > 1 and k % s != 0  # Odena et al. 2016: k not a multiple of s
        assert ("uneven overlap (checkerboard)" in sol["fit"]) == uneven
        assert sol["checkerboard"] == uneven
    result = text(cli("solve", "-i", i, "-O", o, "--kind", "tconv", "-k", k, "-s", s))
    assert result.startswith(f"solve tconv, PyTorch rules: {i} -> {o}")
    assert "conv_transpose" not in result


def test_solve_invert_rows_say_the_checkerboard_too():
    (answer,) = data("solve", "--invert", "-i", 224, "-k", 3, "-s", 2, "-p", 1)["answers"]
    assert all("checkerboard" in s["fit"] for s in answer["solutions"])  # 3 % 2 != 0
    (answer,) = data("solve", "--invert", "-i", 224, "-k", 4, "-s", 2, "-p", 1)["answers"]
    assert not any("checkerboard" in s["fit"] for s in answer["solutions"])  # 4 % 2 == 0


def verdict(result) -> str:
    return result.stdout.rstrip("\n").splitlines()[-1]


def test_ceil_mode_verdict_says_the_last_window_hangs_past_the_input():
    # o = ceil((5 - 2) / 2) + 1 = 3 windows at 0, 2, 4; the last reads rows 4 and 5 of a
    # 5-row input (rows 0..4): 1 row past the input, and there is no padding at all
    result = cli("pool", "--input", 5, "--kernel", 2, "--stride", 2, "--ceil-mode")
    assert result.exit_code == 0
    assert verdict(result) == ("ok: every input pixel is read (rounding up, the last window "
                               "hangs 1 row past the input)")
    assert "padding" not in verdict(result) and "padded" not in text(result)


def test_ceil_mode_that_clips_still_reports_the_rows_it_drops():
    # PyTorch: ceil((4 - 2) / 5) + 1 = 2 windows, the second (at 5 >= 4) clipped: 1 window
    # reading rows 0 and 1 of 4; rows 2 and 3 are never read
    result = cli("pool", "-i", 4, "-k", 2, "-s", 5, "--ceil-mode", "--ndim", 1)
    assert result.exit_code == 1 and "the last 2 input positions" in text(result)
    torch = pytest.importorskip("torch")
    assert torch.nn.MaxPool1d(2, 5, ceil_mode=True)(torch.zeros(1, 1, 4)).shape[-1] == 1


def test_strided_1x1_pool_verdict_is_a_subsampling_not_every_pixel():
    # windows at 0, 2, 4, 6 of 8 rows: 4 rows read, 4 never read
    result = cli("pool", "-i", 8, "-k", 1, "-s", 2)
    assert result.exit_code == 0
    assert "every input pixel is read" not in verdict(result)
    assert "4 of 8 input rows are never read" in verdict(result)


@settings(max_examples=120, deadline=None)
@given(i=st.integers(1, 40), k=st.integers(1, 5), s=st.integers(1, 6), ceil=st.booleans(),
       data_=st.data())
def test_pool_verdict_follows_the_windows(i, k, s, ceil, data_):
    torch = pytest.importorskip("torch")
    p = data_.draw(st.integers(0, k // 2))
    if i + 2 * p < k:
        return
    o = torch.nn.MaxPool1d(k, s, p, ceil_mode=ceil)(torch.zeros(1, 1, i)).shape[-1]
    truth = windows_oracle(i, k, s, p, p, o)
    args = ["pool", "-i", i, "-k", k, "-s", s, "-p", p, "--ndim", 1]
    result = cli(*args, *(["--ceil-mode"] if ceil else []))
    last = verdict(result)
    unread = truth["tail"] + truth["between"]
    if not unread:
        assert result.exit_code == 0 and last.startswith("ok: every input pixel is read"), last
    elif k == 1:
        assert result.exit_code == 0 and f"{unread} of {i} input positions" in last, last
    else:
        assert result.exit_code == 1 and last.startswith("DROPS PIXELS"), last
        return
    hang = re.search(r"hangs (\d+) positions? past the (padded )?input", last)
    assert (int(hang.group(1)) if hang else 0) == truth["overhang"], last
    if hang:
        assert bool(hang.group(2)) == (p > 0), last
    pad = re.search(r"(\d+) padding positions? never read", last)
    assert (int(pad.group(1)) if pad else 0) == (truth["padding"] if not unread else 0), last


# -- help at 80 columns ----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["conv", "pool", "tconv", "solve", "sizes"])
def test_help_reads_at_80_columns(command):
    result = RUNNER.invoke(app, [command, "--help"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout  # nothing cut off
    words = set(re.split(r"[\s│|\[\],]+", result.stdout))
    if command != "sizes":  # every convention's name whole, not "caff" + "e"
        assert {"torch", "tensorflow", "caffe", "onnx", "darknet"} <= words
    if command == "solve":
        assert {"--invert", "--input", "--kernel", "--stride", "--padding"} <= words
    flat = " ".join(result.stdout.replace("│", " ").split())
    if command == "tconv":  # a transposed conv's own paddings, not the pools'
        assert "maxpool" not in flat and "same_upper" not in flat
        assert "same (Keras, ONNX, Darknet)" in flat
    if command == "pool":
        assert "Darknet's maxpool" in flat
    if command == "sizes":
        assert "--list" in words and "also print every clean size" in flat


# -- docs/calc.md: every pasted command prints what is pasted -------------------------------

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "calc.md"


def doc_examples() -> list[tuple[str, list[str], int]]:
    """(command, the output lines pasted under it, the exit status the doc says) for every
    ```-block of docs/calc.md that starts with `$ convcalc`."""
    found = []
    blocks = re.finditer(r"```\n\$ (convcalc [^\n]+)\n(.*?)```\n(\(exit (\d)\))?",
                         DOC.read_text(encoding="utf-8"), re.S)
    for match in blocks:
        found.append((match.group(1), match.group(2).splitlines(),
                      int(match.group(4) or 0)))
    return found


@pytest.mark.parametrize("command,pasted,status", doc_examples(),
                         ids=[c for c, _, _ in doc_examples()])
def test_docs_calc_md_output_is_what_the_tool_prints(command, pasted, status, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = RUNNER.invoke(app, command.split()[1:], env={"NO_COLOR": "1"})
    assert result.exit_code == status, result.output
    assert [line.rstrip() for line in result.stdout.splitlines()] == pasted
