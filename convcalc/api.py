"""The Python API: `convcalc.check` and `convcalc.run`, what every command prints from.

`check(source)` reads a spec (a path, `-`, YAML text or a dict; an .onnx file through
convcalc.sources.read_source, the one dispatch point for what a user names as a network)
and returns a `Report`: the frozen public face of convcalc.analysis.Report, the same fields
(layers, totals, diagnostics, options, graph) held in tuples so that it cannot change.
`run(source, x)` runs the network forward on a NumPy array in PyTorch's layout (N, C, ...).
Printing and exit codes are the CLI's; nothing the CLI shows is computed outside this module
and the analysis behind it. See docs/api.md.
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from convcalc.analysis import DTYPE_BYTES, LayerReport, Options, Totals
from convcalc.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    import numpy as np

    from convcalc.analysis import Report as Analysis
    from convcalc.executor.runner import LayerRun
    from convcalc.graph import Graph

SourceLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]
InputLike = Union[Sequence[int], str, None]


class InputError(ValueError):
    """An `input` override the spec cannot take (a size of another rank)."""


@dataclass(frozen=True)
class Report:
    """One network analysed: `layers` (each with name, kind, output_shape, params, macs,
    flops, receptive_field, line, column), `totals`, `diagnostics` and `ok` (no error).

    The fields are convcalc.analysis.Report's, frozen; `to_dict()` is the json contract of
    `convcalc check --format json` (one entry of its "files")."""

    file: str
    name: str | None
    input_shape: tuple[int, ...] | None
    layers: tuple[LayerReport, ...]
    totals: Totals
    diagnostics: tuple[Diagnostic, ...]
    options: Options
    graph: Graph | None = field(default=None, repr=False, compare=False)
    training: Any = None  # convcalc.training.Training when check(..., training=True)

    @classmethod
    def of(cls, analysis: Analysis) -> "Report":
        return cls(analysis.file, analysis.name, analysis.input_shape, tuple(analysis.layers),
                   analysis.totals, tuple(analysis.diagnostics), analysis.options,
                   analysis.graph, analysis.training)

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (warnings and infos do not count)."""
        return not any(d.severity == Severity.ERROR for d in self.diagnostics)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.layers[-1].output_shape if self.layers else None

    def layer(self, name: str) -> LayerReport:
        """The layer of that name (KeyError if there is none)."""
        by_name = self.__dict__.get("_by_name")
        if by_name is None:  # built once: a name lookup per row made long tables quadratic
            by_name = {}
            for layer in self.layers:
                by_name.setdefault(layer.name, layer)
            self.__dict__["_by_name"] = by_name
        return by_name[name]

    def failing(self, strict: bool = False) -> tuple[Diagnostic, ...]:
        """The errors, and the warnings too when `strict` (what makes `check` exit 1)."""
        levels = {Severity.ERROR} | ({Severity.WARNING} if strict else set())
        return tuple(d for d in self.diagnostics if d.severity in levels)

    def to_dict(self) -> dict:
        from convcalc.render.json_report import report_dict
        return report_dict(self)


def check(source: SourceLike, *, input: InputLike = None, dtype: str = "float32",
          batch: int = 1, training: bool = False, optimizer: str = "adam") -> Report:
    """Analyse a network: shapes, params, MACs/FLOPs, memory, receptive fields, diagnostics.

    `source`: a path (str or os.PathLike: a YAML spec, or a model file an importer reads),
    "-" (standard input), YAML text (a str holding a newline or starting with "{"), or a
    dict as yaml.safe_load gives a spec. `input`: (C, *spatial), or the spatial sizes alone
    to keep the spec's channels ("256x256" works too). Raises OSError for an unreadable
    path, InputError for an input of the wrong rank, ValueError for a bad dtype or batch;
    problems in the spec itself are diagnostics, never exceptions.

    `training`: also the cost of one training step with `optimizer` (sgd, momentum, adam,
    adamw) in `Report.training` (convcalc.training.Training; None when a shape is unknown)."""
    from convcalc.training import OPTIMIZERS
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPE_BYTES)}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch {batch!r}: expected a positive integer")
    file, text = load(source, input)
    return analyse(file, text, input, dtype, batch, training, optimizer)


