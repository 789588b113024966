"""Events in a TCE's DV light curve, and whether the TCE's own transits repeat: a TCE product, declared here.

The search itself is `science.events.find_events` on ``LC_DETREND``; the transit check is
`science.transits.check_transits` on the same series with the TCE's ephemeris (TPERIOD, TEPOCH, TDUR from the DV
data header). This module turns their results into the `EventList` body, with links to look at each event.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np

from service.errors import BadUpstreamResponse
from service.schemas import EventList
from service.science import events as event_search
from service.science import transits as transit_check
from service.science.events import Event, EventKind, find_events
from service.science.transits import Ephemeris, TransitCheck, check_transits
from service.services.identity import Product
from service.services.tce_products import Made, TceData, TceProduct

EVENT_COLUMNS = ("TIME", "LC_DETREND")
JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class EventParams:
    """What shapes an event search: the threshold, how many events at most, and which kind (None: both)."""

    min_snr: float
    max_events: int
    kind: EventKind | None

    @property
    def kinds(self) -> tuple[EventKind, ...]:
        """Return the kinds searched for."""
        return (self.kind,) if self.kind is not None else ("dip", "bump")


def window_links(base: str, event: Event, plot: str, plot_query: dict[str, Any]) -> dict[str, str | None]:
    """Return the links of an event: the movie of its window padded by one duration each side, the zoomed plot.

    ``base`` is the path the movie hangs from (``/tic/{id}``, or ``/`` with ``ra``/``dec`` in ``plot_query``).
    """
    pad = event.duration_hours / 24.0
    start, end = _btjd(event.start_btjd - pad), _btjd(event.end_btjd + pad)
    highlight = f"{_btjd(event.start_btjd)},{_btjd(event.end_btjd)}"
    movie_query = {k: v for k, v in plot_query.items() if k in ("ra", "dec", "sector", "size")}
    return {
        "movie": f"{base.rstrip('/')}/movie?" + urlencode({**movie_query, "start": start, "end": end}, safe=","),
        "plot": f"{plot}?" + urlencode({**plot_query, "start": start, "end": end, "highlight": highlight}, safe=","),
        # The diagnosis compares the event's own window with the frames around it, so it takes the window unpadded.
        "diagnosis": f"{base.rstrip('/')}/diagnosis?"
        + urlencode({**movie_query, "start": _btjd(event.start_btjd), "end": _btjd(event.end_btjd)}),
    }


def event_json(event: Event, links: dict[str, str | None], in_model_transit: bool | None) -> dict[str, Any]:
    """Return one event as the body lists it (times to 1e-5 d, depths to 0.1 ppm, SNR to 0.01)."""
    return {
        "t0_btjd": _btjd(event.t0_btjd),
        "start_btjd": _btjd(event.start_btjd),
        "end_btjd": _btjd(event.end_btjd),
        "duration_hours": round(event.duration_hours, 3),
        "kind": event.kind,
        "depth_ppm": round(event.depth_ppm, 1),
        "snr": round(event.snr, 2),
        "n_points": event.n_points,
        "near_gap": event.near_gap,
        "in_model_transit": in_model_transit,
        "links": links,
    }


def make_events(data: TceData, params: EventParams) -> Made:
    """Return the events of the TCE's detrended DV light curve and the check of its predicted transits."""
    columns = data.table.columns
    missing = [c for c in EVENT_COLUMNS if c not in columns]
    if missing:
        raise BadUpstreamResponse(
            f"ExoMAST's DV light curve lacks {', '.join(missing)}, so it cannot be searched.", upstream="ExoMAST"
        )
    time, flux = _floats(columns["TIME"]), _floats(columns["LC_DETREND"])
    found = find_events(time, flux, min_snr=params.min_snr, max_events=params.max_events, kinds=params.kinds)
    ephemeris = _ephemeris(data)
    model = _floats(columns["MODEL_INIT"]) if "MODEL_INIT" in columns else None
    check = check_transits(time, flux, ephemeris, model) if ephemeris is not None else None
    base = f"/tic/{data.tic_id}"
    plot = f"{base}/tces/{data.ref.id}/lightcurve.png"
    body = {
        "tic_id": data.tic_id,
        "tce_id": data.ref.id,
        "sector": None,
        "source": "dv",
        "min_snr": params.min_snr,
        "max_events": params.max_events,
        "kind": params.kind,
        "n_points": int(np.count_nonzero(np.isfinite(time) & np.isfinite(flux))),
        "events": [
            event_json(e, window_links(base, e, plot, {"x": "time"}), _in_transit(e, ephemeris, check)) for e in found
        ],
        "predicted_transits": _transits_json(check) if check is not None else None,
    }
    return Made(EVENTS.product.json_body(body), JSON_MEDIA_TYPE)


def _floats(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _btjd(value: float) -> float:
    return round(value, 5)


def _ephemeris(data: TceData) -> Ephemeris | None:
    """Return the TCE's ephemeris from its DV data header, or None when it lacks a usable one."""
    header = data.headers.data if data.headers is not None else {}
    values = [header.get(k) for k in ("TPERIOD", "TEPOCH", "TDUR")]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) != len(values):
        return None
    period, epoch, duration = numbers
    return Ephemeris(period, epoch, duration) if duration > 0 else None


def _in_transit(event: Event, ephemeris: Ephemeris | None, check: TransitCheck | None) -> bool | None:
    """Return whether a predicted transit overlaps the event (None without an ephemeris)."""
    if ephemeris is None or check is None:
        return None
    reach = (ephemeris.duration_hours + event.duration_hours) / 48.0
    return any(abs(t.t_btjd - event.t0_btjd) <= reach for t in check.transits)


def _transits_json(check: TransitCheck) -> dict[str, Any]:
    def number(value: float | None, digits: int) -> float | None:
        return round(value, digits) if value is not None and math.isfinite(value) else None

    return {
        "n_predicted": check.n_predicted,
        "n_observed": check.n_observed,
        "n_with_signal": check.n_with_signal,
        "single_event": check.single_event,
        "transits": [
            {
                "t_btjd": _btjd(t.t_btjd),
                "depth_ppm": number(t.depth_ppm, 1),
                "depth_err_ppm": number(t.depth_err_ppm, 1),
                "snr": number(t.snr, 2),
                "model_depth_ppm": number(t.model_depth_ppm, 1),
                "coverage": round(t.coverage, 3),
                "n_points": t.n_points,
                "observed": t.observed,
                "has_signal": t.has_signal,
            }
            for t in check.transits
        ],
    }


# The body is shaped by the two searches and by everything in this module.
_SHAPED_BY = (event_search, transit_check, sys.modules[__name__])
EVENTS = TceProduct(
    Product("events", (JSON_MEDIA_TYPE,), _SHAPED_BY, EventList),
    make_events,
    needs_headers=lambda params: True,
)
