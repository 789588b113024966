"""A whole sector as a movie: the same frames as GIF and as MP4, side by side, against the MP4's 2.5 s target.

The cutout is the MAST emulator's TESScut cutout of the tutorial's target (TIC 214568914, sector 1, 50×50 px at a
30-minute cadence: 1,282 frames), built in-process exactly as the service caches it. The window runs from the
sector's first frame to its last, and each format is made with the service's maker (``make_movie``, default style:
~400 px a side), reading from an open file as the render pool does. The formats take turns (GIF, MP4, GIF, ...),
so a machine busy with something else slows both alike; each time is the median of REPEATS runs after one warm-up.
CPU seconds (this process and ffmpeg's) are shown too: on a shared machine they vary less than the wall clock.

Target: the MP4 of the whole sector in <= 2.5 s (the GIF took 2.6 s, the MP4 5.8 s before this benchmark).

Run: .venv/bin/python benchmarks/bench_movie_formats.py
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_diagnosis_speed import Case, fetch_cutout  # noqa: E402
from service.services.cutout_products import RenderLimits  # noqa: E402
from service.services.cutouts import CutoutPlan  # noqa: E402
from service.services.movies import MP4_AVAILABLE, MovieParams, MovieStyle, make_movie  # noqa: E402
from service.services.targets import Target  # noqa: E402
from tests.fake_mast import FakeMast  # noqa: E402

REPEATS = 5
SIZE_PX = 50
TARGET_MP4_S = 2.5
CASE = Case("TIC 214568914, s1, 30-min", Target(340.8004, -36.3439, 214568914), 1, TARGET_MP4_S * 1000)
LIMITS = RenderLimits(5000, 1 << 30)  # the whole sector fits whatever the service's settings say


def cpu_s() -> float:
    """Return the CPU seconds used so far by this process and its finished children (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make(path: Path, plan: CutoutPlan, params: MovieParams) -> tuple[float, float, int]:
    """Make the movie once; return (wall seconds, CPU seconds, bytes)."""
    with open(path, "rb") as source:
        cpu, start = cpu_s(), time.perf_counter()
        made = make_movie(source, plan, params, LIMITS)
        return time.perf_counter() - start, cpu_s() - cpu, len(made.payload)


def main() -> None:
    if not MP4_AVAILABLE:
        sys.exit("MP4 needs imageio-ffmpeg, which is not installed here.")
    with FakeMast(host="127.0.0.1", port=0) as mast, tempfile.TemporaryDirectory() as directory:
        path = fetch_cutout(mast, CASE, Path(directory))
        with fits.open(path) as hdus:
            time_btjd = np.asarray(hdus["PIXELS"].data["TIME"], dtype=float)
        first, last = float(np.nanmin(time_btjd)), float(np.nanmax(time_btjd))
        print(f"{CASE.label}: {SIZE_PX}×{SIZE_PX} px, {len(time_btjd)} frames, BTJD {first:.3f}–{last:.3f}")
        plan = CutoutPlan(CASE.target, SIZE_PX, CASE.sector, (), sector_pinned=True)
        formats = {fmt: MovieParams(first, last, MovieStyle(), fmt) for fmt in ("gif", "mp4")}
        for params in formats.values():
            make(path, plan, params)  # warm-up: lazy imports, the file in the page cache, ffmpeg's binary
        runs: dict[str, list[tuple[float, float, int]]] = {fmt: [] for fmt in formats}
        for _ in range(REPEATS):
            for fmt, params in formats.items():
                runs[fmt].append(make(path, plan, params))

    print(f"\n{'format':<7} {'median s':>9} {'runs s':>28} {'CPU s':>7} {'MB':>7}")
    medians = {}
    for fmt, samples in runs.items():
        walls = [wall for wall, _, _ in samples]
        medians[fmt] = statistics.median(walls)
        cpu = statistics.median(c for _, c, _ in samples)
        size_mb = samples[-1][2] / 1e6
        print(f"{fmt:<7} {medians[fmt]:>9.2f} {' '.join(f'{w:.2f}' for w in walls):>28} {cpu:>7.2f} {size_mb:>7.1f}")
    sizes = {fmt: samples[-1][2] for fmt, samples in runs.items()}
    print(
        f"\nMP4 ÷ GIF: time {medians['mp4'] / medians['gif']:.2f}, bytes {sizes['mp4'] / sizes['gif']:.2f}\n"
        f"MP4 of the whole sector: {medians['mp4']:.2f} s against <= {TARGET_MP4_S} s: "
        + ("met" if medians["mp4"] <= TARGET_MP4_S else "MISSED")
    )


if __name__ == "__main__":
    main()
