"""The TESScut mirror's work: TESScut's answers rebuilt from the same cache entries as `/sectors` and `/cutout`.

A mirror cutout is one `CutoutPlan` per sector, each made (or found) by `CutoutService`, so a square cutout that
`/cutout` already fetched is never asked of MAST again, and the other way round. The zip TESScut would send is
rebuilt from the cached files: every file TESScut returned, under the name it had in TESScut's zip, in the same
order, stored (not compressed: target pixel files barely compress, and a stored zip's size is known in advance).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import IO

import anyio
import orjson

from service.errors import NotFound, ServiceError, UpstreamTimeout
from service.infra.threads import Limiters, run_blocking
from service.services.cutouts import CutoutFile, CutoutPlan, CutoutService
from service.services.targets import Target

MAX_CUTOUT_PIXELS = 10_000  # TESScut's limit per cutout
PIXEL_SCALE_DEG = 21.0 / 3600.0
# What TESScut's web form shows when no FFI holds the position (astrocut issues #13/#15).
NO_DATA_MESSAGE = "Cutout Error: No FFIs found for input target. Cutout not performed."

# Sizes of the records zipfile writes for a stored member streamed to an unseekable sink (APPNOTE 4.3.7, 4.3.9,
# 4.3.12, 4.3.16), while no size or offset needs ZIP64; zipfile decides ZIP64 per member from size * 1.05.
_LOCAL_HEADER_BYTES = 30
_DATA_DESCRIPTOR_BYTES = 16
_CENTRAL_HEADER_BYTES = 46
_END_RECORD_BYTES = 22
_ZIP64_MARGIN = 1.05


@dataclass(frozen=True)
class MirrorCutout:
    """A validated ``astrocut`` request: position, size in pixels (columns ``nx``, rows ``ny``), optional sector."""

    ra_deg: float
    dec_deg: float
    nx: int
    ny: int
    sector: int | None


def _zip_time(created_at: float) -> tuple[int, int, int, int, int, int]:
    """Return a member's zip timestamp (UTC; zip stores no zone and cannot go before 1980)."""
    stamp = time.gmtime(max(created_at, 315532800.0))
    return (stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min, stamp.tm_sec)


def stored_zip_size(members: list[tuple[str, int]]) -> int | None:
    """Return the exact size of the zip `stream_zip` writes for (name, size) members; None if ZIP64 would apply."""
    total = _END_RECORD_BYTES
    for name, size in members:
        if size * _ZIP64_MARGIN > zipfile.ZIP64_LIMIT:
            return None
        name_bytes = len(name.encode("ascii"))  # names are printable ASCII (CutoutService keeps them so)
        total += _LOCAL_HEADER_BYTES + name_bytes + size + _DATA_DESCRIPTOR_BYTES
        total += _CENTRAL_HEADER_BYTES + name_bytes
    if total > zipfile.ZIP64_LIMIT or len(members) >= 0xFFFF:
        return None  # offsets past 2 GiB add ZIP64 records; the zip is then sent without a length
    return total


class _Drain:
    """A write-only, unseekable sink for zipfile: it keeps what was written until `take` hands it on."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


@dataclass
class MirrorZip:
    """The files of a mirror cutout, opened from the cache, and how to send them as TESScut's zip."""

    files: list[CutoutFile]
    hit: bool
    immutable: bool

    @property
    def size_bytes(self) -> int | None:
        """Return the zip's exact size (for Content-Length), or None when it cannot be known in advance."""
        return stored_zip_size([(f.name, f.body.meta.size) for f in self.files])

    @property
    def etag(self) -> str:
        """Return a strong ETag: the zip's bytes follow from its members' names, contents and timestamps."""
        parts = [(f.name, f.body.meta.etag, _zip_time(f.body.meta.created_at)) for f in self.files]
        return '"' + hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32] + '"'

    def max_age_s(self) -> int:
        """Return the freshness left: that of the member that goes stale first."""
        return min(f.body.meta.max_age_s() for f in self.files)

    def close(self) -> None:
        """Release the members' file handles (when the zip is not sent)."""
        for file in self.files:
            file.body.close()

    async def stream(self, limiters: Limiters) -> AsyncIterator[bytes]:
        """Yield the zip, one cached chunk at a time: reading and checksumming run in worker threads.

        zipfile writes into a `_Drain` and each step's output is yielded at once, so memory holds one chunk
        (1 MiB) however large the members are, and no thread is held while the client is slow to read.
        """
        sink = _Drain()
        archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        member: IO[bytes] | None = None
        chunk_iterators: list[Iterator[bytes]] = []
        try:
            for file in self.files:
                info = zipfile.ZipInfo(file.name, date_time=_zip_time(file.body.meta.created_at))
                info.compress_type = zipfile.ZIP_STORED
                info.file_size = file.body.meta.size
                member = archive.open(info, "w")  # writes the local header
                chunks = file.body.chunks()
                chunk_iterators.append(chunks)

                def copy_chunk(chunks: Iterator[bytes] = chunks, member: IO[bytes] = member) -> bool:
                    chunk = next(chunks, None)
                    if chunk is None:
                        member.close()  # writes the data descriptor (CRC and sizes)
                        return False
                    member.write(chunk)
                    return True

                while await run_blocking(copy_chunk, limiter=limiters.io):
                    yield sink.take()
                yield sink.take()  # the data descriptor
            archive.close()  # writes the central directory
            yield sink.take()
        finally:
            # An interrupted zip is closed too (into the drain, which is dropped), so zipfile has nothing left
            # to finish when it is garbage-collected.
            if member is not None:
                member.close()
            archive.close()
            # Shielded: a client that disconnects cancels the stream, and the files must still be closed.
            with anyio.CancelScope(shield=True):
                await run_blocking(self._close_all, chunk_iterators, limiter=limiters.io)

    def _close_all(self, chunk_iterators: list[Iterator[bytes]]) -> None:
        for chunks in chunk_iterators:
            if isinstance(chunks, Generator):
                chunks.close()  # leaves the generator's `with file:` block
        self.close()


