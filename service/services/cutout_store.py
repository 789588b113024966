"""Storing a downloaded cutout in the cache, and opening it again: the FITS, its summary, every file, stale copies.

Stale-if-error: when making a cutout again fails upstream (TESScut's 502/503/504, an open breaker: an
`UpstreamError`) and the expired copy is within the stale-if-error window, the expired copy is opened instead,
marked stale through `ArtifactStore.stale` and left as it is in the cache, so the next request asks TESScut again.
Any other failure (a `NotFound`, a full pool, a restart) is raised as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from service.errors import BadUpstreamResponse, ServiceError, UpstreamError
from service.infra.cache import CachedBody, DiskCache
from service.infra.threads import Limiters, run_blocking
from service.services.artifacts import ArtifactStore
from service.services.cutout_plans import CUTOUT, CutoutPlan
from service.tpf import contains_target, describe_tpf, stamp_tic
from service.upstream.tesscut import SectorCcd

CutoutFormat = Literal["fits", "json"]


@dataclass(frozen=True)
class CutoutFile:
    """One target pixel file as TESScut returned it: its name in TESScut's zip, and the cached bytes."""

    name: str
    body: CachedBody


def file_name(plan: CutoutPlan, hit: SectorCcd) -> str:
    """Return the download name: the TIC when known, else the position, then sector, CCD and size."""
    who = f"tic{plan.target.tic_id}" if plan.target.tic_id else f"{plan.target.ra_deg:.6f}_{plan.target.dec_deg:.6f}"
    rows, columns = plan.shape_px
    return f"{who}_{hit.name}_{columns}x{rows}_astrocut.fits"


