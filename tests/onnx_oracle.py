"""Shared by the ONNX import tests: run an imported model with convcalc's executor and
compare with onnxruntime (an oracle nobody here wrote)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convcalc.analysis import analyze_text
from convcalc.executor.layout import to_channels_first, to_channels_last
from convcalc.executor.runner import Executor
from convcalc.interop.onnx_import import import_onnx
from convcalc.interop.spec_text import to_yaml


def convcalc_run(path: Path, x: np.ndarray, input=None):
    """(report, output channels-first) of the imported model on x (N, C, ...); when the
    import reads the file's axis 0 as data, x is one sample (given a batch axis of 1)."""
    imported = import_onnx(Path(path), input)
    report = analyze_text(to_yaml(imported.spec), str(path))
    assert report.ok, [d.format() for d in report.diagnostics]
    batch = x if imported.batch_axis else x[None]
    result = Executor(report, imported.weights).run(to_channels_last(batch), report)
    output = to_channels_first(result.output)
    return report, output if imported.batch_axis else output[0]


def onnxruntime_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_close(ours: np.ndarray, theirs: np.ndarray, rel: float = 1e-4) -> None:
    """Within rel of the output's largest magnitude (the project's 1e-4 relative)."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = max(float(np.abs(theirs).max()), 1e-6)
    assert float(np.abs(ours - theirs).max()) <= rel * scale, \
        float(np.abs(ours - theirs).max()) / scale
