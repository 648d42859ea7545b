"""`convcalc run`: run a spec forward on images with NumPy and compare every layer's produced
shape with the analysis' prediction; `--verify` recomputes sampled positions directly.

Exit status: 0 every shape as predicted (and verified); 1 a shape differs, --verify found
an error past its tolerance, or an output holds NaN or inf; 2 an input could not be read (the
others ran), or the run could not start (spec with errors, unreadable weights, too much
memory, bad option). numpy and Pillow are imported only when this runs.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from convcalc.cli import app, fail_usage, parse_shape

if TYPE_CHECKING:
    from convcalc.executor.session import Group, Session


class RunFormat(str, Enum):
    table = "table"
    json = "json"


class Normalize(str, Enum):
    imagenet = "imagenet"


UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "kb": 10**3, "m": 2**20, "mib": 2**20,
         "mb": 10**6, "g": 2**30, "gib": 2**30, "gb": 10**9, "t": 2**40, "tib": 2**40, "tb": 10**12}


def parse_bytes(text: str) -> int:
    """'2GiB', '512MB', '1.5g', '1000000' -> bytes (GiB/MiB/KiB and G/M/K binary, GB decimal)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    value = float(match.group(1)) * UNITS.get(match.group(2), 0) if match else 0.0
    if not match or match.group(2) not in UNITS or not 1 <= value <= 2**70:
        fail_usage(f"--max-memory {text!r}: expected a size like 2GiB, 512MB or 1000000 "
                   f"(from 1 byte to 1 ZiB)")
    return int(value)


@app.command()
def run(
    spec: Path = typer.Argument(..., help="spec file (YAML), or an ONNX model (.onnx)", show_default=False),
    inputs: List[Path] = typer.Argument(..., help="images (PNG, JPEG, BMP, TIFF, WebP), folders "
                                        "of them, or .npy arrays (C, *spatial)",
                                        show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the output (and "
                                       "--save-layer outputs) as PNG and .npy into this folder"),
    resize: Optional[str] = typer.Option(None, "--resize", help="resize images to HxW first"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the random weights (0 or more)"),
    weights: Optional[Path] = typer.Option(None, "--weights", help=".npz keyed by PyTorch "
                                           "state_dict names"),
    save_weights: Optional[Path] = typer.Option(None, "--save-weights",
                                                help="write the weights used to this .npz"),
    verify: bool = typer.Option(False, "--verify", help="recompute sampled outputs of every "
                                "layer with a direct reference"),
    format: RunFormat = typer.Option(RunFormat.table, "--format", "-f"),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="images per forward pass"),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="refuse runs that need "
                                             "more (e.g. 2GiB); default half the available RAM"),
    normalize: Optional[Normalize] = typer.Option(None, "--normalize",
                                                  help="imagenet: subtract mean, divide by std"),
    save_layer: List[str] = typer.Option([], "--save-layer", help="also save this layer's "
                                         "output (repeatable)"),
    stats: bool = typer.Option(False, "--stats", help="per-layer statistics of the whole input "
                               "set: count, min, max, mean, std, non-finite values, |x| "
                               "quantile bounds (json adds the histograms)"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="run the inputs on N processes "
                             "(statistics merged exactly)"),
    dask: Optional[str] = typer.Option(None, "--dask", metavar="ADDRESS", help="run the "
                                       "inputs as tasks of a Dask cluster (tcp://host:8786); "
                                       "needs convcalc[dask]"),
) -> None:
    """Run the network forward on images with NumPy: per layer the predicted and produced
    shapes, time and value range. Exit 1 if a shape differs from the analysis."""
    from convcalc.executor.images import ImageError
    from convcalc.executor.runner import RunError
    from convcalc.executor.session import Session
    from convcalc.executor.weights import WeightsError

    size = parse_shape(resize, "--resize") if resize else None
    if size is not None and len(size) != 2:
        fail_usage(f"--resize {resize!r}: expected HxW, e.g. 224x224")
    limit = parse_bytes(max_memory) if max_memory else None
    if out is not None and out.exists() and not out.is_dir():
        fail_usage(f"--out {out} exists and is not a folder")
    if save_weights is not None:
        from convcalc.files import refuse_target
        problem = refuse_target(save_weights, "--save-weights",
                                (spec, *inputs, *([weights] if weights else [])))
        if problem:
            fail_usage(problem)
    parallel = jobs > 1 or dask is not None
    if parallel and (out is not None or save_layer):
        fail_usage("--out and --save-layer write files per input, in this process: not with "
                   "--jobs or --dask (which gather statistics)")
    session = dataset = None
    try:
        with np_quiet():
            session = Session.start(spec, weights, seed, save_layer, limit)
            if save_weights is not None:
                session.save_weights(save_weights)
            if parallel:
                groups, dataset = _parallel(session, spec, inputs, weights, seed, size,
                                            batch_size, normalize, verify, limit, jobs, dask)
            else:
                from convcalc.executor.dataset import DatasetStats
                dataset = DatasetStats() if stats else None
                groups = session.run_all(inputs, size, batch_size,
                                         normalize.value if normalize else None, verify, out,
                                         _progress, stats=dataset)
    except (RunError, WeightsError, ImageError) as err:
        fail_usage(str(err) + (f" (hint: {err.hint})" if err.hint else "") + _wrote(session))
    except OSError as err:
        fail_usage(f"{getattr(err, 'filename', '') or ''}: {err.strerror or err}"
                   + _wrote(session))
    _print(session, groups, format, verify, dataset if (stats or format == RunFormat.json)
           else None)
    _finish(session, groups, verify)


