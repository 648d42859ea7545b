"""`convcalc conv`, `convcalc pool`, `convcalc tconv`: one layer's output size per axis, with
the formula written out, the fit analysis and the receptive-field step; `--compare` puts the
frameworks side by side. `solve` and `sizes` live in convcalc.cli.inverse (registered here).

Exit status: 0 clean; 1 when the layer leaves real input pixels unread or its output is not
positive; 2 a usage error (including a setting the chosen framework rejects).
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Optional

import typer

from convcalc.arithmetic import TooLarge
from convcalc.cli import app, fail_usage
from convcalc.conventions import CONVENTIONS, SAME_WORDS, Axis

Convention = Enum("Convention", {name: name for name in CONVENTIONS}, type=str)


class OutFormat(str, Enum):
    table = "table"
    json = "json"


class PoolType(str, Enum):
    max = "max"
    avg = "avg"


# -- reading the options --------------------------------------------------------------------

def parse_ints(text: str, what: str, minimum: int = 1) -> tuple[int, ...]:
    """'3', '3x3', '3,1' -> a tuple of ints >= minimum (a one-line usage error otherwise)."""
    try:
        values = tuple(int(v) for v in re.split(r"[x,]", text.strip().lower()))
    except ValueError:
        values = ()
    if not values or any(v < minimum for v in values):
        fail_usage(f"{what} {text!r}: expected integers >= {minimum} like 3 or 3x3")
    return values


def parse_padding(text: str | None) -> tuple:
    """None | same | valid | same_upper | same_lower | 1 | 1x2 | 0:1 | 0:1,1:1 | [[0,1],[1,1]].
    Returns a tuple with one entry per given axis: (before, after) or a word."""
    if text is None:
        return (None,)
    word = text.strip().lower().replace("-", "_")
    if word in (*SAME_WORDS, "valid"):
        return (word,)
    if word.startswith("["):
        try:
            value = json.loads(word)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and value:
            word = ",".join(f"{v[0]}:{v[1]}" if isinstance(v, list) and len(v) == 2 else str(v)
                            for v in value)
    pads = []
    for token in re.split(r"[x,]", word):
        parts = token.split(":")
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            fail_usage(f"--padding {text!r}: expected same, valid, an int, per-axis ints (1x2), "
                       f"before:after pairs (0:1 or 0:1,1:1)")
        numbers = [int(p) for p in parts]
        pads.append((numbers[0], numbers[-1]))
    return tuple(pads)


def build_axes(input: str, kernel: str, stride: str | None, padding: str | None,
               dilation: str, output_padding: str | None = None, ceil_mode: bool = False,
               ndim: int | None = None) -> tuple[tuple[Axis, ...], int | None]:
    """One Axis per spatial axis, and the channel count if --input starts with one.

    The spatial axes: --ndim, else the longest per-axis option (3x3x3: three), else as many
    as --input gives (16x224x224: a 3-D input; 2 for a single size). When the axes are fixed
    that way, one more --input value is the channels, first (3x224x224 with --kernel 3x3)."""
    given = {"--kernel": parse_ints(kernel, "--kernel"),
             "--stride": parse_ints(stride, "--stride") if stride else None,
             "--padding": parse_padding(padding),
             "--dilation": parse_ints(dilation, "--dilation"),
             "--output-padding": (parse_ints(output_padding, "--output-padding", 0)
                                  if output_padding is not None else (None,))}
    sizes = parse_ints(input, "--input")
    longest = max(len(v) for v in given.values() if v is not None)
    if ndim or longest > 1:
        n = ndim or longest
    else:
        n = min(len(sizes), 3) if len(sizes) > 1 else 2
    channels = None
    if len(sizes) == n + 1:
        channels, sizes = sizes[0], sizes[1:]
    elif len(sizes) == 1:
        sizes = sizes * n
    elif len(sizes) != n:
        fail_usage(f"--input {input!r} has {len(sizes)} sizes for {n} spatial axes: give 1, "
                   f"{n}, or {n + 1} with the channels first")
    for name, values in given.items():
        if values is not None and len(values) not in (1, n):
            fail_usage(f"{name} has {len(values)} values for {n} spatial axes: give 1 or {n}")
    per = {name: (v * n if v is not None and len(v) == 1 else v) for name, v in given.items()}
    strides = per["--stride"] or per["--kernel"]  # pools: stride defaults to the kernel
    return tuple(Axis(sizes[a], per["--kernel"][a], strides[a], per["--dilation"][a],
                      per["--padding"][a], per["--output-padding"][a], ceil_mode)
                 for a in range(n)), channels


# -- the commands ---------------------------------------------------------------------------

INPUT = typer.Option(..., "--input", "-i", show_default=False,
                     help="input size: 224 (square), 224x224, 16x224x224 (3-D)")
KERNEL = typer.Option(..., "--kernel", "-k", show_default=False, help="kernel: 3 or 3x3 or 3,1")
PADDINGS = "1, 1x2 (per axis), 0:1 (before:after), 0:1,1:1"
PADDING = typer.Option(None, "--padding", "-p", show_default=False,
                       help=f"{PADDINGS}, same, valid, same_upper or same_lower (ONNX); "
                            f"default 0")
POOL_PADDING = typer.Option(None, "--padding", "-p", show_default=False,
                            help=f"{PADDINGS}, same, valid, same_upper or same_lower (ONNX); "
                                 f"default 0 (Darknet's maxpool: a total of size - 1)")
TCONV_PADDING = typer.Option(None, "--padding", "-p", show_default=False,
                             help="1, 1x2 (per axis), 0:1 (before:after; PyTorch, ONNX), "
                                  "same (Keras, ONNX, Darknet), same_lower (ONNX) or valid "
                                  "(Keras); default 0")
DILATION = typer.Option("1", "--dilation", "-d", help="dilation: 1 = none")
CONVENTION = typer.Option(Convention("torch"), "--convention", "-c", metavar="NAME",
                          help="whose rules: torch, tensorflow, caffe, onnx or darknet")
COMPARE = typer.Option(False, "--compare", help="every convention side by side")
NDIM = typer.Option(None, "--ndim", min=1, max=3, show_default=False, metavar="N",
                    help="spatial axes (default: from the options, else 2)")
FORMAT = typer.Option(OutFormat.table, "--format", "-f", help="output format")


@app.command("conv")
def conv_command(input: str = INPUT, kernel: str = KERNEL,
                 stride: str = typer.Option("1", "--stride", "-s", help="stride"),
                 padding: Optional[str] = PADDING, dilation: str = DILATION,
                 convention: Convention = CONVENTION, compare: bool = COMPARE,
                 format: OutFormat = FORMAT, ndim: Optional[int] = NDIM) -> None:
    """Output size of a convolution, with the formula, the fit and the receptive-field step."""
    axes, channels = build_axes(input, kernel, stride, padding, dilation, ndim=ndim)
    _run("conv", axes, channels, convention.value, compare, format)


@app.command("pool")
def pool_command(input: str = INPUT, kernel: str = KERNEL,
                 stride: Optional[str] = typer.Option(None, "--stride", "-s",
                                                      help="stride (default: the kernel)"),
                 padding: Optional[str] = POOL_PADDING, dilation: str = DILATION,
                 ceil_mode: bool = typer.Option(False, "--ceil-mode", help="round up (PyTorch)"),
                 type: PoolType = typer.Option(PoolType.max, "--type", "-t", help="max or avg"),
                 convention: Convention = CONVENTION, compare: bool = COMPARE,
                 format: OutFormat = FORMAT, ndim: Optional[int] = NDIM) -> None:
    """Output size of a max or average pool (floor, ceil_mode, Caffe's ceil, Darknet's padding)."""
    axes, channels = build_axes(input, kernel, stride, padding, dilation, ceil_mode=ceil_mode,
                                ndim=ndim)
    _run("pool", axes, channels, convention.value, compare, format, type.value)


@app.command("tconv")
def tconv_command(input: str = INPUT, kernel: str = KERNEL,
                  stride: str = typer.Option("1", "--stride", "-s", help="stride"),
                  padding: Optional[str] = TCONV_PADDING, dilation: str = DILATION,
                  output_padding: Optional[str] = typer.Option(
                      None, "--output-padding", "-o", show_default=False,
                      help="extra rows at the end, < max(stride, dilation); default 0"),
                  convention: Convention = CONVENTION, compare: bool = COMPARE,
                  format: OutFormat = FORMAT, ndim: Optional[int] = NDIM) -> None:
    """Output size of a transposed convolution, and the convolution it undoes."""
    axes, channels = build_axes(input, kernel, stride, padding, dilation, output_padding,
                                ndim=ndim)
    _run("tconv", axes, channels, convention.value, compare, format)


def _run(kind: str, axes, channels, convention: str, compare: bool, format: OutFormat,
         pool_type: str = "max") -> None:
    """Evaluate, print, exit: 2 if the chosen framework rejects the setting (unless
    comparing), 1 if the layer leaves real pixels unread or has an empty output."""
    from convcalc import single_layer as sl
    from convcalc.cli import calc_render as render

    query = sl.Query(kind, axes, convention, pool_type)
    try:
        result = sl.evaluate(query)
        rows = sl.compare(query) if compare else []
    except TooLarge as err:  # a count beyond what convcalc walks (arithmetic.HOLE_CLASSES_LIMIT)
        fail_usage(f"too large to analyse: {err}")
    if compare:
        if format == OutFormat.json:
            typer.echo(json.dumps(render.compare_json(result, rows, channels), indent=2))
        else:
            render.print_compare(result, rows, channels)
        if result.unsupported:
            return
    elif result.unsupported:
        fail_usage(f"{result.unsupported} (--compare shows the other conventions)")
    elif format == OutFormat.json:
        typer.echo(json.dumps(render.result_json(result, channels), indent=2))
    else:
        render.print_result(result, channels)
    if not result.clean:
        raise typer.Exit(1)


from convcalc.cli import inverse  # noqa: E402,F401 - registers `solve` and `sizes`
