"""One layer, every axis: Query -> Result (output sizes, formulas, fit, receptive-field step).

Axes with the same numbers are reported together ("height and width"). The fit findings are
the ones `convcalc check` gives (`invalid-stride`, `skipped-input`, `checkerboard`): they are
computed by convcalc.layers.windows and the layer kinds themselves, at the padding the
chosen convention applies (widened by the rows a rounded-up last window hangs past it, so
that ceil rounding is judged by the windows it really has); the receptive-field step is the
layer kind's own `rf_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from convcalc import arithmetic as ar
from convcalc.conventions import Axis, Outcome, compare_labels, outcome, unsupported
from convcalc.diagnostics import Diagnostic, Severity, diag
from convcalc.layers.base import LayerError, RFStep

AXIS_WORDS = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


@dataclass(frozen=True)
class Query:
    """A single-layer question: kind conv | pool | tconv, one Axis per spatial axis."""

    kind: str
    axes: tuple[Axis, ...]
    convention: str = "torch"
    pool_type: str = "max"

    def axis_name(self, index: int) -> str:
        names = AXIS_WORDS.get(len(self.axes), tuple(f"axis {a}" for a in range(len(self.axes))))
        return names[index]

    @property
    def stem(self) -> str:
        """The layer kind's spec name without its rank: conv, maxpool, conv_transpose."""
        return {"conv": "conv", "tconv": "conv_transpose", "pool": f"{self.pool_type}pool"}[self.kind]


@dataclass
class Group:
    """Axes that share every number, and what the convention makes of them."""

    indices: list[int]
    axis: Axis
    outcome: Outcome
    rf: RFStep | None = None
    fit: ar.Fit | None = None
    inverse: str = ""  # tconv: the conv it undoes


@dataclass
class Result:
    query: Query
    groups: list[Group]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def output(self) -> tuple[int | None, ...]:
        sizes: list[int | None] = [None] * len(self.query.axes)
        for group in self.groups:
            for index in group.indices:
                sizes[index] = group.outcome.output
        return tuple(sizes)

    @property
    def unsupported(self) -> str | None:
        return next((g.outcome.unsupported for g in self.groups if g.outcome.unsupported), None)

    @property
    def positive(self) -> bool:
        return all(o is not None and o > 0 for o in self.output)

    @property
    def clean(self) -> bool:
        """Positive everywhere, and no real input pixel left unread (no warning)."""
        return self.positive and self.unsupported is None and not any(
            d.severity in (Severity.ERROR, Severity.WARNING) and d.code != "checkerboard"
            for d in self.diagnostics)

    def where(self, group: Group) -> str:
        return " and ".join(self.query.axis_name(i) for i in group.indices)


def evaluate(query: Query) -> Result:
    """Every axis under the query's convention, with the fit findings and RF steps."""
    groups: dict[Axis, list[int]] = {}
    for index, axis in enumerate(query.axes):
        groups.setdefault(axis, []).append(index)
    found = []
    refused = _avg_pool3d_refusal(query)
    for axis, indices in groups.items():
        result = refused or outcome(query.kind, query.convention, axis, query.pool_type)
        found.append(_complete(query, Group(indices, axis, result)))
    result = Result(query, found)
    result.diagnostics = _diagnostics(result)
    return result


def _avg_pool3d_refusal(query: Query) -> Outcome | None:
    """PyTorch's avg_pool3d refuses an unpadded input smaller than kernel_size on any axis
    (the 1-D and 2-D pools and max_pool3d check the padded input only)."""
    if (query.kind, query.convention, query.pool_type, len(query.axes)) != ("pool", "torch", "avg", 3):
        return None
    small = [f"{a.size} < {a.kernel}" for a in query.axes if a.size < a.kernel]
    if not small:
        return None
    return unsupported(f"PyTorch's avg_pool3d needs the unpadded input >= kernel_size on every "
                       f"axis ({', '.join(small)}); padding does not help")


def compare(query: Query) -> list[tuple[str, Result]]:
    """The query under every convention (ONNX's SAME_UPPER and SAME_LOWER both for 'same')."""
    rows = []
    for label, convention, same_as in compare_labels(list(query.axes)):
        axes = tuple(replace(a, padding=same_as) if same_as and a.padding == "same" else a
                     for a in query.axes)
        rows.append((label, evaluate(replace(query, axes=axes, convention=convention))))
    return rows


def _complete(query: Query, group: Group) -> Group:
    o, a = group.outcome, group.axis
    if not o.ok or o.pads is None:
        return group
    if query.kind != "tconv" and not _global_pool(query):
        group.fit = window_fit(a, o)
    group.rf = _rf_step(query, a, o)
    if query.kind == "tconv":
        back = ar.conv_output_size(o.output, a.kernel, a.stride, *o.pads, a.dilation)
        if back == a.size:
            op = ar.transposed_inverse_output_padding(o.output, a.kernel, a.stride, *o.pads,
                                                      a.dilation)
            group.inverse = (f"undoes a conv with the same kernel, stride and padding on "
                             f"{o.output} (which gives {a.size}; output_padding "
                             f"a = ({o.output} + {o.pads[0]} + {o.pads[1]} - {a.k_eff}) mod "
                             f"{a.stride} = {op})")
    return group


def window_pads(o: Outcome) -> tuple[int, int]:
    """The padding the windows actually span: a ceil-rounded last window that hangs
    `overhang` rows past the padded input reads them as if they were more padding after."""
    before, after = o.pads or (0, 0)
    return before, after + o.overhang


