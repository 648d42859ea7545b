"""Report -> a rich table (terminal), a markdown table, or GitHub workflow annotations."""

from __future__ import annotations

from convcalc.analysis import Report
from convcalc.diagnostics import Severity
from dataclasses import dataclass

from convcalc.render.common import bytes_text, count_text, rf_text, shape_text, si_text
from convcalc.render.fit import Column, Literal


@dataclass(frozen=True)
class View:
    """What the table shows: depth (None: the default, every layer for short networks,
    blocks for long ones; 0: every layer), sort and top, extra columns, infos listed or
    counted, byte units (iec MiB or si MB)."""

    depth: int | None = None
    sort: str | None = None
    top: int | None = None
    columns: tuple[str, ...] = ()
    verbose: bool = False
    units: str = "iec"

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _has_rf(report: Report) -> bool:
    return any(layer.receptive_field for layer in report.layers)


def _rows(report: Report):
    for index, layer in enumerate(report.layers):
        rf = layer.receptive_field
        lost = "?" if layer.receptive_field_unknown else ""  # moved spatial axes: unknown
        yield (str(index), layer.name, layer.type, shape_text(layer.output_shape),
               count_text(layer.params), count_text(layer.macs), rf_text(rf, "size") or lost,
               rf_text(rf, "stride") or lost)


def _summary(report: Report, units: str = "iec") -> list[tuple[str, str]]:
    t, o = report.totals, report.options

    def size(n):
        return _bytes(n, units)
    params = f"{count_text(t.params)} ({size(t.param_bytes)} as {o.dtype})"
    if t.trainable_params != t.params:
        params += (f"; trainable {count_text(t.trainable_params)}, frozen "
                   f"{count_text(t.params - t.trainable_params)}")
    if t.buffers:
        params += f"; buffers {count_text(t.buffers)}"
    lines = [
        ("input", shape_text(report.input_shape)), ("output", shape_text(report.output_shape)),
        ("params", params),
        ("MACs", f"{count_text(t.macs)} ({si_text(t.macs)})"),
        ("FLOPs", f"{count_text(t.flops)} ({si_text(t.flops)})"),
        ("activations", f"{size(t.activation_bytes)} of layer outputs; peak "
                        f"{size(t.peak_activation_bytes)} alive at once, the input included "
                        f"(batch {o.batch}, {o.dtype})"),
    ]
    return lines + _training_summary(report, units)


def _bytes(n: int, units: str) -> str:
    from convcalc.render.common import si_bytes_text
    return si_bytes_text(n) if units == "si" else bytes_text(n)


def _training_summary(report, units: str) -> list[tuple[str, str]]:
    training = getattr(report, "training", None)
    if training is None:
        return []
    o = report.options
    forward = report.totals.macs * o.batch
    return [
        ("backward", f"{count_text(training.backward_macs)} MACs ({si_text(training.backward_macs)}"
                     f"; forward {si_text(forward)}; batch {o.batch})"),
        ("training", f"saved for backward {_bytes(training.saved_bytes, units)}, gradients "
                     f"{_bytes(training.gradient_bytes, units)}, {training.optimizer} state "
                     f"{_bytes(training.optimizer_bytes, units)}"),
        ("train peak", f"{_bytes(training.peak_bytes, units)} (weights "
                       f"{_bytes(training.weight_bytes, units)} + gradients + optimizer state + "
                       f"activations at their largest {_bytes(training.activation_peak_bytes, units)})"),
    ]


def _columns(rf: bool) -> list[Column]:
    """The layer table's columns; at narrow widths RF stride, RF, #, type, params go first."""
    columns = [Column("#", drop=3), Column("name", "left", fold=True),
               Column("type", "left", drop=4), Column("output"), Column("params", drop=5),
               Column("MACs", drop=6)]
    return columns + ([Column("RF", drop=2), Column("RF stride", drop=1)] if rf else [])


def render_table(report: Report, view: View = View()):
    """A rich renderable: the layer table (every layer, or blocks: see View), the totals and
    the diagnostics (infos counted, listed with View.verbose)."""
    from rich.console import Group
    from rich.text import Text

    from convcalc.render.fit import FittedTable
    from convcalc.render.summary import default_depth

    title = report.file + (f" ({report.name})" if report.name else "")
    depth = default_depth(report) if view.depth is None else (view.depth or None)
    headers, cells = _view_rows(report, view, depth)
    table = FittedTable(_view_columns(headers), [], dict(title=title, title_justify="left",
                                                          header_style="bold"))
    for row in cells:
        table.add_row(*map(Literal, row))
    if report.layers:
        parts = [table, *_view_note(report, view, depth, len(cells)),
                 _Summary(_summary(report, view.units))]
    else:
        parts = [Text(f"{title}: no layer could be analysed", style="bold")]
    for d in report.diagnostics:
        if d.severity == Severity.INFO and not view.verbose:
            continue
        line = Text(f"{d.location()}: ")
        line.append(f"{d.severity.value}[{d.code}]", style=SEVERITY_STYLE[d.severity])
        line.append(f" {d.layer + ': ' if d.layer else ''}{d.message}")
        if d.hint:
            line.append(f" (hint: {d.hint})", style="dim")
        parts.append(line)
    verdict = _verdict(report)
    infos = sum(1 for d in report.diagnostics if d.severity == Severity.INFO)
    if infos and not view.verbose:
        verdict += " (--verbose lists the infos)"
    parts.append(Text(verdict, style="bold green" if report.ok else "bold red"))
    return Group(*parts)


