"""The spec format: blocks, ${...} arguments, scoped names, inputs, repeat and expect."""

import textwrap

import pytest

from convcalc.analysis import analyze_text
from convcalc.expressions import ExprError, evaluate


def check(text):
    return analyze_text(textwrap.dedent(text).lstrip("\n"), "net.yaml")


def shapes(report):
    return {layer.name: layer.output_shape for layer in report.layers}


@pytest.mark.parametrize("expr,value", [("channels * 4", 256), ("c // 2", 32), ("c % 5", 4),
                                        ("-c + 2 ** 3", -56), ("max(8, c // 16)", 8),
                                        ("(c + 1) * 2", 130), ("c / 2", 32)])
def test_expressions(expr, value):
    assert evaluate(expr, {"channels": 64, "c": 64}) == value


@pytest.mark.parametrize("expr", ["__import__('os').system('true')", "c.__class__", "open('x')",
                                  "[c for c in ()]", "lambda: 1", "c if c else 1", "2 ** 1000",
                                  "undefined + 1", "1 / 0"])
def test_expressions_that_are_refused(expr):
    with pytest.raises(ExprError):
        evaluate(expr, {"c": 64})


def test_repeated_block_names_follow_state_dict():
    report = check("""
        input: [8, 16, 16]
        blocks:
          unit:
            args: {c: 8}
            layers:
              - {type: conv2d, name: conv, out_channels: "${c}", kernel_size: 3, padding: 1}
              - relu
        layers:
          - {type: unit, name: stage, repeat: 3}
          - {type: unit, name: single, c: 4}
        """)
    assert list(shapes(report)) == ["stage.0.conv", "stage.0.relu_1", "stage.1.conv",
                                    "stage.1.relu_1", "stage.2.conv", "stage.2.relu_1",
                                    "single.conv", "single.relu_1"]
    assert report.layers[2].inputs == ["stage.0.relu_1"]
    assert report.layers[6].inputs == ["stage.2.relu_1"]  # `stage` means its last copy's output
    assert report.output_shape == (4, 16, 16)


def test_nested_blocks_and_block_inputs():
    report = check("""
        input: [4, 8, 8]
        blocks:
          inner:
            args: {c: 4}
            layers:
              - {type: conv2d, name: conv, out_channels: "${c}", kernel_size: 1}
          pair:
            args: {c: 4}
            layers:
              - {type: inner, name: a, c: "${c * 2}"}
              - {type: inner, name: b, c: "${c * 2}", inputs: [input1]}
              - {type: concat, inputs: [a, b]}
        layers:
          - {type: conv2d, name: stem, out_channels: 6, kernel_size: 1}
          - {type: pair, name: p, c: 3, inputs: [stem, input]}
        """)
    got = shapes(report)
    assert got["p.a.conv"] == (6, 8, 8) and got["p.b.conv"] == (6, 8, 8)
    assert report.layers[2].inputs == ["input"]  # input1 of p is the network input
    assert got["p.concat_2"] == (12, 8, 8) and report.ok


def test_block_that_uses_itself_is_a_cycle():
    report = check("""
        input: [4, 8, 8]
        blocks:
          loop:
            layers:
              - {type: loop}
        layers:
          - {type: loop, name: l}
        """)
    assert [d.code for d in report.diagnostics] == ["cycle"]


def test_forward_references_are_ordered():
    report = check("""
        input: [4, 8, 8]
        layers:
          - {type: add, name: sum, inputs: [a, b]}
          - {type: conv2d, name: a, out_channels: 4, kernel_size: 1, inputs: [input]}
          - {type: relu, name: b, inputs: [input]}
        """)
    assert report.ok and [l.name for l in report.layers] == ["a", "b", "sum"]


def test_expect_on_a_block_and_the_network():
    report = check("""
        input: [3, 32, 32]
        blocks:
          unit:
            layers:
              - {type: conv2d, out_channels: 8, kernel_size: 3}
        layers:
          - {type: unit, name: u, expect: {shape: [8, 30, 30]}}
          - {type: linear, out_features: 2, expect: {params: 62}}
        expect: {params: 286, macs: 208800, output: [8, 30, 2]}
        """)
    # conv: 8*3*9 + 8 = 224 params; linear over the last axis: 30*2 + 2 = 62
    assert report.ok, [d.format() for d in report.diagnostics]
    assert report.totals.macs == 8 * 30 * 30 * 27 + 8 * 30 * 60


def test_padding_forms():
    report = check("""
        input: [1, 10, 10]
        layers:
          - {type: conv2d, name: int, out_channels: 1, kernel_size: 3, padding: 1}
          - {type: conv2d, name: axes, out_channels: 1, kernel_size: 3, padding: [0, 2], inputs: [input]}
          - {type: conv2d, name: pairs, out_channels: 1, kernel_size: 3, padding: [[1, 2], [0, 3]], inputs: [input]}
          - {type: conv2d, name: valid, out_channels: 1, kernel_size: 3, padding: valid, inputs: [input]}
          - {type: conv2d, name: same, out_channels: 1, kernel_size: 4, padding: same, inputs: [input]}
          - {type: conv2d, name: same2, out_channels: 1, kernel_size: 3, stride: 2, padding: same, inputs: [input]}
        """)
    assert shapes(report) == {"int": (1, 10, 10), "axes": (1, 8, 12), "pairs": (1, 11, 11),
                              "valid": (1, 8, 8), "same": (1, 10, 10), "same2": (1, 5, 5)}


