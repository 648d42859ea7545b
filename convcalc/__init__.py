"""convcalc: convolution arithmetic and shape calculator for CNN specs written in YAML.

The Python API (docs/api.md): `convcalc.check(source) -> Report`, `convcalc.run(source, x)`,
`convcalc.compare(old, new)`, `convcalc.export_onnx(source)`, `convcalc.save_onnx(source, path)`,
`convcalc.dataset_stats(source, inputs)` and `convcalc.testing.assert_clean(source)`. They
are loaded on first use, so that `import convcalc` (and the command line) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {"check": "convcalc.api", "run": "convcalc.api", "Report": "convcalc.api",
        "RunResult": "convcalc.api", "InputError": "convcalc.api",
        "export_onnx": "convcalc.api", "save_onnx": "convcalc.api", "compare": "convcalc.diff",
        "dataset_stats": "convcalc.api", "dataset_stats_bag": "convcalc.api",
        "Diagnostic": "convcalc.diagnostics", "Severity": "convcalc.diagnostics",
        "testing": None}

if TYPE_CHECKING:
    from convcalc import testing
    from convcalc.api import (InputError, Report, RunResult, check, dataset_stats,
                              dataset_stats_bag, export_onnx, run, save_onnx)
    from convcalc.diagnostics import Diagnostic, Severity
    from convcalc.diff import compare


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'convcalc' has no attribute {name!r}")
    import importlib
    if _API[name] is None:
        return importlib.import_module(f"convcalc.{name}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["Diagnostic", "InputError", "Report", "RunResult", "Severity", "__version__",
           "check", "compare", "dataset_stats", "dataset_stats_bag", "export_onnx", "run",
           "save_onnx", "testing"]
