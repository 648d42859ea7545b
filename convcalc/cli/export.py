"""`convcalc export`: a checked spec as an ONNX model or a PyTorch file (convcalc.api computes,
this prints and writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from convcalc.cli import app, fail_usage

FORMATS = ("onnx", "pytorch")


@app.command("export")
def export(
    spec: Path = typer.Argument(..., metavar="SPEC", show_default=False,
                                help="the spec to export (checked first: errors stop it)"),
    to: str = typer.Option(..., "--to", metavar="onnx|pytorch", show_default=False,
                           help="onnx: a model for onnxruntime, TensorRT, Netron; pytorch: one "
                                "Python file defining class Net"),
    out: Path = typer.Option(..., "--out", "-o", metavar="OUT", show_default=False,
                             help="the file to write (replaced whole, never half-written; "
                                  "onnx past 2 GiB of weights: OUT.data beside it)"),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="W.npz",
                                           help="onnx: the weights (run --save-weights writes "
                                                "them); default: the seeded initialisation"),
    seed: int = typer.Option(0, "--seed", min=0, help="onnx: the seed of the initial weights, "
                                                       "as `run --seed`"),
    opset: int = typer.Option(17, "--opset", help="onnx: the opset to write (13 or newer)"),
) -> None:
    """Export a spec to ONNX or to PyTorch code, so that the model is the checked spec."""
    if to not in FORMATS:
        fail_usage(f"--to {to!r}: choose onnx or pytorch")
    if out.exists() and spec.exists() and out.resolve() == spec.resolve():
        fail_usage(f"--out {out} is the spec itself: choose another file")
    if out.is_dir():
        fail_usage(f"--out {out} is a folder: name a file")
    from convcalc.files import refuse_target
    problem = refuse_target(out, "--out", (spec, *([weights] if weights else [])))
    if problem:
        fail_usage(problem)
    if to == "pytorch" and (weights is not None or opset != 17):
        fail_usage("--weights and --opset are for --to onnx: the PyTorch file loads weights "
                   "with load_state_dict")
    from convcalc.files import write_whole
    text = _pytorch(spec) if to == "pytorch" else None
    if text is not None:
        write_whole(out, lambda stream: stream.write(text.encode("utf-8")))
        typer.echo(f"wrote {out}: class Net, weights as `run --save-weights` writes them")
        return
    from convcalc.interop.onnx_export import data_file
    problem = refuse_target(data_file(out), f"{out}.data (the weights' file past 2 GiB)",
                            (spec, *([weights] if weights else [])))
    if problem:
        fail_usage(problem)
    written = _onnx(spec, weights, seed, opset, out)
    import onnx
    model = onnx.load(str(out), load_external_data=False)
    dims = ", ".join(str(d.dim_value) for d in model.graph.input[0].type.tensor_type.shape.dim[1:])
    said = (f"wrote {out}: {len(model.graph.node)} ONNX nodes, opset {opset}, "
            f"{len(model.graph.initializer)} initializers, input 'input' [N, {dims}]")
    if len(written) > 1:
        said += (f"; the weights are past protobuf's 2 GiB, so they are in {written[1]} "
                 "(ONNX external data: keep both files together)")
    typer.echo(said)


def _fail(message: str, hint: str | None = None) -> None:
    typer.echo(f"convcalc: error: {message}" + (f" (hint: {hint})" if hint else ""), err=True)
    raise typer.Exit(1)


def _onnx(spec: Path, weights: Path | None, seed: int, opset: int, out: Path) -> list:
    """The files written by the API's save_onnx; its failures as one line."""
    from convcalc.api import save_onnx
    from convcalc.executor.runner import RunError
    from convcalc.executor.weights import WeightsError, read_weights
    from convcalc.interop import ImportFailure
    from convcalc.interop.onnx_export import ExportError
    from convcalc.spec import unreadable
    try:
        found = read_weights(weights) if weights is not None else None
    except WeightsError as err:
        _fail(str(err), err.hint)
    except OSError as err:
        _fail(f"cannot read {weights}: {err.strerror or err}")
    try:
        return save_onnx(str(spec), out, weights=found, seed=seed, opset=opset)
    except (ExportError, WeightsError) as err:
        _fail(str(err), err.hint)
    except RunError as err:
        _fail(str(err), getattr(err, "hint", None))
    except (UnicodeDecodeError, ImportFailure) as err:
        _fail(unreadable(spec, err))
    except OSError as err:
        if err.filename is not None and Path(str(err.filename)) == spec:
            _fail(unreadable(spec, err))
        _fail(f"cannot write {out}: {err.strerror or err}", "nothing was left half-written")
    return []


def _pytorch(spec: Path) -> str:
    from convcalc.api import export_pytorch
    from convcalc.executor.runner import RunError
    from convcalc.interop import ImportFailure
    from convcalc.interop.torch_export import ExportError
    try:
        return export_pytorch(str(spec))
    except ExportError as err:
        _fail(str(err))
    except RunError as err:  # a spec with errors
        _fail(str(err), getattr(err, "hint", None))
    except (OSError, UnicodeDecodeError, ImportFailure) as err:
        from convcalc.spec import unreadable
        _fail(unreadable(spec, err))
