"""Response models: they document the JSON the routes serve (Swagger UI shows their examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from service.schema_examples import EXAMPLE_EVENT_LIST, EXAMPLE_FFI_LIGHTCURVE

EXAMPLE_TCE: dict[str, JsonValue] = {
    "id": "s0001-s0001:TCE_1",
    "sectors": "s0001-s0001",
    "first_sector": 1,
    "last_sector": 1,
    "tce": "TCE_1",
    "number": 1,
}


class Tce(BaseModel):
    """One Threshold Crossing Event: a periodic dip found by a SPOC search over a range of sectors."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_TCE]})

    id: str = Field(description="Full TCE id, `{sector range}:{TCE}` as ExoMAST writes it.")
    sectors: str = Field(description="Sector range of the search that found the TCE.")
    first_sector: int = Field(description="First sector of that search.")
    last_sector: int = Field(description="Last sector of that search.")
    tce: str = Field(description="TCE name within the search.")
    number: int = Field(description="TCE number within the search.")


class TceList(BaseModel):
    """The TCEs of one TIC, sorted by sector range, then TCE number."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"tic_id": 214568914, "tces": [EXAMPLE_TCE]}]})

    tic_id: int = Field(description="TESS Input Catalog id.")
    tces: list[Tce] = Field(description="The TCEs.")


class TceSummaryValues(BaseModel):
    """Normalised TCE quantities (units in the names); null where ExoMAST has no value."""

    object: str | None = Field(None, description="Target name, e.g. 'TIC 214568914'.")
    period_days: float | None = Field(None, description="Orbital period (TPERIOD), days.")
    epoch_btjd: float | None = Field(None, description="Transit epoch (TEPOCH), BJD - 2457000.")
    depth_ppm: float | None = Field(None, description="Transit depth (TDEPTH), ppm.")
    duration_hours: float | None = Field(None, description="Transit duration (TDUR), hours.")
    ingress_hours: float | None = Field(None, description="Ingress duration (INDUR), hours.")
    snr: float | None = Field(None, description="Transit signal-to-noise ratio (TSNR).")
    max_mes: float | None = Field(None, description="Maximum multiple-event statistic (MAXMES).")
    max_ses: float | None = Field(None, description="Maximum single-event statistic (MAXSES).")
    impact_parameter: float | None = Field(None, description="Impact parameter (IMPACT).")
    inclination_deg: float | None = Field(None, description="Orbital inclination (INCLIN), degrees.")
    a_over_rstar: float | None = Field(None, description="Semi-major axis over stellar radius (DRRATIO).")
    rp_over_rstar: float | None = Field(None, description="Planet radius over stellar radius (RADRATIO).")
    planet_radius_earth: float | None = Field(None, description="Planet radius (PRADIUS), Earth radii.")
    n_transits: int | None = Field(None, description="Number of transits (NTRANS).")
    ra_deg: float | None = Field(None, description="Right ascension (RA_OBJ), degrees.")
    dec_deg: float | None = Field(None, description="Declination (DEC_OBJ), degrees.")
    tessmag: float | None = Field(None, description="TESS magnitude (TESSMAG).")
    teff_k: float | None = Field(None, description="Stellar effective temperature (TEFF), K.")
    logg_cgs: float | None = Field(None, description="Stellar surface gravity log10(g / cm s^-2) (LOGG).")
    metallicity_dex: float | None = Field(None, description="Stellar metallicity [M/H] (MH), dex.")
    star_radius_solar: float | None = Field(None, description="Stellar radius (RADIUS), solar radii.")
    pm_ra_mas_per_yr: float | None = Field(None, description="Proper motion in RA (PMRA), mas/yr.")
    pm_dec_mas_per_yr: float | None = Field(None, description="Proper motion in Dec (PMDEC), mas/yr.")


class TceSummary(BaseModel):
    """A TCE: its normalised summary plus the two DV FITS headers exactly as ExoMAST gave them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tic_id": 214568914,
                    "tce": EXAMPLE_TCE,
                    "summary": {
                        "object": "TIC 214568914",
                        "period_days": 11.6186,
                        "epoch_btjd": 1334.45,
                        "depth_ppm": 24447.6,
                        "duration_hours": 12.5986,
                        "snr": 49.9271,
                        "max_ses": 68.2709,
                        "planet_radius_earth": 2.99464,
                        "ra_deg": 340.8004,
                        "dec_deg": -36.3439,
                        "tessmag": 15.34,
                        "teff_k": 31000.0,
                    },
                    "dv_primary_header": {"OBJECT": "TIC 214568914", "TICID": 214568914, "TESSMAG": 15.34},
                    "dv_data_header": {"EXTNAME": "TCE_1", "TPERIOD": 11.6186, "TEPOCH": 1334.45},
                }
            ]
        }
    )

    tic_id: int = Field(description="TESS Input Catalog id.")
    tce: Tce = Field(description="Which TCE this is.")
    summary: TceSummaryValues = Field(description="Normalised quantities.")
    dv_primary_header: dict[str, Any] = Field(description="ExoMAST's 'DV Primary Header', keyword → value.")
    dv_data_header: dict[str, Any] = Field(description="ExoMAST's 'DV Data Header', keyword → value.")


