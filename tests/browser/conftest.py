"""One service process and one headless Chromium per browser test module (each costs seconds to start).

Every test here is marked `process` (through `PROCESS_FIXTURES`) and `slow`. Without chromium and chromedriver the
tests fail saying what to install; `TESS_SKIP_BROWSER=1` skips them instead (CI installs both, so it never skips).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.browser.driver import (
    SKIP_VARIABLE,
    WINDOW_SIZE_PX,
    console_errors,
    missing_browser,
    open_chromium,
    requested_urls,
)
from tests.fake_mast import FakeMast
from tests.service_process import free_port, running, service_env, uvicorn_command

BROWSER_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests `slow`, or skip them all when `TESS_SKIP_BROWSER` is set (this hook sees every test)."""
    skipping = os.environ.get(SKIP_VARIABLE, "") not in ("", "0")
    for item in items:
        if BROWSER_DIR in item.path.parents:
            item.add_marker(pytest.mark.slow)
            if skipping:
                item.add_marker(pytest.mark.skip(reason=f"{SKIP_VARIABLE} is set"))


@pytest.fixture(scope="module")
def browser_service(mast: FakeMast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of `uvicorn service.main:app` against the emulator, for one module."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(uvicorn_command(port), service_env(mast, tmp_path_factory.mktemp("browser") / "cache"), base):
        yield base


@pytest.fixture(scope="module")
def _chromium() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module's tests; fails (does not skip) when it is not installed."""
    if reason := missing_browser():
        pytest.fail(reason, pytrace=False)
    driver = open_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(_chromium: webdriver.Chrome) -> webdriver.Chrome:
    """The module's Chromium on a blank page at the default size, its logs emptied of earlier tests' entries."""
    _chromium.get("about:blank")
    _chromium.delete_all_cookies()
    _chromium.set_window_size(*WINDOW_SIZE_PX)
    console_errors(_chromium)
    requested_urls(_chromium)
    return _chromium
