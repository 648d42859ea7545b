"""Every diagnostic code, triggered by a minimal bad spec, at the right line and column.

Line and column are counted by hand from the spec texts below (1-based), so a wrong position
fails the test. Seeds' examples: AlexNet at 224 is flagged with a fix, 227 is clean; W=10,
F=3, S=2 is flagged; W=5, F=3, P=1, S=3 is flagged (only padding dropped: info)."""

import textwrap

import pytest

from convcalc.analysis import analyze_text
from convcalc.diagnostics import CODES, Severity


def check(text: str):
    return analyze_text(textwrap.dedent(text).lstrip("\n"), "net.yaml")


def only(report, code):
    found = [d for d in report.diagnostics if d.code == code]
    assert found, f"no {code} in {[d.format() for d in report.diagnostics]}"
    return found[0]


CASES = {
    # code: (spec, severity, line, column, words the message must contain)
    "yaml-syntax": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, out_channels: 8 kernel_size: 3}
        """, "error", 3, 47, ["did not find expected"]),  # PyYAML stops at the second ':'
    "invalid-spec": ("""
        input: [3, 32, 32]
        layers:
          - 42
        """, "error", 3, 5, ["type"]),
    "unknown-layer-type": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, out_channels: 8, kernel_size: 3}
          - {type: batchnorm2D}
        """, "error", 4, 5, ["batchnorm2D"]),
    "unknown-parameter": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, out_channels: 8, kernel_sise: 3}
        """, "error", 3, 37, ["kernel_sise"]),
    "invalid-value": ("""
        input: [3, 32, 32]
        layers:
          - type: conv2d
            out_channels: 8
            kernel_size: [3, 3, 3]
        """, "error", 5, 18, ["kernel_size"]),
    "unknown-reference": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}
          - {type: add, inputs: [a, b]}
        """, "error", 4, 29, ["'b'"]),
    "duplicate-name": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}
          - {type: relu, name: a}
        """, "error", 4, 5, ["'a'"]),
    "cycle": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3, inputs: [b]}
          - {type: relu, name: b, inputs: [a]}
        """, "error", 3, 5, ["a -> b -> a"]),
    "missing-input": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}
          - {type: add, name: s}
        """, "error", 4, 5, ["at least 2"]),
    "rank-mismatch": ("""
        input: [3, 32]
        layers:
          - {type: conv2d, out_channels: 8, kernel_size: 3}
        """, "error", 3, 5, ["[3, 32]"]),
    "non-positive-output": ("""
        input: [3, 8, 8]
        layers:
          - {type: conv2d, out_channels: 8, kernel_size: 3}
          - {type: conv2d, name: small, out_channels: 8, kernel_size: 7}
        """, "error", 4, 5, ["6 + 0 + 0 = 6", "7"]),
    "channel-mismatch": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3, padding: 1}
          - {type: conv2d, name: b, out_channels: 16, kernel_size: 3, padding: 1}
          - {type: add, name: sum, inputs: [a, b]}
        """, "error", 5, 5, ["channels differ"]),
    "shape-mismatch": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3}
          - {type: conv2d, name: b, out_channels: 8, kernel_size: 3, padding: 1, inputs: [input]}
          - {type: concat, name: cat, inputs: [a, b]}
        """, "error", 5, 5, ["differ by 2", "30 vs 32"]),
    "expectation-failed": ("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, out_channels: 8, kernel_size: 3,
             expect: {shape: [8, 32, 32]}}
        """, "error", 4, 14, ["[8, 32, 32]", "[8, 30, 30]"]),
    "invalid-stride": ("""
        input: [3, 10, 10]
        layers:
          - {type: conv2d, out_channels: 8, kernel_size: 3, stride: 2}
        """, "warning", 3, 5, ["(10 + 0 + 0 - 3) = 7", "4.5 unrounded", "1 input row"]),
    "skipped-input": ("""
        input: [3, 32, 32]
        layers:
          - {type: maxpool2d, kernel_size: 2, stride: 3}
        """, "warning", 3, 5, ["stride 3 > effective kernel 2", "10 of 32"]),
    "checkerboard": ("""
        input: [8, 16, 16]
        layers:
          - {type: conv_transpose2d, out_channels: 4, kernel_size: 3, stride: 2}
        """, "warning", 3, 5, ["kernel 3", "stride 2"]),
    "linear-on-map": ("""
        input: [3, 32, 32]
        layers:
          - {type: linear, out_features: 10}
        """, "warning", 3, 5, ["last axis (32 wide)", "3x32x10"]),
    "same-padding": ("""
        input: [3, 224, 224]
        layers:
          - {type: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: same}
        """, "info", 3, 5, ["[0, 1]"]),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_code_is_reported_at_its_position(code):
    text, severity, line, column, words = CASES[code]
    d = only(check(text), code)
    assert (d.severity.value, d.line, d.column, d.file) == (severity, line, column, "net.yaml")
    for word in words:
        assert word in d.message, d.message
    assert d.format().startswith(f"net.yaml:{line}:{column}: {severity}[{code}]")


