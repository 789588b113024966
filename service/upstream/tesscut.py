"""TESScut through astroquery's `Tesscut`, run in bounded worker threads and kept polite to MAST.

Politeness (MAST's published limits): at most ``max_in_flight`` requests at once (a thread limiter), at most
``starts_per_s`` started per second (aiolimiter), one sector per request, and transient failures (503/504,
timeouts, dropped connections) retried with exponential backoff and jitter within one overall deadline, behind
TESScut's circuit breaker (`service.upstream.resilience`). Each attempt also ends at that deadline: its reads
time out no later, and a body still dripping in then is cut off.
"""

from __future__ import annotations

import asyncio
import errno
import json
import shutil
import socket
import threading
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import requests
from aiolimiter import AsyncLimiter
from anyio import CapacityLimiter
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from service.errors import (
    BadUpstreamResponse,
    InsufficientStorage,
    NotFound,
    ServiceError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from service.infra.shared_gate import GateUnavailable, SharedGate
from service.infra.threads import run_blocking
from service.upstream.http import retry_after_seconds
from service.upstream.resilience import UpstreamGuard, time_left_s

UPSTREAM = "TESScut"
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class SectorCcd:
    """One sector/camera/CCD whose FFIs cover a position."""

    sector: int
    camera: int
    ccd: int

    @property
    def name(self) -> str:
        """Return TESScut's name for it, e.g. ``tess-s0001-1-2``."""
        return f"tess-s{self.sector:04d}-{self.camera}-{self.ccd}"


class _AttemptSockets:
    """What one attempt sent and got: the sockets its streamed responses read from, and its last response.

    requests' timeouts bound each read, not a whole download: an upstream dripping bytes would hold the attempt
    (and one of MAST's ten slots) for as long as it likes. Shutting the socket down from the event loop at the
    deadline makes the worker thread's blocked read return at once.

    ``last_response`` keeps the HTTP status astroquery hides (it turns 400 and 500 into a bare InvalidQueryError);
    ``sent`` tells a failure on our side before anything went to TESScut from one of TESScut's.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self.sent = False
        self.last_response: requests.Response | None = None

    def add(self, sock: socket.socket) -> None:
        """Watch one more socket (cut at once when the deadline has passed already)."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        """Cut every watched socket: the attempt is out of time."""
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


class _TimeoutAdapter(HTTPAdapter):
    """astroquery downloads with ``timeout=None`` (wait forever); give every request a timeout within the deadline."""

    def __init__(self, timeout: tuple[float, float], deadline: float, sockets: _AttemptSockets) -> None:
        super().__init__()
        self._timeout = timeout
        self._deadline = deadline
        self._attempt_sockets = sockets

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with our timeout (or the caller's), no read waiting past the deadline; watch a streamed body."""
        # astroquery passes its own timeout (conf.timeout, 600 s) to some requests: the shorter one wins.
        given = kwargs.get("timeout")
        given_connect_s, given_read_s = given if isinstance(given, tuple) else (given, given)
        left_s = max(0.001, time_left_s(self._deadline))
        kwargs["timeout"] = tuple(
            min(ours, theirs or ours, left_s)
            for ours, theirs in zip(self._timeout, (given_connect_s, given_read_s), strict=True)
        )
        self._attempt_sockets.sent = True
        response = super().send(request, **kwargs)
        self._attempt_sockets.last_response = response
        sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
        if isinstance(sock, socket.socket):
            self._attempt_sockets.add(sock)
        return response


def _translate(exc: Exception) -> ServiceError:
    """Map what astroquery/requests raise to the service's errors."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return _http_error(exc.response)
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(
            "TESScut did not answer in time; large cutouts can take minutes, try again later.",
            upstream=UPSTREAM,
            retry_after_s=30,
        )
    if isinstance(exc, requests.ConnectionError):
        if _could_not_connect(exc):
            return UpstreamUnavailable(
                "TESScut could not be reached; try again shortly.", upstream=UPSTREAM, retry_after_s=10
            )
        return BadUpstreamResponse(
            "TESScut dropped the connection before the cutout was complete; try again.",
            upstream=UPSTREAM,
            retry_after_s=10,
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return BadUpstreamResponse(
            "TESScut dropped the connection before the cutout was complete; try again.",
            upstream=UPSTREAM,
            retry_after_s=10,
        )
    if type(exc).__name__ == "InvalidQueryError":
        return BadUpstreamResponse("TESScut refused the request as invalid (HTTP 400 or 500).", upstream=UPSTREAM)
    if isinstance(exc, zipfile.BadZipFile | json.JSONDecodeError | UnicodeDecodeError | KeyError | EOFError):
        return BadUpstreamResponse(
            f"TESScut sent a cutout that cannot be read ({type(exc).__name__}).", upstream=UPSTREAM
        )
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        return _local_disk_error(exc)
    return BadUpstreamResponse(f"TESScut's answer could not be used ({type(exc).__name__}: {exc}).", upstream=UPSTREAM)


def _http_error(response: requests.Response) -> ServiceError:
    """Map an HTTP error status from TESScut: 429/503 overloaded, 504 gateway timeout, anything else unusable."""
    status = response.status_code
    wait = retry_after_seconds(response.headers.get("Retry-After"), default=10)
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
    if status == 400:
        return BadUpstreamResponse("TESScut refused the request as invalid (HTTP 400).", upstream=UPSTREAM)
    return BadUpstreamResponse(f"TESScut answered HTTP {status}.", upstream=UPSTREAM)


def _could_not_connect(exc: requests.ConnectionError) -> bool:
    """Return whether no connection was made at all (refused, name not resolved), rather than one dropped."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return (
        isinstance(reason, NewConnectionError)  # urllib3's NameResolutionError included
        or isinstance(exc.__context__, ConnectionRefusedError)
        or "refused" in str(exc).lower()
    )


