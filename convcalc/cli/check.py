"""`convcalc check` and `convcalc kinds`."""

from __future__ import annotations

import gc
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from convcalc.cli import app, console, fail_usage, parse_shape
from convcalc.spec import unreadable


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"
    sarif = "sarif"
    gitlab = "gitlab"
    csv = "csv"


class Optimizer(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    adamw = "adamw"


class SortKey(str, Enum):
    macs = "macs"
    params = "params"
    memory = "memory"


class Units(str, Enum):
    iec = "iec"
    si = "si"


class DType(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    int8 = "int8"


@app.command()
def check(
    files: List[str] = typer.Argument(..., help="spec files (YAML), folders of them (every "
                                      "spec inside, recursively), or - for standard input",
                                      show_default=False),
    format: Format = typer.Option(Format.table, "--format", "-f", metavar="FORMAT",
                                  help="table, json, markdown, github (annotations), sarif "
                                       "(code scanning), gitlab (code quality) or csv"),
    strict: bool = typer.Option(False, "--strict", help="warnings fail too (exit 1)"),
    input: Optional[str] = typer.Option(None, "--input", "-i",
                                        help="override the input: 3x256x256, or 256x256 to keep "
                                             "the spec's channels"),
    dtype: DType = typer.Option(DType.float32, "--dtype", metavar="DTYPE",
                                help="element type for bytes: float32, float16, bfloat16, int8"),
    batch: int = typer.Option(1, "--batch", min=1, metavar="N",
                              help="batch size for activation memory (the table then shows "
                                   "the batch axis)"),
    training: bool = typer.Option(False, "--training", help="the cost of a training step: "
                                  "backward MACs, bytes saved for backward, gradients, "
                                  "optimizer state, peak memory"),
    optimizer: Optimizer = typer.Option(Optimizer.adam, "--optimizer", metavar="OPT",
                                        help="with --training: sgd, momentum, adam, adamw"),
    depth: Optional[int] = typer.Option(None, "--depth", min=0, metavar="N",
                                        help="fold the table to blocks at depth N of the "
                                             "names (layer1, layer1.0); 0: every layer"),
    all_layers: bool = typer.Option(False, "--all", help="every layer (long networks "
                                    "otherwise fold to blocks)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="list the infos (otherwise "
                                 "counted); warnings and errors are always listed"),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="LIST",
                                          help="extra table columns, comma-separated: input, "
                                               "kernel, stride, trainable, flops, share, "
                                               "bytes, rf"),
    sort: Optional[SortKey] = typer.Option(None, "--sort", metavar="KEY",
                                           help="rows by macs, params or memory, largest first"),
    top: Optional[int] = typer.Option(None, "--top", min=1, metavar="N",
                                      help="only the first N rows (with --sort: hotspots)"),
    units: Units = typer.Option(Units.iec, "--units", metavar="UNITS",
                                help="bytes in iec (MiB, the default) or si (MB, as torchinfo)"),
) -> None:
    """Compute every layer's shape, parameters, MACs/FLOPs, memory and receptive field, and
    flag invalid strides, mismatched merges and impossible sizes. Exit 1 on an error.

    Long networks show blocks (--all: every layer); --training adds the cost of training."""
    from convcalc.render.summary import EXTRA_COLUMNS
    from convcalc.render.text import View
    extra = tuple(c.strip() for c in (columns or "").split(",") if c.strip())
    unknown = [c for c in extra if c not in EXTRA_COLUMNS]
    if unknown:
        fail_usage(f"--columns: unknown column {unknown[0]!r} (choose from "
                   f"{', '.join(EXTRA_COLUMNS)}; --training adds the training columns)")
    view = View(0 if all_layers else depth, sort.value if sort else None, top, extra, verbose,
                units.value)
    gc.disable()  # a report is a million small objects, none cyclic garbage: the collector's
    try:          # passes over them took a third of the time on 10,000 layers
        reports, unread = analyse_all(files, input, dtype.value, batch, training,
                                      optimizer.value)
        _print(reports, format, view)
    finally:
        gc.enable()
    for message in unread:
        typer.echo(f"convcalc: error: {message}", err=True)
    if unread:
        raise typer.Exit(2)
    if any(r.failing(strict) for r in reports):
        raise typer.Exit(1)


def analyse_all(files: List[str], input: Optional[str], dtype: str, batch: int,
                training: bool = False, optimizer: str = "adam"):
    """convcalc.check on every source (folders expanded); unreadable ones as messages, so
    that one of them does not stop the others from being checked."""
    from convcalc.api import InputError, check as check_source
    from convcalc.interop import ImportFailure
    from convcalc.sources import expand_paths

    if input:
        parse_shape(input)
    sources, _ = expand_paths(files)
    if not sources:
        fail_usage(f"no spec in {', '.join(files)} (a folder's specs are its *.yaml files "
                   f"with a top-level layers: key)")
    reports, unread = [], []
    for path in sources:
        try:
            reports.append(check_source(Path(path) if path != "-" else "-", input=input,
                                        dtype=dtype, batch=batch, training=training,
                                        optimizer=optimizer))
        except (OSError, UnicodeDecodeError) as err:
            unread.append(unreadable(path, err))
        except ImportFailure as err:
            unread.append(f"{err}" + (f" (hint: {err.hint})" if err.hint else ""))
        except InputError as err:
            fail_usage(f"--{err}")
    return reports, unread


def _print(reports, format: Format, view=None) -> None:
    if format == Format.csv:
        from convcalc.render.csv_report import render_csv
        typer.echo(render_csv(reports, view), nl=False)
    elif format == Format.json:
        from convcalc.render.json_report import render_json
        typer.echo(render_json(reports))
    elif format == Format.markdown:
        from convcalc.render.text import render_markdown
        typer.echo("\n".join(render_markdown(r) for r in reports))
    elif format == Format.github:
        from convcalc.render.text import render_github
        typer.echo("\n".join(render_github(r) for r in reports))
    elif format in (Format.sarif, Format.gitlab):
        from convcalc.render.gitlab import render_gitlab
        from convcalc.render.sarif import render_sarif
        typer.echo((render_sarif if format == Format.sarif else render_gitlab)(reports))
    else:
        from convcalc.render.text import render_table
        out = console()
        for report in reports:
            out.print(render_table(report, view) if view else render_table(report))


@app.command()
def kinds() -> None:
    """List the layer kinds a spec may use, with their parameters (required ones first)."""
    from rich.markup import escape
    from rich.table import Table

    from convcalc.layers import REGISTRY

    table = Table(header_style="bold", show_lines=False)
    for header in ("type", "what", "parameters: required, then optional = default"):
        table.add_column(header, overflow="fold")
    by_class: dict[type, list[str]] = {}
    for name, kind in REGISTRY.items():
        by_class.setdefault(kind.cls, []).append(name)
    for cls, names in sorted(by_class.items(), key=lambda item: sorted(item[1])[0]):
        table.add_row(_names_text(sorted(names)), escape(cls.summary),  # x[a:b] is no markup
                      escape(_params_text(cls.params)))
    console().print(table)


def _names_text(names: list[str]) -> str:
    """The spec names of one kind, one per line (conv1d, conv2d, conv3d)."""
    return "\n".join(names)


def _params_text(params) -> str:
    """'out_channels, kernel_size; stride = 1, bias = true, in_channels = -'"""
    from convcalc.layers.base import REQUIRED
    required = [name for name, p in params.items() if p.default is REQUIRED]
    optional = [f"{name} = {_yaml_text(p.default)}" for name, p in params.items()
                if p.default is not REQUIRED]
    return "; ".join(filter(None, [", ".join(required), ", ".join(optional)]))


def _yaml_text(value) -> str:
    """A default as a spec would write it: true, false, '-' for none."""
    return {True: "true", False: "false", None: "-"}.get(value, str(value)) \
        if isinstance(value, (bool, type(None))) else str(value)
