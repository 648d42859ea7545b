"""`convcalc import`: a model people already have -> the spec a person would write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from convcalc.cli import app, fail_usage, parse_shape


@app.command("import")
def import_(
    source: str = typer.Argument(..., metavar="SOURCE", show_default=False,
                                 help="a .onnx file, or MODULE:CALLABLE, a factory returning a "
                                      "torch.nn.Module (torchvision.models:resnet50)"),
    out: Path = typer.Option(..., "--out", "-o", metavar="OUT.yaml", show_default=False,
                             help="the spec to write"),
    weights_out: Optional[Path] = typer.Option(None, "--weights-out", metavar="OUT.npz",
                                               help="also write the model's weights, "
                                                    "for run --weights"),
    input: Optional[str] = typer.Option(None, "--input", "-i",
                                        help="input size without the batch: 3x224x224 (fixes an "
                                             "ONNX file's symbolic sizes; traces a PyTorch model)"),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="JSON",
                                         help="keyword arguments for the factory, as JSON: "
                                              "'{\"num_classes\": 10}'"),
) -> None:
    """Import an ONNX file or a PyTorch model as a convcalc spec (and its weights)."""
    from convcalc.files import write_whole
    from convcalc.interop import ImportFailure, import_model
    from convcalc.interop.spec_text import to_yaml

    shape = parse_shape(input) if input else None
    factory_kwargs = _kwargs(kwargs)
    _check_targets(source, out, weights_out)
    try:
        imported = import_model(source, input=shape, kwargs=factory_kwargs)
    except ImportFailure as err:
        hint = f" (hint: {err.hint})" if err.hint else ""
        typer.echo(f"convcalc: error: {err}{hint}", err=True)
        raise typer.Exit(2)
    text = to_yaml(imported.spec, f"imported by convcalc from {source}")
    write_whole(out, lambda stream: stream.write(text.encode("utf-8")))
    written = [str(out)]
    if weights_out is not None:
        from convcalc.executor.weights import save_weights
        save_weights(weights_out, imported.weights)
        written.append(str(weights_out))
    typer.echo(f"imported {source}: {len(imported.spec['layers'])} layers; wrote "
               + ", ".join(written))
    for note in imported.notes:
        typer.echo(f"note: {note}")


def _check_targets(source: str, out: Path, weights_out: Path | None) -> None:
    """-o and --weights-out: writable, distinct, and never the model file being imported."""
    from convcalc.files import refuse_target
    reads = (source,) if Path(source).exists() else ()
    for option, path in (("--out", out), ("--weights-out", weights_out)):
        if path is not None:
            problem = refuse_target(path, option, reads)
            if problem:
                fail_usage(problem)
    if weights_out is not None and out.resolve() == weights_out.resolve():
        fail_usage(f"--out and --weights-out are the same file ({out}); name two files")


def _kwargs(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        fail_usage(f"--kwargs is not JSON: {err.msg} at character {err.pos}")
    if not isinstance(value, dict):
        fail_usage("--kwargs must be a JSON object: '{\"num_classes\": 10}'")
    return value