class TesscutMirror:
    """Answers TESScut's ``sector`` and ``astrocut`` requests through `CutoutService` and its cache."""

    def __init__(self, cutouts: CutoutService, *, wait_s: float) -> None:
        self._cutouts = cutouts
        self._wait_s = wait_s

    async def sector_results(self, ra_deg: float, dec_deg: float, radius_deg: float) -> list[dict[str, str]]:
        """Return TESScut's ``results`` list for a position and radius: strings, the sector zero-padded (cached)."""
        hits = await self._cutouts.sectors(ra_deg, dec_deg, radius_deg)
        return [
            {"sectorName": h.name, "sector": f"{h.sector:04d}", "camera": str(h.camera), "ccd": str(h.ccd)}
            for h in hits
        ]

    async def cutout_zip(self, request: MirrorCutout, plan_result_url: Callable[[CutoutPlan], str]) -> MirrorZip | None:
        """Return the files of every sector's cutout (or of the requested sector), or None when there are none.

        Each sector is its own cached cutout and, on a miss, its own TESScut request; they are made together (the
        TESScut client keeps to MAST's limits) and waited for up to the TESScut deadline. A sector TESScut has no
        data for is left out, as TESScut leaves it out of its zip. ``plan_result_url(plan)`` names where a job's
        result can be fetched (shown at /jobs/{id} to whoever shares the job). A sector whose cutout has expired and
        whose download fails upstream contributes its expired files (`CutoutService.ensure_files`): the zip is the
        one served before, byte for byte, and the answer is marked stale (``StaleMarkingMiddleware``).
        """
        plans = await self._plans(request)
        if not plans:
            return None
        outcomes = await self._ensure_all(plans, plan_result_url)
        files = [file for plan_files, _ in outcomes for file in plan_files]
        if not files:
            return None
        hit = all(plan_hit for _, plan_hit in outcomes)
        return MirrorZip(files, hit, immutable=request.sector is not None)

    async def _plans(self, request: MirrorCutout) -> list[CutoutPlan]:
        """Return one plan per sector asked for (none when no FFI holds the position)."""
        target = Target(request.ra_deg, request.dec_deg)
        rows_px = None if request.ny == request.nx else request.ny
        try:
            if request.sector is not None:
                return [await self._cutouts.plan(target, request.nx, request.sector, rows_px=rows_px)]
            return await self._cutouts.plan_every_sector(target, request.nx, rows_px=rows_px)
        except NotFound:
            return []

    async def _ensure_all(
        self, plans: list[CutoutPlan], plan_result_url: Callable[[CutoutPlan], str]
    ) -> list[tuple[list[CutoutFile], bool]]:
        """Return each plan's files and whether they were cached, made together within the wait; none on failure."""
        per_plan: list[tuple[list[CutoutFile], bool] | None] = [None] * len(plans)

        async def fetch(index: int, plan: CutoutPlan) -> None:
            try:
                per_plan[index] = await self._cutouts.ensure_files(plan, plan_result_url(plan))
            except NotFound:
                per_plan[index] = ([], True)

        try:
            async with asyncio.timeout(self._wait_s):
                async with asyncio.TaskGroup() as group:
                    for index, plan in enumerate(plans):
                        group.create_task(fetch(index, plan))
        except BaseException as exc:
            for outcome in per_plan:
                for file in outcome[0] if outcome else []:
                    file.body.close()
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"TESScut has not finished this cutout within {self._wait_s:.0f} s. It goes on in the "
                    "background: ask again later and it comes from the cache.",
                    upstream="TESScut",
                    retry_after_s=60,
                ) from exc
            if isinstance(exc, BaseExceptionGroup):
                raise _first_error(exc) from None
            raise
        return [outcome for outcome in per_plan if outcome is not None]  # every task set its own


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Return the error to answer with from a task group's: a service error if there is one."""
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    return next((exc for exc in leaves if isinstance(exc, ServiceError)), leaves[0])
