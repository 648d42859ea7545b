"""A pool's padding limit is PyTorch's: padding <= kernel_size // 2, whatever the dilation
(issue 8: kernel 3, padding 2, dilation 2 passed `check` and `pool`, but PyTorch refuses it)."""

from __future__ import annotations

import itertools

import pytest
from typer.testing import CliRunner

from convcalc.analysis import analyze_text
from convcalc.cli import _register_commands, app

torch = pytest.importorskip("torch")
_register_commands()

CASES = list(itertools.product((1, 2, 3, 4, 5), (0, 1, 2, 3), (1, 2, 3)))  # kernel, pad, dilation


def torch_accepts(kernel: int, padding: int, dilation: int) -> bool:
    try:
        torch.nn.functional.max_pool2d(torch.zeros(1, 1, 24, 24), kernel, 1, padding, dilation)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("kernel,padding,dilation", CASES)
def test_check_refuses_what_torch_refuses(kernel, padding, dilation):
    text = (f"input: [1, 24, 24]\nlayers:\n  - {{type: maxpool2d, kernel_size: {kernel}, "
            f"stride: 1, padding: {padding}, dilation: {dilation}}}\n")
    report = analyze_text(text, "pool.yaml")
    refused = any(d.code == "invalid-value" for d in report.diagnostics)
    assert refused == (not torch_accepts(kernel, padding, dilation))


@pytest.mark.parametrize("kernel,padding,dilation", [(3, 2, 2), (3, 1, 2), (4, 2, 1), (2, 1, 3)])
def test_pool_command_follows_torch(kernel, padding, dilation):
    result = CliRunner().invoke(app, ["pool", "--input", "24", "--kernel", str(kernel),
                                      "--stride", "1", "--padding", str(padding),
                                      "--dilation", str(dilation)])
    refused = result.exit_code == 2  # a setting the framework rejects is a usage error
    assert refused == (not torch_accepts(kernel, padding, dilation)), result.output
