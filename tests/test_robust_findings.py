"""Issue 8's findings on layer rules and hints, each against PyTorch where it is the oracle."""

from __future__ import annotations

import textwrap

import pytest

from convcalc.analysis import analyze_text


def diagnostics(text: str):
    report = analyze_text(textwrap.dedent(text).lstrip("\n"), "net.yaml")
    return report, [(d.severity.value if hasattr(d.severity, "value") else d.severity, d.code, d)
                    for d in report.diagnostics]


def errors(text: str):
    return [d for sev, _code, d in diagnostics(text)[1] if sev == "error"]


# -- groupnorm with one value per group --------------------------------------------------------

@pytest.mark.parametrize("shape,groups", [([4, 1, 1], 4), ([4, 1], 4), ([6, 1, 1, 1], 6),
                                          ([4, 1, 1], 2), ([4, 2, 1], 4), ([4, 1, 1], 1)])
def test_groupnorm_one_value_per_group_follows_torch(shape, groups):
    torch = pytest.importorskip("torch")
    try:
        torch.nn.GroupNorm(groups, shape[0])(torch.zeros(1, *shape))
        torch_ok = True
    except (RuntimeError, ValueError):
        torch_ok = False
    found = errors(f"input: {shape}\nlayers:\n  - {{type: groupnorm, num_groups: {groups}}}\n")
    assert (not found) == torch_ok, found
    if found:
        assert found[0].code == "invalid-value" and "one value" in found[0].message


# -- adaptive pools: null keeps an axis in 2-D and 3-D only ------------------------------------

@pytest.mark.parametrize("kind,shape,size", [
    ("adaptive_avgpool1d", [4, 10], [None]), ("adaptive_maxpool1d", [4, 10], [None]),
    ("adaptive_avgpool2d", [4, 10, 9], [None, 3]), ("adaptive_maxpool3d", [4, 10, 9, 3], [None, 2, None]),
])
def test_adaptive_null_follows_torch(kind, shape, size):
    torch = pytest.importorskip("torch")
    ndim = len(shape) - 1
    module = getattr(torch.nn, f"Adaptive{'Avg' if 'avg' in kind else 'Max'}Pool{ndim}d")
    try:
        expected = tuple(module(tuple(size))(torch.zeros(1, *shape)).shape[1:])
    except (RuntimeError, TypeError, ValueError):
        expected = None
    yaml_size = "[" + ", ".join("null" if v is None else str(v) for v in size) + "]"
    report, found = diagnostics(f"input: {shape}\nlayers:\n  - {{type: {kind}, output_size: {yaml_size}}}\n")
    got = None if any(sev == "error" for sev, _c, _d in found) else tuple(report.layers[-1].output_shape)
    assert got == expected


def test_upsample_size_refuses_null():
    found = errors("input: [4, 10, 9]\nlayers:\n  - {type: upsample, size: [null, 3]}\n")
    assert found and found[0].code == "invalid-value"


# -- linear straight on a map: PyTorch's semantics, with a hint --------------------------------

def test_linear_on_a_map_warns_and_keeps_torch_semantics():
    report, found = diagnostics("""
        input: [3, 32, 32]
        layers:
          - {type: linear, out_features: 10}
        """)
    assert tuple(report.layers[-1].output_shape) == (3, 32, 10)  # nn.Linear on the last axis
    (hit,) = [d for _s, code, d in found if code == "linear-on-map"]
    assert hit.severity.value == "warning" and "flatten" in hit.hint and hit.line == 3


@pytest.mark.parametrize("layers", [
    ["flatten", "{type: linear, out_features: 10}"],
    ["{type: global_avgpool}", "{type: linear, out_features: 10}"],
    ["{type: permute, dims: [0, 2, 3, 1]}", "{type: linear, out_features: 12}"],  # channels-last MLP
])
def test_linear_after_flatten_pool_or_permute_is_quiet(layers):
    text = "input: [3, 8, 8]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)
    _report, found = diagnostics(text)
    assert "linear-on-map" not in [code for _s, code, _d in found]


# -- a merge's hint covers every axis that differs ---------------------------------------------

def test_add_hint_covers_channels_and_sizes():
    (found,) = errors("""
        input: [3, 100, 100]
        layers:
          - {type: conv2d, name: a, out_channels: 64, kernel_size: 4, stride: 4}
          - {type: conv2d, name: b, inputs: input, out_channels: 32, kernel_size: 4, stride: 2}
          - {type: add, inputs: [a, b]}
        """)
    assert found.code == "channel-mismatch"  # the code users' CI matches on is unchanged
    assert "channels differ (32 vs 64)" in found.message and "height and width differ" in found.message
    assert "1x1 conv" in found.hint and "crop" in found.hint


def test_add_hint_for_sizes_alone_stays_a_shape_mismatch():
    (found,) = errors("""
        input: [3, 100, 100]
        layers:
          - {type: conv2d, name: a, out_channels: 8, kernel_size: 4, stride: 4}
          - {type: conv2d, name: b, inputs: input, out_channels: 8, kernel_size: 4, stride: 2}
          - {type: add, inputs: [a, b]}
        """)
    assert found.code == "shape-mismatch" and "1x1 conv" not in found.hint and "crop" in found.hint


# -- non-positive sizes from a block's arguments -----------------------------------------------

@pytest.mark.parametrize("value", ["0", "-3", "'${2 - 5}'"])
def test_block_argument_non_positive_is_a_positioned_error(value):
    found = errors(f"""
        input: [3, 16, 16]
        blocks:
          b:
            args: {{c: 8}}
            layers:
              - {{type: conv2d, name: conv, out_channels: "${{c}}", kernel_size: 3}}
        layers:
          - {{type: b, name: blk, c: {value}}}
        """)
    assert found and found[0].code == "invalid-value" and found[0].line == 6
    assert found[0].layer == "blk.conv" and "out_channels" in found[0].message