def _parallel(session, spec, inputs, weights, seed, size, batch_size, normalize, verify, limit,
              jobs: int, dask: Optional[str]):
    """The inputs split over processes or a Dask cluster (executor/dataset.py); the groups
    and statistics merged. Each worker draws the same seeded weights (or reads --weights)."""
    from convcalc.executor.dataset import Shard, merge_results, run_dask, run_processes, shards
    from convcalc.executor.images import list_inputs
    from convcalc.executor.session import Group
    files = [str(Path(f).resolve()) for f in list_inputs(inputs)]
    base = Shard(str(spec.resolve()), [], str(weights.resolve()) if weights else None, seed,
                 size, batch_size, normalize.value if normalize else None, verify, limit)
    if dask is not None:
        try:
            results = run_dask(shards(base, files, max(jobs, 2 * _dask_workers(dask))), dask)
        except ImportError:
            fail_usage("--dask needs dask and distributed: pip install 'convcalc[dask]'")
        except (OSError, TimeoutError) as err:
            fail_usage(f"--dask {dask}: cannot reach the scheduler: {err}")
    else:
        results = run_processes(shards(base, files, jobs), jobs)
    parts, dataset, failed = merge_results(results)
    session.failed = [(Path(p), why) for p, why in failed]
    groups = [Group(p["input_shape"], None, p["images"], p["rows"], p["memory"], p["seconds"])
              for p in parts]
    return groups, dataset


def _dask_workers(address: str) -> int:
    """How many workers the scheduler has (to cut the set into twice as many tasks)."""
    from dask.distributed import Client
    try:
        with Client(address, timeout="10s") as client:
            return max(1, len(client.scheduler_info().get("workers", {})))
    except (OSError, TimeoutError) as err:
        fail_usage(f"--dask {address}: cannot reach the scheduler: {err}")


def np_quiet():
    """NumPy's floating-point warnings off: non-finite values are reported once, by layer."""
    import numpy as np
    return np.errstate(all="ignore")


def _wrote(session) -> str:
    """For an error after some files were written: say which, so that none goes unreported."""
    if session is None or not session.written:
        return ""
    shown = ", ".join(str(p) for p in session.written[:3])
    return (f"; it had written {len(session.written)} file(s): {shown}"
            + (", ..." if len(session.written) > 3 else ""))