def _safe_name(path: Path) -> str:
    """Return an upstream file name fit for a header: printable ASCII only (others become '?')."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in path.name)


class CutoutStore:
    """The cache side of cutouts: what is kept under a plan's keys, and how it is read back."""

    def __init__(self, store: ArtifactStore, cache: DiskCache, limiters: Limiters, *, ttl_cutout_s: int) -> None:
        self._store = store
        self._cache = cache
        self._limiters = limiters
        self._ttl_cutout_s = ttl_cutout_s

    async def get_fresh(self, plan: CutoutPlan, fmt: CutoutFormat) -> CachedBody | None:
        """Return the fresh cached FITS (or JSON summary) of ``plan``, or None."""
        return await self._store.get_fresh(plan.fits_key if fmt == "fits" else plan.summary_key)

    async def files(self, plan: CutoutPlan) -> list[CutoutFile] | None:
        """Return every file TESScut returned for ``plan``, opened from the cache; None unless all are there.

        Cutouts cached before the manifest existed have none, and count as missing here (not for `get_fresh`).
        """
        return await self._open_files(plan, self._store.get_fresh)

    async def has_all_files(self, plan: CutoutPlan) -> bool:
        """Return whether every file of ``plan`` is in the cache now; if so, make sure the shared tier has them.

        A process that finds them on its own disk (a worker making a cutout again because the replicas no longer
        found it) shares them again when the shared tier lost them; without a shared tier this costs nothing.
        """
        found = await self.files(plan)
        for file in found or []:
            file.body.close()
        if found is None:
            return False
        keys = [plan.files_key, plan.summary_key, plan.fits_key, *(plan.other_file_key(f.name) for f in found)]
        await run_blocking(self._cache.reshare, sorted(set(keys)), limiter=self._limiters.io)
        return True

    async def _open_files(
        self, plan: CutoutPlan, opener: Callable[[str], Awaitable[CachedBody | None]]
    ) -> list[CutoutFile] | None:
        """Return the files the manifest of ``plan`` lists, each opened by ``opener``; None unless all are there."""
        manifest = await opener(plan.files_key)
        if manifest is None:
            return None
        opened: list[CutoutFile] = []
        try:
            for entry in orjson.loads(manifest.read()):
                body = await opener(entry["key"])
                if body is None:  # evicted on its own: the set is incomplete
                    for found in opened:
                        found.body.close()
                    return None
                opened.append(CutoutFile(entry["name"], body))
        except BaseException:
            for found in opened:  # cancelled half-way: nothing stays open
                found.body.close()
            raise
        return opened

    async def stale(self, plan: CutoutPlan, fmt: CutoutFormat, error: ServiceError) -> CachedBody:
        """Return the expired FITS (or summary), marked stale, when ``error`` came from upstream and the window allows.

        Otherwise raise ``error``: a `NotFound` is news, never hidden behind an old copy; our own failures too.
        """
        if isinstance(error, UpstreamError):
            body = await self._store.stale(plan.fits_key if fmt == "fits" else plan.summary_key, error)
            if body is not None:
                return body
        raise error

    async def stale_files(self, plan: CutoutPlan, error: ServiceError) -> list[CutoutFile]:
        """Return every expired file of ``plan``, marked stale, as `stale` does for one; else raise ``error``."""
        if isinstance(error, UpstreamError):
            upstream_error = error  # narrowed, for the lambda
            found = await self._open_files(plan, lambda key: self._store.stale(key, upstream_error))
            if found is not None:
                return found
        raise error

    def keep(self, plan: CutoutPlan, paths: list[Path]) -> None:
        """Cache the file with the target under `fits_key`, its summary, the other files and the manifest (blocking).

        The other files (a cutout that reaches a second CCD) are kept for position targets only, the ones the
        TESScut mirror serves whole; TIC cutouts are stamped and only ever served alone. The manifest goes last,
        so a manifest in the cache means every file it lists was stored.
        """
        target = plan.target
        try:
            chosen = next((p for p in paths if contains_target(p, target.ra_deg, target.dec_deg)), paths[0])
            if target.tic_id is not None:
                stamp_tic(chosen, target.tic_id, target.tessmag)
            summary = describe_tpf(chosen, target.ra_deg, target.dec_deg)
        except (OSError, KeyError, TypeError, ValueError, IndexError) as exc:
            # Not a target pixel file we can read: a broken upstream answer, never cached.
            raise BadUpstreamResponse(
                f"TESScut sent a file that is not a readable target pixel file ({type(exc).__name__}).",
                upstream="TESScut",
            ) from exc
        note = None
        if len(paths) > 1:
            others = ", ".join(_safe_name(p) for p in paths if p != chosen)
            note = f"TESScut returned {len(paths)} files for sector {plan.sector}; served {_safe_name(chosen)}, "
            note += f"which contains the target (also returned: {others})."
        candidate = next((c for c in plan.candidates if chosen.name.startswith(c.name)), plan.candidates[0])
        summary.update(
            {
                "sector": summary["sector"] or plan.sector,
                "camera": summary["camera"] or candidate.camera,
                "ccd": summary["ccd"] or candidate.ccd,
                "tic_id": target.tic_id,
                "ra_deg": target.ra_deg,
                "dec_deg": target.dec_deg,
                "position_source": target.source,
                "file_name": file_name(plan, candidate),
                "size_bytes": chosen.stat().st_size,
                "note": note,
            }
        )
        headers = {"Content-Disposition": f'attachment; filename="{summary["file_name"]}"'}
        if note:
            headers["X-Cutout-Note"] = note
        kept = [p for p in paths if p == chosen or target.tic_id is None]
        manifest = [
            {"name": _safe_name(p), "key": plan.fits_key if p == chosen else plan.other_file_key(_safe_name(p))}
            for p in kept
        ]
        ttl_s = self._ttl_cutout_s
        for path, entry in zip(kept, manifest, strict=True):
            if path != chosen:
                self._cache.put_file(entry["key"], path, media_type="application/fits", ttl_s=ttl_s)
        self._cache.put_file(plan.fits_key, chosen, media_type="application/fits", ttl_s=ttl_s, headers=headers)
        self._cache.put(plan.summary_key, CUTOUT.json_body(summary), media_type="application/json", ttl_s=ttl_s)
        self._cache.put(plan.files_key, orjson.dumps(manifest), media_type="application/json", ttl_s=ttl_s)