def test_every_registered_code_is_tested_somewhere():
    # the receptive-field codes are in tests/test_receptive.py, expectation-skipped in
    # tests/test_spec.py and tests/test_cli_check.py
    untested = set(CODES) - set(CASES) - {"misaligned-merge", "rf-exceeds-input",
                                          "expectation-skipped"}
    assert not untested


def test_did_you_mean():
    report = check(CASES["unknown-parameter"][0])
    assert only(report, "unknown-parameter").hint == "did you mean 'kernel_size'?"
    assert only(check(CASES["unknown-layer-type"][0]), "unknown-layer-type").hint == \
        "did you mean 'batchnorm2d'?"


def test_alexnet_224_is_flagged_with_a_fix_and_227_is_clean():
    spec = """
        input: [3, {size}, {size}]
        layers:
          - {{type: conv2d, name: conv1, out_channels: 96, kernel_size: 11, stride: 4}}
        """
    d = only(check(spec.format(size=224)), "invalid-stride")
    assert d.severity == Severity.WARNING
    assert "54.25 unrounded" in d.message and "1 input row" in d.message
    assert "input 227" in d.hint and "padding [1, 2]" in d.hint
    clean = check(spec.format(size=227))
    assert clean.diagnostics == [] and clean.output_shape == (96, 55, 55)
    assert clean.layers[0].params == 34_944  # seed 002: 96*11*11*3 weights + 96 biases


def test_seed_one_dimensional_stride_three_drops_only_padding():
    # W=5, F=3, P=1, S=3: (5 - 3 + 2) = 4 is not divisible by 3; the dropped row is padding
    d = only(check("""
        input: [1, 5]
        layers:
          - {type: conv1d, out_channels: 1, kernel_size: 3, padding: 1, stride: 3}
        """), "invalid-stride")
    assert d.severity == Severity.INFO and "padding" in d.message


def test_resnet_stem_is_info_not_warning():
    report = check("""
        input: [3, 224, 224]
        layers:
          - {type: conv2d, out_channels: 64, kernel_size: 7, stride: 2, padding: 3}
        """)
    assert [d.severity for d in report.diagnostics] == [Severity.INFO]


