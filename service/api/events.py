"""Events in a TCE's DV light curve: where it dips or bumps, and whether the TCE's own transits repeat."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter

from service.api.params import described
from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.api.tces import serve_tce_product
from service.schemas import EventList
from service.services.events import EVENTS, EventParams

router = APIRouter(tags=["Events"])

EVENTS_DESCRIPTION = (
    "The anomalous windows of the TCE's detrended DV light curve (`LC_DETREND`), strongest first. Method: a box "
    "matched filter over twelve durations from 30 min to a day (√2 apart); the noise of each duration is the "
    "scaled median absolute deviation of its own box means, so red noise counts; SNR = box mean / noise; the "
    "strongest box above `min_snr` is an event, every box overlapping it is masked, and so on up to "
    "`max_events`. Missing values are skipped; gaps are gaps (a box needs half its cadences). "
    "`predicted_transits` measures every transit the TCE's ephemeris (TPERIOD, TEPOCH, TDUR) predicts in the "
    "data: `single_event` is true when only one of them dips by 3 sigma or more. Each event links to the cutout "
    "movie and the zoomed plot of its window."
)


MIN_SNR_DOC = "Detection threshold, sigma; the default is the SPOC pipeline's 7.1."
MIN_SNR_RANGE: dict[str, Any] = {"ge": 3, "le": 1000, "allow_inf_nan": False}


async def event_params(
    min_snr: Annotated[float, described(MIN_SNR_DOC, ("strict", "Only strong events", 10.0), **MIN_SNR_RANGE)] = 7.1,
    max_events: Annotated[int, described("Most events listed.", ("top", "The three strongest", 3), ge=1, le=50)] = 10,
    kind: Annotated[
        Literal["dip", "bump"] | None, described("Only dips, or only bumps; both when absent.", ("dips", "Dips", "dip"))
    ] = None,
) -> EventParams:
    """Return the search's parameters."""
    return EventParams(min_snr + 0.0, max_events, kind)


router.get(
    "/tic/{tic_id}/tces/{tce_id}/events",
    name="events_of_tce",
    response_model=EventList,
    summary="Find the events in a TCE's DV light curve",
    description=EVENTS_DESCRIPTION,
    responses={
        200: {"description": "The events and the predicted transits."},
        **problem_responses(404, 409, 422, *UPSTREAM_PROBLEMS),
    },
)(serve_tce_product(EVENTS, event_params))
