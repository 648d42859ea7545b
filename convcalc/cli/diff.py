"""`convcalc diff OLD NEW`: what a change to a network costs, with CI thresholds."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from convcalc.cli import app, console, fail_usage
from convcalc.cli.check import DType


class DiffFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def diff(
    old: str = typer.Argument(..., help="the old spec (or - for standard input)",
                              show_default=False),
    new: str = typer.Argument(..., help="the new spec", show_default=False),
    format: DiffFormat = typer.Option(DiffFormat.table, "--format", "-f", metavar="FORMAT",
                                      help="table, json or markdown (a pull-request comment)"),
    fail_on: List[str] = typer.Option([], "--fail-on", metavar="RULE",
                                      help="exit 1 when a change crosses it: params>+5%, "
                                           "macs>1G, memory>64MiB, rf<-10% (repeatable)"),
    all_layers: bool = typer.Option(False, "--all", help="list unchanged layers too"),
    input: Optional[str] = typer.Option(None, "--input", "-i", help="analyse both at this "
                                        "input: 3x256x256, or 256x256"),
    dtype: DType = typer.Option(DType.float32, "--dtype", metavar="DTYPE",
                                help="element type for memory"),
    batch: int = typer.Option(1, "--batch", min=1, metavar="N", help="batch size for memory"),
) -> None:
    """Compare two networks layer by layer (matched by name) and in total: params, MACs,
    FLOPs, peak memory and receptive field, with signed deltas and percentages. Exit 1 when
    a --fail-on threshold is crossed or a spec has errors."""
    from convcalc.diff import diff as compare, parse_threshold
    from convcalc.render import diff as render

    try:
        rules = [parse_threshold(text) for text in fail_on]
    except ValueError as err:
        fail_usage(f"--fail-on {err}")
    if old == new == "-":
        fail_usage("diff reads standard input once: give - for one of OLD and NEW, a file for "
                   "the other")
    old_report, new_report = _analyse(old, input, dtype, batch), _analyse(new, input, dtype, batch)
    result = compare(old_report, new_report)
    if format == DiffFormat.json:
        typer.echo(render.render_json(result, rules))
    elif format == DiffFormat.markdown:
        typer.echo(render.render_markdown(result, rules, all_layers), nl=False)
    else:
        console().print(render.render_table(result, rules, all_layers))
    if result.crossed(rules):
        raise typer.Exit(1)


def _analyse(source: str, input: Optional[str], dtype: DType, batch: int):
    """convcalc.check; a spec with errors stops the diff (its figures would be partial)."""
    from convcalc.api import InputError, check
    from convcalc.interop import ImportFailure
    from convcalc.spec import unreadable
    try:
        report = check(Path(source) if source != "-" else "-", input=input, dtype=dtype.value,
                       batch=batch)
    except (OSError, UnicodeDecodeError, ImportFailure) as err:
        fail_usage(unreadable(source, err))
    except InputError as err:
        fail_usage(f"--{err}")
    if not report.ok:
        for d in report.failing():
            typer.echo(d.format(), err=True)
        typer.echo(f"convcalc: {source} has errors: its figures would be partial; "
                   f"run convcalc check {source}", err=True)
        raise typer.Exit(1)
    return report