def test_bare_strings_and_automatic_names():
    report = check("""
        input: [2, 4, 4]
        layers:
          - relu
          - {type: conv2d, out_channels: 2, kernel_size: 1}
          - sigmoid
        """)
    assert [l.name for l in report.layers] == ["relu_0", "conv2d_1", "sigmoid_2"]


def test_top_level_typo_and_missing_layers():
    report = check("""
        input: [2, 4, 4]
        layer:
          - relu
        """)
    codes = [(d.code, d.line, d.column) for d in report.diagnostics]
    assert ("unknown-parameter", 2, 1) in codes and ("invalid-spec", 1, 1) in codes
    assert any(d.hint == "did you mean 'layers'?" for d in report.diagnostics)


def test_repeat_can_start_numbering_after_a_different_first_copy():
    # torchvision's layer2: a first block with a stride and a shortcut, then plain copies
    report = check("""
        input: [8, 16, 16]
        blocks:
          unit:
            args: {stride: 1}
            layers:
              - {type: conv2d, name: conv, out_channels: 8, kernel_size: 3, padding: 1, stride: "${stride}"}
        layers:
          - {type: unit, name: layer2.0, stride: 2}
          - {type: unit, name: layer2, repeat: {count: 2, start: 1}}
          - {type: relu, name: out, inputs: [layer2]}
        """)
    assert [l.name for l in report.layers] == ["layer2.0.conv", "layer2.1.conv", "layer2.2.conv",
                                               "out"]
    assert report.layers[1].inputs == ["layer2.0.conv"]
    assert report.layers[3].inputs == ["layer2.2.conv"] and report.output_shape == (8, 8, 8)


@pytest.mark.parametrize("bad", ["0", "-1", "true", "{count: 0}", "{count: 2, first: 1}",
                                 "{start: 1}", "2.5"])
def test_bad_repeat_is_reported(bad):
    report = check(f"""
        input: [8, 16, 16]
        layers:
          - {{type: relu, name: r, repeat: {bad}}}
        """)
    assert [d.code for d in report.diagnostics] == ["invalid-value"]


def test_params_expectations_still_hold_at_another_input_size():
    from convcalc.analysis import Options
    text = textwrap.dedent("""
        input: [1, 8, 8]
        layers:
          - flatten
          - {type: linear, out_features: 2, expect: {shape: [2], params: 130}}
        expect: {params: 130, macs: 128}
        """).lstrip("\n")
    same = analyze_text(text, "net.yaml", Options(input_shape=(1, 8, 8)))
    def codes(report):
        return sorted(d.code for d in report.diagnostics if d.code != "rf-exceeds-input")
    assert same.ok and codes(same) == []  # the declared size: every expectation holds
    other = analyze_text(text, "net.yaml", Options(input_shape=(1, 4, 4)))
    # 16 features: 34 params, not 130 (layer and network); shapes and MACs are not checked
    assert codes(other) == ["expectation-failed", "expectation-failed", "expectation-skipped"]


@pytest.mark.parametrize("expect", ['{shape: "8x30x30"}', "{params: abc}", "{macs: -1}",
                                    "{shape: [8, 0, 3]}", "{params: 1.5}", "[1, 2]"])
def test_malformed_expectations_are_invalid_values(expect):
    report = check(f"""
        input: [3, 32, 32]
        layers:
          - {{type: conv2d, out_channels: 8, kernel_size: 3, expect: {expect}}}
        expect: {expect}
        """)
    assert [d.code for d in report.diagnostics] == ["invalid-value", "invalid-value"]


def test_expect_on_a_block_instance_sums_its_layers():
    # as sum(p.numel() for p in model.blk.parameters()): conv 3->4 k3 = 4*3*9 + 4 = 112 params,
    # 4*8*8*27 = 6,912 MACs; a repeated 1x1 conv 4->4: 3 * (16 + 4) = 60; two copies of the
    # block on 4 channels: 2 * (4*4*9 + 4) = 296
    report = check("""
        input: [3, 8, 8]
        blocks:
          b:
            layers:
              - {type: conv2d, name: c, out_channels: 4, kernel_size: 3, padding: 1}
              - {type: relu, name: r}
        layers:
          - {type: b, name: blk, expect: {params: 112, macs: 6912, shape: [4, 8, 8]}}
          - {type: conv2d, name: rep, out_channels: 4, kernel_size: 1, repeat: 3, expect: {params: 60}}
          - {type: b, name: two, repeat: 2, expect: {params: 1}}
        """)
    found = [(d.code, d.layer, d.message) for d in report.diagnostics]
    assert found == [("expectation-failed", "two", "expected params 1, computed 296")]


def test_a_runaway_repeat_is_refused_quickly():
    report = check("""
        input: [3, 8, 8]
        layers:
          - {type: relu, repeat: 100000000}
        """)
    assert [d.code for d in report.diagnostics] == ["invalid-spec"]


def test_a_runaway_repeat_of_a_block_stops_the_expansion():
    report = check("""
        input: [3, 8, 8]
        blocks:
          b:
            layers: [relu, relu, relu, relu]
        layers:
          - {type: b, repeat: 60000}
        """)
    assert [d.code for d in report.diagnostics] == ["invalid-spec"] and report.layers == []
