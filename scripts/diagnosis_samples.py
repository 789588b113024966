"""Write sample diagnosis pictures from synthetic cutouts, to look at: ``python -m scripts.diagnosis_samples [dir]``.

Scenes: an on-target dip, a neighbour 3 px away dimming, a moving source crossing the target with one matched known
object, and the pixel grids (k = 5 and 11). Prints how long each picture took to render.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from service.rendering.diagnosis_pictures import (
    DiagnosisPicture,
    Mark,
    PixelCurves,
    render_diagnosis_png,
    render_pixels_png,
)

SIZE, N_FRAMES = 50, 200
TARGET_XY = (25.3, 24.6)
NEIGHBOUR_XY = (28.3, 24.6)  # 3 px to the right of the target
WINDOW = (1335.0, 1335.5)
TIMES = 1334.0 + np.arange(N_FRAMES) / 48.0  # 30-minute frames, ~4 days
FLAGGED = np.zeros(N_FRAMES, dtype=bool)
FLAGGED[[60, 120, 121, 122]] = True  # a momentum dump and a short stretch of scattered light


def star(xy, flux, sigma=1.1):
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return flux * np.exp(-((xx - xy[0]) ** 2 + (yy - xy[1]) ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)


def base_cube(seed):
    rng = np.random.default_rng(seed)
    sky = star(TARGET_XY, 40000) + star(NEIGHBOUR_XY, 15000) + star((10.2, 38.7), 60000) + star((40.5, 8.1), 25000)
    cube = rng.normal(0.0, 4.0, (N_FRAMES, SIZE, SIZE)) + 30.0 + sky
    cube[FLAGGED] += 80.0  # flagged frames are brighter: scattered light
    cube[:, 3, 44] = np.nan  # a dead pixel
    return cube


def in_window():
    return (TIMES >= WINDOW[0]) & (TIMES <= WINDOW[1])


def aperture():
    return star(TARGET_XY, 1.0) > 0.25 * star(TARGET_XY, 1.0).max()


def centroid(image):
    """Return the flux-weighted centroid of the positive pixels in a 5x5 box around the brightest one."""
    y0, x0 = np.unravel_index(np.nanargmax(image), image.shape)
    box = np.nan_to_num(image[y0 - 2 : y0 + 3, x0 - 2 : x0 + 3]).clip(min=0)
    yy, xx = np.mgrid[y0 - 2 : y0 + 3, x0 - 2 : x0 + 3]
    return float((box * xx).sum() / box.sum()), float((box * yy).sum() / box.sum())


def picture(cube, title, verdict, track=None, known=()):
    event = in_window() & ~FLAGGED
    near = (np.abs(TIMES - 1335.25) < 1.0) & ~in_window() & ~FLAGGED
    reference, in_event = cube[near].mean(axis=0), cube[event].mean(axis=0)
    difference = reference - in_event
    return DiagnosisPicture(
        reference=reference,
        in_event=in_event,
        difference=difference,
        target_xy=TARGET_XY,
        aperture=aperture(),
        centroid_xy=centroid(difference),
        track=track,
        known=known,
        title=title,
        verdict=verdict,
    )


def on_target_dip():
    cube = base_cube(1)
    cube[in_window()] -= 0.03 * star(TARGET_XY, 40000)
    return picture(
        cube,
        "TIC 214568914 · sector 1 · BTJD 1335.00–1335.50",
        "on_target (0.95): the difference image's centroid is on the target (0.1 px, 0.4 σ); the dip is the target's.",
    )


def neighbour_dimming():
    cube = base_cube(2)
    cube[in_window()] -= 0.2 * star(NEIGHBOUR_XY, 15000)
    return picture(
        cube,
        "TIC 214568914 · sector 1 · BTJD 1335.00–1335.50",
        "off_target (0.91): the difference image's centroid is 3.0 px (63″) from the target, 14 σ; the flux came "
        "from a neighbour, whose light leaks into the aperture.",
    )


def mover_position(t):
    """A source moving from upper left to lower right, passing just above the target mid-window."""
    fraction = (t - 1334.75) / 1.0
    return 12.0 + 26.0 * fraction, 36.0 - 22.0 * fraction


def moving_source():
    cube = base_cube(3)
    for i, t in enumerate(TIMES):
        cube[i] += star(mover_position(t), 6000, sigma=1.0)
    track = tuple((float(t), *mover_position(t)) for t in TIMES[in_window()][::3])
    middle = mover_position(1335.25)
    known = (
        Mark("(90917) 2002 TV318", (middle[0] + 0.4, middle[1] - 0.3), matched=True),
        Mark("(1234) Example", (8.0, 12.0)),
        Mark("2019 AB12", (-6.0, 30.0)),
    )
    return picture(
        cube,
        "TIC 214568914 · sector 1 · BTJD 1335.00–1335.50",
        "moving_object (0.93): A source moving 0.47 px/h crossed the aperture during the window; its track matches "
        "(90917) 2002 TV318 (V = 19.2, 0.5 px off). The target itself did not change.",
        track=track,
        known=known,
    )


def pixel_curves(cube, k):
    radius = k // 2
    cx, cy = round(TARGET_XY[0]), round(TARGET_XY[1])
    block = cube[:, cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
    return PixelCurves(
        time_btjd=TIMES,
        flux=block,
        origin_xy=(cx - radius, cy - radius),
        aperture=aperture()[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1],
        target_xy=TARGET_XY,
        window=WINDOW,
        flagged=FLAGGED,
        title=f"TIC 214568914 · sector 1 · pixels around the target ({k}×{k})",
    )


def timed(render, argument):
    render(argument)  # the first call pays for font loading
    start = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        payload, _media = render(argument)
    return payload, (time.perf_counter() - start) / repeats * 1000


def main(out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    neighbour = base_cube(2)
    neighbour[in_window()] -= 0.2 * star(NEIGHBOUR_XY, 15000)
    jobs = {
        "a_on_target.png": (render_diagnosis_png, on_target_dip()),
        "b_neighbour.png": (render_diagnosis_png, neighbour_dimming()),
        "c_moving.png": (render_diagnosis_png, moving_source()),
        "pixels_k5.png": (render_pixels_png, pixel_curves(neighbour, 5)),
        "pixels_k11.png": (render_pixels_png, pixel_curves(neighbour, 11)),
    }
    for name, (render, argument) in jobs.items():
        payload, ms = timed(render, argument)
        (out_dir / name).write_bytes(payload)
        print(f"{name}: {len(payload) / 1024:.0f} KiB, {ms:.1f} ms")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pictures"))
