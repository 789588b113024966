"""The explorer in a real browser: the tutorial's workflow end to end, against the service and the emulator.

Each test reads the page as a person would (what is drawn, listed, played and said) and ends with no console error
and no request to another origin. Screenshots of each state go to var/test-artifacts/browser/.
"""

import io
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.driver import console_errors, foreign_requests, screenshot, wait_for, wait_for_elements

TIC = 214568914
SHARED = f"/explore/{TIC}?tce=s0001-s0001:TCE_1&start=1334&end=1335"
EVENT_T0 = 1334.45  # the asteroid's dip in the tutorial's light curve
ASTROCUT = "/tesscut/api/v0.1/astrocut"

VIDEO_JS = """
const v = document.getElementById('movie-video');
return v && {time: v.currentTime, paused: v.paused, ready: v.readyState, error: v.error && v.error.code,
             duration: v.duration};
"""


def status(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def points_drawn(browser) -> int:
    """The number of pixels in the plot tinted like its points (navy, drawn half-transparent; 0 on a blank canvas).

    Nothing else there is bluish: the background is white, the grid grey, the model red, the events orange.
    """
    plot = browser.find_element(By.ID, "lightcurve")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot)
    image = Image.open(io.BytesIO(plot.screenshot_as_png)).convert("RGB")
    return sum(count for count, (r, g, b) in image.getcolors(maxcolors=1 << 24) if b - r > 40 and b > 90)


def wait_for_light_curve(browser) -> None:
    def loaded(driver) -> bool:
        text = status(driver, "lightcurve-status")
        return "points" in text or "good frames" in text

    wait_for(browser, loaded, what="the light curve to load")
    wait_for(browser, lambda d: points_drawn(d) > 1000, what="the light curve's points to be drawn")


def wait_for_playing_movie(browser) -> dict:
    def playing(driver):
        video = driver.execute_script(VIDEO_JS)
        return video if video and video["ready"] >= 2 and not video["paused"] and video["time"] > 0.2 else None

    video = wait_for(browser, playing, what="the movie to play")
    assert video["error"] is None
    return video


def wait_for_verdict(browser) -> str:
    def verdict(driver):
        return driver.find_element(By.ID, "verdict").get_attribute("data-verdict")

    return wait_for(browser, verdict, what="the diagnosis")


def window_in_url(browser) -> tuple[float, float]:
    query = parse_qs(urlsplit(browser.current_url).query)
    return float(query["start"][0]), float(query["end"][0])


def assert_clean(browser, base: str) -> None:
    assert console_errors(browser) == []
    assert foreign_requests(browser, base) == []


def test_the_light_curve_is_drawn_with_the_event_and_clicking_it_plays_the_window(browser, browser_service):
    browser.get(f"{browser_service}/explore/{TIC}")
    wait_for_light_curve(browser)
    events = wait_for_elements(browser, "#event-list button.event", what="the events")
    assert abs(float(events[0].get_attribute("data-t0")) - EVENT_T0) < 0.02
    assert "1334.455" in events[0].text
    assert "single event" in status(browser, "transit-summary")
    screenshot(browser, "explorer-light-curve", showing=browser.find_element(By.ID, "lightcurve-panel"))

    events[0].click()
    wait_for_playing_movie(browser)
    assert wait_for_verdict(browser) == "moving_object"
    assert "2002 TV318" in status(browser, "explanation")
    start, end = window_in_url(browser)
    assert start < EVENT_T0 < end and end - start < 2
    wait_for(browser, lambda d: d.find_element(By.ID, "diagnosis-picture").get_attribute("naturalWidth") != "0",
             what="the difference image")  # fmt: skip
    screenshot(browser, "explorer-event-window", showing=browser.find_element(By.ID, "window"))
    assert_clean(browser, browser_service)


def test_the_shared_url_opens_straight_into_its_window(browser, browser_service):
    browser.get(browser_service + SHARED)
    wait_for_playing_movie(browser)
    assert wait_for_verdict(browser) == "moving_object"
    assert browser.find_element(By.ID, "window-start").get_attribute("value") == "1334"
    assert "1334.000–1335.000" in status(browser, "window-heading")
    assert window_in_url(browser) == (1334.0, 1335.0)
    screenshot(browser, "explorer-shared-url", showing=browser.find_element(By.ID, "window"))

    # The frame slider shows the chosen frame: the movie stops there.
    slider = browser.find_element(By.ID, "frame-slider")
    wait_for(browser, lambda d: slider.is_enabled(), what="the frame slider")
    frames = int(slider.get_attribute("max")) + 1
    assert 40 <= frames <= 60  # one day of 30-minute frames
    browser.execute_script(
        "arguments[0].value = 10; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", slider
    )
    video = wait_for(browser, lambda d: (v := d.execute_script(VIDEO_JS))["paused"] and v, what="the movie to stop")
    assert int(video["time"] * 20) == 10
    assert status(browser, "frame-label").startswith(f"11 of {frames}")
    assert_clean(browser, browser_service)


