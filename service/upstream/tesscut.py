"""TESScut through astroquery's `Tesscut`, run in bounded worker threads and kept polite to MAST.

Politeness (MAST's published limits): at most ``max_in_flight`` requests at once (a thread limiter), at most
``starts_per_s`` started per second (aiolimiter), one sector per request, and 503/504/timeouts retried with
exponential backoff and jitter (tenacity) within one overall deadline.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import requests
from aiolimiter import AsyncLimiter
from anyio import CapacityLimiter
from requests.adapters import HTTPAdapter
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from service.errors import BadUpstreamResponse, NotFound, ServiceError, UpstreamTimeout, UpstreamUnavailable
from service.infra.threads import run_blocking
from service.upstream.http import retry_after_seconds

UPSTREAM = "TESScut"
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class SectorHit:
    """One sector/camera/CCD whose FFIs cover a position."""

    sector: int
    camera: int
    ccd: int

    @property
    def name(self) -> str:
        """Return TESScut's name for it, e.g. ``tess-s0001-1-2``."""
        return f"tess-s{self.sector:04d}-{self.camera}-{self.ccd}"


class _TimeoutAdapter(HTTPAdapter):
    """astroquery downloads with ``timeout=None`` (wait forever); give every request a real timeout."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with the default timeout unless the caller gave one."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _translate(exc: Exception) -> ServiceError:
    """Map what astroquery/requests raise to the service's errors."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        wait = retry_after_seconds(exc.response.headers.get("Retry-After"), default=10)
        if status in (429, 503):
            return UpstreamUnavailable(
                f"TESScut is overloaded (HTTP {status}); MAST allows few simultaneous cutouts, try again shortly.",
                upstream=UPSTREAM,
                retry_after_s=wait,
            )
        if status == 504:
            return UpstreamTimeout(
                "TESScut's gateway timed out (HTTP 504); MAST is busy making cutouts, try again later.",
                upstream=UPSTREAM,
                retry_after_s=wait,
            )
        return BadUpstreamResponse(f"TESScut answered HTTP {status}.", upstream=UPSTREAM)
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(
            "TESScut did not answer in time; large cutouts can take minutes, try again later.",
            upstream=UPSTREAM,
            retry_after_s=30,
        )
    if isinstance(exc, requests.ConnectionError):
        if isinstance(exc.__context__, ConnectionRefusedError) or "refused" in str(exc).lower():
            return UpstreamUnavailable(
                "TESScut could not be reached; try again shortly.", upstream=UPSTREAM, retry_after_s=10
            )
        return BadUpstreamResponse(
            "TESScut dropped the connection before the cutout was complete; try again.",
            upstream=UPSTREAM,
            retry_after_s=10,
        )
    if type(exc).__name__ == "InvalidQueryError":
        return BadUpstreamResponse("TESScut refused the request as invalid (HTTP 400 or 500).", upstream=UPSTREAM)
    if isinstance(exc, zipfile.BadZipFile | json.JSONDecodeError | UnicodeDecodeError | KeyError | OSError):
        return BadUpstreamResponse(
            f"TESScut sent a cutout that cannot be read ({type(exc).__name__}).", upstream=UPSTREAM
        )
    return BadUpstreamResponse(f"TESScut's answer could not be used ({type(exc).__name__}: {exc}).", upstream=UPSTREAM)


def extract_tpfs(zip_path: Path, directory: Path) -> list[Path]:
    """Unzip the target pixel files next to the zip (streamed, member by member) and return their paths.

    Member names come from the upstream, so only their base names are used: nothing lands outside ``directory``.
    """
    paths = []
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            name = Path(member.filename).name
            if member.is_dir() or not name.endswith(".fits"):
                continue
            target = directory / name
            with archive.open(member) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1024 * 1024)
            paths.append(target)
    if not paths:
        raise BadUpstreamResponse("TESScut's zip holds no FITS file.", upstream=UPSTREAM)
    return paths


