"""The inverse of the single-layer calculator: the settings that give a wanted output size.

Every candidate is judged by the same rule `convcalc conv/pool/tconv` prints
(convcalc.conventions.outcome), so what `solve` proposes, `conv` confirms. Candidates are
enumerated within bounds (kernel 1..16, stride 1..16, padding up to k_eff - 1 per side,
dilation 1 unless asked) and pruned with the inverse formula of arithmetic.py where the
output depends on the total padding only.

Ranking, cleanest first: no real pixel left unread (a 1-wide subsampling's unread rows are
an info, ranked after every setting that reads them all), symmetric padding, no padding left
unread (an exact fit), then the smaller total padding, kernel, stride and dilation. For a
transposed conv that undoes a given conv, the one aligned with it (the same padding: the
conv's exact adjoint) comes first; then transposed convs with an even overlap (no
checkerboard: the kernel a multiple of the stride).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product

from convcalc import arithmetic as ar
from convcalc.conventions import Axis, Outcome, outcome

DEFAULT_KERNELS = tuple(range(1, 17))
DEFAULT_STRIDES = tuple(range(1, 17))
NAMED_PADDINGS = {"torch": ("same",), "tensorflow": ("same",), "onnx": ("same", "same_lower"),
                  "darknet": ("same",), "caffe": ()}


@dataclass(frozen=True)
class Problem:
    """Find settings of `kind` taking `size` to `output` on one axis.

    Each candidate list is searched; `paddings` None searches explicit (before, after) pairs
    and the convention's named paddings; `output_paddings` None searches 0..max(s, d) - 1."""

    kind: str
    size: int
    output: int
    convention: str = "torch"
    kernels: tuple[int, ...] = DEFAULT_KERNELS
    strides: tuple[int, ...] = DEFAULT_STRIDES
    dilations: tuple[int, ...] = (1,)
    paddings: tuple | None = None
    output_paddings: tuple[int, ...] | None = None
    ceil_mode: bool = False
    pool_type: str = "max"
    aligned_with: tuple[int, int] | str | None = None  # tconv: the padding of the conv it
    # undoes (a padding word for Keras, whose transposed convs take only same / valid)


@dataclass(frozen=True)
class Solution:
    axis: Axis  # the full setting: explicit padding, or a named one (same, same_lower)
    outcome: Outcome
    fit: ar.Fit | None
    loses_pixels: bool
    aligned: bool = False
    named: str | None = None  # the convention's word for this padding: same, same_lower
    uneven: bool = False  # tconv: the kind's checkerboard finding (k not a multiple of s)

    @property
    def pads(self) -> tuple[int, int]:
        return self.outcome.pads or (0, 0)

    @property
    def symmetric(self) -> bool:
        return self.pads[0] == self.pads[1]

    @property
    def exact(self) -> bool:
        return (self.fit is None or self.fit.remainder == 0) and not self.outcome.overhang

    @property
    def subsamples(self) -> bool:
        """Real rows left unread without a loss: a 1-wide window's subsampling (an info)."""
        return self.fit is not None and not self.fit.clean and not self.loses_pixels

    def key(self) -> tuple:
        a = self.axis
        return (self.loses_pixels, self.subsamples, not self.aligned, self.uneven,
                not self.symmetric, not self.exact, sum(self.pads), a.kernel, a.stride,
                a.dilation, a.output_padding or 0, isinstance(a.padding, str))


@dataclass
class Answer:
    problem: Problem
    solutions: list[Solution]
    reachable: set[int]  # outputs the searched settings can give
    rejected: str | None = None  # why the convention refused a setting, if it did

    @property
    def clean(self) -> list[Solution]:
        return [s for s in self.solutions if not s.loses_pixels]

    def nearest_reachable(self) -> tuple[int | None, int | None]:
        below = [o for o in self.reachable if 0 < o < self.problem.output]
        above = [o for o in self.reachable if o > self.problem.output]
        return (max(below) if below else None), (min(above) if above else None)


def solve(problem: Problem) -> Answer:
    """Every searched setting whose output is exactly problem.output, cleanest first."""
    found: dict[tuple, Solution] = {}
    named: dict[tuple, str] = {}
    reachable: set[int] = set()
    rejected = None
    for kernel, stride, dilation in product(problem.kernels, problem.strides, problem.dilations):
        for padding, output_padding in _candidates(problem, kernel, stride, dilation):
            axis = Axis(problem.size, kernel, stride, dilation, padding, output_padding,
                        problem.ceil_mode)
            result = outcome(problem.kind, problem.convention, axis, problem.pool_type)
            if not result.ok:
                rejected = rejected or result.unsupported
                continue
            reachable.add(result.output)
            if result.output != problem.output:
                continue
            solution = _judge(problem, axis, result)
            same = (kernel, stride, dilation, result.pads or padding, output_padding)
            if isinstance(padding, str):
                named.setdefault(same, padding)
            if same not in found or found[same].key() > solution.key():
                found[same] = solution
    solutions = [replace(s, named=named.get(key)) for key, s in found.items()]
    if not solutions:
        reachable = reachable_outputs(problem)
    return Answer(problem, sorted(solutions, key=Solution.key), reachable, rejected)


