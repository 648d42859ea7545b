"""The CI integrations as a user wires them: the pre-commit hook (.pre-commit-hooks.yaml)
and the composite GitHub Action (action.yml), each run for real in a scratch git
repository; the action's steps run under bash with a fake $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
R18 = (ROOT / "specs" / "resnet18.yaml").read_text()
WARNS = ("input: [3, 224, 224]\nlayers:\n"
         "  - {type: conv2d, name: conv1, out_channels: 96, kernel_size: 11, stride: 4}\n")
BROKEN = "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4}\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture
def shim(tmp_path) -> dict:
    """PATH with a `convcalc` that runs this tree (nothing is installed into the venv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "convcalc").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m convcalc "$@"\n')
    (bin_dir / "convcalc").chmod(0o755)
    return {**os.environ, **GIT_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "120", "NO_COLOR": "1"}


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


# -- pre-commit -------------------------------------------------------------------------------

def hook() -> dict:
    (entry,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return entry


def test_hook_entry_on_the_files_it_selects(tmp_path, shim):
    repo = make_repo(tmp_path / "repo", {"specs/good.yaml": R18, "specs/deep/bad.yaml": BROKEN,
                                         ".github/workflows/ci.yaml": "on: push\n",
                                         "config.yml": "a: 1\n"})
    h = hook()
    assert h["id"] == "convcalc-check" and h["language"] == "python"
    files = [f for f in git(repo, "ls-files").split() if re.search(h["files"], f)]
    assert sorted(files) == ["specs/deep/bad.yaml", "specs/good.yaml"]  # the CI YAML is not
    proc = subprocess.run([*shlex.split(h["entry"]), *files], cwd=repo, env=shim,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "specs/deep/bad.yaml:3:5: error[invalid-value]" in proc.stdout
    proc = subprocess.run([*shlex.split(h["entry"]), "specs/good.yaml"], cwd=repo, env=shim,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path):
    """pre-commit builds the hook's environment from this repository (pip, from the index)."""
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed")
    source = tmp_path / "convcalc"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "*.pyc", "__pycache__"))
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "snapshot")
    repo = make_repo(tmp_path / "repo", {"specs/good.yaml": R18, "specs/bad.yaml": BROKEN})
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    run = subprocess.run(["pre-commit", "try-repo", str(source), "convcalc-check",
                          "--all-files"], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=1200)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "specs/bad.yaml:3:5: error[invalid-value]" in run.stdout


# -- the GitHub Action ------------------------------------------------------------------------

def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def run_action(repo: Path, env: dict, summary: Path, **inputs: str) -> list:
    """Run every step as the runner would: ${{ inputs.* }} substituted, `if:` evaluated,
    the install step replaced by the PATH shim. Returns (step name, exit code, stdout)."""
    spec = action()
    values = {name: decl.get("default", "") for name, decl in spec["inputs"].items()}
    values.update({k.replace("_", "-"): v for k, v in inputs.items()})

    def expand(text: str) -> str:
        text = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], text)
        return re.sub(r"\$\{\{[^}]*\}\}", "", text)  # github.* context: empty outside Actions
    results = []
    for step in spec["runs"]["steps"]:
        if step["name"] == "Install convcalc":
            assert 'pip install --quiet "$GITHUB_ACTION_PATH"' in step["run"]
            continue
        condition = step.get("if")
        if condition == "inputs.fail-on != '' && inputs.base != ''":
            if not (values["fail-on"] and values["base"]):
                continue
        else:
            assert condition is None, condition
        step_env = {**env, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTION_PATH": str(ROOT),
                    **{k: expand(str(v)) for k, v in step.get("env", {}).items()}}
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=repo,
                              env=step_env, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in proc.stdout + proc.stderr
        results.append((step["name"], proc.returncode, proc.stdout))
        if proc.returncode:
            break
    return results


def test_action_declares_its_inputs():
    spec = action()
    assert spec["runs"]["using"] == "composite"
    assert {"paths", "strict", "format", "fail-on"} <= set(spec["inputs"])
    assert all("shell" in step for step in spec["runs"]["steps"])


def test_action_annotations_summary_and_strict(tmp_path, shim):
    repo = make_repo(tmp_path / "repo", {"specs/net.yaml": WARNS})
    summary = tmp_path / "summary.md"
    (name, code, out), = run_action(repo, shim, summary, paths="specs")
    assert code == 0 and out.startswith("::warning file=specs/net.yaml,line=3,col=5,")
    assert "### specs/net.yaml" in summary.read_text() and "| `conv1` |" in summary.read_text()
    (name, code, out), = run_action(repo, shim, tmp_path / "s2.md", paths="specs", strict="true")
    assert code == 1


def test_action_sarif_report(tmp_path, shim):
    repo = make_repo(tmp_path / "repo", {"specs/net.yaml": WARNS, "specs/ok.yaml": R18})
    (_, code, _), = run_action(repo, shim, tmp_path / "s.md", paths="specs/net.yaml\nspecs/ok.yaml",
                               format="sarif", report="out.sarif")
    assert code == 0
    sarif = json.loads((repo / "out.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert [r["ruleId"] for r in sarif["runs"][0]["results"] if r["level"] != "note"] == [
        "invalid-stride"]


def test_action_fail_on_against_the_base(tmp_path, shim):
    repo = make_repo(tmp_path / "repo", {"specs/resnet18.yaml": R18})
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "specs" / "resnet18.yaml").write_text(
        R18.replace("out_features: 1000, expect: {params: 513000}", "out_features: 2000")
        .replace("params: 11689512, macs: 1814073344, output: [1000]", "output: [2000]"))
    git(repo, "commit", "-qam", "wider head")
    summary = tmp_path / "summary.md"
    steps = run_action(repo, shim, summary, paths="specs", fail_on="params>+5% macs>1G",
                       base=base)
    assert [(name, code) for name, code, _ in steps] == [
        ("Check the specs", 0), ("Compare the changed specs with the base", 0)]
    text = summary.read_text()
    assert "### convcalc diff:" in text and "+513,000" in text  # fc: 512*1000 + 1000 more
    steps = run_action(repo, shim, tmp_path / "s2.md", paths="specs", fail_on="params>+4%",
                       base=base)
    assert steps[-1][1] == 1  # +4.39% crosses +4%
    skipped = run_action(repo, shim, tmp_path / "s3.md", paths="specs")
    assert [name for name, _, _ in skipped] == ["Check the specs"]
