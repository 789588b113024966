"""Dependencies shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from service.infra.cache import DiskCache
from service.infra.threads import Limiters
from service.services.answers import SlowAnswers
from service.services.cutout_products import CutoutProducts
from service.services.cutouts import CutoutService
from service.services.dv import DvService
from service.services.exomast_mirror import ExoMastMirror
from service.services.jobs import JobRegistry
from service.services.readiness import ReadinessProbe
from service.services.surroundings import SurroundingsService
from service.services.targets import TargetResolver
from service.services.tce_products import TceProducts
from service.services.tesscut_mirror import TesscutMirror
from service.settings import Settings


@dataclass(frozen=True)
class Services:
    """What the lifespan builds and the routes use."""

    settings: Settings
    limiters: Limiters
    cache: DiskCache
    readiness: ReadinessProbe  # the cache and each upstream's breaker (ExoMAST, the TIC catalog, TESScut, SkyBoT)
    dv: DvService
    targets: TargetResolver
    cutouts: CutoutService
    jobs: JobRegistry
    answers: SlowAnswers
    tce_products: TceProducts
    cutout_products: CutoutProducts
    exomast_mirror: ExoMastMirror
    tesscut_mirror: TesscutMirror
    surroundings: SurroundingsService  # the TIC's stars and SkyBoT's bodies around a cutout


# The dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop that
# cost more than the whole cache hit it was part of (benchmarks/bench_load.py).
async def get_services(request: Request) -> Services:
    """Return the services the lifespan put on the app."""
    services: Services = request.app.state.services
    return services


async def get_tic_id(
    tic_id: Annotated[
        str,
        Path(
            pattern=r"^[0-9]{1,11}$",
            description="TESS Input Catalog id, 1–11 digits; zero-padded (`00214568914`) and plain forms are the "
            "same target.",
            openapi_examples={
                "weird": {"summary": "TIC 214568914, the tutorial's 'weird' light curve", "value": "214568914"},
                "padded": {"summary": "The same target, zero-padded as ExoMAST writes it", "value": "00214568914"},
                "wasp18": {"summary": "WASP-18 (several multi-sector TCEs)", "value": "100100827"},
            },
        ),
    ],
) -> int:
    """Return the TIC id as a number, so every spelling of it shares one cache entry."""
    return int(tic_id)


ServicesDep = Annotated[Services, Depends(get_services)]
TicIdDep = Annotated[int, Depends(get_tic_id)]
