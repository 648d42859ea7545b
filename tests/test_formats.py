"""Every `convcalc check --format` on a spec with errors, warnings and their positions:
golden files (regenerate with CONVCALC_UPDATE_GOLDEN=1 and review the diff), and SARIF
validated against the official SARIF 2.1.0 schema (tests/sarif/, with its licence).

tests/data/diagnostics.yaml was read by hand: conv1 213 = 224 - 11 is not a multiple of 4
(warning, line 5); pool1 51 = 54 - 3 not a multiple of 2 (warning, line 7); conv2 says 32
input channels where there are 96 (error, line 8); conv3 has 96*8 + 8 = 776 parameters, not
the 777 it expects (error, line 10, column 14: its `expect`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc.diagnostics import CODES

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
SCHEMA = HERE / "sarif" / "sarif-schema-2.1.0.json"
FORMATS = {"table": "diagnostics.table.txt", "json": "diagnostics.json",
           "markdown": "diagnostics.md", "github": "diagnostics.github.txt",
           "sarif": "diagnostics.sarif", "gitlab": "diagnostics.gitlab.json"}
EXPECTED = [("invalid-stride", "warning", 5, 5), ("invalid-stride", "warning", 7, 5),
            ("channel-mismatch", "error", 8, 5), ("expectation-failed", "error", 10, 14)]


def check(*args, cwd=HERE, stdin=None):
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "convcalc", "check", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env, input=stdin,
                          timeout=60)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden(fmt):
    proc = check("data/diagnostics.yaml", "--format", fmt)
    assert proc.returncode == 1, proc.stderr  # errors: exit 1 in every format
    path = GOLDEN / FORMATS[fmt]
    if os.environ.get("CONVCALC_UPDATE_GOLDEN"):
        path.write_text(proc.stdout)
    assert proc.stdout == path.read_text()


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema,
                                      format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def test_sarif_contract_and_schema():
    doc = json.loads(check("data/diagnostics.yaml", "-f", "sarif").stdout)
    _validator().validate(doc)
    (run,) = doc["runs"]
    assert doc["version"] == "2.1.0"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CODES)  # one rule per registered code
    for rule in rules:
        assert CODES[rule["id"]][1] in rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] == {
            "error": "error", "warning": "warning", "info": "note"}[CODES[rule["id"]][0].value]
    found = []
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        where = result["locations"][0]["physicalLocation"]
        assert where["artifactLocation"]["uri"] == "data/diagnostics.yaml"
        found.append((result["ruleId"], result["level"], where["region"]["startLine"],
                      where["region"]["startColumn"]))
    assert found == EXPECTED


def test_sarif_validates_on_every_spec_stdin_and_absolute_paths(tmp_path):
    validate = _validator().validate
    validate(json.loads(check("../specs", "-f", "sarif").stdout))
    text = (HERE / "data" / "diagnostics.yaml").read_text()
    stdin = json.loads(check("-", "-f", "sarif", stdin=text).stdout)
    validate(stdin)
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in stdin["runs"][0]["results"]} == {"%3Cstdin%3E"}
    spaced = tmp_path / "my specs" / "bad net.yaml"
    spaced.parent.mkdir()
    spaced.write_text(text)
    absolute = json.loads(check(spaced, "-f", "sarif").stdout)
    validate(absolute)
    uri = absolute["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert uri["artifactLocation"]["uri"] == spaced.as_uri()  # file:///.../my%20specs/...


def test_gitlab_code_quality():
    issues = json.loads(check("data/diagnostics.yaml", "-f", "gitlab").stdout)
    assert [(i["check_name"], i["severity"], i["location"]["lines"]["begin"])
            for i in issues] == [("invalid-stride", "minor", 5), ("invalid-stride", "minor", 7),
                                 ("channel-mismatch", "major", 8),
                                 ("expectation-failed", "major", 10)]
    assert all(i["location"]["path"] == "data/diagnostics.yaml" for i in issues)
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert all(set(i) == {"description", "check_name", "fingerprint", "severity", "location"}
               for i in issues)


def test_github_annotations_positions():
    lines = check("data/diagnostics.yaml", "-f", "github").stdout.splitlines()
    got = [line.split("::")[1] for line in lines if line.startswith("::")]
    assert got == [f"{level} file=data/diagnostics.yaml,line={line},col={col},title={code}"
                   for code, level, line, col in EXPECTED]
