"""Importers (and, later, exporters): translators at the edges of the one model.

An importer turns a model it did not write (an ONNX file, a PyTorch factory) into the spec a
person would write: the plain structure that `yaml.safe_load` gives for a spec file, and the
model's own weights under the spec's state_dict names. Everything downstream (check, rf,
sizes, run, the renderers, the API) sees an ordinary spec and never learns where a network
came from. Format knowledge lives in one converter table per format:

- `onnx_import.py`: ONNX op type -> converter (the `onnx` package; imported only for .onnx);
- `torch_import.py`: torch.fx module class / function / method -> converter (torch optional).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_SUFFIXES = (".onnx",)


@dataclass(frozen=True)
class Imported:
    """An imported network: `spec` as YAML would give it ({"name", "input", "layers", and
    optionally "blocks" and "description"}), `weights` as state_dict name -> float32 array,
    and `notes`: what the user should know (the example input a model was traced at).
    `batch_axis` is False when the source's axis 0 is data: the spec's input is then the
    source's whole input tensor, one sample (an ONNX graph that uses axis 0 as data)."""

    spec: dict
    weights: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    notes: tuple[str, ...] = ()
    batch_axis: bool = True


class ImportFailure(Exception):
    """A model that cannot be imported faithfully: one line naming the source, with a hint."""

    def __init__(self, source: str, message: str, hint: str | None = None):
        super().__init__(f"{source}: {message}")
        self.source, self.message, self.hint = source, message, hint


class Unsupported:
    """Collects every construct an importer cannot translate, so that one error lists them
    all (operator or module, count, node names) instead of stopping at the first."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def add(self, what: str, node: str) -> None:
        self.found.setdefault(what, []).append(node)

    def raise_if_any(self, source: str, noun: str = "operator") -> None:
        if not self.found:
            return
        parts = []
        for what, nodes in sorted(self.found.items()):
            shown = ", ".join(nodes[:3]) + (", ..." if len(nodes) > 3 else "")
            parts.append(f"{what} x{len(nodes)} ({shown})")
        raise ImportFailure(source, f"cannot import {sum(map(len, self.found.values()))} "
                            f"node(s); unsupported {noun}s: {'; '.join(parts)}",
                            "convcalc kinds lists what convcalc models; nothing was written")


def fixed_reshape_note(layers: list[dict], size: str) -> str:
    """A note naming the reshapes whose target holds sizes fixed at the traced or declared
    input (a spec's `shape` is numbers): `check --input` at another size then fails at
    them, and the model needs importing again at that size."""
    fixed = [layer["name"] for layer in layers if layer.get("type") == "reshape"
             and any(isinstance(v, int) and v > 1 for v in layer.get("shape", []))]
    if not fixed:
        return ""
    shown = ", ".join(fixed[:3]) + (", ..." if len(fixed) > 3 else "")
    return (f"{len(fixed)} reshape(s) hold sizes fixed at input {size} ({shown}): for "
            "another input size, import again with --input")


def is_model_file(path: str | Path) -> bool:
    """True for files an importer reads (an .onnx file), False for YAML specs."""
    return Path(str(path)).suffix.lower() in MODEL_SUFFIXES


def import_model(source: str | Path, *, input: tuple[int, ...] | None = None,
                 kwargs: dict | None = None) -> Imported:
    """An .onnx path, or MODULE:CALLABLE (a factory returning a torch.nn.Module) -> Imported.

    `input` is (C, *spatial) without the batch axis: it fixes symbolic sizes of an ONNX
    input, and is the example input traced through a PyTorch module."""
    text = str(source)
    if is_model_file(text):
        from convcalc.interop.onnx_import import import_onnx
        return import_onnx(Path(text), input)
    if ":" in text and not Path(text).exists():
        from convcalc.interop.torch_import import import_torch
        return import_torch(text, input, kwargs or {})
    raise ImportFailure(text, "not an .onnx file nor a MODULE:CALLABLE factory",
                        "e.g. convcalc import model.onnx, or torchvision.models:resnet50")


__all__ = ["ImportFailure", "Imported", "Unsupported", "fixed_reshape_note", "import_model",
           "is_model_file"]
