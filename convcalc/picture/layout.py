"""Picture -> positions: a layered (Sugiyama) layout from grandalf, pure Python, so that
`pip install convcalc` alone draws the same picture on every machine: layers ranked top to
bottom, crossings reduced, long edges routed through the layers they cross.

Boxes are sized from their text at FONT px (an average glyph is taken as CHAR_EM of the font
size, wide enough for DejaVu Sans and Arial), and every coordinate is in SVG user units."""

from __future__ import annotations

from dataclasses import dataclass

from convcalc.picture.model import Picture, box_lines

FONT = 12
CHAR_EM = 0.6
LINE = FONT + 3
PAD = 6
X_GAP = 28
Y_GAP = 50
MARGIN = 20
CLUSTER_PAD = 5
CLUSTER_LABEL = 12
BOLD_EM = 0.68


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: "Rect") -> bool:
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)


@dataclass(frozen=True)
class Layout:
    picture: Picture
    boxes: dict[str, Rect]  # box id -> rectangle
    edges: tuple[tuple[tuple[float, float], ...], ...]  # points of each picture edge, in order
    clusters: dict[str, Rect]
    width: float
    height: float


def box_size(lines: list[str]) -> tuple[float, float]:
    """(width, height) of a box whose first line (the name) is bold."""
    widest = max([len(lines[0]) * BOLD_EM] + [len(line) * CHAR_EM for line in lines[1:]])
    return widest * FONT + 2 * PAD, len(lines) * LINE + 2 * PAD


class _View:
    def __init__(self, w: float, h: float):
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


class _EdgeView:
    def __init__(self):
        self.points: list = []

    def setpath(self, points) -> None:
        self.points = [tuple(p) for p in points]


def lay_out(picture: Picture) -> Layout:
    """Rank, order and place the boxes; route the edges; draw each cluster around its boxes."""
    from grandalf.graphs import Edge as GEdge, Graph as GGraph, Vertex
    from grandalf.layouts import SugiyamaLayout
    from grandalf.routing import route_with_lines

    vertices = {box.id: Vertex(box.id) for box in picture.boxes}
    for box in picture.boxes:
        vertices[box.id].view = _View(*box_size(box_lines(box)))
    gedges = []
    for edge in picture.edges:
        e = GEdge(vertices[edge.source], vertices[edge.target])
        e.view = _EdgeView()
        gedges.append(e)
    graph = GGraph(list(vertices.values()), gedges)
    for component in graph.C:
        sugiyama = SugiyamaLayout(component)
        sugiyama.xspace, sugiyama.yspace = X_GAP, Y_GAP
        sugiyama.route_edge = route_with_lines
        sugiyama.init_all(roots=[v for v in component.sV if not v.e_in()] or None)
        sugiyama.draw(3)
    return _placed(picture, vertices, gedges)


def _placed(picture: Picture, vertices, gedges) -> Layout:
    rects = {id: Rect(v.view.xy[0] - v.view.w / 2, v.view.xy[1] - v.view.h / 2,
                      v.view.w, v.view.h) for id, v in vertices.items()}
    clusters: dict[str, Rect] = {}
    for name in sorted(picture.clusters, key=lambda n: -n.count(".")):  # innermost first
        inner = [rects[i] for i in picture.clusters[name]]
        inner += [r for other, r in clusters.items() if other.startswith(name + ".")]
        x = min(r.x for r in inner) - CLUSTER_PAD
        y = min(r.y for r in inner) - CLUSTER_PAD - CLUSTER_LABEL
        clusters[name] = Rect(x, y, max(r.x + r.w for r in inner) + CLUSTER_PAD - x,
                              max(r.y + r.h for r in inner) + CLUSTER_PAD - y)
    every = [*rects.values(), *clusters.values()]
    x0, y0 = min(r.x for r in every) - MARGIN, min(r.y for r in every) - MARGIN

    def moved(r: Rect) -> Rect:
        return Rect(r.x - x0, r.y - y0, r.w, r.h)

    rects = {id: moved(r) for id, r in rects.items()}
    clusters = {name: moved(r) for name, r in clusters.items()}
    paths = tuple(tuple((x - x0, y - y0) for x, y in e.view.points) for e in gedges)
    every = [*rects.values(), *clusters.values()]
    width = max([r.x + r.w for r in every] + [x for p in paths for x, _ in p]) + MARGIN
    height = max([r.y + r.h for r in every] + [y for p in paths for _, y in p]) + MARGIN
    return Layout(picture, rects, paths, clusters, width, height)