class LightCurve(BaseModel):
    """A DV light curve, column-oriented; missing values are null."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tic_id": 214568914,
                    "tce_id": "s0001-s0001:TCE_1",
                    "sectors": "s0001-s0001",
                    "start_btjd": 1334.0,
                    "end_btjd": 1334.01,
                    "n_rows": 3,
                    "columns": {
                        "TIME": [1334.0011, 1334.0025, 1334.0039],
                        "LC_DETREND": [0.00312, None, -0.00101],
                    },
                    "units": {"TIME": "BJD - 2457000, days", "LC_DETREND": "dimensionless"},
                    "descriptions": {"TIME": "Barycentric TESS Julian Date", "LC_DETREND": "Detrended light curve"},
                    "datatypes": {"TIME": "real", "LC_DETREND": "real"},
                }
            ]
        }
    )

    tic_id: int = Field(description="TESS Input Catalog id.")
    tce_id: str = Field(description="Full TCE id.")
    sectors: str = Field(description="Sector range of the TCE's search.")
    start_btjd: float | None = Field(description="Requested window start, BTJD (null: from the beginning).")
    end_btjd: float | None = Field(description="Requested window end, BTJD (null: to the end).")
    n_rows: int = Field(description="Number of rows returned.")
    columns: dict[str, list[Any]] = Field(description="Column name → values (numbers, strings or null).")
    units: dict[str, str | None] = Field(description="Column name → unit (null when unitless text).")
    descriptions: dict[str, str] = Field(description="Column name → ExoMAST's description.")
    datatypes: dict[str, str] = Field(description="Column name → ExoMAST's datatype (int, real, varchar(N)).")


class FfiAperture(BaseModel):
    """How the aperture of an FFI light curve was chosen."""

    method: str = Field(description="`threshold` (the star's pixels above the threshold) or `disk` (a faint star).")
    n_pixels: int = Field(description="Pixels in the aperture.")
    threshold_e_per_s: float = Field(description="The threshold on the reference (median) image, e-/s.")
    description: str = Field(description="The method, in words.")


class FfiBackground(BaseModel):
    """How the background of an FFI light curve was measured."""

    n_pixels: int = Field(description="Pixels whose per-frame median is the sky level (0: no background taken).")
    description: str = Field(description="The method, in words.")


class FfiLightCurve(BaseModel):
    """Simple aperture photometry of an FFI cutout, column-oriented like the DV light curve; missing values null."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_FFI_LIGHTCURVE]})

    tic_id: int | None = Field(description="The TIC, when asked by TIC.")
    ra_deg: float = Field(description="Position of the star, degrees.")
    dec_deg: float = Field(description="Position of the star, degrees.")
    sector: int = Field(description="Sector of the cutout.")
    camera: int | None = Field(description="Camera.")
    ccd: int | None = Field(description="CCD.")
    size_px: int = Field(description="Side of the cutout, pixels.")
    target_pixel: dict[str, float] = Field(
        description="Where the star is taken to be, 0-based pixels (x = column): by the cutout's WCS, or its centre "
        "when the WCS places the star off the cutout."
    )
    aperture_pixels: list[list[int]] = Field(description="The aperture's pixels, `[x, y]` (column, row), 0-based.")
    aperture: FfiAperture = Field(description="How the aperture was chosen.")
    background: FfiBackground = Field(description="How the background was measured.")
    quality_bits: dict[str, str] = Field(description="QUALITY bit (as text) → its name, for every bit set here.")
    n_rows: int = Field(description="Number of rows (FFIs).")
    columns: dict[str, list[Any]] = Field(description="Column name → values (numbers or null).")
    units: dict[str, str | None] = Field(description="Column name → unit (null for QUALITY).")
    descriptions: dict[str, str] = Field(description="Column name → what it holds.")
    datatypes: dict[str, str] = Field(description="Column name → `real` or `int`.")


