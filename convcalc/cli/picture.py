"""`convcalc graph` (the layer graph as SVG, DOT or Mermaid) and `convcalc report` (one
self-contained HTML page). Both read any source `check` reads; the pictures are made in
convcalc.picture, this module only reads options, writes files and words errors."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from convcalc.cli import app, fail_usage, parse_shape


class GraphFormat(str, Enum):
    svg = "svg"
    dot = "dot"
    mermaid = "mermaid"


SUFFIX_FORMAT = {".svg": "svg", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
                 ".mermaid": "mermaid", ".md": "mermaid"}


def _analysed(source: str, input: Optional[str]):
    """(Report, Source) of a spec or model file; errors in the spec stay diagnostics (the
    picture colours their layers), an unreadable file is a usage error."""
    from convcalc.api import InputError, analyse, load_source
    from convcalc.interop import ImportFailure
    from convcalc.spec import unreadable

    if input:
        parse_shape(input)
    try:
        read = load_source(source, input)
        return analyse(read.file, read.text, input, training=True), read  # the report shows its cost
    except (OSError, UnicodeDecodeError, ImportFailure) as err:
        fail_usage(unreadable(source, err))
    except InputError as err:
        fail_usage(f"--{err}")


def _write(out: Optional[Path], text: str, reads: tuple = ()) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    from convcalc.files import refuse_target, write_whole
    problem = refuse_target(out, "--out", tuple(r for r in reads if r and str(r) != "-"))
    if problem:
        fail_usage(problem)
    try:
        write_whole(out, lambda stream: stream.write(text.encode("utf-8")))
    except OSError as err:
        fail_usage(f"cannot write {out}: {err.strerror or err}")


@app.command()
def graph(
    source: str = typer.Argument(..., metavar="SOURCE", show_default=False,
                                 help="a spec (YAML), - for standard input, or a model file "
                                      "import reads (.onnx)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE",
                                       help="the file to write (default: standard output)"),
    format: Optional[GraphFormat] = typer.Option(None, "--format", "-f", metavar="FORMAT",
                                                 help="svg, dot (Graphviz) or mermaid (GitHub "
                                                      "markdown); default from -o's suffix, "
                                                      "else svg"),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", min=1, metavar="N",
                                        help="fold blocks deeper than N name parts into one box "
                                             "(layer1.0.conv1 is at depth 3; --depth 2 shows "
                                             "layer1.0 as one box)"),
    input: Optional[str] = typer.Option(None, "--input", "-i",
                                        help="override the input: 3x256x256, or 256x256"),
) -> None:
    """Draw the layer graph top to bottom: each box a layer (or a folded block) with its kind,
    output shape and params or MACs; edges labelled with shapes; blocks as clusters; layers
    with an error or a warning coloured. Exit 1 when the spec has errors (the picture is
    still written)."""
    from convcalc.picture import graph_text

    suffix = out.suffix.lower() if out else ""
    if out is not None and source != "-":
        from convcalc.files import refuse_target
        problem = refuse_target(out, "--out", (source,))
        if problem:  # the spec itself, first: that is the mistake to name
            fail_usage(problem)
    if format is None and suffix and suffix not in SUFFIX_FORMAT:  # never a misnamed file
        fail_usage(f"graph writes SVG (.svg), Graphviz (.dot, .gv) or Mermaid (.mmd, .mermaid, "
                   f".md), not {suffix}: name -o so, or give --format (a bitmap: convert the "
                   "SVG, e.g. rsvg-convert -o graph.png graph.svg)")
    chosen = format.value if format else SUFFIX_FORMAT.get(suffix, "svg")
    report, _ = _analysed(source, input)
    text = graph_text(report, chosen, depth)
    if out is not None and out.suffix.lower() == ".md" and chosen == "mermaid":
        text = f"```mermaid\n{text}```\n"
    _write(out, text, (source,))
    if out is not None:
        typer.echo(f"wrote {out}: {chosen}, {_count(report, depth)}", err=True)
    if not report.ok:
        raise typer.Exit(1)


def _count(report, depth) -> str:
    from convcalc.picture.model import picture
    boxes = len(picture(report, depth).boxes) - 1
    return f"{boxes} boxes" + (f" at depth {depth}" if depth else f" ({len(report.layers)} layers)")


@app.command()
def report(
    source: str = typer.Argument(..., metavar="SOURCE", show_default=False,
                                 help="a spec (YAML) or a model file import reads (.onnx)"),
    out: Path = typer.Option(..., "--out", "-o", metavar="REPORT.html", show_default=False,
                             help="the HTML file to write"),
    image: Optional[Path] = typer.Option(None, "--image", help="a photo: the receptive fields "
                                         "are drawn on it, and the network runs on it for "
                                         "feature maps"),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", metavar="W.npz",
                                           help="state_dict arrays for the feature maps "
                                                "(default: the model file's own, else random)"),
    layers: Optional[str] = typer.Option(None, "--layers", metavar="A,B,...",
                                         help="layers whose feature maps to show (default: the "
                                              "last of each stride)"),
    input: Optional[str] = typer.Option(None, "--input", "-i",
                                        help="override the input: 3x256x256, or 256x256"),
) -> None:
    """Write one self-contained HTML page (no network needed): the graph with pan and zoom,
    the summary and the sortable layer table folded to blocks, the diagnostics, bars of
    params, MACs and memory, receptive fields on an image, and with --image feature maps.
    Exit 1 when the spec has errors (the page is still written and shows them)."""
    from convcalc.executor.images import ImageError
    from convcalc.executor.runner import RunError
    from convcalc.executor.weights import WeightsError, read_weights
    from convcalc.picture.report import render_report

    report, read = _analysed(source, input)
    for path in (image, weights):
        if path is not None and not path.is_file():
            fail_usage(f"cannot read {path}: no such file")
    chosen = [name.strip() for name in layers.split(",") if name.strip()] if layers else None
    try:
        arrays = read_weights(weights) if weights else read.weights
        page = render_report(report, source=source if source != "-" else read.text,
                             image=image, weights=arrays, layers=chosen)
    except (RunError, WeightsError, ImageError) as err:
        hint = getattr(err, "hint", None)
        fail_usage(f"{err}" + (f" (hint: {hint})" if hint else ""))
    _write(out, page, (source, image, weights))
    typer.echo(f"wrote {out}: {len(page.encode('utf-8')) / 1024:.0f} KiB, "
               f"{len(report.layers)} layers", err=True)
    if not report.ok:
        raise typer.Exit(1)