def window_fit(a: Axis, o: Outcome) -> ar.Fit:
    """How the output's windows cover the axis, floor or ceil rounding alike: rounding up
    either hangs the last window past the input (fit at the padding it spans) or, clipped,
    gives the floor's windows."""
    return ar.fit(a.size, a.kernel, a.stride, *window_pads(o), a.dilation)


def _global_pool(query: Query) -> bool:
    return query.kind == "pool" and query.convention == "darknet" and query.pool_type == "avg"


def _rf_step(query: Query, a: Axis, o: Outcome) -> RFStep:
    """The layer kind's own receptive-field step at these numbers (its `rf_steps`)."""
    if _global_pool(query):
        return RFStep(whole=True)
    layer = _layer(f"{query.stem}1d", kernel_size=(a.kernel,), stride=(a.stride,),
                   padding=(o.pads,), dilation=(a.dilation,))
    (step,) = layer.rf_steps([(1, a.size)], (1, o.output))
    return step


def _layer(name: str, **values):
    """An instance of a registered layer kind with these values and its defaults."""
    from convcalc.layers import REGISTRY
    from convcalc.layers.base import REQUIRED
    kind = REGISTRY[name]
    full = {key: (1 if p.default is REQUIRED else p.default) for key, p in kind.cls.params.items()}
    full.update({k: v for k, v in values.items() if k in kind.cls.params}, **kind.fixed)
    return kind.cls(name, kind.ndim, full)


def _diagnostics(result: Result) -> list[Diagnostic]:
    """Unsupported settings and non-positive sizes first; then the fit findings of
    convcalc.layers.windows over all axes (it groups and names them), or the tconv's own."""
    query, found = result.query, []
    for group in result.groups:
        o = group.outcome
        if o.unsupported:
            found.append(diag("invalid-value", o.unsupported))
        elif o.output is None or o.output <= 0:
            found.append(_non_positive(result, group))
    by_axis = sorted((i, g) for g in result.groups for i in g.indices)
    if found or any(g.outcome.pads is None for _, g in by_axis):
        return found
    if query.kind == "tconv":
        return [d for g in result.groups for d in tconv_notes(g.axis, g.outcome)]
    if _global_pool(query):
        return []
    from convcalc.layers.windows import fit_diagnostics
    notes = fit_diagnostics(*zip(*((g.axis.size, g.axis.kernel, g.axis.stride,
                                    window_pads(g.outcome), g.axis.dilation)
                                   for _, g in by_axis)))
    for group in result.groups:
        overhang = group.outcome.overhang
        if overhang:
            padded = "the padded input" if any(group.outcome.pads) else "the input"
            notes.append(diag(
                "invalid-stride",
                f"rounding up, the last window on {result.where(group)} reads {overhang} "
                f"{'row' if overhang == 1 else 'rows'} past {padded} (max ignores them; an "
                f"average counts only what it reads)", severity=Severity.INFO))
    return notes


def _non_positive(result: Result, group: Group) -> Diagnostic:
    a, o = group.axis, group.outcome
    return diag("non-positive-output",
                f"output {o.output} on {result.where(group)}: the padded input "
                f"{a.size} + {sum(o.pads or (0, 0))} is smaller than the effective kernel "
                f"{a.k_eff}" if result.query.kind != "tconv" else
                f"output {o.output} on {result.where(group)}: padding exceeds the upsampled "
                f"extent", "use a larger input, more padding, or a smaller kernel"
                if result.query.kind != "tconv" else
                "use less padding, a larger input, stride or kernel")


def tconv_notes(a: Axis, o: Outcome) -> list[Diagnostic]:
    """The transposed-conv kind's own findings (checkerboard), at these numbers (Keras'
    transposed convs, whose padding is a word, at padding 0: the overlap does not depend
    on it)."""
    layer = _layer("conv_transpose1d", kernel_size=(a.kernel,), stride=(a.stride,),
                   padding=(o.pads or (0, 0),), dilation=(a.dilation,), output_padding=(0,),
                   out_channels=1)
    try:
        inference = layer.infer([(1, a.size)], {})
    except LayerError:  # an empty output: the formula and its finding say so already
        return []
    return [d for d in inference.diagnostics if d.code == "checkerboard"]


NOUNS = {"length": "positions", "depth": "slices", "height": "rows", "width": "columns"}


def rf_text(step: RFStep, noun: str = "rows") -> str:
    """'kernel 3, stride 2, padding 1: r_in = 2*r_out + 1; output j reads input rows 2j - 1 .. 2j + 1'
    (Araujo et al.: r_in = s*r_out + (k - s); output j starts at s*j - p)."""
    if step.whole:
        return "every output sees the whole input"
    k, s, p = step.kernel, step.stride, step.padding
    recurrence = f"r_in = {_affine(s, k - s, 'r_out')}"
    first, last = _affine(s, -p), _affine(s, k - 1 - p)
    span = f"{noun[:-1]} {first}" if first == last else f"{noun} {first} .. {last}"
    return (f"kernel {_frac(k)}, stride {_frac(s)}, padding {_frac(p)}: {recurrence}; "
            f"output j reads input {span}")


def _affine(slope: Fraction, offset: Fraction, name: str = "j") -> str:
    """slope*name + offset, written as a person would: 2j - 1, j/2 + 1/2, r_out + 2."""
    slope, offset = Fraction(slope), Fraction(offset)
    if slope == 1:
        term = name
    elif slope.denominator == 1:
        term = f"{slope.numerator}{name}" if name == "j" else f"{slope.numerator}*{name}"
    else:
        term = (f"{name}/{slope.denominator}" if slope.numerator == 1
                else f"{_frac(slope)}*{name}")
    if offset == 0:
        return term
    return f"{term} {'-' if offset < 0 else '+'} {_frac(abs(offset))}"


def _frac(value: Fraction) -> str:
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
