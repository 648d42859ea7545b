"""Reports -> GitLab's code quality report: a JSON array of Code Climate issues
({description, check_name, fingerprint, severity, location: {path, lines: {begin}}}),
the artifact `artifacts: reports: codequality` reads. Severity maps error -> "major",
warning -> "minor", info -> "info"."""

from __future__ import annotations

import hashlib
import json

from convcalc.diagnostics import Diagnostic, Severity

SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}


def render_gitlab(reports) -> str:
    return json.dumps([_issue(d) for report in reports for d in report.diagnostics], indent=2)


def _issue(d: Diagnostic) -> dict:
    text = f"{d.layer + ': ' if d.layer else ''}{d.message}" + (
        f" (hint: {d.hint})" if d.hint else "")
    key = "\0".join(str(v) for v in (d.file, d.code, d.layer, d.line, d.column, d.message))
    return {"description": f"[{d.code}] {text}", "check_name": d.code,
            "fingerprint": hashlib.sha256(key.encode()).hexdigest()[:32],
            "severity": SEVERITY[d.severity],
            "location": {"path": d.file or "<spec>", "lines": {"begin": d.line or 1}}}
