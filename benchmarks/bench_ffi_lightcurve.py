"""FFI light curves from a cached cutout: our chunked photometry against reading the whole cube, side by side.

One run, the same file: TIC 214568914's sector-1 cutout (50×50 px, 1282 frames, 61 MiB of FITS) from the MAST
emulator, exactly as TESScut sends it and the service caches it, read from an open file as the render pool reads it.

(a) The whole cube, the obvious way: astropy reads FLUX and FLUX_ERR whole (``hdus["PIXELS"].data[...]``, memmap),
    then the same photometry (science.photometry) runs on all frames at once.
(b) lightkurve, when installed: ``TessTargetPixelFile``, ``create_threshold_mask(threshold=3)``,
    ``to_lightcurve(aperture_mask=...)`` with the background subtracted by ``estimate_background``: what a user writes.
(c) Ours: the product's maker (``make_table``, JSON), which reads the file in chunks with pread; and the CSV, FITS,
    events and PNG makers, for reference.

Times are the median of REPEATS runs on the warm file (page cache). Peak RSS growth is measured in a fresh child
process per way (VmHWM before and after one run, imports done first). Through the service (its own uvicorn process):
each product's first answer from the cached cutout (one sample each: a cache miss happens once), then warm hits.

Targets: (c) JSON <= 150 ms; its peak RSS growth far below the cutout's size.

Run: .venv/bin/python benchmarks/bench_ffi_lightcurve.py
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import p, service_process, warm_latencies_ms  # noqa: E402
from tests.fake_mast import FakeMast  # noqa: E402

RA_DEG, DEC_DEG = 340.8004, -36.3439
TIC_ID = 214568914
REPEATS = 15
TARGET_MS = 150.0

# Each way as code a child process runs once (for its peak RSS) or the parent times; ``path`` is the cutout.
SETUP = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import numpy as np
from astropy.io import fits
from service.services.cutout_products import RenderLimits
from service.services.cutouts import CutoutPlan
from service.services.events import EventParams
from service.services.ffi_lightcurves import FfiTableParams, make_events, make_plot, make_table
from service.services.lightcurves import LightCurvePlot, PlotSize, PlotView
from service.services.targets import Target
from service.science import photometry
from service.tpf import target_pixel

PLAN = CutoutPlan(Target({RA_DEG}, {DEC_DEG}, {TIC_ID}), 50, 1, (), sector_pinned=True)
LIMITS = RenderLimits(2000, 256 << 20)


def ours(path, fmt="json"):
    with open(path, "rb") as handle:
        return make_table(handle, PLAN, FfiTableParams(fmt, False), LIMITS).payload


def ours_events(path):
    with open(path, "rb") as handle:
        return make_events(handle, PLAN, EventParams(7.1, 10, None), LIMITS).payload


def ours_png(path):
    with open(path, "rb") as handle:
        return make_plot(handle, PLAN, LightCurvePlot(PlotView("time"), PlotSize()), LIMITS)[0]


def whole_cube(path):
    with fits.open(path, memmap=True) as hdus:
        pixels = hdus["PIXELS"].data
        flux, flux_err = np.asarray(pixels["FLUX"]), np.asarray(pixels["FLUX_ERR"])
        centre = target_pixel(hdus, {RA_DEG}, {DEC_DEG})
        reference = photometry.reference_image(flux)
        aperture = photometry.threshold_aperture(reference, centre)
        background = photometry.background_pixels(reference, aperture.mask, centre)
        return photometry.measure_frames(flux, flux_err, aperture.mask, background).flux


def lightkurve_way(path):
    import warnings
    warnings.simplefilter("ignore")
    import lightkurve as lk
    tpf = lk.TessTargetPixelFile(path, quality_bitmask="none")
    mask = tpf.create_threshold_mask(threshold=3, reference_pixel="center")
    lc = tpf.to_lightcurve(aperture_mask=mask)
    return lc.flux.value - tpf.estimate_background(aperture_mask="background").flux.value * mask.sum()
"""

PROBE = """
def peak_mib():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
before = peak_mib()
{call}
print(peak_mib() - before)
"""


def fetch_cutout(mast: FakeMast, directory: Path) -> Path:
    params = {"ra": RA_DEG, "dec": DEC_DEG, "x": 50, "y": 50, "units": "px", "sector": 1}
    response = httpx.get(f"{mast.url}/tesscut/api/v0.1/astrocut", params=params, timeout=120)
    response.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        path = directory / "cutout.fits"
        path.write_bytes(archive.read(archive.namelist()[0]))
    return path


