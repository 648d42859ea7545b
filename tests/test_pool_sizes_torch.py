"""Pools on small inputs, against PyTorch: every (input, kernel, stride, padding, ceil_mode)
that PyTorch accepts gives PyTorch's output size, and every one it refuses is an error
(issue 8: avgpool3d accepted an unpadded input smaller than its kernel, which PyTorch refuses:
its 3-D average pool checks the input before padding, unlike the 1-D and 2-D ones)."""

from __future__ import annotations

import itertools

import pytest

from convcalc.analysis import analyze_text

torch = pytest.importorskip("torch")
F = torch.nn.functional

FUNCS = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
         ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}
GRID = [(i, k, s, p, c) for i, k, s, p, c in itertools.product((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3),
                                                               (0, 1, 2), (False, True))
        if p <= k // 2]


def torch_shape(kind, ndim, i, k, s, p, ceil):
    x = torch.zeros((1, 2) + (i,) * ndim)
    try:
        return tuple(FUNCS[kind, ndim](x, k, s, p, ceil_mode=ceil).shape[1:])
    except (RuntimeError, ValueError):
        return None


@pytest.mark.parametrize("kind,ndim", sorted(FUNCS))
def test_pool_output_or_refusal_matches_torch(kind, ndim):
    wrong = []
    for i, k, s, p, ceil in GRID:
        expected = torch_shape(kind, ndim, i, k, s, p, ceil)
        text = (f"input: {[2] + [i] * ndim}\nlayers:\n  - {{type: {kind}pool{ndim}d, kernel_size: {k}, "
                f"stride: {s}, padding: {p}, ceil_mode: {str(ceil).lower()}}}\n")
        report = analyze_text(text, "pool.yaml")
        errors = [d for d in report.diagnostics if d.severity == "error"]
        got = None if errors else tuple(report.layers[-1].output_shape)
        if got != expected:
            wrong.append(((i, k, s, p, ceil), expected, got, [d.message for d in errors]))
    assert not wrong, f"{len(wrong)} of {len(GRID)} differ, e.g. {wrong[:3]}"