def analyse(file: str, text: str, input: InputLike = None, dtype: str = "float32",
            batch: int = 1, training: bool = False, optimizer: str = "adam") -> Report:
    """Spec text already read -> Report (check() without the reading)."""
    from convcalc.analysis import analyze_text, without_positions
    from convcalc.interop import is_model_file
    shape = resolve_input(input, text, file)
    analysis = analyze_text(text, file, Options(dtype, batch, shape, training, optimizer))
    return Report.of(without_positions(analysis) if is_model_file(file) else analysis)


def load(source: SourceLike, input: InputLike = None) -> tuple[str, str]:
    """(file name, spec text) of any source check() takes."""
    read = load_source(source, input)
    return read.file, read.text


def load_source(source: SourceLike, input: InputLike = None):
    """convcalc.sources.Source of any source check() takes: the spec text, and the weights
    that came with it (an ONNX file's own)."""
    from convcalc.sources import Source
    if isinstance(source, Mapping):
        import yaml  # a layer per line, so that a diagnostic's line names one layer
        return Source("<dict>", yaml.safe_dump(dict(source), sort_keys=False, width=10**9,
                                               default_flow_style=None))
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):
        return Source("<string>", source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source: expected a path, YAML text or a dict, got "
                        f"{type(source).__name__}")
    from convcalc.sources import read_source
    return read_source(os.fspath(source), parse_input(input))


def parse_input(input: InputLike) -> tuple[int, ...] | None:
    """'3x224x224', '224x224', '224' or a sequence of ints -> a tuple (None stays None)."""
    if input is None:
        return None
    try:
        values = (tuple(int(v) for v in input.lower().replace(",", "x").split("x"))
                  if isinstance(input, str) else
                  tuple(operator.index(v) for v in input if not isinstance(v, bool)))
        if not isinstance(input, str) and len(values) != len(input):
            values = ()  # True and False are not sizes
    except (TypeError, ValueError):
        values = ()
    if not values or any(v <= 0 for v in values):
        raise InputError(f"input {input!r}: expected sizes like 3x224x224 or 224x224")
    return values


def resolve_input(input: InputLike, text: str, file: str) -> tuple[int, ...] | None:
    """An input override made whole: C x spatial replaces the spec's input; the spatial
    sizes alone (or one size for every axis) keep its channels."""
    override = parse_input(input)
    declared = _declared_input(text, file) if override is not None else None
    if declared is None:
        return override
    if len(override) == len(declared) - 1:
        return (declared[0], *override)
    if len(override) == 1 and len(declared) > 2:
        return (declared[0], *override * (len(declared) - 1))
    if len(override) != len(declared):
        spatial = {2: "L", 3: "HxW", 4: "DxHxW"}.get(len(declared), "N")
        raise InputError(f"input {'x'.join(map(str, override))}: {file} takes "
                         f"{len(declared) - 1}-D inputs {declared}; give {spatial} or "
                         f"C{'x' + spatial}")
    return override


def _declared_input(text: str, file: str) -> list | None:
    from convcalc.diagnostics import SpecError
    from convcalc.spec import parse_spec
    try:
        declared = parse_spec(text, file).input
    except SpecError:
        return None  # the analysis reports it
    return declared if isinstance(declared, list) and len(declared) >= 2 else None


