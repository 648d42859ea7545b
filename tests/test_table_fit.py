"""Tables at 60, 80 and 120 columns never cut a number and never lose a name.

The oracle is the json output of the same command: every number a table prints must be one of
json's numbers formatted whole, in its own column and row order; every layer name is there,
folded onto more lines at most; dropped columns are named in one line.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from convcalc.analysis import analyze_file
from convcalc.render.common import count_text, rf_text, shape_text
from convcalc.render.fit import Column, FittedTable
from convcalc.render.json_report import render_json
from convcalc.render.text import View, render_table

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "convcalc" / "data" / "images" / "chelsea.png"
WIDTHS = (60, 80, 120)


def rendered(renderable, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None, highlight=False,
                      soft_wrap=True)
    console.print(renderable)
    return console.file.getvalue().splitlines()


def boxed_columns(lines: list[str]) -> dict[str, list[str]]:
    """The heavy-box table's columns: header -> the non-empty cells, line by line."""
    header = next(line for line in lines if line.startswith("┃"))
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    columns: dict[str, list[str]] = {name: [] for name in names}
    for line in lines:
        if line.startswith("│"):
            for name, cell in zip(names, line.strip("│").split("│")):
                if cell.strip():
                    columns[name].append(cell.strip())
    return columns


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", ["vgg16", "resnet50"])
def test_check_table_numbers_are_whole(spec, width):
    report = analyze_file(ROOT / "specs" / f"{spec}.yaml")
    layers = json.loads(render_json([report]))["files"][0]["layers"]
    lines = rendered(render_table(report, View(depth=0)), width)  # --all: every layer
    assert all(len(line) <= width for line in lines if line[:1] in "┏┃┡│└")
    columns = boxed_columns(lines)
    expected = {"#": [str(i) for i in range(len(layers))],
                "output": [shape_text(la["output_shape"]) for la in layers],
                "params": [count_text(la["params"]) for la in layers],
                "MACs": [count_text(la["macs"]) for la in layers],
                "RF": [rf_text(la.get("receptive_field"), "size") for la in layers],
                "RF stride": [rf_text(la.get("receptive_field"), "stride") for la in layers]}
    assert "name" in columns and "output" in columns
    assert "".join(columns["name"]) == "".join(la["name"] for la in layers)
    for header, cells in columns.items():
        if header in expected:
            assert cells == [c for c in expected[header] if c], (header, width)
    dropped = [h for h in ("#", "type", "params", "MACs", "RF", "RF stride") if h not in columns]
    start = next((i for i, line in enumerate(lines) if line.startswith("not shown at")), None)
    notes = []
    if start is not None:  # the note, wrapped at the width: its lines up to the closing ")"
        end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(")"))
        notes = [" ".join(line.strip() for line in lines[start:end + 1])]
        assert all(len(line) <= width for line in lines[start:end + 1])
    if dropped:
        assert len(notes) == 1 and all(h in notes[0] for h in dropped)
        assert "--format json" in notes[0]
    else:
        assert not notes
    if width == 120:
        assert not dropped


def test_80_columns_keep_names_and_whole_macs():
    """The issue's reproducer: VGG-16 at 80 columns showed MACs as 1,849,688,06."""
    lines = rendered(render_table(analyze_file(ROOT / "specs" / "vgg16.yaml")), 80)
    text = "\n".join(lines)
    assert "1,849,688,064" in text and "1,849,688,06 " not in text
    assert "features.28" in text


def test_a_300_digit_size_prints_whole_or_in_records():
    big = int("9" * 300)
    from convcalc.analysis import Options
    report = analyze_file(ROOT / "specs" / "vgg16.yaml", Options(input_shape=(3, big, big)))
    text = "\n".join(rendered(render_table(report), 80))
    first = shape_text(report.layers[0].output_shape)
    assert first in text.replace("\n", "")
    assert "e+" in text  # the totals in bytes, scientific past 1024 PiB


def test_nothing_fits_becomes_records_not_cuts():
    table = FittedTable([Column("name", "left", fold=True), Column("value")],
                        [["a_rather_long_layer_name", "1" * 50]])
    lines = rendered(table, 30)
    assert all(len(line) <= 30 for line in lines)
    joined = "".join(line.strip() for line in lines)
    assert "1" * 50 in joined and "a_rather_long_layer_name" in joined


