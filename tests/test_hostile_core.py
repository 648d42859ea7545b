"""A hostile corpus for the arithmetic core (issue 8): each reproducer runs the command line
as a user does, in a subprocess limited to 4 GiB of address space, and must end with exit 1
or 2, exactly one error line (stderr, or one error diagnostic), no traceback, within 20 s."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 4 * 2**30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def convcalc(*args: str, cwd: Path):
    """(exit status, stdout, stderr, seconds) of `python -m convcalc ARGS`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "convcalc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def error_lines(out: str, err: str) -> list[str]:
    """The error lines: a usage error on stderr, or `error[` diagnostics of check."""
    found = [line for line in (out + "\n" + err).splitlines() if "error[" in line]
    return found or [line for line in err.splitlines() if line.strip()]


def assert_one_error(result, needle: str = "") -> str:
    status, out, err, seconds = result
    assert status in (1, 2), (status, out, err)
    assert "Traceback" not in out + err and "internal error" not in out + err, err
    lines = error_lines(out, err)
    assert len(lines) == 1, lines
    assert seconds < 20, seconds
    assert needle in lines[0], lines[0]
    return lines[0]


SPEC_CASES = {
    "min-empty": ('input: [3, 8, 8]\nblocks:\n  b:\n    args: {c: 4}\n    layers:\n'
                  '      - {type: conv2d, out_channels: "${min()}", kernel_size: 3}\n'
                  'layers:\n  - {type: b}\n', "min()"),
    "min-one": ('input: [3, 8, 8]\nblocks:\n  b:\n    args: {c: 4}\n    layers:\n'
                '      - {type: conv2d, out_channels: "${min(1)}", kernel_size: 3}\n'
                'layers:\n  - {type: b}\n', "min()"),
    "max-str": ('input: [3, 8, 8]\nblocks:\n  b:\n    args: {c: 4}\n    layers:\n'
                '      - {type: conv2d, out_channels: "${max(\'a\', 1)}", kernel_size: 3}\n'
                'layers:\n  - {type: b}\n', "max()"),
    "chained-power": ('input: [3, 8, 8]\nblocks:\n  b:\n    args: {c: 4}\n    layers:\n'
                      '      - {type: conv2d, out_channels: "${(10**64)**64}", '
                      'kernel_size: 3}\nlayers:\n  - {type: b}\n', "too large"),
    "deep-power": ('input: [3, 8, 8]\nblocks:\n  b:\n    args: {c: 4}\n    layers:\n'
                   '      - {type: conv2d, out_channels: "${(((10**64)**64)**64)**64}", '
                   'kernel_size: 3}\nlayers:\n  - {type: b}\n', "too large"),
    "null-required": ('input: [3, 8, 8]\nlayers:\n'
                      '  - {type: conv2d, out_channels: null, kernel_size: 3}\n', ":3:"),
    "tab": ('input: [3, 8, 8]\nlayers:\n\t- relu\n', "tab"),
    "groups": ('input: [1, 8, 8]\nlayers:\n'
               '  - {type: conv2d, out_channels: 5, kernel_size: 3, groups: 5}\n', "groups: 1"),
    "pad-2d": ('input: [3, 8, 8]\nlayers:\n  - {type: pad, padding: -1}\n', "one entry per"),
}


@pytest.mark.parametrize("name", SPEC_CASES)
def test_spec_reproducers(name, tmp_path):
    text, needle = SPEC_CASES[name]
    (tmp_path / "s.yaml").write_text(text)
    assert_one_error(convcalc("check", "s.yaml", cwd=tmp_path), needle)


def test_negative_channels_with_input_override(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "input: [-3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 8, kernel_size: 3}\n")
    line = assert_one_error(convcalc("check", "--input", "8x8", "s.yaml", cwd=tmp_path),
                            "positive")
    assert "s.yaml:1:" in line


def test_sizes_range_limit(tmp_path):
    spec = ROOT / "specs" / "lenet5.yaml"
    assert_one_error(convcalc("sizes", str(spec), "--range", "1..1000001", cwd=tmp_path),
                     "a million")
