"""Make the pictures of the README and docs/ from the specs, so that they stay true:

    python docs/make_pictures.py          # from the repository's root

- docs/images/graph_*.svg: `convcalc graph` of shipped specs (and the README's opening);
- docs/report_resnet50.html: `convcalc report specs/resnet50.yaml`;
- docs/images/report_resnet50.png: that report in headless Chromium (skipped, with a
  message, where chromium and chromium-driver are not installed);
- the README's opening block, between its picture markers: the graph beside the table of
  `convcalc check`.
"""

from __future__ import annotations

import subprocess
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convcalc.api import check  # noqa: E402
from convcalc.picture import chromium, graph_text  # noqa: E402
from convcalc.picture.report import render_report  # noqa: E402

IMAGES = ROOT / "docs" / "images"
GRAPHS = [("resnet50", 2), ("unet", 1), ("densenet121", 2), ("resnet152", 1)]
README_SPEC, README_DEPTH = "resnet50", 2
START, END = "<!-- picture:start (docs/make_pictures.py) -->", "<!-- picture:end -->"


def graphs() -> None:
    for name, depth in GRAPHS:
        out = IMAGES / f"graph_{name}_depth{depth}.svg"
        out.write_text(graph_text(check(f"specs/{name}.yaml"), "svg", depth))
        print("wrote", out.relative_to(ROOT))


def report() -> None:
    page = ROOT / "docs" / "report_resnet50.html"
    page.write_text(render_report(check("specs/resnet50.yaml")))  # named as a user would
    print("wrote", page.relative_to(ROOT), f"({page.stat().st_size / 1024:.0f} KiB)")
    _, _, why = chromium.find()
    if why:
        print("skipped the screenshot:", why)
        return
    shot = IMAGES / "report_resnet50.png"
    chromium.screenshot(page, shot, 1400, 1000)
    print("wrote", shot.relative_to(ROOT))


def readme() -> None:
    spec = f"specs/{README_SPEC}.yaml"
    table = subprocess.run([sys.executable, "-m", "convcalc", "check", spec], cwd=ROOT,
                           capture_output=True, text=True, env={"PYTHONPATH": str(ROOT),
                                                                "COLUMNS": "200"}).stdout
    picture = f"docs/images/graph_{README_SPEC}_depth{README_DEPTH}.svg"
    block = (f"{START}\n<table><tr>\n<td valign=\"top\"><img src=\"{picture}\" width=\"240\" "
             f"alt=\"convcalc graph {spec} --depth {README_DEPTH}\"><br>"
             f"<sub><code>convcalc graph {spec} --depth {README_DEPTH}</code></sub></td>\n"
             f"<td valign=\"top\"><sub><code>convcalc check {spec}</code></sub>\n"
             f"<pre>{escape(_shortened(table))}</pre></td>\n</tr></table>\n{END}")
    path = ROOT / "README.md"
    text = path.read_text()
    before, rest = text.split(START, 1) if START in text else (None, None)
    if before is None:
        raise SystemExit(f"README.md has no {START!r} marker")
    path.write_text(before + block + rest.split(END, 1)[1])
    print("wrote README.md's opening picture")


def _shortened(table: str, head: int = 24) -> str:
    """The first layers, the last ones and the totals (the diagnostics' lines left out: the
    whole table is `convcalc check`'s to show)."""
    lines = [line for line in table.rstrip("\n").splitlines()
             if not line.startswith("specs/") or line.endswith(")") and "[" not in line]
    rows = [i for i, line in enumerate(lines) if line.startswith("│")]
    if len(rows) <= head + 4:
        return "\n".join(lines)
    cut = lines[:rows[0] + head] + [f"│ ... {len(rows) - head - 4} more rows ..."] + \
        lines[rows[-4]:]
    return "\n".join(cut)


if __name__ == "__main__":
    import os
    os.chdir(ROOT)
    IMAGES.mkdir(parents=True, exist_ok=True)
    graphs()
    report()
    readme()
