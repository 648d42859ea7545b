"""Layout -> SVG text: clusters behind, then edges with their shape labels, then the boxes.
Every box is a <g class="node"> with data-name (its layer or block) and data-members (the
layers it stands for), so that the report can link a click to the table's row."""

from __future__ import annotations

from html import escape

from convcalc.picture.layout import FONT, LINE, PAD, Layout
from convcalc.picture.model import box_lines

FILL = {None: "#ffffff", "info": "#eef5ff", "warning": "#fff4d6", "error": "#ffe0e0"}
STROKE = {None: "#555555", "info": "#3b78c4", "warning": "#d08a00", "error": "#cc2222"}
KIND_FILL = {"input": "#e8f4e8", "block": "#f1eefa"}
STYLE = (
    "text{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif}"
    ".node rect{stroke-width:1.3}.node .name{font-weight:bold}"
    ".node .dim{fill:#444}.edge{fill:none;stroke:#777;stroke-width:1.2}"
    ".elabel{fill:#666;font-size:9.5px}.cluster rect{fill:#f7f7fb;stroke:#b9b9d0;"
    "stroke-dasharray:4 3}.cluster text{fill:#7a7a9a;font-size:11px}"
    ".node.error rect{stroke-width:2.5}.node.warning rect{stroke-width:2.2}"
)


def render_svg(layout: Layout) -> str:
    """The whole picture as a standalone SVG document."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="convcalc-graph" '
             f'width="{layout.width:.0f}" height="{layout.height:.0f}" '
             f'viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" font-size="{FONT}">',
             f"<title>{escape(layout.picture.title)}</title>",
             f"<style>{STYLE}</style>",
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
             'fill="#777"/></marker></defs>',
             '<rect width="100%" height="100%" fill="#ffffff"/>']
    parts += _clusters(layout)
    parts += _edges(layout)
    parts += _boxes(layout)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _clusters(layout: Layout) -> list[str]:
    out = []
    for name, r in sorted(layout.clusters.items(), key=lambda item: item[0].count(".")):
        out.append(f'<g class="cluster" data-name="{escape(name)}"><rect x="{r.x:.1f}" '
                   f'y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" rx="6"/>'
                   f'<text x="{r.x + 6:.1f}" y="{r.y + LINE - 2:.1f}">{escape(name)}</text></g>')
    return out


def _edges(layout: Layout) -> list[str]:
    out = []
    for edge, points in zip(layout.picture.edges, layout.edges):
        if len(points) < 2:
            continue
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
        (x0, y0), (x1, y1) = points[0], points[1]
        lx, ly = x0 + (x1 - x0) * 0.35 + 4, y0 + (y1 - y0) * 0.35 + 3
        out.append(f'<g class="edge-group" data-source="{edge.source}" data-target="{edge.target}">'
                   f'<path class="edge" d="{d}" marker-end="url(#arrow)"/>'
                   f'<text class="elabel" x="{lx:.1f}" y="{ly:.1f}">{escape(edge.label)}</text></g>')
    return out


def _boxes(layout: Layout) -> list[str]:
    out = []
    for box in layout.picture.boxes:
        r = layout.boxes[box.id]
        fill = FILL[box.severity] if box.severity else KIND_FILL.get(box.kind, FILL[None])
        lines = box_lines(box)
        texts = []
        for i, line in enumerate(lines):
            cls = "name" if i == 0 else "dim"
            texts.append(f'<text class="{cls}" x="{r.x + PAD:.1f}" '
                         f'y="{r.y + PAD + (i + 1) * LINE - 4:.1f}">{escape(line)}</text>')
        tip = "\n".join(lines + ([f"{box.severity}: see the diagnostics"] if box.severity else []))
        out.append(f'<g class="node{" " + box.severity if box.severity else ""}" id="node-{box.id}" '
                   f'data-name="{escape(box.name)}" data-members="{escape(" ".join(box.members))}">'
                   f"<title>{escape(tip)}</title>"
                   f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" rx="4" '
                   f'fill="{fill}" stroke="{STROKE[box.severity]}"/>' + "".join(texts) + "</g>")
    return out
