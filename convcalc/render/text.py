"""Report -> a rich table (terminal), a markdown table, or GitHub workflow annotations."""

from __future__ import annotations

from convcalc.analysis import Report
from convcalc.diagnostics import Severity
from convcalc.render.common import bytes_text, count_text, rf_text, shape_text, si_text
from convcalc.render.fit import Column

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


def _summary(report: Report) -> list[tuple[str, str]]:
    t, o = report.totals, report.options
    return [
        ("input", shape_text(report.input_shape)), ("output", shape_text(report.output_shape)),
        ("params", f"{count_text(t.params)} ({bytes_text(t.param_bytes)} as {o.dtype})"),
        ("MACs", f"{count_text(t.macs)} ({si_text(t.macs)})"),
        ("FLOPs", f"{count_text(t.flops)} ({si_text(t.flops)})"),
        ("activations", f"{bytes_text(t.activation_bytes)} of layer outputs; peak "
                        f"{bytes_text(t.peak_activation_bytes)} alive at once, the input included "
                        f"(batch {o.batch}, {o.dtype})"),
    ]


def _columns(rf: bool) -> list[Column]:
    """The layer table's columns; at narrow widths RF stride, RF, #, type, params go first."""
    columns = [Column("#", drop=3), Column("name", "left", fold=True),
               Column("type", "left", drop=4), Column("output"), Column("params", drop=5),
               Column("MACs", drop=6)]
    return columns + ([Column("RF", drop=2), Column("RF stride", drop=1)] if rf else [])


def render_table(report: Report):
    """A rich renderable: the layer table, the totals and the diagnostics."""
    from rich.console import Group
    from rich.text import Text

    from convcalc.render.fit import FittedTable

    title = report.file + (f" ({report.name})" if report.name else "")
    rf = _has_rf(report)
    table = FittedTable(_columns(rf), [], dict(title=title, title_justify="left",
                                                header_style="bold"))
    for row in _rows(report):
        table.add_row(*(Text(cell) for cell in (row if rf else row[:6])))
    if report.layers:
        summary = [Text.assemble((f"{key:<13}", "bold"), value) for key, value in _summary(report)]
        parts = [table, *summary]
    else:
        parts = [Text(f"{title}: no layer could be analysed", style="bold")]
    for d in report.diagnostics:
        line = Text(f"{d.location()}: ")
        line.append(f"{d.severity.value}[{d.code}]", style=SEVERITY_STYLE[d.severity])
        line.append(f" {d.layer + ': ' if d.layer else ''}{d.message}")
        if d.hint:
            line.append(f" (hint: {d.hint})", style="dim")
        parts.append(line)
    parts.append(Text(_verdict(report), style="bold green" if report.ok else "bold red"))
    return Group(*parts)


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
