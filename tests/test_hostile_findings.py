"""Issue 8: `run --verify` judged against the scale of what a layer reads (a correct
GroupNorm -> global_avgpool passed its ~3e-8 output off as a 0.5 relative error), and the
issue's own merge reproducers (an add of [64, 25, 25] and [32, 49, 49]; a concat along a
spatial axis whose channels differ too): the hint fixes every differing axis."""

from __future__ import annotations

import numpy as np
import pytest

import convcalc
from convcalc.analysis import analyze_text
from convcalc.executor.verify import TOLERANCE

GN_POOL = """input: [8, 16, 16]
layers:
  - {type: groupnorm, num_groups: 8}
  - {type: global_avgpool}
"""


def errors(text: str):
    return [d for d in analyze_text(text, "net.yaml").diagnostics if d.severity == "error"]


@pytest.mark.parametrize("groups", [8, 4, 1])
def test_verify_passes_a_correct_network_whose_output_cancels(groups, tmp_path):
    """A per-channel GroupNorm's output has mean 0 per channel: the global average is ~1e-8,
    all rounding. Judged against the layer's input (max|x| ~ 3), it is far inside 1e-4."""
    spec = GN_POOL.replace("num_groups: 8", f"num_groups: {groups}")
    x = np.random.default_rng(1).standard_normal((8, 16, 16)).astype(np.float32)
    result = convcalc.run(spec, x, verify=True)
    worst = max(layer.error[1] for layer in result.layers if layer.error)
    assert result.verified and worst < 1e-5, worst


def test_verify_still_catches_a_wrong_average(monkeypatch):
    """The scale is the input's magnitude: an average off by 1e-3 of it is still caught."""
    from convcalc.layers.pool import GlobalAvgPool
    forward = GlobalAvgPool.forward

    def off(self, inputs, params, refs):
        return forward(self, inputs, params, refs) + 1e-3 * float(np.max(np.abs(inputs[0])))
    monkeypatch.setattr(GlobalAvgPool, "forward", off)
    x = np.random.default_rng(1).standard_normal((8, 16, 16)).astype(np.float32)
    result = convcalc.run(GN_POOL, x, verify=True)
    assert not result.verified
    assert result.layers[-1].error[1] > TOLERANCE


def test_verify_still_catches_a_conv_off_by_one_percent(monkeypatch):
    from convcalc.layers.conv import Conv
    forward = Conv.forward
    monkeypatch.setattr(Conv, "forward", lambda self, *a: forward(self, *a) * 1.01)
    spec = "input: [3, 16, 16]\nlayers:\n  - {type: conv2d, out_channels: 8, kernel_size: 3}\n"
    x = np.random.default_rng(2).random((3, 16, 16)).astype(np.float32)
    assert not convcalc.run(spec, x, verify=True).verified


MERGES = {
    # the issue's add of [64, 25, 25] and [32, 49, 49]: channels and both spatial axes
    "add": ("input: [64, 25, 25]\nlayers:\n"
            "  - {type: conv_transpose2d, name: up, out_channels: 32, kernel_size: 1, stride: 2}\n"
            "  - {type: add, inputs: [input, up]}\n"),
    "concat": ("input: [64, 25, 25]\nlayers:\n"
               "  - {type: conv2d, name: a, out_channels: 32, kernel_size: 3}\n"
               "  - {type: concat, dim: 2, inputs: [input, a]}\n"),
}


@pytest.mark.parametrize("kind", sorted(MERGES))
def test_merge_hints_cover_every_differing_axis(kind):
    (error,) = errors(MERGES[kind])
    assert "channels differ" in error.message and "width" in error.message
    assert "1x1 conv" in error.hint and "crop" in error.hint


def test_add_of_the_issue_names_channels_height_and_width():
    (error,) = errors(MERGES["add"])
    assert "[64, 25, 25], [32, 49, 49]" in error.message
    assert "height and width differ by 24 (25 vs 49)" in error.message
