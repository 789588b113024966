"""What is around a cutout besides its pixels: the TIC's stars and SkyBoT's known solar-system bodies.

They are asked before a diagnosis is made, so the making stays a pure function of the cutout and these answers.

- Stars: a cone search of the TIC over the cutout (its half-diagonal), stars brighter than `MAX_TMAG` (a fainter
  one cannot make a signal TESS sees), at most `MAX_STARS` of them. Cached like TIC lookups. The TIC failing fails
  the diagnosis (a 502/503/504 problem to retry): a nearest star left out silently would read as "no star there".
- Bodies: SkyBoT's cone search at the window's middle (JD = BTJD + 2457000; the few minutes between TESS's
  barycentric times and SkyBoT's epoch move a main-belt asteroid a few arcseconds, a tenth of a pixel), over the
  cutout widened by how far a fast main-belt asteroid (`MAX_RATE_ARCSEC_PER_H`) moves in half the window, so a
  body that crosses the cutout during the window is found. Cached for `SKYBOT_TTL_S`. SkyBoT failing does not fail
  the diagnosis: its `known_objects` say ``unavailable`` with what failed, and that answer is not cached here.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import orjson

from service.errors import UpstreamError
from service.science.pixels import ARCSEC_PER_PX
from service.services.artifacts import ArtifactStore
from service.services.identity import data_key
from service.services.targets import Target
from service.upstream.catalogs import TicCatalogClient, TicEntry
from service.upstream.skybot import SkybotClient, SolarSystemObject

BTJD_OFFSET_JD = 2457000.0
MAX_TMAG = 17.0
MAX_STARS = 2000
MAX_RATE_ARCSEC_PER_H = 90.0
SKYBOT_TTL_S = 7 * 86400


@dataclass(frozen=True)
class KnownObjects:
    """SkyBoT's answer for a cutout and a window: ``ok`` with its bodies, or ``unavailable`` with why."""

    status: Literal["ok", "unavailable"]
    epoch_btjd: float
    objects: tuple[SolarSystemObject, ...] = ()
    detail: str | None = None


@dataclass(frozen=True)
class Surroundings:
    """The catalogued stars over a cutout and the known bodies near it during a window."""

    stars: tuple[TicEntry, ...]
    known: KnownObjects

    def key_parts(self) -> tuple[object, ...]:
        """Return what keys a product made with these surroundings: a digest of everything in them."""
        text = orjson.dumps(
            [
                [star.__dict__ for star in self.stars],
                {**self.known.__dict__, "objects": [body.__dict__ for body in self.known.objects]},
            ]
        )
        return (hashlib.sha256(text).hexdigest()[:16],)


def cutout_radius_deg(size_px: int) -> float:
    """Return the radius of the circle around a square cutout (its half-diagonal), degrees."""
    return size_px * ARCSEC_PER_PX / math.sqrt(2) / 3600.0


class SurroundingsService:
    """Asks the TIC and SkyBoT what is around a cutout, through the cache."""

    def __init__(
        self, store: ArtifactStore, catalog: TicCatalogClient, skybot: SkybotClient, *, ttl_catalog_s: int
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._skybot = skybot
        self._ttl_catalog_s = ttl_catalog_s

    async def around(self, target: Target, size_px: int, start_btjd: float, end_btjd: float) -> Surroundings:
        """Return the stars over the cutout and the bodies near it during [start, end]."""
        return Surroundings(await self.stars(target, size_px), await self.known(target, size_px, start_btjd, end_btjd))

    async def stars(self, target: Target, size_px: int) -> tuple[TicEntry, ...]:
        """Return the TIC stars over the cutout brighter than `MAX_TMAG`."""
        ra, dec, radius = round(target.ra_deg, 6), round(target.dec_deg, 6), round(cutout_radius_deg(size_px), 6)

        async def cone() -> tuple[TicEntry, ...]:
            return tuple(await self._catalog.cone(ra, dec, radius, max_tmag=MAX_TMAG, most=MAX_STARS))

        return await self._store.value(
            data_key("catalog:cone", ra, dec, radius, MAX_TMAG),
            cone,
            encode=lambda stars: orjson.dumps([star.__dict__ for star in stars]),
            decode=lambda blob: tuple(TicEntry(**row) for row in orjson.loads(blob)),
            ttl_s=self._ttl_catalog_s,
        )

    async def known(self, target: Target, size_px: int, start_btjd: float, end_btjd: float) -> KnownObjects:
        """Return SkyBoT's bodies near the cutout at the window's middle, or why there are none to say."""
        epoch = round((start_btjd + end_btjd) / 2, 4)
        half_window_h = (end_btjd - start_btjd) * 12.0
        radius = round(cutout_radius_deg(size_px) + MAX_RATE_ARCSEC_PER_H * half_window_h / 3600.0, 6)
        ra, dec = round(target.ra_deg, 6), round(target.dec_deg, 6)

        async def search() -> tuple[SolarSystemObject, ...]:
            return tuple(await self._skybot.cone_search(ra, dec, radius, epoch + BTJD_OFFSET_JD))

        try:
            objects = await self._store.value(
                data_key("skybot:cone", ra, dec, radius, epoch),
                search,
                encode=lambda bodies: orjson.dumps([body.__dict__ for body in bodies]),
                decode=lambda blob: tuple(SolarSystemObject(**row) for row in orjson.loads(blob)),
                ttl_s=SKYBOT_TTL_S,
            )
        except UpstreamError as exc:
            again = "; ask again later" if exc.retryable else ""
            return KnownObjects("unavailable", epoch, (), f"{exc.title}: {exc.detail}{again}")
        return KnownObjects("ok", epoch, objects)
