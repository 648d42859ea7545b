"""The one place that reads what a user names as a network: a YAML spec file, standard input
(`-`), or a model file an importer reads (.onnx). Every command that takes a spec reads it
here, so each of them takes every source."""

from __future__ import annotations

import re
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

    @property
    def imported(self) -> bool:
        """Spec text generated from a model file: its line numbers are nobody's."""
        return self.weights is not None


def read_source(path: str | Path, input: tuple[int, ...] | None = None) -> Source:
    """Spec text of a YAML file, of `-` (standard input), or of an imported model file.

    `input` applies to model files only: (C, *spatial), or the spatial sizes alone, fixes
    the sizes the model is imported at (a YAML spec takes --input in the analysis).
    Raises OSError / UnicodeDecodeError for unreadable files and
    convcalc.interop.ImportFailure for models it cannot import (the caller words all three
    with convcalc.spec.unreadable)."""
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


SPEC_SUFFIXES = (".yaml", ".yml")
_SPEC_MARK = re.compile(r"^layers\s*:", re.MULTILINE)


def expand_paths(paths: list[str | Path]) -> tuple[list[str], list[str]]:
    """Files named as given; a folder -> every spec in it, recursively, in sorted order:
    *.yaml and *.yml files with a top-level `layers:` key (CI configs and other YAML are
    skipped), and model files an importer reads (.onnx). Hidden folders are not entered.
    Returns (sources, skipped YAML files)."""
    found: list[str] = []
    skipped: list[str] = []
    for path in map(str, paths):
        if path == "-" or not Path(path).is_dir():
            found.append(path)
            continue
        for file in sorted(Path(path).rglob("*")):
            if any(part.startswith(".") for part in file.relative_to(path).parts):
                continue
            if file.suffix.lower() in SPEC_SUFFIXES and file.is_file():
                (found if _looks_like_spec(file) else skipped).append(str(file))
            elif _is_model(file) and file.is_file():
                found.append(str(file))
    return found, skipped


def _looks_like_spec(file: Path) -> bool:
    try:
        return bool(_SPEC_MARK.search(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return True  # named in the folder as YAML: let the check say why it cannot be read


def _is_model(file: Path) -> bool:
    """A model file whose importer is installed (.onnx once convcalc.interop.onnx_import is)."""
    from importlib.util import find_spec
    from convcalc.interop import MODEL_SUFFIXES
    return (file.suffix.lower() in MODEL_SUFFIXES
            and find_spec("convcalc.interop.onnx_import") is not None)
