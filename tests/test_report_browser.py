"""The HTML report in a real browser: headless Chromium from the system's packages, driven by
Selenium through chromium-driver (convcalc.picture.chromium). Each report loads from a file
with no console error and no failed or outside request; a click on a graph box shows and
selects its table row; a screenshot is taken and the graph and the table are visible in it.
Without chromium, chromium-driver or selenium these tests skip and say which is missing;
.ci/run installs all three."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc.picture import chromium

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser

_, _, WHY = chromium.find()
needs_browser = pytest.mark.skipif(bool(WHY), reason=WHY or "")


@pytest.fixture(scope="module")
def browser():
    if WHY:
        pytest.skip(WHY)
    session = chromium.start(1400, 1000)
    yield session
    session.quit()


def write_report(tmp_path: Path, spec: str, *extra) -> Path:
    out = tmp_path / f"{Path(spec).stem}.html"
    done = subprocess.run([sys.executable, "-m", "convcalc", "report", str(ROOT / spec), "-o",
                           str(out), *map(str, extra)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return out


def load(session, page: Path) -> list[str]:
    """Open the page; return the problems: console messages of level SEVERE or WARNING,
    failed requests, and any request other than the page itself and data: URIs."""
    session.get_log("browser"), session.get_log("performance")  # drop earlier entries
    url = page.resolve().as_uri()
    session.get(url)
    problems = [f"console {e['level']}: {e['message']}" for e in session.get_log("browser")
                if e["level"] in ("SEVERE", "WARNING")]
    events = [json.loads(e["message"])["message"] for e in session.get_log("performance")]
    ours = set()
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Network.requestWillBeSent" and params.get("documentURL") == url:
            ours.add(params["requestId"])
            wanted = params["request"]["url"]
            if wanted != url and not wanted.startswith("data:"):
                problems.append(f"request to {wanted}")
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Network.loadingFailed" and params.get("requestId") in ours:
            problems.append(f"failed request: {params.get('errorText')}")
    assert url in {e["params"]["request"]["url"] for e in events
                   if e["method"] == "Network.requestWillBeSent"}, "the page was never requested"
    return problems


def in_view(session, element, panel) -> bool:
    return session.execute_script(
        "const r = arguments[0].getBoundingClientRect(), p = arguments[1].getBoundingClientRect();"
        "return r.top >= p.top && r.bottom <= p.bottom && r.left >= p.left && r.right <= p.right;",
        element, panel)


def click_box(session, name: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    box = session.find_element(By.CSS_SELECTOR, f'#graph .node[data-name="{name}"] rect')
    graph = session.find_element(By.ID, "graph")
    for _ in range(40):  # scroll the graph with the wheel, as a person would, until it shows
        if in_view(session, box, graph):
            break
        ActionChains(session).scroll_from_origin(ScrollOrigin.from_element(graph), 0, 250).perform()
    assert in_view(session, box, graph), f"{name} never scrolled into the graph's view"
    box.click()
    row = session.find_element(By.ID, f"row-{name}")
    return row


@pytest.mark.parametrize("spec, box, folded", [
    ("specs/resnet50.yaml", "conv1", None),
    ("specs/resnet50.yaml", "layer1.0.conv1", "layer1"),
    ("specs/unet.yaml", "down1.conv1", "down1"),
])
def test_report_loads_cleanly_and_a_click_shows_the_row(browser, tmp_path, spec, box, folded):
    from selenium.webdriver.common.by import By
    page = write_report(tmp_path, spec)
    assert load(browser, page) == []
    if folded:  # the row starts folded away inside its block
        row = browser.find_element(By.ID, f"row-{box}")
        assert not row.is_displayed()
    row = click_box(browser, box)
    assert row.is_displayed()
    assert "selected" in row.get_attribute("class").split()
    node = browser.find_element(By.CSS_SELECTOR, f'#graph .node[data-name="{box}"]')
    assert "selected" in node.get_attribute("class").split()
    table = browser.find_element(By.CSS_SELECTOR, ".table-scroll")
    assert in_view(browser, row, table), "the row is scrolled into the table's view"


def test_screenshot_shows_graph_and_table(browser, tmp_path):
    from selenium.webdriver.common.by import By
    page = write_report(tmp_path, "specs/resnet50.yaml")
    assert load(browser, page) == []
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    from PIL import Image
    with Image.open(shot) as image:
        width, height = image.size
    viewport = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    for selector in ("#graph svg", "#graph .node", "#layers tbody tr", "#summary", "#rf-svg"):
        element = browser.find_element(By.CSS_SELECTOR, selector)
        assert element.is_displayed(), selector
        assert element.size["width"] > 0 and element.size["height"] > 0, selector
    for selector in ("#graph svg", "#layers"):  # both in the first screen
        box = browser.find_element(By.CSS_SELECTOR, selector).rect
        assert box["y"] < viewport[1] and box["x"] < viewport[0], selector
    assert (width, height) == tuple(viewport) or width >= viewport[0]
    rows = browser.find_elements(By.CSS_SELECTOR, "#layers tbody tr")
    assert sum(r.is_displayed() for r in rows) >= 5


def test_sorting_and_diagnostic_links(browser, tmp_path):
    from selenium.webdriver.common.by import By
    page = write_report(tmp_path, "specs/resnet50.yaml")
    assert load(browser, page) == []
    browser.find_element(By.CSS_SELECTOR, "#layers th[data-key='params']").click()
    first = browser.find_element(By.CSS_SELECTOR, "#layers tbody tr:not(.hidden)")
    assert first.get_attribute("data-name") == "layer4.0.conv2"  # 2,359,296: the largest
    link = browser.find_element(By.CSS_SELECTOR, "#diagnostic-list a.layer-link")
    name = link.text
    link.click()
    row = browser.find_element(By.ID, f"row-{name}")
    assert row.is_displayed() and "selected" in row.get_attribute("class")


def test_feature_maps_with_an_image(browser, tmp_path):
    from selenium.webdriver.common.by import By
    photo = ROOT / "convcalc" / "data" / "images" / "chelsea.png"
    page = write_report(tmp_path, "specs/edges.yaml", "--image", photo)
    assert load(browser, page) == []
    figures = browser.find_elements(By.CSS_SELECTOR, "#feature-grid img")
    assert figures and all(f.is_displayed() for f in figures)
    assert browser.execute_script("return Array.from(document.querySelectorAll('#feature-grid img'))"
                                  ".every(i => i.complete && i.naturalWidth > 0)")


def test_the_load_check_catches_console_errors_and_requests(browser, tmp_path):
    """A negative control: a page that logs an error and asks for an outside file fails it
    (port 9 is one Chromium refuses itself, so nothing leaves the machine)."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script></body></html>')
    problems = load(browser, page)
    assert any("boom" in p for p in problems)
    assert any(p.startswith("request to http://127.0.0.1:9/") for p in problems)
    assert any(p.startswith("failed request") for p in problems)