def _local_disk_error(exc: OSError) -> ServiceError:
    """Map a failure writing or unzipping the cutout on our own disk: ours to fix, nothing TESScut did."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("The service's disk is full: it could not store the cutout TESScut sent.")
    return ServiceError(f"The service could not write the cutout to its disk ({type(exc).__name__}: {exc}).")


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
        guard: UpstreamGuard,
        *,
        max_in_flight: int,
        starts_per_s: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        gate: SharedGate | None = None,
    ) -> None:
        self._request_url = f"{mast_url}/tesscut/api/v0.1/"
        # With replicas, the same limits across every process too (a lease and a start from the state Redis).
        self._gate = gate
        # A request first takes one of the in-flight slots, then a start token: tokens are spaced 1/rate apart
        # (a bucket of one), so no second ever sees more than `starts_per_s` requests begin.
        self._in_flight = anyio.Semaphore(max_in_flight)
        self._threads = CapacityLimiter(max_in_flight)
        self._starts = AsyncLimiter(1, 1.0 / starts_per_s)
        self._sessions: set[requests.Session] = set()
        self._attempts: set[_AttemptSockets] = set()
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._guard = guard

    def _tesscut(self, deadline: float, sockets: _AttemptSockets) -> Any:
        """Return a fresh astroquery `TesscutClass` aimed at our MAST URL (one per call: sessions are not shared)."""
        from astroquery.mast import TesscutClass  # imported late: astroquery's import is slow and optional for tests

        tesscut = TesscutClass()
        # astroquery freezes the server URL at import; this per-instance attribute is what every request uses.
        tesscut._service_api_connection.REQUEST_URL = self._request_url
        adapter = _TimeoutAdapter(self._timeout, deadline, sockets)
        for session in {id(s): s for s in (tesscut._session, tesscut._service_api_connection._session)}.values():
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        return tesscut

    async def _call(self, endpoint: str, fn: Callable[[Any], T], on_start: Callable[[], None] | None = None) -> T:
        """Run ``fn(tesscut)`` in a TESScut thread, through TESScut's breaker and retries, within the deadline."""

        def attempt_in_thread(deadline: float, sockets: _AttemptSockets) -> T:
            if on_start is not None:
                on_start()
            tesscut = self._tesscut(deadline, sockets)
            self._sessions.add(tesscut._session)
            try:
                return fn(tesscut)
            except ServiceError:
                raise
            except Exception as exc:  # noqa: BLE001 - astroquery raises many kinds; all become ServiceErrors
                if isinstance(exc, requests.HTTPError) and exc.response is not None:
                    exc.response.close()  # astroquery raises while its streamed response still holds the socket
                if sockets.expired:
                    raise UpstreamTimeout(
                        "TESScut did not finish this cutout within the service's deadline; try again later.",
                        upstream=UPSTREAM,
                        retry_after_s=30,
                    ) from exc
                if not sockets.sent:
                    error = _local_disk_error(exc) if isinstance(exc, OSError) else None
                    raise error or ServiceError(
                        f"The service failed before asking TESScut ({type(exc).__name__}: {exc})."
                    ) from exc
                last = sockets.last_response
                if type(exc).__name__ == "InvalidQueryError" and last is not None and last.status_code >= 400:
                    # astroquery turned TESScut's 400 or 500 into InvalidQueryError: put the status back, so
                    # a 500 counts towards the breaker (and a 400 does not).
                    status_error = requests.HTTPError(f"HTTP {last.status_code}", response=last)
                    status_error.__cause__ = exc
                    exc = status_error
                raise _translate(exc) from exc
            finally:
                self._sessions.discard(tesscut._session)
                tesscut._session.close()  # its pooled connections, whatever happened

        async def attempt(deadline: float) -> T:
            sockets = _AttemptSockets()
            self._attempts.add(sockets)
            # The deadline is the event loop's to enforce: the worker thread may be stuck in a read.
            cutoff = asyncio.get_running_loop().call_later(time_left_s(deadline), sockets.expire)
            try:
                return await run_blocking(attempt_in_thread, deadline, sockets, limiter=self._threads)
            finally:
                cutoff.cancel()
                self._attempts.discard(sockets)

        # The slot is taken before the breaker admits the attempt: a probe never queues behind our own downloads.
        return await self._guard.call(endpoint, attempt, slot=self._slot)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Hold one of the in-flight slots, and a start token, for one attempt."""
        async with self._in_flight, self._shared_slot():
            await self._starts.acquire()
            yield

    @asynccontextmanager
    async def _shared_slot(self) -> AsyncIterator[None]:
        """Hold a lease and a start of the gate shared by every process, when there is one."""
        if self._gate is None:
            yield
            return
        try:
            async with self._gate.slot():
                yield
        except GateUnavailable as error:
            raise UpstreamUnavailable(
                "TESScut calls are paused: the state Redis that counts them across replicas cannot be reached "
                f"({error}). Cached answers are still served; try again shortly.",
                upstream=UPSTREAM,
                retry_after_s=5,
            ) from error

    def close(self) -> None:
        """Abort the requests in flight (at shutdown), so no download outlives the process's grace period.

        Closing a session does not stop a response already streaming, so every attempt's sockets are cut too.
        """
        for sockets in list(self._attempts):
            sockets.expire()
        for session in list(self._sessions):
            session.close()

    async def sectors(self, ra_deg: float, dec_deg: float, radius_deg: float = 0.0) -> list[SectorCcd]:
        """Return every sector/camera/CCD whose FFIs cover the position, sorted."""

        def lookup(tesscut: Any) -> list[SectorCcd]:
            # The same request astroquery's get_sectors sends, but its answer is checked here: get_sectors reads
            # a missing "results" as "no sectors", which would then be cached as such.
            params = {"ra": ra_deg, "dec": dec_deg, "radius": radius_deg}
            response = tesscut._service_api_connection.service_request_async("sector", params)
            try:
                results = response.json()["results"]
                return sorted({SectorCcd(int(r["sector"]), int(r["camera"]), int(r["ccd"])) for r in results})
            except (ValueError, KeyError, TypeError) as exc:
                raise BadUpstreamResponse(
                    "TESScut's sector answer has no usable 'results' list.", upstream=UPSTREAM
                ) from exc
            finally:
                response.close()

        return await self._call("sector", lookup)

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

        return await self._call("astrocut", fetch, on_start)
