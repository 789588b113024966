"""Colormaps as 256-entry palettes: a few data colours, and reserved entries for "no data" and annotations.

Pure functions: a colormap name in, palette bytes out. The palette is what makes palette-mode ("P") frames cheap:
a frame is one byte a pixel, drawn by indexing, with no per-frame colour conversion.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import numpy.typing as npt

# Good colormaps for sky images (perceptually ordered, or the classic greys/heat), and the tutorial's YlGnBu_r.
ALLOWED_CMAPS: frozenset[str] = frozenset(
    {
        "YlGnBu_r",
        "viridis",
        "magma",
        "inferno",
        "plasma",
        "cividis",
        "gray",
        "Greys_r",
        "hot",
        "coolwarm",
        "turbo",
        "bone",
    }
)

# Palette layout: data levels 0..N_LEVELS-1, then the reserved entries below; the rest are black.
N_LEVELS = 250
BAD_INDEX = 250
WHITE_INDEX = 251
BLACK_INDEX = 252
RED_INDEX = 253

_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_RED = (230, 25, 25)
# "No data" colours, in order of preference: the first one far enough from every colour of the map wins.
_BAD_CANDIDATES = ((128, 128, 128), (200, 0, 200), (0, 160, 0))
_BAD_MIN_DISTANCE = 60.0


def check_cmap(name: str) -> None:
    """Raise ValueError unless ``name`` is one of `ALLOWED_CMAPS`."""
    if name not in ALLOWED_CMAPS:
        raise ValueError(f"Unknown colormap {name!r}; choose one of {', '.join(sorted(ALLOWED_CMAPS))}.")


def data_colors(name: str) -> npt.NDArray[np.uint8]:
    """Return the colormap sampled at `N_LEVELS` evenly spaced levels, as an (N_LEVELS, 3) uint8 RGB array."""
    check_cmap(name)
    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, N_LEVELS), bytes=True)
    return np.ascontiguousarray(rgba[:, :3], dtype=np.uint8)


def bad_color(colors: npt.NDArray[np.uint8]) -> tuple[int, int, int]:
    """Return a neutral "no data" colour that cannot be mistaken for a data colour of ``colors``."""
    best, best_distance = _BAD_CANDIDATES[0], -1.0
    for candidate in _BAD_CANDIDATES:
        distance = float(np.min(np.linalg.norm(colors.astype(float) - np.asarray(candidate, dtype=float), axis=1)))
        if distance >= _BAD_MIN_DISTANCE:
            return candidate
        if distance > best_distance:
            best, best_distance = candidate, distance
    return best


def palette_rgb(name: str) -> npt.NDArray[np.uint8]:
    """Return the full 256-entry palette for ``name`` as a (256, 3) uint8 array (data levels, then reserved)."""
    colors = data_colors(name)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:N_LEVELS] = colors
    palette[BAD_INDEX] = bad_color(colors)
    palette[WHITE_INDEX] = _WHITE
    palette[BLACK_INDEX] = _BLACK
    palette[RED_INDEX] = _RED
    return palette
