"""A headless Chromium held to the service's origin, and what the browser tests read from it.

Debian's `chromium` and `chromium-driver` (installed by `.ci/run`) are driven by Selenium. The browser resolves no
name but loopback and `ALIAS_HOST`, and switches off its own background traffic (component updates, safe browsing,
field trials), so every request in its performance log came from the page under test.

Both logs are read through chromedriver, which hands out each entry once: `console_errors` and `foreign_requests`
return what was logged since their previous call (the `browser` fixture drains both before each test).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.service_process import ROOT

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SKIP_VARIABLE = "TESS_SKIP_BROWSER"
ARTIFACTS = ROOT / "var" / "test-artifacts" / "browser"
WINDOW_SIZE_PX = (1280, 900)
WAIT_S = 30.0  # generous: it only bounds a failing test, and two xdist workers share two cores with the browser
# A name that is not localhost, mapped to loopback: pages behave as they do on a real host (Swagger UI, for one,
# treats localhost specially).
ALIAS_HOST = "tess.test"
HOST_RULES = f"MAP {ALIAS_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
LOCAL_SCHEMES = ("data", "blob", "about")

CHROMIUM_ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-dev-shm-usage",  # containers' /dev/shm is small
    f"--window-size={WINDOW_SIZE_PX[0]},{WINDOW_SIZE_PX[1]}",
    f"--host-resolver-rules={HOST_RULES}",
    # Chromium's own traffic, which would otherwise show in the performance log next to the page's.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-extensions",
    "--disable-sync",
    "--disable-client-side-phishing-detection",
    "--disable-features=OptimizationHints,MediaRouter,Translate,InterestFeedContentSuggestions",
    "--metrics-recording-only",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
    "--safebrowsing-disable-auto-update",
    # A movie's sound needs no audio device. The autoplay policy stays Chromium's own: a page must play as it would.
    "--mute-audio",
    # WebGL (BokehJS's WebGL output) on the CPU: the pages are the service's own, trusted content; without it Chromium
    # still falls back to SwiftShader today but warns that the fallback is deprecated.
    "--enable-unsafe-swiftshader",
]


def missing_browser() -> str | None:
    """Return why Chromium cannot be driven here, or None when both programs are installed."""
    absent = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not absent:
        return None
    return (
        f"the browser tests need Debian's chromium and chromium-driver ({', '.join(absent)} missing): "
        f"`apt-get install chromium chromium-driver` (.ci/run does), or set {SKIP_VARIABLE}=1 to skip them"
    )


def open_chromium() -> webdriver.Chrome:
    """Start a headless Chromium under chromedriver, with its browser and performance logs recorded."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def aliased(base: str) -> str:
    """Return ``base`` (an ``http://127.0.0.1:PORT`` URL) under `ALIAS_HOST`, a name that is not localhost."""
    return base.replace("//127.0.0.1:", f"//{ALIAS_HOST}:", 1)


def origin_of(url: str) -> str:
    """Return the origin (``scheme://host:port``) of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def console_errors(browser: webdriver.Chrome) -> list[str]:
    """Return the messages of the SEVERE console entries since the previous call (failed loads included)."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(browser: webdriver.Chrome) -> list[str]:
    """Return the URL of every request the pages started since the previous call (`Network.requestWillBeSent`)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def foreign_requests(browser: webdriver.Chrome, origin: str) -> list[str]:
    """Return the URLs requested since the previous call whose origin is not ``origin`` (``data:``/``blob:`` aside).

    ``origin`` may be any URL of the service (``http://127.0.0.1:PORT/docs``): only its origin counts.
    """
    own = origin_of(origin)
    return [
        url for url in requested_urls(browser) if urlsplit(url).scheme not in LOCAL_SCHEMES and origin_of(url) != own
    ]


def screenshot(browser: webdriver.Chrome, name: str, *, showing: WebElement | None = None) -> Path:
    """Save the window as ``var/test-artifacts/browser/<name>.png`` and return its path (look at it).

    ``showing``: an element scrolled to the top of the window first.
    """
    if showing is not None:
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", showing)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    assert browser.save_screenshot(str(path)), f"Chromium saved no screenshot to {path}"
    return path


def wait_for(
    browser: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], *, what: str, timeout_s: float = WAIT_S
) -> T:
    """Return ``condition(browser)`` once it is true (Selenium's expected conditions fit); fail naming ``what``."""
    waiting: WebDriverWait[webdriver.Chrome] = WebDriverWait(browser, timeout_s, poll_frequency=0.05)
    return waiting.until(condition, message=f"timed out after {timeout_s:g} s waiting for {what}")


def wait_for_elements(
    browser: webdriver.Chrome, css: str, *, what: str | None = None, timeout_s: float = WAIT_S
) -> list[WebElement]:
    """Return the displayed elements matching the CSS selector ``css`` once there is at least one."""

    def displayed(driver: webdriver.Chrome) -> list[WebElement]:
        return [element for element in driver.find_elements(By.CSS_SELECTOR, css) if element.is_displayed()]

    return wait_for(browser, displayed, what=what or f"an element matching {css!r}", timeout_s=timeout_s)
