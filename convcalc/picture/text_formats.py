"""Picture -> Graphviz DOT (for `dot -Tsvg`) and Mermaid (`flowchart TB`, which GitHub draws in
markdown): the same boxes, edges, labels, clusters and diagnostic colours as the SVG."""

from __future__ import annotations

from convcalc.picture.model import Picture, box_lines
from convcalc.picture.svg import FILL, KIND_FILL, STROKE


def _tree(picture: Picture) -> dict[str | None, list[str]]:
    """cluster -> its direct child clusters (None: the top level)."""
    children: dict[str | None, list[str]] = {None: []}
    names = set(picture.clusters)
    for name in sorted(names, key=lambda n: (n.count("."), n)):
        parent = None
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:i]) in names:
                parent = ".".join(parts[:i])
                break
        children.setdefault(parent, []).append(name)
        children.setdefault(name, [])
    return children


def _home(picture: Picture) -> dict[str, str | None]:
    """box id -> the innermost cluster that holds it."""
    home: dict[str, str | None] = {}
    for box in picture.boxes:
        inside = [g for g in box.group if g in picture.clusters]
        home[box.id] = inside[-1] if inside else None
    return home


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_dot(picture: Picture) -> str:
    lines = [f'digraph "{_dot_text(picture.title)}" {{', "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#777777", fontcolor="#666666"];']
    home, tree = _home(picture), _tree(picture)
    by_cluster: dict[str | None, list] = {}
    for box in picture.boxes:
        by_cluster.setdefault(home[box.id], []).append(box)

    def emit(cluster: str | None, indent: str) -> None:
        for box in by_cluster.get(cluster, []):
            fill = FILL[box.severity] if box.severity else KIND_FILL.get(box.kind, FILL[None])
            label = "\\n".join(_dot_text(line) for line in box_lines(box))
            lines.append(f'{indent}{box.id} [label="{label}", fillcolor="{fill}", '
                         f'color="{STROKE[box.severity]}"];')
        for child in tree.get(cluster, []):
            lines.append(f'{indent}subgraph "cluster_{_dot_text(child)}" {{')
            lines.append(f'{indent}  label="{_dot_text(child)}"; style="dashed,rounded"; '
                         f'color="#b9b9d0"; fontcolor="#7a7a9a";')
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    for edge in picture.edges:
        lines.append(f'  {edge.source} -> {edge.target} [label="{_dot_text(edge.label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))


def render_mermaid(picture: Picture) -> str:
    lines = ["flowchart TB"]
    home, tree = _home(picture), _tree(picture)
    by_cluster: dict[str | None, list] = {}
    for box in picture.boxes:
        by_cluster.setdefault(home[box.id], []).append(box)
    ids = {name: f"c{i}" for i, name in enumerate(sorted(picture.clusters))}

    def emit(cluster: str | None, indent: str) -> None:
        for box in by_cluster.get(cluster, []):
            label = "<br/>".join(_mermaid_text(line) for line in box_lines(box))
            lines.append(f'{indent}{box.id}["{label}"]')
            if box.severity:
                lines.append(f"{indent}class {box.id} {box.severity}")
        for child in tree.get(cluster, []):
            lines.append(f'{indent}subgraph {ids[child]}["{_mermaid_text(child)}"]')
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit(None, "  ")
    for edge in picture.edges:
        lines.append(f'  {edge.source} -->|"{_mermaid_text(edge.label)}"| {edge.target}')
    for level in ("error", "warning", "info"):
        lines.append(f"  classDef {level} fill:{FILL[level]},stroke:{STROKE[level]},stroke-width:2px")
    return "\n".join(lines) + "\n"
