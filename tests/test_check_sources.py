"""`convcalc check -` (a spec on standard input) and folders (every spec inside)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, stdin=None, cwd=ROOT):
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, input=stdin, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def test_stdin_is_a_spec():
    text = (ROOT / "specs" / "lenet5.yaml").read_text()
    proc = cli("check", "-", "-f", "json", stdin=text)
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)["files"]
    assert report["file"] == "<stdin>" and report["totals"]["params"] == 61_706
    broken = cli("check", "-", stdin="input: [3, 8, 8]\nlayers:\n  - {type: nope}\n")
    assert broken.returncode == 1 and "<stdin>:3:5: error[unknown-layer-type]" in broken.stdout


def test_folder_recursive_skips_non_specs(tmp_path):
    (tmp_path / "nets" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    spec = (ROOT / "specs" / "lenet5.yaml").read_text()
    (tmp_path / "nets" / "a.yaml").write_text(spec)
    (tmp_path / "nets" / "deep" / "b.yml").write_text(spec)
    (tmp_path / ".hidden" / "c.yaml").write_text(spec)
    (tmp_path / "nets" / "ci.yaml").write_text("jobs:\n  test: {runs-on: ubuntu-latest}\n")
    (tmp_path / "nets" / "notes.txt").write_text("layers: not yaml")
    proc = cli("check", tmp_path, "-f", "json")
    assert proc.returncode == 0, proc.stderr
    files = [f["file"] for f in json.loads(proc.stdout)["files"]]
    assert files == [str(tmp_path / "nets" / "a.yaml"), str(tmp_path / "nets" / "deep" / "b.yml")]
    named = cli("check", tmp_path / "nets" / "ci.yaml")  # named explicitly: checked, and fails
    assert named.returncode == 1 and "invalid-spec" in named.stdout


def test_folder_with_broken_spec_fails_and_empty_folder_is_usage_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("input: [3, 8, 8]\nlayers:\n  - {type: conv2d}\n")
    proc = cli("check", tmp_path)
    assert proc.returncode == 1 and "bad.yaml:3:5: error[" in proc.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("check", empty)
    assert proc.returncode == 2 and "no spec in" in proc.stderr


def test_specs_folder_matches_files_one_by_one():
    together = json.loads(cli("check", "specs", "-f", "json").stdout)["files"]
    names = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.yaml"))
    assert [f["file"] for f in together] == names
    alone = json.loads(cli("check", *names, "-f", "json").stdout)["files"]
    assert together == alone