def median_ms(work: Callable[[], Any], repeats: int = REPEATS) -> float:
    work()  # warm: imports, the file in the page cache
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def peak_growth_mib(call: str, path: Path) -> float | None:
    """Return the peak RSS growth of one ``call`` in a fresh child process (its imports done before), or None."""
    code = SETUP + textwrap.dedent(PROBE.format(call=call.format(path=repr(str(path)))))
    warm_imports = "import lightkurve\n" if "lightkurve" in call else ""
    done = subprocess.run([sys.executable, "-c", warm_imports + code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(f"  ({call} failed in the child: {done.stderr.strip().splitlines()[-1:]})")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def have_lightkurve() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its import warns about an optional extra (oktopus)
        try:
            import lightkurve  # noqa: F401
        except ImportError:
            return False
    return True


def through_the_service(mast: FakeMast) -> None:
    print("\nThrough the service (own uvicorn process), sector-1 cutout cached first:")
    with service_process(mast) as service, httpx.Client(base_url=service.base_url, timeout=120) as client:
        assert client.get(f"/tic/{TIC_ID}/cutout", params={"sector": 1}).status_code == 200
        base = f"/tic/{TIC_ID}/ffi-lightcurve"
        for label, path in [
            ("light curve JSON", f"{base}?sector=1&format=json"),
            ("light curve CSV", f"{base}?sector=1&format=csv"),
            ("light curve FITS", f"{base}?sector=1&format=fits"),
            ("events", f"{base}/events?sector=1"),
            ("plot PNG", f"{base}.png?sector=1"),
        ]:
            start = time.perf_counter()
            response = client.get(path)
            cold_ms = (time.perf_counter() - start) * 1000
            assert response.status_code == 200 and response.headers["x-cache"] == "MISS", response.text[:300]
            warm = warm_latencies_ms(client, path, 200)
            print(
                f"  {label:<18} first answer {cold_ms:6.1f} ms ({len(response.content):,} B)   "
                f"warm p50 {p(warm, 50):.2f} ms, p99 {p(warm, 99):.2f} ms"
            )


def main() -> None:
    namespace: dict[str, Any] = {}
    exec(SETUP, namespace)  # noqa: S102 - our own code, shared with the child processes
    with FakeMast(host="127.0.0.1", port=0) as mast, tempfile.TemporaryDirectory() as directory:
        path = fetch_cutout(mast, Path(directory))
        size_mib = path.stat().st_size / 2**20
        print(f"Cutout: TIC {TIC_ID}, sector 1, 50×50 px × 1282 frames, {size_mib:.1f} MiB of FITS\n")

        ways: list[tuple[str, str, Callable[[], Any]]] = [
            ("(a) whole cube (astropy) + same photometry", "whole_cube({path})", lambda: namespace["whole_cube"](path)),
        ]
        if have_lightkurve():
            ways.append(("(b) lightkurve threshold mask + to_lightcurve", "lightkurve_way({path})",
                         lambda: namespace["lightkurve_way"](path)))  # fmt: skip
        ways.append(("(c) ours, JSON (chunked pread)", "ours({path})", lambda: namespace["ours"](path)))
        results = {}
        print(f"{'':<48} {'median ms':>10} {'peak RSS +MiB':>14} {'÷ cutout size':>14}")
        for label, call, work in ways:
            ms, grown = median_ms(work), peak_growth_mib(call, path)
            results[label] = (ms, grown)
            ratio = f"{grown / size_mib:.3f}" if grown is not None else "—"
            grown_text = f"{grown:.1f}" if grown is not None else "—"
            print(f"{label:<48} {ms:>10.1f} {grown_text:>14} {ratio:>14}")
        if not have_lightkurve():
            print("(b) lightkurve is not installed: pip install lightkurve to compare with it")
        for label, work in [
            ("    ours, CSV", lambda: namespace["ours"](path, "csv")),
            ("    ours, FITS", lambda: namespace["ours"](path, "fits")),
            ("    ours, events (detrend + search)", lambda: namespace["ours_events"](path)),
            ("    ours, PNG (detrended, 1000×500)", lambda: namespace["ours_png"](path)),
        ]:
            print(f"{label:<48} {median_ms(work):>10.1f}")

        ours_ms, ours_grown = results["(c) ours, JSON (chunked pread)"]
        whole_ms, whole_grown = results["(a) whole cube (astropy) + same photometry"]
        verdict = "met" if ours_ms <= TARGET_MS else "MISSED"
        lightkurve_ms = results.get("(b) lightkurve threshold mask + to_lightcurve", (None, None))[0]
        than_lightkurve = f", {lightkurve_ms / ours_ms:.1f}x faster than lightkurve" if lightkurve_ms else ""
        print(
            f"\nOurs: {ours_ms:.1f} ms (target <= {TARGET_MS:.0f} ms: {verdict}), {whole_ms / ours_ms:.2f}x faster "
            f"than reading the whole cube{than_lightkurve}"
        )
        if ours_grown is not None and whole_grown is not None:
            print(
                f"Peak RSS: ours +{ours_grown:.1f} MiB = {ours_grown / size_mib:.2f} of the cutout; the whole cube "
                f"+{whole_grown:.1f} MiB = {whole_grown / size_mib:.2f}"
            )
        through_the_service(mast)


if __name__ == "__main__":
    main()