class _Summary:
    """`label        value` lines whose values wrap at word boundaries under themselves when
    the terminal is narrower than a line (the console itself does not wrap: soft_wrap)."""

    def __init__(self, lines: list[tuple[str, str]]):
        self.lines = lines

    def __rich_console__(self, console, options):
        import textwrap

        from rich.text import Text
        room = options.max_width - 13
        for key, value in self.lines:
            parts = textwrap.wrap(value, room, break_long_words=False, break_on_hyphens=False) \
                if room >= 24 and len(value) > room else [value]
            yield Text.assemble((f"{key:<13}", "bold"), parts[0])
            for part in parts[1:]:
                yield Text(" " * 13 + part)


def _view_note(report, view: View, depth, shown: int):
    """One line saying what the table folds or leaves out, and how to see every layer."""
    from rich.text import Text
    total = len(report.layers)
    if shown == total and not view.top:
        return []
    where = f" (blocks at depth {depth})" if depth else ""
    what = (f"the top {shown} rows by {view.sort}" if view.sort else f"{shown} rows") + where
    return [Text(f"showing {what} of {total} layers; --all shows every layer",
                 style="dim")]


TRAINING_HEADERS = ("bwd MACs/step", "saved")
HEADERS = {"input": "input", "kernel": "kernel", "stride": "stride", "trainable": "trainable",
           "flops": "FLOPs", "share": "MACs %", "bytes": "out bytes", "rf": "RF"}


def _view_columns(headers: list[str]) -> list[Column]:
    drops = {"#": 3, "type": 4, "params": 5, "MACs": 6, "RF": 2, "RF stride": 1, "kernel": 7,
             "stride": 7, "input": 8, "FLOPs": 9, "trainable": 9, "out bytes": 9, "MACs %": 10,
             "saved": 11, "bwd MACs/step": 12}
    return [Column(h, "left", fold=True) if h == "name" else
            Column(h, "left", drop=4) if h == "type" else Column(h, drop=drops.get(h, 0))
            for h in headers]


def _view_rows(report: Report, view: View, depth):
    from convcalc.render.summary import batch_shape, input_shape, kernel_stride, rows, share
    batch = report.options.batch
    show_batch = batch > 1
    rf = _has_rf(report)
    headers = ["#", "name", "type", "output" + (f" (N={batch})" if show_batch else ""),
               "params", "MACs"]
    extra = [c for c in view.columns if c in HEADERS and not (c == "rf" and rf)]
    headers += [HEADERS[c] for c in extra]
    training = getattr(report, "training", None) is not None
    if training:
        headers += list(TRAINING_HEADERS)
    if rf:
        headers += ["RF", "RF stride"]
    total_macs = report.totals.macs
    out = []
    for row in rows(report, depth, view.sort, view.top):
        last = row.last
        cells = [str(row.index), row.name, row.type,
                 shape_text(batch_shape(last.output_shape, batch, show_batch)),
                 count_text(row.total("params")), count_text(row.total("macs"))]
        kernel, stride = kernel_stride(report, row)
        values = {"input": shape_text(batch_shape(input_shape(report, row), batch, show_batch)),
                  "kernel": kernel, "stride": stride,
                  "trainable": count_text(row.total("trainable_params")),
                  "flops": count_text(row.total("flops")), "share": share(row, total_macs),
                  "bytes": _bytes(row.total("output_bytes"), view.units),
                  "rf": rf_text(last.receptive_field, "size")}
        cells += [values[c] for c in extra]
        if training:
            cells += [count_text(row.train_total("backward_macs")),
                      _bytes(row.train_total("saved_bytes"), view.units)]
        if rf:
            lost = "?" if last.receptive_field_unknown else ""
            cells += [rf_text(last.receptive_field, "size") or lost,
                      rf_text(last.receptive_field, "stride") or lost]
        out.append(cells)
    return headers, out


def _verdict(report: Report) -> str:
    counts = {s: sum(1 for d in report.diagnostics if d.severity == s) for s in Severity}
    words = [f"{n} {s.value}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    return ("ok" if report.ok else "FAILED") + (f": {', '.join(words)}" if words else "")


def render_markdown(report: Report) -> str:
    rf = _has_rf(report)
    headers = ["#", "name", "type", "output", "params", "MACs"] + (["RF", "RF stride"] if rf else [])
    lines = [f"### {report.file}" + (f" ({report.name})" if report.name else ""), "",
             "| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if h in ("#", "params", "MACs", "RF", "RF stride", "output")
                            else "---" for h in headers) + "|"]
    for row in _rows(report):
        lines.append("| " + " | ".join(f"`{c}`" if i == 1 else c
                                       for i, c in enumerate(row if rf else row[:6])) + " |")
    lines.append("")
    if report.layers:
        lines += [f"- **{k}**: {v}" for k, v in _summary(report)]
    if report.diagnostics:
        lines.append("")
        lines += [f"- `{d.location()}` **{d.severity.value}[{d.code}]** "
                  f"{d.layer + ': ' if d.layer else ''}{d.message}"
                  + (f" _(hint: {d.hint})_" if d.hint else "") for d in report.diagnostics]
    lines += ["", f"**{_verdict(report)}**", ""]
    return "\n".join(lines)


def render_github(report: Report) -> str:
    """GitHub Actions workflow commands: ::error file=F,line=L,col=C,title=T::message"""
    kind = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    lines = []
    for d in report.diagnostics:
        where = ",".join(f"{k}={v}" for k, v in (("file", d.file), ("line", d.line),
                                                ("col", d.column)) if v is not None)
        message = f"{d.layer + ': ' if d.layer else ''}{d.message}" + (
            f" (hint: {d.hint})" if d.hint else "")
        lines.append(f"::{kind[d.severity]} {where},title={d.code}::{_escape(message)}")
    lines.append(f"{report.file}: {_verdict(report)}; params {count_text(report.totals.params)}, "
                 f"MACs {count_text(report.totals.macs)}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
