"""`convcalc solve` answers -> compact rich tables, or JSON-ready dicts."""

from __future__ import annotations

from convcalc.cli.calc_render import LABELS, make_console, pads_text
from convcalc.conventions import Axis, outcome
from convcalc.single_layer import AXIS_WORDS
from convcalc.solve import Answer, Problem, Solution


def _where(indices: list[int], n: int) -> str:
    names = AXIS_WORDS.get(n, tuple(f"axis {a}" for a in range(n)))
    return " and ".join(names[i] for i in indices)


def fit_text(s: Solution, problem: Problem, inverting: bool = False) -> str:
    """What the setting does: exact fit | 1 padding row never read | drops the last 2 input
    rows | skips 3 input rows between windows | rounds up ... ; for a transposed conv, the
    conv it undoes and whether its overlap is uneven (checkerboard)."""
    if problem.kind == "tconv":
        return _tconv_text(s, problem, inverting)
    if s.fit is None:  # Darknet's [avgpool]
        return "global: every output sees the whole input"
    f, parts = s.fit, []
    if f.dropped_rows:
        parts.append(f"drops the last {_rows(f.dropped_rows, 'input row')}")
    if f.skipped_rows and s.axis.stride <= s.axis.k_eff:  # convcalc.layers.windows' rule
        parts.append(f"skips {_rows(f.skipped_rows, 'input row')} in the dilation's holes")
    elif f.skipped_rows:
        parts.append(f"skips {_rows(f.skipped_rows, 'input row')} between windows")
    if f.dropped_padding:
        parts.append(f"{_rows(f.dropped_padding, 'padding row')} never read")
    if s.outcome.overhang:
        where = "the padded input" if any(s.outcome.pads or ()) else "the input"
        parts.append(f"rounds up: the last window hangs {_rows(s.outcome.overhang, 'row')} "
                     f"past {where}")
    text = "; ".join(parts) or "exact fit"
    if (f.dropped_rows or f.skipped_rows) and not s.loses_pixels:
        text = f"1-wide subsampling: {text}"  # an info, as in ResNet's projection shortcuts
    if s.named and s.outcome.pads is not None:
        text += f"; = padding {s.named}"
    return text


def _tconv_text(s: Solution, problem: Problem, inverting: bool) -> str:
    """aligned: the conv's exact transpose | undoes conv 224 -> 112, and the checkerboard."""
    if inverting:
        parts = ["aligned: the conv's exact transpose" if s.aligned
                 else "the size only: off the conv's grid"]
    else:
        parts = [_undoes(s, problem)]
    if s.uneven:
        parts.append("uneven overlap (checkerboard)")
    return "; ".join(parts)


def _undoes(s: Solution, problem: Problem) -> str:
    """The conv (same kernel, stride, dilation, padding) that this transposed conv undoes: the
    one from its output back to its input."""
    a, o = s.axis, s.outcome
    padding = o.pads if o.pads is not None else (a.padding or "valid")
    conv = outcome("conv", problem.convention,
                   Axis(o.output, a.kernel, a.stride, a.dilation, padding))
    if conv.ok and conv.output == a.size:
        return f"undoes conv {o.output} -> {a.size}"
    if conv.ok:
        return f"the size only: the conv with this padding gives {o.output} -> {conv.output}"
    return "the size only: no conv with this padding"


def padding_text(s: Solution) -> str:
    """The padding as written: 1, 0:1, or the convention's word when it has no numbers."""
    return pads_text(s.outcome.pads) if s.outcome.pads is not None else (s.named or "valid")


