"""Issue 8, answers that differed from PyTorch, beyond tests/test_pool_sizes_torch.py and
tests/test_robust_findings.py: every small case runs through PyTorch itself (the oracle), and
convcalc must accept exactly what PyTorch accepts and refuse the rest with an error.

- the single-layer `pool` refuses what avg_pool3d refuses (an unpadded input smaller than the
  kernel), as `check` does;
- GroupNorm refuses one value per group, and InstanceNorm (without running statistics) and
  BatchNorm without running statistics one value per channel, at batch 1 and at eval.
"""

from __future__ import annotations

import itertools
import warnings

import pytest

from convcalc.analysis import analyze_text
from convcalc.single_layer import Query, evaluate
from convcalc.conventions import Axis

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _outcome(text: str):
    """convcalc's answer to a one-layer spec: the output shape, or None for an error."""
    report = analyze_text(text, "case.yaml")
    errors = [d for d in report.diagnostics if d.severity == "error"]
    return None if errors else tuple(report.layers[-1].output_shape)


def _torch_shape(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return tuple(call().shape[1:])
        except (RuntimeError, ValueError, TypeError):
            return None


def test_single_layer_avg_pool3d_refuses_small_input():
    axes = (Axis(1, 2, 1, 1, (1, 1)), Axis(5, 2, 1, 1, (1, 1)), Axis(5, 2, 1, 1, (1, 1)))
    assert _torch_shape(lambda: F.avg_pool3d(torch.zeros(1, 1, 1, 5, 5), 2, 1, 1)) is None
    assert evaluate(Query("pool", axes, pool_type="avg")).unsupported
    assert evaluate(Query("pool", axes, pool_type="max")).unsupported is None


def _norm_cases():
    for channels, groups, spatial in itertools.product((1, 2, 4), (1, 2, 4),
                                                       ((1,), (2,), (1, 1), (1, 2), (1, 1, 1))):
        if channels % groups == 0:
            yield (f"groupnorm, num_groups: {groups}", torch.nn.GroupNorm(groups, channels),
                   [channels, *spatial])
    for channels, spatial, track in itertools.product((1, 3), ((1,), (2,), (1, 1), (2, 1),
                                                               (1, 1, 1)), (False, True)):
        nd, flag = len(spatial), f"track_running_stats: {str(track).lower()}"
        for name, cls in (("instancenorm", "InstanceNorm"), ("batchnorm", "BatchNorm")):
            module = getattr(torch.nn, f"{cls}{nd}d")(channels, track_running_stats=track)
            yield f"{name}{nd}d, {flag}", module, [channels, *spatial]


def test_norms_accept_and_refuse_as_torch_at_eval():
    differ = []
    for layer, module, shape in _norm_cases():
        expected = _torch_shape(lambda: module.eval()(torch.zeros(1, *shape)))
        got = _outcome(f"input: {shape}\nlayers:\n  - {{type: {layer}}}\n")
        if got != expected:
            differ.append((layer, shape, expected, got))
    assert not differ, differ
