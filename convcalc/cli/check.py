"""`convcalc check` and `convcalc kinds`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from convcalc.cli import app, console, full_input, parse_shape
from convcalc.spec import unreadable


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"


class DType(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    int8 = "int8"


@app.command()
def check(
    files: List[Path] = typer.Argument(..., help="spec files (YAML)", show_default=False),
    format: Format = typer.Option(Format.table, "--format", "-f", metavar="FORMAT",
                                  help="table, json, markdown or github (annotations)"),
    strict: bool = typer.Option(False, "--strict", help="warnings fail too (exit 1)"),
    input: Optional[str] = typer.Option(None, "--input", "-i",
                                        help="override the input: 3x256x256, or 256x256 to keep "
                                             "the spec's channels"),
    dtype: DType = typer.Option(DType.float32, "--dtype", metavar="DTYPE",
                                help="element type for bytes: float32, float16, bfloat16, int8"),
    batch: int = typer.Option(1, "--batch", min=1, metavar="N",
                              help="batch size for activation memory"),
) -> None:
    """Compute every layer's shape, parameters, MACs/FLOPs, memory and receptive field, and
    flag invalid strides, mismatched merges and impossible sizes. Exit 1 on an error."""
    from convcalc.analysis import Options, analyze_file
    from convcalc.diagnostics import Severity

    override = parse_shape(input) if input else None
    reports, unread = [], []
    for path in files:  # an unreadable file does not stop the others from being checked
        try:
            options = Options(dtype.value, batch, full_input(override, path, input))
            reports.append(analyze_file(path, options))
        except (OSError, UnicodeDecodeError) as err:
            unread.append(unreadable(path, err))
    _print(reports, format)
    for message in unread:
        typer.echo(f"convcalc: error: {message}", err=True)
    if unread:
        raise typer.Exit(2)
    failing = {Severity.ERROR} | ({Severity.WARNING} if strict else set())
    if any(d.severity in failing for r in reports for d in r.diagnostics):
        raise typer.Exit(1)


def _print(reports, format: Format) -> None:
    if format == Format.json:
        from convcalc.render.json_report import render_json
        typer.echo(render_json(reports))
    elif format == Format.markdown:
        from convcalc.render.text import render_markdown
        typer.echo("\n".join(render_markdown(r) for r in reports))
    elif format == Format.github:
        from convcalc.render.text import render_github
        typer.echo("\n".join(render_github(r) for r in reports))
    else:
        from convcalc.render.text import render_table
        out = console()
        for report in reports:
            out.print(render_table(report))


@app.command()
def kinds() -> None:
    """List the layer kinds a spec may use, with their parameters (required ones first)."""
    from rich.table import Table
    from convcalc.layers import REGISTRY

    table = Table(header_style="bold", show_lines=False)
    for header in ("type", "what", "parameters: required, then optional = default"):
        table.add_column(header, overflow="fold")
    by_class: dict[type, list[str]] = {}
    for name, kind in REGISTRY.items():
        by_class.setdefault(kind.cls, []).append(name)
    for cls, names in sorted(by_class.items(), key=lambda item: sorted(item[1])[0]):
        table.add_row(_names_text(sorted(names)), cls.summary, _params_text(cls.params))
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
