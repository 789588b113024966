"""The ExoMAST phase-plot page in a real browser: all cadences against thinned ones, WebGL against canvas.

Whether to thin is the question: WASP-18's s0001-s0003 DV table (51,594 cadences, served by the MAST emulator) and
a synthetic 150,000-cadence series, each drawn (a) in full with WebGL, as the service serves it, (b) every tenth
cadence with WebGL, (c) in full on a 2D canvas (WASP-18 only: 150,000 points on a canvas take minutes a frame).
For each: the page's bytes, the Python render (median of 3), the browser's time from navigation to Bokeh's
"document idle" (the first full draw), and the time per frame while panning (10 programmatic range changes, one
frame each), medians of 3 loads in headless chromium.

Absolute browser times depend on the GPU: headless chromium here draws WebGL in software (SwiftShader), so read the
ratios. Each pan frame draws every point, as a mouse drag's would: BokehJS's level-of-detail decimation is off
with WebGL. Needs Debian's ``chromium`` and ``chromium-driver``.

Run: .venv/bin/python benchmarks/bench_phaseplot.py
"""

from __future__ import annotations

import functools
import http.server
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from bokeh.util.paths import static_path
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.api.assets import BOKEH_ROOT, bokeh_resources  # noqa: E402
from service.rendering.phaseplot import PhaseSeries, render_phaseplot_html  # noqa: E402
from service.upstream.exomast import parse_dv_table  # noqa: E402
from tests.fake_mast import FakeMast  # noqa: E402

TIC_ID, SECTORS, TCE = 100100827, "s0001-s0003", "TCE_1"
SYNTHETIC_CADENCES = 150_000
THIN_EVERY = 10
LOADS = 3
PAN_FRAMES = 10

# Resolves once Bokeh says the document is idle (drawn); returns performance.now() at that moment.
WAIT_IDLE = """const done = arguments[arguments.length - 1];
(function poll() { const d = window.Bokeh && Bokeh.documents[0];
  if (d && d.is_idle) done(performance.now()); else setTimeout(poll, 5); })();"""
# Moves the x range PAN_FRAMES times, one animation frame each; returns the mean time per frame.
PAN = """const [frames, done] = arguments; const figure = Bokeh.documents[0].roots()[0];
let i = 0; const t0 = performance.now();
function step() { const start = -0.4 + 0.01 * i; figure.x_range.setv({start, end: start + 0.5}); i++;
  requestAnimationFrame(() => i < frames ? step() : done((performance.now() - t0) / frames)); }
step();"""


def wasp18_series(mast: FakeMast) -> PhaseSeries:
    params = {"tce": TCE, "sector": SECTORS}
    response = httpx.get(f"{mast.exomast_url}dvdata/tess/{TIC_ID}/table/", params=params, timeout=120)
    response.raise_for_status()
    columns = parse_dv_table(response.json()).columns
    return PhaseSeries(columns["PHASE"], columns["LC_DETREND"], columns["MODEL_INIT"])


def synthetic_series(n: int) -> PhaseSeries:
    rng = np.random.default_rng(0)
    phase = rng.uniform(-0.47, 0.47, n)
    model = np.where(np.abs(phase) < 0.045, -0.0096, 0.0)
    return PhaseSeries(phase, model + rng.normal(0.0, 3e-4, n), model)


def thinned(series: PhaseSeries) -> PhaseSeries:
    return PhaseSeries(*(np.asarray(column)[::THIN_EVERY] for column in vars(series).values()))


def render_ms(series: PhaseSeries) -> tuple[str, float]:
    """Return the page and the median time to render it."""
    times, page = [], ""
    for _ in range(3):
        t0 = time.perf_counter()
        page = render_phaseplot_html(series, label="bench", resources=bokeh_resources())
        times.append((time.perf_counter() - t0) * 1000)
    return page, statistics.median(times)


def serve(directory: Path) -> http.server.ThreadingHTTPServer:
    """Serve ``directory`` on loopback: the pages, and BokehJS at the service's own paths."""
    (directory / BOKEH_ROOT.strip("/")).mkdir(parents=True)
    (directory / BOKEH_ROOT.strip("/") / "static").symlink_to(static_path())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1000,700", "--use-angle=swiftshader"):
        options.add_argument(argument)
    options.add_argument("--enable-unsafe-swiftshader")
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_script_timeout(300)
    return driver


def measure(driver: webdriver.Chrome, url: str) -> tuple[float, float]:
    """Return the medians of (navigation to idle, ms per pan frame) over LOADS fresh loads."""
    idle, pan = [], []
    for _ in range(LOADS):
        driver.get("about:blank")
        driver.get(url)
        idle.append(driver.execute_async_script(WAIT_IDLE))
        pan.append(driver.execute_async_script(PAN, PAN_FRAMES))
    return statistics.median(idle), statistics.median(pan)


def main() -> None:
    with FakeMast(host="127.0.0.1", port=0) as mast:
        wasp18 = wasp18_series(mast)
    cases: list[tuple[str, PhaseSeries]] = [
        (f"WASP-18 {SECTORS}", wasp18),
        (f"synthetic {SYNTHETIC_CADENCES:,}", synthetic_series(SYNTHETIC_CADENCES)),
    ]
    canvas_max_points = 60_000
    variants: list[tuple[str, Callable[[PhaseSeries], PhaseSeries], bool]] = [
        ("(a) all, WebGL", lambda s: s, False),
        (f"(b) 1/{THIN_EVERY}, WebGL", thinned, False),
        ("(c) all, canvas", lambda s: s, True),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        server = serve(Path(tmp))
        driver = browser()
        try:
            for name, series in cases:
                print(f"\n{name}: {np.isfinite(np.asarray(series.flux)).sum():,} cadences with flux")
                results = {}
                for label, shape, canvas in variants:
                    if canvas and np.asarray(series.flux).size > canvas_max_points:
                        continue
                    page, python_ms = render_ms(shape(series))
                    if canvas:
                        page = page.replace('"output_backend":"webgl"', '"output_backend":"canvas"')
                    path = Path(tmp) / f"{abs(hash((name, label)))}.html"
                    path.write_text(page)
                    idle_ms, frame_ms = measure(driver, f"http://127.0.0.1:{server.server_port}/{path.name}")
                    results[label] = (idle_ms, frame_ms)
                    print(
                        f"  {label:<18} page {len(page) / 1e3:7.0f} kB  render {python_ms:5.0f} ms  "
                        f"to idle {idle_ms:6.0f} ms  pan {frame_ms:6.1f} ms/frame"
                    )
                (a_idle, a_pan), (b_idle, b_pan), *canvas_run = results.values()
                print(f"  all/thinned: to idle x{a_idle / b_idle:.2f}, pan x{a_pan / b_pan:.2f}")
                for c_idle, c_pan in canvas_run:
                    print(f"  canvas/WebGL: to idle x{c_idle / a_idle:.2f}, pan x{c_pan / a_pan:.2f}")
        finally:
            driver.quit()
            server.shutdown()


if __name__ == "__main__":
    main()
