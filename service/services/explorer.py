"""What the explorer page is built from: the empty Bokeh figures (drawn once per process) and the page's settings.

The page itself holds no science: it calls the public API (TCEs, light curves, events, movies, diagnoses) from the
browser, so everything it shows is what a script would get from the same URLs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from service.rendering.explorer_plots import WINDOW_EVENT, lightcurve_plot_items
from service.services.movies import MP4_AVAILABLE
from service.settings import Settings


@functools.cache
def plot_items_json() -> str:
    """Return the explorer's time and phase figures as Bokeh JSON items, safe inside an HTML ``<script>``.

    Built once (they carry no data). Key order is kept: Bokeh defines each model where it first appears and
    refers to it by id afterwards, so sorted keys (Jinja's ``tojson``) would put references before definitions.
    """
    text = orjson.dumps(lightcurve_plot_items()).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class PageConfig:
    """What the page's script needs to know about this server."""

    mp4: bool
    max_window_days: float
    max_frames: int
    window_event: str

    @classmethod
    def of(cls, settings: Settings) -> PageConfig:
        """Return the page configuration of a server with ``settings``."""
        return cls(
            mp4=MP4_AVAILABLE,
            max_window_days=settings.diagnosis_max_window_days,
            max_frames=settings.movie_max_frames,
            window_event=WINDOW_EVENT,
        )