@pytest.fixture(scope="module")
def run_result():
    from convcalc.executor.session import Session
    session = Session.start(ROOT / "specs" / "resnet18.yaml", None, 0, [], None)
    groups = session.run_all([PHOTO], (64, 64), 1, None, True, None)
    return session, groups


NUMBER = re.compile(r"^(-?\d[\d.]*(e[-+]\d+)?|\d+(x\d+)+)$")


@pytest.mark.parametrize("width", WIDTHS)
def test_run_table_numbers_are_whole(run_result, width):
    from convcalc.cli.run import _error_text, _json, _number, _table
    session, groups = run_result
    doc = _json(session, groups, True)
    layers = doc["runs"][0]["layers"]
    allowed = {str(shape_text(la[k])) for la in layers for k in ("predicted", "produced")}
    allowed |= {_number(la[k]) for la in layers for k in ("min", "mean", "max")}
    allowed |= {f"{la['ms']:.2f}" for la in layers} | {_error_text(la["rel_error"])
                                                        for la in layers}
    lines = rendered(_table(session, groups[0], True), width)
    start = next(i for i, line in enumerate(lines) if "──" in line) + 1
    body = []
    for line in lines[start:]:
        if not line.strip() or line.startswith(("→", "not shown")):
            break
        body.append(line)
    names = ""
    for line in body:  # the layer column comes first, after one blank of the edge
        words = line.split()
        if line[1:2] != " ":  # (a piece of) a name; else another column's folded line
            names += words.pop(0)
        for word in words:
            if NUMBER.match(word):
                assert word in allowed or _close_ms(word, layers), (word, width)
    assert names == "".join(la["name"] for la in layers)
    assert "predicted" in lines[start - 2] and "produced" in lines[start - 2]


def _close_ms(word: str, layers) -> bool:
    """ms is rounded to 4 places in json, to 2 in the table."""
    return any(abs(float(word) - la["ms"]) <= 0.0051 for la in layers)


# -- the direct drawing of plain tables: the same bytes as rich's own layout (the oracle) -----

def _drawn(table, width: int, terminal: bool) -> str:
    import io

    from rich.console import Console
    buf = io.StringIO()
    Console(file=buf, width=width, highlight=False, soft_wrap=True, force_terminal=terminal,
            color_system="standard" if terminal else None).print(table)
    return buf.getvalue()


@pytest.mark.parametrize("terminal", [False, True])
def test_plain_tables_drawn_as_rich_draws_them(terminal, monkeypatch):
    import random

    from rich import box
    from rich.text import Text

    from convcalc.render import fit
    from convcalc.render.fit import Column, FittedTable, Literal

    rng = random.Random(13)
    direct = 0
    for _ in range(200):
        ncol = rng.randint(1, 6)
        columns = [Column(rng.choice(["#", "name", "type wide", "x", "é", ""]),
                          rng.choice(["left", "right", "center"]), fold=rng.random() < .3,
                          drop=rng.randint(0, 3)) for _ in range(ncol)]
        options = dict(title=rng.choice(["a/b.yaml (net)", "x" * 50]),
                       title_justify=rng.choice(["left", "center"]), header_style="bold")
        if rng.random() < .5:
            options.update(box=rng.choice([box.SIMPLE_HEAD, box.HEAVY_HEAD, box.ROUNDED]),
                           pad_edge=rng.random() < .5)
        if rng.random() < .5:
            options.update(caption=rng.choice(["→ a caption", "c" * 70]),
                           caption_justify=rng.choice(["left", "center", "right"]))
        table = FittedTable(columns, [], options)
        for _ in range(rng.randint(0, 8)):
            table.add_row(*(rng.choice([
                Text(rng.choice(["", "1", "64x56x56", "a" * rng.randint(1, 40), "中文"])),
                Literal("[b]x"), "[green]✓[/]", "[bold red]0.5[/]", "1,234", "[green]a[/] b"])
                for _ in range(ncol)))
        width = rng.choice([20, 40, 60, 80, 240])
        ours = _drawn(table, width, terminal)
        direct += table._plain_cells() is not None
        with monkeypatch.context() as patched:
            patched.setattr(fit, "_plain", lambda cell: (None, None))
            table.__dict__.pop("_plain", None)
            table.__dict__.pop("_naturals", None)
            assert _drawn(table, width, terminal) == ours
        table.__dict__.pop("_plain", None)
        table.__dict__.pop("_naturals", None)
    assert direct > 50  # the direct path ran often enough to be tested
