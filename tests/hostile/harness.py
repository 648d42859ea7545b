"""Run convcalc as a user does, in a subprocess with a time limit (20 s) and an address-space
limit (RLIMIT_AS, 4 GiB), and judge what it did: the shared core of the hostile corpus
(tests/test_hostile_corpus.py) and the fuzzer (tests/fuzz/fuzz.py).

A run is judged by `problems(...)`: every way convcalc can fail a user, as short strings
(an empty list is a pass):

- "exit 3"        an internal error (a bug in convcalc), or any exit status but 0, 1, 2;
- "traceback"     a Python traceback, an internal error or a raw Python warning in the output;
- "hang"          no exit within the time limit;
- "memory"        the peak resident size passed the limit (--max-memory, else 4 GiB);
- "multi-line"    a usage error (exit 2) whose stderr is not one `convcalc: error:` line per
                  error (a traceback, a wrapped line, a raw message of a library);
- "wrote outside" a file created outside the folders the command was told to write (--out);
- "overwrote"     a file that existed before was changed or removed (unless named by --out);
- "shape"         `run` produced a shape other than the one predicted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIME_LIMIT = 20.0
MEMORY_LIMIT = 4 * 2**30


@dataclass
class Outcome:
    """What one run of convcalc did."""

    argv: list[str]
    status: int | None  # None: killed at the time limit
    out: str
    err: str
    seconds: float
    peak_bytes: int  # the child's peak resident size (ru_maxrss)
    cpu_seconds: float = 0.0  # user + system time of the child

    @property
    def hung(self) -> bool:
        return self.status is None


def _limits(memory: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        os.setsid()  # its own process group: the time limit kills its children too
    return apply


def environment(extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env.pop("PYTHONWARNINGS", None)
    env.update(extra or {})
    return env


def run(argv: list[str], cwd: Path, *, stdin: bytes | None = None, timeout: float = TIME_LIMIT,
        memory: int = MEMORY_LIMIT, python: list[str] | None = None) -> Outcome:
    """Run `python -m convcalc ARGV` (or `python PYTHON...`) in `cwd`; its output goes to
    temporary files and its own peak resident size comes from wait4."""
    import tempfile
    command = [sys.executable, *(python or ["-m", "convcalc", *argv])]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as feed:
        feed.write(stdin or b"")
        feed.seek(0)
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, env=environment(), stdout=out, stderr=err,
                                   stdin=feed if stdin is not None else subprocess.DEVNULL,
                                   preexec_fn=_limits(memory))
        status, peak, cpu = None, 0, 0.0
        while True:
            pid, code, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                status, peak = os.waitstatus_to_exitcode(code), usage.ru_maxrss * 1024
                cpu = usage.ru_utime + usage.ru_stime
                process.returncode = status
                break
            if time.monotonic() - start > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                _, _, usage = os.wait4(process.pid, 0)
                peak, cpu = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
                process.returncode = -9
                break
            time.sleep(0.01)
        seconds = time.monotonic() - start
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # anything it left running
        out.seek(0)
        err.seek(0)
        return Outcome(list(argv), status, out.read().decode("utf-8", "replace"),
                       err.read().decode("utf-8", "replace"), seconds, peak, cpu)


# -- files ------------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[Path, str]:
    """Every file under `folder` (symlinks not followed) -> a digest of its bytes."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_symlink():
            found[path] = "symlink:" + os.readlink(path)
        elif path.is_file():
            found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def file_problems(before: dict[Path, str], after: dict[Path, str],
                  may_write: list[Path] = ()) -> list[str]:
    """New files outside `may_write` (files or folders) and changed or removed old files."""
    allowed = [Path(p).resolve() for p in may_write]

    def inside(path: Path) -> bool:
        path = path.resolve()
        return any(path == a or a in path.parents for a in allowed)

    found = []
    for path, digest in before.items():
        if after.get(path) != digest and not inside(path):
            found.append(f"overwrote {path.name}")
    for path in after.keys() - before.keys():
        if not inside(path) and not path.name.startswith("."):
            found.append(f"wrote outside {path.name}")
    return found


# -- verdicts --------------------------------------------------------------------------------

RAW_WARNINGS = ("Warning:", "warnings.warn", "DeprecationWarning", "RuntimeWarning")


def problems(outcome: Outcome, *, memory_limit: int = MEMORY_LIMIT) -> list[str]:
    """What went wrong for a user, whatever the input was (see the module's docstring)."""
    found = []
    if outcome.hung:
        return ["hang"]
    text = outcome.out + outcome.err
    if outcome.status not in (0, 1, 2):
        found.append(f"exit {outcome.status}")
    if "Traceback (most recent call last)" in text or "internal error" in text:
        found.append("traceback")
    elif any(w in outcome.err for w in RAW_WARNINGS):
        found.append("traceback")  # a raw Python warning: a traceback's little sister
    if outcome.status == 2:  # one line per error (a command given several files: several)
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        if not lines or not all(line.startswith("convcalc: ") for line in lines) \
                or not any(line.startswith("convcalc: error:") for line in lines):
            found.append("multi-line")
    if outcome.peak_bytes > memory_limit:
        found.append("memory")
    return found


def diagnostic_line(outcome: Outcome, code: str) -> str | None:
    """The first line of the output carrying `[code]` (error, warning or info)."""
    for line in (outcome.out + "\n" + outcome.err).splitlines():
        if f"[{code}]" in line:
            return line.strip()
    return None
