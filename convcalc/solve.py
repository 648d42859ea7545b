"""The inverse of the single-layer calculator: the settings that give a wanted output size.

Every candidate is judged by the same rule `convcalc conv/pool/tconv` prints
(convcalc.conventions.outcome), so what `solve` proposes, `conv` confirms. Candidates are
enumerated within bounds (kernel 1..16, stride 1..16, padding up to k_eff - 1 per side,
dilation 1 unless asked) and pruned with the inverse formula of arithmetic.py where the
output depends on the total padding only.

The search is bounded: at most MAX_SETTINGS (kernel, stride, dilation) combinations, and
about EVALUATION_BUDGET candidate settings in all. Within the budget every padding (and
output_padding) is tried, as above; beyond it (a kernel, stride or dilation in the millions,
or wide ranges) the larger combinations are sampled: paddings near symmetric and at the
extremes, the smallest and largest totals that can give the output, the output paddings at
the ends of their range. `Answer.sampled` says so, and the CLI prints it. Nothing loops over
the positions of an axis: a kernel or stride of 1e18 costs what 3 does.

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

MAX_SETTINGS = 4096  # (kernel, stride, dilation) combinations searched at most
EVALUATION_BUDGET = 1_000_000  # candidate settings evaluated exhaustively, in all (~2 s)
SAMPLED_ABOVE = 256  # within a sampled search, combinations this small stay exhaustive
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
    sampled: bool = False  # some paddings were sampled, not all tried (see the module doc)

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
    plan = _plan(problem, prune=True)
    for (kernel, stride, dilation), sample in plan.items():
        for padding, output_padding in _candidates(problem, kernel, stride, dilation, True, sample):
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
    sampled = any(plan.values())
    if not solutions:
        reachable, sampled_reach = _reachable(problem)
        sampled = sampled or sampled_reach
    return Answer(problem, sorted(solutions, key=Solution.key), reachable, rejected, sampled)


def reachable_outputs(problem: Problem) -> set[int]:
    """Every output the searched settings give (no pruning): for 'nothing fits' messages."""
    return _reachable(problem)[0]


def _reachable(problem: Problem) -> tuple[set[int], bool]:
    reached = set()
    plan = _plan(problem, prune=False)
    for (kernel, stride, dilation), sample in plan.items():
        for padding, output_padding in _candidates(problem, kernel, stride, dilation, False,
                                                   sample):
            axis = Axis(problem.size, kernel, stride, dilation, padding, output_padding,
                        problem.ceil_mode)
            result = outcome(problem.kind, problem.convention, axis, problem.pool_type)
            if result.ok:
                reached.add(result.output)
    return reached, any(plan.values())


def _plan(problem: Problem, prune: bool) -> dict[tuple[int, int, int], bool]:
    """(kernel, stride, dilation) -> whether its paddings are sampled: none while every
    combination's exhaustive count fits EVALUATION_BUDGET, else those above SAMPLED_ABOVE."""
    combinations = len(problem.kernels) * len(problem.strides) * len(problem.dilations)
    if combinations > MAX_SETTINGS:
        raise ValueError(f"{len(problem.kernels)} kernels x {len(problem.strides)} strides x "
                         f"{len(problem.dilations)} dilations = {combinations} combinations; "
                         f"at most {MAX_SETTINGS} are searched: narrow a range")
    settings = list(product(problem.kernels, problem.strides, problem.dilations))
    counts = {key: _exhaustive_count(problem, *key, prune) for key in settings}
    if sum(counts.values()) <= EVALUATION_BUDGET:
        return {key: False for key in settings}
    return {key: count > SAMPLED_ABOVE for key, count in counts.items()}


def _exhaustive_count(problem: Problem, kernel: int, stride: int, dilation: int,
                      prune: bool) -> int:
    """How many (padding, output_padding) settings the exhaustive search would evaluate."""
    if problem.paddings is not None:
        return len(problem.paddings) * _ops_count(problem, stride, dilation)
    reach = ar.effective_kernel(kernel, dilation) - 1  # padding 0 .. k_eff - 1 per side
    ops = _ops_count(problem, stride, dilation)
    ranges = _total_ranges(problem, kernel, stride, dilation) if prune else None
    if ranges is None:
        return (reach + 1) ** 2 * ops
    if problem.kind == "tconv":  # one total per output_padding: at most reach + 1 splits each
        return ops * (reach + 1)
    return _splits_between(*ranges(None), reach)


def _ops_count(problem: Problem, stride: int, dilation: int) -> int:
    if problem.kind != "tconv":
        return 1
    return len(problem.output_paddings) if problem.output_paddings else max(stride, dilation)


def _splits_between(low: int, high: int, reach: int) -> int:
    """#{(p_b, p_a): 0 <= p_b, p_a <= reach, low <= p_b + p_a <= high}, in closed form."""
    def upto(n: int) -> int:  # pairs with total <= n
        if n < 0:
            return 0
        if n <= reach:
            return (n + 1) * (n + 2) // 2
        m = min(n, 2 * reach) - reach
        return (reach + 1) * (reach + 2) // 2 + m * (reach + 1) - m * (m + 1) // 2
    return max(0, upto(high) - upto(low - 1))


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


