"""IMCCE's SkyBoT cone search: the known solar-system bodies inside a cone at an epoch, as astroquery asks for them.

The wire format is recorded in diagnosis-methods.md ("SkyBoT (IMCCE) cone search"): GET with ``-ra``/``-dec``/``-rd``
in degrees and ``-ep`` in JD, answered with a VOTable 1.3 whose ``QUERY_STATUS`` is ``OK`` and whose FIELD ids are
``num``, ``name``, ``ra`` (sexagesimal hours), ``de`` (sexagesimal degrees), ``class``, ``magV``, ``angdist``,
``dracosdec`` and ``ddec`` (arcsec/h), ... An empty table means nothing is there.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

from astropy.io.votable import parse as parse_votable_file

from service.errors import BadUpstreamResponse
from service.infra.threads import run_blocking
from service.upstream.http import UpstreamBody, request_bytes
from service.upstream.resilience import GuardedClient, time_left_s

UPSTREAM = "SkyBoT"
TESS_OBSERVER_CODE = "C57"  # the IAU observatory code of TESS, as lightkurve asks SkyBoT
REQUIRED_FIELDS = ("num", "name", "ra", "de", "class", "magV", "angdist", "dracosdec", "ddec")
# What astroquery sends by default besides the cone: every kind of body, position error up to 120″, ICRS/J2000.
_FIXED_PARAMS = {
    "-loc": TESS_OBSERVER_CODE,
    "-mime": "votable",
    "-output": "basic",
    "-filter": "120",
    "-objFilter": "111",
    "-refsys": "EQJ2000",
}


@dataclass(frozen=True)
class SolarSystemObject:
    """One body SkyBoT finds in the cone: where it is at the epoch and how fast it moves."""

    name: str
    number: int | None  # None for a body with only a provisional designation (SkyBoT writes "-")
    object_class: str  # SkyBoT's dynamical class, e.g. "MB>Middle"
    v_mag: float | None
    ra_deg: float
    dec_deg: float
    ra_rate_arcsec_per_h: float  # dRA·cos(Dec)/dt
    dec_rate_arcsec_per_h: float
    distance_arcsec: float  # from the cone's centre


def cone_search_params(ra_deg: float, dec_deg: float, radius_deg: float, epoch_jd: float) -> dict[str, str]:
    """Return the query parameters of one cone search, as astroquery's ``Skybot.cone_search`` sends them."""
    return {
        "-ra": repr(ra_deg),
        "-dec": repr(dec_deg),
        "-rd": repr(radius_deg),
        "-ep": repr(epoch_jd),
        **_FIXED_PARAMS,
    }


def parse_sexagesimal(text: str, *, scale: float) -> float:
    """Return ``"hh mm ss.s"`` / ``"+dd mm ss.s"`` (spaces or colons) times ``scale`` (15 for hours → degrees)."""
    parts = text.replace(":", " ").split()
    if len(parts) != 3:
        raise ValueError(f"not sexagesimal: {text!r}")
    units, minutes, seconds = (float(part) for part in parts)
    negative = parts[0].lstrip().startswith("-")
    value = abs(units) + minutes / 60.0 + seconds / 3600.0
    return scale * (-value if negative else value)


def parse_cone_search(content: bytes) -> list[SolarSystemObject]:
    """Return the bodies of a SkyBoT VOTable answer (blocking: call from a worker thread).

    Anything but a VOTable with ``QUERY_STATUS`` ``OK`` and the expected columns is a `BadUpstreamResponse`.
    """
    try:
        with warnings.catch_warnings():
            # Pedantic VOTable warnings (units, UCDs) say nothing about whether the answer is usable.
            warnings.simplefilter("ignore")
            votable = parse_votable_file(io.BytesIO(content), verify="ignore")
    except Exception as exc:  # noqa: BLE001 - the XML parser and the VOTable reader raise many kinds; all mean "not a VOTable"
        raise BadUpstreamResponse(
            f"{UPSTREAM} sent something that is not a VOTable ({type(exc).__name__}).", upstream=UPSTREAM
        ) from exc
    status = _query_status(votable)
    if status is not None and status[0].upper() != "OK":
        raise BadUpstreamResponse(f"{UPSTREAM} reported an error: {status[1] or status[0]}", upstream=UPSTREAM)
    tables = list(votable.iter_tables())
    if not tables:
        raise BadUpstreamResponse(f"{UPSTREAM}'s answer holds no table.", upstream=UPSTREAM)
    table = tables[0]
    missing = [name for name in REQUIRED_FIELDS if name not in {field.ID for field in table.fields}]
    if missing:
        raise BadUpstreamResponse(f"{UPSTREAM}'s table lacks the columns {', '.join(missing)}.", upstream=UPSTREAM)
    try:
        return [_body_of(table.array, index) for index in range(len(table.array))]
    except (ValueError, TypeError) as exc:
        raise BadUpstreamResponse(f"{UPSTREAM}'s table holds a value we cannot read: {exc}", upstream=UPSTREAM) from exc


def _query_status(votable: Any) -> tuple[str, str] | None:
    infos = [*votable.infos, *(info for resource in votable.resources for info in resource.infos)]
    for info in infos:
        if info.name == "QUERY_STATUS":
            return str(info.value), " ".join(str(info.content or "").split())
    return None


def _body_of(rows: Any, index: int) -> SolarSystemObject:
    row = rows[index]

    def text(name: str) -> str:
        value = row[name]
        return (value.decode() if isinstance(value, bytes) else str(value)).strip()

    def number(name: str) -> float | None:
        # None when the cell is empty or not finite.
        if rows.mask[name][index]:
            return None
        value = float(row[name])
        return value if math.isfinite(value) else None

    def required(name: str) -> float:
        value = number(name)
        if value is None:
            raise ValueError(f"no {name} for {text('name')}")
        return value

    raw_number = text("num")
    return SolarSystemObject(
        name=text("name"),
        number=int(raw_number) if raw_number.isdigit() else None,
        object_class=text("class"),
        v_mag=number("magV"),  # SkyBoT has no magnitude for some comets
        ra_deg=parse_sexagesimal(text("ra"), scale=15.0) % 360.0,
        dec_deg=parse_sexagesimal(text("de"), scale=1.0),
        ra_rate_arcsec_per_h=required("dracosdec"),
        dec_rate_arcsec_per_h=required("ddec"),
        distance_arcsec=required("angdist"),
    )


class SkybotClient(GuardedClient):
    """Asks SkyBoT's cone search over its own `httpx.AsyncClient`; the VOTable is parsed in a worker thread.

    Every GET goes through ``guard``: retried on transient failures within one deadline, refused at once while
    SkyBoT's breaker is open.
    """

    async def cone_search(
        self, ra_deg: float, dec_deg: float, radius_deg: float, epoch_jd: float
    ) -> list[SolarSystemObject]:
        """Return the known solar-system bodies within ``radius_deg`` of (RA, Dec) at ``epoch_jd``, seen from TESS."""
        params = cone_search_params(ra_deg, dec_deg, radius_deg, epoch_jd)

        async def attempt(deadline: float) -> UpstreamBody:
            return await request_bytes(
                self._client, "GET", self._url, self._budget.capped(time_left_s(deadline)), params=params
            )

        body = await self._guard.call("conesearch", attempt)
        return await run_blocking(parse_cone_search, body.content, limiter=self._limiters.cpu)