class Health(BaseModel):
    """Liveness of the process."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "version": "0.1.0"}]})

    status: str = Field(description="Always 'ok' when the process answers.")
    version: str = Field(description="Service version.")


class ReadyCheck(BaseModel):
    """One readiness check: the cache, the shared tier and the state Redis (when configured), or a breaker."""

    name: str = Field(
        description="'cache', 'shared cache' (Redis and the object store, when configured), 'coordination' (the "
        "state Redis, when configured), or the upstream's name (ExoMAST, MAST TIC catalog, TESScut, SkyBoT)."
    )
    ok: bool = Field(description="Whether this check passes.")
    state: str = Field(
        description="Cache: 'writable' or 'failing'. Shared cache: 'available' or 'unavailable' (this replica then "
        "serves from its own tiers). Coordination: 'available' or 'unavailable' (new TESScut work answers 503). "
        "Upstream: its breaker, 'closed', 'open' (calls refused) or 'half-open' (a trial call is due or under way)."
    )
    detail: str | None = Field(None, description="Why the check fails, when it does.")
    retry_after_s: int | None = Field(None, description="For an open breaker: seconds until it tries again.")


EXAMPLE_READY_CHECKS: list[JsonValue] = [
    {"name": "cache", "ok": True, "state": "writable", "detail": None, "retry_after_s": None},
    {"name": "ExoMAST", "ok": True, "state": "closed", "detail": None, "retry_after_s": None},
    {"name": "MAST TIC catalog", "ok": True, "state": "closed", "detail": None, "retry_after_s": None},
    {"name": "TESScut", "ok": True, "state": "closed", "detail": None, "retry_after_s": None},
    {"name": "SkyBoT", "ok": True, "state": "closed", "detail": None, "retry_after_s": None},
]


class Ready(BaseModel):
    """Readiness: the cache takes writes; each upstream's breaker state is reported."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ready", "checks": EXAMPLE_READY_CHECKS}]})

    status: str = Field(
        description="'ready', or 'degraded' when an upstream's circuit breaker is open (cached answers are "
        "still served)."
    )
    checks: list[ReadyCheck] = Field(description="Every check, passing or not.")


class Problem(BaseModel):
    """An RFC 9457 problem document: every error the service answers is one of these."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URN naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="What happened, in words a user can act on.")
    instance: str = Field(description="The request path.")
    retryable: bool = Field(description="Whether the same request may succeed later.")
    retry_after_s: int | None = Field(None, description="Seconds to wait before retrying, when known.")
    request_id: str | None = Field(
        None, description="The answer's `X-Request-ID`: quote it when reporting a problem (it is in our logs)."
    )


EXAMPLE_SECTOR: dict[str, JsonValue] = {"sector": 1, "camera": 1, "ccd": 2, "name": "tess-s0001-1-2"}


class SectorHit(BaseModel):
    """A sector, camera and CCD whose full-frame images cover a position."""

    sector: int = Field(description="TESS sector.")
    camera: int = Field(description="Camera (1–4).")
    ccd: int = Field(description="CCD of that camera (1–4).")
    name: str = Field(description="TESScut's name for it.")


class SectorList(BaseModel):
    """The sectors that observed a position (and the TIC it belongs to, when asked by TIC)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tic_id": 214568914,
                    "position_source": "dv",
                    "ra_deg": 340.8004,
                    "dec_deg": -36.3439,
                    "sectors": [EXAMPLE_SECTOR],
                }
            ]
        }
    )

    tic_id: int | None = Field(None, description="The TIC, when asked by TIC.")
    position_source: str | None = Field(
        None, description="Where the TIC's position came from: `request`, `dv` (DV header) or `catalog` (TIC)."
    )
    ra_deg: float = Field(description="Right ascension used, degrees.")
    dec_deg: float = Field(description="Declination used, degrees.")
    sectors: list[SectorHit] = Field(description="Sorted by sector, camera, CCD.")


