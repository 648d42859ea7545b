"""`convcalc solve` (the settings that give a wanted output) and `convcalc sizes` (the input
sizes a whole network takes cleanly). Registered by importing convcalc.cli.calc.

Exit status: solve 0 when a setting that reads every input pixel fits, 1 when nothing does;
sizes 0 when some size is clean, 1 when none is or the spec has errors; 2 usage errors.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from convcalc.arithmetic import TooLarge
from convcalc.cli import app, fail_usage
from convcalc.cli.calc import (CONVENTION, Convention, OutFormat, PoolType, parse_ints,
                               parse_padding)
from convcalc.spec import unreadable


class Kind(str, Enum):
    conv = "conv"
    pool = "pool"
    tconv = "tconv"


MAX_RANGE = 4096  # values of a --kernel/--stride/--dilation/--output-padding range


def parse_choices(text: str | None, what: str, default: tuple[int, ...],
                  minimum: int = 1) -> tuple[int, ...]:
    """'3' | '3,5,7' | '1-7' | '1..7' | 'any' (the default range) -> candidate values."""
    if text is None or text.strip().lower() == "any":
        return default
    match = re.fullmatch(r"\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*", text)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if low < minimum or high < low:
            fail_usage(f"{what} {text!r}: expected a range like 1-7 with {minimum} <= low <= high")
        if high - low >= MAX_RANGE:
            fail_usage(f"{what} {text!r}: a range of at most {MAX_RANGE} values is searched; "
                       f"narrow it, or list the values (3,5,7)")
        return tuple(range(low, high + 1))
    return tuple(sorted(set(parse_ints(text.replace("x", ","), what, minimum))))


def _axes_sizes(input: str, output: str, ndim: int | None):
    """Per-axis (input, output) pairs: one size for every axis, one per axis, or channels
    first on the input."""
    sizes_in, sizes_out = parse_ints(input, "--input"), parse_ints(output, "--output")
    n = ndim or max(len(sizes_in) - (len(sizes_in) == len(sizes_out) + 1), len(sizes_out), 2)
    if len(sizes_in) == n + 1:
        sizes_in = sizes_in[1:]
    for name, values in (("--input", sizes_in), ("--output", sizes_out)):
        if len(values) not in (1, n):
            fail_usage(f"{name} has {len(values)} sizes for {n} spatial axes: give 1 or {n}")
    def widen(v):
        return (v * n if len(v) == 1 else v)
    return list(zip(widen(sizes_in), widen(sizes_out)))


@app.command("solve")
def solve_command(
    input: str = typer.Option(..., "--input", "-i", show_default=False,
                              help="input size: 224 or 224x224 (the conv's input with --invert)"),
    output: Optional[str] = typer.Option(None, "--output", "-O", show_default=False,
                                         help="wanted output size: 112 or 112x112"),
    kind: Kind = typer.Option(Kind.conv, "--kind", help="the layer to solve for"),
    kernel: Optional[str] = typer.Option(None, "--kernel", "-k", show_default=False,
                                         help="3, 3,5,7 or 1-7 (default: any of 1-16)"),
    stride: Optional[str] = typer.Option(None, "--stride", "-s", show_default=False,
                                         help="2, 1,2 or 1-4 (default: any of 1-16)"),
    padding: Optional[str] = typer.Option(None, "--padding", "-p", show_default=False,
                                          help="fix the padding (1, 0:1, same); default: search"),
    dilation: str = typer.Option("1", "--dilation", "-d", help="1, 1-4 or any (1-8)"),
    output_padding: Optional[str] = typer.Option(None, "--output-padding", show_default=False,
                                                 help="tconv: fix it; default: search"),
    ceil_mode: bool = typer.Option(False, "--ceil-mode", help="pools: round up"),
    type: PoolType = typer.Option(PoolType.max, "--type", "-t", help="pool: max or avg"),
    invert: bool = typer.Option(False, "--invert", help="find the transposed conv that undoes "
                                "a conv: give the conv's --input, --kernel, --stride and "
                                "--padding"),
    convention: Convention = CONVENTION,
    limit: int = typer.Option(10, "--limit", min=0, metavar="N",
                              help="settings to show (0: all)"),
    ndim: Optional[int] = typer.Option(None, "--ndim", min=1, max=3, show_default=False,
                                       metavar="N",
                                       help="spatial axes (default: from the sizes, else 2)"),
    format: OutFormat = typer.Option(OutFormat.table, "--format", "-f", help="output format"),
) -> None:
    """List the settings that give exactly the wanted output size, cleanest first; or, with
    --invert, the transposed conv (padding, output_padding) that undoes a conv."""
    from convcalc import solve as sv
    from convcalc.cli import solve_render as render

    dilations = parse_choices(dilation, "--dilation", tuple(range(1, 9)))
    if invert:
        answers = _invert(input, kernel, stride, padding, dilations, convention.value, ndim)
    else:
        if output is None:
            fail_usage("solve needs --output (or --invert with the conv to undo)")
        paddings = None if padding is None else _one_padding(padding)
        ops = (None if output_padding is None
               else parse_choices(output_padding, "--output-padding", (0,), minimum=0))
        answers = []
        for indices, (size, wanted) in _grouped(_axes_sizes(input, output, ndim)):
            problem = sv.Problem(kind.value, size, wanted, convention.value,
                                 parse_choices(kernel, "--kernel", sv.DEFAULT_KERNELS),
                                 parse_choices(stride, "--stride", sv.DEFAULT_STRIDES),
                                 dilations, paddings, ops, ceil_mode, type.value)
            try:
                answers.append((indices, sv.solve(problem)))
            except TooLarge as err:  # a count beyond what convcalc walks
                fail_usage(f"too large to analyse: {err}")
            except ValueError as err:  # too many combinations to search
                fail_usage(str(err))
    n = 1 + max(i for indices, _ in answers for i in indices)
    if format == OutFormat.json:
        typer.echo(json.dumps(render.answers_json(answers, n, invert), indent=2))
    else:
        render.print_answers(answers, n, invert, limit)
    if any(not answer.clean for _, answer in answers):
        raise typer.Exit(1)


def _one_padding(text: str) -> tuple:
    pads = parse_padding(text)
    if len(pads) != 1:
        fail_usage("solve takes one --padding for every axis (per-axis inputs are solved apart)")
    return pads


def _grouped(pairs):
    groups: dict[tuple[int, int], list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault(pair, []).append(index)
    return [(indices, pair) for pair, indices in groups.items()]


def _invert(input, kernel, stride, padding, dilations, convention, ndim):
    from convcalc.cli.calc import build_axes
    from convcalc.solve import invert_conv
    if kernel is None or stride is None:
        fail_usage("--invert needs the conv's --kernel and --stride")
    if len(dilations) != 1:
        fail_usage("--invert needs one --dilation")
    axes, _ = build_axes(input, kernel, stride, padding, str(dilations[0]), ndim=ndim)
    answers = []
    for indices, conv in _grouped(list(axes)):
        try:
            answers.append((indices, invert_conv(conv, convention)))
        except TooLarge as err:
            fail_usage(f"too large to analyse: {err}")
        except ValueError as err:
            fail_usage(f"the conv to invert: {err}")
    return answers


# -- sizes ----------------------------------------------------------------------------------

@app.command("sizes")
def sizes_command(
    spec: Path = typer.Argument(..., help="spec file (YAML), or an ONNX model (.onnx)", show_default=False),
    range_: str = typer.Option("1..2048", "--range", "-r", help="sizes to try: 1..2048"),
    axis: Optional[str] = typer.Option(None, "--axis", "-a", show_default=False,
                                       help="vary one axis (height, width, depth, length or "
                                            "0, 1, 2), the others as in the spec; default: "
                                            "all at once (square)"),
    show_all: bool = typer.Option(False, "--list", help="also print every clean size (the "
                                  "JSON output always has them)"),
    format: OutFormat = typer.Option(OutFormat.table, "--format", "-f", help="output format"),
) -> None:
    """The input sizes for which the whole network is clean: every output positive, every
    merge lined up, no input pixel left unread; as progressions such as 32k + 1."""
    from convcalc import sizes as sz
    from convcalc.cli import sizes_render as render

    graph = _load_graph(spec)
    low, high = _parse_range(range_)
    axis_index = _axis_index(axis, len(graph.input_shape) - 1)
    result = sz.scan(graph, range(low, high + 1), axis_index)
    if format == OutFormat.json:
        typer.echo(json.dumps(render.scan_json(result), indent=2))
    else:
        render.print_scan(result, show_all)
    if not result.clean:
        raise typer.Exit(1)


def _load_graph(path: Path):
    from convcalc.diagnostics import Severity, SpecError
    from convcalc.graph import build_graph
    from convcalc.spec import parse_spec
    from convcalc.interop import ImportFailure
    from convcalc.sources import read_source
    try:
        source = read_source(path)
    except (OSError, UnicodeDecodeError, ImportFailure) as err:
        fail_usage(unreadable(path, err))
    try:
        graph = build_graph(parse_spec(source.text, source.file))
    except SpecError as err:
        _spec_errors(err.diagnostics)
    errors = [d for d in graph.diagnostics if d.severity == Severity.ERROR]
    if errors or graph.input_shape is None or any(n.layer is None for n in graph.nodes):
        _spec_errors(errors)
    return graph


def _spec_errors(diagnostics) -> None:
    for d in diagnostics:
        typer.echo(d.format(), err=True)
    typer.echo("convcalc: the spec has errors that do not depend on the input size; "
               "`convcalc check` shows them", err=True)
    raise typer.Exit(1)


def _parse_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:\.\.|-|:)\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        fail_usage(f"--range {text!r}: expected LOW..HIGH with 1 <= LOW <= HIGH, e.g. 1..2048")
    if int(match.group(2)) - int(match.group(1)) + 1 > 1_000_000:
        fail_usage(f"--range {text!r}: at most a million sizes")
    return int(match.group(1)), int(match.group(2))


def _axis_index(axis: str | None, spatial: int) -> int | None:
    if axis is None:
        return None
    names = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}.get(spatial, ())
    word = axis.strip().lower()
    if word.isdigit() and int(word) < spatial:
        return int(word)
    if word in names:
        return names.index(word)
    fail_usage(f"--axis {axis!r}: this network's spatial axes are "
               f"{', '.join(names) or spatial} (or 0..{spatial - 1})")
