"""The one place that reads what a user names as a network: a YAML spec file, standard input
(`-`), or a model file an importer reads (.onnx). Every command that takes a spec reads it
here, so each of them takes every source."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """A network as spec text, with the weights that came with it (an ONNX file's own)."""

    file: str
    text: str
    weights: dict[str, Any] | None = field(default=None, repr=False)


def read_source(path: str | Path, input: tuple[int, ...] | None = None) -> Source:
    """Spec text of a YAML file, of `-` (standard input), or of an imported model file.

    Raises OSError / UnicodeDecodeError for unreadable files (the caller words them with
    convcalc.spec.unreadable) and convcalc.interop.ImportFailure for models it cannot
    import."""
    name = str(path)
    if name == "-":
        return Source("<stdin>", sys.stdin.read())
    from convcalc.interop import is_model_file
    if is_model_file(name):
        from convcalc.interop import import_model
        from convcalc.interop.spec_text import to_yaml
        imported = import_model(name, input=input)
        return Source(name, to_yaml(imported.spec), imported.weights)
    return Source(name, Path(name).read_text(encoding="utf-8"))
