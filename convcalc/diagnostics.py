"""Diagnostics as data: a registry of codes, and the Diagnostic value.

A diagnostic prints as `file:line:col: severity[code] message` (the mypy / pyflakes form).
Codes are a contract with users' CI scripts: add new ones, never rename or remove one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# code -> (severity it usually has, what it means). Some codes change severity with the
# case (invalid-stride is a warning when real pixels are dropped, info when only padding is).
CODES: dict[str, tuple[Severity, str]] = {
    "yaml-syntax": (Severity.ERROR, "the file is not valid YAML"),
    "invalid-spec": (Severity.ERROR, "the spec's structure is not what convcalc reads"),
    "unknown-layer-type": (Severity.ERROR, "a layer type that is neither a kind nor a block"),
    "unknown-parameter": (Severity.ERROR, "a parameter the layer kind or block does not take"),
    "invalid-value": (Severity.ERROR, "a parameter value of the wrong type or range"),
    "unknown-reference": (Severity.ERROR, "an input or reference names no earlier layer"),
    "duplicate-name": (Severity.ERROR, "two layers share one name"),
    "cycle": (Severity.ERROR, "layers feed each other in a loop (or a block uses itself)"),
    "missing-input": (Severity.ERROR, "a layer lacks inputs it needs"),
    "rank-mismatch": (Severity.ERROR, "an input has the wrong number of axes for the layer"),
    "non-positive-output": (Severity.ERROR, "an output size is zero or negative"),
    "channel-mismatch": (Severity.ERROR, "channel counts do not agree"),
    "shape-mismatch": (Severity.ERROR, "merged tensors' sizes differ"),
    "expectation-failed": (Severity.ERROR, "an `expect` in the spec differs from the result"),
    "expectation-skipped": (Severity.INFO, "size-pinned expectations not checked at --input"),
    "invalid-stride": (Severity.WARNING, "(i + p - k_eff) is not a multiple of the stride"),
    "skipped-input": (Severity.WARNING, "stride > effective kernel: rows between windows unread"),
    "checkerboard": (Severity.WARNING, "transposed conv kernel not divisible by its stride"),
    "same-padding": (Severity.INFO, "padding='same' with stride > 1 follows TensorFlow"),
    "misaligned-merge": (Severity.WARNING, "merged paths disagree on stride or centre"),
    "rf-exceeds-input": (Severity.INFO, "the receptive field covers the whole input"),
    "linear-on-map": (Severity.WARNING, "a linear layer acts on the width of a spatial map"),
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a spec, with its position in the YAML text (1-based line/column)."""

    code: str
    severity: Severity
    message: str
    layer: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def at(self, file: str | None = None, line: int | None = None, column: int | None = None,
           layer: str | None = None) -> "Diagnostic":
        """The same diagnostic, placed (fields already set are kept)."""
        return replace(self, file=self.file or file, line=self.line or line,
                       column=self.column or column, layer=self.layer or layer)

    def location(self) -> str:
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self) -> str:
        """`file:line:col: severity[code] layer: message (hint: ...)`"""
        where = f"{self.layer}: " if self.layer else ""
        text = f"{self.location()}: {self.severity.value}[{self.code}] {where}{self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


def diag(code: str, message: str, hint: str | None = None,
         severity: Severity | None = None) -> Diagnostic:
    """A diagnostic of a registered code, with the code's usual severity unless given."""
    return Diagnostic(code, severity or CODES[code][0], message, hint=hint)


class SpecError(Exception):
    """Raised where a spec cannot be read any further; carries its diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("; ".join(d.format() for d in diagnostics))
        self.diagnostics = diagnostics
