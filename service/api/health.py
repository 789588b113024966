"""Liveness."""

from fastapi import APIRouter

from service import __version__
from service.schemas import Health

router = APIRouter(tags=["operations"])
HEALTH_PATH = "/health"


@router.get(
    HEALTH_PATH,
    response_model=Health,
    summary="Liveness check",
    description="Answers 200 while the process can serve requests. It touches no upstream and no disk.",
)
async def health() -> Health:
    """Return that the process is up."""
    return Health(status="ok", version=__version__)