def _finish(session: Session, groups: list[Group], verify: bool) -> None:
    """Exit status, and one line on stderr for inputs that failed or non-finite values."""
    if session.failed:
        path, reason = session.failed[0]
        others = "; the other inputs ran" if groups else ""
        more = (f" (and {len(session.failed) - 1} more: "
                f"{', '.join(str(p) for p, _ in session.failed[1:6])}"
                f"{', ...' if len(session.failed) > 6 else ''})" if len(session.failed) > 1
                else "")
        fail_usage(f"{len(session.failed)} input(s) could not be read: {reason}{more}{others}")
    broken = next((row["name"] for g in groups for row in g.rows.values() if not _finite(row)),
                  None)
    if broken is not None and not verify:
        typer.echo(f"convcalc: warning: non-finite values (NaN or inf) first from layer "
                   f"{broken} (hint: check the input and the weights; --verify names every "
                   f"layer)", err=True)
        raise typer.Exit(1)
    if not all(g.ok for g in groups) or (verify and not all(g.verified for g in groups)):
        raise typer.Exit(1)


def _finite(row) -> bool:
    import math
    return all(v is None or math.isfinite(v) for v in (row["min"], row["max"], _mean(row)))


def _Rate():
    """A progress column: images per second."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:.1f} images/s" if task.speed else "", style="cyan")
    return Rate()


class _progress:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""

    def __init__(self, total: int):
        self.total, self.bar = total, None

    def __enter__(self):
        if sys.stderr.isatty() and self.total > 1:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)
            self.bar = Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(),
                                _Rate(), TimeRemainingColumn(), console=Console(stderr=True),
                                transient=True)
            self.bar.start()
            task = self.bar.add_task("running", total=self.total)
            return lambda count: self.bar.advance(task, count)
        return lambda count: None

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


# -- output ----------------------------------------------------------------------------------

def _print(session: Session, groups: list[Group], format: RunFormat, verify: bool,
           dataset=None) -> None:
    if format == RunFormat.json:
        import json
        found = _json(session, groups, verify)
        if dataset is not None:
            found["dataset"] = dataset.to_dict()
        typer.echo(json.dumps(found, indent=2))
        return
    from rich.console import Console
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    for group in groups:
        console.print(_table(session, group, verify))
        console.print(_summary(group, verify))
    if dataset is not None:
        console.print(_stats_table(dataset))
    if session.written:
        console.print(f"wrote {len(session.written)} file(s): "
                      + ", ".join(str(p) for p in session.written[:4])
                      + (", ..." if len(session.written) > 4 else ""), markup=False)
    if session.failed:
        console.print(f"{len(session.failed)} input(s) could not be read, the others ran: "
                      + ", ".join(str(p) for p, _ in session.failed[:6])
                      + (", ..." if len(session.failed) > 6 else ""), markup=False)
    if session.moved:
        taken, chosen = session.moved[0]
        console.print(f"{taken}.* was taken (an input or an existing file): wrote {chosen}.* "
                      f"instead" + (f", and {len(session.moved) - 1} more like it"
                                    if len(session.moved) > 1 else ""), markup=False)


RUN_COLUMNS = {"layer": ("left", True, 0), "type": ("left", False, 3), "predicted": ("right", False, 0),
               "produced": ("right", False, 0), "": ("right", False, 0), "ms": ("right", False, 1),
               "min": ("right", True, 4), "mean": ("right", False, 2), "max": ("right", False, 5),
               "rel err": ("right", False, 6)}


def _table(session: Session, group: Group, verify: bool):
    """The per-layer table; narrow consoles drop ms, mean, type, min, max, rel err in turn."""
    from rich import box
    from rich.text import Text
    from convcalc.render.common import shape_text
    from convcalc.render.fit import Column, FittedTable
    title = (f"{session.spec} on {len(group.images)} input(s) of "
             f"{shape_text(group.input_shape)}")
    caption = ("→ layer: a BatchNorm folded into this conv; its row shows the values"
               if any(row["folded_into"] for row in group.rows.values()) else None)
    headers = ["layer", "type", "predicted", "produced", "", "ms", "min", "mean", "max"]
    headers += ["rel err"] if verify else []
    columns = [Column(h, RUN_COLUMNS[h][0], fold=RUN_COLUMNS[h][1], drop=RUN_COLUMNS[h][2])
               for h in headers]
    table = FittedTable(columns, [], dict(
        title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
        pad_edge=False, caption=caption, caption_justify="left"))
    for row in group.rows.values():
        mark = "[green]✓[/]" if row["ok"] else "[bold red]✗[/]"
        stats = ([f"→ {row['folded_into']}", "", ""] if row["folded_into"] else
                 [_number(row["min"]), _number(_mean(row)), _number(row["max"])])
        cells = [Text(row["name"]), Text(row["type"]), shape_text(row["predicted"]),
                 shape_text(row["produced"]), mark, f"{row['seconds'] * 1e3:.2f}", *stats]
        if verify:
            cells.append(_error_text(row["rel"]))
        table.add_row(*cells)
    return table


def _stats_table(dataset):
    """Per layer over the whole input set (executor/dataset.py)."""
    from rich import box
    from rich.text import Text
    from convcalc.render.fit import Column, FittedTable
    headers = [("layer", "left", True, 0), ("values", "right", False, 5),
               ("min", "right", False, 0), ("max", "right", False, 0),
               ("mean", "right", False, 3), ("std", "right", False, 2),
               ("|x| 99.9% <=", "right", False, 4), ("non-finite", "right", False, 1)]
    table = FittedTable([Column(h, a, fold=f, drop=d) for h, a, f, d in headers], [], dict(
        title=f"statistics over {dataset.inputs} input(s), every value of each layer's output",
        title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False))
    for name, found in dataset.layers.items():
        bad = f"[bold red]{found.nonfinite:,}[/]" if found.nonfinite else "0"
        table.add_row(Text(name), f"{found.count:,}", _number(found.minimum if found.count else None),
                      _number(found.maximum if found.count else None),
                      _number(found.mean if found.count else None), _number(found.std),
                      _number(found.magnitude_below(0.999)), bad)
    return table


def _summary(group: Group, verify: bool) -> str:
    from convcalc.render.common import bytes_text
    mismatches = sum(not row["ok"] for row in group.rows.values())
    parts = ["[green]every shape as predicted[/]" if not mismatches else
             f"[bold red]{mismatches} layer(s) differ from the prediction[/]",
             f"{group.seconds * 1e3:.1f} ms in layers", f"memory estimate "
             f"{bytes_text(group.memory)}"]
    if verify:
        from convcalc.executor.verify import TOLERANCE
        worst = max((row["rel"] or 0.0 for row in group.rows.values()), default=0.0)
        style = "green" if worst <= TOLERANCE else "bold red"
        broken = [row["name"] for row in group.rows.values() if row["rel"] == float("inf")]
        parts.append(f"[{style}]verify: largest relative error {worst:.2g} "
                     f"(tolerance {TOLERANCE:g})[/]" if not broken else
                     f"[bold red]verify: non-finite values (NaN or inf) from {broken[0]}"
                     f"{f' and {len(broken) - 1} more layers' if len(broken) > 1 else ''}[/]")
    return "; ".join(parts)


def _json(session: Session, groups: list[Group], verify: bool) -> dict:
    def layer(row):
        return {"name": row["name"], "type": row["type"],
                "predicted": list(row["predicted"]) if row["predicted"] else None,
                "produced": list(row["produced"]), "ok": row["ok"],
                "ms": round(row["seconds"] * 1e3, 4), "min": _json_number(row["min"]),
                "mean": _json_number(_mean(row)), "max": _json_number(row["max"]),
                "finite": _finite(row), "folded_into": row["folded_into"],
                **({"abs_error": row["abs"], "rel_error": row["rel"]} if verify else {})}
    return {"version": 1, "spec": str(session.spec),
            "ok": all(g.ok for g in groups) and (not verify or all(g.verified for g in groups)),
            "runs": [{"input_shape": list(g.input_shape), "inputs": g.images,
                      "memory_estimate_bytes": g.memory, "ms": round(g.seconds * 1e3, 3),
                      "layers": [layer(r) for r in g.rows.values()]} for g in groups],
            "written": [str(p) for p in session.written],
            "failed": [{"input": str(p), "error": reason} for p, reason in session.failed]}


def _json_number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: null, with the layer's "finite": false."""
    import math
    return value if value is None or math.isfinite(value) else None


def _mean(row) -> float | None:
    return row["mean_sum"] / row["count"] if row["count"] else None


def _number(value) -> str:
    return "" if value is None else f"{value:.3g}"


def _error_text(value) -> str:
    from convcalc.executor.verify import TOLERANCE
    if value is None:
        return ""
    return f"{value:.2g}" if value <= TOLERANCE else f"[bold red]{value:.2g}[/]"
