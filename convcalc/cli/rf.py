"""`convcalc rf`: the input region one output unit sees, drawn on a photo or measured.

    convcalc rf SPEC [--layer NAME] [--unit I,J] [--format json]
    convcalc rf SPEC --image photo.png --unit I,J --out rf.png
    convcalc rf SPEC --verify

Exit status: 0; 1 when the spec has errors or --verify measures something else than the
analysis; 2 a usage error (unknown layer, a unit outside the layer, an unreadable image).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from convcalc.cli import app, fail_usage, full_input, parse_shape
from convcalc.spec import unreadable


STATUS = {"ok": "ok", "inside": "[yellow]inside[/yellow]",
          "differs": "[bold red]DIFFERS[/bold red]"}


class RFFormat(str, Enum):
    table = "table"
    json = "json"


@app.command()
def rf(
    spec: Path = typer.Argument(..., help="spec file (YAML), or an ONNX model (.onnx)", show_default=False),
    layer: Optional[str] = typer.Option(None, "--layer", "-l",
                                        help="layer name (default: the last layer with "
                                             "spatial axes and a known field)"),
    unit: Optional[str] = typer.Option(None, "--unit", "-u",
                                       help="output unit I,J (default: the corner units and "
                                            "the centre unit)"),
    format: RFFormat = typer.Option(RFFormat.table, "--format", "-f", help="output format"),
    input: Optional[str] = typer.Option(None, "--input", "-i",
                                        help="override the input: 3x256x256, or 256x256"),
    image: Optional[Path] = typer.Option(None, "--image",
                                         help="a photo to draw the unit's field on (the "
                                              "centre unit unless --unit)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="the picture to write "
                                       "(default IMAGE.rf.png here, never replacing a file)"),
    verify: bool = typer.Option(False, "--verify",
                                help="measure the fields by running the network on "
                                     "impulses (NumPy executor) and compare"),
) -> None:
    """Show which input pixels an output unit sees: its region per axis (unclipped, and
    clipped to the image) and its centre, for one unit or a layer's corners and centre."""
    from convcalc.receptive import (corner_and_centre_units, receptive_fields, region,
                                    seen_pixels, unit_grid)

    if unit is not None:
        _unit_numbers(unit)  # the syntax first; the range once the layer is known
    report = _analyze(spec, input)
    fields, _ = receptive_fields(report)
    name = _layer_name(report, fields, layer)
    field, shape = fields[name], report.layer(name).output_shape
    image_size = tuple(report.input_shape[1:])
    grid = unit_grid(field, shape)
    units = ([_parse_unit(unit, grid)] if unit else
             [tuple((n - 1) // 2 for n in grid)] if image else corner_and_centre_units(grid))
    regions = [region(field, u, image_size, seen_pixels(report, name, u)) for u in units]
    drawn = _draw(report, name, field, regions[0], image, out) if image or out else None
    checks = _verify(report, name, field, regions) if verify else None
    if format == RFFormat.json:
        typer.echo(json.dumps(_json(report, name, field, regions, drawn, checks), indent=2))
    else:
        _print_table(report, name, field, regions, drawn, checks)
    if checks and not all(m.ok for ms in checks for m in ms):  # "inside" is not a failure
        raise typer.Exit(1)


# -- steps -----------------------------------------------------------------------------------

def _analyze(spec: Path, input: str | None):
    from convcalc.analysis import Options, analyze_file
    from convcalc.interop import ImportFailure

    override = parse_shape(input) if input else None
    try:
        report = analyze_file(spec, Options(input_shape=full_input(override, spec, input)))
    except (OSError, UnicodeDecodeError, ImportFailure) as err:
        fail_usage(unreadable(spec, err))
    errors = [d for d in report.diagnostics if d.severity.value == "error"
              and d.code != "expectation-failed"]  # expected sizes change with --input
    if errors:
        for d in errors:
            typer.echo(d.format(), err=True)
        typer.echo(f"convcalc: {spec} has errors; run convcalc check {spec}", err=True)
        raise typer.Exit(1)
    if not report.input_shape or len(report.input_shape) < 2:
        fail_usage(f"{spec}: the input {list(report.input_shape or [])} has no spatial axes")
    return report


def _layer_name(report, fields, wanted: str | None) -> str:
    """The named layer, or the last one whose output still has spatial axes."""
    from convcalc.spec import did_you_mean

    if wanted is not None:
        wanted = report.graph.output_of(wanted) if report.graph else wanted  # a block: its output
        if wanted not in fields:
            known = [layer.name for layer in report.layers]
            hint = did_you_mean(wanted, known) if wanted not in known else None
            reason = "has no layer" if wanted not in known else "has no receptive field for"
            fail_usage(f"{report.file} {reason} {wanted!r}" + (f"; {hint}" if hint else ""))
        if fields[wanted].unknown:
            fail_usage(f"{report.file}: the receptive field of {wanted!r} is "
                       f"{fields[wanted].unknown}; name a layer before it")
        return wanted
    spatial = [layer.name for layer in report.layers if layer.name in fields
               and not fields[layer.name].collapsed and not fields[layer.name].unknown]
    if not spatial and fields.get(report.layers[-1].name, None) is not None \
            and fields[report.layers[-1].name].unknown:
        fail_usage(f"{report.file}: the receptive field of {report.layers[-1].name!r} is "
                   f"{fields[report.layers[-1].name].unknown}; name a layer before it")
    return spatial[-1] if spatial else report.layers[-1].name


def _unit_numbers(text: str) -> tuple[int, ...]:
    try:
        unit = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        fail_usage(f"--unit {text!r}: expected integers like 0,0, one per spatial axis")
    return unit


def _parse_unit(text: str, grid: tuple[int, ...]) -> tuple[int, ...]:
    unit = _unit_numbers(text)
    if len(unit) != len(grid):
        fail_usage(f"--unit {text!r}: expected {len(grid)} integer(s) like "
                   f"{','.join(['0'] * len(grid))}, one per spatial axis")
    if any(not 0 <= u < n for u, n in zip(unit, grid)):
        fail_usage(f"--unit {text!r} is outside the layer's units "
                   f"{'x'.join(map(str, grid))} (indices from 0)")
    return unit


def _draw(report, name, field, region, image: Path | None, out: Path | None) -> str:
    from convcalc.draw import draw_field, save_atomic
    from convcalc.executor.images import MAX_PIXELS, ImageError, open_image

    if image is None:
        fail_usage("--out names the picture of --image: --image photo.png --out rf.png")
    if len(region.unit) != 2:
        fail_usage(f"--image draws 2-D inputs; {report.file} is {len(region.unit)}-D")
    height, width = report.input_shape[1:]
    if height * width > MAX_PIXELS:
        fail_usage(f"--image: the picture would be {width}x{height}, more than {MAX_PIXELS:,} "
                   f"pixels (hint: draw at a smaller --input)")
    out = _picture_path(image, out)
    try:
        with open_image(image) as photo:
            picture = draw_field(photo, (height, width), region,
                                 _caption(report, name, field, region))
    except ImageError as err:
        fail_usage(f"{err}" + (f" (hint: {err.hint})" if err.hint else ""))
    save_atomic(picture, out)
    return str(out)


def _picture_path(image: Path, out: Path | None) -> Path:
    """--out as given (never the photo itself); without it IMAGE_STEM.rf.png in the current
    folder, or the first free IMAGE_STEM.rf_1.png, ...: an existing file is never replaced."""
    if out is None:
        out, count = Path(f"{image.stem}.rf.png"), 0
        while out.exists():
            count += 1
            out = Path(f"{image.stem}.rf_{count}.png")
        return out
    if not out.parent.is_dir():
        fail_usage(f"--out {out}: the directory {out.parent} does not exist")
    if out.is_dir():
        fail_usage(f"--out {out} is a folder; name the picture to write, e.g. {out / 'rf.png'}")
    if out.exists() and image.exists() and out.resolve() == image.resolve():
        fail_usage(f"--out {out} is the input photo; name another file")
    return out


def _caption(report, name, field, region) -> list[str]:
    from convcalc.receptive import text

    a = field.axes
    seen = ("only padding" if region.empty else
            f"rows {region.first[0]}-{region.last[0]}, columns {region.first[1]}-{region.last[1]}")
    return [f"{name} unit ({region.unit[0]}, {region.unit[1]}) of "
            f"{'x'.join(map(str, report.input_shape[1:]))}: {seen}",
            f"field {_pair(a, 'size')} px, stride {_pair(a, 'stride')}, centre "
            f"({text(region.centre[0])}, {text(region.centre[1])}) (row, column)",
            "yellow: the field; hatched: zero padding; dimmed: pixels it does not see"]


def _pair(axes, key: str) -> str:
    from convcalc.receptive import text

    values = [text(getattr(a, key)) for a in axes]
    return values[0] if len(set(values)) == 1 else "x".join(values)


def _verify(report, name, field, regions):
    from convcalc.rf_measure import executor_run, measure_units

    try:
        run = executor_run(report, name)
    except ImportError:
        fail_usage("--verify needs the NumPy executor (convcalc.executor.runner)")
    except Exception as err:  # noqa: BLE001 - a runner that refuses the spec: one line
        fail_usage(f"--verify: the executor cannot run {report.file}: {err}")
    try:
        return measure_units(run, report.input_shape, list(regions), field.collapsed)
    except (NotImplementedError, MemoryError) as err:
        fail_usage(f"--verify: the executor cannot run {report.file}: "
                   f"{type(err).__name__}: {err}")
    except Exception as err:  # noqa: BLE001 - the runner's RunError, one line with its hint
        hint = getattr(err, "hint", None)
        fail_usage(f"--verify: {err}" + (f" (hint: {hint})" if hint else ""))


# -- output ----------------------------------------------------------------------------------

def _json(report, name, field, regions, drawn, checks) -> dict:
    layer = report.layer(name)
    out = {"version": 1, "file": report.file, "layer": name, "type": layer.type,
           "input": list(report.input_shape), "output_shape": list(layer.output_shape),
           "receptive_field": field.as_dict(), "collapsed": field.collapsed,
           "units": [r.as_dict() for r in regions]}
    if drawn:
        out["image"] = drawn
    if checks is not None:
        out["verify"] = [{"unit": list(r.unit), "ok": all(m.ok for m in ms),
                          "axes": [m.as_dict() for m in ms]} for r, ms in zip(regions, checks)]
    return out


def _print_table(report, name, field, regions, drawn, checks) -> None:
    from rich.console import Console

    from convcalc.layers.base import AXIS_NAMES
    from convcalc.receptive import text
    from convcalc.render.fit import Column, FittedTable

    ndim = len(field.axes)
    nouns = AXIS_NAMES.get(ndim, tuple(f"axis {a}" for a in range(ndim)))
    layer = report.layer(name)
    console = Console(highlight=False)
    console.print(f"{report.file}: [bold]{name}[/bold] ({layer.type}), output "
                  f"{'x'.join(map(str, layer.output_shape))}, input "
                  f"{'x'.join(map(str, report.input_shape))}")
    console.print(f"receptive field: size {_pair(field.axes, 'size')}, stride "
                  f"{_pair(field.axes, 'stride')}, padding {_pair(field.axes, 'padding')}"
                  + (" (one unit: the spatial axes are gone)" if field.collapsed else ""))
    columns = ([Column("unit")] + [Column(f"{noun} (unclipped)", drop=2) for noun in nouns]
               + [Column(f"{noun} in the image") for noun in nouns] + [Column("centre", drop=1)])
    table = FittedTable(columns, [], dict(header_style="bold"))
    for r in regions:
        table.add_row(",".join(map(str, r.unit)),
                      *(f"{text(s)} .. {text(e)}" for s, e in zip(r.start, r.end)),
                      *(("none",) * ndim if r.empty else
                        (f"{f} .. {l}" for f, l in zip(r.first, r.last))),
                      ", ".join(text(c) for c in r.centre))
    console.print(table)
    if checks is not None:
        _print_checks(console, regions, checks, nouns)
    if drawn:
        console.print(f"wrote {drawn}")


def _print_checks(console, regions, checks, nouns) -> None:
    from convcalc.render.fit import Column, FittedTable

    table = FittedTable([Column(h, "left") for h in ("unit", "axis", "predicted", "measured", "")],
                        [], dict(title="measured by the NumPy executor (impulses)",
                                 title_justify="left", header_style="bold"))
    span = lambda b: f"{b[0]} .. {b[1]}" if b else "none"  # noqa: E731
    for r, measures in zip(regions, checks):
        for m in measures:
            table.add_row(",".join(map(str, r.unit)), nouns[m.axis], span(m.predicted),
                          span(m.measured), STATUS[m.status])
    console.print(table)
    bad = sum(not m.ok for ms in checks for m in ms)
    inside = sum(m.status == "inside" for ms in checks for m in ms)
    console.print("[bold red]the measurement differs from the analysis[/bold red]" if bad else
                  "[bold green]the measurement agrees with the analysis[/bold green]"
                  + (f" ({inside} measured spans lie inside the predicted ones: their edge rows"
                     f" fall in holes between windows)" if inside else ""))
