"""A real browser for the tests: Debian's headless Chromium driven by Selenium through chromedriver.

Where Chromium, chromedriver or Selenium is absent the test is skipped (a failure in CI, whose
.ci/run installs them: `apt-get install chromium chromium-driver`). Selenium's own driver manager is
never used: it would try to download a browser.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers import require, skip_unless_ci

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def _which(names: tuple[str, ...]) -> str | None:
    return next((found for found in map(shutil.which, names) if found), None)


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium session that keeps the page's console messages (`console_errors`)."""
    require("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _which(CHROMIUM_NAMES), _which(DRIVER_NAMES)
    if binary is None or driver_path is None:
        skip_unless_ci("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The page's console errors (and failed loads) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(condition: Callable[[], Any], timeout_s: float = 30, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