class TesscutClient:
    """Sector lookups and cutout downloads with astroquery, off the event loop and within MAST's limits."""

    def __init__(
        self,
        mast_url: str,
        *,
        max_in_flight: int,
        starts_per_s: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        deadline_s: float,
        max_attempts: int,
        backoff_s: float,
    ) -> None:
        self._request_url = f"{mast_url}/tesscut/api/v0.1/"
        # A request first takes one of the in-flight slots, then a start token: tokens are spaced 1/rate apart
        # (a bucket of one), so no second ever sees more than `starts_per_s` requests begin.
        self._in_flight = anyio.Semaphore(max_in_flight)
        self._threads = CapacityLimiter(max_in_flight)
        self._starts = AsyncLimiter(1, 1.0 / starts_per_s)
        self._sessions: set[requests.Session] = set()
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._deadline_s = deadline_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s

    def _tesscut(self) -> Any:
        """Return a fresh astroquery `TesscutClass` aimed at our MAST URL (one per call: sessions are not shared)."""
        from astroquery.mast import TesscutClass  # imported late: astroquery's import is slow and optional for tests

        tesscut = TesscutClass()
        # astroquery freezes the server URL at import; this per-instance attribute is what every request uses.
        tesscut._service_api_connection.REQUEST_URL = self._request_url
        adapter = _TimeoutAdapter(self._timeout)
        for session in {id(s): s for s in (tesscut._session, tesscut._service_api_connection._session)}.values():
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        return tesscut

    async def _call(self, fn: Callable[[Any], T], on_start: Callable[[], None] | None = None) -> T:
        """Run ``fn(tesscut)`` in a TESScut thread, retrying what MAST asks us to retry, within the deadline."""

        def attempt() -> T:
            if on_start is not None:
                on_start()
            tesscut = self._tesscut()
            self._sessions.add(tesscut._session)
            try:
                return fn(tesscut)
            except ServiceError:
                raise
            except Exception as exc:  # noqa: BLE001 - astroquery raises many kinds; all become ServiceErrors
                if isinstance(exc, requests.HTTPError) and exc.response is not None:
                    exc.response.close()  # astroquery raises while its streamed response still holds the socket
                raise _translate(exc) from exc
            finally:
                self._sessions.discard(tesscut._session)
                tesscut._session.close()  # its pooled connections, whatever happened

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((UpstreamUnavailable, UpstreamTimeout)),
            wait=wait_random_exponential(multiplier=self._backoff_s, max=30 * self._backoff_s),
            stop=stop_after_attempt(self._max_attempts) | stop_after_delay(self._deadline_s),
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                async with self._in_flight:
                    await self._starts.acquire()
                    return await run_blocking(attempt, limiter=self._threads)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def close(self) -> None:
        """Abort the requests in flight (at shutdown): closing a session makes its blocked reads fail at once."""
        for session in list(self._sessions):
            session.close()

    async def sectors(self, ra_deg: float, dec_deg: float, radius_deg: float = 0.0) -> list[SectorHit]:
        """Return every sector/camera/CCD whose FFIs cover the position, sorted."""

        def lookup(tesscut: Any) -> list[SectorHit]:
            # The same request astroquery's get_sectors sends, but its answer is checked here: get_sectors reads
            # a missing "results" as "no sectors", which would then be cached as such.
            params = {"ra": ra_deg, "dec": dec_deg, "radius": radius_deg}
            response = tesscut._service_api_connection.service_request_async("sector", params)
            try:
                results = response.json()["results"]
                return sorted({SectorHit(int(r["sector"]), int(r["camera"]), int(r["ccd"])) for r in results})
            except (ValueError, KeyError, TypeError) as exc:
                raise BadUpstreamResponse(
                    "TESScut's sector answer has no usable 'results' list.", upstream=UPSTREAM
                ) from exc
            finally:
                response.close()

        return await self._call(lookup)

    async def download(
        self,
        ra_deg: float,
        dec_deg: float,
        size_px: int | tuple[int, int],
        sector: int,
        directory: Path,
        on_start: Callable[[], None] | None = None,
    ) -> list[Path]:
        """Download the cutout(s) of one sector into ``directory`` and return the TPF paths, in the zip's order.

        ``size_px`` is a square's side, or (rows, columns) for a rectangle, as astroquery's ``size`` takes it.
        astroquery streams the zip to ``directory`` (so the size of ``*.zip`` there is the download's progress); we
        unzip it there. ``directory`` must be this call's own: astroquery names the zip after the current second.
        """
        size = list(size_px) if isinstance(size_px, tuple) else size_px

        def fetch(tesscut: Any) -> list[Path]:
            from astropy.coordinates import SkyCoord
            from astroquery.exceptions import NoResultsWarning

            for stale in directory.iterdir():  # a retried attempt starts clean
                stale.unlink()
            try:
                # inflate=False: we unzip ourselves, so the zip's size is exactly what MAST sent.
                table = tesscut.download_cutouts(
                    coordinates=SkyCoord(ra_deg, dec_deg, unit="deg"),
                    size=size,
                    sector=sector,
                    path=str(directory),
                    inflate=False,
                )
            except NoResultsWarning:
                table = []  # TESScut's 200 + {"msg"}: no FFIs there (raised where warnings are errors)
            zips = [Path(str(p)) for p in table["Local Path"]] if len(table) else []
            if not zips:
                raise NotFound(f"TESScut has no FFIs covering RA {ra_deg}, Dec {dec_deg} in sector {sector}.")
            return extract_tpfs(zips[0], directory)

        return await self._call(fetch, on_start)
