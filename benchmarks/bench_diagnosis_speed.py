"""Diagnosis products on real emulator cutouts: how long one takes, and how much memory, against the targets.

Two cutouts, each exactly as the MAST emulator's TESScut sends it (and the service caches it), built in-process:
(a) TIC 214568914, sector 1, 50×50 px at a 30-minute cadence; (b) WASP-126 (TIC 25155310), sector 33 (camera 4,
CCD 3), 50×50 px at a 10-minute cadence. On each, a one-day window in the middle of the sector's first orbit (the
sector's very middle is its downlink gap) is diagnosed with the service's maker (``make_diagnosis``, JSON), reading
from an open file as the render pool does; on (a) also its picture (``make_picture``) and the pixels' curves
(``make_pixels``, radius 2).

Times are the median of REPEATS runs on the warm file (page cache), after one warm-up run. Peak memory is the peak
of Python and numpy allocations during one run (tracemalloc; pages of the file itself are not counted), shown
against the cutout file's size.

Targets: the diagnosis of a one-day window <= 200 ms at 30 min, <= 500 ms at 10 min.

Run: .venv/bin/python benchmarks/bench_diagnosis_speed.py
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.services.cutout_products import RenderLimits  # noqa: E402
from service.services.cutouts import CutoutPlan  # noqa: E402
from service.services.diagnoses import DiagnosisParams, PixelsParams, make_diagnosis, make_picture, make_pixels  # noqa: E402
from service.services.surroundings import KnownObjects, Surroundings  # noqa: E402
from service.services.targets import Target  # noqa: E402
from tests.fake_mast import FakeMast  # noqa: E402

REPEATS = 10
SIZE_PX = 50
WINDOW_DAYS = 1.0
LIMITS = RenderLimits(2000, 256 << 20)


@dataclass(frozen=True)
class Case:
    label: str
    target: Target
    sector: int
    target_ms: float


CASES = (
    Case("(a) TIC 214568914, s1, 30-min", Target(340.8004, -36.3439, 214568914), 1, 200.0),
    Case("(b) WASP-126, s33, 10-min", Target(63.37389, -69.226789, 25155310), 33, 500.0),
)


def fetch_cutout(mast: FakeMast, case: Case, directory: Path) -> Path:
    """Return the path of the emulator's cutout for ``case`` (the first file of TESScut's zip)."""
    target = case.target
    params = {"ra": target.ra_deg, "dec": target.dec_deg, "x": SIZE_PX, "y": SIZE_PX, "units": "px"}
    response = httpx.get(f"{mast.url}/tesscut/api/v0.1/astrocut", params={**params, "sector": case.sector}, timeout=300)
    response.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert len(names) == 1, names
        path = directory / f"s{case.sector:04d}.fits"
        path.write_bytes(archive.read(names[0]))
    return path


def describe(path: Path) -> tuple[int, float, float]:
    """Return the number of frames, the middle of the sector's first orbit (BTJD) and the median cadence (minutes).

    The sector's very middle is its downlink gap (no frames), so the window is centred in the first orbit's middle.
    """
    with fits.open(path) as hdus:
        time_btjd = np.asarray(hdus[1].data["TIME"], dtype=float)
    finite = time_btjd[np.isfinite(time_btjd)]
    gap = int(np.argmax(np.diff(finite))) + 1  # the downlink gap splits the sector into two orbits
    mid = float((finite[0] + finite[gap - 1]) / 2)
    return len(time_btjd), mid, float(np.median(np.diff(finite)) * 24 * 60)


def median_ms(work: Callable[[], Any]) -> float:
    work()  # warm: lazy imports, the file in the page cache
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def peak_mib(work: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def opened(path: Path, make: Callable[..., Any], plan: CutoutPlan, params: object) -> Callable[[], Any]:
    """Return a call of ``make`` on a freshly opened file handle of the cutout, as the render pool calls it."""

    def work() -> Any:
        with open(path, "rb") as source:
            return make(source, plan, params, LIMITS)

    return work


def main() -> None:
    rows = []
    with FakeMast(host="127.0.0.1", port=0) as mast, tempfile.TemporaryDirectory() as directory:
        for case in CASES:
            path = fetch_cutout(mast, case, Path(directory))
            frames, mid, cadence_min = describe(path)
            size_mib = path.stat().st_size / 2**20
            start, end = mid - WINDOW_DAYS / 2, mid + WINDOW_DAYS / 2
            print(
                f"{case.label}: {SIZE_PX}×{SIZE_PX} px × {frames} frames at {cadence_min:.1f} min, "
                f"{size_mib:.1f} MiB of FITS; window BTJD {start:.3f}–{end:.3f}"
            )
            plan = CutoutPlan(case.target, SIZE_PX, case.sector, (), sector_pinned=True)
            params = DiagnosisParams(start, end, Surroundings((), KnownObjects("ok", mid, ())))
            products = [("diagnosis JSON", make_diagnosis, params, case.target_ms)]
            if case.sector == 1:
                products += [
                    ("picture PNG", make_picture, params, None),
                    ("pixels PNG (r=2)", make_pixels, PixelsParams(start, end, 2), None),
                ]
            for name, make, product_params, target_ms in products:
                work = opened(path, make, plan, product_params)
                made = work()
                rows.append((case.label, name, median_ms(work), peak_mib(work), size_mib, target_ms, len(made.payload)))

    print(
        f"\n{'cutout':<32} {'product':<18} {'median ms':>10} {'target ms':>10} {'ratio':>7} "
        f"{'peak MiB':>9} {'÷ file':>7} {'bytes':>9}"
    )
    for label, name, ms, peak, size_mib, target_ms, size in rows:
        target_text = f"{target_ms:.0f}" if target_ms is not None else "—"
        ratio = f"{ms / target_ms:.2f}" if target_ms is not None else "—"
        print(
            f"{label:<32} {name:<18} {ms:>10.1f} {target_text:>10} {ratio:>7} "
            f"{peak:>9.1f} {peak / size_mib:>7.3f} {size:>9,}"
        )
    for label, name, ms, _, _, target_ms, _ in rows:
        if target_ms is not None:
            verdict = "met" if ms <= target_ms else "MISSED"
            print(f"{label}, {name}: {ms:.1f} ms against <= {target_ms:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
