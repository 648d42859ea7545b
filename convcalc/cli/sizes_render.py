"""`convcalc sizes` scans -> a compact summary (rich), or a JSON-ready dict."""

from __future__ import annotations

from convcalc.cli.calc_render import labelled, make_console
from convcalc.sizes import Scan, nearest, progressions, runs, spec_size

AXIS_WORDS = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _axis_text(result: Scan) -> str:
    spatial = len(result.graph.input_shape) - 1
    if result.axis is None:
        return "every spatial axis at once" if spatial > 1 else "the length"
    return f"{AXIS_WORDS.get(spatial, ('axis',) * spatial)[result.axis]} only, the others as in the spec"


def describe(values: list[int], limit: int = 8) -> str:
    """'16k + 12: 117 sizes from 188 to 2044' | runs '63-65, 95-97, ...' | 'none'."""
    if not values:
        return "none"
    found = progressions(values)
    count = f"{len(values)} size{'s' if len(values) != 1 else ''}"
    if found and found.modulus == 1:
        return f"{found.text()} ({count})"
    if found:
        return f"{found.text()}: {count} from {found.first} to {found.last}"
    spans = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs(values)]
    shown = ", ".join(spans[:limit]) + (", ..." if len(spans) > limit else "")
    return f"{count}: {shown}"


def _near_text(values: list[int], target: int | None) -> str:
    if target is None or not values:
        return ""
    below, above = nearest(values, target)
    return " and ".join(str(v) for v in (below, above) if v is not None)


def _own_text(result: Scan, own: int | None) -> str:
    if own is None:
        return "-"
    verdict = result.verdict(own)
    if verdict is None:
        return f"{own} is outside the range"
    if verdict.exact:
        return f"{own}: clean and exact"
    if verdict.clean:
        return f"{own}: clean, not exact ({verdict.layer}: {_short(verdict.message)})"
    return f"{own}: NOT clean ({verdict.layer}, {verdict.code}: {_short(verdict.message)})"


def _short(message: str | None) -> str:
    return (message or "").split("; ")[-1] if message and len(message) > 60 else (message or "")


def print_scan(result: Scan, show_all: bool = False) -> None:
    from rich.text import Text

    console = make_console()
    graph, own = result.graph, spec_size(result.graph, result.axis)
    name = f" ({graph.name})" if graph.name else ""
    console.print(Text(f"{graph.file}{name}: input sizes {result.sizes.start}.."
                       f"{result.sizes.stop - 1}, {_axis_text(result)}", style="bold"))
    clean, exact = result.clean, result.exact
    rows = [("clean", describe(clean), "bold green" if clean else "bold red"),
            ("", "every output positive, every merge lined up, no input pixel unread", "dim"),
            ("exact", "the same sizes" if exact == clean else describe(exact)),
            ("", "and every strided window fits exactly: no padding left unread either", "dim")]
    if clean:
        rows.append(("smallest", f"{clean[0]} clean"
                     + (f", {exact[0]} exact" if exact and exact[0] != clean[0] else "")))
    if own is not None:
        rows.append(("the spec's", _own_text(result, own)))
        near = [("clean", _near_text(clean, own))]
        if exact != clean:
            near.append(("exact", _near_text(exact, own)))
        text = "; ".join(f"{word} {sizes}" for word, sizes in near if sizes)
        if text:
            rows.append(("nearest", text))
    elif result.axis is None:
        shape = "x".join(map(str, graph.input_shape[1:]))
        rows.append(("the spec's", f"{shape} is not square: --axis varies one axis of it"))
    for layer, code, count in result.failures():
        rows.append(("stops", f"{count} size{'s' if count != 1 else ''} first at {layer} ({code})"))
    labelled(rows, console)
    if show_all:
        console.print("clean sizes: " + ", ".join(map(str, clean)))


def scan_json(result: Scan) -> dict:
    own = spec_size(result.graph, result.axis)
    verdict = result.verdict(own) if own is not None else None

    def summary(values: list[int]) -> dict:
        found = progressions(values)
        return {"count": len(values), "text": describe(values),
                "progression": None if found is None else {
                    "modulus": found.modulus, "residues": list(found.residues),
                    "first": found.first, "last": found.last},
                "smallest": values[0] if values else None,
                "nearest": list(nearest(values, own)) if own is not None else None,
                "sizes": values}

    spatial = len(result.graph.input_shape) - 1
    return {"file": result.graph.file, "name": result.graph.name,
            "range": [result.sizes.start, result.sizes.stop - 1],
            "axis": None if result.axis is None else AXIS_WORDS.get(spatial, ())[result.axis],
            "clean": summary(result.clean), "exact": summary(result.exact),
            "spec_input": None if verdict is None else {
                "size": own, "clean": verdict.clean, "exact": verdict.exact,
                "layer": verdict.layer, "code": verdict.code, "message": verdict.message},
            "failures": [{"layer": layer, "code": code, "sizes": count}
                         for layer, code, count in result.failures()]}