# -- run ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    """A forward pass: `output` in PyTorch's layout (N, C, *spatial) or (N, F); `outputs`
    the kept layers' arrays, same layout; `layers` what each layer produced beside the
    analysis' prediction (executor.runner.LayerRun); `ok` every shape as predicted;
    `verified` every sampled value within tolerance (True when verify was not asked)."""

    output: np.ndarray
    outputs: Mapping[str, np.ndarray]
    layers: tuple[LayerRun, ...]
    report: Report
    verified: bool = True

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers)


def run(source: SourceLike, x: np.ndarray, *, weights: Mapping[str, Any] | None = None,
        seed: int = 0, keep: Sequence[str] = (), verify: bool = False,
        max_memory: int | None = None) -> RunResult:
    """Run the network forward at inference on `x`, (N, C, *spatial) or one sample
    (C, *spatial) as PyTorch lays it out, float32.

    `weights`: state_dict name -> array (as model.state_dict() with .numpy()); by default
    an ONNX file's own weights, and random weights from `seed` for a spec. `keep`: layers whose
    outputs to return as well. `verify`:
    recompute sampled outputs of every layer with a direct reference. `max_memory`: bytes
    the run may take (default half the available memory). Raises
    convcalc.executor.runner.RunError (and executor.weights.WeightsError) when it cannot
    run: a spec with errors, weights that do not fit, an input the network does not take,
    a run larger than `max_memory`; ValueError / TypeError for arguments of the wrong kind."""
    import numpy as np

    from convcalc.executor.layout import to_channels_first, to_channels_last
    from convcalc.executor.runner import check_memory, default_max_memory
    from convcalc.executor.verify import TOLERANCE, verifier

    keep = (keep,) if isinstance(keep, str) else tuple(keep)
    _check_run_arguments(weights, seed, max_memory)
    read = load_source(source)
    file, text = read.file, read.text
    executor, base = prepare(file, text, weights if weights is not None else read.weights,
                             seed, keep, limit=max_memory)
    array = _input_array(x)
    batch = array if array.ndim == len(base.input_shape) + 1 else array[None]
    sample = tuple(batch.shape[1:])
    report = base if sample == base.input_shape else analysed_at(file, text, sample, base)
    check_memory(report, len(batch), executor.weights,
                 default_max_memory() if max_memory is None else max_memory)
    result = executor.run(to_channels_last(batch), as_analysis(report),
                          check=verifier(executor) if verify else None)
    verified = all(r.error is None or r.error[1] <= TOLERANCE for r in result.layers)
    return RunResult(np.ascontiguousarray(to_channels_first(result.output)),
                     {k: np.ascontiguousarray(to_channels_first(v))
                      for k, v in result.kept.items()},
                     tuple(result.layers), report, verified)


def _check_run_arguments(weights, seed, max_memory) -> None:
    if weights is not None and not isinstance(weights, Mapping):
        raise TypeError(f"weights: expected a mapping of state_dict names to arrays, got "
                        f"{type(weights).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed {seed!r}: expected an integer >= 0")
    if max_memory is not None and (isinstance(max_memory, bool) or not isinstance(
            max_memory, int) or max_memory <= 0):
        raise ValueError(f"max_memory {max_memory!r}: expected a positive number of bytes")


def _input_array(x) -> np.ndarray:
    """`x` as float32; real numbers only (complex or object arrays are refused, not cast)."""
    import numpy as np

    from convcalc.executor.runner import RunError
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as err:
        raise RunError(f"x is not an array of numbers: {err}") from None
    if array.dtype.kind not in "fiub":
        raise RunError(f"x holds {array.dtype} values; convcalc runs on real numbers",
                       "give a float32 array (N, C, *spatial)")
    return array.astype(np.float32, copy=False)


def prepare(file: str, text: str, weights: Mapping[str, Any] | None, seed: int,
            keep: Sequence[str], weights_name: str = "weights", keep_label: str = "keep",
            limit: int | None = None):
    """(Executor, Report at the spec's own input): the weights given (checked against the
    analysis) or random ones; what `convcalc run` starts from too. Random weights larger
    than `limit` bytes (default half the available memory) are refused before they are
    drawn."""
    from convcalc.executor.runner import Executor, RunError, default_max_memory
    from convcalc.executor.weights import check_weights, initial_weights
    from convcalc.spec import did_you_mean

    report = analyse(file, text)
    refuse_errors(report, None)
    names = {layer.name for layer in report.layers}
    analysis = as_analysis(report)
    graph = analysis.graph  # a block instance's name means its output, as in `inputs:`
    layers = [graph.output_of(name) if graph else name for name in keep]
    for name, layer in zip(keep, layers):
        if layer not in names:
            raise RunError(f"{keep_label} {name!r}: no such layer in {file}",
                           did_you_mean(name, [*names, *(graph.aliases if graph else ())])
                           or "convcalc check lists the layers")
    if weights is None:
        need = 4 * (report.totals.params + report.totals.buffers)  # float32
        limit = default_max_memory() if limit is None else limit
        if need > limit:
            from convcalc.render.common import bytes_text
            raise RunError(f"{file}: its weights alone need {bytes_text(need)} "
                           f"({report.totals.params:,} parameters), more than the "
                           f"{bytes_text(limit)} allowed (--max-memory)",
                           "check the layer sizes (convcalc check lists the params)")
    chosen = (check_weights(dict(weights), analysis, weights_name) if weights is not None
              else initial_weights(analysis, seed))
    return Executor(analysis, chosen, keep=list(dict.fromkeys(layers))), report


def analysed_at(file: str, text: str, shape: tuple[int, ...], base: Report) -> Report:
    """The analysis at another input size; a RunError when the network does not take it
    (an error, or weights of other shapes than at the spec's own size)."""
    from convcalc.executor.runner import RunError
    from convcalc.executor.weights import expected_weights

    hint = "--resize " + "x".join(map(str, base.input_shape[1:]))
    if len(shape) != len(base.input_shape):
        raise RunError(f"an input of shape {list(shape)}: {file} takes "
                       f"{list(base.input_shape)} (C, *spatial), with a batch axis before")
    report = analyse(file, text, shape)
    refuse_errors(report, hint)
    here, own = expected_weights(as_analysis(report)), expected_weights(as_analysis(base))
    for key, want in own.items():
        if here.get(key) != want:
            raise RunError(f"the network does not run at input {list(shape)}: {key} would be "
                           f"{list(here.get(key) or ())}, its weights are {list(want)} (for "
                           f"the spec's input {list(base.input_shape)})",
                           f"resize the images with {hint}")
    return report


def refuse_errors(report: Report, resize_hint: str | None) -> None:
    """Any error at the spec's own input; at another size (resize_hint given), only errors
    that stop the run (a spec's `expect` pins its own input size)."""
    from convcalc.executor.runner import RunError, blocking_errors
    errors = list(blocking_errors(report) if resize_hint else report.failing())
    if not errors:
        return
    first = errors[0]
    where = f"{first.location()}: {first.layer + ': ' if first.layer else ''}{first.message}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if resize_hint:
        raise RunError(f"the network does not run at input {list(report.input_shape)}: "
                       f"{where}{more}", f"resize the images with {resize_hint}")
    raise RunError(f"{report.file} has errors: {where}{more}",
                   f"{first.hint}; convcalc check {report.file} lists them" if first.hint
                   else f"convcalc check {report.file} lists them")


def as_analysis(report: Report) -> Analysis:
    """The executor's view of a Report (it reads the same fields)."""
    from convcalc.analysis import Report as Analysis
    return Analysis(report.file, report.name, report.input_shape, list(report.layers),
                    report.totals, list(report.diagnostics), report.options, report.graph)


def export_onnx(source: SourceLike, *, weights: Mapping[str, Any] | None = None, seed: int = 0,
                opset: int | None = None):
    """The network as an onnx.ModelProto (checked with onnx.checker, full_check): input
    `input` of shape (N, *the spec's input), N dynamic; initializers named as the state_dict
    keys `run` uses; `weights` as `run` takes them, else the seeded initialisation of
    `run(..., seed=seed)`, so that both see the same numbers. Raises
    convcalc.interop.onnx_export.ExportError for a kind with no exact ONNX form, and RunError
    for a spec with errors or weights that do not fit. Weights past protobuf's 2 GiB cannot be
    one ModelProto: an ExportError says so; `save_onnx` writes such a model."""
    from convcalc.interop.onnx_export import DEFAULT_OPSET, export_onnx as build

    executor, name = _exporting(source, weights, seed)
    return build(executor.report, executor.weights, opset or DEFAULT_OPSET, name=name)


def save_onnx(source: SourceLike, path: str | os.PathLike, *,
              weights: Mapping[str, Any] | None = None, seed: int = 0,
              opset: int | None = None) -> list:
    """Write the model `export_onnx` builds to `path`, whole or not at all, and return the
    files written (pathlib.Path): [path], or [path, path + ".data"] when the weights are past protobuf's
    2 GiB (ONNX external data, written tensor by tensor, the model checked on disk before
    either file is in place; keep the two together)."""
    from convcalc.interop.onnx_export import DEFAULT_OPSET, save_model

    executor, name = _exporting(source, weights, seed)
    return save_model(executor.report, executor.weights, path, opset or DEFAULT_OPSET,
                      name=name)[1]


def _exporting(source: SourceLike, weights, seed: int):
    read = load_source(source)
    executor, report = prepare(read.file, read.text, weights if weights is not None else read.weights,
                               seed, ())
    return executor, report.name or os.path.splitext(os.path.basename(read.file))[0] or "convcalc"


def export_pytorch(source: SourceLike, *, input: InputLike = None) -> str:
    """The network as one Python file (text) that needs torch only: `class Net(nn.Module)`
    whose state_dict has the keys and shapes `run` uses (`run --save-weights` writes them),
    blocks as classes, repeats as nn.Sequential. Raises
    convcalc.interop.torch_export.ExportError (one line) for a spec with errors or a layer
    with no exact PyTorch form. torch is not needed to write the file."""
    from convcalc.interop.torch_export import export_pytorch as write
    return write(source, input=input)


def dataset_stats(source: str | os.PathLike, inputs: Sequence[str | os.PathLike], *,
                  weights: str | os.PathLike | None = None, seed: int = 0,
                  batch_size: int = 1, resize: tuple[int, int] | None = None,
                  normalize: str | None = None, jobs: int = 1, dask: Any = None):
    """Every layer's output statistics over a set of inputs (images, folders of them, .npy
    arrays): a convcalc.executor.dataset.DatasetStats (per layer: count, min, max, mean,
    std, non-finite count, a histogram on fixed edges; `.to_dict()` for json), as `convcalc
    run --stats` gives. `jobs` > 1 splits the set over processes; `dask` (a scheduler
    address or a dask.distributed Client) over a cluster. The result does not depend on the
    split. `source` and `weights` are files: every worker reads them (the same seed draws
    the same weights). Raises RunError (one line) when the run cannot start."""
    from convcalc.executor.dataset import (Shard, merge_results, run_dask, run_processes,
                                           run_shard, shards)
    from convcalc.executor.images import list_inputs
    from pathlib import Path
    files = [str(os.path.abspath(f)) for f in list_inputs([Path(p) for p in inputs])]
    base = Shard(os.path.abspath(source), files, os.path.abspath(weights) if weights else None,
                 seed, tuple(resize) if resize else None, batch_size, normalize)
    if dask is not None:
        results = run_dask(shards(base, files, max(jobs, 2)), dask)
    elif jobs > 1:
        results = run_processes(shards(base, files, jobs), jobs)
    else:
        results = [run_shard(base)]
    return merge_results(results)[1]


def dataset_stats_bag(source: str | os.PathLike, paths, *, weights: str | os.PathLike | None = None,
                      seed: int = 0, batch_size: int = 1, resize: tuple[int, int] | None = None,
                      normalize: str | None = None):
    """dataset_stats over a dask.bag of input paths: each partition is one task (run where
    Dask puts it), and the statistics are merged as they come back. Computes the bag."""
    from convcalc.executor.dataset import Shard, merge_results, run_shard
    base = Shard(os.path.abspath(source), [], os.path.abspath(weights) if weights else None,
                 seed, tuple(resize) if resize else None, batch_size, normalize)

    def partition(part):
        from dataclasses import replace
        return [run_shard(replace(base, files=[os.path.abspath(str(p)) for p in part]))]
    return merge_results(list(paths.map_partitions(partition).compute()))[1]
