"""A run of `convcalc run`: the spec analysed, its weights, the executor, and the inputs run
in batches of one size, each size re-analysed; results merged per layer for the report.
Printing is the CLI's; this module only computes and writes the requested files."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from convcalc.executor.runner import RunError


@contextmanager
def _no_progress(total: int):
    yield lambda count: None



@dataclass
class Group:
    """The images run at one input size, and their per-layer results merged over batches."""

    input_shape: tuple[int, ...]
    report: object
    images: list[str] = field(default_factory=list)
    rows: dict = field(default_factory=dict)  # layer name -> merged LayerRun fields
    memory: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(row["ok"] for row in self.rows.values())

    @property
    def verified(self) -> bool:
        from convcalc.executor.verify import TOLERANCE
        return all(row["rel"] is None or row["rel"] <= TOLERANCE for row in self.rows.values())

    def merge(self, layers, count: int) -> None:
        found = {layer.name: {
            "name": layer.name, "type": layer.type, "predicted": layer.predicted,
            "produced": layer.produced, "ok": layer.ok, "seconds": layer.seconds,
            "min": layer.low, "mean_sum": layer.mean * count if layer.low is not None else 0.0,
            "count": count if layer.low is not None else 0, "max": layer.high,
            "folded_into": layer.folded_into, "abs": layer.error[0] if layer.error else None,
            "rel": layer.error[1] if layer.error else None} for layer in layers}
        self.rows = merge_rows(self.rows, found)


def merge_rows(rows: dict, more: dict) -> dict:
    """Per-layer rows of two runs (batches, processes) as one: shapes ok only if ok in both,
    seconds added, min and max of both, means weighted by their counts, errors the larger."""
    out = dict(rows)
    for name, row in more.items():
        mine = out.get(name)
        if mine is None:
            out[name] = dict(row)
            continue
        mine = out[name] = dict(mine)
        mine["ok"] = mine["ok"] and row["ok"]
        mine["seconds"] += row["seconds"]
        for key, pick in (("min", min), ("max", max), ("abs", max), ("rel", max)):
            if row[key] is not None:
                mine[key] = row[key] if mine[key] is None else pick(mine[key], row[key])
        mine["mean_sum"] += row["mean_sum"]
        mine["count"] += row["count"]
    return out


class Session:
    def __init__(self, spec: Path, report, weights: dict, executor, limit: int | None,
                 text: str = ""):
        self.spec, self.report, self.weights = spec, report, weights
        self.executor, self.limit, self.text = executor, limit, text
        self.reports = {report.input_shape: report}
        self.written: list[Path] = []
        self.keep: dict[str, str] = {}  # --save-layer as given -> the layer it names
        self.failed: list[tuple[Path, str]] = []  # inputs that could not be read, and why
        self.moved: list[tuple[str, str]] = []  # output names taken -> the names used

    @classmethod
    def start(cls, spec: Path, weights_file: Path | None, seed: int, keep: list[str],
              limit: int | None) -> "Session":
        """convcalc.api.prepare on the spec, with the weights of a .npz file, an ONNX file's
        own, or random ones."""
        from convcalc.api import load_source, prepare
        from convcalc.executor.weights import read_weights
        from convcalc.interop import ImportFailure
        from convcalc.spec import unreadable

        try:
            source = load_source(spec)
        except (OSError, UnicodeDecodeError, ImportFailure) as err:
            raise RunError(unreadable(spec, err))
        found = read_weights(weights_file) if weights_file else source.weights
        executor, report = prepare(source.file, source.text, found, seed, keep,
                                   str(weights_file or spec), "--save-layer", limit)
        session = cls(spec, executor.report, executor.weights, executor, limit, source.text)
        graph = executor.report.graph
        session.keep = {name: graph.output_of(name) if graph else name for name in keep}
        return session

    def save_weights(self, path: Path) -> None:
        from convcalc.executor.weights import save_weights
        save_weights(path, self.weights)
        self.written.append(path)

    def report_for(self, shape: tuple[int, ...], resize_hint: str):
        """The analysis at this input size; an error when the network does not take it."""
        if shape not in self.reports:
            from convcalc.api import Report, analysed_at, as_analysis
            at = analysed_at(str(self.spec), self.text, shape, Report.of(self.report))
            self.reports[shape] = as_analysis(at)
        return self.reports[shape]

    def run_all(self, paths: list[Path], size, batch_size: int, normalize: str | None,
                verify: bool, out: Path | None, progress=None, stats=None) -> list[Group]:
        """Run every input in batches of one size; `progress(total)` returns a context
        manager yielding `advance(count)` (the CLI's progress bar); `stats`, a
        dataset.DatasetStats, gathers every layer's values over the set."""
        from convcalc.executor.images import list_inputs
        from convcalc.executor.runner import check_memory, default_max_memory
        from convcalc.executor.verify import verifier

        files = list_inputs(paths)
        if out is not None:
            self.plan, self.moved = plan_outputs(files, out, self.keep)
        check = verifier(self.executor) if verify else None
        limit = self.limit or default_max_memory()
        if size is not None:  # the memory guard, before any image is resized
            shape = (self.report.input_shape[0], *size)
            check_memory(self.report_for(shape, _resize_hint(self.report)), 1, self.weights,
                         limit)
        groups: dict[tuple, Group] = {}
        with (progress or _no_progress)(len(files)) as advance:
            for batch, names in self._batches(files, size, batch_size, normalize):
                shape = (batch.shape[-1], *batch.shape[1:-1])
                report = self.report_for(shape, _resize_hint(self.report))
                group = groups.get(shape) or groups.setdefault(shape, Group(shape, report))
                group.memory = max(group.memory, check_memory(report, len(batch), self.weights,
                                                              limit))
                result = self.executor.run(batch, report, check=check,
                                           observe=stats.observe if stats is not None else None)
                if stats is not None:
                    stats.inputs += len(batch)
                group.images.extend(str(n) for n in names)
                group.merge(result.layers, len(batch))
                group.seconds += sum(layer.seconds for layer in result.layers)
                if out is not None:
                    self._write(out, names, result)
                advance(len(batch))
        return list(groups.values())

    def _batches(self, files, size, batch_size: int, normalize):
        """(N, *spatial, C) batches of consecutive same-sized inputs."""
        import numpy as np
        from convcalc.executor.images import ImageError, load_input
        from convcalc.executor.images import normalize as normalized

        channels, rank = self.report.input_shape[0], len(self.report.input_shape) - 1
        pending, names = [], []
        for path in files:
            try:
                sample = normalized(load_input(path, channels, rank, size), normalize)
            except ImageError as err:  # the others still run; every failure is reported
                self.failed.append((path, str(err) + (f" (hint: {err.hint})" if err.hint
                                                      else "")))
                continue
            if pending and (len(pending) == batch_size or sample.shape != pending[0].shape):
                yield np.stack(pending), names
                pending, names = [], []
            pending.append(sample)
            names.append(path)
        if pending:
            yield np.stack(pending), names

    def _write(self, out: Path, names: list[Path], result) -> None:
        from convcalc.executor.images import picture, save_npy, save_png
        out.mkdir(parents=True, exist_ok=True)
        arrays = [(None, result.output), *result.kept.items()]
        for index, path in enumerate(names):
            for layer, batch in arrays:
                npy, png = self.plan[path][layer]
                save_npy(npy, batch[index])
                self.written.append(npy)
                pixels = picture(batch[index])
                if pixels is not None:
                    save_png(png, pixels)
                    self.written.append(png)


def plan_outputs(files: list[Path], out: Path, keep: dict[str, str]):
    """input -> {layer (None: the output) -> (.npy path, .png path)}: NAME.out.* and
    NAME.LAYER.* in `out` (NAME.layer.LAYER.* for a layer named out), distinct, and never an
    existing file (an input, an earlier
    run's output): a taken name moves to the next free NAME_1, NAME_2, ...; with the list of
    (taken name, name chosen instead)."""
    stems = output_stems(files)
    taken = {p.resolve() for p in out.iterdir()} if out.is_dir() else set()
    taken |= {p.resolve() for p in files}
    plan: dict[Path, dict] = {}
    moved: list[tuple[str, str]] = []
    for path in files:
        labels = {None: "out"}
        for given, layer in keep.items():  # NAME.LAYER; a layer named out: NAME.layer.out
            label = _safe(given)
            labels[layer] = f"layer.{label}" if label in labels.values() else label
        plan[path] = {layer: _free(out, stems[path], label, taken)
                      for layer, label in labels.items()}
        moved += [(str(out / f"{stems[path]}.{label}"), str(npy)[:-4])
                  for layer, label in labels.items()
                  for npy, _ in [plan[path][layer]] if npy.name != f"{stems[path]}.{label}.npy"]
    return plan, moved


def _free(out: Path, stem: str, label: str, taken: set[Path]) -> tuple[Path, Path]:
    """The first of stem.label, stem_1.label, ... whose .npy and .png are both free."""
    name, count = stem, 0
    while True:
        pair = (out / f"{name}.{label}.npy", out / f"{name}.{label}.png")
        if not any(p.resolve() in taken for p in pair):
            taken.update(p.resolve() for p in pair)
            return pair
        count += 1
        name = f"{stem}_{count}"


def output_stems(files: list[Path]) -> dict[Path, str]:
    """A distinct output name per input: its stem, or its file name where stems clash
    (c.png and c.jpg), then a counter where even those do (two folders' chelsea.png)."""
    stems: dict[Path, str] = {}
    clashing = {p.stem for p in files if sum(q.stem == p.stem for q in files) > 1}
    taken: set[str] = set()
    for path in files:
        name = path.name if path.stem in clashing else path.stem
        unique, count = name, 1
        while unique in taken:
            unique, count = f"{name}_{count}", count + 1
        taken.add(unique)
        stems[path] = unique
    return stems


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _resize_hint(report) -> str:
    return "--resize " + "x".join(map(str, report.input_shape[1:]))
