"""Single-layer results -> compact rich text, or JSON-ready dicts (used by convcalc.cli.calc)."""

from __future__ import annotations

from convcalc.diagnostics import Diagnostic, Severity
from convcalc.single_layer import NOUNS, Group, Result, rf_text

LABELS = {"torch": "PyTorch", "tensorflow": "TensorFlow", "caffe": "Caffe", "onnx": "ONNX",
          "darknet": "Darknet"}
STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def sizes_text(sizes) -> str:
    return "x".join("?" if s is None else str(s) for s in sizes)


def make_console():
    """convcalc.cli.console's policy (the terminal's width, or 240 columns into a file or a CI
    log), without markup: formulas and layer names may hold square brackets."""
    from rich.console import Console
    out = Console(highlight=False, soft_wrap=True, markup=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=True, markup=False, width=240)
    return out


def _title(result: Result, channels: int | None) -> str:
    q = result.query
    inputs = sizes_text(a.size for a in q.axes)
    extra = f" ({channels} channels, unchanged by the arithmetic)" if channels else ""
    return (f"{q.stem}{len(q.axes)}d, {LABELS[q.convention]} rules: input {inputs} -> output "
            f"{sizes_text(result.output)}{extra}")


def _settings(result: Result) -> str:
    """'kernel 3, stride 2, padding 1:1, dilation 1' for the first axis group, per axis if not."""
    def one(group: Group) -> str:
        a, o = group.axis, group.outcome
        pads = pads_text(o.pads) if o.pads else str(a.padding or 0)
        text = f"kernel {a.kernel}, stride {a.stride}, padding {pads}"
        text += f", dilation {a.dilation}" if a.dilation > 1 else ""
        text += f", output_padding {a.output_padding}" if a.output_padding else ""
        return text + (", ceil_mode" if a.ceil_mode else "")
    if len(result.groups) == 1:
        return one(result.groups[0])
    return "; ".join(f"{result.where(g)}: {one(g)}" for g in result.groups)


def diagnostic_text(d: Diagnostic):
    from rich.text import Text
    line = Text()
    line.append(f"{d.severity.value}[{d.code}]", style=STYLE[d.severity])
    line.append(f" {d.message}")
    if d.hint:
        line.append(f" (hint: {d.hint})", style="dim")
    return line


def labelled(rows, console) -> None:
    """Print (label, text[, style]) rows with the labels in one column, no trailing blanks."""
    from rich.text import Text
    width = max((len(label) for label, *_ in rows), default=0) + 2
    for label, text, *style in rows:
        line = Text(label.ljust(width), style="bold" if not label.startswith(" ") else "")
        line.append(text, style=style[0] if style else "")
        console.print(line)


def print_result(result: Result, channels: int | None) -> None:
    from rich.text import Text

    console = make_console()
    console.print(Text(_title(result, channels), style="bold"))
    rows = []
    for group in result.groups:
        o = group.outcome
        rows.append((result.where(group), o.formula))
        for label, text in (("detail", o.padding_formula), ("rule", o.note),
                            ("receptive field", group.rf and rf_text(group.rf, _noun(result, group))),
                            ("inverse", group.inverse)):
            if text:
                rows.append((f"  {label}", text))
    labelled(rows, console)
    for d in result.diagnostics:
        console.print(diagnostic_text(d))
    console.print(Text(_verdict(result), style="bold green" if result.clean else "bold red"))


def _noun(result: Result, group: Group) -> str:
    names = [result.query.axis_name(i) for i in group.indices]
    return NOUNS.get(names[0], "positions") if len(names) == 1 or "height" not in names else "rows"