def _candidates(problem: Problem, kernel: int, stride: int, dilation: int, prune: bool = True,
                sample: bool = False):
    """(padding, output_padding) pairs worth evaluating for these kernel, stride, dilation:
    every one (pruned to the totals that can give the output), or a sample of them."""
    k_eff = ar.effective_kernel(kernel, dilation)
    ops = _output_paddings(problem, kernel, stride, dilation, sample)
    if problem.paddings is not None:
        yield from product(problem.paddings, ops)
        return
    for word in NAMED_PADDINGS[problem.convention]:
        for op in ops:
            yield word, op
    ranges = _total_ranges(problem, kernel, stride, dilation) if prune else None
    if sample:
        yield from _sampled_pairs(problem, kernel, stride, dilation, ops, ranges)
        return
    for op in ops:
        low, high = ranges(op) if ranges is not None else (0, 2 * (k_eff - 1))
        for total in range(max(low, 0), min(high, 2 * (k_eff - 1)) + 1):
            for pb in range(max(0, total - k_eff + 1), min(total, k_eff - 1) + 1):
                yield (pb, total - pb), op


def _output_paddings(problem: Problem, kernel: int, stride: int, dilation: int, sample: bool):
    """The output paddings tried: the given ones, or 0 .. max(s, d) - 1 (sampled: the ends of
    that range and of the range that can give the output)."""
    if problem.kind != "tconv":
        return (problem.output_paddings or (None,))[:1]
    if problem.output_paddings:
        return problem.output_paddings
    top = max(stride, dilation) - 1
    if sample and top > 8:
        k_eff = ar.effective_kernel(kernel, dilation)
        first = problem.output - (problem.size - 1) * stride - k_eff  # total padding 0 here
        ends = {0, 1, 2, top - 1, top}
        ends |= {op for base in (first, first + 2 * (k_eff - 1)) for op in range(base - 2, base + 3)}
        ops = tuple(sorted(op for op in ends if 0 <= op <= top))
    else:
        ops = tuple(range(top + 1))
    if problem.convention == "tensorflow":
        return (None, *ops)  # Keras' default: no output_padding, o = i*s (SAME)
    return ops


def _total_ranges(problem: Problem, kernel: int, stride: int, dilation: int):
    """A function output_padding -> the (low, high) total paddings that can give the output,
    where the output depends on the total only (floor-rounded windows, transposed convs);
    None where any total may (ceil rounding, Caffe, Darknet pools, Keras transposed convs)."""
    k_eff = ar.effective_kernel(kernel, dilation)
    if problem.kind == "tconv" and problem.convention == "tensorflow":
        return None  # Keras' own formulas: try them all
    if problem.kind == "tconv":
        def exact(op):  # o = (i-1)*s - P + k_eff + op  ->  P = (i-1)*s + k_eff + op - o
            total = (problem.size - 1) * stride + k_eff + (op or 0) - problem.output
            return total, total
        return exact
    floor = problem.kind == "conv" or not (problem.ceil_mode or problem.convention == "caffe")
    if not floor or (problem.kind == "pool" and problem.convention == "darknet"):
        return None
    low, high = ar.conv_total_padding_range(problem.size, problem.output, kernel, stride,
                                            dilation)
    return lambda op: (low, high)


def _sampled_pairs(problem: Problem, kernel: int, stride: int, dilation: int, ops, ranges):
    """A bounded sample of (p_b, p_a): near symmetric and at the extremes, on the smallest and
    largest totals that can give the output (any output when not pruned: floor's range
    widened by one output either side, which holds ceil rounding and its clip)."""
    k_eff = ar.effective_kernel(kernel, dilation)
    reach = k_eff - 1
    sides = {0, 1, 2, kernel // 2, reach // 2, reach - 1, reach}
    sides = {v + d for v in sides for d in (-1, 0, 1) if 0 <= v + d <= reach}
    for op in ops:
        if ranges is None:
            low = ar.conv_total_padding_range(problem.size, problem.output - 1, kernel, stride,
                                              dilation)[0]
            high = ar.conv_total_padding_range(problem.size, problem.output + 1, kernel, stride,
                                               dilation)[1]
            pairs = {(a, b) for a in sides for b in sides}
        else:
            low, high = ranges(op)
            pairs = set()
        low, high = max(low, 0), min(high, 2 * reach)
        totals = {t for t in (low, low + 1, low + 2, high - 2, high - 1, high) if low <= t <= high}
        for total in totals:
            half = total // 2
            for pb in (half - 1, half, total - half, total - half + 1, total - reach, reach, 0, total):
                if 0 <= pb <= reach and 0 <= total - pb <= reach:
                    pairs.add((pb, total - pb))
        for pair in sorted(pairs):
            yield pair, op


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
