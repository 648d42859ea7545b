"""Pictures of a network: the layer graph (folded to a depth, laid out top to bottom) as SVG,
Graphviz DOT or Mermaid, and the self-contained HTML report. Everything here reads a
convcalc.api.Report; nothing is computed twice."""

from __future__ import annotations

FORMATS = ("svg", "dot", "mermaid")


def graph_text(report, format: str = "svg", depth: int | None = None) -> str:
    """The layer graph of a convcalc.api.Report as SVG, Graphviz DOT or Mermaid text, with
    blocks folded to `depth` name parts (None: every layer)."""
    from convcalc.picture.model import picture
    shown = picture(report, depth)
    if format == "svg":
        from convcalc.picture.layout import lay_out
        from convcalc.picture.svg import render_svg
        return render_svg(lay_out(shown))
    if format in ("dot", "mermaid"):
        from convcalc.picture.text_formats import render_dot, render_mermaid
        return (render_dot if format == "dot" else render_mermaid)(shown)
    raise ValueError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