class CutoutSummary(BaseModel):
    """What is in a cutout (`format=json`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sector": 1,
                    "camera": 1,
                    "ccd": 2,
                    "shape": [50, 50],
                    "n_frames": 1282,
                    "time_start_btjd": 1325.3,
                    "time_end_btjd": 1353.16,
                    "cadence_minutes": 30.0,
                    "target_pixel": {"x": 24.5, "y": 24.5},
                    "wcs_center_deg": {"ra": 340.8004, "dec": -36.3439},
                    "ticid": 214568914,
                    "tessmag": 15.34,
                    "tic_id": 214568914,
                    "ra_deg": 340.8004,
                    "dec_deg": -36.3439,
                    "position_source": "dv",
                    "file_name": "tic214568914_tess-s0001-1-2_50x50_astrocut.fits",
                    "size_bytes": 64204800,
                    "note": None,
                }
            ]
        }
    )

    sector: int = Field(description="Sector of the cutout.")
    camera: int = Field(description="Camera.")
    ccd: int = Field(description="CCD.")
    shape: list[int] = Field(description="[rows, columns] in pixels.")
    n_frames: int = Field(description="Number of FFI frames (rows of the PIXELS table).")
    time_start_btjd: float | None = Field(description="First frame's mid-time, BTJD.")
    time_end_btjd: float | None = Field(description="Last frame's mid-time, BTJD.")
    cadence_minutes: float | None = Field(description="Median time between frames, minutes.")
    target_pixel: dict[str, float] | None = Field(description="The target's position, 0-based pixels (x = column).")
    wcs_center_deg: dict[str, float] = Field(description="The WCS reference position, degrees.")
    ticid: int | None = Field(description="TICID in the file's header.")
    tessmag: float | None = Field(description="TESSMAG in the file's header.")
    tic_id: int | None = Field(description="The TIC asked for, if any.")
    ra_deg: float = Field(description="Requested centre, degrees.")
    dec_deg: float = Field(description="Requested centre, degrees.")
    position_source: str = Field(description="`request`, `dv` or `catalog`.")
    file_name: str = Field(description="File name the FITS download carries.")
    size_bytes: int = Field(description="Size of the FITS file.")
    note: str | None = Field(description="Why this file, when TESScut returned several (two CCDs).")


class JobView(BaseModel):
    """A background job: poll it until `status` is `done` (then fetch `result_url`) or `failed`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2b8c1d9e7a4b6c8d0e1f2a3b4c5d6e",
                    "status": "running",
                    "created_at": 1795000000.0,
                    "updated_at": 1795000002.5,
                    "bytes_received": 18874368,
                    "result_url": None,
                    "problem": None,
                }
            ]
        }
    )

    id: str = Field(description="Job id.")
    status: str = Field(description="`queued`, `running`, `done` or `failed`.")
    created_at: float = Field(description="Unix time the job started.")
    updated_at: float = Field(description="Unix time of the last status change.")
    bytes_received: int = Field(description="Bytes received from MAST so far.")
    result_url: str | None = Field(description="Where the result is served from the cache, once done.")
    problem: dict[str, Any] | None = Field(None, description="The problem document, when failed.")
    then: str | None = Field(
        None, description="In a 202 answer: the URL that will serve this request's result once the job is done."
    )


