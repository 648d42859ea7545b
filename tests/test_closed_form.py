"""Issue 8: the arithmetic is closed-form, O(1) per layer and axis (only `run` touches every
element). Each closed form is checked against the enumeration it replaces (the oracle: the
naive loops kept here), then the reproducers run at huge sizes in a subprocess that must end
within a generous hang guard and 4 GiB."""

from __future__ import annotations

import itertools
import math
import os
import resource
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from convcalc import arithmetic as ar
from convcalc.layers.base import enclosing_rf
from convcalc.solve import Problem, solve

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 4 * 2**30


def naive_holes(windows, kernel, stride, pad_before, size, dilation) -> int:
    """Real rows below the last read row that no tap j*s + t*d reads, by enumeration."""
    last_read = (windows - 1) * stride + dilation * (kernel - 1)
    read = {j * stride + t * dilation for j in range(windows) for t in range(kernel)}
    return sum(1 for x in range(pad_before, min(pad_before + size, last_read + 1))
               if x not in read)


def test_holes_of_a_dilated_kernel_match_enumeration():
    grid = itertools.product(range(1, 7), range(1, 6), range(1, 7), range(0, 3), (1, 5, 13, 40),
                             range(2, 7))
    wrong = [case for case in grid
             if ar._real_rows_in_holes(*case) != naive_holes(*case)]
    assert not wrong, wrong[:5]


def test_adaptive_reads_and_rf_match_the_windows():
    for i, o in itertools.product(range(1, 40), range(1, 40)):
        windows = [ar.adaptive_window(j, i, o) for j in range(o)]
        assert ar.adaptive_reads(i, o) == sum(end - start for start, end in windows)
        step = enclosing_rf([(start, end - 1) for start, end in windows], Fraction(i, o))
        assert ar.adaptive_rf(i, o) == (step.kernel, step.stride, step.padding), (i, o)


def _enclosing(windows, stride):
    step = enclosing_rf(windows, stride)
    return step.kernel, step.stride, step.padding


def test_sampled_rf_matches_enclosing_rf():
    """nearest floor(j*I/O), half-pixel linear and align_corners sources (upsample), and
    pixel_shuffle's floor(j/r): the closed form equals the enumerated enclosing step."""
    for i, o in itertools.product(range(1, 30), range(1, 30)):
        s = Fraction(i, o)
        first = [j * i // o for j in range(o)]
        assert ar.sampled_rf(s, Fraction(0), o, True) == _enclosing(list(zip(first, first)), s)
        src = [(j + Fraction(1, 2)) * s - Fraction(1, 2) for j in range(o)]
        assert (ar.sampled_rf(s, s / 2 - Fraction(1, 2), o, False)
                == _enclosing([(math.floor(x), math.ceil(x)) for x in src], s))
        if i > 1 and o > 1:
            step = Fraction(i - 1, o - 1)
            src = [j * step for j in range(o)]
            assert (ar.sampled_rf(step, Fraction(0), o, False)
                    == _enclosing([(math.floor(x), math.ceil(x)) for x in src], step))


def returns_within(call, seconds: float = 60.0):
    """call() in a daemon thread: its result, or a failure (not a hung suite) past `seconds`,
    a generous hang guard: the answer takes milliseconds."""
    done = []
    worker = threading.Thread(target=lambda: done.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert done, f"no answer within {seconds} s"
    return done[0]


def test_solve_with_huge_values_is_sampled_and_says_so():
    answer = returns_within(lambda: solve(Problem("conv", 1000, 10, kernels=(10**18,))))
    assert answer.sampled and answer.solutions
    best = answer.solutions[0]
    assert best.outcome.output == 10 and best.symmetric
    assert not solve(Problem("conv", 224, 112)).sampled  # small searches stay exhaustive


def test_solve_within_budget_is_exhaustive():
    """Every (p_b, p_a) the old double loop found is still found (kernel 1-16, stride 1-4)."""
    answer = solve(Problem("conv", 37, 12, strides=(1, 2, 3, 4)))
    found = {(s.axis.kernel, s.axis.stride, s.pads) for s in answer.solutions
             if not isinstance(s.axis.padding, str)}
    expected = {(k, s, (pb, pa)) for k in range(1, 17) for s in (1, 2, 3, 4)
                for pb in range(k) for pa in range(k)
                if ar.conv_output_size(37, k, s, pb, pa) == 12}
    assert found == expected


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _convcalc(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "convcalc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=20, preexec_fn=_limit_memory)


HUGE_SPECS = {
    "upsample": "input: [1, 100000000, 4]\nlayers:\n  - {type: upsample, scale_factor: 2}\n",
    "bilinear": ("input: [1, 100000000, 4]\nlayers:\n  - {type: upsample, scale_factor: 3, "
                 "mode: bilinear, align_corners: true}\n"),
    "adaptive": ("input: [1, 100000000, 4]\nlayers:\n  - {type: adaptive_avgpool2d, "
                 "output_size: 99999999}\n"),
    "dilated": ("input: [1, 100000000, 100000000]\nlayers:\n  - {type: conv2d, out_channels: 1, "
                "kernel_size: 3, dilation: 2, stride: 2}\n"),
    "pixel_shuffle": ("input: [4, 100000000, 4]\nlayers:\n"
                      "  - {type: pixel_shuffle, upscale_factor: 2}\n"),
    "split": ("input: [100000000, 4, 4]\nlayers:\n  - {type: split, split_size_or_sections: 1}\n"
              "  - {type: relu, inputs: split_0.99999999}\n"),
}


@pytest.mark.parametrize("name", sorted(HUGE_SPECS))
@pytest.mark.parametrize("command", ["check", "rf"])
def test_huge_axes_finish(name, command, tmp_path):
    (tmp_path / "net.yaml").write_text(HUGE_SPECS[name])
    done = _convcalc([command, "net.yaml"], tmp_path)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("args", [
    ["conv", "--input", "1000000000000000000", "--dilation", "2", "-k", "3"],
    ["conv", "--input", "1000000000000000000", "--dilation", "3", "-k", "5", "-s", "2"],
    ["solve", "--input", "1000", "--output", "10", "--stride", "1000000000000000000"],
    ["solve", "--input", "1000", "--output", "10", "--kernel", "1000000000000000000"],
    ["solve", "--input", "1000", "--output", "10", "--kind", "tconv",
     "--stride", "1000000000000000000"],
    ["solve", "--input", "224", "--output", "5000", "--dilation", "any"],
])
def test_huge_single_layer_questions_finish(args, tmp_path):
    done = _convcalc(args, tmp_path)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("args,needle", [
    (["solve", "--input", "1000", "--output", "10", "--kernel", "1-100000000000"], "at most"),
    (["solve", "--input", "1000", "--output", "10", "--kernel", "1-4000", "--stride", "1-4000"],
     "combinations"),
    (["conv", "--input", "100000000000000000000000", "-k", "10000001", "-d", "10000019",
      "-s", "10000079"], "too large to analyse"),
])
def test_searches_beyond_the_bounds_are_one_line_usage_errors(args, needle, tmp_path):
    done = _convcalc(args, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and needle in done.stderr