def _verdict(result: Result) -> str:
    """The last line, from each axis group's fit: what its windows read and leave."""
    if not result.positive:
        return "FAILED: the output is empty"
    if not result.clean:
        return "DROPS PIXELS: real input rows are never read (exit 1)"
    if result.query.kind == "tconv":
        return "ok"
    found = [(result.where(g), *_fit_verdict(g, _noun(result, g))) for g in result.groups]
    heads = {head for _, head, _ in found}
    extras = {extra for _, _, extra in found}
    if len(found) == 1 or (len(heads) == 1 and len(extras) == 1):
        _, head, extra = found[0]
        return f"ok: {head}" + (f" ({extra})" if extra else "")
    if len(heads) == 1:
        return f"ok: {heads.pop()} (" + "; ".join(f"{where}: {extra}" for where, _, extra
                                                 in found if extra) + ")"
    return "ok: " + "; ".join(f"{where}: {head}" + (f" ({extra})" if extra else "")
                              for where, head, extra in found)


def _fit_verdict(group: Group, noun: str) -> tuple[str, str]:
    """(what the windows read, what else they do): leave padding unread, hang past the input
    (ceil rounding); or a 1-wide window's subsampling."""
    fit, a, o = group.fit, group.axis, group.outcome
    if fit is None:
        return "every output sees the whole input", ""
    unread = fit.dropped_rows + fit.skipped_rows
    if unread:  # clean yet unread: only a 1-wide window (a deliberate subsampling)
        return (f"a 1-wide subsampling, {unread} of {a.size} input {noun} are never read "
                f"(as in ResNet's projection shortcuts)"), ""
    head = "every input pixel is read"
    if o.overhang:
        where = "the padded input" if any(o.pads or ()) else "the input"
        return head, (f"rounding up, the last window hangs {_count(o.overhang, noun)} "
                      f"past {where}")
    if fit.dropped_padding:
        return head, f"{_count(fit.dropped_padding, 'padding ' + noun)} never read"
    return head, ""


def _count(n: int, plural: str) -> str:
    """1 row, 2 rows, 1 padding column."""
    return f"{n} {plural if n != 1 else plural[:-1]}"


def pads_text(pads) -> str:
    """1 for (1, 1), 0:1 for (0, 1), - for none."""
    if not pads:
        return "-"
    return str(pads[0]) if pads[0] == pads[1] else f"{pads[0]}:{pads[1]}"


def _padding_cell(r: Result) -> str:
    texts = [pads_text(g.outcome.pads) for g in r.groups]
    return ", ".join(dict.fromkeys(texts)) if len(set(texts)) == 1 else ", ".join(texts)


def _formula_cell(r: Result) -> str:
    if r.unsupported:
        return r.unsupported
    if len(r.groups) == 1:
        return r.groups[0].outcome.formula
    return "\n".join(f"{r.where(g)}: {g.outcome.formula}" for g in r.groups)


def _reference(result: Result, rows) -> Result | None:
    if not result.unsupported:
        return result
    return next((r for _, r in rows if not r.unsupported), None)


def _agreement(r: Result, reference: Result | None) -> str:
    if r.unsupported or reference is None:
        return ""
    if r.output != reference.output:
        return "≠ output"
    if [g.outcome.pads for g in r.groups] != [g.outcome.pads for g in reference.groups]:
        return "≠ padding"
    return "="


def print_compare(result: Result, rows, channels: int | None) -> None:
    from rich.text import Text

    from convcalc.render.fit import Column, FittedTable

    q = result.query
    reference = _reference(result, rows)
    from rich import box

    table = FittedTable([Column(h, "left", fold=h == "formula and rule") for h in
                         ("convention", "padding", "output", "formula and rule")], [], dict(
        title=f"{q.stem}{len(q.axes)}d, input {sizes_text(a.size for a in q.axes)}, "
              f"{_settings(result) if not result.unsupported else _raw_settings(q)}",
        title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False))
    for label, r in rows:
        mark = _agreement(r, reference)
        style = "bold red" if mark == "≠ output" else ("yellow" if mark == "≠ padding" else "")
        output = "n/a" if r.unsupported else sizes_text(r.output)
        cell = Text(_formula_cell(r), style="dim" if r.unsupported else "")
        notes = "; ".join(dict.fromkeys(g.outcome.note for g in r.groups if g.outcome.note))
        if notes:
            cell.append(f"\n{notes}", style="italic")
        table.add_row(Text(label, style="bold" if r.query.convention == q.convention else ""),
                      Text(_padding_cell(r), style="yellow" if mark == "≠ padding" else ""),
                      Text(f"{output} {mark if mark.startswith('≠') else ''}".strip(), style=style),
                      cell)
    console = make_console()
    console.print(table)
    differ = [label for label, r in rows if _agreement(r, reference).startswith("≠")]
    base = LABELS[reference.query.convention] if reference else "-"
    console.print(f"compared with {base}: " + (f"{', '.join(differ)} disagree" if differ
                                              else "all conventions that apply agree"))
    for d in result.diagnostics:  # why the chosen convention's verdict is what it is
        if d.severity.value != "info" and not result.unsupported:
            console.print(Text(f"{LABELS[q.convention]}: ").append(diagnostic_text(d)))