class EventLinks(BaseModel):
    """Where to look at an event: the cutout movie of its window, the light curve zoomed on it, its diagnosis."""

    movie: str = Field(description="The cutout movie of the event's window, padded by a duration on each side.")
    plot: str = Field(description="The light-curve plot zoomed on the same window, the event shaded.")
    diagnosis: str | None = Field(None, description="The pixel-level diagnosis of the window, once it exists.")


class LightCurveEvent(BaseModel):
    """One anomalous window of a light curve, found by a box matched filter (see the route's description)."""

    t0_btjd: float = Field(description="Centre of the window, BTJD (BJD - 2457000).")
    start_btjd: float = Field(description="Start of the window, BTJD.")
    end_btjd: float = Field(description="End of the window, BTJD.")
    duration_hours: float = Field(description="Length of the box that found it, hours (30 min to a day).")
    kind: str = Field(description="`dip` (flux below the baseline) or `bump` (above).")
    depth_ppm: float = Field(description="Size of the excursion: the window's mean distance from the baseline, ppm.")
    snr: float = Field(description="depth over the scatter of windows of that length across the light curve.")
    n_points: int = Field(description="Cadences inside the window.")
    near_gap: bool = Field(description="Whether the window reaches a data gap, or the start or end of the data.")
    in_model_transit: bool | None = Field(
        None, description="Whether the TCE's model predicts a transit there (null without a TCE)."
    )
    quality: int | None = Field(None, description="FFI light curves: bitwise OR of the window's QUALITY flags.")
    quality_flags: list[str] | None = Field(None, description="FFI light curves: those flags' names.")
    links: EventLinks = Field(description="Where to look at it.")


class TransitMeasurement(BaseModel):
    """One transit the TCE's ephemeris predicts inside the light curve, measured there."""

    t_btjd: float = Field(description="Predicted mid-transit time, BTJD.")
    depth_ppm: float | None = Field(description="Measured depth: the baseline minus the mean flux in the window, ppm.")
    depth_err_ppm: float | None = Field(description="Its uncertainty: the scatter of windows of that length, ppm.")
    snr: float | None = Field(description="depth_ppm / depth_err_ppm.")
    model_depth_ppm: float | None = Field(description="The same mean over the DV model (MODEL_INIT), ppm.")
    coverage: float = Field(description="Fraction of the transit window covered by data (0–1).")
    n_points: int = Field(description="Cadences inside the window.")
    observed: bool = Field(description="Whether data cover at least half of the window.")
    has_signal: bool = Field(description="Whether it is observed and dips by 3 sigma or more.")


class PredictedTransits(BaseModel):
    """Does the TCE's own signal repeat? Every predicted transit, and how many show the dip."""

    n_predicted: int = Field(description="Transits predicted inside the light curve's time span, gaps included.")
    n_observed: int = Field(description="Those at least half covered by data.")
    n_with_signal: int = Field(description="Those observed that dip by 3 sigma or more.")
    single_event: bool = Field(description="Whether exactly one predicted transit shows the dip.")
    transits: list[TransitMeasurement] = Field(description="Each predicted transit, in time order.")


class EventList(BaseModel):
    """The anomalous windows of a light curve, strongest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_EVENT_LIST]})

    tic_id: int | None = Field(description="The TIC, when asked by TIC.")
    tce_id: str | None = Field(None, description="The TCE whose DV light curve was searched (DV events).")
    sector: int | None = Field(None, description="The sector of the cutout whose light curve was searched (FFI).")
    source: str = Field(description="`dv` (DV's detrended LC_DETREND) or `ffi` (aperture photometry, detrended).")
    min_snr: float = Field(description="The threshold used.")
    max_events: int = Field(description="At most this many events are listed.")
    kind: str | None = Field(description="Only this kind was searched for (`dip` or `bump`), or null for both.")
    n_points: int = Field(description="Finite cadences searched.")
    events: list[LightCurveEvent] = Field(description="The events, strongest (highest SNR) first.")
    predicted_transits: PredictedTransits | None = Field(
        None, description="DV events: every transit the TCE's ephemeris predicts in the data, measured."
    )