def _rows(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def command(answer: Answer, s: Solution, n_axes: int, n_group: int) -> str:
    """The `convcalc conv|pool|tconv` line that confirms a solution."""
    p, a = answer.problem, s.axis
    padding = s.named or padding_text(s)
    parts = [f"convcalc {p.kind}", f"--input {a.size}", f"--kernel {a.kernel}",
             f"--stride {a.stride}", f"--padding {padding}"]
    if a.dilation > 1:
        parts.append(f"--dilation {a.dilation}")
    if p.kind == "tconv" and a.output_padding is not None and (
            a.output_padding or p.convention == "tensorflow"):
        parts.append(f"--output-padding {a.output_padding}")
    if a.ceil_mode:
        parts.append("--ceil-mode")
    if p.kind == "pool" and p.pool_type != "max":
        parts.append(f"--type {p.pool_type}")
    if p.convention != "torch":
        parts.append(f"--convention {p.convention}")
    if n_group != 2:
        parts.append(f"--ndim {n_group}")
    return " ".join(parts)


def _searched(answer: Answer) -> list[str]:
    p = answer.problem
    return [name for name, values in (("kernel", p.kernels), ("stride", p.strides),
                                      ("dilation", p.dilations)) if len(values) > 1]


def _title(answer: Answer, where: str, invert: bool) -> str:
    p = answer.problem
    given = [f"{name} {values[0]}" for name, values in (("kernel", p.kernels),
                                                        ("stride", p.strides),
                                                        ("dilation", p.dilations))
             if len(values) == 1]
    if p.paddings is not None:
        padding = p.paddings[0]
        given.append(f"padding {padding if isinstance(padding, str) else pads_text(padding)}")
    head = "undo a conv" if invert else f"solve {p.kind}"
    return (f"{head}, {LABELS[p.convention]} rules: {p.size} -> {p.output} on {where}"
            + (f" ({', '.join(given)})" if given else ""))


def print_answers(answers, n_axes: int, invert: bool, limit: int) -> None:
    from rich import box
    from rich.text import Text

    from convcalc.render.fit import Column, FittedTable

    console = make_console()
    for indices, answer in answers:
        title = _title(answer, _where(indices, n_axes), invert)
        if not answer.solutions:
            console.print(Text(title, style="bold"))
            console.print(Text(nothing_text(answer), style="bold red"), soft_wrap=True)
            continue
        shown = answer.solutions if limit == 0 else answer.solutions[:limit]
        console.print(Text(title, style="bold"))
        columns = ["#", *_searched(answer), "padding"]
        columns += ["output_padding"] if answer.problem.kind == "tconv" else []
        table = FittedTable([Column(c) for c in columns] + [Column("fit", "left", fold=True)],
                            [], dict(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False))
        for rank, s in enumerate(shown, 1):
            values = {"#": str(rank), "kernel": str(s.axis.kernel), "stride": str(s.axis.stride),
                      "dilation": str(s.axis.dilation), "padding": padding_text(s),
                      "output_padding": "-" if s.axis.output_padding is None
                      else str(s.axis.output_padding)}
            clean = (s.exact or s.aligned) and not s.uneven
            style = "red" if s.loses_pixels else ("green" if clean else "")
            table.add_row(*(values[c] for c in columns),
                          Text(fit_text(s, answer.problem, invert), style=style))
        console.print(table)
        more = len(answer.solutions) - len(shown)
        if more:
            console.print(f"{more} more (--limit 0 shows them all)")
        if answer.sampled:
            console.print(SAMPLED_NOTE)
        if not answer.clean:
            console.print(Text("only settings that leave input pixels unread give it (exit 1)",
                               style="bold red"))
        console.print(f"check: {command(answer, answer.solutions[0], n_axes, len(indices))}",
                      soft_wrap=True)


def nothing_text(answer: Answer) -> str:
    p = answer.problem
    reach = sorted(answer.reachable)
    text = f"nothing gives {p.output} from {p.size} with these settings"
    if not reach:
        return text + (f": {answer.rejected}" if answer.rejected else " (no positive output at all)")
    below, above = answer.nearest_reachable()
    near = " and ".join(str(v) for v in (below, above) if v is not None)
    searched = " (of the paddings sampled)" if answer.sampled else ""
    return (f"{text}: they reach {reach[0]} to {reach[-1]}{searched}, nearest {near}"
            + _inputs_text(p))


def _inputs_text(p) -> str:
    """For one conv setting: the input sizes that would give the wanted output."""
    if p.kind != "conv" or len(p.kernels) * len(p.strides) * len(p.dilations) != 1:
        return ""
    from convcalc import arithmetic as ar
    kernel, stride, dilation = p.kernels[0], p.strides[0], p.dilations[0]
    padding = (p.paddings or [None])[0]
    pads = padding if isinstance(padding, tuple) else (ar.effective_kernel(kernel, dilation) // 2,) * 2
    low, high = ar.conv_total_padding_range(sum(pads), p.output, kernel, stride, dilation)
    if high < 1:
        return ""
    sizes = f"{max(low, 1)}" + (f" to {high}" if high > max(low, 1) else "")
    return f"; inputs {sizes} give {p.output} with padding {pads_text(pads)}"


SAMPLED_NOTE = ("paddings sampled, not all tried: a kernel, stride or dilation this large (or "
                "these ranges) would take too long (near symmetric, extreme and smallest-total "
                "paddings were searched)")


def answers_json(answers, n_axes: int, invert: bool) -> dict:
    out = []
    for indices, answer in answers:
        p = answer.problem
        out.append({
            "axes": [AXIS_WORDS.get(n_axes, ())[i] if n_axes in AXIS_WORDS else i for i in indices],
            "kind": p.kind, "convention": p.convention, "input": p.size, "output": p.output,
            "found": bool(answer.solutions), "clean": bool(answer.clean),
            "count": len(answer.solutions), "sampled": answer.sampled,
            "reachable": sorted(answer.reachable) if not answer.solutions else None,
            "solutions": [_solution_json(answer, s, n_axes, len(indices), invert)
                          for s in answer.solutions]})
    return {"invert": invert, "answers": out}


def _solution_json(answer: Answer, s: Solution, n_axes: int, n_group: int,
                   invert: bool) -> dict:
    entry = {"kernel": s.axis.kernel, "stride": s.axis.stride, "dilation": s.axis.dilation,
             "padding": list(s.outcome.pads) if s.outcome.pads is not None else None,
             "named_padding": s.named, "output": s.outcome.output,
             "formula": s.outcome.formula, "exact": s.exact, "loses_pixels": s.loses_pixels,
             "fit": fit_text(s, answer.problem, invert),
             "command": command(answer, s, n_axes, n_group)}
    if answer.problem.kind == "tconv":
        entry["output_padding"] = s.axis.output_padding
        entry["aligned"] = s.aligned
        entry["checkerboard"] = s.uneven
    return entry
