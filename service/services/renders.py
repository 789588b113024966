"""Rendered artifacts: light-curve PNGs, cutout frames and movies, made in the render pool and cached.

Every rendered answer is cached under a key holding all of its inputs and `RENDERER_VERSION`; a movie that needs a
cutout not cached yet becomes a job (the cutout job, then the render), so identical cold requests share one
cutout fetch and one render. Rendering needs a place in the render pool (`Admission`), taken only around the
render step itself: fetching the data (a DV table from ExoMAST, a cutout from TESScut) holds none, as it is bounded
by its own machinery (breakers, TESScut slots, the cutout pool). New render work is refused at once with
`Overloaded` (503) when the pool is full when it is asked for, or when it finds the pool full once its data has
arrived; cached renders and identical renders already under way are joined, never refused.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Literal

from service.errors import BadUpstreamResponse, InsufficientStorage, InvalidRequest
from service.infra.cache import CachedBody, DiskCache
from service.infra.threads import Admission, Limiters, run_blocking
from service.rendering.movies import MovieStyle, render_frame_png, render_movie
from service.rendering.plots import render_lightcurve_png
from service.services.artifacts import Artifact, ArtifactStore, Ready
from service.services.cutouts import CutoutPlan, CutoutService
from service.services.dv import DvService
from service.services.jobs import Job, JobRegistry
from service.tpf import FrameWindow, WindowOutsideSector, read_window

# Bump when any renderer's output changes for the same inputs.
RENDERER_VERSION = "r1"
MovieFormat = Literal["gif", "mp4"]
MOVIE_MEDIA_TYPES = {"gif": "image/gif", "mp4": "video/mp4"}


@dataclass(frozen=True)
class LightCurvePlot:
    """Everything that shapes a light-curve PNG."""

    x: Literal["phase", "time"]
    start_btjd: float | None
    end_btjd: float | None
    highlight_btjd: tuple[float, float] | None
    width_px: int
    height_px: int
    dpi: int


@dataclass(frozen=True)
class MovieRequest:
    """Everything that shapes a movie (or, with one frame, a frame image)."""

    plan: CutoutPlan
    start_btjd: float
    end_btjd: float
    style: MovieStyle
    format: MovieFormat | Literal["png"]

    @property
    def key(self) -> str:
        """Return the cache key: the cutout's key, the window, the style and the renderer version."""
        style = ",".join(map(str, astuple(self.style)))
        window = f"{self.start_btjd!r}-{self.end_btjd!r}"
        return f"render:{RENDERER_VERSION}:{self.format}:{self.plan.fits_key}:{window}:{style}"


def ffi_cadence_days(sector: int) -> float:
    """Return the FFI cadence of a sector: 30 min (1–26), 10 min (27–55), 200 s (56 on)."""
    if sector <= 26:
        return 30 / 1440
    if sector <= 55:
        return 10 / 1440
    return 200 / 86400


def _scaled_side(style: MovieStyle, size_px: int) -> int:
    scale = style.scale or max(1, round(400 / size_px))
    return size_px * scale


