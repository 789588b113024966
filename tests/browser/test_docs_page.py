"""Swagger UI (`/docs`) and ReDoc (`/redoc`) render the service's operations in a real browser, offline.

Chromium resolves no name but the service's, so a page that needed a CDN would render nothing; the performance log
shows any request that tried to leave the origin even so, and the console any script or load error.
"""

from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.browser.driver import aliased, console_errors, foreign_requests, screenshot, wait_for, wait_for_elements

DIAGNOSIS_PATH = "/tic/{tic_id}/diagnosis"

# Every operation Swagger UI rendered, as (method, path).
RENDERED_OPERATIONS_JS = """
return [...document.querySelectorAll('.opblock')].map(block => [
    block.querySelector('.opblock-summary-method').textContent.toLowerCase(),
    block.querySelector('.opblock-summary-path').dataset.path,
]);
"""


@pytest.fixture(scope="module")
def document(browser_service: str) -> dict[str, Any]:
    """The OpenAPI document the pages show, as the service serves it."""
    response = httpx.get(f"{browser_service}/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Return the document's operations by (method, path)."""
    return {(method, path): operation for path, item in document["paths"].items() for method, operation in item.items()}


def test_swagger_ui_lists_every_operation_and_expands_one_to_its_parameters(browser, browser_service, document):
    expected = operations(document)
    browser.get(f"{browser_service}/docs")
    wait_for(
        browser,
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(expected),
        what=f"Swagger UI to render {len(expected)} operations",
    )
    screenshot(browser, "docs-swagger-ui")
    assert {tuple(pair) for pair in browser.execute_script(RENDERED_OPERATIONS_JS)} == set(expected)

    block = browser.find_element(
        By.XPATH, f'//div[contains(@class, "opblock-get")][.//*[@data-path="{DIAGNOSIS_PATH}"]]'
    )
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    rows = wait_for_elements(browser, ".opblock-get.is-open tr[data-param-name]", what="the diagnosis's parameters")
    screenshot(browser, "docs-swagger-ui-diagnosis", showing=block)
    shown = {row.get_attribute("data-param-name") for row in rows}
    assert shown == {parameter["name"] for parameter in expected[("get", DIAGNOSIS_PATH)]["parameters"]}

    assert console_errors(browser) == []
    assert foreign_requests(browser, browser_service) == []


def test_swagger_ui_on_a_host_that_is_not_localhost_asks_no_validator(browser, browser_service):
    # Swagger UI skips its validator badge on localhost only, so the page is loaded as a real host would serve it.
    # FastAPI's layout (BaseLayout) draws no badge today, so the configuration itself is checked too: a layout that
    # draws one must still not ask validator.swagger.io.
    page = f"{aliased(browser_service)}/docs"
    browser.get(page)
    wait_for_elements(browser, ".opblock", what="Swagger UI's operations")
    assert browser.execute_script("return ui.getConfigs().validatorUrl") is None
    assert browser.find_elements(By.CSS_SELECTOR, "img[src*='validator'], a[href*='validator']") == []
    assert console_errors(browser) == []
    assert foreign_requests(browser, page) == []


def test_redoc_lists_every_operation_in_its_menu_and_opens_one(browser, browser_service, document):
    expected = operations(document)
    browser.get(f"{browser_service}/redoc")
    wait_for_elements(browser, 'li[data-item-id^="tag/"]', what="ReDoc's menu")
    menu_ids = browser.execute_script(
        "return [...document.querySelectorAll('li[data-item-id*=\"/operation/\"]')].map(item => item.dataset.itemId)"
    )
    assert sorted(item.rsplit("/operation/", 1)[1] for item in menu_ids) == sorted(
        operation["operationId"] for operation in expected.values()
    )

    diagnosis = expected[("get", DIAGNOSIS_PATH)]
    item = browser.find_element(By.CSS_SELECTOR, f'li[data-item-id$="/operation/{diagnosis["operationId"]}"]')
    assert not item.is_displayed()  # folded under its tag until the tag is opened
    item.find_element(By.XPATH, "ancestor::li[1]/label").click()
    wait_for(browser, lambda _: item.is_displayed(), what="the diagnosis in the opened menu")
    assert item.text.strip().lower() == f"get\n{diagnosis['summary']}".lower()
    item.click()
    section = wait_for_elements(browser, f'[id="{item.get_attribute("data-item-id")}"]', what="the diagnosis section")[
        0
    ]
    for parameter in diagnosis["parameters"]:
        assert parameter["name"] in section.text
    screenshot(browser, "docs-redoc-diagnosis")

    assert console_errors(browser) == []
    assert foreign_requests(browser, browser_service) == []
