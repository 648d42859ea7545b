"""Reports -> SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), the format
code-scanning services read (GitHub's upload-sarif among them).

One rule per registered diagnostic code (convcalc.diagnostics.CODES: its meaning is the
rule's help text); one result per diagnostic, at its file, line and column. Severity maps
error -> "error", warning -> "warning", info -> "note".
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from convcalc.diagnostics import CODES, Diagnostic, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_sarif(reports) -> str:
    """{"version": "2.1.0", "runs": [{"tool": {"driver": {..., "rules"}}, "results"}]}"""
    from convcalc import __version__
    codes = list(CODES)
    results = [_result(d, codes) for report in reports for d in report.diagnostics]
    driver = {"name": "convcalc", "version": __version__, "semanticVersion": __version__,
              "rules": [_rule(code) for code in codes]}
    run = {"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


def _rule(code: str) -> dict:
    severity, meaning = CODES[code]
    return {"id": code, "name": _camel(code), "shortDescription": {"text": meaning},
            "fullDescription": {"text": meaning},
            "help": {"text": f"{code}: {meaning}. The diagnostic's own hint says how to fix "
                             f"this case; docs/spec.md lists every code.",
                     "markdown": f"**{code}**: {meaning}. The diagnostic's own hint says how "
                                 f"to fix this case; `docs/spec.md` lists every code."},
            "defaultConfiguration": {"level": LEVEL[severity]}}


def _camel(code: str) -> str:
    """invalid-stride -> InvalidStride (SARIF's rule name is an identifier)."""
    return "".join(part.capitalize() for part in code.split("-"))


def _result(d: Diagnostic, codes: list[str]) -> dict:
    text = f"{d.layer + ': ' if d.layer else ''}{d.message}" + (
        f" (hint: {d.hint})" if d.hint else "")
    physical: dict = {"artifactLocation": {"uri": artifact_uri(d.file)}}
    if d.line is not None:
        physical["region"] = {"startLine": d.line, **(
            {"startColumn": d.column} if d.column is not None else {})}
    location: dict = {"physicalLocation": physical}
    if d.layer:
        location["logicalLocations"] = [{"name": d.layer, "fullyQualifiedName": d.layer}]
    return {"ruleId": d.code, "ruleIndex": codes.index(d.code), "level": LEVEL[d.severity],
            "message": {"text": text}, "locations": [location]}


def artifact_uri(file: str | None) -> str:
    """A path as a URI reference: relative paths stay relative (code scanning resolves
    them against the repository), absolute ones become file:// URIs."""
    name = file or "<spec>"
    path = Path(name)
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix(), safe="/._-~")
