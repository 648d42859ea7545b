"""Every shipped spec runs through `convcalc run --verify` at a reduced size: each layer's
produced shape equals the analysis' prediction, and sampled outputs of every layer equal the
plain per-position references (convcalc/executor/verify.py) within 1e-4 of their scale."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc.cli import _register_commands, app
from test_rf_specs import REDUCED, SPECS

_register_commands()


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_spec_runs_as_analysed_and_verified(spec, tmp_path):
    from convcalc.analysis import analyze_file
    shape = REDUCED.get(spec.stem) or analyze_file(spec).input_shape
    sample = tmp_path / "x.npy"
    np.save(sample, np.random.default_rng(0).random(shape, dtype=np.float32))
    result = CliRunner().invoke(app, ["run", str(spec), str(sample), "--verify", "-f", "json"])
    assert result.exit_code == 0, result.output[-2000:]
    data = json.loads(result.output)
    assert data["ok"] is True
    (run,) = data["runs"]
    layers = run["layers"]
    assert layers and all(layer["ok"] for layer in layers)
    assert max(layer["rel_error"] or 0.0 for layer in layers) <= 1e-4