def test_a_box_selection_on_the_plot_opens_that_window(browser, browser_service):
    browser.get(f"{browser_service}/explore/{TIC}")
    wait_for_light_curve(browser)
    plot = browser.find_element(By.ID, "lightcurve")
    width, height = plot.size["width"], plot.size["height"]
    # Drag across the middle of the plot area (the box-select tool is the active drag).
    ActionChains(browser).move_to_element_with_offset(plot, -width // 10, 0).click_and_hold().move_by_offset(
        width // 20, height // 10
    ).release().perform()
    wait_for(browser, lambda d: "start=" in d.current_url, what="the selected window in the URL")
    start, end = window_in_url(browser)
    assert 1325 < start < end < 1354 and 0.3 < end - start < 3
    wait_for(browser, lambda d: d.find_element(By.ID, "window").is_displayed(), what="the window's panel")
    wait_for(browser, lambda d: d.execute_script(VIDEO_JS) or status(d, "movie-status"), what="the movie or why not")
    assert_clean(browser, browser_service)


def test_a_star_without_tces_shows_its_ffi_light_curve(browser, browser_service):
    browser.get(f"{browser_service}/explore/206462606")
    wait_for_light_curve(browser)
    assert "No TESS Data Validation results" in status(browser, "tces-status")
    assert "good frames of sector 1" in status(browser, "lightcurve-status")
    wait_for(browser, lambda d: "event" in status(d, "events-status").lower(), what="the event search")
    assert not browser.find_element(By.ID, "view-phase").is_enabled()
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#download-list a")}
    assert "format=fits" in links["FFI light curve (FITS)"] and "sector=1" in links["FFI light curve (FITS)"]
    assert "DV light curve (FITS)" not in links
    screenshot(browser, "explorer-no-tce")
    # The one error Chromium logs is the TCE list's 404 ("no DV results"), which the page answers with the FFI.
    (error,) = console_errors(browser)
    assert "/tic/206462606/tces" in error and "404" in error
    assert foreign_requests(browser, browser_service) == []


def test_cold_work_shows_its_progress_and_errors_show_the_problem(browser, browser_service, mast):
    # A cutout the service has not fetched, sent slowly: the page says what the job is doing meanwhile.
    mast.set_fault(ASTROCUT, throttle_bytes_per_s=4_000_000)
    browser.get(f"{browser_service}/explore?ra=63.37389&dec=-69.226789&sector=2")
    wait_for(browser, lambda d: "received from MAST" in status(d, "lightcurve-status"), what="the job's progress")
    screenshot(browser, "explorer-cold-progress")
    mast.reset()
    wait_for_light_curve(browser)

    # A window with no frame of the sector: the page shows the service's problem detail, not a blank.
    browser.get(f"{browser_service}/explore/{TIC}?start=1300&end=1301")
    wait_for(browser, lambda d: "error" in d.find_element(By.ID, "movie-status").get_attribute("class"),
             what="the movie's problem")  # fmt: skip
    assert "sector" in status(browser, "movie-status")
    # A window longer than the diagnosis looks at: said so, and the movie still plays.
    browser.get(f"{browser_service}/explore/{TIC}?start=1330&end=1334")
    wait_for(browser, lambda d: "at most 2" in status(d, "diagnosis-status"), what="the window-length note")
    assert_clean(browser, browser_service)


def test_on_a_narrow_screen_by_keyboard(browser, browser_service):
    browser.set_window_size(400, 900)
    browser.get(f"{browser_service}/explore/{TIC}")
    wait_for_light_curve(browser)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    # Tab to the event and press Enter: the window opens without a mouse.
    event = wait_for_elements(browser, "#event-list button.event")[0]
    for _ in range(60):
        if browser.switch_to.active_element == event:
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    else:
        pytest.fail("the event cannot be reached with the Tab key")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert wait_for_verdict(browser) == "moving_object"
    wait_for_playing_movie(browser)
    screenshot(browser, "explorer-narrow", showing=browser.find_element(By.ID, "window"))
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert_clean(browser, browser_service)
