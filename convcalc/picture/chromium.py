"""Headless Chromium from the system's packages (Debian: chromium, chromium-driver), driven by
Selenium through the matching chromedriver: screenshots for docs/make_pictures.py and the
browser tests. Nothing is downloaded: without the browser, `find()` says why."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-dev-shm-usage")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find() -> tuple[str | None, str | None, str]:
    """(browser, chromedriver, why not) on PATH; `why not` is empty when both are there."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return browser, driver, "selenium is not installed (pip install -e '.[test]')"
    if not browser or not driver:
        return browser, driver, ("no chromium and chromium-driver on PATH "
                                 "(apt-get install -y chromium chromium-driver)")
    return browser, driver, ""


def start(width: int = 1400, height: int = 1000):
    """A Selenium Chrome session with a fresh profile, logging the console and the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver, why = find()
    if why:
        raise RuntimeError(why)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='convcalc-chromium-')}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 1000) -> None:
    """A picture of a local file (an HTML page or an SVG) as the browser draws it."""
    session = start(width, height)
    try:
        session.get(Path(page).resolve().as_uri())
        session.save_screenshot(str(out))
    finally:
        session.quit()
