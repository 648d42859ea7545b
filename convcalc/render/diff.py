"""Diff -> a rich table, markdown (a pull-request comment) or the json contract
{"version": 1, "old", "new", "totals": {metric: {"old", "new", "delta", "percent"}},
 "layers": [...], "thresholds": [...], "ok"}."""

from __future__ import annotations

import json

from convcalc.diff import METRICS, Delta, Diff, LayerDiff, Threshold, layer_rf
from convcalc.render.common import bytes_text, count_text, shape_text

LABEL = {"params": "params", "macs": "MACs", "flops": "FLOPs", "memory": "peak memory",
         "rf": "receptive field"}


def value_text(metric: str, value: int | None) -> str:
    if value is None:
        return "-"
    return bytes_text(value) if metric == "memory" else count_text(value)


def delta_text(metric: str, d: Delta) -> str:
    if d.delta is None:
        return "unknown"
    sign = "+" if d.delta > 0 else "-" if d.delta < 0 else "±"
    size = bytes_text(abs(d.delta)) if metric == "memory" else count_text(abs(d.delta))
    return f"{sign}{size}"


def percent_text(d: Delta) -> str:
    if d.percent is None:
        return "new" if d.delta else "0%"
    return f"{d.percent:+.2f}%"


def _cell(layer, metric: str) -> str:
    if layer is None:
        return ""
    return {"output_shape": shape_text(layer.output_shape), "params": count_text(layer.params),
            "macs": count_text(layer.macs), "rf": str(layer_rf(layer) or ""),
            "kind": layer.kind}[metric]


def _pair(row: LayerDiff, metric: str) -> str:
    a, b = _cell(row.old, metric), _cell(row.new, metric)
    return b if row.status == "added" else a if row.status == "removed" else (
        f"{a} → {b}" if a != b else b)


def layer_rows(d: Diff, all_layers: bool = False) -> list[tuple[str, ...]]:
    """name, status, kind, output, params, MACs, RF ("old → new" where they differ)."""
    return [(row.name, row.status, *(_pair(row, m) for m in
                                     ("kind", "output_shape", "params", "macs", "rf")))
            for row in d.layers if all_layers or row.status != "same"]


def totals_rows(d: Diff) -> list[tuple[str, str, str, str, str]]:
    return [(LABEL[m], value_text(m, d.totals[m].old), value_text(m, d.totals[m].new),
             delta_text(m, d.totals[m]), percent_text(d.totals[m])) for m in METRICS]


def threshold_lines(d: Diff, thresholds: list[Threshold]) -> list[str]:
    crossed = d.crossed(thresholds)
    return [f"{'FAILED' if t in crossed else 'ok'}: {t.text}"
            + (" (cannot be known: " + LABEL[t.metric] + " is unknown or was 0)"
               if t in crossed and t.crossed(d.totals[t.metric]) is None else "")
            for t in thresholds]


def _counts(d: Diff) -> str:
    names = ("added", "removed", "changed", "same")
    return ", ".join(f"{sum(r.status == s for r in d.layers)} {s}" for s in names)


def render_table(d: Diff, thresholds: list[Threshold], all_layers: bool = False):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    layers = Table(title=f"{d.old.file} → {d.new.file}: layers ({_counts(d)})",
                   title_justify="left", header_style="bold")
    for header in ("name", "status", "type", "output", "params", "MACs", "RF"):
        layers.add_column(header, justify="left" if header in ("name", "status", "type")
                          else "right", overflow="fold")
    for row in layer_rows(d, all_layers):
        layers.add_row(*row)
    totals = Table(title="totals", title_justify="left", header_style="bold")
    for header in ("", "old", "new", "delta", "%"):
        totals.add_column(header, justify="left" if not header else "right")
    for row in totals_rows(d):
        totals.add_row(*row)
    lines = [Text(line, style="bold red" if line.startswith("FAILED") else "green")
             for line in threshold_lines(d, thresholds)]
    return Group(*([layers] if any(True for _ in layer_rows(d, all_layers)) else []),
                 totals, *lines)


def render_markdown(d: Diff, thresholds: list[Threshold], all_layers: bool = False) -> str:
    out = [f"### convcalc diff: `{d.old.file}` → `{d.new.file}`", "",
           "| | old | new | delta | % |", "|---|---:|---:|---:|---:|"]
    out += ["| " + " | ".join(row) + " |" for row in totals_rows(d)]
    rows = layer_rows(d, all_layers)
    out += ["", f"Layers: {_counts(d)}."]
    if rows:
        out += ["", "| name | status | type | output | params | MACs | RF |",
                "|---|---|---|---:|---:|---:|---:|"]
        out += ["| `" + row[0] + "` | " + " | ".join(row[1:]) + " |" for row in rows]
    if thresholds:
        out += [""] + [f"- **{line}**" if line.startswith("FAILED") else f"- {line}"
                       for line in threshold_lines(d, thresholds)]
    return "\n".join(out) + "\n"


def _layer_json(layer) -> dict | None:
    if layer is None:
        return None
    return {"type": layer.kind, "output_shape": list(layer.output_shape)
            if layer.output_shape else None, "params": layer.params, "macs": layer.macs,
            "rf": layer_rf(layer)}


def diff_dict(d: Diff, thresholds: list[Threshold]) -> dict:
    crossed = d.crossed(thresholds)
    return {"version": 1, "old": d.old.file, "new": d.new.file,
            "totals": {m: {"old": t.old, "new": t.new, "delta": t.delta,
                           "percent": None if t.percent is None else round(t.percent, 4)}
                       for m, t in d.totals.items()},
            "layers": [{"name": r.name, "status": r.status, "changed": list(r.changed),
                        "old": _layer_json(r.old), "new": _layer_json(r.new)}
                       for r in d.layers],
            "thresholds": [{"rule": t.text, "crossed": t in crossed} for t in thresholds],
            "ok": not crossed}


def render_json(d: Diff, thresholds: list[Threshold]) -> str:
    return json.dumps(diff_dict(d, thresholds), indent=2)