def _raw_settings(q) -> str:
    a = q.axes[0]
    pads = a.padding if isinstance(a.padding, str) else pads_text(a.padding) if a.padding else "default"
    return f"kernel {a.kernel}, stride {a.stride}, padding {pads}"


# -- JSON -----------------------------------------------------------------------------------

def _fraction(value) -> int | float | str:
    return int(value) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _axis_json(result: Result, index: int) -> dict:
    group = next(g for g in result.groups if index in g.indices)
    a, o = group.axis, group.outcome
    entry = {"axis": result.query.axis_name(index), "input": a.size, "kernel": a.kernel,
             "stride": a.stride, "dilation": a.dilation, "effective_kernel": a.k_eff,
             "padding": list(o.pads) if o.pads else None, "output": o.output,
             "formula": o.formula, "padding_formula": o.padding_formula or None,
             "rounding": o.rounding, "rule": o.note or None}
    if result.query.kind == "tconv":
        entry["output_padding"] = a.output_padding or 0
        entry["inverse"] = group.inverse or None
    if group.fit:
        entry["fit"] = {"remainder": group.fit.remainder, "dropped_rows": group.fit.dropped_rows,
                        "dropped_padding": group.fit.dropped_padding,
                        "skipped_rows": group.fit.skipped_rows}
    if o.overhang:
        entry["overhang"] = o.overhang
    if group.rf:
        entry["receptive_field"] = ({"whole": True} if group.rf.whole else
                                    {"kernel": _fraction(group.rf.kernel),
                                     "stride": _fraction(group.rf.stride),
                                     "padding": _fraction(group.rf.padding)})
    return entry


def result_json(result: Result, channels: int | None = None) -> dict:
    q = result.query
    return {"kind": q.kind, "layer": f"{q.stem}{len(q.axes)}d", "convention": q.convention,
            "input": [a.size for a in q.axes], "channels": channels,
            "output": list(result.output), "clean": result.clean,
            "unsupported": result.unsupported,
            "axes": [_axis_json(result, i) for i in range(len(q.axes))],
            "diagnostics": [{"code": d.code, "severity": d.severity.value, "message": d.message,
                             "hint": d.hint} for d in result.diagnostics]}


def _axis_pads(result: Result, index: int) -> list[int] | None:
    group = next(g for g in result.groups if index in g.indices)
    return list(group.outcome.pads) if group.outcome.pads else None


def compare_json(result: Result, rows, channels: int | None = None) -> dict:
    reference = _reference(result, rows)
    out = result_json(result, channels)
    out["compare"] = [{"convention": label, "output": None if r.unsupported else list(r.output),
                       "padding": [_axis_pads(r, index) for index in range(len(r.query.axes))],
                       "formula": [g.outcome.formula for g in r.groups] if not r.unsupported
                       else None, "rule": [g.outcome.note for g in r.groups if g.outcome.note],
                       "unsupported": r.unsupported,
                       "agrees": _agreement(r, reference) == "=" if not r.unsupported else None}
                      for label, r in rows]
    return out