class RenderService:
    """Makes and caches PNGs and movies; rendering runs in the render pool, never on the event loop."""

    def __init__(
        self,
        store: ArtifactStore,
        cache: DiskCache,
        dv: DvService,
        cutouts: CutoutService,
        jobs: JobRegistry,
        limiters: Limiters,
        *,
        pool: Admission,
        ttl_s: int,
        ttl_lightcurve_s: int,
        max_frames: int,
        max_output_bytes: int,
    ) -> None:
        self.pool = pool
        self._store = store
        self._cache = cache
        self._dv = dv
        self._cutouts = cutouts
        self._jobs = jobs
        self._limiters = limiters
        self._ttl_s = ttl_s
        self._ttl_lightcurve_s = ttl_lightcurve_s
        self._max_frames = max_frames
        self._max_output_bytes = max_output_bytes

    async def lightcurve_png(self, tic_id: int, tce_id: str, plot: LightCurvePlot) -> tuple[CachedBody, bool]:
        """Return the PNG of a TCE's detrended light curve."""
        ref = await self._dv.resolve(tic_id, tce_id)
        key = f"render:{RENDERER_VERSION}:lightcurve:{tic_id}:{ref.id}:" + ",".join(map(str, astuple(plot)))

        async def produce() -> Artifact:
            # Only the request that starts a render gets here; identical ones wait for it in the single-flight.
            self.pool.refuse_if_full()
            table = await self._dv.table(tic_id, ref)  # no render place held while ExoMAST answers
            missing = [c for c in ("TIME", "PHASE", "LC_DETREND", "MODEL_INIT") if c not in table.columns]
            if missing:
                raise BadUpstreamResponse(
                    f"ExoMAST's DV light curve lacks {', '.join(missing)}, so it cannot be plotted.", upstream="ExoMAST"
                )
            columns = table.columns
            with self.pool.admitted_work():
                payload, media_type = await run_blocking(
                    lambda: render_lightcurve_png(
                        columns["TIME"],
                        columns["PHASE"],
                        columns["LC_DETREND"],
                        columns["MODEL_INIT"],
                        x=plot.x,
                        start_btjd=plot.start_btjd,
                        end_btjd=plot.end_btjd,
                        highlight_btjd=plot.highlight_btjd,
                        width_px=plot.width_px,
                        height_px=plot.height_px,
                        dpi=plot.dpi,
                        title=f"Detrended Lightcurve (TIC {tic_id} - {ref.id})",
                    ),
                    limiter=self._limiters.render,
                )
            return Artifact(payload, media_type, self._ttl_lightcurve_s)

        return await self._store.body(key, produce)

    def check_size(self, request: MovieRequest, frames: int | None = None) -> None:
        """Refuse a movie that could not be served: too many frames, or too many pixels to encode.

        Before the cutout is read, ``frames`` is estimated from the sector's FFI cadence; afterwards it is exact.
        """
        if request.format == "png":
            return
        if frames is None:
            span = (request.end_btjd - request.start_btjd) / ffi_cadence_days(request.plan.sector)
            frames = math.floor(span) + 1 if math.isfinite(span) else self._max_frames + 1
        if frames > self._max_frames:
            raise InvalidRequest(
                f"BTJD {request.start_btjd}–{request.end_btjd} holds about {frames} frames in sector "
                f"{request.plan.sector}, more than the {self._max_frames} allowed; shorten the window."
            )
        side = _scaled_side(request.style, request.plan.size_px)
        # A GIF of noisy pixels compresses to about a byte a pixel or worse: past the budget, refuse before encoding.
        if frames * side * side > self._max_output_bytes:
            raise InvalidRequest(
                f"A movie of {frames} frames at {side}×{side} px is too large (limit "
                f"{self._max_output_bytes / 2**20:.0f} MiB of pixels); shorten the window, lower scale= or size=."
            )

    async def cached(self, request: MovieRequest) -> Ready | None:
        """Return the cached rendering, or None."""
        body = await self._store.get_fresh(request.key)
        return Ready(body, True) if body is not None else None

    async def starter(self, request: MovieRequest, result_url: str, cutout_url: str) -> Callable[[], Job]:
        """Look up what rendering ``request`` needs, and return what starts (or joins) its job.

        The lookup awaits the cache; the returned function does not, so admission happens in one step: joining a
        running render job never fails; a new one is refused (`Overloaded`) when the render pool is full now, else
        it starts (or joins) the cutout job when the cutout is not cached (which the cutout pool may refuse), then
        the render job. The render job takes its render place only once the cutout is there (`_render`).
        """
        cutout_cached = await self._cutouts.is_cached(request.plan)

        def start() -> Job:
            running = self._jobs.running(request.key)
            if running is not None:
                return running
            self.pool.refuse_if_full()
            cutout_job = None if cutout_cached else self._cutouts.start(request.plan, cutout_url)
            job = self._jobs.start(request.key, result_url, lambda job: self._make(request, job, cutout_url))
            if cutout_job is not None:
                # Report the cutout download's progress as this job's (the cutout job is shared, not duplicated).
                job.progress = cutout_job.received
            return job

        return start

    async def after_job(self, request: MovieRequest, job: Job) -> Ready:
        """Return what a finished job made, raising its error when it failed."""
        if job.error is not None:
            raise job.error
        ready = await self.cached(request)
        if ready is None:
            raise InsufficientStorage(
                "The movie was rendered but the cache could not keep it; shorten the window or lower scale=, "
                "or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return Ready(ready.body, False)

    async def _make(self, request: MovieRequest, job: Job, cutout_url: str) -> None:
        job.mark("running")
        body, _ = await self._store.body(request.key, lambda: self._render(request, cutout_url))
        body.close()

    async def _render(self, request: MovieRequest, cutout_url: str) -> Artifact:
        # Wait for the cutout, but open its file only inside the render thread: a queue of renders waiting for
        # a thread must not hold a file descriptor each.
        (await self._cutouts.ensure(request.plan, cutout_url)).close()
        target = request.plan.target

        def render() -> Artifact:
            fits_body = self._cache.get(request.plan.fits_key)
            if fits_body is None:
                raise InsufficientStorage("The cutout left the cache before it could be rendered; ask again.")
            source = fits_body.file if fits_body.file is not None else io.BytesIO(fits_body.read())
            try:
                window = read_window(
                    source, target.ra_deg, target.dec_deg, request.start_btjd, request.end_btjd, self._max_frames
                )
            except WindowOutsideSector as exc:
                raise InvalidRequest(f"{exc} Pass sector= for another sector.") from exc
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
            finally:
                fits_body.close()
            self.check_size(request, len(window.time_btjd))
            try:
                payload, media_type = self._draw(request, window)
            except ValueError as exc:  # e.g. a single vmin above the data's robust top
                raise InvalidRequest(f"These style settings cannot be drawn: {exc}") from exc
            if len(payload) > self._max_output_bytes:
                raise InvalidRequest(
                    f"The movie would be {len(payload) / 2**20:.0f} MiB, over the {self._max_output_bytes / 2**20:.0f} "
                    "MiB limit; shorten the window or lower scale=."
                )
            return Artifact(payload, media_type, self._ttl_s)

        # The render place is taken here, not while the cutout downloads; a full pool now fails the job (503).
        with self.pool.admitted_work():
            return await run_blocking(render, limiter=self._limiters.render)

    @staticmethod
    def _draw(request: MovieRequest, window: FrameWindow) -> tuple[bytes, str]:
        who = f"TIC {request.plan.target.tic_id}" if request.plan.target.tic_id else "cutout"
        title = f"{who} · sector {request.plan.sector}"
        if request.format == "png":
            return render_frame_png(
                window.flux[0],
                float(window.time_btjd[0]),
                int(window.cadence[0]),
                int(window.quality[0]),
                window.target_xy,
                request.style,
                title=title,
            )
        return render_movie(
            window.flux,
            window.time_btjd,
            window.cadence,
            window.quality,
            window.target_xy,
            request.style,
            fmt=request.format,
            title=title,
        )