def test_one_bad_layer_does_not_hide_the_others_nor_cascade():
    report = check("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 3, groups: 2}
          - {type: relu, name: r}
          - {type: conv2d, name: b, out_channels: 8, kernel_size: 3, bogus: 1, inputs: [input]}
          - {type: conv2d, name: c, out_channels: 8, kernel_size: 3, inputs: [input]}
        """)
    codes = [(d.code, d.layer) for d in report.diagnostics]
    assert codes == [("channel-mismatch", "a"), ("unknown-parameter", "b")]
    shapes = {layer.name: layer.output_shape for layer in report.layers}
    assert shapes == {"a": None, "r": None, "b": None, "c": (8, 30, 30)}


def test_linear_in_features_checked():
    d = only(check("""
        input: [16, 4, 4]
        layers:
          - flatten
          - {type: linear, in_features: 128, out_features: 10}
        """), "channel-mismatch")
    assert "256" in d.message and d.line == 4


def test_block_argument_errors_point_into_the_using_layer():
    report = check("""
        input: [3, 32, 32]
        blocks:
          unit:
            args: {channels: 8}
            layers:
              - {type: conv2d, out_channels: "${channels * 2}", kernel_size: 3}
        layers:
          - {type: unit, chanels: 4}
          - {type: unit, channels: "${d}"}
        """)
    unknown = only(report, "unknown-parameter")
    assert (unknown.line, unknown.column, unknown.hint) == (8, 18, "did you mean 'channels'?")
    bad = only(report, "invalid-value")
    assert bad.line == 9 and "'d'" in bad.message


def test_fixed_weights_are_checked_without_running():
    report = check("""
        input: [3, 32, 32]
        layers:
          - {type: conv2d, name: a, out_channels: 3, kernel_size: 3, weights: sobelx}
          - {type: conv2d, name: b, out_channels: 3, kernel_size: 3, weights: [[1, 2], [3, 4]], inputs: [input]}
          - {type: conv2d, name: c, out_channels: 3, kernel_size: 5, weights: sharpen, inputs: [input]}
          - {type: conv2d, name: d, out_channels: 1, kernel_size: [1, 2], weights: [[[[1, 2]], [[3, 4]], [[5, 6]]]], inputs: [input]}
        """)
    found = {d.layer: d for d in report.diagnostics}
    assert set(found) == {"a", "b", "c"}  # d gives the whole weight (1, 3, 1, 2): fine
    assert found["a"].hint == "did you mean 'sobel_x'?"
    assert "[2, 2]" in found["b"].message and "[5, 5]" in found["c"].message


def test_max_unpool_must_restore_the_pools_input_size():
    # PyTorch places each index as a flat position of the pool's input: 7x7 pooled by 2 is
    # 3x3, the default unpool size (3-1)*2 + 2 = 6 would scramble rows (and raise at run time)
    report = check("""
        input: [2, 7, 7]
        layers:
          - {type: maxpool2d, name: pool, kernel_size: 2}
          - {type: max_unpool2d, name: up, kernel_size: 2, indices: pool}
          - {type: max_unpool2d, name: ok, kernel_size: 2, indices: pool, output_size: [7, 7], inputs: [pool]}
        """)
    d = only(report, "shape-mismatch")
    assert (d.layer, d.line, d.hint) == ("up", 4, "set output_size: [7, 7]")
    assert report.layers[2].output_shape == (2, 7, 7)


def test_a_misspelt_required_parameter_is_one_finding_and_block_repeats_are_folded():
    report = check("""
        input: [3, 32, 32]
        blocks:
          unit:
            layers:
              - {type: conv2d, out_chanels: 8, kernel_size: 3}
        layers:
          - {type: unit, name: u, repeat: 3}
          - {type: add, inputs: [inputt, u]}
        """)
    found = [(d.code, d.line) for d in report.diagnostics]
    assert found == [("unknown-parameter", 5), ("unknown-reference", 8)]
    assert report.diagnostics[0].message.endswith("(also in 2 more instances of this block)")
    assert report.diagnostics[1].hint == "did you mean 'input'?"


def test_ceil_mode_pools_are_judged_by_their_real_windows():
    # k=2, s=5 on 4 rows: PyTorch gives 1 window even with ceil_mode, so rows 2 and 3 are
    # never read; k=3, s=2 with ceil_mode: the second window hangs 1 row past the input and
    # every row is read
    report = check("""
        input: [1, 4, 4]
        layers:
          - {type: maxpool2d, name: sparse, kernel_size: 2, stride: 5, ceil_mode: true}
          - {type: maxpool2d, name: ceil, kernel_size: 3, stride: 2, ceil_mode: true, inputs: [input]}
        """)
    assert [(d.code, d.layer, d.severity.value) for d in report.diagnostics] == [
        ("invalid-stride", "sparse", "warning")]
    assert "the last 2 input rows" in report.diagnostics[0].message
    assert report.layers[1].output_shape == (1, 2, 2)