def reachable_outputs(problem: Problem) -> set[int]:
    """Every output the searched settings give (no pruning): for 'nothing fits' messages."""
    reached = set()
    for kernel, stride, dilation in product(problem.kernels, problem.strides, problem.dilations):
        for padding, output_padding in _candidates(problem, kernel, stride, dilation, False):
            axis = Axis(problem.size, kernel, stride, dilation, padding, output_padding,
                        problem.ceil_mode)
            result = outcome(problem.kind, problem.convention, axis, problem.pool_type)
            if result.ok:
                reached.add(result.output)
    return reached


def invert_conv(conv: Axis, convention: str = "torch") -> Answer:
    """The transposed convs (same kernel, stride, dilation) that take the conv's output back
    to its input size; the conv's own padding with output_padding
    a = (i + p_b + p_a - k_eff) mod s (relationship 14) is the aligned one."""
    conv_result = outcome("conv", convention, conv)
    if not conv_result.ok:
        raise ValueError(conv_result.unsupported or f"the conv's output is {conv_result.output}")
    aligned = conv_result.pads
    if convention == "tensorflow":
        aligned = conv.padding if conv.padding in ("same", "valid") else "valid"
    problem = Problem("tconv", conv_result.output, conv.size, convention, (conv.kernel,),
                      (conv.stride,), (conv.dilation,), aligned_with=aligned)
    return solve(problem)


def _candidates(problem: Problem, kernel: int, stride: int, dilation: int, prune: bool = True):
    """(padding, output_padding) pairs worth evaluating for these kernel, stride, dilation."""
    k_eff = ar.effective_kernel(kernel, dilation)
    if problem.kind == "tconv":
        ops = problem.output_paddings or tuple(range(max(stride, dilation)))
        if problem.convention == "tensorflow" and not problem.output_paddings:
            ops = (None, *ops)  # Keras' default: no output_padding, o = i*s (SAME)
    else:
        ops = (problem.output_paddings or (None,))[:1]
    if problem.paddings is not None:
        yield from product(problem.paddings, ops)
        return
    for word in NAMED_PADDINGS[problem.convention]:
        for op in ops:
            yield word, op
    totals = _totals(problem, kernel, stride, dilation, ops) if prune else None
    for pb in range(k_eff):
        for pa in range(k_eff):
            for op in ops:
                if totals is None or (pb + pa, op) in totals:
                    yield (pb, pa), op


def _totals(problem: Problem, kernel: int, stride: int, dilation: int, ops) -> set | None:
    """The (total padding, output_padding) pairs that can give the output, where the output
    depends on the total only (floor-rounded windows, transposed convs); None: try all."""
    k_eff = ar.effective_kernel(kernel, dilation)
    if problem.kind == "tconv" and problem.convention == "tensorflow":
        return None  # Keras' own formulas: try them all
    if problem.kind == "tconv":
        # o = (i-1)*s - P + k_eff + op  ->  P = (i-1)*s + k_eff + op - o
        return {((problem.size - 1) * stride + k_eff + (op or 0) - problem.output, op)
                for op in ops}
    floor = problem.kind == "conv" or not (problem.ceil_mode or problem.convention == "caffe")
    if not floor or (problem.kind == "pool" and problem.convention == "darknet"):
        return None
    low, high = ar.conv_total_padding_range(problem.size, problem.output, kernel, stride,
                                            dilation)
    return {(total, op) for total in range(max(low, 0), high + 1) for op in ops}


def _judge(problem: Problem, axis: Axis, result: Outcome) -> Solution:
    """Fit and pixel loss as `convcalc conv` reports them (convcalc.layers.windows' findings
    at the padding the windows span: a warning means real input is left unread)."""
    from convcalc.layers.windows import fit_diagnostics
    from convcalc.single_layer import tconv_notes, window_fit, window_pads
    fit, loses = None, False
    global_pool = (problem.kind == "pool" and problem.convention == "darknet"
                   and problem.pool_type == "avg")
    if problem.kind != "tconv" and result.pads is not None and not global_pool:
        notes = fit_diagnostics([axis.size], [axis.kernel], [axis.stride],
                                [window_pads(result)], [axis.dilation])
        fit = window_fit(axis, result)
        loses = any(d.severity.value == "warning" for d in notes)
    if result.pads is None:  # Keras transposed convs: aligned by the padding's name
        aligned = problem.aligned_with == (axis.padding or "valid")
    else:
        aligned = problem.aligned_with == result.pads
    uneven = problem.kind == "tconv" and bool(tconv_notes(axis, result))
    return Solution(axis, result, fit, loses, aligned, uneven=uneven)
