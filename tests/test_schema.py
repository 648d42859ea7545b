"""`convcalc schema`: the JSON Schema of the spec format, generated from the layer registry.

The committed copy schema/convcalc-spec.schema.json must equal what convcalc generates;
every shipped spec and every YAML example of the docs validates; broken specs do not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from convcalc.layers import REGISTRY
from convcalc.layers.base import REQUIRED
from convcalc.schema import render_schema, spec_schema

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "schema" / "convcalc-spec.schema.json"
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_copy_is_in_sync():
    assert COMMITTED.read_text() == render_schema(), (
        "schema/convcalc-spec.schema.json is out of date (a layer kind or parameter was "
        "added or changed): regenerate it with "
        "`python -m convcalc schema > schema/convcalc-spec.schema.json` and commit it")


def test_every_kind_and_parameter_is_described():
    defs = spec_schema()["$defs"]
    for name, kind in REGISTRY.items():
        entry = defs[f"kind.{name}"]
        assert set(kind.cls.params) <= set(entry["properties"]), name
        required = {k for k, p in kind.cls.params.items() if p.default is REQUIRED}
        assert set(entry["required"]) == {"type"} | required, name
        for key, p in kind.cls.params.items():
            if p.default is not REQUIRED:
                want = list(p.default) if isinstance(p.default, tuple) else p.default
                assert entry["properties"][key]["default"] == want, (name, key)
            if p.doc:
                assert entry["properties"][key]["description"] == p.doc


def _yaml_examples():
    for page in DOC_PAGES:
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S):
            try:
                data = yaml.safe_load(block)
            except yaml.YAMLError:
                continue  # an excerpt with "..." in it, not a whole spec
            if isinstance(data, dict) and "layers" in data:
                yield page.name, data


SHIPPED = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "tests" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_validate(validator, path):
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert not errors, errors[:3]


def test_doc_examples_validate(validator):
    examples = list(_yaml_examples())
    assert len(examples) >= 2  # docs/spec.md's and the README's
    for page, data in examples:
        errors = [e.message for e in validator.iter_errors(data)]
        assert not errors, (page, errors[:3])


BASE = {"input": [3, 32, 32]}
INVALID = {
    "missing required": [{"type": "conv2d", "kernel_size": 3}],
    "misspelt parameter": [{"type": "conv2d", "out_channels": 8, "kernel": 3}],
    "wrong type": [{"type": "conv2d", "out_channels": "eight", "kernel_size": 3}],
    "bad padding word": [{"type": "conv2d", "out_channels": 8, "kernel_size": 3,
                          "padding": "full"}],
    "three axes on conv2d": [{"type": "conv2d", "out_channels": 8,
                              "kernel_size": [3, 3, 3]}],
    "bad choice": [{"type": "upsample", "scale_factor": 2, "mode": "cubic"}],
    "bad expect key": [{"type": "relu", "expect": {"param": 3}}],
    "bad repeat": [{"type": "relu", "repeat": 0}],
    "layer without type": [{"name": "x", "out_channels": 3}],
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_specs_fail(validator, case):
    assert list(validator.iter_errors({**BASE, "layers": INVALID[case]}))


def test_invalid_top_level(validator):
    for bad in ({"layers": ["relu"]}, {**BASE, "layer": ["relu"], "layers": ["relu"]},
                {"input": "3x32x32", "layers": ["relu"]}, {**BASE, "layers": []}):
        assert list(validator.iter_errors(bad)), bad


def test_templates_and_blocks_validate(validator):
    spec = {**BASE, "blocks": {"b": {"args": {"c": 8, "s": 1}, "layers": [
        {"type": "conv2d", "name": "conv${s}", "out_channels": "${c * 2}", "kernel_size": 3,
         "stride": "${s}", "padding": 1},
        {"type": "add", "inputs": ["conv${s}", "input"]}]}},
        "layers": [{"type": "conv2d", "out_channels": 16, "kernel_size": 1},
                   {"type": "b", "name": "stage", "c": 8, "repeat": {"count": 2, "start": 1}},
                   "b"]}
    assert not list(validator.iter_errors(spec))


def test_cli_prints_the_schema():
    from typer.testing import CliRunner
    from convcalc.cli import _register_commands, app
    _register_commands()
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0 and json.loads(result.output) == spec_schema()


def tiny_net():
    """A small torch network with a residual add, for the importer (a factory)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn = torch.nn.BatchNorm2d(8)
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            y = y + self.conv2(y)
            return self.fc(torch.flatten(self.pool(y), 1))

    return Tiny()


def test_imported_specs_validate(validator):
    pytest.importorskip("torch")
    from convcalc.interop import import_model
    imported = import_model("test_schema:tiny_net", input=(3, 16, 16))
    assert len(imported.spec["layers"]) >= 5
    errors = [e.message for e in validator.iter_errors(imported.spec)]
    assert not errors, errors[:3]
